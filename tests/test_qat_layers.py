"""Tests for keras_lstm.export.qat.layers: the tf_keras twin and quantizers.

The layers module imports tfmot and tf_keras, so it is reached through
`translate._layers()`, as the library does, never imported at collection.
"""

import inspect

import numpy as np
import pytest

from keras_lstm.export import _compat
from keras_lstm.export.qat import translate

STEPS, FEATURES = 6, 3


def test_twin_cell_config_is_complete_and_round_trips():
    qat_layers = translate._layers()
    cell = qat_layers.TwinLSTMCell(
        3, dropout=0.25, recurrent_dropout=0.125, seed=7, use_bias=False
    )
    config = cell.get_config()
    parameters = inspect.signature(qat_layers.TwinLSTMCell).parameters
    missing = [p for p in parameters if p != "kwargs" and p not in config]
    assert not missing, f"get_config() lacks {missing}"
    again = qat_layers.TwinLSTMCell.from_config(config).get_config()
    assert again == config


def test_twin_cell_bases_come_from_tf_keras_lstm_cell():
    qat_layers = translate._layers()
    for name in ("DropoutRNNCellMixin", "BaseRandomLayer"):
        base = _compat.tf_keras_lstm_cell_base(name)
        assert base.__name__ == name
        assert issubclass(qat_layers.TwinLSTMCell, base)
        assert issubclass(qat_layers.tf_keras.layers.LSTMCell, base)
    with pytest.raises(ImportError, match="tf-keras 2.21"):
        _compat.tf_keras_lstm_cell_base("NoSuchBase")


def test_gate_weight_quantizer_puts_each_gate_on_its_own_int8_grid(rng):
    qat_layers = translate._layers()
    kernel = rng.normal(size=(5, 4 * 3)).astype("float32")
    kernel[:, 3:6] *= 20.0  # the forget gate's block has a wider range
    quantized = np.asarray(
        qat_layers.GateWeightQuantizer()(kernel, training=False, weights={})
    )
    for gate in range(4):
        block = kernel[:, 3 * gate : 3 * gate + 3]
        scale = np.abs(block).max() / 127.0
        levels = quantized[:, 3 * gate : 3 * gate + 3] / scale
        np.testing.assert_allclose(levels, np.round(block / scale), atol=1e-3)


def test_cell_state_scale_is_tflite_power_of_two():
    scale = translate._layers().CellStateQuantizer.scale
    # GetPowerOfTwoScale: the smallest 2^p >= max|c|, p in [0, 10].
    for max_abs, power in [(0.3, 0), (1.0, 0), (1.5, 1), (2.33, 2), (9.0, 4)]:
        assert float(scale(np.float32(max_abs))) == 2.0**power / 32768


def _op_names(content):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    return [op["op_name"] for op in interpreter._get_ops_details()]


@pytest.mark.slow
def test_converter_cannot_use_qat_ranges():
    """Evidence for the calibration route (docstring of export/qat/).

    tf_keras's own LSTM fuses when converted alone; inside a QAT model, with
    fake-quantized weights, it comes out as a WHILE loop. If this fails, the
    converter has learnt to fuse QAT graphs: revisit export/qat/.
    """
    import tensorflow as tf

    qat_layers = translate._layers()
    tf_keras = qat_layers.tf_keras
    quantization = qat_layers.tfmot.quantization.keras

    class KernelsOnly(qat_layers.LSTMQuantizeConfig):
        def _cells(self, layer):
            return [("", layer.cell)]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_activations(self, layer, quantize_activations):
            pass

    inputs = tf_keras.Input(batch_shape=(1, STEPS, FEATURES))
    lstm = quantization.quantize_annotate_layer(
        tf_keras.layers.LSTM(4), KernelsOnly()
    )
    model = tf_keras.Model(inputs, lstm(inputs))
    with quantization.quantize_scope({"KernelsOnly": KernelsOnly}):
        model = quantization.quantize_apply(model)
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(
        tf.TensorSpec((1, STEPS, FEATURES), tf.float32)
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], model
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    ops = _op_names(converter.convert())
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops, ops
    assert "WHILE" in ops, ops
