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
- `input_names(...)`, `output_names(n)`: a file with several inputs or
  outputs (e.g. an encoder that returns `[h, c]`, a decoder step model
  taking `[token, h, c]`) names its inputs `input_<i>_<keras name>` and its
  outputs `output_<i>`, in the Keras model's order.
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
