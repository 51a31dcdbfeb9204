"""`to_tflite`: a Keras LSTM model to a fused, builtin-only TFLite file.

The pipeline, each step refusing rather than falling back:

1. validate every argument and the model's layers;
2. rebuild the model with `keras_lstm.LSTM` layers and a fixed input shape
   (`lowering.export_model`);
3. trace it under the fused-LSTM lowering, so that TFLite's converter turns
   every LSTM into `UNIDIRECTIONAL_SEQUENCE_LSTM`;
4. convert and quantize (`quantization.configure_converter`; int16x8 is
   rewritten from int8 by `keras_lstm.export.rewrite`);
5. assert what the file holds: one fused op per LSTM call, no WHILE, Flex,
   CUSTOM or resource-variable op, one subgraph, fixed shapes;
6. run the file on LiteRT against the Keras model on a check batch and
   fail past the tolerance;
7. move the file into place atomically.
"""

import dataclasses
import logging
import math
import numbers
import os
import tempfile
import warnings
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_lstm.export import (
    contract,
    flatbuffer,
    lowering,
    qat,
    rewrite,
    runners,
)
from keras_lstm.export.quantization import Quantization, configure_converter
from keras_lstm.layers import lowering as lowering_scope

logger = logging.getLogger(__name__)

_FUSED_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 1,
    "BIDIRECTIONAL_SEQUENCE_LSTM": 2,
}
_FORBIDDEN_OPS = {
    "WHILE": "a recurrence the converter did not fuse",
    "CALL_ONCE": "a resource-variable initializer",
    "VAR_HANDLE": "a resource variable",
    "READ_VARIABLE": "a resource variable",
    "ASSIGN_VARIABLE": "a resource variable",
}
_CHECK_SEQUENCES = 16
_STREAMING_CHECK_STEPS = 16


class ExportError(RuntimeError):
    """The converter produced something `to_tflite` must not ship.

    Raised after conversion: an unfused recurrence, a non-builtin op, a
    dynamic shape, or outputs too far from Keras. Nothing is written.
    """


@dataclasses.dataclass(frozen=True)
class TFLiteReport:
    """What `to_tflite` wrote and how well it matches Keras.

    Attributes:
        path: The file written.
        size_bytes: Its size.
        ops: Its operator names, in execution order.
        inputs: `TensorInfo` per input (name, shape, dtype, scale,
            zero point).
        outputs: `TensorInfo` per output.
        quantization: The `Quantization` mode.
        batch_size: The file's fixed batch size.
        timesteps: The file's fixed sequence length (1 when streaming).
        streaming: Whether the file takes one frame per invocation.
        external_state: Whether the LSTM state is explicit inputs/outputs.
        fused_lstm_ops: Number of fused LSTM ops in the file.
        check_sequences: Sequences in the check batch.
        check_timesteps: Their length.
        max_abs_error: Max |LiteRT - Keras| over the check batch.
        tolerance: The bound it was held to.
        output_range: `max - min` of the Keras outputs on the check batch.
    """

    path: str
    size_bytes: int
    ops: tuple
    inputs: tuple
    outputs: tuple
    quantization: Quantization
    batch_size: int
    timesteps: int
    streaming: bool
    external_state: bool
    fused_lstm_ops: int
    check_sequences: int
    check_timesteps: int
    max_abs_error: float
    tolerance: float
    output_range: float

    @property
    def input_dtypes(self):
        """NumPy dtype names of the inputs."""
        return tuple(t.dtype for t in self.inputs)

    @property
    def output_dtypes(self):
        """NumPy dtype names of the outputs."""
        return tuple(t.dtype for t in self.outputs)


# ---------------------------------------------------------------------------
# Argument validation: everything, before any work.


def _positive_int(name, value, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            "Expected a positive integer" + (" or None." if allow_none else ".")
        )
    if value < 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {value}. "
            "Expected a positive integer."
        )
    return int(value)


def _flag(name, value):
    if not isinstance(value, bool):
        raise TypeError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            "Expected True or False."
        )
    return value


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received an invalid value for argument `path`: {path!r}. "
            "Expected a file path (str or os.PathLike)."
        )
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(
            f"Received an invalid value for argument `path`: {path!r} is a "
            "directory. Give a file name, e.g. 'model.tflite'."
        )
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Received an invalid value for argument `path`: the directory "
            f"{directory!r} does not exist. Create it first."
        )
    return path


def _model_input(model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Received an invalid value for argument `model`: expected a "
            f"keras.Model, got {type(model).__name__}."
        )
    lowering.require_graph_model(model)
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Model {model.name!r} is not built. Build it with an input "
            "shape (keras.Input) before exporting."
        ) from error
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs and "
            f"{len(outputs)} outputs; to_tflite exports models with one "
            "input (batch, time, features) and one output. Wrap the part "
            "to export in a model of its own."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 3 or shape[2] is None:
        raise ValueError(
            f"Model {model.name!r} has input shape {shape}; to_tflite needs "
            "(batch, time, features) with a known number of features."
        )
    if inputs[0].dtype != "float32":
        raise ValueError(
            f"Model {model.name!r} has a {inputs[0].dtype} input; to_tflite "
            "needs float32 sequences."
        )
    return shape


def _check_representative_data(data, features, quantization):
    if data is None:
        if quantization.needs_representative_data:
            raise ValueError(
                f"quantization={quantization.value!r} needs "
                "`representative_data`: a float array (num_sequences, "
                f"timesteps, {features}) of typical inputs (a few hundred "
                "training sequences) to calibrate activation ranges."
            )
        return None
    try:
        array = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise TypeError(
            "Received an invalid value for argument `representative_data`: "
            "expected a float array (num_sequences, timesteps, "
            f"{features}), got {type(data).__name__}."
        ) from error
    if array.ndim != 3 or array.shape[2] != features or 0 in array.shape:
        raise ValueError(
            "Received an invalid value for argument `representative_data`: "
            f"expected shape (num_sequences, timesteps, {features}), got "
            f"{array.shape}."
        )
    if not np.isfinite(array).all():
        raise ValueError(
            "Received an invalid value for argument `representative_data`: "
            "it holds NaN or infinite values."
        )
    return array


def _resolve_timesteps(model_steps, timesteps, data, streaming):
    """(file timesteps, check timesteps)."""
    if model_steps is not None and timesteps not in (None, model_steps):
        raise ValueError(
            f"Received timesteps={timesteps}, but the model's input has a "
            f"fixed length of {model_steps}. Drop `timesteps` or rebuild "
            "the model with keras.Input(shape=(None, features))."
        )
    steps = model_steps or timesteps
    if streaming:
        if steps is None:
            steps = (
                data.shape[1] if data is not None else _STREAMING_CHECK_STEPS
            )
        if data is not None and data.shape[1] != steps:
            raise ValueError(
                "`representative_data` has sequences of "
                f"{data.shape[1]} steps but the model takes {steps}."
            )
        return 1, steps
    if steps is None:
        raise ValueError(
            "The model's time dimension is None and TFLite's fused LSTM "
            "needs a fixed length: pass timesteps=N (the length the file "
            "will take), or export with streaming=True (one frame per call, "
            "any length)."
        )
    if data is not None and data.shape[1] != steps:
        raise ValueError(
            "`representative_data` has sequences of "
            f"{data.shape[1]} steps but the file takes {steps}. Pad or crop "
            "them to the same length."
        )
    return steps, steps


def _check_tolerance(tolerance):
    if tolerance is None:
        return None
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, numbers.Real)
        or not math.isfinite(tolerance)
        or tolerance <= 0
    ):
        raise ValueError(
            f"Received an invalid value for argument `tolerance`: "
            f"{tolerance!r}. Expected a positive float, or None for the "
            "mode's default (see Quantization.default_tolerance)."
        )
    return float(tolerance)


# ---------------------------------------------------------------------------
# Tracing and conversion.


class _CountingLowering:
    """`fused_sequence`, counting the LSTM calls it lowers."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return lowering.fused_sequence(*args)


def _trace(export, *, batch_size, timesteps, features, streaming, external):
    """The concrete function to convert, and the expected fused-op count."""
    data_name = contract.FRAME if streaming else contract.SEQUENCES
    data_spec = tf.TensorSpec(
        (batch_size, timesteps, features), tf.float32, name=data_name
    )
    if not external:
        counter = _CountingLowering()

        def serve(x):
            with lowering_scope(counter):
                return {contract.OUTPUT: export(x, training=False)}

        function = tf.function(serve, input_signature=[data_spec])
        return function, function.get_concrete_function(), counter.calls

    # First pass: which LSTM layers run, in which order, with which units.
    discovery = lowering.ExternalStateStep()
    with lowering_scope(discovery):
        tf.function(lambda x: export(x, training=False)).get_concrete_function(
            data_spec
        )
    specs = [data_spec]
    for index, layer in enumerate(discovery.layers):
        for name in contract.state_names(index)[0]:
            specs.append(
                tf.TensorSpec((batch_size, layer.units), tf.float32, name=name)
            )

    def serve_step(frame, *states):
        pairs = list(zip(states[0::2], states[1::2], strict=True))
        step = lowering.ExternalStateStep(pairs)
        with lowering_scope(step):
            results = {contract.OUTPUT: export(frame, training=False)}
        for index, (h, c) in enumerate(step.new_states):
            h_name, c_name = contract.state_names(index)[1]
            results[h_name] = tf.identity(h)
            results[c_name] = tf.identity(c)
        return results

    function = tf.function(serve_step, input_signature=specs)
    return function, function.get_concrete_function(), 0


def _representative_dataset(data, batch_size, streaming, progress=None):
    count = max(data.shape[0] // batch_size, 1)
    total = count * (data.shape[1] if streaming else 1)

    def batches():
        done = 0
        for i in range(count):
            chunk = data[i * batch_size : (i + 1) * batch_size]
            if chunk.shape[0] < batch_size:
                reps = -(-batch_size // chunk.shape[0])
                chunk = np.concatenate([chunk] * reps)[:batch_size]
            frames = (
                [chunk[:, t : t + 1] for t in range(chunk.shape[1])]
                if streaming
                else [chunk]
            )
            for frame in frames:
                yield [frame]
                done += 1
                if progress is not None:
                    progress(done, total)

    return batches


def _convert(export, function, concrete, quantization, dataset):
    # The converter must see the tf.Variables behind Keras 3's variables:
    # given a trackable that holds them, it saves a SavedModel, keeps the
    # `api_implements` functions whole (fusing them) and freezes the
    # weights. Without one it inlines every function first, which loses the
    # fusion attribute and leaves WHILE loops.
    module = tf.Module()
    module.weights = [v.value for v in export.variables]
    module.serve = function
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], module
    )
    configure_converter(converter, quantization, dataset)
    try:
        return converter.convert()
    except Exception as error:  # The converter raises many types.
        raise ExportError(
            f"TFLite's converter failed ({type(error).__name__}): {error}"
        ) from error


def _check_content(content, *, expected_lstm_ops, external):
    """Raises `ExportError` unless the file is fused, builtin-only, fixed."""
    ops = flatbuffer.op_names(content)
    for op in ops:
        if op.startswith("CUSTOM:"):
            raise ExportError(
                f"The converted file holds the non-builtin op {op!r} "
                "(Flex/custom); TFLite Micro and Vela cannot run it. Ops: "
                f"{ops}."
            )
        if op in _FORBIDDEN_OPS:
            raise ExportError(
                f"The converted file holds {op} ({_FORBIDDEN_OPS[op]}): an "
                "LSTM did not lower to the fused op. Ops: "
                f"{ops}. Please report this with the model's summary."
            )
    if flatbuffer.subgraph_count(content) != 1:
        raise ExportError(
            "The converted file has several subgraphs (control flow); "
            f"ops: {ops}."
        )
    fused = sum(_FUSED_OPS.get(op, 0) for op in ops)
    expected = 0 if external else expected_lstm_ops
    if fused != expected:
        raise ExportError(
            f"Expected {expected} fused LSTM op(s) (one per LSTM call), the "
            f"file holds {fused}. Ops: {ops}."
        )
    _check_fixed_shapes(content)
    return ops, fused


def _unquantized_lstm_ops(content, quantization):
    """Fused LSTM ops whose gate weights `quantization` left in float32.

    The converter quantizes a weight only from 1,024 elements on, and the
    fused op stores one weight tensor per gate: with features x units (or
    units x units) under 1,024, "dynamic" and "float16" leave the LSTM float.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    if quantization not in (Quantization.DYNAMIC, Quantization.FLOAT16):
        return 0
    subgraph = schema.Model.GetRootAsModel(content, 0).Subgraphs(0)
    ops = flatbuffer.op_names(content)
    count = 0
    for i in range(subgraph.OperatorsLength()):
        if ops[i] not in _FUSED_OPS:
            continue
        # Inputs 1-8: the input-to-gate and recurrent-to-gate weights.
        operator = subgraph.Operators(i)
        weights = [operator.Inputs(k) for k in range(1, 9)]
        types = {subgraph.Tensors(t).Type() for t in weights if t >= 0}
        if types == {schema.TensorType.FLOAT32}:
            count += 1
    return count


def _check_fixed_shapes(content):
    from tensorflow.lite.python import schema_py_generated as schema

    subgraph = schema.Model.GetRootAsModel(content, 0).Subgraphs(0)
    for kind, count, index in (
        ("input", subgraph.InputsLength(), subgraph.Inputs),
        ("output", subgraph.OutputsLength(), subgraph.Outputs),
    ):
        for i in range(count):
            tensor = subgraph.Tensors(index(i))
            signature = tensor.ShapeSignatureAsNumpy()
            if not isinstance(signature, int) and (signature < 0).any():
                raise ExportError(
                    f"The file's {kind} {tensor.Name().decode()!r} has a "
                    f"dynamic shape {signature.tolist()}; it must be fixed."
                )


# ---------------------------------------------------------------------------
# Verification against Keras.


def _keras_predict(model, x):
    batch = model.inputs[0].shape[0]
    if batch is None:
        return np.asarray(model(x, training=False), np.float32)
    outputs = []
    for start in range(0, x.shape[0], batch):
        chunk = x[start : start + batch]
        count = chunk.shape[0]
        chunk = np.concatenate([chunk, np.zeros_like(x[: batch - count])])
        outputs.append(np.asarray(model(chunk, training=False))[:count])
    return np.concatenate(outputs).astype(np.float32)


def _check_batch(data, *, batch_size, timesteps, features):
    count = max(batch_size, _CHECK_SEQUENCES)
    if data is not None:
        return data[:count]
    rng = np.random.default_rng(0)
    return rng.normal(size=(count, timesteps, features)).astype(np.float32)


# ---------------------------------------------------------------------------


def to_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    quantization: Quantization | str = "none",
    representative_data: np.ndarray | None = None,
    batch_size: int = 1,
    timesteps: int | None = None,
    streaming: bool = False,
    external_state: bool = False,
    tolerance: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TFLiteReport:
    """Exports a Keras LSTM model to a fused, builtin-only TFLite file.

    Every LSTM (`keras_lstm.LSTM`, `keras.layers.LSTM`,
    `keras.layers.RNN(LSTMCell)`, also inside `Bidirectional`) becomes one
    `UNIDIRECTIONAL_SEQUENCE_LSTM` op; the file has no WHILE, Flex or
    CUSTOM op and a fixed batch size. The file is run on LiteRT against the
    Keras model before it is written; the write is atomic.

    State: the fused op keeps `h` and `c` in variable tensors that persist
    across invocations. Reset them before each sequence
    (`reset_all_variables()` in Python, `ResetVariableTensors()` in C++ /
    Android, `reset()` in TFLite Micro); `load_tflite` does it for you.

    Args:
        model: A built Sequential or Functional Keras model with one float32
            input `(batch, time, features)` and one output, or a QAT model
            from `keras_lstm.export.quantize_model` (integer modes only).
        path: Where to write the `.tflite` file. Its directory must exist;
            an existing file is replaced only on success.
        quantization: A `Quantization` or its value: `"none"`, `"float16"`,
            `"dynamic"`, `"int8"` or `"int16x8"`. Default: `"none"`.
        representative_data: Float array `(num_sequences, timesteps,
            features)` of typical inputs. Required for `"int8"` and
            `"int16x8"` (calibration); its first sequences also form the
            check batch. Default: `None` (random normal check data).
        batch_size: The file's fixed batch size. Default: `1`.
        timesteps: The file's sequence length, needed when the model's time
            dimension is `None`. With `streaming=True`, the length of the
            check sequences. Default: `None`.
        streaming: Write a single-frame model `(batch_size, 1, features)`
            whose LSTM state persists between invocations, so T calls give
            the Keras output on a T-step sequence. Default: `False`.
        external_state: With `streaming=True`, keep the state as explicit
            inputs `h_i`, `c_i` and outputs `h_i_out`, `c_i_out` (one step
            in FULLY_CONNECTED, LOGISTIC, TANH, MUL and ADD), for runtimes
            without variable tensors. Float modes only. Default: `False`.
        tolerance: Largest accepted max-abs error against Keras on the check
            batch. Default: `None`, the mode's bound
            (`Quantization.default_tolerance`).
        progress: Called as `progress(done, total)` after each calibration
            batch the converter draws (integer modes), e.g. to drive a
            progress bar. Default: `None`.

    Returns:
        A `TFLiteReport`.

    Raises:
        TypeError: for an argument of the wrong type.
        ValueError: for a bad argument or a model configuration the fused
            op cannot express (the message says what to change).
        ExportError: if the converted file is not fused and builtin-only,
            or is farther from Keras than `tolerance`.
    """
    # 1. Arguments, then the model, before any work.
    path = _check_path(path)
    quantization = Quantization.parse(quantization)
    batch_size = _positive_int("batch_size", batch_size)
    timesteps = _positive_int("timesteps", timesteps, allow_none=True)
    streaming = _flag("streaming", streaming)
    external_state = _flag("external_state", external_state)
    tolerance = _check_tolerance(tolerance)
    if progress is not None and not callable(progress):
        raise TypeError(
            "Received an invalid value for argument `progress`: expected a "
            f"callable progress(done, total) or None, got {progress!r}."
        )
    if external_state and not streaming:
        raise ValueError(
            "external_state=True needs streaming=True: explicit state is "
            "for single-frame files."
        )
    if external_state and quantization.is_integer:
        raise ValueError(
            f"external_state=True with quantization={quantization.value!r} "
            "would carry the cell state through integer inputs and outputs "
            "between calls; the integer LSTM keeps it in int16 inside the "
            "op. Use streaming=True without external_state for integer "
            "files, or a float quantization."
        )
    if qat.is_qat_model(model):
        # A tfmot model is tf_keras; its fine-tuned weights go back into the
        # Keras 3 architecture, which lowers and calibrates (see qat.py for
        # why the QAT ranges themselves cannot reach the fused op).
        if not quantization.is_integer:
            raise ValueError(
                "Received a QAT model with quantization="
                f"{quantization.value!r}. A QAT model is trained for integer "
                "inference: use 'int8' (or 'int16x8'), or export "
                "keras_lstm.export.to_keras3(qat_model) for a float file."
            )
        model = qat.to_keras3(model)
    shape = _model_input(model)
    features = shape[2]
    data = _check_representative_data(
        representative_data, features, quantization
    )
    file_steps, check_steps = _resolve_timesteps(
        shape[1], timesteps, data, streaming
    )
    if data is not None and quantization.needs_representative_data:
        if data.shape[0] < batch_size:
            raise ValueError(
                f"`representative_data` has {data.shape[0]} sequences, "
                f"fewer than batch_size={batch_size}."
            )
    lowering.check_model(model, streaming=streaming)

    # 2-4. Rebuild, trace, convert.
    export = lowering.export_model(
        model, batch_size=batch_size, timesteps=file_steps
    )
    function, concrete, lstm_calls = _trace(
        export,
        batch_size=batch_size,
        timesteps=file_steps,
        features=features,
        streaming=streaming,
        external=external_state,
    )
    dataset = (
        _representative_dataset(data, batch_size, streaming, progress)
        if data is not None
        else None
    )
    content = _convert(export, function, concrete, quantization, dataset)
    if quantization.is_integer:
        try:
            content, repairs = rewrite.repair_integer_lstms(content)
        except ValueError as error:
            raise ExportError(str(error)) from error
        for repair in repairs:
            logger.info("Integer LSTM repair: %s.", repair)
    if quantization is Quantization.INT16X8:
        content = rewrite.requantize_int16x8(content)

    # 5. What the file holds.
    ops, fused = _check_content(
        content, expected_lstm_ops=lstm_calls, external=external_state
    )
    unquantized = _unquantized_lstm_ops(content, quantization)
    if unquantized:
        # Not an error (the file is correct, only larger), but never silent.
        warnings.warn(
            f"quantization={quantization.value!r} left the weights of "
            f"{unquantized} of {fused} fused LSTM op(s) in float32: the "
            "converter quantizes only weights of 1,024 elements or more, and "
            "the fused op stores one weight per gate (features x units and "
            "units x units). The file is correct but no smaller for them; "
            "use 'int8' to quantize small LSTMs.",
            stacklevel=2,
        )

    # 6-7. Verify on LiteRT from a temporary file, then move it into place.
    check = _check_batch(
        data,
        batch_size=batch_size,
        timesteps=check_steps,
        features=features,
    )
    expected = _keras_predict(model, check)
    fd, temp_path = tempfile.mkstemp(
        dir=os.path.dirname(path), prefix=".tmp-", suffix=".tflite"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        runner = runners.load_tflite(temp_path)
        actual = runner.predict(check)
        output = runner.outputs[
            [t.name for t in runner.outputs].index(contract.OUTPUT)
        ]
        output_range = float(expected.max() - expected.min())
        bound = tolerance or quantization.default_tolerance(
            output_scale=output.scale, output_range=output_range
        )
        if actual.shape != expected.shape:
            raise ExportError(
                f"The file's output has shape {actual.shape}, Keras gives "
                f"{expected.shape} on the check batch."
            )
        error = float(np.max(np.abs(actual - expected)))
        if not error <= bound:
            raise ExportError(
                f"The file's outputs are {error:.3g} (max abs) from the "
                f"Keras model's on {check.shape[0]} check sequences of "
                f"{check.shape[1]} steps, past the tolerance {bound:.3g} for "
                f"quantization={quantization.value!r} (output range "
                f"{output_range:.3g}). For a streaming file, check that no "
                "layer after the LSTMs mixes time steps. For integer files, "
                "give more representative data."
            )
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise

    report = TFLiteReport(
        path=path,
        size_bytes=len(content),
        ops=ops,
        inputs=runner.inputs,
        outputs=runner.outputs,
        quantization=quantization,
        batch_size=batch_size,
        timesteps=file_steps,
        streaming=streaming,
        external_state=external_state,
        fused_lstm_ops=fused,
        check_sequences=int(check.shape[0]),
        check_timesteps=int(check.shape[1]),
        max_abs_error=error,
        tolerance=bound,
        output_range=output_range,
    )
    logger.info(
        "Wrote %s (%d bytes, %s): max abs error %.3g <= %.3g.",
        path,
        report.size_bytes,
        quantization.value,
        error,
        bound,
    )
    return report
