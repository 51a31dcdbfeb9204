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
"""

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
