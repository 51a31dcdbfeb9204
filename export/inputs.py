"""What an exported file takes: float sequences or token ids, maybe padded.

`to_tflite` exports two kinds of input (`InputKind`):

- `SEQUENCES`: float32 `(batch, time, features)`, the LSTM's own input.
- `TOKENS`: int32 token ids `(batch, time)` read by a
  `keras.layers.Embedding` (keras.io's bidirectional_lstm_imdb:
  `keras.Input((maxlen,), dtype="int32")` -> Embedding -> LSTM). The lookup
  becomes TFLite's builtin GATHER, which TFLite Micro runs; integer modes
  quantize the table and keep the input int32 ids.

`describe(model)` reads a model's input once, `data()` checks the caller's
arrays against it, and `generated()` makes check data when the caller gives
none (random ids in the vocabulary for token models). A masked model
(`masking`) also carries its padding convention here.
"""

import dataclasses
import enum

import numpy as np

from keras_lstm.export import masking, models
from keras_lstm.export.contract import Padding

GENERATED_SEQUENCES = 16
"""Generated check sequences when the caller gives no data (`generated`)."""


class InputKind(enum.Enum):
    """What the file's data input holds."""

    SEQUENCES = "sequences"
    """float32 `(batch, time, features)`."""
    TOKENS = "tokens"
    """int32 token ids `(batch, time)`, read by an Embedding."""


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """A model's input, as the exported file will take it.

    Attributes:
        kind: `InputKind.SEQUENCES` or `InputKind.TOKENS`.
        timesteps: The model's time dimension (`None` if free).
        features: Features per step; `None` for token ids.
        vocabulary: The Embedding's `input_dim` (ids are in
            `[0, vocabulary)`); `None` for float sequences.
        embedding: The Embedding layer's name, for messages.
        padding: The padding convention of a masked model, else `None`.
    """

    kind: InputKind
    timesteps: int | None
    features: int | None
    vocabulary: int | None = None
    embedding: str | None = None
    padding: Padding | None = None

    @property
    def tokens(self) -> bool:
        return self.kind is InputKind.TOKENS

    @property
    def step_shape(self) -> tuple[int, ...]:
        """One step's shape: `()` for a token, `(features,)` otherwise."""
        return () if self.tokens else (self.features,)

    @property
    def dtype(self) -> str:
        """The file's data input dtype before quantization."""
        return "int32" if self.tokens else "float32"

    def expected(self) -> str:
        """The array callers pass, for messages."""
        if self.tokens:
            return (
                "an integer array (num_sequences, timesteps) of token ids in "
                f"[0, {self.vocabulary}) (Embedding {self.embedding!r})"
            )
        return f"a float array (num_sequences, timesteps, {self.features})"


def _token_embedding(model):
    """The Embedding that reads the model's rank-2 input, or raises."""
    import keras

    source = model.inputs[0]
    readers = [
        layer
        for layer in models.iter_layers(model)
        if not isinstance(layer, keras.layers.InputLayer)
        and _reads(layer, source)
    ]
    embeddings = [
        layer for layer in readers if isinstance(layer, keras.layers.Embedding)
    ]
    if len(embeddings) != 1 or len(readers) != 1:
        names = [f"{layer.name} ({type(layer).__name__})" for layer in readers]
        raise ValueError(
            f"Model {model.name!r} has input shape {tuple(source.shape)} "
            f"read by {names or 'no layer'}; to_tflite exports float "
            "sequences (batch, time, features), or token ids (batch, time) "
            "read by one keras.layers.Embedding. Feed the ids to a single "
            "Embedding, or give the model a (time, features) input."
        )
    return embeddings[0]


def _reads(layer, tensor):
    try:
        inputs = layer.input
    except (AttributeError, ValueError):  # no or several call sites
        return False
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return any(x is tensor for x in inputs)


def describe(model) -> ModelInput:
    """The model's input, checked: float sequences or token ids.

    Args:
        model: A built Sequential or Functional model.

    Returns:
        A `ModelInput`.

    Raises:
        TypeError: if `model` is not a `keras.Model`.
        ValueError: if the model is subclassed, unbuilt, has several inputs
            or outputs, an input that is neither `(batch, time, features)`
            float32 nor `(batch, time)` ids read by an Embedding, or a mask
            `to_tflite` cannot reproduce (`masking.padding_of`).
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            "Received an invalid value for argument `model`: expected a "
            f"keras.Model, got {type(model).__name__}."
        )
    models.require_graph_model(model)
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Model {model.name!r} is not built. Build it with an input "
            "shape (keras.Input) before exporting."
        ) from error
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs and "
            f"{len(outputs)} outputs; to_tflite exports models with one "
            "input (batch, time, features) or (batch, time) token ids, and "
            "one output. Wrap the part to export in a model of its own."
        )
    shape = tuple(inputs[0].shape)
    padding = masking.padding_of(model)
    if len(shape) == 2:
        embedding = _token_embedding(model)
        return ModelInput(
            kind=InputKind.TOKENS,
            timesteps=shape[1],
            features=None,
            vocabulary=int(embedding.input_dim),
            embedding=embedding.name,
            padding=padding,
        )
    if len(shape) != 3 or shape[2] is None:
        raise ValueError(
            f"Model {model.name!r} has input shape {shape}; to_tflite needs "
            "(batch, time, features) with a known number of features, or "
            "(batch, time) token ids read by a keras.layers.Embedding."
        )
    if inputs[0].dtype != "float32":
        raise ValueError(
            f"Model {model.name!r} has a {inputs[0].dtype} input of shape "
            f"{shape}; to_tflite needs float32 sequences (or token ids "
            "(batch, time) read by a keras.layers.Embedding)."
        )
    return ModelInput(
        kind=InputKind.SEQUENCES,
        timesteps=shape[1],
        features=shape[2],
        padding=padding,
    )


def data(name: str, value, spec: ModelInput) -> np.ndarray | None:
    """`value` checked against `spec`: float32 sequences or int32 ids.

    Args:
        name: The argument's name, for messages.
        value: The caller's array, or `None`.
        spec: The model's input.

    Returns:
        float32 `(n, timesteps, features)`, int32 `(n, timesteps)` for
        token models, or `None`.

    Raises:
        TypeError: if `value` is not an array of the right kind.
        ValueError: for a wrong shape, non-finite values, ids out of the
            vocabulary, or a padded sequence `masking.spans` refuses.
    """
    if value is None:
        return None
    array = (
        _tokens(name, value, spec)
        if spec.tokens
        else _floats(name, value, spec)
    )
    if spec.padding is not None:
        try:
            masking.spans(array, spec.padding)
        except ValueError as error:
            raise ValueError(
                f"Received an invalid value for argument `{name}`: {error}"
            ) from error
    return array


def _floats(name, value, spec):
    features = spec.features
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Received an invalid value for argument `{name}`: expected "
            f"{spec.expected()}, got {type(value).__name__}."
        ) from error
    if array.ndim != 3 or array.shape[2] != features or 0 in array.shape:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: expected "
            f"shape (num_sequences, timesteps, {features}), got "
            f"{array.shape}."
        )
    if not np.isfinite(array).all():
        raise ValueError(
            f"Received an invalid value for argument `{name}`: it holds NaN "
            "or infinite values."
        )
    return array


def _tokens(name, value, spec):
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"Received an invalid value for argument `{name}`: the model "
            f"takes token ids; expected {spec.expected()}, got a "
            f"{array.dtype} array. Pass the ids themselves (e.g. "
            "x.astype('int32')), not their embeddings."
        )
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: expected "
            f"{spec.expected()}, got shape {array.shape}."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= spec.vocabulary:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: it holds "
            f"token ids from {low} to {high}, outside [0, {spec.vocabulary}) "
            f"(Embedding {spec.embedding!r}, input_dim={spec.vocabulary}). "
            "TFLite's GATHER fails on ids out of range; map unknown words "
            "to an id the model knows."
        )
    return array.astype(np.int32)


def generated(
    spec: ModelInput, *, batch_size: int, timesteps: int
) -> tuple[np.ndarray, str]:
    """Check data for a caller who gave none (seed 0), and its name.

    Float models get random-normal sequences, token models random ids in
    `[0, vocabulary)` (`[1, vocabulary)` when id 0 is padding). For a
    masked model, sequences alternate right and left padding with random
    valid lengths (`masking.pad_randomly`), so the check exercises both.
    """
    count = max(batch_size, GENERATED_SEQUENCES)
    rng = np.random.default_rng(0)
    if spec.tokens:
        low = 1 if spec.padding is not None else 0
        x = rng.integers(low, spec.vocabulary, size=(count, timesteps))
        x = x.astype(np.int32)
        what = f"random token ids in [{low}, {spec.vocabulary})"
    else:
        x = rng.normal(size=(count, timesteps, spec.features))
        x = x.astype(np.float32)
        what = "random-normal sequences"
    if spec.padding is not None:
        x = masking.pad_randomly(x, spec.padding, rng)
        what += ", right- and left-padded"
    name = (
        f"generated ({count} {what}: no data was given, so this checks the "
        "arithmetic, not the ranges)"
    )
    return x, name


def generated_named(
    shapes, *, batch_size: int
) -> tuple[list[np.ndarray], str]:
    """Check data for a model with named inputs (seed 0), and its name.

    One random-normal float32 array per input of `shapes` (each without
    the batch axis), `max(batch_size, GENERATED_SEQUENCES)` samples each.
    """
    count = max(batch_size, GENERATED_SEQUENCES)
    rng = np.random.default_rng(0)
    generated = [
        rng.normal(size=(count, *shape)).astype(np.float32) for shape in shapes
    ]
    return generated, (
        f"generated ({count} random-normal samples per input: no data was "
        "given, so this checks the arithmetic, not the ranges)"
    )
