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
        3,
        dropout=0.25,
        recurrent_dropout=0.125,
        seed=7,
        use_bias=False,
        use_peepholes=True,
        coupled_input_forget=True,
        use_layer_norm=True,
        projection_units=2,
        use_projection_bias=True,
        cell_clip=1.5,
        projection_clip=0.5,
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


def test_tfmot_transforms_module_holds_the_default_layout_list():
    # QuantizeLayoutTransform repeats tfmot 0.8.1's default list; pin it.
    qat_layers = translate._layers()
    transforms = _compat.tfmot_default_8bit_transforms()
    tfmot = qat_layers.tfmot
    assert tfmot.__version__ == "0.8.1", tfmot.__version__
    for name in (
        "InputLayerQuantize",
        "SeparableConv1DQuantize",
        "Conv2DBatchNormQuantize",
        "DenseBatchNormQuantize",
        "DenseBatchNormReLUQuantize",
        "DenseBatchNormActivationQuantize",
        "LayerReluActivationQuantize",
    ):
        assert hasattr(transforms, name), name


def test_twin_cell_refuses_what_the_keras3_cell_refuses():
    qat_layers = translate._layers()
    with pytest.raises(ValueError, match="use_projection_bias.*projection"):
        qat_layers.TwinLSTMCell(3, use_projection_bias=True)
    with pytest.raises(ValueError, match="cell_clip"):
        qat_layers.TwinLSTMCell(3, cell_clip=-1.0)


# 4 gate blocks, 3 under CIFG, 1 for the projection kernel (one tensor).
@pytest.mark.parametrize("gates", [4, 3, 1])
def test_gate_weight_quantizer_puts_each_gate_on_its_own_int8_grid(gates, rng):
    qat_layers = translate._layers()
    kernel = rng.normal(size=(5, gates * 3)).astype("float32")
    kernel[:, -3:] *= 20.0  # the last gate's block has a wider range
    quantizer = qat_layers.GateWeightQuantizer(gates)
    assert quantizer == qat_layers.GateWeightQuantizer.from_config(
        quantizer.get_config()
    )
    quantized = np.asarray(quantizer(kernel, training=False, weights={}))
    for gate in range(gates):
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


# ---------------------------------------------------------------------------
# The registry of the layers around the LSTM, and its weight grids.


def _registry_cases(tf_keras):
    layers = tf_keras.layers
    dense = layers.Dense(2)
    return {
        "Conv1D": (layers.Conv1D(4, 3), (["kernel"], ["activation"], False)),
        "Dense": (dense, (["kernel"], ["activation"], False)),
        "MaxPooling1D": (layers.MaxPooling1D(2), ([], [], False)),
        "AveragePooling1D": (layers.AveragePooling1D(2), ([], [], False)),
        "RepeatVector": (layers.RepeatVector(3), ([], [], False)),
        "Normalization": (
            translate._layers().TwinNormalization(),
            ([], [], True),
        ),
        "Embedding": (layers.Embedding(10, 3), (["embeddings"], [], False)),
    }


def test_registry_models_what_the_converter_does():
    qat_layers = translate._layers()
    registry = qat_layers.QuantizeRegistry()
    for name, (layer, (weights, activations, output)) in _registry_cases(
        qat_layers.tf_keras
    ).items():
        config = registry.get_quantize_config(layer)
        assert isinstance(config, qat_layers.LayerQuantizeConfig), name
        assert config.weight_attrs == weights, name
        assert config.activation_attrs == activations, name
        assert config.quantize_output is output, name
        grid = "table" if name == "Embedding" else "per_channel"
        assert config.weight_grid == grid, name
        again = qat_layers.LayerQuantizeConfig.from_config(config.get_config())
        assert again == config, name


def test_registry_routes_wrappers_lstms_and_tfmot_layers():
    qat_layers = translate._layers()
    tf_keras = qat_layers.tf_keras
    registry = qat_layers.QuantizeRegistry()
    wrapped = registry.get_quantize_config(
        tf_keras.layers.TimeDistributed(tf_keras.layers.Dense(2))
    )
    assert isinstance(wrapped, qat_layers.WrappedQuantizeConfig)
    assert wrapped.config.weight_attrs == ["kernel"]
    again = qat_layers.WrappedQuantizeConfig.from_config(wrapped.get_config())
    assert again == wrapped
    rnn = tf_keras.layers.RNN(qat_layers.TwinLSTMCell(3))
    assert isinstance(
        registry.get_quantize_config(rnn), qat_layers.LSTMQuantizeConfig
    )
    # Left to tfmot's default registry: its own config.
    flatten = registry.get_quantize_config(tf_keras.layers.Flatten())
    assert type(flatten).__name__ == "Default8BitQuantizeConfig"
    for unsupported in (
        tf_keras.layers.LayerNormalization(),
        tf_keras.layers.TimeDistributed(tf_keras.layers.LayerNormalization()),
        tf_keras.layers.UpSampling1D(),
    ):
        assert not registry.supports(unsupported)
        with pytest.raises(ValueError, match="No QuantizeConfig"):
            registry.get_quantize_config(unsupported)


def test_lstm_quantize_config_quantizes_variant_weights_as_tflite_stores():
    # TFLite's integer LSTM (operator_property.cc): the projection kernel
    # int8 like the gate kernels; peepholes and layer-norm coefficients
    # int16, biases int32: left in float. Under a projection, o * tanh(c)
    # is rounded to int8 before it is projected.
    qat_layers = translate._layers()
    tf_keras = qat_layers.tf_keras
    cell = qat_layers.TwinLSTMCell(
        4,
        use_peepholes=True,
        coupled_input_forget=True,
        use_layer_norm=True,
        projection_units=2,
        use_projection_bias=True,
    )
    rnn = tf_keras.layers.Bidirectional(tf_keras.layers.RNN(cell))
    rnn.build((1, STEPS, FEATURES))
    config = qat_layers.LSTMQuantizeConfig()
    gate3 = qat_layers.GateWeightQuantizer(3)
    tensor = qat_layers.GateWeightQuantizer(1)
    float_ = qat_layers.PassThroughQuantizer()
    expected = {
        "kernel": gate3,
        "recurrent_kernel": gate3,
        "bias": float_,
        "peephole_kernel": float_,
        "layer_norm_scale": float_,
        "projection_kernel": tensor,
        "projection_bias": float_,
    }
    pairs = config.get_weights_and_quantizers(rnn)
    # Both directions, every weight in the cell's own order.
    names = [w.name.split("/")[-1].split(":")[0] for w, _ in pairs]
    assert names == 2 * list(expected), names
    assert [q for _, q in pairs] == 2 * list(expected.values())
    activations = config.get_activations_and_quantizers(rnn)
    quantizers = [q for _, q in activations]
    assert [type(q).__name__ for q in quantizers] == 2 * [
        "CellStateQuantizer",
        "HiddenStateQuantizer",
        "HiddenStateQuantizer",
    ]
    assert [getattr(q, "tensor", None) for q in quantizers[:3]] == [
        None,
        "hidden_state",
        "projection_input",
    ]
    plain = tf_keras.layers.RNN(qat_layers.TwinLSTMCell(4))
    plain.build((1, STEPS, FEATURES))
    assert len(config.get_activations_and_quantizers(plain)) == 2
    assert [q for _, q in config.get_weights_and_quantizers(plain)] == [
        qat_layers.GateWeightQuantizer(4),
        qat_layers.GateWeightQuantizer(4),
        float_,
    ]


def test_layer_quantize_config_refuses_unknown_grid():
    qat_layers = translate._layers()
    with pytest.raises(ValueError, match="`weight_grid`.*'per_tensor'"):
        qat_layers.LayerQuantizeConfig(["kernel"], weight_grid="per_tensor")


@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6)])
def test_channel_weight_quantizer_is_the_converters_per_channel_grid(
    shape, rng
):
    # Dense (2-D) and Conv1D (3-D) kernels: one scale per output channel.
    kernel = rng.normal(size=shape).astype("float32")
    kernel[..., 2] *= 30.0  # one channel far wider than the others
    quantized = np.asarray(
        translate._layers().ChannelWeightQuantizer()(
            kernel, training=False, weights={}
        )
    )
    flat = kernel.reshape(-1, shape[-1])
    scale = np.abs(flat).max(axis=0) / 127.0
    # Levels, not values: float32 rounding of level * scale is 1e-3 level.
    levels = quantized.reshape(-1, shape[-1]) / scale
    np.testing.assert_allclose(levels, np.round(flat / scale), atol=1e-3)


def test_table_quantizer_is_asymmetric_per_tensor(rng):
    table = rng.uniform(-0.5, 2.0, (10, 3)).astype("float32")
    quantized = np.asarray(
        translate._layers().TableQuantizer()(table, training=False, weights={})
    )
    scale = (table.max() - min(table.min(), 0.0)) / 255.0
    levels = np.unique(np.round((quantized - quantized.min()) / scale, 3))
    # Every value on one 256-level grid over the table's own range (the
    # converter's measured scale for GATHER's params, TF 2.21).
    assert np.allclose(levels, np.round(levels)), levels
    assert np.abs(quantized - table).max() <= scale / 2 + 1e-6
