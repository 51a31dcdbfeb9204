"""Models with several inputs or outputs, and LSTM state at the boundary.

The keras.io character-level seq2seq (lstm_seq2seq) needs three models:
an encoder `sequence -> [h, c]` (`return_state=True`), a decoder step model
`[token, h, c] -> [probs, h, c]` (`initial_state=` from inputs), and the
training model that joins them. `to_tflite` routes such models here
(`applies`). The pipeline is `to_tflite`'s, stage for stage:

1. check every argument; `int8`/`int16x8` are refused (see `_refuse_integer`);
2. lower with `lowering.StateLowering`: an LSTM call that starts from zeros
   and does not return its state becomes the fused op; one that takes or
   returns its state is unrolled into builtin ops, since the fused op's
   state lives in variable tensors that no input or output reaches
   (TF#62775);
3. convert, with no WHILE, Flex or CUSTOM op, one subgraph, fixed shapes;
4. verify every output against Keras on held-out inputs;
5. write atomically.

File contract (`contract.input_names`, `contract.output_names`): inputs are
named after the Keras inputs, outputs `output_<i>` in Keras's order (one
output: `output`). `load_tflite(path).predict([...])` and `.run({...})`
feed and return them by name.
"""

import logging
import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_lstm.export import (
    contract,
    files,
    lowering,
    runners,
    tflite,
    verification,
)
from keras_lstm.export.quantization import Quantization
from keras_lstm.layers import lowering as lowering_scope

logger = logging.getLogger(__name__)


def applies(model) -> bool:
    """Whether `to_tflite` exports `model` through this module.

    True for a graph model with several inputs or outputs, or with an LSTM
    that returns its state (`return_state=True`).
    """
    if not lowering.is_graph_model(model):
        return False
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        return False
    if len(inputs) != 1 or len(outputs) != 1:
        return True
    return any(
        lowering.is_lstm_layer(layer) and layer.return_state
        for layer in lowering.iter_layers(model)
    )


def _refuse_integer(model, quantization):
    carries_state = any(len(t.shape) == 2 for t in model.inputs) or any(
        lowering.is_lstm_layer(layer) and layer.return_state
        for layer in lowering.iter_layers(model)
    )
    if not carries_state:
        raise ValueError(
            f"quantization={quantization.value!r} is not supported yet for "
            f"model {model.name!r}, which has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs: integer calibration feeds one "
            "input. Use 'dynamic' or 'float16', or export the part with one "
            "input and one output as a model of its own."
        )
    raise ValueError(
        f"quantization={quantization.value!r} cannot export model "
        f"{model.name!r}: its LSTM state crosses the file boundary (an "
        "encoder returning [h, c], a decoder step taking them). TFLite's "
        "integer LSTM keeps h and c inside the fused op (an int16 cell "
        "state in variable tensors) and exposes neither, and the unrolled "
        "builtin steps that carry the state here would pass the cell "
        "state, which is unbounded, through int8 tensors at every call. "
        "Use quantization='dynamic' (int8 weights, float state, a quarter "
        "of the weight bytes) or 'float16'; for an int8 file, export a "
        "model whose LSTMs start from zero and return no state, e.g. a "
        "single-frame streaming file (streaming=True) that keeps the state "
        "in the op."
    )


def _input_shapes(model, timesteps):
    """Each input's shape without the batch axis, with time fixed."""
    names = [t.name for t in model.inputs]
    if timesteps is None or isinstance(timesteps, numbers.Integral):
        per_input = {name: timesteps for name in names}
    elif isinstance(timesteps, dict):
        unknown = set(timesteps) - set(names)
        if unknown:
            raise ValueError(
                f"Received timesteps for unknown inputs {sorted(unknown)}; "
                f"the model's inputs are {names}."
            )
        per_input = {name: timesteps.get(name) for name in names}
    else:
        raise TypeError(
            "Received an invalid value for argument `timesteps`: expected "
            "a positive integer, a dict from input name to one, or None; "
            f"got {timesteps!r}."
        )
    shapes = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape)[1:]
        steps = per_input[tensor.name]
        if steps is not None:
            tflite._positive_int("timesteps", steps)
        if tensor.dtype != "float32":
            raise ValueError(
                f"Model {model.name!r} has the {tensor.dtype} input "
                f"{tensor.name!r}; a model with several inputs or outputs "
                "exports with float32 inputs (one-hot tokens, frames, "
                "states)."
            )
        if len(shape) == 2 and shape[0] is None:
            if steps is None:
                raise ValueError(
                    f"Input {tensor.name!r} of model {model.name!r} has a "
                    "time dimension of None and TFLite needs it fixed: pass "
                    "timesteps=N, or timesteps={name: N, ...} per input "
                    "(1 for a decoder step model)."
                )
            shape = (steps, shape[1])
        elif steps is not None and len(shape) == 2 and shape[0] != steps:
            raise ValueError(
                f"Received timesteps={steps} for input {tensor.name!r}, "
                f"which has a fixed length of {shape[0]}."
            )
        if None in shape:
            raise ValueError(
                f"Input {tensor.name!r} of model {model.name!r} has shape "
                f"{tuple(tensor.shape)}; every axis but the batch must be "
                "known."
            )
        shapes.append(shape)
    return shapes


def _data(name, data, model, shapes):
    """`data` as a list of float32 arrays in model input order, or None."""
    if data is None:
        return None
    names = [t.name for t in model.inputs]
    if isinstance(data, dict):
        missing = set(names) - set(data)
        if missing:
            raise ValueError(
                f"`{name}` misses the inputs {sorted(missing)}; give one "
                f"array per input of {names}."
            )
        data = [data[n] for n in names]
    elif isinstance(data, np.ndarray) and len(names) == 1:
        data = [data]
    if not isinstance(data, (list, tuple)) or len(data) != len(names):
        raise ValueError(
            f"`{name}` must be a list of {len(names)} arrays (one per input "
            f"of {names}, in order) or a dict by input name."
        )
    arrays = []
    for input_name, array, shape in zip(names, data, shapes, strict=True):
        array = np.asarray(array, np.float32)
        if array.shape[1:] != shape or array.shape[0] == 0:
            raise ValueError(
                f"`{name}` for input {input_name!r} must have shape "
                f"(num_samples, {', '.join(map(str, shape))}), got "
                f"{array.shape}."
            )
        if not np.isfinite(array).all():
            raise ValueError(
                f"`{name}` for input {input_name!r} holds NaN or infinite "
                "values."
            )
        arrays.append(array)
    if len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(
            f"`{name}` must hold the same number of samples for every input, "
            f"got {[a.shape[0] for a in arrays]}."
        )
    return arrays


def _trace(export, names_in, names_out, shapes, batch_size):
    specs = [
        tf.TensorSpec((batch_size, *shape), tf.float32, name=name)
        for name, shape in zip(names_in, shapes, strict=True)
    ]
    lowerings = []

    def serve(*inputs):
        state_lowering = lowering.StateLowering()
        lowerings.append(state_lowering)
        model_inputs = list(inputs) if len(inputs) > 1 else inputs[0]
        with lowering_scope(state_lowering):
            outputs = keras.tree.flatten(export(model_inputs, training=False))
        # An identity per output: an encoder's last output and h are one
        # tensor, and each signature output needs its own name.
        return {
            name: tf.identity(output, name=name)
            for name, output in zip(names_out, outputs, strict=True)
        }

    function = tf.function(serve, input_signature=specs)
    concrete = function.get_concrete_function()
    return function, concrete, lowerings[-1]


def _keras_outputs(model, inputs):
    outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    return [np.asarray(o, np.float32) for o in keras.tree.flatten(outputs)]


def _check_inputs(model, shapes, check, check_name, batch_size):
    if check is not None:
        if check[0].shape[0] > verification.CHECK_LIMIT:
            check_name = f"{check_name}, first {verification.CHECK_LIMIT}"
        return [a[: verification.CHECK_LIMIT] for a in check], check_name
    count = max(batch_size, verification.GENERATED_SEQUENCES)
    rng = np.random.default_rng(0)
    generated = [
        rng.normal(size=(count, *shape)).astype(np.float32) for shape in shapes
    ]
    return generated, (
        f"generated ({count} random-normal samples per input: no data was "
        "given, so this checks the arithmetic, not the ranges)"
    )


def to_tflite(
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
) -> "tflite.TFLiteReport":
    """`keras_lstm.export.to_tflite` for models that `applies` to.

    Same arguments as `to_tflite`, but `representative_data` and
    `check_data` are lists of arrays (one per model input, in order) or
    dicts by input name, and `timesteps` may be a dict from input name to
    length. In float modes nothing is calibrated: without `check_data`,
    `representative_data` verifies the file.

    Raises:
        ValueError: for integer quantization (the state crosses the file
            boundary), `streaming`/`external_state` (the state is already
            explicit), or a bad argument.
        ExportError: if the file is not builtin-only or misses Keras's
            outputs past the tolerance.
    """
    path = tflite._check_path(path)
    quantization = Quantization.parse(quantization)
    batch_size = tflite._positive_int("batch_size", batch_size)
    tolerance = tflite._check_tolerance(tolerance)
    if quantization.is_integer:
        _refuse_integer(model, quantization)
    if streaming or external_state:
        raise ValueError(
            f"Model {model.name!r} has several inputs or outputs, or an LSTM "
            "that returns its state: its state is already explicit. Export "
            "it with streaming=False and external_state=False, and call the "
            "file once per step (e.g. a decoder step model with timesteps=1)."
        )
    if progress is not None and not callable(progress):
        raise TypeError(
            "Received an invalid value for argument `progress`: expected a "
            f"callable progress(done, total) or None, got {progress!r}."
        )
    lowering.check_model(model, explicit_state=True)
    shapes = _input_shapes(model, timesteps)
    data = _data("representative_data", representative_data, model, shapes)
    check = _data("check_data", check_data, model, shapes)
    if check is None and data is not None:
        check, check_name = data, "representative_data (no calibration)"
    else:
        check_name = "check_data"
    names_in = contract.input_names([t.name for t in model.inputs])
    names_out = contract.output_names(len(model.outputs))

    # Lower and trace.
    export = lowering.export_model(
        model, batch_size=batch_size, input_shapes=shapes
    )
    function, concrete, state_lowering = _trace(
        export, names_in, names_out, shapes, batch_size
    )

    # Convert (no calibration: float modes only), inspect.
    plan = _ConvertPlan(quantization, batch_size)
    content = tflite._convert(export, function, concrete, plan, progress)
    content = tflite._rewrite(content, quantization)
    ops, fused = tflite._check_content(
        content, expected_lstm_ops=state_lowering.fused, external=False
    )
    tflite._warn_unquantized(content, quantization, fused)

    # Verify every output on the check inputs, then write.
    check, check_name = _check_inputs(
        model, shapes, check, check_name, batch_size
    )
    expected = _keras_outputs(model, check)
    with files.staged_file(path) as temp:
        temp.write_bytes(content)
        runner = runners.load_tflite(temp)
        actual = runner.predict(dict(zip(names_in, check, strict=True)))
        if len(expected) == 1:
            actual = [actual]
        results = []
        for name, got, want in zip(names_out, actual, expected, strict=True):
            bound = verification.tolerance_for(
                quantization, want, output_scale=None, tolerance=tolerance
            )
            results.append(
                verification.verify(
                    got,
                    want,
                    _as_sequences(check[0]),
                    f"{check_name}; output {name!r}",
                    quantization=quantization,
                    bound=bound,
                    streaming=False,
                )
            )
    worst = max(results, key=lambda r: r.max_abs_error / r.tolerance)
    agreement = next(
        (r.argmax_agreement for r in results if r.argmax_agreement is not None),
        None,
    )
    report = tflite.TFLiteReport(
        path=path,
        size_bytes=len(content),
        ops=ops,
        inputs=runner.inputs,
        outputs=runner.outputs,
        quantization=quantization,
        batch_size=batch_size,
        timesteps=runner.timesteps,
        streaming=False,
        external_state=bool(state_lowering.unrolled),
        fused_lstm_ops=fused,
        calibration_sequences=0,
        check_set=check_name,
        check_sequences=worst.sequences,
        check_timesteps=worst.timesteps,
        max_abs_error=max(r.max_abs_error for r in results),
        tolerance=worst.tolerance,
        output_range=max(r.output_range for r in results),
        argmax_agreement=agreement,
        tflite_micro_blockers=runners.tflite_micro_blockers(content),
    )
    logger.info(
        "Wrote %s (%d bytes, %s; %d fused, %d unrolled LSTM calls): max abs "
        "error %.3g on %s.",
        path,
        report.size_bytes,
        quantization.value,
        fused,
        len(state_lowering.unrolled),
        report.max_abs_error,
        check_name,
    )
    return report


def _as_sequences(array):
    """A check input as `(n, steps, features)`, for verification messages."""
    return array if array.ndim == 3 else array[:, None, :]


class _ConvertPlan:
    """What `tflite._convert` reads from a plan: no calibration."""

    def __init__(self, quantization, batch_size):
        self.quantization = quantization
        self.batch_size = batch_size
        self.streaming = False
        self.split = _NoCalibration()


class _NoCalibration:
    calibration = None
