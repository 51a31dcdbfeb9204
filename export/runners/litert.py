"""Running exported files on LiteRT: `load_tflite` and `TFLiteRunner`.

`load_tflite(path)` returns a `TFLiteRunner` that takes and returns
float32, whatever the file's quantization, splits or pads any number of
sequences to the file's fixed batch size, and resets the LSTM state before
each sequence. It runs on LiteRT, except int16x8 files, for which LiteRT has
no LSTM kernel: those run on the TFLite Micro interpreter
(`keras_lstm.export.runners.tflite_micro`).

This module also reads the file layout, the contract of
`keras_lstm.export.contract` as found in a file: which input carries the
data, which output is `OUTPUT`, and where the explicit state sits.

**State.** TFLite's fused LSTM keeps `h` and `c` in variable tensors that
persist across `invoke()` calls (TF#38312). A file exported for whole
sequences therefore gives the same output for the same input only if the
state is reset before each sequence: `reset_all_variables()` in LiteRT
Python, `Interpreter::ResetVariableTensors()` in C++ and on Android,
`MicroInterpreter::Reset()` / `reset()` in TFLite Micro. This runner does it
for you; C++ and Android code must do it too (TF#47813). Streaming files
rely on the same persistence: call `reset()` at the start of each stream.
"""

import dataclasses
import os

import numpy as np

from keras_lstm.export import flatbuffer, masking
from keras_lstm.export.contract import (
    FRAME,
    OUTPUT,
    SEQUENCES,
    input_position,
    output_position,
    state_names,
)


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
        if self.scale is None:  # float32, or int32 token ids
            return np.asarray(x).astype(self.dtype)
        x = np.asarray(x, np.float32)
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


def _free_position(order, filled, details):
    """The first position of `details`'s tensor in `order` not yet filled.

    Two signature names can share one tensor: in a streaming file with
    external state whose last layer is its LSTM, `output` is `h_i_out`, and
    the subgraph lists the tensor once per name.
    """
    for position, index in enumerate(order):
        if index == details["index"] and filled[position] is None:
            return position
    raise ValueError(
        f"Tensor {details['index']} is named by more signature outputs than "
        "the subgraph lists; the file was not written by to_tflite."
    )


class FileLayout:
    """Inputs and outputs of an exported file, by name and position.

    Positions follow the subgraph's input and output order, which is what
    TFLite Micro indexes by.
    """

    def __init__(self, interpreter, content=None):
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
            position = _free_position(input_order, self.inputs, details)
            self.inputs[position] = _tensor_info(name, details)
            self.input_indices[position] = details["index"]
        for name, details in outputs.items():
            position = _free_position(output_order, self.outputs, details)
            self.outputs[position] = _tensor_info(name, details)
            self.output_indices[position] = details["index"]
        names = [t.name for t in self.inputs]
        if SEQUENCES not in names and FRAME not in names:
            self._named(names)
            return
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
        data = self.inputs[self.data_input]
        self.batch_size = data.shape[0]
        self.timesteps = data.shape[1]
        # Token files take int32 ids (batch, time): no feature axis.
        self.tokens = len(data.shape) == 2 and data.dtype == "int32"
        self.features = None if self.tokens else data.shape[2]
        self.step_shape = () if self.tokens else (self.features,)
        self.layers = (len(names) - 1) // 2
        # A masked model's file: which steps callers drop (contract).
        self.padding = None if content is None else flatbuffer.padding(content)

    def _named(self, names):
        """A file with several named inputs or outputs (`kind == "named"`)."""
        try:
            order = [output_position(t.name) for t in self.outputs]
            inputs = [input_position(t.name) for t in self.inputs]
        except ValueError:
            raise ValueError(
                "Expected a file written by keras_lstm.export.to_tflite, with "
                f"an input named {SEQUENCES!r} or {FRAME!r}, or outputs named "
                "'input_<i>_<name>' and 'output_<i>'; found inputs "
                f"{names}."
            ) from None
        self.kind = "named"
        # Input positions in the Keras model's order.
        self.input_order = sorted(range(len(inputs)), key=inputs.__getitem__)
        self.data_input = None
        self.data_output = None
        # Output positions in the Keras model's order.
        self.output_order = sorted(range(len(order)), key=order.__getitem__)
        self.batch_size = self.inputs[0].shape[0]
        self.timesteps = max(
            (t.shape[1] for t in self.inputs if len(t.shape) == 3), default=1
        )
        self.features = None
        self.tokens = False
        self.step_shape = None
        self.layers = 0
        # Named files come from unmasked models (masking.check refuses
        # masks on several-input models).
        self.padding = None


class _LiteRT:
    """LiteRT interpreter, addressed by input/output position."""

    name = "litert"

    def __init__(self, content, layout, num_threads, path):
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

    def resize(self, position, shape):
        """Gives input `position` a new shape (LiteRT re-plans the graph)."""
        index = self._inputs[position]
        if tuple(self._interpreter.get_input_details()[position]["shape"]) == (
            tuple(shape)
        ):
            return
        self._interpreter.resize_tensor_input(index, list(shape))
        self._interpreter.allocate_tensors()


def _backends():
    # The TFLite Micro backend imports this module for the file layout, so
    # it is looked up when a runner is built, not at import time.
    from keras_lstm.export.runners import tflite_micro

    return {"litert": _LiteRT, "tflite_micro": tflite_micro.MicroBackend}


def layout_of(content):
    """The `FileLayout` of a file's bytes."""
    from ai_edge_litert.interpreter import Interpreter

    # Reading the signature needs no allocation, which LiteRT refuses for
    # files it has no kernel for (int16x8 LSTMs).
    return FileLayout(Interpreter(model_content=content), content)


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
        self.ops = flatbuffer.op_names(content)
        self._layout = layout_of(content)
        self.inputs = tuple(self._layout.inputs)
        self.outputs = tuple(self._layout.outputs)
        if backend is None:
            data = self._layout.data_input
            int16 = data is not None and self.inputs[data].dtype == "int16"
            backend = "tflite_micro" if int16 else "litert"
        backends = _backends()
        if backend not in backends:
            raise ValueError(
                f"Received an invalid value for argument `backend`: "
                f"{backend!r}. Expected one of {sorted(backends)} or None."
            )
        self.backend = backend
        self._runtime = backends[backend](
            content, self._layout, num_threads, self.path
        )
        self.batch_size = self._layout.batch_size
        self.timesteps = self._layout.timesteps
        self.streaming = self._layout.kind in ("streaming", "external_state")
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

    @property
    def input_names(self) -> tuple[str, ...]:
        """The file's input names, in the Keras model's input order."""
        if self._layout.kind != "named":
            return tuple(t.name for t in self.inputs)
        return tuple(self.inputs[p].name for p in self._layout.input_order)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The file's output names, in the Keras model's output order."""
        if self._layout.kind != "named":
            return tuple(t.name for t in self.outputs)
        return tuple(self.outputs[p].name for p in self._layout.output_order)

    def run(self, inputs) -> dict:
        """One invocation of a file with named inputs, float32 in and out.

        Resets the file's variable tensors first, so every call computes
        from the state it is given (an encoder's sequence, a decoder step's
        `h` and `c`) and nothing else.

        Args:
            inputs: A dict from input name to array, or a list of arrays in
                `input_names` order; each with the file's batch size first.

        Returns:
            A dict from output name to float32 array.

        Raises:
            ValueError: for a streaming file (use `step()`), a missing or
                unknown input, or a wrong shape.
        """
        if self.streaming:
            raise ValueError(
                f"{self.path} is a streaming file; feed it with step()."
            )
        values = self._named_inputs(inputs)
        for name, value in values.items():
            expected = next(t.shape for t in self.inputs if t.name == name)
            if value.shape != expected:
                raise ValueError(
                    f"Input {name!r} must have shape {expected}, got "
                    f"{value.shape}."
                )
        self.reset()
        return self._invoke(values)

    def _named_inputs(self, inputs):
        names = self.input_names
        if isinstance(inputs, dict):
            missing = set(names) - set(inputs)
            unknown = set(inputs) - set(names)
            if missing or unknown:
                raise ValueError(
                    f"The file's inputs are {list(names)}; missing "
                    f"{sorted(missing)}, unknown {sorted(unknown)}."
                )
            return {n: np.asarray(inputs[n], np.float32) for n in names}
        if len(names) == 1 and not isinstance(inputs, (list, tuple)):
            inputs = [inputs]  # One input: a bare array, as Keras takes it.
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(names):
            raise ValueError(
                f"Expected a dict or a list of {len(names)} arrays for the "
                f"inputs {list(names)}, got {type(inputs).__name__}."
            )
        return {
            n: np.asarray(v, np.float32)
            for n, v in zip(names, inputs, strict=True)
        }

    def _predict_named(self, x):
        values = self._named_inputs(x)
        counts = {v.shape[0] for v in values.values()}
        if len(counts) != 1 or 0 in counts:
            raise ValueError(
                "Every input must hold the same, non-zero number of "
                f"samples; got {[v.shape for v in values.values()]}."
            )
        batches = {
            name: list(chunks(value, self.batch_size))
            for name, value in values.items()
        }
        results = {name: [] for name in self.output_names}
        for index in range(len(next(iter(batches.values())))):
            batch = {name: b[index][0] for name, b in batches.items()}
            count = next(iter(batches.values()))[index][1]
            outputs = self.run(batch)
            for name in results:
                results[name].append(outputs[name][:count])
        arrays = [np.concatenate(results[n], axis=0) for n in self.output_names]
        return arrays[0] if len(arrays) == 1 else arrays

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Feeds one frame to a streaming file; the state carries over.

        Args:
            frame: `(batch_size, features)` or `(batch_size, 1, features)`,
                or `(features,)` when the file's batch size is 1. For a
                token file, int token ids: `(batch_size,)` or
                `(batch_size, 1)`, or a scalar id when the batch size is 1.

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
        values = {FRAME: self._frame(frame)}
        if self.external_state:
            values.update(self._states)
        outputs = self._invoke(values)
        if self.external_state:
            for index in range(self._layout.layers):
                (h, c), (h_out, c_out) = state_names(index)
                self._states[h] = outputs[h_out]
                self._states[c] = outputs[c_out]
        return outputs[OUTPUT]

    def _frame(self, frame):
        """`frame` as the file's `(batch_size, 1, *step_shape)` input."""
        layout = self._layout
        step = layout.step_shape
        full = (self.batch_size, 1, *step)
        frame = check_steps(frame, layout, "frame")
        if frame.shape == step and self.batch_size == 1:
            frame = frame.reshape(full)
        elif frame.shape == (self.batch_size, *step):
            frame = frame[:, None]
        if frame.shape != full:
            accepted = [(self.batch_size, *step), full]
            if self.batch_size == 1:
                accepted.insert(0, step)
            what = "token id" if layout.tokens else "frame"
            raise ValueError(
                "`frame` must have shape "
                + " or ".join(str(shape) for shape in accepted)
                + f" (one {what} per batch slot), got {frame.shape}. The "
                "state belongs to the file's batch slots."
            )
        return frame

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Runs whole sequences, float32 in and out.

        Any number of sequences: they are split into the file's batch size
        (the last batch zero-padded) and the state is reset before each.
        A streaming file is fed frame by frame; its result is what the Keras
        model returns on the whole sequence: every step's output stacked on
        axis 1 if a step's output has a time axis, else the last step's.

        A file exported from a masked model (`padding` is set) drops each
        sequence's padded steps, as Keras's mask does: a whole-sequence file
        runs the valid steps on a resized time dimension (LiteRT only), a
        streaming file is fed only the valid frames
        (`keras_lstm.export.masking`).

        A file with named inputs (several inputs or outputs) takes a list of
        arrays in `input_names` order, or a dict by name, and returns, as
        `keras.Model.predict` does, one array or a list in the Keras model's
        output order.

        Args:
            x: `(num_sequences, timesteps, features)`, integer token ids
                `(num_sequences, timesteps)` for a token file, or the named
                inputs.

        Returns:
            A float32 NumPy array, `num_sequences` first (a list of them for
            several outputs).

        Raises:
            ValueError: for a wrong shape, or for a masked file, a
                sequence with padding between valid steps or all padding.
        """
        if self._layout.kind == "named":
            return self._predict_named(x)
        x = check_sequences(x, self._layout)
        if self.padding is not None:
            return self._predict_padded(x)
        results = []
        for chunk, count in chunks(x, self.batch_size):
            self.reset()
            if not self.streaming:
                y = self._invoke({SEQUENCES: chunk})[OUTPUT]
            else:
                y = assemble(
                    [self.step(chunk[:, t : t + 1]) for t in range(x.shape[1])]
                )
            results.append(y[:count])
        return np.concatenate(results, axis=0)

    @property
    def padding(self):
        """A masked model's `contract.Padding`, else `None`."""
        return self._layout.padding

    def _predict_padded(self, x):
        results = None
        for rows, batch in masking.groups(x, self.padding, self.batch_size):
            self.reset()
            if self.streaming:
                y = assemble(
                    [self.step(batch[:, t]) for t in range(batch.shape[1])]
                )
            else:
                resize = getattr(self._runtime, "resize", None)
                if resize is None:
                    raise ValueError(
                        f"{self.path} takes whole sequences of fixed length "
                        f"and its model was masked ({self.padding.describe()})"
                        f"; the {self.backend} backend cannot resize the "
                        "time dimension to each sequence's valid steps. "
                        "Export with streaming=True and feed the valid "
                        "frames, or use the LiteRT backend."
                    )
                resize(self._layout.data_input, batch.shape)
                y = self._invoke({SEQUENCES: batch})[OUTPUT]
            if results is None:
                results = np.zeros((x.shape[0], *y.shape[1:]), np.float32)
            results[rows] = y[: rows.size]
        return results


def check_steps(x, layout, name):
    """`x` as token ids (int32) or float32, by the file's input kind."""
    if not layout.tokens:
        return np.asarray(x, np.float32)
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise ValueError(
            f"`{name}` must hold integer token ids (the file's input is "
            f"int32 ids), got a {x.dtype} array."
        )
    return x.astype(np.int32)


def check_sequences(x, layout):
    """`x` checked against the file: `(n, time, features)` or token ids."""
    x = check_steps(x, layout, "x")
    expected = (
        "(num_sequences, timesteps)"
        if layout.tokens
        else f"(num_sequences, timesteps, {layout.features})"
    )
    if x.ndim != 2 + len(layout.step_shape) or x.shape[2:] != (
        layout.step_shape
    ):
        raise ValueError(f"`x` must have shape {expected}, got {x.shape}.")
    padded = layout.padding is not None
    if layout.kind == "sequences" and x.shape[1] != layout.timesteps:
        if not padded or x.shape[1] > layout.timesteps:
            raise ValueError(
                f"The file was exported for sequences of {layout.timesteps} "
                f"steps, got {x.shape[1]}. Pad or crop to "
                f"{layout.timesteps}, or export with timesteps= (or "
                "streaming=True)."
            )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`x` is empty, shape {x.shape}.")
    return x


def chunks(x, batch_size):
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        count = chunk.shape[0]
        if count < batch_size:
            pad = np.zeros((batch_size - count,) + chunk.shape[1:], x.dtype)
            chunk = np.concatenate([chunk, pad], axis=0)
        yield chunk, count


def assemble(step_outputs):
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
            int16x8 files, which only TFLite Micro runs. Files that TFLite
            Micro cannot run (`tflite_micro_blockers`) are refused for the
            `"tflite_micro"` backend before it runs them.
        num_threads: LiteRT CPU threads, `None` for its default.

    Returns:
        A `TFLiteRunner` with `.ops`, `.predict(x)`, and for streaming files
        `.step(frame)` and `.reset()`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file was not written by `to_tflite`.
        TFLiteMicroUnsupportedError: (a `ValueError`) if the backend is
            TFLite Micro and it cannot run the file; says why.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at {str(path)!r}.")
    return TFLiteRunner(path, backend=backend, num_threads=num_threads)


__all__ = ["TFLiteRunner", "TensorInfo", "load_tflite"]
