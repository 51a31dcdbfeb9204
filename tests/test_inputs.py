"""Token models: `(batch, time)` ids -> Embedding -> LSTM export and run.

The zoo model is keras.io's bidirectional_lstm_imdb at small size: int32
ids -> Embedding -> 2 x Bidirectional(LSTM) -> Dense(sigmoid), trained on
synthetic "reviews" whose sentiment is carried by a few marker tokens
(fixed seeds), judged on a held-out split. Reference: the Keras model.

Tolerances (the issue's):
- float32 files: within 1e-4 x max(1, |y|) of Keras on every held-out
  output (measured ~1e-7: the same float32 arithmetic in another order).
- int8 files: accuracy within 2 points of the Keras float model's, on
  LiteRT and on TFLite Micro.
"""

import keras
import numpy as np
import pytest
from zoo import lossy_bound

import keras_lstm
from keras_lstm.export import (
    inputs,
    load_tflite,
    run_tflite_micro,
    to_tflite,
)

VOCAB, T = 24, 12
GOOD, BAD = 22, 23  # marker tokens; ids 1..21 are neutral, 0 unused here
FLOAT_REL = 1e-4
INT8_POINTS = 2.0


def reviews(count, rng):
    """Random neutral ids with 1-3 markers; label: more GOOD than BAD."""
    x = rng.integers(1, GOOD, size=(count, T))
    y = np.zeros(count, np.int32)
    for i in range(count):
        markers = rng.choice([GOOD, BAD], size=int(rng.integers(1, 4)))
        x[i, rng.choice(T, size=markers.size, replace=False)] = markers
        y[i] = int((markers == GOOD).sum() > (markers == BAD).sum())
    return x.astype(np.int32), y


def imdb_model(lstm=keras.layers.LSTM, time=T, mask_zero=False):
    ids = keras.Input((time,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=mask_zero)(ids)
    x = keras.layers.Bidirectional(lstm(8, return_sequences=True))(x)
    x = keras.layers.Bidirectional(lstm(8))(x)
    return keras.Model(ids, keras.layers.Dense(1, activation="sigmoid")(x))


def accuracy(probabilities, labels):
    return 100 * float(np.mean((probabilities[:, 0] > 0.5) == labels))


@pytest.fixture(scope="module")
def trained():
    """The keras.io IMDB model, trained to learn the markers."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = reviews(512, rng)
    x_test, y_test = reviews(128, rng)
    model = imdb_model()
    model.compile("adam", "binary_crossentropy")
    model.fit(x_train, y_train, epochs=12, batch_size=32, verbose=0)
    return model, x_train, x_test, y_test


def test_the_zoo_model_learns_the_markers(trained):
    model, _, x_test, y_test = trained
    assert accuracy(np.asarray(model(x_test)), y_test) >= 90


def test_float_file_takes_token_ids_and_matches_keras(trained, tmp_path):
    model, _, x_test, _ = trained
    path = tmp_path / "imdb.tflite"

    report = to_tflite(model, path, check_data=x_test)

    assert report.input_kind is inputs.InputKind.TOKENS
    assert report.inputs[0].shape == (1, T)
    assert report.input_dtypes == ("int32",)
    assert report.ops[0] == "GATHER" and "SELECT" not in report.ops
    assert report.ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 4
    assert report.tflite_micro_ready, report.tflite_micro_blockers
    expected = np.asarray(model(x_test))
    bound = FLOAT_REL * max(1.0, float(np.abs(expected).max()))
    for name, actual in [
        ("litert", load_tflite(path).predict(x_test)),
        ("tflite_micro", run_tflite_micro(path, x_test[:32]).outputs),
    ]:
        error = np.abs(actual - expected[: len(actual)]).max()
        assert error <= bound, f"{name}: max abs error {error} > {bound}"


def test_int8_file_quantizes_the_table_not_the_ids(trained, tmp_path):
    model, x_train, x_test, y_test = trained
    path = tmp_path / "imdb_int8.tflite"

    report = to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=x_train,
        check_data=x_test,
    )

    assert report.input_dtypes == ("int32",)
    assert report.inputs[0].scale is None
    assert report.output_dtypes == ("int8",)
    from keras_lstm.export import flatbuffer

    gather = flatbuffer.operators(path.read_bytes())[0]
    assert gather.name == "GATHER"
    assert [t.type for t in gather.inputs] == ["INT8", "INT32"]
    assert report.tflite_micro_ready, report.tflite_micro_blockers
    reference = accuracy(np.asarray(model(x_test)), y_test)
    litert = accuracy(load_tflite(path).predict(x_test), y_test)
    micro = accuracy(run_tflite_micro(path, x_test).outputs, y_test)
    assert abs(litert - reference) <= INT8_POINTS, (reference, litert)
    assert abs(micro - reference) <= INT8_POINTS, (reference, micro)


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_streaming_token_file_takes_one_id_per_step(
    quantization, tmp_path, rng
):
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 6)(ids)
    x = keras_lstm.LSTM(8, return_sequences=True)(x)
    model = keras.Model(ids, keras.layers.Dense(3)(keras.layers.LSTM(5)(x)))
    data, _ = reviews(64, rng)
    path = tmp_path / "stream.tflite"

    report = to_tflite(
        model,
        path,
        quantization=quantization,
        representative_data=data,
        streaming=True,
    )

    assert report.inputs[0].shape == (1, 1)
    assert report.input_dtypes == ("int32",)
    runner = load_tflite(path)
    sequence = data[0]
    expected = np.asarray(model(sequence[None]))
    runner.reset()
    for token in sequence[:-1]:
        runner.step(int(token))  # a scalar id: the file's batch is 1
    last = runner.step(np.int32(sequence[-1]))
    assert last.shape == expected.shape
    # The same id as (batch,) and (batch, 1) frames.
    runner.reset()
    for t, token in enumerate(sequence):
        frame = np.array([token]) if t % 2 else np.array([[token]])
        again = runner.step(frame)
    np.testing.assert_array_equal(again, last)
    bound = lossy_bound(report, np.asarray(model(data[:4])))
    error = np.abs(last - expected).max()
    assert error <= bound, f"max abs error {error} > {bound}"
    micro = run_tflite_micro(path, data[:4]).outputs
    error = np.abs(micro - np.asarray(model(data[:4]))).max()
    assert error <= bound, f"TFLite Micro: max abs error {error} > {bound}"


def _token_model(time=T):
    ids = keras.Input((time,), dtype="int32")
    return keras.Model(
        ids, keras_lstm.LSTM(4)(keras.layers.Embedding(VOCAB, 4)(ids))
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"representative_data": np.zeros((4, T, 2), np.int32)},
            ValueError,
            r"argument `representative_data`.*\(num_sequences, timesteps\)",
        ),
        (
            {"check_data": np.zeros((4, T), np.float32)},
            TypeError,
            "argument `check_data`.*token ids.*float32",
        ),
        (
            {"check_data": np.full((4, T), VOCAB)},
            ValueError,
            r"argument `check_data`.*outside \[0, 24\)",
        ),
        (
            {"quantization": "int8"},
            ValueError,
            r"representative_data`: an integer array \(num_sequences, "
            r"timesteps\) of token ids in \[0, 24\)",
        ),
    ],
)
def test_token_data_refusals_name_the_argument(kwargs, error, match, tmp_path):
    with pytest.raises(error, match=match):
        to_tflite(_token_model(), tmp_path / "m.tflite", **kwargs)


def test_ids_read_by_something_else_than_an_embedding_are_refused(tmp_path):
    ids = keras.Input((T,))
    x = keras.layers.Reshape((T, 1))(ids)
    model = keras.Model(ids, keras_lstm.LSTM(4)(x))
    with pytest.raises(ValueError, match="read by one keras.layers.Embedding"):
        to_tflite(model, tmp_path / "m.tflite")


def test_runner_refuses_float_frames_for_a_token_file(tmp_path):
    path = tmp_path / "m.tflite"
    to_tflite(_token_model(), path)
    runner = load_tflite(path)
    with pytest.raises(ValueError, match="integer token ids"):
        runner.predict(np.zeros((2, T), np.float32))
    with pytest.raises(ValueError, match=r"shape \(num_sequences, timesteps\)"):
        runner.predict(np.zeros((2, T, 1), np.int32))
