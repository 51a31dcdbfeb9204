"""Every reach into TensorFlow's, Keras's and tfmot's private internals.

The export pipeline needs a few things no public API offers. Each lives
here, behind a small function, so that a new TensorFlow or Keras release
breaks in one module, and `tests/test_export_compat.py` pins each reach-in
to the versions `pyproject.toml` supports.

- `tflite_schema()`: TFLite's generated flatbuffer schema module
  (`tensorflow.lite.python.schema_py_generated`), to read and rewrite
  `.tflite` files.
- `calibration_resets()`: lets the representative data set reset the fused
  LSTM's variable tensors between calibration sequences. TFLite's
  calibrator (`tensorflow.lite.python.optimize.calibrator.Calibrator`)
  resets them once, in `Prepare()`, and never again.
- `calibrate_and_quantize(content, dataset)`: what TFLite's converter does
  to a float file in its integer modes (`TFLiteConverter._quantize`: the
  calibrator's `add_intermediate_tensors`, `Calibrator.calibrate`, then
  `mlir_quantize`), run on a file of our own: the float file with the LSTM
  variants written into it, so that calibration runs the variant.
- `tf_keras_lstm_cell_base(name)`: tf_keras's private `DropoutRNNCellMixin`
  and `BaseRandomLayer`, the bases of the QAT twin cell.
- `tfmot_default_8bit_transforms()`: tfmot's private module of default
  8-bit layout transforms, whose public alias lacks the Dense + batch norm
  ones that tfmot's own layout transform applies.
- `output_layers(model)`: the layer that computes each output of a Keras
  model, from the private `_keras_history` of its output tensors (Keras
  has no public output-to-layer map).
- `interpreter_ops(interpreter)`: a LiteRT interpreter's operators with
  their tensor indices (its private `_get_ops_details`).
- `tf_keras_normalization_broadcast_shape(layer)`: the shape tf_keras's
  `Normalization` reshapes its statistics to, a private attribute.
- `is_functional(model)`: whether a model is an instance of Keras's
  `Functional` class, which Keras 3 does not make public.
- `functional_graph(model)` and `keras_tensor_history(value)`: the layer
  calls recorded in a graph model's config, in Keras 3's serialization
  format (`inbound_nodes`, `__keras_tensor__`, `keras_history`).
"""

import contextlib
import functools
from collections.abc import Callable, Iterator

import keras

SUPPORTED = {
    "tensorflow": ("2.21",),
    "keras": ("3.15",),
}


def output_layers(model) -> list:
    """The layer that computes each of `model`'s outputs, in order."""
    return [tensor._keras_history[0] for tensor in model.outputs]


def interpreter_ops(interpreter) -> list[dict]:
    """A LiteRT interpreter's ops: `op_name`, `inputs`, `outputs` indices."""
    return interpreter._get_ops_details()


@functools.cache
def tflite_schema():
    """TFLite's flatbuffer schema module (private to TensorFlow)."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


@contextlib.contextmanager
def calibration_resets() -> Iterator[Callable[[], None]]:
    """Yields `reset()`, which zeroes the calibrating interpreter's state.

    TFLite's calibrator feeds every representative sample to one logging
    interpreter and resets its variable tensors (the fused LSTM's `h` and
    `c`) only when it is prepared, before the first sample. Each later
    sample starts from the state the one before left, so ranges are taken
    on states the stateless file never reaches (the file is reset before
    every sequence).

    Inside this context, the converter's calibrator is recorded when it
    starts feeding, and `reset()` calls its `Prepare()` again, which
    allocates (a no-op once allocated) and calls
    `Interpreter::ResetVariableTensors()`. The representative data set calls
    `reset()` before yielding the first frame of each sequence; the
    calibrator invokes the interpreter between yields, so every sequence is
    calibrated from a zero state. Collected statistics live in the
    calibration reader and survive it.

    Outside a calibration (no calibrator recorded yet), `reset()` does
    nothing: the state is zero before the first sample anyway.
    """
    from tensorflow.lite.python.optimize import calibrator

    klass = calibrator.Calibrator
    original = klass._feed_tensors
    current = []

    @functools.wraps(original)
    def feed_tensors(self, dataset_gen, resize_input):
        current.append(self._calibrator)
        try:
            return original(self, dataset_gen, resize_input)
        finally:
            current.pop()

    def reset():
        if current:
            current[-1].Prepare()

    klass._feed_tensors = feed_tensors
    try:
        yield reset
    finally:
        klass._feed_tensors = original


def calibrate_and_quantize(content: bytes, dataset) -> bytes:
    """A float file calibrated on `dataset` and quantized to full int8.

    The steps `tf.lite.TFLiteConverter` runs after converting, in its
    post-training integer mode with int8 inputs and outputs
    (`lite.py`, `TFLiteConverterBase._quantize`), on `content` itself:

    1. `calibrator.add_intermediate_tensors`: gives each fused LSTM the
       five intermediate tensors of TFLite's integer LSTM spec
       (`operator_property.cc`), which the calibrator's logging LSTM
       kernel (`calibration/builtin_logging_ops/lstm.cc`) records: the
       gates' pre-normalisation values under layer norm, and the hidden
       value `o * tanh(c)` before the projection;
    2. `Calibrator.calibrate(dataset)`: runs the float file on the reference
       kernels with those loggers (call it inside `calibration_resets()`
       to reset the LSTM state per sequence);
    3. `mlir_quantize`: the converter's quantizer, int8 inputs and outputs,
       per-channel where the converter would.

    Args:
        content: A float32 TFLite flatbuffer.
        dataset: A callable returning an iterator of input lists (the
            converter's `representative_dataset`).

    Returns:
        The quantized flatbuffer.
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.python.optimize import calibrator

    content = calibrator.add_intermediate_tensors(content)
    calibrated = calibrator.Calibrator(content).calibrate(dataset)
    return mlir_quantize(
        calibrated, input_data_type=tf.int8, output_data_type=tf.int8
    )


def tf_keras_lstm_cell_base(name: str) -> type:
    """A base class of `tf_keras.layers.LSTMCell`, found by class name.

    The QAT twin cell derives from tf_keras's `DropoutRNNCellMixin` and
    `BaseRandomLayer`, which live in `tf_keras.src` (private). Walking the
    public class's MRO avoids importing `tf_keras.src`. Only
    `keras_lstm.export.qat.layers`, which has imported tf_keras (and kept
    Keras 3 in charge), calls this.

    Raises:
        ImportError: if tf_keras's `LSTMCell` no longer derives from `name`.
    """
    import tf_keras

    for klass in tf_keras.layers.LSTMCell.__mro__:
        if klass.__name__ == name:
            return klass
    raise ImportError(
        f"keras_lstm QAT needs tf_keras.layers.LSTMCell to derive from {name}, "
        f"which tf_keras {tf_keras.__version__} no longer does. Install "
        "tf-keras 2.21.x (see pyproject.toml, extra `qat`)."
    )


def tfmot_default_8bit_transforms():
    """tfmot 0.8.1's `default_8bit_transforms` module, all of it.

    `keras_lstm.export.qat.layers.QuantizeLayoutTransform` repeats tfmot's
    default list of layout transforms (with the input quantization limited
    to float inputs), and needs the `DenseBatchNorm*` transforms that the
    public `tfmot.quantization.keras.default_8bit.default_8bit_transforms`
    does not export. Only the QAT layers module calls this.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E501
        default_8bit_transforms,
    )

    return default_8bit_transforms


def tf_keras_normalization_broadcast_shape(layer) -> list:
    """The shape tf_keras's `Normalization` reshapes its statistics to.

    `layer` is a built `tf_keras.layers.Normalization` (or a subclass):
    `build` sets the private `_broadcast_shape`, the input's rank with 1 on
    every axis that is not normalized (`[1, 1, features]` for
    `(batch, time, features)` and `axis=-1`).

    Raises:
        AttributeError: if tf_keras no longer records it (the layer is not
            built, or a tf_keras release renamed it).
    """
    return layer._broadcast_shape


def is_functional(model) -> bool:
    """Whether `model` is a Keras 3 Functional model.

    `keras.Model(inputs, outputs)` returns an instance of
    `keras.src.models.functional.Functional`, which Keras 3 does not make
    public; its class is found by name in the model's MRO, which also
    holds for a subclass of a Functional model. A subclassed `keras.Model`
    (and `keras.Sequential`) is not one.
    """
    return any(klass.__name__ == "Functional" for klass in type(model).__mro__)


def functional_graph(model) -> tuple[list, list, list]:
    """The layer calls of a Sequential or Functional model, in call order.

    Read from `model.get_config()` in Keras 3's format: `layers[i]
    ["inbound_nodes"]` holds one `{"args", "kwargs"}` per call, in which a
    tensor is `{"class_name": "__keras_tensor__", "config":
    {"keras_history": [layer_name, node_index, tensor_index]}}`, and
    `input_layers` / `output_layers` hold such histories, or a single one.
    A Sequential model's config lists layers only; its chain is written
    in the same format.

    Returns:
        `(input_layer_names, nodes, output_histories)`: `nodes` lists
        `(layer_name, args, kwargs)`, and `keras_tensor_history` reads the
        tensors in `args` and `kwargs`; `output_histories` lists
        `(layer_name, node_index, tensor_index)`.
    """
    if isinstance(model, keras.Sequential):
        input_name = model.inputs[0].name
        nodes, previous = [], (input_name, 0, 0)
        for layer in model.layers:
            nodes.append((layer.name, [_keras_tensor(previous)], {}))
            previous = (layer.name, 0, 0)
        return [input_name], nodes, [previous]
    config = model.get_config()
    nodes = []
    for entry in config["layers"]:
        for node in entry["inbound_nodes"]:
            nodes.append((entry["name"], node["args"], node["kwargs"]))
    return (
        [history[0] for history in _histories(config["input_layers"])],
        nodes,
        _histories(config["output_layers"]),
    )


def keras_tensor_history(value) -> tuple | None:
    """`(layer_name, node_index, tensor_index)` if `value` is a tensor.

    `value` is one of the `args` or `kwargs` that `functional_graph`
    returns; `None` when it stands for no tensor.
    """
    if isinstance(value, dict) and value.get("class_name") == (
        "__keras_tensor__"
    ):
        name, node, index = value["config"]["keras_history"]
        return name, node, index
    return None


def _keras_tensor(history):
    return {
        "class_name": "__keras_tensor__",
        "config": {"keras_history": list(history)},
    }


def _histories(layers):
    # A single [name, node, index] or a list of them.
    if layers and isinstance(layers[0], str):
        return [tuple(layers)]
    return [tuple(history) for history in layers]
