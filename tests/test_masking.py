"""Masked models: exported without the mask, padding dropped by callers.

Reference: the masked Keras model on padded batches. Tolerances:
- float32 files: within 1e-4 x max(1, |y|) of Keras (measured ~1e-8).
- int8 files: accuracy within 2 points of the Keras float model's.
Each float check also asserts that ignoring the mask would be far off
(> 1e-2), so the match is evidence that the padding was dropped.
"""

import keras
import numpy as np
import pytest
from test_inputs import GOOD, T, accuracy, imdb_model, reviews
from zoo import lossy_bound

import keras_lstm
from keras_lstm.export import (
    contract,
    flatbuffer,
    load_tflite,
    masking,
    run_tflite_micro,
    to_tflite,
)

FLOAT_REL = 1e-4
INT8_POINTS = 2.0
F = 3


def pad(x, rng, side, low=3):
    """Keeps a random 3..T valid steps per sequence, pads `side` with 0."""
    x = np.array(x, copy=True)
    for row in x:
        keep = int(rng.integers(low, x.shape[1] + 1))
        if side == "right":
            row[keep:] = 0
        else:
            row[: x.shape[1] - keep] = 0
    return x


def _bound(expected):
    return FLOAT_REL * max(1.0, float(np.abs(expected).max()))


# ---------------------------------------------------------------------------
# The padding convention and the spans, without TensorFlow.


@pytest.mark.parametrize(
    "padding, x, starts, lengths",
    [
        (
            contract.Padding("token", 0),
            [[5, 6, 0, 0], [0, 0, 7, 8], [0, 9, 9, 0], [1, 2, 3, 4]],
            [0, 2, 1, 0],
            [2, 2, 2, 4],
        ),
        (
            contract.Padding("value", -1.0),
            np.array([[[1, -1], [-1, -1]], [[-1, -1], [-1, 2]]], float),
            [0, 1],
            [1, 1],
        ),
    ],
)
def test_spans_of_right_left_and_both_side_padding(padding, x, starts, lengths):
    got_starts, got_lengths = masking.spans(np.asarray(x), padding)
    assert got_starts.tolist() == starts
    assert got_lengths.tolist() == lengths


def test_holes_and_empty_sequences_are_refused():
    padding = contract.Padding("token", 0)
    with pytest.raises(ValueError, match="Sequence 1 .* padding at step 2"):
        masking.spans(np.array([[0, 2, 3, 0], [4, 5, 0, 6]]), padding)
    with pytest.raises(ValueError, match="Sequence 0 of `x` is all padding"):
        masking.spans(np.zeros((1, 3), int), padding)


def test_padding_round_trips_through_the_metadata_encoding():
    for padding in (
        contract.Padding("token", 0),
        contract.Padding("value", 0.5),
    ):
        assert contract.Padding.decode(padding.encode()) == padding


@pytest.mark.parametrize("side", ["right", "left"])
def test_keras_masked_last_output_is_the_trimmed_run(side, rng):
    """The premise: Keras's masked LSTM (and Bidirectional) returns, as its
    last output, what it returns on the valid steps alone."""
    layer = keras.layers.Bidirectional(keras.layers.LSTM(4))
    x = rng.standard_normal((1, 7, F)).astype("float32")
    valid = np.ones((1, 7), bool)
    valid[0, 4:] = False
    if side == "left":
        valid = valid[:, ::-1].copy()
    masked = np.asarray(layer(x, mask=valid))
    trimmed = np.asarray(layer(x[valid][None]))
    np.testing.assert_allclose(masked, trimmed, atol=1e-6)


# ---------------------------------------------------------------------------
# keras.io's IMDB model with Embedding(mask_zero=True).


@pytest.fixture(scope="module")
def masked_imdb():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = reviews(512, rng)
    x_train = np.concatenate(
        [pad(x_train[:256], rng, "right"), pad(x_train[256:], rng, "left")]
    )
    # Markers that padding removed no longer count.
    y_train = np.array(
        [int((r == GOOD).sum() > (r == GOOD + 1).sum()) for r in x_train]
    )
    x_test, _ = reviews(96, rng)
    model = imdb_model(mask_zero=True)
    model.compile("adam", "binary_crossentropy")
    model.fit(x_train, y_train, epochs=12, batch_size=32, verbose=0)
    return model, x_train, x_test, rng


@pytest.mark.parametrize("side", ["right", "left"])
def test_float_whole_sequence_file_gives_keras_masked_outputs(
    side, masked_imdb, tmp_path
):
    model, _, x_test, rng = masked_imdb
    path = tmp_path / "masked.tflite"
    report = to_tflite(model, path, batch_size=4)
    assert report.padding == contract.Padding("token", 0)
    assert flatbuffer.padding(path.read_bytes()) == report.padding
    assert "right- and left-padded" in report.check_set

    x = pad(x_test, rng, side)
    expected = np.asarray(model(x))
    actual = load_tflite(path).predict(x)
    error = np.abs(actual - expected).max()
    assert error <= _bound(expected), f"max abs error {error}"
    # Without the mask, Keras would give other outputs.
    unmasked = np.asarray(_unmasked(model)(x))
    assert np.abs(unmasked - expected).max() > 1e-2


def _unmasked(model):
    """The same weights with mask_zero=False: what ignoring padding gives."""
    copy = imdb_model(mask_zero=False)
    copy.set_weights(model.get_weights())
    return copy


def test_int8_masked_file_keeps_the_float_accuracy(masked_imdb, tmp_path):
    model, x_train, x_test, rng = masked_imdb
    x = np.concatenate(
        [pad(x_test[:48], rng, "right"), pad(x_test[48:], rng, "left")]
    )
    truth = np.array(
        [int((r == GOOD).sum() > (r == GOOD + 1).sum()) for r in x]
    )
    path = tmp_path / "masked_int8.tflite"
    report = to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=x_train,
        check_data=x,
    )
    assert report.input_dtypes == ("int32",)
    reference = accuracy(np.asarray(model(x)), truth)
    litert = accuracy(load_tflite(path).predict(x), truth)
    assert abs(litert - reference) <= INT8_POINTS, (reference, litert)


# ---------------------------------------------------------------------------
# Streaming files: only valid frames, on LiteRT and TFLite Micro.


def _masking_model(rng, time=None):
    sequences = keras.Input((time, F))
    x = keras.layers.Masking(mask_value=0.0)(sequences)
    x = keras.layers.LSTM(6, return_sequences=True)(x)
    x = keras_lstm.LSTM(5)(x)
    model = keras.Model(sequences, keras.layers.Dense(2)(x))
    from seeding import seeded

    return seeded(model, rng)


def _padded_frames(rng, count=8, steps=T):
    x = rng.standard_normal((count, steps, F)).astype("float32")
    for i, row in enumerate(x):
        keep = int(rng.integers(2, steps + 1))
        if i % 2:
            row[keep:] = 0.0
        else:
            row[: steps - keep] = 0.0
    return x


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_streaming_masked_file_on_litert_and_tflite_micro(
    quantization, rng, tmp_path
):
    model = _masking_model(rng)
    data = _padded_frames(rng, 64)
    x = _padded_frames(rng, 8)
    path = tmp_path / "stream.tflite"
    report = to_tflite(
        model,
        path,
        quantization=quantization,
        representative_data=data,
        streaming=True,
        timesteps=T,
    )
    assert report.padding == contract.Padding("value", 0.0)

    expected = np.asarray(model(x))
    bound = (
        _bound(expected)
        if quantization == "none"
        else lossy_bound(report, expected)
    )
    for name, actual in [
        ("litert", load_tflite(path).predict(x)),
        (
            "tflite_micro runner",
            load_tflite(path, backend="tflite_micro").predict(x),
        ),
        ("run_tflite_micro", run_tflite_micro(path, x).outputs),
    ]:
        error = np.abs(actual - expected).max()
        assert error <= bound, f"{name}: max abs error {error} > {bound}"


def test_masked_files_refuse_holes_and_say_what_tflite_micro_needs(
    rng, tmp_path
):
    model = _masking_model(rng, time=T)
    path = tmp_path / "whole.tflite"
    to_tflite(model, path)
    x = _padded_frames(rng, 2)
    x[1] = rng.standard_normal((T, F))
    x[1, 4] = 0.0
    runner = load_tflite(path)
    with pytest.raises(ValueError, match="padding at step 4, between valid"):
        runner.predict(x)
    with pytest.raises(ValueError, match="export with streaming=True"):
        run_tflite_micro(path, x[:1])
    with pytest.raises(ValueError, match="argument `check_data`.*step 4"):
        to_tflite(model, tmp_path / "again.tflite", check_data=x)


@pytest.mark.parametrize(
    "body, match",
    [
        (
            lambda x: keras_lstm.LSTM(4, return_sequences=True)(
                keras.layers.Masking()(x)
            ),
            "keeps the time axis",
        ),
        (
            lambda x: keras_lstm.LSTM(4)(
                keras.layers.Masking()(keras.layers.Dense(3)(x))
            ),
            "directly to the input",
        ),
        (
            # Was a LiteRT "RESHAPE failed to prepare" from inside the
            # export: the pooling's fixed shapes cannot follow the valid
            # steps' length.
            lambda x: keras.layers.GlobalAveragePooling1D()(
                keras_lstm.LSTM(4, return_sequences=True)(
                    keras_lstm.LSTM(4, return_sequences=True)(
                        keras.layers.Masking()(x)
                    )
                )
            ),
            "'global_average_pooling1d' .* reads the mask",
        ),
        (
            # Was a lowering that computed something else than Keras.
            lambda x: keras_lstm.LSTM(4)(
                keras.layers.LSTM(
                    4, return_sequences=True, go_backwards=True
                )(keras.layers.Masking()(x))
            ),
            "runs backwards .* returns sequences",
        ),
    ],
    ids=[
        "sequence_output",
        "mask_not_on_input",
        "pooling_reads_mask",
        "backwards_sequences",
    ],
)
def test_masks_the_file_cannot_reproduce_are_refused(body, match, tmp_path):
    sequences = keras.Input((T, F))
    model = keras.Model(sequences, body(sequences))
    with pytest.raises(ValueError, match=match):
        to_tflite(model, tmp_path / "m.tflite")
