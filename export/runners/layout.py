"""What an exported file takes and gives, and inputs shaped to it.

A file written by `to_tflite` follows the contract of
`keras_lstm.export.contract`; `layout_of(content)` reads it back as a
`FileLayout`: which input carries the data, which output is `OUTPUT`,
where the explicit state sits, and the file's `LayoutKind`. Every runner
(LiteRT, TFLite Micro) and `runner.TFLiteRunner` read files through it, and
shape sequences for them with `as_sequences`, `chunks` and `assemble`.
"""

import dataclasses
import enum

import numpy as np

from keras_lstm.export import flatbuffer
from keras_lstm.export.contract import (
    FRAME,
    OUTPUT,
    SEQUENCES,
    input_position,
    output_position,
)


class LayoutKind(enum.StrEnum):
    """How a file takes its data, read from its input names.

    - `SEQUENCES`: whole sequences, input `SEQUENCES`; the fused LSTM keeps
      its state in variable tensors, reset before each sequence.
    - `STREAMING`: one frame per call, input `FRAME` alone; the state
      carries over between calls in variable tensors.
    - `EXTERNAL_STATE`: one frame per call, input `FRAME` and each LSTM
      layer's `h` and `c` as explicit inputs and outputs.
    - `NAMED`: several inputs or outputs, named by position in the Keras
      model (`contract.input_position`, `contract.output_position`).
    """

    SEQUENCES = "sequences"
    STREAMING = "streaming"
    EXTERNAL_STATE = "external_state"
    NAMED = "named"


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

    Attributes:
        kind: The file's `LayoutKind`.
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
            self.kind = LayoutKind.SEQUENCES
        elif FRAME in names and len(names) == 1:
            self.kind = LayoutKind.STREAMING
        elif FRAME in names:
            self.kind = LayoutKind.EXTERNAL_STATE
        else:
            raise ValueError(
                "Expected a file written by keras_lstm.export.to_tflite, with "
                f"an input named {SEQUENCES!r} or {FRAME!r}; found {names}."
            )
        self.data_input = names.index(
            SEQUENCES if self.kind is LayoutKind.SEQUENCES else FRAME
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
        """A file with several named inputs or outputs (`LayoutKind.NAMED`)."""
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
        self.kind = LayoutKind.NAMED
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


def layout_of(content):
    """The `FileLayout` of a file's bytes."""
    from ai_edge_litert.interpreter import Interpreter

    # Reading the signature needs no allocation, which LiteRT refuses for
    # files it has no kernel for (int16x8 LSTMs).
    return FileLayout(Interpreter(model_content=content), content)


def as_input_values(x, layout, name):
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


def as_sequences(x, layout):
    """`x` as the file's sequences, `(n, time, features)` or token ids.

    Converts the dtype (`as_input_values`) and checks the shape against
    `layout`; a masked model's whole-sequence file also takes sequences
    shorter than its time dimension (the runner resizes it).

    Raises:
        ValueError: for a wrong dtype or shape, or no sequences.
    """
    x = as_input_values(x, layout, "x")
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
    if layout.kind is LayoutKind.SEQUENCES and x.shape[1] != layout.timesteps:
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
    """`(batch, count)` pairs: `x` in batches, the last one zero-padded."""
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        count = chunk.shape[0]
        if count < batch_size:
            pad = np.zeros((batch_size - count,) + chunk.shape[1:], x.dtype)
            chunk = np.concatenate([chunk, pad], axis=0)
        yield chunk, count


def assemble(step_outputs):
    """A streaming file's outputs, as the Keras model gives them at once.

    Every step's output stacked on axis 1 if a step's output has a time
    axis, else the last step's.
    """
    first = step_outputs[0]
    if first.ndim >= 3 and first.shape[1] == 1:
        return np.concatenate(step_outputs, axis=1)
    return step_outputs[-1]
