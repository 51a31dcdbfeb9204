"""The file contract: what `to_tflite` names its inputs and outputs.

The writer (`keras_lstm.export.tflite`) builds the file's signature from
these names, and the readers (`keras_lstm.export.runners`) find the data
input, the output and the explicit state by them. Both import this module,
so the two sides cannot drift apart.

- `SEQUENCES`: the data input of a whole-sequence file,
  `(batch, timesteps, features)`.
- `FRAME`: the data input of a streaming file, `(batch, 1, features)`.
- `OUTPUT`: the model's output.
- `state_names(i)`: layer `i`'s explicit `h` and `c`, in and out, in a file
  exported with `external_state=True`.
- `Padding` and `PADDING_METADATA`: the padding convention a file exported
  from a masked model records in its metadata, and which steps it drops.
- `input_names(...)`, `output_names(n)`: a file with several inputs or
  outputs (e.g. an encoder that returns `[h, c]`, a decoder step model
  taking `[token, h, c]`) names its inputs `input_<i>_<keras name>` and its
  outputs `output_<i>`, in the Keras model's order.

A token file (the model starts with `keras.layers.Embedding`) takes int32
token ids under the same names: `SEQUENCES` `(batch, timesteps)`, `FRAME`
`(batch, 1)`.
"""

import dataclasses
import json

import numpy as np

SEQUENCES = "sequences"
FRAME = "frame"
OUTPUT = "output"


def state_names(index: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """Signature names of LSTM layer `index`'s explicit state.

    Args:
        index: The LSTM call's position in the model, from 0.

    Returns:
        `((h_in, c_in), (h_out, c_out))`, e.g.
        `(("h_0", "c_0"), ("h_0_out", "c_0_out"))`.
    """
    return (f"h_{index}", f"c_{index}"), (f"h_{index}_out", f"c_{index}_out")


# ---------------------------------------------------------------------------
# Padding: how a file exported from a masked model marks padded steps.

PADDING_METADATA = "keras_lstm.padding"
"""Name of the file's metadata entry that records its `Padding`.

TFLite's `Model.metadata` maps names to buffers; runtimes ignore entries
they do not know (LiteRT, TFLite Micro). The writer adds it with
`keras_lstm.export.rewrite.with_metadata`; readers get it with
`keras_lstm.export.flatbuffer.metadata`.
"""


@dataclasses.dataclass(frozen=True)
class Padding:
    """Which input steps a masked Keras model treated as padding.

    The fused LSTM op has no mask input, so a masked model is exported
    without its mask and the caller drops the padded steps instead (trims
    them, or feeds only valid frames to a streaming file). This records
    what Keras's mask tested, so the reader drops the same steps.

    Attributes:
        kind: `"token"`: a step is padding if its token id equals `value`
            (`Embedding(mask_zero=True)`: id 0). `"value"`: a step is
            padding if every feature equals `value`
            (`keras.layers.Masking(mask_value)`).
        value: The token id or the mask value.
    """

    kind: str
    value: float

    def __post_init__(self):
        if self.kind not in ("token", "value"):
            raise ValueError(
                f"Padding kind must be 'token' or 'value', got {self.kind!r}."
            )

    def valid_steps(self, x: np.ndarray) -> np.ndarray:
        """`(n, time)` booleans: True where a step is data, as Keras masks.

        Args:
            x: Token ids `(n, time)` for `"token"`, sequences
                `(n, time, features)` for `"value"`.
        """
        if self.kind == "token":
            return np.asarray(x) != self.value
        # keras.layers.Masking: any(inputs != mask_value, axis=-1).
        return np.any(np.asarray(x) != np.float32(self.value), axis=-1)

    def encode(self) -> bytes:
        """The metadata buffer: UTF-8 JSON `{"kind": ..., "value": ...}`."""
        return json.dumps({"kind": self.kind, "value": self.value}).encode()

    @classmethod
    def decode(cls, data: bytes) -> "Padding":
        """The `Padding` an `encode`d buffer holds."""
        record = json.loads(bytes(data).decode())
        return cls(kind=record["kind"], value=record["value"])

    def describe(self) -> str:
        """One line for reports and errors."""
        if self.kind == "token":
            return f"token id {self.value:g} is padding"
        return f"steps whose features all equal {self.value:g} are padding"

# Files with several inputs or outputs (an encoder that returns its state, a
# decoder step model that takes it): every input is named by its position
# and the Keras input's name, every output by its position in the Keras
# model's outputs.


def input_names(keras_names: list[str]) -> list[str]:
    """Signature names of a several-input file's inputs, in model order.

    `input_<i>_<name>`: the input's position in the Keras model (the
    converter orders a file's inputs by name, so the position must be in
    it) and the Keras input's name, with characters outside `[A-Za-z0-9_]`
    replaced by `_`.

    Args:
        keras_names: The names of the Keras model's inputs, in order.

    Returns:
        One signature name per input, e.g. `["input_0_encoder_inputs"]`.
    """
    return [
        f"input_{position}_"
        + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
        for position, name in enumerate(keras_names)
    ]


def input_position(name: str) -> int:
    """The Keras input position of the input named `name`."""
    prefix, _, rest = name.partition("_")
    index = rest.partition("_")[0]
    if prefix != "input" or not index.isdigit():
        raise ValueError(f"{name!r} is not an input name of the contract.")
    return int(index)


def output_names(count: int) -> list[str]:
    """Signature names of a file's outputs: `OUTPUT`, or `output_<i>`.

    Args:
        count: The number of Keras model outputs.

    Returns:
        `["output"]` for one output, else `["output_0", "output_1", ...]`,
        in the Keras model's output order.
    """
    if count == 1:
        return [OUTPUT]
    return [f"output_{index}" for index in range(count)]


def output_position(name: str) -> int:
    """The Keras output position of the output named `name`."""
    if name == OUTPUT:
        return 0
    prefix, _, index = name.rpartition("_")
    if prefix != "output" or not index.isdigit():
        raise ValueError(f"{name!r} is not an output name of the contract.")
    return int(index)
