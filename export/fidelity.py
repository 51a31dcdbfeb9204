"""Fidelity: is an integer file a faithful quantization of its float graph?

A lossy file's error against Keras mixes two things: the rounding that
int8 costs, and anything the file gets wrong (a wrong scale written into
the flatbuffer, a broken rewrite). This module measures the second alone,
where the package writes its own integer parameters: the fused LSTM ops
(`keras_lstm.export.rewrite` repairs and requantizes them).

Each `UNIDIRECTIONAL_SEQUENCE_LSTM` op is run on LiteRT's reference
kernels with every tensor preserved. Its own inputs, weights and biases,
dequantized with the file's scales, are fed to the float LSTM
(`keras_lstm.recurrence.lstm_step`, the package's one gate math) from a
zero state, each step from the op's own previous output `h` (teacher
forcing) and the replay's own `c`, clipped to the range the file's cell
state represents, and its output is compared with the float one in units
of the output's quantum. A faithful integer LSTM stays within
`FAITHFUL_QUANTA` of it: it rounds its gates to int16, its cell state to
its int16 scale and its hidden state to the output's scale at every step,
and these roundings stay around a quantum.

Why teacher forcing: the integer spec rounds `h` to the output's int8
grid at every step, so a replay that runs on its own `h` measures how far
the float model moves under that rounding, which layer norm can amplify
far past any bound, not whether the op computes its steps right. Measured
(2026-12-03) on `examples/variants.py`'s `LSTM(32, use_layer_norm=True)`
on JapaneseVowels, whose test sequences start with up to 22 zero frames
(left padding; all but one with 3 or more): with zero input and zero
state the first step's gates are their biases and `h` is at most 0.034,
0 to 5 output quanta (0.0075); the next
step's pre-activation `U h` then has a spread of 0.007 to 0.010 per gate,
which layer norm divides by (a gain of 95 to 146), so the int8 rounding of
`h` (half a quantum, up to 0.0037 each) moves the normalised gates by 0.26
to 0.40 and the next `h` by 8 to 10 quanta. The float LSTM itself, its `h`
rounded to the output grid at every step, is 15.1 quanta from the
unrounded one (3 epochs) and 47.5 (30 epochs); the free-running replay
measured 16.3 and 50.2 (worst at step 2, and at step 15 of a sequence
with 9 zero frames) and refused the file. The op, replayed from its own
`h`: 0.70 and 1.39, 0.5 to 0.7 at each step; free-running from the op's
state after the zero frames, over the real frames only: 2.75 and 2.93;
the one sequence without zero frames, free-running: 1.1. Its integer
layer norm is not the cause: at that step `U h` spreads over 100 to 134
quanta of its int16 intermediate (3 epochs), and the op's step is within
0.7 quanta of the float one there.
(`tests/test_variant_export.py` has an 8-unit model with the same regime:
54 quanta free-running, 0.57 teacher-forced.)

Measured with the free-running replay (2026-12-03): 0.61 to 4.67 quanta
on 86 random trained architectures (`tools/random_models.py`, seeds 0-99:
stacked, Bidirectional, masked, token, Conv1D); 0.77 on a 24-step
LSTM(32) regression; 5.46 on a streaming token model (`test_inputs`). On
the files re-measured with teacher forcing the figures are lower or
equal: `tools/random_models.py --models 20` (seeds 0-19), 17 exported,
0.53 to 0.60; the regression of `test_verification` 0.86 → 0.53; the int8
variant models of `test_variant_export` (held out) 1.12 → 0.52 (CIFG,
peepholes, layer norm), 0.87 → 0.75 (CIFG, layer norm, projection,
clips), 6.46 and 11.0 unchanged for peepholes with a projection and for
the layer-norm projection in a Bidirectional (1.0 and 13.3 on the
calibration data, free-running: held-out values past the calibrated
ranges). The projected ones pay for TFLite's integer spec: `o * tanh(c)`
is rounded to int8 (the hidden intermediate) before the projection, whose
weights add up those roundings. Broken files stay past the bound:
a cell-state scale multiplied by 3, which the kernel cannot express (it
shifts by powers of two), 107.5 quanta (125.5 free-running); a
hidden-state scale off by a factor of 2, 66.3 (125.7); the variant
repairs of `rewrite` undone, 118.4, 127.5, 30.6 and 16.5 (127.7, 127.5,
30.7 and 16.3; the last, a projection bias folded with the wrong sign on
a 5-unit model, is the closest to the bound either way).

LiteRT has no int16x8 LSTM kernel, so an int16x8 file's LSTMs are checked
on the int8 file it is rewritten from (`keras_lstm.export.rewrite.
requantize_int16x8` changes only parameters, each by a rule); its output is
judged against Keras like every file.
"""

import keras
import numpy as np

from keras_lstm import recurrence
from keras_lstm.export import _compat, flatbuffer
from keras_lstm.export.flatbuffer import LSTM, LSTM_OP

FAITHFUL_QUANTA = 16.0
"""Largest error of a fused integer LSTM op against the float LSTM on its
own inputs, in output quanta: about three times the largest faithful
figure measured on plain LSTMs, 1.2 times that of a projected variant
(13.3), an eighth of most broken ones (the module docstring)."""

def _dequantize(details, value):
    scale, zero_point = details["quantization"]
    if not scale:
        return value.astype(np.float32)
    return ((value.astype(np.float64) - zero_point) * scale).astype(np.float32)


def _record(interpreter, ops, x, *, batch_size, streaming):
    """Each LSTM op's (input, output) tensors over `x`, dequantized."""
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    data = interpreter.get_input_details()[0]
    scale, zero_point = data["quantization"]
    dtype = data["dtype"]
    if scale and not np.issubdtype(x.dtype, np.integer):
        limits = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zero_point), limits.min, limits.max)
    x = x.astype(dtype)
    seen = {id(op): ([], []) for op in ops}
    count = x.shape[0]
    for start in range(0, count, batch_size):
        chunk = x[start : start + batch_size]
        taken = chunk.shape[0]
        if taken < batch_size:
            filler = np.zeros((batch_size - taken, *x.shape[1:]), x.dtype)
            chunk = np.concatenate([chunk, filler])
        interpreter.reset_all_variables()
        frames = (
            [chunk[:, t : t + 1] for t in range(chunk.shape[1])]
            if streaming
            else [chunk]
        )
        steps = {id(op): ([], []) for op in ops}
        for frame in frames:
            interpreter.set_tensor(data["index"], frame)
            interpreter.invoke()
            for op in ops:
                ins, outs = steps[id(op)]
                source, target = op["inputs"][LSTM.input], op["outputs"][0]
                ins.append(
                    _dequantize(details[source], interpreter.get_tensor(source))
                )
                outs.append(
                    _dequantize(details[target], interpreter.get_tensor(target))
                )
        for op in ops:
            ins, outs = steps[id(op)]
            seen[id(op)][0].append(np.concatenate(ins, axis=1)[:taken])
            seen[id(op)][1].append(np.concatenate(outs, axis=1)[:taken])
    return {
        key: (np.concatenate(ins), np.concatenate(outs))
        for key, (ins, outs) in seen.items()
    }


def _limits(details):
    """The real range a quantized tensor represents."""
    scale, zero_point = details["quantization"]
    info = np.iinfo(details["dtype"])
    return (info.min - zero_point) * scale, (info.max - zero_point) * scale


def _float_lstm(interpreter, op, options, sequences, outputs):
    """The float LSTM on `sequences` with the op's dequantized weights,
    each step from the op's own previous output.

    The op's variant operands (peepholes, CIFG's absent input gate, layer
    norm, projection and its bias, `options`' clips; `lstm_shared.h`) are
    read back and dequantized like its weights, into the step's
    `recurrence.LSTMVariant`. Its `h` and `c` are clipped, step by step, to
    the ranges the file's hidden and cell states represent: a value the
    calibration never saw is a range question (`verification.Ranges`),
    not a fidelity one.

    Each step's `h` is the op's own previous output (`outputs`, dequantized;
    teacher forcing) rather than the replay's: the integer spec rounds `h`
    to the output's int8 grid at every step, and a free-running float
    replay then measures how far the float model moves under that rounding
    (which layer norm can amplify a hundredfold, the module docstring),
    not whether the op computes each step right. `c`, which the op keeps in
    a variable tensor no reader sees mid-sequence, stays the replay's own.
    """
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    def weight(position):
        index = op["inputs"][position] if position < len(op["inputs"]) else -1
        if index < 0:
            return None
        return _dequantize(details[index], interpreter.get_tensor(index))

    # TFLite stores one (units, in) matrix per gate, in Keras's gate order;
    # under CIFG the input gate's are absent (`recurrence.gate_count`).
    gates = [
        gate for gate, p in enumerate(LSTM.input_weights)
        if weight(p) is not None
    ]
    kernel = np.concatenate(
        [weight(LSTM.input_weights[g]).T for g in gates], 1
    )
    recurrent = np.concatenate(
        [weight(LSTM.recurrent_weights[g]).T for g in gates], 1
    )
    bias = np.concatenate([weight(LSTM.gate_biases[g]) for g in gates])
    peepholes = [weight(p) for p in LSTM.peephole_weights]
    peepholes = [p for p in peepholes if p is not None]
    layer_norm = [weight(p) for p in LSTM.layer_norm_coefficients]
    layer_norm = [p for p in layer_norm if p is not None]
    projection = weight(LSTM.projection_weights)
    variant = recurrence.LSTMVariant(
        coupled_input_forget=len(gates) == 3,
        peephole_kernel=np.stack(peepholes) if peepholes else None,
        layer_norm_scale=np.stack(layer_norm) if layer_norm else None,
        projection_kernel=None if projection is None else projection.T,
        projection_bias=weight(LSTM.projection_bias),
        cell_clip=options["cell_clip"] or None,
        projection_clip=options["proj_clip"] or None,
    )
    h_low, h_high = _limits(details[op["outputs"][0]])
    c_low, c_high = _limits(details[op["inputs"][LSTM.cell_state]])
    units = recurrent.shape[1] // len(gates)
    h = np.zeros((sequences.shape[0], recurrent.shape[0]), np.float32)
    c = np.zeros((sequences.shape[0], units), np.float32)
    projected = recurrence.project_inputs(sequences, kernel)
    expected = []
    for t in range(sequences.shape[1]):
        step = recurrence.lstm_step(
            projected[:, t],
            h,
            c,
            recurrent,
            keras.activations.tanh,
            keras.activations.sigmoid,
            bias=bias,
            variant=variant,
        )
        h = outputs[:, t]
        c = np.clip(np.asarray(step.c), c_low, c_high)
        expected.append(np.clip(np.asarray(step.h), h_low, h_high))
    return np.stack(expected, axis=1)


def lstm_error_quanta(
    content: bytes, x: np.ndarray, *, batch_size: int, streaming: bool
) -> float | None:
    """The largest error of the file's integer LSTM ops, in output quanta.

    Args:
        content: An integer file with one data input (`to_tflite`'s).
        x: Inputs to run, as the file takes them over time: `(n, T, ...)`
            float32 (quantized here with the input's parameters) or int32
            token ids.
        batch_size: The file's batch size.
        streaming: Whether the file takes one frame per invocation (its
            LSTM state then carries from frame to frame).

    Returns:
        The max over ops and elements of |op output - float LSTM| / the
        output scale, or `None` when the file has no integer LSTM op
        (none, or float ones).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_preserve_all_tensors=True,
        # Delegates replace ops whose tensors we read.
        experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ),
    )
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    lstm_ops = [
        op
        for op in _compat.interpreter_ops(interpreter)
        if op["op_name"] == LSTM_OP
    ]
    # The interpreter runs the first subgraph's ops in the file's order.
    options = dict(
        zip(
            (id(op) for op in lstm_ops),
            flatbuffer.lstm_options(content),
            strict=True,
        )
    )
    ops = [
        op for op in lstm_ops if details[op["outputs"][0]]["quantization"][0]
    ]
    if not ops:
        return None
    recorded = _record(
        interpreter, ops, x, batch_size=batch_size, streaming=streaming
    )
    worst = 0.0
    for op in ops:
        sequences, actual = recorded[id(op)]
        expected = _float_lstm(
            interpreter, op, options[id(op)], sequences, actual
        )
        scale = details[op["outputs"][0]]["quantization"][0]
        worst = max(worst, float(np.max(np.abs(actual - expected))) / scale)
    return worst
