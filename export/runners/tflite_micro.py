"""Running exported files on TFLite Micro, and saying when it cannot.

- `run_tflite_micro(path, x)` runs sequences through the TFLite Micro
  interpreter, with `TFLiteRunner.predict`'s contract;
  `tflm_arena_size(path)` finds the smallest tensor arena it needs.
- `tflite_micro_blockers(content)` lists every reason TFLite Micro cannot
  run a file, naming the op; the functions above and the runner's
  `"tflite_micro"` backend refuse such a file with
  `TFLiteMicroUnsupportedError` before running it.

Why refuse up front: TFLite Micro has no hybrid (dynamic-range) LSTM kernel,
yet a dynamic-range file runs on it and returns NaN without an error
(measured, TFLM 2026). Other unsupported ops make the interpreter fail to
build ("Didn't find op for builtin opcode 'TILE'") with a message on
stderr and a bare "TFLM failed to allocate tensors" exception.

`run_tflite_micro`, `tflm_arena_size` and the blocker probe run the
interpreter in subprocesses: the TFLM LSTM kernel crashes the process when
its arena is too small, and its diagnostics go to the process's stderr. The
runner's backend (`MicroBackend`) runs in-process with a generous arena.
"""

import dataclasses
import functools
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from keras_lstm.export import flatbuffer, masking
from keras_lstm.export.runners.layout import (
    LayoutKind,
    as_sequences,
    assemble,
    chunks,
    layout_of,
)

# Runs in a fresh interpreter process: the TFLM LSTM kernel segfaults when
# its arena is too small, which must not take the caller down. It reads a
# plan (inputs per invocation, resets) and writes the raw outputs.
_TFLM_WORKER = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime

path, arena, plan_path, out_path, record = sys.argv[1:6]
plan = np.load(plan_path)
interpreter = runtime.Interpreter.from_file(path, arena_size=int(arena))
results = {}
for i in range(int(plan["count"])):
    if plan["reset"][i]:
        interpreter.reset()
    for j in range(int(plan["inputs"])):
        interpreter.set_input(plan[f"in_{i}_{j}"], j)
    interpreter.invoke()
    for j in range(int(plan["outputs"])):
        results[f"out_{i}_{j}"] = interpreter.get_output(j)
np.savez(out_path, **results)
if record == "1":
    interpreter.print_allocations()
"""

_DEFAULT_ARENA = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class TFLMResult:
    """Outputs of `run_tflite_micro`.

    Attributes:
        outputs: Float32 outputs, one row per input sequence.
        raw_outputs: The integer (or float) outputs as the file gives them.
        arena_size: The tensor arena the interpreter ran with, in bytes.
    """

    outputs: np.ndarray
    raw_outputs: np.ndarray
    arena_size: int


@dataclasses.dataclass(frozen=True)
class TFLMArena:
    """Tensor arena that TFLite Micro needs for a file.

    Attributes:
        arena_size: The smallest arena, in bytes (to `alignment`), with
            which the file runs and gives the same outputs as with a large
            one. Use it (plus margin for your platform's allocator) for
            `tensor_arena` on the device.
        recorded_bytes: What TFLM's `RecordingMicroAllocator` reports as
            used (head + tail); the Python interpreter needs more, for its
            own bookkeeping in the arena.
        alignment: Granularity of the search, in bytes.
    """

    arena_size: int
    recorded_bytes: int | None
    alignment: int


def _tflm_layout(path, *, external_state=False):
    """The file's layout, once it is known that TFLite Micro can run it.

    `external_state`: whether the caller feeds an external-state file's
    state inputs itself (the arena search does, with zeros).
    """
    with open(path, "rb") as f:
        content = f.read()
    layout = layout_of(content)
    if layout.kind is LayoutKind.NAMED:
        raise ValueError(
            f"{path} has several named inputs or outputs; run it with "
            "load_tflite(path, backend='tflite_micro').predict([...]) or "
            ".run({...}), which feed them by name."
        )
    if layout.kind is LayoutKind.EXTERNAL_STATE and not external_state:
        raise ValueError(
            f"{path} keeps its LSTM state as explicit inputs and outputs "
            "(the file for TFLite Micro's CMSIS-NN kernels, which keep no "
            "state between invokes); run it with load_tflite(path, "
            "backend='tflite_micro').predict(x) or .step(frame), which "
            "feed the state back."
        )
    refuse_blocked(content, path)
    return layout


def _tflm_plan(layout, x):
    """Invocations (reset flag, quantized inputs) for sequences `x`."""
    info = layout.inputs[layout.data_input]
    plan = []
    for chunk, _ in chunks(x, layout.batch_size):
        if layout.kind is LayoutKind.SEQUENCES:
            plan.append((True, info.quantize(chunk)))
        else:
            for t in range(x.shape[1]):
                plan.append((t == 0, info.quantize(chunk[:, t : t + 1])))
    return plan


def _run_tflm_process(
    path, arena_size, plan, *, outputs=1, record=False, timeout=600
):
    """Runs `plan` in a TFLM subprocess; returns (outputs | None, stderr).

    `plan` holds `(reset, values)` per invocation: `values` the array for
    input 0, or a tuple with one array per input. The outputs are output
    0's array per invocation, or with `outputs > 1` a tuple of the first
    `outputs` arrays.
    """
    inputs = [
        values if isinstance(values, tuple) else (values,) for _, values in plan
    ]
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = os.path.join(tmp, "plan.npz")
        out_path = os.path.join(tmp, "out.npz")
        arrays = {
            "count": np.array(len(plan)),
            "inputs": np.array(len(inputs[0]) if inputs else 1),
            "outputs": np.array(outputs),
            "reset": np.array([reset for reset, _ in plan]),
        }
        for i, values in enumerate(inputs):
            for j, value in enumerate(values):
                arrays[f"in_{i}_{j}"] = value
        np.savez(plan_path, **arrays)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _TFLM_WORKER,
                str(path),
                str(int(arena_size)),
                plan_path,
                out_path,
                "1" if record else "0",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0 or not os.path.exists(out_path):
            return None, done.stderr
        with np.load(out_path) as result:
            raw = [
                tuple(result[f"out_{i}_{j}"] for j in range(outputs))
                for i in range(len(plan))
            ]
        return [r if outputs > 1 else r[0] for r in raw], done.stderr


def _tflm_outputs(layout, x, raw):
    """Assembles raw per-invocation outputs like `TFLiteRunner.predict`."""
    info = layout.outputs[layout.data_output]
    results, i = [], 0
    steps = 1 if layout.kind is LayoutKind.SEQUENCES else x.shape[1]
    for _, count in chunks(x, layout.batch_size):
        chunk = raw[i : i + steps]
        i += steps
        results.append(assemble(chunk)[:count])
    raw_all = np.concatenate(results, axis=0)
    return info.dequantize(raw_all), raw_all


def run_tflite_micro(
    path: str | os.PathLike, x: np.ndarray, *, arena_size: int | None = None
) -> TFLMResult:
    """Runs sequences through the TFLite Micro interpreter.

    Same contract as `TFLiteRunner.predict`: float32 in and out, any number
    of sequences (split and padded to the file's batch size), state reset
    (`interpreter.reset()`) before each batch of sequences; streaming files
    are fed frame by frame.

    Args:
        path: A file written by `to_tflite` (not an external-state one).
        x: `(num_sequences, timesteps, features)` float32, or integer
            token ids `(num_sequences, timesteps)` for a token file. For a
            file from a masked model, padded sequences: their valid steps
            are streamed (a streaming file is needed).
        arena_size: Tensor arena in bytes; `None` for 4 MiB (or 10 times
            the file size if larger).

    Returns:
        A `TFLMResult`.

    Raises:
        ValueError: for a bad `x` or an external-state file.
        TFLiteMicroUnsupportedError: (a `ValueError`) if TFLite Micro
            cannot run the file (`tflite_micro_blockers`); nothing is run.
        RuntimeError: if the interpreter fails (message includes its log).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at {path!r}.")
    if arena_size is None:
        arena_size = max(_DEFAULT_ARENA, 10 * os.path.getsize(path))
    elif (
        isinstance(arena_size, bool)
        or not isinstance(arena_size, int)
        or arena_size <= 0
    ):
        raise ValueError(
            "Received an invalid value for argument `arena_size`: "
            f"{arena_size!r}. Expected a positive number of bytes, or None."
        )
    layout = _tflm_layout(path)
    x = as_sequences(x, layout)
    if layout.padding is not None:
        plan, assemble_outputs = _padded_plan(layout, x, path)
    else:
        plan = _tflm_plan(layout, x)

        def assemble_outputs(raw):
            return _tflm_outputs(layout, x, raw)

    raw, log = _run_tflm_process(path, arena_size, plan)
    if raw is None:
        raise RuntimeError(
            f"TFLite Micro failed to run {path} with a {arena_size}-byte "
            f"arena. Its log ends with:\n{log[-2000:]}"
        )
    outputs, raw_outputs = assemble_outputs(raw)
    return TFLMResult(outputs, raw_outputs, int(arena_size))


def _padded_plan(layout, x, path):
    """A masked model's file: each sequence's valid frames, streamed.

    TFLite Micro cannot resize a whole-sequence file's time dimension, so
    masked inputs need a streaming file (`keras_lstm.export.masking`).
    """
    if layout.kind is not LayoutKind.STREAMING:
        raise ValueError(
            f"{path} takes whole sequences of {layout.timesteps} steps and "
            f"its model was masked ({layout.padding.describe()}). TFLite "
            "Micro runs masked inputs through a streaming file, fed only "
            "each sequence's valid steps: export with streaming=True, or "
            "run this file on LiteRT (load_tflite), which trims them."
        )
    info = layout.inputs[layout.data_input]
    groups = list(masking.groups(x, layout.padding, layout.batch_size))
    plan = []
    for _, batch in groups:
        for t in range(batch.shape[1]):
            plan.append((t == 0, info.quantize(batch[:, t : t + 1])))

    def assemble_outputs(raw):
        output = layout.outputs[layout.data_output]
        raw_all, i = None, 0
        for rows, batch in groups:
            last = np.asarray(raw[i + batch.shape[1] - 1])
            i += batch.shape[1]
            if raw_all is None:
                raw_all = np.zeros((x.shape[0], *last.shape[1:]), last.dtype)
            raw_all[rows] = last[: rows.size]
        return output.dequantize(raw_all), raw_all

    return plan, assemble_outputs


_RECORDED = re.compile(r"Arena allocation total (\d+) bytes")


def tflm_arena_size(
    path: str | os.PathLike,
    *,
    alignment: int = 16,
    max_arena_size: int = 64 * 1024 * 1024,
) -> TFLMArena:
    """Finds the smallest tensor arena with which TFLite Micro runs a file.

    Runs the file once with `max_arena_size` to get reference outputs and
    the allocator's own record, then searches upward from that record: a
    size passes if the file runs in a fresh process and gives the same
    outputs. Each try is a subprocess (about a second).

    Args:
        path: A file written by `to_tflite`.
        alignment: Search granularity in bytes.
        max_arena_size: Upper bound of the search.

    Returns:
        A `TFLMArena`.

    Raises:
        TFLiteMicroUnsupportedError: (a `ValueError`) if TFLite Micro
            cannot run the file (`tflite_micro_blockers`); nothing is run.
        RuntimeError: if the file does not run even with `max_arena_size`.
    """
    path = str(path)
    layout = _tflm_layout(path, external_state=True)
    shape = (layout.batch_size, max(layout.timesteps, 1), *layout.step_shape)
    if layout.tokens:
        x = np.zeros(shape, np.int32)  # id 0 is in every vocabulary
    else:
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    plan = _tflm_plan(layout, x)
    outputs = 1
    if layout.kind is LayoutKind.EXTERNAL_STATE:
        # One frame from a zero state; every output is compared.
        plan = [(reset, _with_zero_states(layout, v)) for reset, v in plan]
        outputs = len(layout.outputs)

    def run(size, **options):
        return _run_tflm_process(path, size, plan, outputs=outputs, **options)

    reference, log = run(max_arena_size, record=True)
    if reference is None:
        raise RuntimeError(
            f"TFLite Micro cannot run {path} even with a {max_arena_size}-byte "
            f"arena. Its log ends with:\n{log[-2000:]}"
        )
    match = _RECORDED.search(log)
    recorded = int(match.group(1)) if match else None

    def runs(size):
        found, _ = run(size)
        return found is not None and all(
            np.array_equal(a, b)
            for got, want in zip(found, reference, strict=True)
            for a, b in zip(
                got if outputs > 1 else (got,),
                want if outputs > 1 else (want,),
                strict=True,
            )
        )

    # The recorded total is a lower bound (the interpreter keeps its own
    # bookkeeping in the arena too): grow from it geometrically until a
    # size passes, then bisect. About ten runs instead of twenty-two.
    limit = max_arena_size // alignment
    low = max((recorded or alignment) // alignment, 1)
    if runs(low * alignment):
        return TFLMArena(low * alignment, recorded, alignment)
    step = max(low // 4, 1)
    high = min(low + step, limit)
    while high < limit and not runs(high * alignment):
        low, step = high, step * 2
        high = min(low + step, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if runs(middle * alignment):
            high = middle
        else:
            low = middle
    return TFLMArena(high * alignment, recorded, alignment)


def _with_zero_states(layout, frame):
    """All of an external-state file's inputs: `frame` and zero states."""
    return tuple(
        frame
        if position == layout.data_input
        else info.quantize(np.zeros(info.shape, np.float32))
        for position, info in enumerate(layout.inputs)
    )


class MicroBackend:
    """`TFLiteRunner`'s TFLite Micro backend: in process, generous arena.

    Only a too-small arena crashes the TFLM LSTM kernel; this one is
    `_DEFAULT_ARENA` or ten times the file, like `run_tflite_micro`'s. Files
    with blockers are refused before the interpreter is built.
    """

    def __init__(self, content, layout, num_threads, path):
        refuse_blocked(content, path)
        from tflite_micro.python.tflite_micro import runtime as tflm

        arena = max(_DEFAULT_ARENA, 10 * len(content))
        self._interpreter = tflm.Interpreter.from_bytes(
            bytes(content), arena_size=arena
        )

    def set(self, position, value):
        self._interpreter.set_input(value, position)

    def invoke(self):
        self._interpreter.invoke()

    def get(self, position):
        return self._interpreter.get_output(position)

    def reset(self):
        self._interpreter.reset()


# ---------------------------------------------------------------------------
# What TFLite Micro cannot run.


class TFLiteMicroUnsupportedError(ValueError):
    """TFLite Micro cannot run a file; raised before anything runs.

    Attributes:
        path: The file.
        blockers: Each reason, naming the op (`tflite_micro_blockers`).
    """

    def __init__(self, path: str, blockers: tuple[str, ...]):
        self.path = str(path)
        self.blockers = tuple(blockers)
        super().__init__(
            f"TFLite Micro cannot run {self.path}: "
            + "; ".join(self.blockers)
            + "."
        )


_FOR_TFLM = "export with quantization='int8' (or 'none') for TFLite Micro"

# Ops for which TFLite Micro has no kernel, among those our exports can
# hold; `tests/test_runners.py` checks each against the interpreter.
_NO_KERNEL = {
    "TILE": (
        "keras.ops.tile converts to TILE; run this file on LiteRT, or "
        "repeat by broadcasting (x * ones), as the export does for "
        "keras.layers.RepeatVector"
    ),
}


def _static_blockers(content):
    """(op name, reason) for what the file's tensors show TFLM lacks."""
    found = {}  # (op name, reason) -> operator indices, in order.
    for op in flatbuffer.operators(content):
        operands = [t for t in op.inputs if t is not None]
        float_activation = any(
            t.type == "FLOAT32" and not t.constant for t in operands
        )
        int8_weight = any(t.type == "INT8" and t.constant for t in operands)
        if float_activation and int8_weight and op.name == flatbuffer.LSTM_OP:
            reason = (
                "has float32 activations and int8 weights (dynamic-range "
                "quantization); TFLite Micro has no hybrid LSTM kernel and "
                f"returns NaN without an error: {_FOR_TFLM}"
            )
        elif float_activation and int8_weight:
            reason = (
                "has float32 inputs and int8 weights (dynamic-range "
                "quantization); TFLite Micro has no hybrid kernels and "
                f"fails to prepare it: {_FOR_TFLM}"
            )
        elif op.name == flatbuffer.LSTM_OP and _variant_parts(op):
            reason = (
                f"is an LSTM variant ({_variant_parts(op)}); TFLite Micro's "
                "LSTM kernel (ValidateTensorStatus / ValidateTensorSize), "
                "CMSIS-NN and Vela run the plain LSTM only: for TFLite "
                "Micro export the model with streaming=True, "
                "external_state=True (quantization 'none' or 'int16x8'), "
                "which computes the variant's step in builtin ops with the "
                "state as explicit inputs and outputs, or run this file on "
                "LiteRT"
            )
        elif op.name == "DEQUANTIZE" and operands[0].type == "FLOAT16":
            reason = (
                "expands float16 weights; TFLite Micro's DEQUANTIZE takes "
                f"int8, int16 and uint8 only: {_FOR_TFLM}"
            )
        elif op.name in _NO_KERNEL:
            reason = f"has no TFLite Micro kernel: {_NO_KERNEL[op.name]}"
        else:
            continue
        found.setdefault((op.name, reason), []).append(op.index)
    return [
        (name, f"{name} ({_operators(indices)}) {reason}")
        for (name, reason), indices in found.items()
    ]


def _variant_parts(op):
    """The variant operands a fused LSTM op carries, in words."""
    lstm = flatbuffer.LSTM

    def has(*positions):
        return any(
            p < len(op.inputs) and op.inputs[p] is not None for p in positions
        )

    parts = []
    if not has(*lstm.input_weights[:1]) and has(*lstm.input_weights[1:]):
        parts.append("coupled input and forget gates (CIFG)")
    if has(*lstm.peephole_weights):
        parts.append("peepholes")
    if has(lstm.projection_weights):
        parts.append("a projection")
    if has(*lstm.layer_norm_coefficients):
        parts.append("layer norm")
    return ", ".join(parts)


def _operators(indices):
    if len(indices) == 1:
        return f"operator {indices[0]}"
    return "operators " + ", ".join(str(i) for i in indices)


# Builds the interpreter (resolving every op and preparing every kernel)
# without invoking it. Its diagnostics go to stderr; the exception only
# says "TFLM failed to allocate tensors".
_TFLM_PROBE = r"""
import sys
from tflite_micro.python.tflite_micro import runtime

try:
    runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
except RuntimeError as error:
    print(f"Python: {error}", file=sys.stderr)
    sys.exit(3)
"""
_UNRESOLVED = re.compile(
    r"Didn't find op for (?:builtin|custom) opcode '(.+?)'"
)
_UNPREPARED = re.compile(r"Node (\S+) \(number (\d+)\) failed to prepare")


@functools.lru_cache(maxsize=32)
def _probe(content):
    """(op name, reason) for what the TFLM interpreter refuses to build."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.tflite")
        with open(path, "wb") as f:
            f.write(content)
        arena = max(_DEFAULT_ARENA, 10 * len(content))
        done = subprocess.run(
            [sys.executable, "-c", _TFLM_PROBE, path, str(arena)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode == 0:
        return ()
    lines = [line.strip() for line in done.stderr.splitlines()]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines):
        if match := _UNRESOLVED.search(line):
            name = match.group(1)
            return (
                (
                    name,
                    f"{name} has no TFLite Micro kernel (its interpreter "
                    "finds no registration for it)",
                ),
            )
        if match := _UNPREPARED.search(line):
            name, index = match.groups()
            detail = f": {lines[i - 1]}" if i > 0 else ""
            return (
                (
                    name,
                    f"{name} (operator {index}) fails TFLite Micro's "
                    f"prepare step{detail}",
                ),
            )
    tail = " / ".join(lines[-3:]) or f"exit status {done.returncode}"
    return (
        (
            None,
            "the TFLite Micro interpreter cannot be built for this file "
            f"({tail})",
        ),
    )


def tflite_micro_blockers(content: bytes) -> tuple[str, ...]:
    """Every reason TFLite Micro cannot run a TFLite file, naming the op.

    Two sources, both measured:

    - the file's tensors: an op with float32 activations and int8 weights
      (dynamic-range quantization; for the fused LSTM TFLite Micro runs and
      returns NaN silently, other ops fail to prepare), DEQUANTIZE of
      float16 weights, and ops TFLite Micro has no kernel for (TILE, from
      `keras.ops.tile`);
    - the TFLite Micro interpreter itself, built from the file in a
      subprocess without running it: any op it cannot resolve or prepare.
      This part needs the `tflite-micro` package; without it only the
      first part is checked.

    Args:
        content: The file's bytes.

    Returns:
        One reason per blocking op kind, each saying what to do; empty if
        TFLite Micro can run the file.
    """
    content = bytes(content)
    static = _static_blockers(content)
    reasons = [reason for _, reason in static]
    if importlib.util.find_spec("tflite_micro") is not None:
        named = {name for name, _ in static}
        # The interpreter stops at the first op it refuses: an op named
        # above already has a reason that says more.
        reasons += [
            reason for name, reason in _probe(content) if name not in named
        ]
    return tuple(reasons)


def refuse_blocked(content: bytes, path: str) -> None:
    """Raises `TFLiteMicroUnsupportedError` if TFLite Micro cannot run it."""
    blockers = tflite_micro_blockers(content)
    if blockers:
        raise TFLiteMicroUnsupportedError(path, blockers)


__all__ = [
    "TFLMArena",
    "TFLMResult",
    "TFLiteMicroUnsupportedError",
    "run_tflite_micro",
    "tflite_micro_blockers",
    "tflm_arena_size",
]
