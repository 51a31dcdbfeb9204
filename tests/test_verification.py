"""Verification: held out, scaled to the outputs, and honest in its errors.

References are the Keras models themselves (`verification.keras_predict`).
"""

import keras
import numpy as np
import pytest
from seeding import seeded

import keras_lstm
from keras_lstm.export import (
    ExportError,
    Quantization,
    calibration,
    to_tflite,
)

T, F = 6, 3


def _model(rng, units=4, outputs=2, activation=None):
    model = keras.Sequential(
        [
            keras.Input((T, F)),
            keras_lstm.LSTM(units),
            keras.layers.Dense(outputs, activation=activation),
        ]
    )
    return seeded(model, rng)


@pytest.fixture(scope="module")
def data():
    return (
        np.random.default_rng(5).standard_normal((40, T, F)).astype("float32")
    )


def test_int8_is_checked_on_sequences_calibration_never_saw(
    rng, data, tmp_path
):
    report = to_tflite(
        _model(rng),
        tmp_path / "m.tflite",
        quantization="int8",
        representative_data=data,
    )
    split = calibration.split(data, None, calibrated=True)
    assert report.calibration_sequences == 32 == split.calibration.shape[0]
    assert report.check_sequences == 8 == split.check.shape[0]
    assert report.check_set.startswith("held out from representative_data")
    assert report.max_abs_error <= report.tolerance, report


def test_check_data_verifies_and_everything_calibrates(rng, data, tmp_path):
    check = np.random.default_rng(6).standard_normal((5, T, F))
    report = to_tflite(
        _model(rng),
        tmp_path / "m.tflite",
        quantization="int8",
        representative_data=data,
        check_data=check.astype("float64"),  # cast, as the data is
    )
    assert report.calibration_sequences == 40
    assert report.check_sequences == 5
    assert report.check_set == "check_data (5 sequences)"


def test_without_data_the_check_says_it_was_generated(rng, tmp_path):
    report = to_tflite(_model(rng), tmp_path / "m.tflite")
    assert report.check_set.startswith("generated (16 random-normal")
    assert report.calibration_sequences == 0


def test_float_check_runs_on_all_the_representative_data(rng, data, tmp_path):
    report = to_tflite(
        _model(rng), tmp_path / "m.tflite", representative_data=data
    )
    assert report.check_sequences == 40 and report.calibration_sequences == 0
    assert "nothing is calibrated" in report.check_set


def test_float_tolerance_scales_with_large_outputs(rng, data, tmp_path):
    # Outputs around 280 (a regression onto raw units): float32 rounding
    # alone is ~1e-4 there, which the former absolute 1e-4 refused.
    model = _model(rng, outputs=1)
    kernel, _ = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 50, np.array([280.0], "float32")])
    expected = np.asarray(model(data))
    assert np.abs(expected).max() > 200

    report = to_tflite(model, tmp_path / "m.tflite", representative_data=data)

    magnitude = float(np.abs(expected).max())
    assert report.tolerance == pytest.approx(1e-4 * magnitude, rel=1e-6)
    # The error itself stays at float32 rounding of the outputs.
    assert report.max_abs_error <= 1e-6 * magnitude, report


@pytest.mark.parametrize(
    "quantization, magnitude, expected",
    [
        ("none", 0.5, 1e-4),
        ("none", 280.0, 2.8e-2),
        ("float16", 280.0, 2.8 + 1e-2 * 3.0),
        ("dynamic", 2.0, 0.1 + 5e-2 * 3.0),
    ],
)
def test_default_float_tolerances(quantization, magnitude, expected):
    bound = Quantization(quantization).default_tolerance(
        output_range=3.0, output_magnitude=magnitude
    )
    assert bound == pytest.approx(expected, rel=1e-12)


def test_argmax_agreement_for_classifiers_only(rng, data, tmp_path):
    classifier = to_tflite(
        _model(rng, outputs=3, activation="softmax"),
        tmp_path / "c.tflite",
        quantization="int8",
        representative_data=data,
    )
    # Measured 1.0 on the 8 held-out sequences.
    assert classifier.argmax_agreement >= 7 / 8, classifier
    regression = to_tflite(_model(rng, outputs=1), tmp_path / "r.tflite")
    assert regression.argmax_agreement is None


@pytest.mark.parametrize(
    "quantization, calibration_advice",
    [("none", False), ("dynamic", False), ("int8", True)],
)
def test_refusal_names_tolerance_and_check_data(
    quantization, calibration_advice, rng, data, tmp_path
):
    with pytest.raises(ExportError) as caught:
        to_tflite(
            _model(rng),
            tmp_path / "m.tflite",
            quantization=quantization,
            representative_data=data,
            tolerance=1e-12,
        )
    message = str(caught.value)
    assert "`tolerance=`" in message and "`check_data=`" in message
    assert ("`representative_data=`" in message) == calibration_advice
    assert "past the tolerance 1e-12" in message
    assert list(tmp_path.iterdir()) == []


def test_check_data_must_match_the_model(rng, tmp_path):
    with pytest.raises(ValueError, match="`check_data`.*num_sequences"):
        to_tflite(
            _model(rng),
            tmp_path / "m.tflite",
            check_data=np.zeros((2, T, F + 1)),
        )
    with pytest.raises(ValueError, match="`check_data` has sequences of 4"):
        to_tflite(
            _model(rng), tmp_path / "m.tflite", check_data=np.zeros((2, 4, F))
        )
