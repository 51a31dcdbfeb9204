"""Every reach into TensorFlow's, Keras's and tfmot's private internals.

The export pipeline needs a few things no public API offers. Each lives
here, behind a small function, so that a new TensorFlow or Keras release
breaks in one module, and `tests/test_compat.py` pins each reach-in to the
versions `pyproject.toml` supports.

- `tflite_schema()`: TFLite's generated flatbuffer schema module
  (`tensorflow.lite.python.schema_py_generated`), to read and rewrite
  `.tflite` files.
- `calibration_resets()`: lets the representative data set reset the fused
  LSTM's variable tensors between calibration sequences. TFLite's
  calibrator (`tensorflow.lite.python.optimize.calibrator.Calibrator`)
  resets them once, in `Prepare()`, and never again.
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
"""

import contextlib
import functools
from collections.abc import Callable, Iterator

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
