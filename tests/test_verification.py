"""Verification: held out, judged as users judge, and broken files refused.

References are the Keras models themselves (`verification.keras_predict`).
Three questions, each with its own test: the lowering at float tolerance,
the integer LSTMs' fidelity in output quanta (a deliberately broken file
must be refused, a lossy one pass), and the loss by the output's kind.
"""

import warnings

import keras
import numpy as np
import pytest
from seeding import seeded

import keras_lstm
from keras_lstm.export import (
    ExportError,
    Quantization,
    calibration,
    fidelity,
    flatbuffer,
    rewrite,
    to_tflite,
    verification,
    verify_tflite,
)
from keras_lstm.export import lowering as export_lowering
from keras_lstm.export.flatbuffer import LSTM
from keras_lstm.export.verification import OutputKind

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
    # Two linear outputs: values, judged relative to their spread.
    assert report.tolerance is None
    checked = report.verification
    assert checked.kinds == (OutputKind.VALUES,)
    assert "spread" in checked.criteria[0]
    assert checked.losses[0].relative_rms <= verification.MAX_RELATIVE_ERROR
    # The lowering was proved on the float32 twin, at float tolerance.
    assert checked.lowering_error <= checked.lowering_tolerance <= 1e-3
    assert checked.lstm_error_quanta <= fidelity.FAITHFUL_QUANTA


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
    "quantization, kind, options, expected",
    [
        ("none", OutputKind.VALUES, {}, "max abs error <= 0.028"),
        ("none", OutputKind.CLASSES, {}, "max abs error <= 0.028"),
        ("int8", OutputKind.VALUES, {}, "RMS error <= 0.1 x the spread"),
        ("dynamic", OutputKind.CLASSES, {}, "decision agreement >= 98.0%"),
        ("int8", OutputKind.BINARY, {"min_agreement": 0.9}, ">= 90.0%"),
        ("int8", OutputKind.VALUES, {"max_relative_error": 0.2}, "<= 0.2 x"),
        ("float16", OutputKind.CLASSES, {"tolerance": 0.5}, "max abs <= 0.5"),
    ],
)
def test_criterion_fits_the_mode_and_the_output(
    quantization, kind, options, expected
):
    # float32 files: float rounding, 1e-4 of the largest |output| (280).
    outputs = np.array([[280.0, -3.0]])
    rule = verification.criterion(
        Quantization(quantization), outputs, **options
    )
    assert expected.replace("abs <=", "abs error <=") in rule.describe(kind)


def test_decisions_judge_classes_and_relative_error_judges_values():
    rule = verification.Criterion()
    # Half the rows are near ties (Keras's margin 0.01 < TIE_MARGIN).
    expected = np.array([[0.50, 0.49, 0.01], [0.1, 0.8, 0.1]] * 50)
    # The file flips every tie: no decision a user would see changes.
    ties_flipped = expected[:, [1, 0, 2]] * [[1, 1, 1]]
    ties_flipped[1::2] = expected[1::2]
    kept = verification.loss(ties_flipped, expected, OutputKind.CLASSES)
    assert kept.near_ties == 0.5 and kept.decision_agreement == 1.0
    assert rule.problem(kept) is None
    # One decisive row in fifty flipped: 98 %, still within.
    decisive = expected.copy()
    decisive[1] = [0.8, 0.1, 0.1]
    held = verification.loss(decisive, expected, OutputKind.CLASSES)
    assert held.decision_agreement == 0.98 and rule.problem(held) is None
    decisive[3] = [0.8, 0.1, 0.1]
    flipped = verification.loss(decisive, expected, OutputKind.CLASSES)
    assert "agree with Keras's on 96.0%" in rule.problem(flipped)
    # Sigmoid outputs: each element a decision at 0.5.
    p = np.array([[0.9], [0.1], [0.505]] * 10)
    binary = verification.loss(1 - p, p, OutputKind.BINARY)
    assert binary.decision_agreement == 0.0
    assert binary.near_ties == pytest.approx(1 / 3)
    values = verification.loss(expected + 0.01, expected, OutputKind.VALUES)
    assert values.relative_rms == pytest.approx(0.01 / expected.std())
    assert values.decision_agreement is None and rule.problem(values) is None
    blown = verification.loss(expected * 3, expected, OutputKind.VALUES)
    assert "of the spread" in rule.problem(blown)


def test_argmax_agreement_for_classifiers_only(rng, data, tmp_path):
    classifier = to_tflite(
        _model(rng, outputs=3, activation="softmax"),
        tmp_path / "c.tflite",
        quantization="int8",
        representative_data=data,
    )
    # Softmax: judged by decisions; measured 1.0 on the 8 held out.
    assert classifier.verification.kinds == (OutputKind.CLASSES,)
    assert classifier.argmax_agreement >= verification.MIN_AGREEMENT
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
    assert "p99" in message and "RMS" in message
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


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    """An int8 regression file, its trained model and held-out data."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((96, T, F)).astype("float32")
    y = x[:, :, :1].sum(axis=1) / np.sqrt(T)  # a learnable running sum
    model = _model(rng, units=8, outputs=1)
    model.compile("adam", "mse")
    model.fit(x[:72], y[:72], epochs=30, batch_size=8, verbose=0)
    data, held_out = x[:72], x[72:]
    path = tmp_path_factory.mktemp("regression") / "m.tflite"
    to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=data,
        check_data=held_out,
    )
    return model, path, held_out


def _with_scale(content, operand, factor):
    """The file with the first LSTM's `operand` scale multiplied."""
    model = flatbuffer.unpack(content)
    subgraph = model.subgraphs[0]
    names = flatbuffer.object_op_names(model, subgraph)
    op = subgraph.operators[names.index(flatbuffer.LSTM_OP)]
    tensor = subgraph.tensors[op.inputs[operand]]
    tensor.quantization.scale = np.array(
        tensor.quantization.scale * factor, np.float32
    )
    return rewrite._pack(model)


def test_faithful_int8_file_passes_on_fresh_data(regression):
    model, path, _ = regression
    fresh = np.random.default_rng(4).standard_normal((30, T, F))
    checked = verify_tflite(model, path, fresh.astype("float32"))
    # Measured 0.86 quanta: the integer LSTM rounds, it does not drift.
    assert checked.lstm_error_quanta <= 1.0, checked
    assert checked.sequences == 30 and checked.tolerance is None
    assert not checked.problems(
        [np.asarray(model(fresh))],
        [np.asarray(model(fresh))],
    )


@pytest.mark.parametrize(
    "operand, factor",
    [
        # A scale the kernel cannot express (it shifts by powers of two).
        (LSTM.cell_state, 3.0),
        # h read back at a scale other than the one it was written at.
        (LSTM.hidden_state, 2.0),
    ],
)
def test_a_deliberately_broken_file_is_refused(
    regression, operand, factor, tmp_path
):
    model, path, held_out = regression
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(_with_scale(path.read_bytes(), operand, factor))
    with pytest.raises(ExportError, match="not a faithful quantization"):
        verify_tflite(model, broken, held_out)
    # The same break, judged by the loss alone, could pass: what refuses
    # it is the fidelity check, not a bound on the outputs.


def test_check_data_is_checked_whole(rng, tmp_path):
    model = _model(rng, outputs=1)
    check = np.random.default_rng(7).standard_normal((300, T, F))
    report = to_tflite(model, tmp_path / "m.tflite", check_data=check)
    assert report.check_sequences == 300
    assert report.check_set == "check_data (300 sequences)"


def test_calibration_samples_a_large_set_with_a_seed():
    data = np.arange(60, dtype="float32").reshape(60, 1, 1)
    split = calibration.split(data, None, calibrated=True, limit=10)
    assert split.check.shape[0] == 12
    assert split.calibration.shape[0] == 10
    assert "a random 10 of the other 48" in split.calibration_name
    assert f"seed {calibration.SAMPLE_SEED}" in split.calibration_name
    # Never a leading slice; never a held-out sequence.
    rows = split.calibration.ravel()
    assert not set(rows) & set(split.check.ravel())
    assert rows.max() - rows.min() > 30
    again = calibration.split(data, None, calibrated=True, limit=10)
    np.testing.assert_array_equal(again.calibration, split.calibration)


def test_clipped_check_data_is_counted_and_warned(rng, tmp_path):
    model = _model(rng, outputs=1)
    narrow = 0.1 * np.random.default_rng(8).standard_normal((40, T, F))
    wide = 3.0 * np.random.default_rng(9).standard_normal((20, T, F))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = to_tflite(
            model,
            tmp_path / "m.tflite",
            quantization="int8",
            representative_data=narrow.astype("float32"),
            check_data=wide.astype("float32"),
            max_relative_error=10.0,
        )
    ranges = report.verification.ranges
    assert ranges.inputs_outside == 1.0, ranges
    messages = [str(w.message) for w in caught]
    assert any("outside the integer file's range" in m for m in messages)


def test_verify_tflite_refuses_bad_arguments(regression):
    model, path, held_out = regression
    with pytest.raises(FileNotFoundError, match="`path`"):
        verify_tflite(model, path.with_name("missing.tflite"), held_out)
    with pytest.raises(ValueError, match="`min_agreement`"):
        verify_tflite(model, path, held_out, min_agreement=1.5)
    with pytest.raises(ValueError, match="`check_data`"):
        verify_tflite(model, path, held_out[..., :1])


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_a_lowering_bug_is_refused_whatever_the_quantization(
    quantization, rng, data, tmp_path, monkeypatch
):
    # A lowering that misses Keras by 0.01, far under an int8 bound: the
    # float32 twin of the same lowering refuses it at float tolerance.
    exact = export_lowering.fused_sequence

    def off_by_a_hundredth(*args, **kwargs):
        last, outputs, states = exact(*args, **kwargs)
        return last + 0.01, outputs + 0.01, states

    monkeypatch.setattr(export_lowering, "fused_sequence", off_by_a_hundredth)
    message = (
        "past the tolerance"
        if quantization == "none"
        else "lowering computes something other than Keras"
    )
    with pytest.raises(ExportError, match=message):
        to_tflite(
            _model(rng, outputs=3, activation="softmax"),
            tmp_path / "m.tflite",
            quantization=quantization,
            representative_data=data,
        )
    assert list(tmp_path.iterdir()) == []
