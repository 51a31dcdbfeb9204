"""`keras_lstm.export.lowering`: the fused-LSTM function and model rebuild.

The reference is always `keras.layers.LSTM` (or the original model) with
seeded weights. Tolerances (float32):
- fused function body vs `keras.layers.LSTM`: max abs error <= 1e-6, the
  same products in a different summation order (see test_layers.py);
- rebuilt model vs original: <= 1e-6, for the same reason.
Conversion to TFLite is tested in test_tflite.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from seeding import seeded

import keras_lstm
from keras_lstm.export import lowering, models
from keras_lstm.layers import lowering as lowering_scope

ATOL = 1e-6


def _keras_lstm(x, units, go_backwards, rng):
    layer = keras.layers.LSTM(
        units, return_sequences=True, go_backwards=go_backwards
    )
    layer.build(x.shape)
    layer.set_weights(
        [
            (rng.standard_normal(w.shape) / np.sqrt(w.shape[0])).astype(
                "float32"
            )
            for w in layer.get_weights()
        ]
    )
    return layer


@settings(max_examples=8, deadline=None)
@given(
    batch=st.integers(1, 3),
    time=st.integers(1, 7),
    features=st.integers(1, 4),
    units=st.integers(1, 5),
    go_backwards=st.booleans(),
)
def test_fused_function_matches_keras_lstm(
    batch, time, features, units, go_backwards
):
    rng = np.random.default_rng(batch * 1000 + time * 100 + units)
    x = rng.standard_normal((batch, time, features)).astype("float32")
    layer = _keras_lstm(x, units, go_backwards, rng)
    expected = np.asarray(layer(x))
    kernel, recurrent_kernel, bias = layer.get_weights()
    zeros = np.zeros((batch, units), "float32")
    fn = lowering.fused_lstm_function(go_backwards=go_backwards)
    last, outputs, h, c, _ = fn(x, zeros, zeros, kernel, recurrent_kernel, bias)
    error = np.abs(np.asarray(outputs) - expected).max()
    assert error <= ATOL, f"max abs error {error}"
    # Outputs are in processing order, as Keras returns them.
    error = np.abs(np.asarray(last) - expected[:, -1]).max()
    assert error <= ATOL, f"last output: max abs error {error}"
    np.testing.assert_array_equal(np.asarray(h), np.asarray(last))


@pytest.mark.parametrize("go_backwards", [False, True])
def test_fused_function_carries_the_converter_contract(go_backwards):
    fn = lowering.fused_lstm_function(go_backwards=go_backwards)
    specs = [
        tf.TensorSpec((2, 5, 3)),
        tf.TensorSpec((2, 4)),
        tf.TensorSpec((2, 4)),
        tf.TensorSpec((3, 16)),
        tf.TensorSpec((4, 16)),
        tf.TensorSpec((16,)),
    ]
    concrete = fn.get_concrete_function(*specs)
    attrs = concrete.function_def.attr
    assert attrs["api_implements"].s.decode().startswith("lstm_")
    assert attrs["time_major"].b is False
    assert attrs["go_backwards"].b is go_backwards
    assert len(concrete.outputs) == 5
    other = lowering.fused_lstm_function(go_backwards=go_backwards)
    other_attrs = other.get_concrete_function(*specs).function_def.attr
    assert other_attrs["api_implements"] != attrs["api_implements"], (
        "every layer needs its own lstm_<uuid>"
    )


def _model(kind):
    inputs = keras.Input((6, 3))
    if kind == "keras_lstm":
        x = keras.layers.LSTM(4, return_sequences=True)(inputs)
        x = keras.layers.LSTM(5)(x)
    elif kind == "rnn_cell":
        x = keras.layers.RNN(
            keras_lstm.LSTMCell(4), return_sequences=True, go_backwards=True
        )(inputs)
        x = keras.layers.RNN(keras.layers.LSTMCell(5))(x)
    elif kind == "bidirectional":
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(4, return_sequences=True), merge_mode="sum"
        )(inputs)
        x = keras_lstm.LSTM(5)(x)
    elif kind == "nested":
        inner = keras.Sequential(
            [keras.Input((6, 3)), keras.layers.LSTM(4, return_sequences=True)]
        )
        x = keras_lstm.LSTM(5)(inner(inputs))
    elif kind == "normalization":
        norm = keras.layers.Normalization()
        norm.adapt(np.random.default_rng(3).normal(2.0, 3.0, (64, 6, 3)))
        x = keras.layers.Dropout(0.5)(keras_lstm.LSTM(5)(norm(inputs)))
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _lstms(model):
    return [
        layer
        for layer in models.iter_layers(model)
        if models.is_lstm_layer(layer)
    ]


@pytest.mark.parametrize(
    "kind",
    ["keras_lstm", "rnn_cell", "bidirectional", "nested", "normalization"],
)
def test_export_model_uses_keras_lstm_with_the_same_weights(kind, rng):
    model = seeded(_model(kind), rng)
    x = rng.standard_normal((3, 6, 3)).astype("float32")
    expected = np.asarray(model(x))
    before = [w.copy() for w in model.get_weights()]

    export = lowering.export_model(model, batch_size=3, timesteps=6)

    assert tuple(export.inputs[0].shape) == (3, 6, 3)
    lstms = _lstms(export)
    assert lstms
    assert all(isinstance(layer, keras_lstm.LSTM) for layer in lstms)
    assert len(lstms) == len(_lstms(model))
    error = np.abs(np.asarray(export(x)) - expected).max()
    assert error <= ATOL, f"max abs error {error}"
    # The original model is left alone.
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_lowering_routes_every_lstm_through_the_fused_function(rng):
    model = lowering.export_model(
        seeded(_model("bidirectional"), rng), batch_size=2, timesteps=6
    )
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    expected = np.asarray(model(x))
    calls = []

    def counting(*args):
        calls.append(args[0].name)
        return lowering.fused_sequence(*args)

    with lowering_scope(counting):
        actual = np.asarray(tf.function(model)(x))
    assert len(calls) == 3, calls  # forward, backward, second LSTM
    error = np.abs(actual - expected).max()
    assert error <= ATOL, f"max abs error {error}"


def test_external_state_step_matches_the_first_keras_step(rng):
    inputs = keras.Input((None, 3))
    x = keras.layers.LSTM(4, return_sequences=True)(inputs)
    model = seeded(keras.Model(inputs, keras.layers.LSTM(5)(x)), rng)
    x = rng.standard_normal((2, 1, 3)).astype("float32")
    export = lowering.export_model(model, batch_size=2, timesteps=1)
    step = lowering.ExternalStateStep()
    with lowering_scope(step):
        actual = np.asarray(export(x))
    assert [layer.units for layer in step.layers] == [4, 5]
    assert len(step.new_states) == 2
    np.testing.assert_array_equal(np.asarray(step.new_states[1][0]), actual)
    error = np.abs(actual - np.asarray(model(x))).max()
    assert error <= ATOL, f"max abs error {error}"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "relu"}, "activation='relu'"),
        ({"recurrent_activation": "hard_sigmoid"}, "sigmoid"),
        ({"return_state": True}, "return_state"),
        ({"stateful": True}, "streaming=True"),
    ],
)
def test_configurations_the_fused_op_cannot_express_are_refused(kwargs, match):
    batch = 1 if kwargs.get("stateful") else None
    inputs = keras.Input((6, 3), batch_size=batch)
    outputs = keras.layers.LSTM(4, **kwargs)(inputs)
    if kwargs.get("return_state"):
        outputs = outputs[0]
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match=match):
        lowering.check_model(model)


@pytest.mark.parametrize(
    "layer, match",
    [
        (keras.layers.GRU(4), "only LSTM layers"),
        (
            keras.layers.Bidirectional(keras_lstm.LSTM(4)),
            "Bidirectional",
        ),
        (keras_lstm.LSTM(4, go_backwards=True), "go_backwards"),
    ],
)
def test_layers_refused_for_streaming(layer, match):
    model = keras.Sequential([keras.Input((6, 3)), layer])
    with pytest.raises(ValueError, match=match):
        lowering.check_model(model, streaming=True)


def test_fused_sequence_refuses_mask_initial_state_and_dynamic_batch(rng):
    layer = keras_lstm.LSTM(4)
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    layer(x)
    zeros = [tf.zeros((2, 4)), tf.zeros((2, 4))]
    with pytest.raises(ValueError, match="mask"):
        lowering.fused_sequence(layer, x, zeros, tf.ones((2, 6), bool), False)
    with pytest.raises(ValueError, match="initial_state"):
        lowering.fused_sequence(layer, x, [tf.ones((2, 4))] * 2, None, False)

    @tf.function(input_signature=[tf.TensorSpec((None, 6, 3))])
    def dynamic(sequences):
        state = [tf.zeros((tf.shape(sequences)[0], 4))] * 2
        return lowering.fused_sequence(layer, sequences, state, None, False)

    with pytest.raises(ValueError, match="batch size is not fixed"):
        dynamic.get_concrete_function()


def test_subclassed_models_are_refused():
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.lstm = keras_lstm.LSTM(4)

        def call(self, x):
            return self.lstm(x)

    model = Classifier()
    model(np.zeros((1, 6, 3), "float32"))
    with pytest.raises(ValueError, match="Functional or Sequential"):
        lowering.export_model(model, batch_size=1, timesteps=6)
