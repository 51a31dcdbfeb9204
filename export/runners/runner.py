"""Running exported files, float32 in and out: `load_tflite`, `TFLiteRunner`.

`load_tflite(path)` returns a `TFLiteRunner` that takes and returns
float32, whatever the file's quantization, splits or pads any number of
sequences to the file's fixed batch size, and resets the LSTM state before
each sequence. It runs on a `Backend`: LiteRT (`litert.py`), except int16x8
files, for which LiteRT has no LSTM kernel: those run on the TFLite Micro
interpreter (`tflite_micro.py`). The backends are leaves; this module picks
one, and both read the file through `layout.py`.

**State.** TFLite's fused LSTM keeps `h` and `c` in variable tensors that
persist across `invoke()` calls (TF#38312). A file exported for whole
sequences therefore gives the same output for the same input only if the
state is reset before each sequence: `reset_all_variables()` in LiteRT
Python, `Interpreter::ResetVariableTensors()` in C++ and on Android,
`MicroInterpreter::Reset()` / `reset()` in TFLite Micro. This runner does it
for you; C++ and Android code must do it too (TF#47813). Streaming files
rely on the same persistence: call `reset()` at the start of each stream.
"""

import enum
import os

import numpy as np

from keras_lstm.export import flatbuffer, masking
from keras_lstm.export.contract import FRAME, OUTPUT, SEQUENCES, state_names
from keras_lstm.export.runners.layout import (
    LayoutKind,
    as_input_values,
    as_sequences,
    assemble,
    chunks,
    layout_of,
)
from keras_lstm.export.runners.litert import LiteRTBackend
from keras_lstm.export.runners.tflite_micro import MicroBackend


class Backend(enum.StrEnum):
    """The interpreter a `TFLiteRunner` runs a file on.

    - `LITERT` (`"litert"`): LiteRT, for every file but int16x8 ones.
    - `TFLITE_MICRO` (`"tflite_micro"`): the TFLite Micro interpreter, in
      this process; the only one with an int16x8 LSTM kernel.
    """

    LITERT = "litert"
    TFLITE_MICRO = "tflite_micro"

    @classmethod
    def parse(cls, value: "Backend | str") -> "Backend":
        """Returns the member for `value` (a member or its string value).

        Raises:
            ValueError: naming the argument `backend`, if `value` is none.
        """
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            pass
        raise ValueError(
            f"Received an invalid value for argument `backend`: "
            f"{value!r}. Expected one of {sorted(m.value for m in cls)} or "
            "None."
        )


_BACKENDS = {
    Backend.LITERT: LiteRTBackend,
    Backend.TFLITE_MICRO: MicroBackend,
}


class TFLiteRunner:
    """Runs a file written by `to_tflite`, float32 in and out.

    Files run on LiteRT, except int16x8 ones: LiteRT has no 16-bit LSTM
    kernel, so those run on the TFLite Micro interpreter (`backend`).

    Attributes:
        path: The file.
        backend: The `Backend` it runs on.
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
            backend = Backend.TFLITE_MICRO if int16 else Backend.LITERT
        self.backend = Backend.parse(backend)
        self._runtime = _BACKENDS[self.backend](
            content, self._layout, num_threads, self.path
        )
        self.batch_size = self._layout.batch_size
        self.timesteps = self._layout.timesteps
        self.streaming = self._layout.kind in (
            LayoutKind.STREAMING,
            LayoutKind.EXTERNAL_STATE,
        )
        self.external_state = self._layout.kind is LayoutKind.EXTERNAL_STATE
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
        if self._layout.kind is not LayoutKind.NAMED:
            return tuple(t.name for t in self.inputs)
        return tuple(self.inputs[p].name for p in self._layout.input_order)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The file's output names, in the Keras model's output order."""
        if self._layout.kind is not LayoutKind.NAMED:
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
        frame = as_input_values(frame, layout, "frame")
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
        if self._layout.kind is LayoutKind.NAMED:
            return self._predict_named(x)
        x = as_sequences(x, self._layout)
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


def load_tflite(
    path: str | os.PathLike,
    *,
    backend: "Backend | str | None" = None,
    num_threads: int | None = None,
) -> "TFLiteRunner":
    """Loads a file written by `to_tflite` for float32 inference.

    Args:
        path: The `.tflite` file.
        backend: A `Backend` or its value: `"litert"`, `"tflite_micro"`
            (the TFLM interpreter, in this process, with a 4 MiB arena), or
            `None`: LiteRT, except for int16x8 files, which only TFLite
            Micro runs. Files that TFLite Micro cannot run
            (`tflite_micro_blockers`) are refused for the `"tflite_micro"`
            backend before it runs them.
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


__all__ = ["Backend", "TFLiteRunner", "load_tflite"]
