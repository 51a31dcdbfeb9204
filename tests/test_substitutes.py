"""keras.io's LSTM encoder-decoders export, and run on TFLite Micro.

Two models with their keras.io definitions at small sizes, trained briefly
on synthetic data with a learnable signal (fixed seeds), and judged on a
held-out split against Keras (the reference):

- LSTM autoencoder: LSTM -> RepeatVector -> LSTM(return_sequences) ->
  TimeDistributed(Dense), reconstructing sine waves;
- addition_rnn: LSTM -> RepeatVector -> LSTM(return_sequences) ->
  Dense(softmax), adding two 2-digit numbers written as characters.

Bounds (issue 11's acceptance, `zoo.py`): float files within 1e-4 *
max(1, |y|) per element (the fused kernel does Keras's float32 arithmetic
in another order, measured ~1e-6); int8 files, on LiteRT and on TFLite
Micro, within 10 % relative MSE (autoencoder) or 2 accuracy points
(addition) of Keras float's. Measured: MSE 0.3226 (LiteRT) / 0.3227
(TFLM) vs 0.3229; accuracy 40.2 % / 40.1 % vs 40.3 %.

Before the lowering kept the time dimension static, the autoencoder's
file emitted one step; RepeatVector converted to TILE, which TFLite Micro
cannot run. `substitutes` lowers it to RESHAPE + MUL instead.
"""

import keras
import numpy as np
import pytest
from zoo import (
    RUNTIMES,
    assert_float_matches,
    assert_int8_keeps_the_metric,
    export_zoo,
    run_on,
)

from keras_lstm.export import (
    load_tflite,
    lowering,
    substitutes,
    to_tflite,
    vela_summary,
)

T, F = 12, 2  # Autoencoder: sequence length, features.
DIGITS = 2
CHARS = "0123456789+ "
MAXLEN = 2 * DIGITS + 1


def _waves(rng, n):
    steps = np.arange(T)[None, :, None]
    frequency = rng.uniform(0.3, 0.9, (n, 1, F))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, F))
    return np.sin(frequency * steps + phase).astype("float32")


def _one_hot(text, length):
    out = np.zeros((length, len(CHARS)), "float32")
    for i, char in enumerate(text.ljust(length)):
        out[i, CHARS.index(char)] = 1
    return out


def _sums(rng, n):
    a, b = rng.integers(0, 10**DIGITS, (2, n))
    x = np.stack(
        [_one_hot(f"{i}+{j}", MAXLEN) for i, j in zip(a, b, strict=True)]
    )
    y = np.stack(
        [_one_hot(str(i + j), DIGITS + 1) for i, j in zip(a, b, strict=True)]
    )
    return x, y


def _autoencoder():
    # keras.io / "LSTM autoencoder": encoder, repeat, decoder, per-step Dense.
    return keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.LSTM(16),
            keras.layers.RepeatVector(T),
            keras.layers.LSTM(16, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(F)),
        ]
    )


def _addition_rnn():
    # keras.io/examples/nlp/addition_rnn, one decoder layer, 32 units.
    return keras.Sequential(
        [
            keras.Input((MAXLEN, len(CHARS))),
            keras.layers.LSTM(32),
            keras.layers.RepeatVector(DIGITS + 1),
            keras.layers.LSTM(32, return_sequences=True),
            keras.layers.Dense(len(CHARS), activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def autoencoder():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = _waves(rng, 448)
    train, held_out = x[:384], x[384:]
    model = _autoencoder()
    model.compile("adam", "mse")
    model.fit(train, train, epochs=15, batch_size=32, verbose=0)
    return model, train, held_out, held_out


@pytest.fixture(scope="module")
def addition():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = _sums(rng, 2000)
    model = _addition_rnn()
    model.compile("adam", "categorical_crossentropy")
    model.fit(x[:1600], y[:1600], epochs=8, batch_size=32, verbose=0)
    return model, x[:1600], x[1600:], y[1600:]


@pytest.fixture(scope="module")
def exported(autoencoder, addition, tmp_path_factory):
    """{(model name, quantization): (report, Keras outputs, data, target)}.

    Default criteria throughout: addition_rnn's int8 softmax was refused
    by the former max-abs bound (0.096 against 0.081) while it classified
    as well as float; it is judged by its decisions now.
    """
    return export_zoo(
        {"autoencoder": autoencoder, "addition_rnn": addition},
        tmp_path_factory.mktemp("zoo"),
        calibration_limit=256,
    )


MODELS = ["autoencoder", "addition_rnn"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_ops_are_fused_and_tflite_micro_ready(exported, name):
    for quantization in ("none", "int8"):
        report = exported[name, quantization][0]
        assert report.fused_lstm_ops == 2
        assert "TILE" not in report.ops and "MUL" in report.ops
        # TimeDistributed(Dense) and Dense: one FULLY_CONNECTED, no unroll.
        assert report.ops.count("FULLY_CONNECTED") == 1, report.ops
        assert report.tflite_micro_blockers == ()


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
    metric = "mse" if name == "autoencoder" else "accuracy"
    assert_int8_keeps_the_metric(actual, expected, target, metric)


@pytest.mark.slow
def test_int8_repeat_runs_on_the_npu(exported):
    summary = vela_summary(exported["addition_rnn", "int8"][0].path)
    assert summary.cpu_operators == 0, summary.log[-2000:]


def test_time_distributed_of_any_layer_exports_every_step(tmp_path):
    # Not substituted (only TimeDistributed(Dense) is): Keras loops over the
    # static time axis, which the fused op's output now has.
    inputs = keras.Input((7, 3))
    x = keras.layers.LSTM(4, return_sequences=True)(inputs)
    outputs = keras.layers.TimeDistributed(keras.layers.Activation("relu"))(x)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(5, 7, 3)).astype("float32")
    report = to_tflite(model, tmp_path / "m.tflite", check_data=x)
    actual = load_tflite(report.path).predict(x)
    assert actual.shape == (5, 7, 4)
    error = np.abs(actual - model.predict(x, verbose=0))
    assert error.max() <= 1e-5, error.max()


def test_export_clone_substitutes_and_leaves_the_model(autoencoder):
    model = autoencoder[0]
    clone = lowering.export_model(model, batch_size=2, timesteps=T)
    kinds = [type(layer) for layer in clone.layers]
    assert substitutes.RepeatByBroadcast in kinds
    assert substitutes.DenseOverTime in kinds
    assert keras.layers.RepeatVector not in kinds
    assert keras.layers.RepeatVector in [type(la) for la in model.layers]
    x = autoencoder[2][:2]
    np.testing.assert_allclose(
        clone(x), model(x), atol=1e-5, err_msg="clone differs from model"
    )


@pytest.mark.parametrize("n", [1, 3, 30])
def test_repeat_by_broadcast_equals_repeat_vector(n):
    x = np.random.default_rng(n).normal(size=(4, 5)).astype("float32")
    np.testing.assert_array_equal(
        substitutes.RepeatByBroadcast(n)(x), keras.layers.RepeatVector(n)(x)
    )
