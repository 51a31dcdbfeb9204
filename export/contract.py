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
