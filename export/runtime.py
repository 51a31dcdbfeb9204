"""Running exported files: LiteRT, TFLite Micro and Arm Vela.

- `load_tflite(path)` returns a `TFLiteRunner` that takes and returns
  float32, whatever the file's quantization, splits or pads any number of
  sequences to the file's fixed batch size, and resets the LSTM state
  before each sequence. It runs on LiteRT, except int16x8 files, for which
  LiteRT has no LSTM kernel: those run on the TFLite Micro interpreter.
- `run_tflite_micro(path, x)` runs the same computation on the TFLite Micro
  interpreter; `tflm_arena_size(path)` finds the smallest tensor arena it
  needs.
- `vela_summary(path)` compiles the file for an Arm Ethos-U NPU and reports
  how many operators stay on the CPU.

**State.** TFLite's fused LSTM keeps `h` and `c` in variable tensors that
persist across `invoke()` calls (TF#38312). A file exported for whole
sequences therefore gives the same output for the same input only if the
state is reset before each sequence: `reset_all_variables()` in LiteRT
Python, `Interpreter::ResetVariableTensors()` in C++ and on Android,
`MicroInterpreter::Reset()` / `reset()` in TFLite Micro. This runner does it
for you; C++ and Android code must do it too (TF#47813). Streaming files
rely on the same persistence: call `reset()` at the start of each stream.

`run_tflite_micro`, `tflm_arena_size` and Vela run in subprocesses: the
TFLM LSTM kernel crashes the process when its arena is too small, and Vela
is a command-line tool. The runner's own TFLM backend runs in-process with
a generous arena.
"""

import csv
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

# Names in the files' signature (see keras_lstm.export.tflite).
SEQUENCES = "sequences"
FRAME = "frame"
OUTPUT = "output"


def state_names(index: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """Signature names of layer `index`'s external state: inputs, outputs."""
    return (f"h_{index}", f"c_{index}"), (f"h_{index}_out", f"c_{index}_out")


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """An input or output of a TFLite file.

    Attributes:
        name: Signature name (`"sequences"`, `"frame"`, `"output"`, ...).
        shape: Fixed shape, batch first.
        dtype: NumPy dtype name (`"float32"`, `"int8"`, `"int16"`).
        scale: Quantization scale, `None` for float tensors.
        zero_point: Quantization zero point, `None` for float tensors.
    """

    name: str
    shape: tuple
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    def quantize(self, x):
        """Float32 values to this tensor's dtype."""
        x = np.asarray(x, np.float32)
        if self.scale is None:
            return x.astype(self.dtype)
        info = np.iinfo(self.dtype)
        q = np.round(x / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, q):
        """This tensor's values to float32."""
        if self.scale is None:
            return np.asarray(q, np.float32)
        return (
            (np.asarray(q, np.float32) - self.zero_point) * self.scale
        ).astype(np.float32)


def _builtin_names():
    from tensorflow.lite.python import schema_py_generated as schema

    return {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }


def op_names(model_content: bytes) -> tuple[str, ...]:
    """Names of the operators in a TFLite flatbuffer, all subgraphs.

    Builtin operators by their schema name (`"UNIDIRECTIONAL_SEQUENCE_LSTM"`),
    custom ones (Flex included) as `"CUSTOM:<code>"`.

    Args:
        model_content: The file's bytes.

    Returns:
        A tuple of names, subgraph by subgraph, in execution order.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_content, 0)
    names = _builtin_names()
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            custom = custom.decode() if custom else "?"
            codes.append(f"CUSTOM:{custom}")
        else:
            codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
    ops = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            ops.append(codes[subgraph.Operators(o).OpcodeIndex()])
    return tuple(ops)


def subgraph_count(model_content: bytes) -> int:
    """Number of subgraphs (more than one means control flow)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.Model.GetRootAsModel(model_content, 0).SubgraphsLength()


def _tensor_info(name, details):
    scale, zero_point = details["quantization"]
    quantized = np.dtype(details["dtype"]).kind in "iu" and scale != 0
    return TensorInfo(
        name=name,
        shape=tuple(int(d) for d in details["shape"]),
        dtype=np.dtype(details["dtype"]).name,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


class _FileLayout:
    """Inputs and outputs of an exported file, by name and position.

    Positions follow the subgraph's input and output order, which is what
    TFLite Micro indexes by.
    """

    def __init__(self, interpreter):
        signatures = interpreter.get_signature_list()
        if len(signatures) != 1:
            raise ValueError(
                "Expected a file written by keras_lstm.export.to_tflite (one "
                f"signature), found signatures {sorted(signatures)}."
            )
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        inputs = runner.get_input_details()
        outputs = runner.get_output_details()
        input_order = [d["index"] for d in interpreter.get_input_details()]
        output_order = [d["index"] for d in interpreter.get_output_details()]
        self.input_indices = [None] * len(input_order)
        self.output_indices = [None] * len(output_order)
        self.inputs = [None] * len(input_order)
        self.outputs = [None] * len(output_order)
        for name, details in inputs.items():
            position = input_order.index(details["index"])
            self.inputs[position] = _tensor_info(name, details)
            self.input_indices[position] = details["index"]
        for name, details in outputs.items():
            position = output_order.index(details["index"])
            self.outputs[position] = _tensor_info(name, details)
            self.output_indices[position] = details["index"]
        names = [t.name for t in self.inputs]
        if SEQUENCES in names:
            self.kind = "sequences"
        elif FRAME in names and len(names) == 1:
            self.kind = "streaming"
        elif FRAME in names:
            self.kind = "external_state"
        else:
            raise ValueError(
                "Expected a file written by keras_lstm.export.to_tflite, with "
                f"an input named {SEQUENCES!r} or {FRAME!r}; found {names}."
            )
        self.data_input = names.index(
            SEQUENCES if self.kind == "sequences" else FRAME
        )
        self.data_output = [t.name for t in self.outputs].index(OUTPUT)
        shape = self.inputs[self.data_input].shape
        self.batch_size = shape[0]
        self.timesteps = shape[1]
        self.features = shape[2]
        self.layers = (len(names) - 1) // 2


class _LiteRT:
    """LiteRT interpreter, addressed by input/output position."""

    name = "litert"

    def __init__(self, content, layout, num_threads):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(
            model_content=content, num_threads=num_threads
        )
        self._interpreter.allocate_tensors()
        self._inputs = layout.input_indices
        self._outputs = layout.output_indices

    def set(self, position, value):
        self._interpreter.set_tensor(self._inputs[position], value)

    def invoke(self):
        self._interpreter.invoke()

    def get(self, position):
        return self._interpreter.get_tensor(self._outputs[position])

    def reset(self):
        self._interpreter.reset_all_variables()


class _Micro:
    """TFLite Micro interpreter in this process, with a generous arena.

    Only a too-small arena crashes the TFLM LSTM kernel; this one is
    `_DEFAULT_ARENA` or ten times the file, like `run_tflite_micro`'s.
    """

    name = "tflite_micro"

    def __init__(self, content, layout, num_threads):
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


_BACKENDS = {"litert": _LiteRT, "tflite_micro": _Micro}


def _layout_of(content):
    from ai_edge_litert.interpreter import Interpreter

    # Reading the signature needs no allocation, which LiteRT refuses for
    # files it has no kernel for (int16x8 LSTMs).
    return _FileLayout(Interpreter(model_content=content))


class TFLiteRunner:
    """Runs a file written by `to_tflite`, float32 in and out.

    Files run on LiteRT, except int16x8 ones: LiteRT has no 16-bit LSTM
    kernel, so those run on the TFLite Micro interpreter (`backend`).

    Attributes:
        path: The file.
        backend: `"litert"` or `"tflite_micro"`.
        ops: Operator names, in execution order.
        inputs: `TensorInfo` of each input, in the subgraph's order.
        outputs: `TensorInfo` of each output, in the subgraph's order.
        batch_size: The file's fixed batch size.
        timesteps: The file's fixed sequence length (1 for streaming).
        streaming: Whether it is a single-frame streaming file.
        external_state: Whether its LSTM state is explicit inputs/outputs.
    """

    def __init__(self, path, *, backend=None, num_threads=None):
        self.path = str(path)
        with open(self.path, "rb") as f:
            content = f.read()
        self.ops = op_names(content)
        self._layout = _layout_of(content)
        self.inputs = tuple(self._layout.inputs)
        self.outputs = tuple(self._layout.outputs)
        if backend is None:
            int16 = self.inputs[self._layout.data_input].dtype == "int16"
            backend = "tflite_micro" if int16 else "litert"
        if backend not in _BACKENDS:
            raise ValueError(
                f"Received an invalid value for argument `backend`: "
                f"{backend!r}. Expected one of {sorted(_BACKENDS)} or None."
            )
        self.backend = backend
        self._runtime = _BACKENDS[backend](content, self._layout, num_threads)
        self.batch_size = self._layout.batch_size
        self.timesteps = self._layout.timesteps
        self.streaming = self._layout.kind != "sequences"
        self.external_state = self._layout.kind == "external_state"
        self._states = None
        self.reset()

    def __repr__(self):
        kind = self._layout.kind
        return (
            f"TFLiteRunner({self.path!r}, {kind}, backend={self.backend}, "
            f"batch_size={self.batch_size}, timesteps={self.timesteps})"
        )

    def reset(self) -> None:
        """Zeros the recurrent state (variable tensors or explicit state)."""
        self._runtime.reset()
        if self.external_state:
            self._states = {
                t.name: np.zeros(t.shape, np.float32)
                for i, t in enumerate(self.inputs)
                if i != self._layout.data_input
            }

    def _invoke(self, values):
        """Sets float inputs by name, invokes, returns float outputs by name."""
        for position, info in enumerate(self.inputs):
            self._runtime.set(position, info.quantize(values[info.name]))
        self._runtime.invoke()
        return {
            info.name: info.dequantize(self._runtime.get(p))
            for p, info in enumerate(self.outputs)
        }

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Feeds one frame to a streaming file; the state carries over.

        Args:
            frame: `(batch_size, features)` or `(batch_size, 1, features)`.

        Returns:
            The model's float32 output for this step.

        Raises:
            ValueError: if the file is not streaming or the shape is wrong.
        """
        if not self.streaming:
            raise ValueError(
                f"{self.path} holds whole sequences; step() needs a file "
                "exported with streaming=True. Use predict()."
            )
        frame = np.asarray(frame, np.float32)
        if frame.ndim == 2:
            frame = frame[:, None, :]
        expected = (self.batch_size, 1, self._layout.features)
        if frame.shape != expected:
            raise ValueError(
                f"`frame` must have shape {expected[::2]} or {expected}, got "
                f"{frame.shape}. The state belongs to the file's batch slots."
            )
        values = {FRAME: frame}
        if self.external_state:
            values.update(self._states)
        outputs = self._invoke(values)
        if self.external_state:
            for index in range(self._layout.layers):
                (h, c), (h_out, c_out) = state_names(index)
                self._states[h] = outputs[h_out]
                self._states[c] = outputs[c_out]
        return outputs[OUTPUT]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Runs whole sequences, float32 in and out.

        Any number of sequences: they are split into the file's batch size
        (the last batch zero-padded) and the state is reset before each.
        A streaming file is fed frame by frame; its result is what the Keras
        model returns on the whole sequence: every step's output stacked on
        axis 1 if a step's output has a time axis, else the last step's.

        Args:
            x: `(num_sequences, timesteps, features)`.

        Returns:
            A float32 NumPy array, `num_sequences` first.
        """
        x = _check_sequences(x, self._layout)
        results = []
        for chunk, count in _chunks(x, self.batch_size):
            self.reset()
            if not self.streaming:
                y = self._invoke({SEQUENCES: chunk})[OUTPUT]
            else:
                y = _assemble(
                    [self.step(chunk[:, t : t + 1]) for t in range(x.shape[1])]
                )
            results.append(y[:count])
        return np.concatenate(results, axis=0)


def _check_sequences(x, layout):
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[2] != layout.features:
        raise ValueError(
            "`x` must have shape (num_sequences, timesteps, "
            f"{layout.features}), got {x.shape}."
        )
    if layout.kind == "sequences" and x.shape[1] != layout.timesteps:
        raise ValueError(
            f"The file was exported for sequences of {layout.timesteps} "
            f"steps, got {x.shape[1]}. Pad or crop to {layout.timesteps}, or "
            "export with timesteps= (or streaming=True)."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`x` is empty, shape {x.shape}.")
    return x


def _chunks(x, batch_size):
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        count = chunk.shape[0]
        if count < batch_size:
            pad = np.zeros((batch_size - count,) + chunk.shape[1:], x.dtype)
            chunk = np.concatenate([chunk, pad], axis=0)
        yield chunk, count


def _assemble(step_outputs):
    first = step_outputs[0]
    if first.ndim >= 3 and first.shape[1] == 1:
        return np.concatenate(step_outputs, axis=1)
    return step_outputs[-1]


def load_tflite(
    path: str | os.PathLike,
    *,
    backend: str | None = None,
    num_threads: int | None = None,
) -> "TFLiteRunner":
    """Loads a file written by `to_tflite` for float32 inference.

    Args:
        path: The `.tflite` file.
        backend: `"litert"`, `"tflite_micro"` (the TFLM interpreter, in this
            process, with a 4 MiB arena), or `None`: LiteRT, except for
            int16x8 files, which only TFLite Micro runs.
        num_threads: LiteRT CPU threads, `None` for its default.

    Returns:
        A `TFLiteRunner` with `.ops`, `.predict(x)`, and for streaming files
        `.step(frame)` and `.reset()`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file was not written by `to_tflite`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at {str(path)!r}.")
    return TFLiteRunner(path, backend=backend, num_threads=num_threads)


# ---------------------------------------------------------------------------
# TFLite Micro.

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


def _tflm_layout(path):
    with open(path, "rb") as f:
        layout = _layout_of(f.read())
    if layout.kind == "external_state":
        raise ValueError(
            f"{path} keeps its LSTM state as explicit inputs and outputs, "
            "for runtimes without variable tensors; TFLite Micro has them. "
            "Export with streaming=True (variable state) for TFLite Micro."
        )
    return layout


def _tflm_plan(layout, x):
    """Invocations (reset flag, quantized inputs) for sequences `x`."""
    info = layout.inputs[layout.data_input]
    plan = []
    for chunk, _ in _chunks(x, layout.batch_size):
        if layout.kind == "sequences":
            plan.append((True, info.quantize(chunk)))
        else:
            for t in range(x.shape[1]):
                plan.append((t == 0, info.quantize(chunk[:, t : t + 1])))
    return plan


def _run_tflm_process(path, arena_size, plan, *, record=False, timeout=600):
    """Runs `plan` in a TFLM subprocess; returns (outputs | None, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = os.path.join(tmp, "plan.npz")
        out_path = os.path.join(tmp, "out.npz")
        arrays = {
            "count": np.array(len(plan)),
            "inputs": np.array(1),
            "outputs": np.array(1),
            "reset": np.array([reset for reset, _ in plan]),
        }
        for i, (_, values) in enumerate(plan):
            arrays[f"in_{i}_0"] = values
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
            outputs = [result[f"out_{i}_0"] for i in range(len(plan))]
        return outputs, done.stderr


def _tflm_outputs(layout, x, raw):
    """Assembles raw per-invocation outputs like `TFLiteRunner.predict`."""
    info = layout.outputs[layout.data_output]
    results, i = [], 0
    steps = 1 if layout.kind == "sequences" else x.shape[1]
    for _, count in _chunks(x, layout.batch_size):
        chunk = raw[i : i + steps]
        i += steps
        results.append(_assemble(chunk)[:count])
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
        x: `(num_sequences, timesteps, features)` float32.
        arena_size: Tensor arena in bytes; `None` for 4 MiB (or 10 times
            the file size if larger).

    Returns:
        A `TFLMResult`.

    Raises:
        ValueError: for a bad `x` or an external-state file.
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
    x = _check_sequences(x, layout)
    raw, log = _run_tflm_process(path, arena_size, _tflm_plan(layout, x))
    if raw is None:
        raise RuntimeError(
            f"TFLite Micro failed to run {path} with a {arena_size}-byte "
            f"arena. Its log ends with:\n{log[-2000:]}"
        )
    outputs, raw_outputs = _tflm_outputs(layout, x, raw)
    return TFLMResult(outputs, raw_outputs, int(arena_size))


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
        RuntimeError: if the file does not run even with `max_arena_size`.
    """
    path = str(path)
    layout = _tflm_layout(path)
    shape = (layout.batch_size, max(layout.timesteps, 1), layout.features)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    plan = _tflm_plan(layout, x)
    reference, log = _run_tflm_process(path, max_arena_size, plan, record=True)
    if reference is None:
        raise RuntimeError(
            f"TFLite Micro cannot run {path} even with a {max_arena_size}-byte "
            f"arena. Its log ends with:\n{log[-2000:]}"
        )
    match = _RECORDED.search(log)
    recorded = int(match.group(1)) if match else None

    def runs(size):
        outputs, _ = _run_tflm_process(path, size, plan)
        return outputs is not None and all(
            np.array_equal(a, b)
            for a, b in zip(outputs, reference, strict=True)
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


# ---------------------------------------------------------------------------
# Arm Vela.


@dataclasses.dataclass(frozen=True)
class VelaSummary:
    """What Vela made of a file for an Ethos-U NPU.

    Attributes:
        accelerator_config: e.g. `"ethos-u55-128"`.
        cpu_operators: Operators left to the CPU (0: all on the NPU).
        npu_operators: Operators Vela placed on the NPU.
        sram_used_kib: SRAM the NPU needs, KiB.
        flash_used_kib: Off-chip flash for weights and command streams, KiB.
        inference_time_s: Vela's estimate of one inference, seconds.
        macs: Multiply-accumulates per inference.
        output_ops: Operators of the compiled file (`ethos-u` custom ops and
            any CPU fallbacks).
        log: Vela's standard output.
    """

    accelerator_config: str
    cpu_operators: int
    npu_operators: int
    sram_used_kib: float
    flash_used_kib: float
    inference_time_s: float
    macs: int
    output_ops: tuple
    log: str


_VELA = "import sys; from ethosu.vela.vela import main; sys.exit(main())"


def vela_summary(
    path: str | os.PathLike,
    *,
    accelerator_config: str = "ethos-u55-128",
    timeout: float = 600,
) -> VelaSummary:
    """Compiles a file with Arm Vela and summarizes the result.

    Vela runs as a subprocess into a temporary directory; nothing is left
    behind. Files with backward layers (`go_backwards`, `Bidirectional`)
    hold REVERSE_V2, which Vela keeps on the CPU for Ethos-U55/U65 ("Axis
    attribute is not supported") and maps to the NPU for Ethos-U85.

    Args:
        path: An int8 (or int16x8) file.
        accelerator_config: Vela's `--accelerator-config`.
        timeout: Seconds before Vela is stopped.

    Returns:
        A `VelaSummary`.

    Raises:
        RuntimeError: if Vela fails or its summary cannot be read.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at {path!r}.")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _VELA,
                path,
                "--accelerator-config",
                accelerator_config,
                "--output-dir",
                tmp,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        log = done.stdout
        if done.returncode != 0:
            raise RuntimeError(
                f"Vela failed on {path} (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )
        cpu = re.search(r"CPU operators = (\d+)", log)
        npu = re.search(r"NPU operators = (\d+)", log)
        summaries = list(pathlib.Path(tmp).glob("*_summary_*.csv"))
        compiled = list(pathlib.Path(tmp).glob("*_vela.tflite"))
        if not (cpu and npu and summaries and compiled):
            raise RuntimeError(
                f"Could not read Vela's summary for {path}:\n{log[-2000:]}"
            )
        with open(summaries[0], newline="") as f:
            row = next(csv.DictReader(f))
        output_ops = op_names(compiled[0].read_bytes())
    return VelaSummary(
        accelerator_config=accelerator_config,
        cpu_operators=int(cpu.group(1)),
        npu_operators=int(npu.group(1)),
        sram_used_kib=float(row["sram_memory_used"]),
        flash_used_kib=float(row["off_chip_flash_memory_used"]),
        inference_time_s=float(row["inference_time"]),
        macs=int(float(row["nn_macs"])),
        output_ops=output_ops,
        log=log,
    )


__all__ = [
    "TFLiteRunner",
    "TensorInfo",
    "TFLMArena",
    "TFLMResult",
    "VelaSummary",
    "load_tflite",
    "op_names",
    "run_tflite_micro",
    "tflm_arena_size",
    "vela_summary",
]
