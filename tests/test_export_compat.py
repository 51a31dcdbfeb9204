"""Every private reach-in of `keras_lstm.export._compat`, pinned.

These fail first when a new TensorFlow or Keras moves an internal: the fix
then belongs in `_compat` alone.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm.export import _compat


def test_supported_versions_are_the_installed_ones():
    installed = {"tensorflow": tf.__version__, "keras": keras.__version__}
    for package, version in installed.items():
        assert version.startswith(_compat.SUPPORTED[package]), (
            package,
            version,
            _compat.SUPPORTED[package],
        )


def test_tflite_schema_reads_a_model():
    schema = _compat.tflite_schema()
    for name in ("Model", "BuiltinOperator", "TensorType", "ModelT"):
        assert hasattr(schema, name), name


def test_calibration_resets_patches_the_calibrator_and_restores_it():
    from tensorflow.lite.python.optimize import calibrator

    original = calibrator.Calibrator._feed_tensors
    with _compat.calibration_resets() as reset:
        assert calibrator.Calibrator._feed_tensors is not original
        reset()  # no calibration under way: nothing to reset, no error
    assert calibrator.Calibrator._feed_tensors is original


def test_calibration_resets_zero_the_state_between_samples():
    # The calibrator's own loop, with a recorder for its C++ wrapper: each
    # reset() re-runs Prepare(), which resets the variable tensors. The
    # effect on a real LSTM is tested in test_calibration.py.
    from tensorflow.lite.python.optimize import calibrator

    fed = []

    class Recorder:
        def Prepare(self, *args):  # noqa: N802 (the wrapper's name)
            fed.append("prepare")

        def FeedTensor(self, *args):  # noqa: N802
            fed.append("feed")

    instance = calibrator.Calibrator.__new__(calibrator.Calibrator)
    instance._calibrator = Recorder()
    with _compat.calibration_resets() as reset:

        def samples():
            for _ in range(3):
                reset()
                yield [np.zeros((1, 1), np.float32)]

        instance._feed_tensors(samples, resize_input=False)
    # The calibrator prepares once by itself; each reset prepares again.
    assert fed == ["prepare", "prepare", "feed"] + ["prepare", "feed"] * 2


def test_calibrate_and_quantize_is_the_converters_integer_mode():
    # A float file calibrated and quantized by the converter's own steps:
    # int8 input and output whose scale covers the calibration data, int8
    # weights, int32 bias.
    from keras_lstm.export import flatbuffer

    @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32)])
    def dense(x):
        return tf.matmul(x, tf.constant(np.eye(4, dtype=np.float32))) + 1.0

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [dense.get_concrete_function()], dense
    )
    content = converter.convert()

    def dataset():
        for value in (-2.0, 2.0):
            yield [np.full((1, 4), value, np.float32)]

    quantized = _compat.calibrate_and_quantize(content, dataset)
    assert flatbuffer.graph_inputs(quantized)[0].type == "INT8"
    assert flatbuffer.graph_outputs(quantized)[0].type == "INT8"
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=quantized)
    scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    # The calibrated [-2, 2], over 255 steps from -128.
    assert scale == pytest.approx(4 / 255, rel=1e-6), scale
    assert (-128 - zero_point) * scale == pytest.approx(-2.0, abs=scale)


def test_is_functional_follows_kerass_functional_class():
    from keras.src.models.functional import Functional

    inputs = keras.Input((5, 3))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert type(functional) is Functional
    assert _compat.is_functional(functional)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    sequential = keras.Sequential([keras.Input((5, 3)), keras.layers.Dense(2)])
    assert not _compat.is_functional(Subclassed())
    assert not _compat.is_functional(sequential)


def _shared_dense_model():
    # Two inputs, a layer called twice, and a kwargs tensor: every shape of
    # reference that the format holds.
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    dense = keras.layers.Dense(4, name="dense")
    added = keras.layers.Add(name="add")([dense(a), dense(b)])
    outputs = keras.layers.MultiHeadAttention(1, 2, name="attention")(
        added[:, None, :], value=added[:, None, :]
    )
    return keras.Model([a, b], [outputs, added])


def test_functional_graph_reads_kerass_config_format():
    model = _shared_dense_model()
    input_names, nodes, outputs = _compat.functional_graph(model)
    assert input_names == ["a", "b"]
    calls = [name for name, _, _ in nodes]
    assert calls.count("dense") == 2, calls
    histories = [
        _compat.keras_tensor_history(arg)
        for name, args, _ in nodes
        if name == "dense"
        for arg in args
    ]
    assert histories == [("a", 0, 0), ("b", 0, 0)]
    (attention,) = [kw for name, _, kw in nodes if name == "attention"]
    assert _compat.keras_tensor_history(attention["value"]) is not None
    assert [name for name, _, _ in outputs] == ["attention", "add"]
    assert _compat.keras_tensor_history({"class_name": "Dense"}) is None
    assert _compat.keras_tensor_history(3) is None


def test_functional_graph_writes_a_sequential_chain_in_that_format():
    model = keras.Sequential(
        [
            keras.Input((5, 3), name="x"),
            keras.layers.Dense(4, name="d1"),
            keras.layers.Dense(2, name="d2"),
        ]
    )
    input_names, nodes, outputs = _compat.functional_graph(model)
    assert input_names == ["x"]
    assert [
        (name, _compat.keras_tensor_history(args[0])) for name, args, _ in nodes
    ] == [("d1", ("x", 0, 0)), ("d2", ("d1", 0, 0))]
    assert outputs == [("d2", 0, 0)]


def test_tf_keras_normalization_broadcast_shape():
    from keras_lstm.export.qat import translate

    tf_keras = translate._layers().tf_keras  # keeps Keras 3 in charge
    layer = tf_keras.layers.Normalization(axis=-1)
    layer.adapt(np.arange(24, dtype="float32").reshape(2, 4, 3))
    assert list(_compat.tf_keras_normalization_broadcast_shape(layer)) == [
        1,
        1,
        3,
    ]
