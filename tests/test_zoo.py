"""keras.io's plain LSTM models export float and int8, judged held out.

Two keras.io definitions at small sizes, trained briefly on synthetic data
with a learnable signal (fixed seeds), exported with calibration on the
training split and verified (`check_data=`) on the held-out split:

- timeseries weather forecasting: LSTM(32) -> Dense(1), a regression;
- Conv1D -> MaxPooling1D -> LSTM -> Dense(softmax), the usual audio / IMU
  front end, a classification.

Bounds: `zoo.py` (issue 11's acceptance). The other zoo models live in
test_substitutes.py (RepeatVector, TimeDistributed), test_inputs.py
(Embedding), test_masking.py (masks) and test_multi_io.py (seq2seq).
"""

import keras
import numpy as np
import pytest
from zoo import (
    RUNTIMES,
    accuracy,
    assert_float_matches,
    assert_int8_keeps_the_metric,
    export_zoo,
    run_on,
)

import keras_lstm

T_WEATHER, F_WEATHER = 24, 5
T_CONV, F_CONV = 32, 3


def _weather(rng, n):
    """Smooth multichannel series; target: channel 0 one step ahead."""
    steps = rng.normal(0.0, 0.3, size=(n, T_WEATHER + 1, F_WEATHER))
    series = np.cumsum(steps, axis=1)
    series[..., 1] = np.sin(np.linspace(0, 3, T_WEATHER + 1)) + series[..., 1]
    x = series[:, :-1].astype("float32")
    y = series[:, -1, :1].astype("float32")
    return x, y


def _bumps(rng, n):
    """Noise; class 1 when channel 0 holds a short bump, 0 otherwise."""
    x = rng.normal(0.0, 0.5, size=(n, T_CONV, F_CONV)).astype("float32")
    y = rng.integers(0, 2, size=n)
    for row in np.flatnonzero(y):
        start = rng.integers(0, T_CONV - 4)
        x[row, start : start + 4, 0] += 2.0
    return x, y


@pytest.fixture(scope="module")
def weather():
    keras.utils.set_random_seed(0)
    x, y = _weather(np.random.default_rng(0), 640)
    model = keras.Sequential(
        [
            keras.Input((T_WEATHER, F_WEATHER)),
            keras_lstm.LSTM(32),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    model.fit(x[:512], y[:512], epochs=8, batch_size=32, verbose=0)
    return model, x[:512], x[512:], y[512:]


@pytest.fixture(scope="module")
def conv1d():
    keras.utils.set_random_seed(0)
    x, y = _bumps(np.random.default_rng(1), 640)
    model = keras.Sequential(
        [
            keras.Input((T_CONV, F_CONV)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras_lstm.LSTM(16),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:512], y[:512], epochs=8, batch_size=32, verbose=0)
    return model, x[:512], x[512:], y[512:]


@pytest.fixture(scope="module")
def exported(weather, conv1d, tmp_path_factory):
    """{(name, quantization): (report, Keras outputs, held out, target)}."""
    return export_zoo(
        {"weather": weather, "conv1d": conv1d},
        tmp_path_factory.mktemp("zoo"),
    )


MODELS = ["weather", "conv1d"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_files_are_fused_and_tflite_micro_ready(exported, name):
    for quantization in ("none", "int8"):
        report = exported[name, quantization][0]
        assert report.fused_lstm_ops == 1, report.ops
        assert report.tflite_micro_blockers == (), report.tflite_micro_blockers
        assert report.check_set == "check_data (128 sequences)"


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", MODELS)
def test_float_matches_keras_on_held_out(exported, name, runtime):
    report, expected, held_out, _ = exported[name, "none"]
    assert_float_matches(run_on(runtime, report.path, held_out), expected)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", MODELS)
def test_int8_keeps_the_task_metric(exported, name, runtime):
    report, expected, held_out, target = exported[name, "int8"]
    actual = run_on(runtime, report.path, held_out)
    metric = "mse" if name == "weather" else "accuracy"
    if metric == "accuracy":
        assert accuracy(expected, target) >= 0.9  # the task is learnt
    assert_int8_keeps_the_metric(actual, expected, target, metric)
