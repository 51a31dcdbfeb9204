"""`gate_activations` against a NumPy reference of the LSTM equations."""

import keras
import numpy as np
import pytest

import keras_lstm

# Float32 against float64 NumPy over 6 steps: a few ulp per gate.
ATOL = 1e-6


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_lstm(x, kernel, recurrent_kernel, bias):
    """The textbook equations in float64, written independently of ours."""
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    record = {k: [] for k in ("i", "f", "cand", "o", "c", "h")}
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i = _sigmoid(z[:, :units])
        f = _sigmoid(z[:, units : 2 * units])
        cand = np.tanh(z[:, 2 * units : 3 * units])
        o = _sigmoid(z[:, 3 * units :])
        c = f * c + i * cand
        h = o * np.tanh(c)
        for key, value in zip(record, (i, f, cand, o, c, h), strict=True):
            record[key].append(value)
    return {k: np.stack(v, axis=1) for k, v in record.items()}


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras_lstm.LSTM(5, return_sequences=True),
        lambda: keras.layers.RNN(keras_lstm.LSTMCell(5), return_sequences=True),
        lambda: keras.layers.LSTM(5, return_sequences=True),
    ],
    ids=["keras_lstm.LSTM", "RNN(LSTMCell)", "keras.layers.LSTM"],
)
def test_gates_match_the_equations_and_the_layer(make, rng):
    x = rng.standard_normal((3, 6, 4)).astype("float32")
    layer = make()
    layer(x)
    layer.set_weights(
        [
            (0.5 * rng.standard_normal(w.shape)).astype("float32")
            for w in layer.get_weights()
        ]
    )
    gates = keras_lstm.gate_activations(layer, x)
    expected = _numpy_lstm(x.astype("float64"), *layer.get_weights())
    for field, key in zip(keras_lstm.LSTMGates._fields, expected, strict=True):
        got = getattr(gates, field)
        assert got.shape == (3, 6, 5), field
        err = np.abs(got - expected[key]).max()
        assert err <= ATOL, f"{field}: max abs error {err:.3g}"
    err = np.abs(gates.h - np.asarray(layer(x))).max()
    assert err <= ATOL, f"h against the layer output: max abs error {err:.3g}"


def test_go_backwards_gates_are_in_processing_order(rng):
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    layer = keras_lstm.LSTM(3, return_sequences=True, go_backwards=True)
    out = np.asarray(layer(x))
    gates = keras_lstm.gate_activations(layer, x)
    err = np.abs(gates.h - out).max()
    assert err <= ATOL, f"max abs error {err:.3g}"


def test_cell_and_initial_state(rng):
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    h0 = rng.standard_normal((2, 3)).astype("float32")
    c0 = rng.standard_normal((2, 3)).astype("float32")
    rnn = keras.layers.RNN(keras_lstm.LSTMCell(3), return_sequences=True)
    out = np.asarray(rnn(x, initial_state=[h0, c0]))
    gates = keras_lstm.gate_activations(rnn.cell, x, initial_state=[h0, c0])
    err = np.abs(gates.h - out).max()
    assert err <= ATOL, f"max abs error {err:.3g}"


def test_unbuilt_layer_is_refused():
    with pytest.raises(ValueError, match="not built yet"):
        keras_lstm.gate_activations(keras_lstm.LSTM(3), np.ones((1, 2, 3)))


def test_non_lstm_layer_is_refused():
    with pytest.raises(TypeError, match="must be a keras_lstm.LSTM"):
        keras_lstm.gate_activations(keras.layers.Dense(3), np.ones((1, 2, 3)))


def test_wrong_input_shape_is_refused(rng):
    layer = keras_lstm.LSTM(3)
    layer(np.ones((1, 2, 4), "float32"))
    with pytest.raises(ValueError, match="features=4"):
        keras_lstm.gate_activations(layer, np.ones((1, 2, 5)))
