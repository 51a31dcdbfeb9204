"""`to_tflite`: a Keras LSTM model to a fused, builtin-only TFLite file.

`to_tflite` reads as the pipeline's table of contents; each stage refuses
rather than falls back, and has one owner:

1. check: every argument and the model, before any work (here);
2. lower: rebuild with `keras_lstm.LSTM` layers and a fixed input shape,
   and trace under the fused-LSTM lowering (`lowering`), so that TFLite's
   converter turns every LSTM into `UNIDIRECTIONAL_SEQUENCE_LSTM`;
3. convert and calibrate: integer modes calibrate every sequence from a
   zero LSTM state, on data the check never sees (`calibration`);
4. rewrite: repair the converter's integer LSTMs, derive int16x8 from int8
   (`rewrite`);
5. inspect: one fused op per LSTM call, no WHILE, Flex, CUSTOM or
   resource-variable op, one subgraph, fixed shapes (`flatbuffer`);
6. verify: run the file on LiteRT against the Keras model on held-out
   sequences, and fail past the tolerance (`verification`);
7. write: move the verified file into place atomically (`files`).
"""

import dataclasses
import logging
import math
import numbers
import os
import warnings
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_lstm.export import (
    _compat,
    calibration,
    contract,
    files,
    flatbuffer,
    inputs,
    lowering,
    qat,
    rewrite,
    runners,
    verification,
)
from keras_lstm.export.errors import ExportError
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
_STREAMING_CHECK_STEPS = 16


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
        calibration_sequences: Sequences the integer ranges were
            calibrated on (0 for modes without calibration).
        check_set: Which sequences verified the file: `check_data`, a
            share held out of `representative_data`, or generated ones.
        check_sequences: Sequences in the check set.
        check_timesteps: Their length.
        max_abs_error: Max |LiteRT - Keras| over the check set.
        tolerance: The bound it was held to.
        output_range: `max - min` of the Keras outputs on the check set.
        argmax_agreement: For outputs with a class axis, the share of
            check rows whose argmax agrees with Keras's; else `None`.
        tflite_micro_blockers: Why TFLite Micro cannot run the file (the
            op or kernel, and what to do), empty if it can
            (`runners.tflite_micro_blockers`).
        input_kind: `InputKind.SEQUENCES` (float) or `InputKind.TOKENS`
            (int32 token ids read by an Embedding, `keras_lstm.export.
            inputs`).
        padding: For a masked model, the padding convention the file
            records (`contract.Padding`): callers drop padded steps
            (`keras_lstm.export.masking`); `None` otherwise.
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
    calibration_sequences: int
    check_set: str
    check_sequences: int
    check_timesteps: int
    max_abs_error: float
    tolerance: float
    output_range: float
    argmax_agreement: float | None
    tflite_micro_blockers: tuple[str, ...]
    input_kind: inputs.InputKind = inputs.InputKind.SEQUENCES
    padding: contract.Padding | None = None

    @property
    def tflite_micro_ready(self) -> bool:
        """Whether TFLite Micro can run the file."""
        return not self.tflite_micro_blockers

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


def _resolve_timesteps(model_steps, timesteps, arrays, streaming):
    """(file timesteps, check timesteps); `arrays` maps names to data."""
    if model_steps is not None and timesteps not in (None, model_steps):
        raise ValueError(
            f"Received timesteps={timesteps}, but the model's input has a "
            f"fixed length of {model_steps}. Drop `timesteps` or rebuild "
            "the model with keras.Input(shape=(None, features))."
        )
    steps = model_steps or timesteps
    given = {name: a for name, a in arrays.items() if a is not None}
    if steps is None and streaming:
        steps = next(
            (a.shape[1] for a in given.values()), _STREAMING_CHECK_STEPS
        )
    if steps is None:
        raise ValueError(
            "The model's time dimension is None and TFLite's fused LSTM "
            "needs a fixed length: pass timesteps=N (the length the file "
            "will take), or export with streaming=True (one frame per call, "
            "any length)."
        )
    for name, array in given.items():
        if array.shape[1] != steps:
            takes = "the model takes" if streaming else "the file takes"
            raise ValueError(
                f"`{name}` has sequences of {array.shape[1]} steps but "
                f"{takes} {steps}. Pad or crop them to the same length."
            )
    return (1 if streaming else steps), steps


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


def _stateful_as_streaming(model, streaming):
    """(model, streaming): a stateful model exports as a streaming file.

    A `stateful=True` layer carries its state from one call to the next,
    as the streaming file's variable tensors do from frame to frame. The
    export lowers a stateless copy (same weights; `lowering.stateless_model`)
    and checks the file against it on whole sequences, which is what the
    stateful model gives on them, fed in chunks after `reset_states()`.
    Without `streaming=True` the file would start each call from a zero
    state, which is not what the stateful model does: streaming is
    implied, with a warning.
    """
    if not isinstance(model, keras.Model) or not lowering.is_graph_model(model):
        return model, streaming  # _model_input says what is wrong.
    stateful = lowering.stateful_layers(model)
    if not stateful:
        return model, streaming
    if not streaming:
        names = ", ".join(repr(layer.name) for layer in stateful)
        warnings.warn(
            f"Model {model.name!r} has stateful layers ({names}): exporting "
            "a streaming file (streaming=True), one frame per invocation, "
            "whose LSTM state persists between invocations as the stateful "
            "layers' does between calls; reset it where you would call "
            "reset_states(). Pass streaming=True to silence this warning.",
            stacklevel=4,
        )
    return lowering.stateless_model(model), True


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Every argument, checked, and what follows from them."""

    path: str
    model: keras.Model
    quantization: Quantization
    batch_size: int
    input: inputs.ModelInput
    file_steps: int
    check_steps: int
    streaming: bool
    external_state: bool
    tolerance: float | None
    split: calibration.Split


def _plan(
    model,
    path,
    *,
    quantization,
    representative_data,
    check_data,
    batch_size,
    timesteps,
    streaming,
    external_state,
    tolerance,
    progress,
):
    """Stage 1: checks every argument and the model, before any work."""
    path = _check_path(path)
    quantization = Quantization.parse(quantization)
    batch_size = _positive_int("batch_size", batch_size)
    timesteps = _positive_int("timesteps", timesteps, allow_none=True)
    streaming = _flag("streaming", streaming)
    external_state = _flag("external_state", external_state)
    tolerance = _check_tolerance(tolerance)
    model, streaming = _stateful_as_streaming(model, streaming)
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
        # Keras 3 architecture, which lowers and calibrates (see qat for
        # why the QAT ranges themselves cannot reach the fused op).
        if not quantization.is_integer:
            raise ValueError(
                "Received a QAT model with quantization="
                f"{quantization.value!r}. A QAT model is trained for integer "
                "inference: use 'int8' (or 'int16x8'), or export "
                "keras_lstm.export.to_keras3(qat_model) for a float file."
            )
        model = qat.to_keras3(model)
    model_input = inputs.describe(model)
    data = inputs.data("representative_data", representative_data, model_input)
    check = inputs.data("check_data", check_data, model_input)
    if data is None and quantization.needs_representative_data:
        raise ValueError(
            f"quantization={quantization.value!r} needs "
            f"`representative_data`: {model_input.expected()} of typical "
            "inputs (a few hundred training sequences) to calibrate "
            "activation ranges."
        )
    file_steps, check_steps = _resolve_timesteps(
        model_input.timesteps,
        timesteps,
        {"representative_data": data, "check_data": check},
        streaming,
    )
    split = calibration.split(
        data, check, calibrated=quantization.needs_representative_data
    )
    lowering.check_model(model, streaming=streaming)
    return _Plan(
        path=path,
        model=model,
        quantization=quantization,
        batch_size=batch_size,
        input=model_input,
        file_steps=file_steps,
        check_steps=check_steps,
        streaming=streaming,
        external_state=external_state,
        tolerance=tolerance,
        split=split,
    )


# ---------------------------------------------------------------------------
# Tracing and conversion.


class _CountingLowering:
    """`fused_sequence`, counting the LSTM calls it lowers."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return lowering.fused_sequence(*args)


def _trace(export, *, batch_size, timesteps, model_input, streaming, external):
    """The concrete function to convert, and the expected fused-op count."""
    # A masked model's LSTMs run on valid steps only: they drop the mask.
    seam = lowering.without_mask if model_input.padding else (lambda f: f)
    data_name = contract.FRAME if streaming else contract.SEQUENCES
    data_spec = tf.TensorSpec(
        (batch_size, timesteps, *model_input.step_shape),
        model_input.dtype,
        name=data_name,
    )
    if not external:
        counter = _CountingLowering()

        def serve(x):
            with lowering_scope(seam(counter)):
                return {contract.OUTPUT: export(x, training=False)}

        function = tf.function(serve, input_signature=[data_spec])
        return function, function.get_concrete_function(), counter.calls

    # First pass: which LSTM layers run, in which order, with which units.
    discovery = lowering.ExternalStateStep()
    with lowering_scope(seam(discovery)):
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
        with lowering_scope(seam(step)):
            results = {contract.OUTPUT: export(frame, training=False)}
        for index, (h, c) in enumerate(step.new_states):
            h_name, c_name = contract.state_names(index)[1]
            results[h_name] = tf.identity(h)
            results[c_name] = tf.identity(c)
        return results

    function = tf.function(serve_step, input_signature=specs)
    return function, function.get_concrete_function(), 0


def _convert(export, function, concrete, plan, progress):
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
    with _compat.calibration_resets() as reset:
        dataset = None
        if plan.split.calibration is not None:
            dataset = calibration.representative_dataset(
                plan.split.calibration,
                batch_size=plan.batch_size,
                streaming=plan.streaming,
                reset=reset,
                progress=progress,
                padding=plan.input.padding,
            )
        configure_converter(converter, plan.quantization, dataset)
        try:
            return converter.convert()
        except Exception as error:  # The converter raises many types.
            raise ExportError(
                f"TFLite's converter failed ({type(error).__name__}): {error}"
            ) from error


def _rewrite(content, quantization):
    if quantization.is_integer:
        try:
            content, repairs = rewrite.repair_integer_lstms(content)
        except ValueError as error:
            raise ExportError(str(error)) from error
        for repair in repairs:
            logger.info("Integer LSTM repair: %s.", repair)
    if quantization is Quantization.INT16X8:
        content = rewrite.requantize_int16x8(content)
    return rewrite.drop_unused_buffers(content)


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


def _warn_unquantized(content, quantization, fused):
    """Warns when "dynamic" or "float16" left an LSTM's weights float32.

    The converter quantizes a weight only from 1,024 elements on, and the
    fused op stores one weight tensor per gate: with features x units (or
    units x units) under 1,024, these modes leave the LSTM float.
    """
    if quantization not in (Quantization.DYNAMIC, Quantization.FLOAT16):
        return
    unquantized = len(flatbuffer.float_weight_lstm_ops(content))
    if unquantized:
        # Not an error (the file is correct, only larger), but never silent.
        warnings.warn(
            f"quantization={quantization.value!r} left the weights of "
            f"{unquantized} of {fused} fused LSTM op(s) in float32: the "
            "converter quantizes only weights of 1,024 elements or more, and "
            "the fused op stores one weight per gate (features x units and "
            "units x units). The file is correct but no smaller for them; "
            "use 'int8' to quantize small LSTMs.",
            stacklevel=3,
        )


def _check_fixed_shapes(content):
    for kind, tensors in (
        ("input", flatbuffer.graph_inputs(content)),
        ("output", flatbuffer.graph_outputs(content)),
    ):
        for tensor in tensors:
            if any(size < 0 for size in tensor.shape_signature):
                raise ExportError(
                    f"The file's {kind} {tensor.name!r} has a dynamic shape "
                    f"{list(tensor.shape_signature)}; it must be fixed."
                )


def _record_padding(content, padding):
    """A masked model's file records its padding convention (metadata)."""
    if padding is None:
        return content
    return rewrite.with_metadata(
        content, contract.PADDING_METADATA, padding.encode()
    )


def _check_set(plan):
    """The held-out check data, or generated data that fits the input."""
    if plan.split.check is None:
        return inputs.generated(
            plan.input, batch_size=plan.batch_size, timesteps=plan.check_steps
        )
    return verification.check_sequences(
        plan.split.check,
        plan.split.check_name,
        batch_size=plan.batch_size,
        timesteps=plan.check_steps,
        features=plan.input.features,
    )


# ---------------------------------------------------------------------------


def to_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    quantization: Quantization | str = "none",
    representative_data: np.ndarray | None = None,
    check_data: np.ndarray | None = None,
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
    Keras model, on sequences calibration never saw, before it is written;
    the write is atomic. The check proves the file computes what the Keras
    model computes on those sequences, within the tolerance; it does not
    prove the model is accurate, nor that inputs unlike them stay within
    it (see `keras_lstm.export.verification`).

    State: the fused op keeps `h` and `c` in variable tensors that persist
    across invocations. Reset them before each sequence
    (`reset_all_variables()` in Python, `ResetVariableTensors()` in C++ /
    Android, `reset()` in TFLite Micro); `load_tflite` does it for you.

    Token models: a model whose `(batch, time)` input feeds a
    `keras.layers.Embedding` gives a file that takes int32 token ids
    `(batch, time)` (`(batch, 1)` when streaming); the lookup is a builtin
    GATHER, and integer modes quantize the table, not the ids.

    Masked models (`keras.layers.Masking` or `Embedding(mask_zero=True)` on
    the input): the file has no mask (the fused op has none); it records
    the padding convention (`TFLiteReport.padding`) and its callers drop
    the padded steps, as `load_tflite(...).predict` does, which returns
    Keras's masked outputs for right- and left-padded sequences
    (`keras_lstm.export.masking` says what is refused, and why).

    Models with several inputs or outputs, or with an LSTM that returns
    its state (keras.io's seq2seq encoder `sequence -> [h, c]` and decoder
    step model `[token, h, c] -> [probs, h, c]`), export in float modes
    ("none", "float16", "dynamic") through `keras_lstm.export.multi_io`:
    an LSTM that takes or returns its state is unrolled into builtin ops
    over its fixed steps, the others stay fused; inputs keep the Keras
    inputs' names and outputs are `output_<i>` in Keras's order.

    Args:
        model: A built Sequential or Functional Keras model with one float32
            input `(batch, time, features)` or one `(batch, time)` token-id
            input read by an Embedding, and one output (stateful layers
            export as a streaming file, see `streaming`), or a QAT model
            from `keras_lstm.export.quantize_model` (integer modes only), or
            a model with several float32 inputs and outputs (see above;
            then `representative_data`/`check_data` are lists of arrays,
            one per input, or dicts by input name, and `timesteps` may be a
            dict from input name to length).
        path: Where to write the `.tflite` file. Its directory must exist;
            an existing file is replaced only on success.
        quantization: A `Quantization` or its value: `"none"`, `"float16"`,
            `"dynamic"`, `"int8"` or `"int16x8"`. Default: `"none"`.
        representative_data: Array `(num_sequences, timesteps,
            features)` of typical inputs (cast to float32), or integer
            token ids `(num_sequences, timesteps)` for a token model.
            Required for `"int8"` and `"int16x8"`: calibration, each
            sequence from a zero LSTM state. Without `check_data`, a
            seeded random 20 % (`calibration.HOLDOUT_SHARE`) is held out
            of calibration to verify the file; in float modes, nothing is
            calibrated and all of it verifies the file. Default: `None`.
        check_data: Held-out sequences, shaped like `representative_data`,
            to verify the file on (at most
            `verification.CHECK_LIMIT`). Default: `None`: held out of
            `representative_data`, or, without any data, random-normal
            sequences or random token ids, padded on both sides for a
            masked model (the report says which).
        batch_size: The file's fixed batch size. Default: `1`.
        timesteps: The file's sequence length, needed when the model's time
            dimension is `None`. With `streaming=True`, the length of the
            check sequences. Default: `None`.
        streaming: Write a single-frame model `(batch_size, 1, features)`
            whose LSTM state persists between invocations, so T calls give
            the Keras output on a T-step sequence. A model with
            `stateful=True` layers always exports so (implied with a
            warning when `False`): the file keeps the state between calls
            as the layers do. Default: `False`.
        external_state: With `streaming=True`, keep the state as explicit
            inputs `h_i`, `c_i` and outputs `h_i_out`, `c_i_out` (one step
            in FULLY_CONNECTED, LOGISTIC, TANH, MUL and ADD), for runtimes
            without variable tensors. Float modes only. Default: `False`.
        tolerance: Largest accepted max-abs error against Keras on the check
            sequences. Default: `None`, the mode's bound
            (`Quantization.default_tolerance`), which scales with the
            outputs.
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
            or is farther from Keras than `tolerance` on the check
            sequences.
    """
    # Several inputs or outputs, or LSTM state at the boundary (an encoder
    # with return_state, a decoder step model): the same stages, with the
    # state lowered explicitly. Imported here: multi_io builds on this
    # module's stages.
    from keras_lstm.export import multi_io

    lowering.require_tensorflow_backend("to_tflite")
    # The same options go to whichever exporter takes the model.
    options = dict(
        quantization=quantization,
        representative_data=representative_data,
        check_data=check_data,
        batch_size=batch_size,
        timesteps=timesteps,
        streaming=streaming,
        external_state=external_state,
        tolerance=tolerance,
        progress=progress,
    )
    if not qat.is_qat_model(model) and multi_io.applies(model):
        return multi_io.to_tflite(model, path, **options)
    plan = _plan(model, path, **options)
    quantization = plan.quantization

    # 2. Lower: rebuild with keras_lstm.LSTM layers and trace.
    export = lowering.export_model(
        plan.model, batch_size=plan.batch_size, timesteps=plan.file_steps
    )
    function, concrete, lstm_calls = _trace(
        export,
        batch_size=plan.batch_size,
        timesteps=plan.file_steps,
        model_input=plan.input,
        streaming=plan.streaming,
        external=plan.external_state,
    )

    # 3-4. Convert, calibrating from zero states; rewrite.
    content = _convert(export, function, concrete, plan, progress)
    content = _rewrite(content, quantization)
    content = _record_padding(content, plan.input.padding)

    # 5. What the file holds.
    ops, fused = _check_content(
        content, expected_lstm_ops=lstm_calls, external=plan.external_state
    )
    _warn_unquantized(content, quantization, fused)

    # 6-7. Verify on held-out sequences, then move the file into place.
    check, check_name = _check_set(plan)
    expected = verification.keras_predict(plan.model, check)
    with files.staged_file(plan.path) as temp:
        temp.write_bytes(content)
        runner = runners.load_tflite(temp)
        actual = runner.predict(check)
        output = runner.outputs[
            [t.name for t in runner.outputs].index(contract.OUTPUT)
        ]
        checked = verification.verify(
            actual,
            expected,
            check,
            check_name,
            quantization=quantization,
            bound=verification.tolerance_for(
                quantization,
                expected,
                output_scale=output.scale,
                tolerance=plan.tolerance,
            ),
            streaming=plan.streaming,
        )

    calibrated = plan.split.calibration
    report = TFLiteReport(
        path=plan.path,
        size_bytes=len(content),
        ops=ops,
        inputs=runner.inputs,
        outputs=runner.outputs,
        quantization=quantization,
        batch_size=plan.batch_size,
        timesteps=plan.file_steps,
        streaming=plan.streaming,
        external_state=plan.external_state,
        fused_lstm_ops=fused,
        calibration_sequences=0 if calibrated is None else len(calibrated),
        check_set=checked.check_set,
        check_sequences=checked.sequences,
        check_timesteps=checked.timesteps,
        max_abs_error=checked.max_abs_error,
        tolerance=checked.tolerance,
        output_range=checked.output_range,
        argmax_agreement=checked.argmax_agreement,
        tflite_micro_blockers=runners.tflite_micro_blockers(content),
        input_kind=plan.input.kind,
        padding=plan.input.padding,
    )
    logger.info(
        "Wrote %s (%d bytes, %s): max abs error %.3g <= %.3g on %s.",
        plan.path,
        report.size_bytes,
        quantization.value,
        report.max_abs_error,
        report.tolerance,
        report.check_set,
    )
    return report
