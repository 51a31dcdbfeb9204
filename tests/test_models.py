"""`keras_lstm.export.models`: the one walk over a model's layers."""

import keras
import numpy as np
import pytest

import keras_lstm
from keras_lstm.export import models


def _wrapped_model():
    inputs = keras.Input((3, 4, 2), batch_size=2, name="x")
    inner = keras.Sequential(
        [keras.Input((12, 5)), keras.layers.LSTM(3, name="in_nested")],
        name="nested",
    )
    x = keras.layers.TimeDistributed(
        keras.layers.Dense(5, name="in_time"), name="time"
    )(inputs)
    x = keras.layers.Reshape((12, 5))(x)
    x = keras.layers.Bidirectional(
        keras_lstm.LSTM(3, return_sequences=True, name="fw"),
        backward_layer=keras_lstm.LSTM(
            3, return_sequences=True, go_backwards=True, name="bw"
        ),
        name="bidi",
    )(x)
    x = keras.layers.Dense(5)(x)
    return keras.Model(inputs, inner(x))


def test_iter_layers_walks_into_wrappers_and_nested_models():
    names = [layer.name for layer in models.iter_layers(_wrapped_model())]
    # Each wrapper before what it wraps; Bidirectional's two directions.
    for outer, inner in [
        ("time", "in_time"),
        ("bidi", "forward_fw"),
        ("bidi", "bw"),
        ("nested", "in_nested"),
    ]:
        assert names.index(outer) < names.index(inner), names
    lstms = [
        layer.name
        for layer in models.iter_layers(_wrapped_model())
        if models.is_lstm_layer(layer)
    ]
    assert lstms == ["forward_fw", "bw", "in_nested"]


def test_is_lstm_layer_takes_every_lstm_spelling_and_nothing_else():
    for layer in [
        keras_lstm.LSTM(2),
        keras.layers.LSTM(2),
        keras.layers.RNN(keras.layers.LSTMCell(2)),
        keras.layers.RNN(keras_lstm.LSTMCell(2)),
    ]:
        assert models.is_lstm_layer(layer), layer
    for layer in [
        keras.layers.GRU(2),
        keras.layers.Bidirectional(keras.layers.LSTM(2)),
        keras.layers.Dense(2),
    ]:
        assert not models.is_lstm_layer(layer), layer


def test_graph_models_are_sequential_or_functional():
    inputs = keras.Input((4, 2))
    functional = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    sequential = keras.Sequential([keras.Input((4, 2)), keras.layers.Dense(1)])

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert models.is_graph_model(functional)
    assert models.is_graph_model(sequential)
    subclassed = Subclassed(name="mine")
    assert not models.is_graph_model(subclassed)
    with pytest.raises(ValueError, match="'mine' is a subclassed Subclassed"):
        models.require_graph_model(subclassed)


def test_stateless_model_runs_the_whole_sequence_as_the_chunks_did():
    rng = np.random.default_rng(0)
    inputs = keras.Input(batch_shape=(1, 2, 3))
    lstm = keras_lstm.LSTM(4, stateful=True, return_sequences=True)
    model = keras.Model(inputs, keras.layers.Dense(2)(lstm(inputs)))
    assert models.stateful_layers(model) == [lstm]
    x = rng.normal(size=(1, 6, 3)).astype("float32")
    chunks = np.concatenate(
        [np.asarray(model(x[:, t : t + 2])) for t in range(0, 6, 2)], axis=1
    )
    copy = models.stateless_model(model)
    assert models.stateful_layers(copy) == []
    assert lstm.stateful  # the original is untouched
    whole = np.asarray(copy(x))
    np.testing.assert_allclose(
        whole, chunks, atol=1e-6, err_msg=f"{np.abs(whole - chunks).max()}"
    )
