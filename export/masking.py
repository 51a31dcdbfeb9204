"""Masked models: exported without their mask, padding dropped by callers.

TFLite's fused LSTM has no mask input (TF#49936), and masking cannot be
rebuilt from its ops: a masked Keras LSTM holds its state through a padded
step, which no input to the op does. But a mask whose valid steps form one
contiguous run (right-padded, left-padded, or both) has an exact
equivalent: run the LSTM on that run alone. Keras's masked LSTM starts
from a zero state, holds it through leading padding, and carries its last
valid output through trailing padding, so its last output is the output of
the trimmed sequence; a `Bidirectional` layer's backward pass likewise
sees only the valid steps, reversed.

So `to_tflite` exports a masked model without its mask (`Masking` becomes
the identity, `Embedding(mask_zero=True)` a plain lookup), records the
padding convention in the file (`contract.Padding`, in the file's
metadata), and the runners drop the padded steps of every sequence before
running it: on a whole-sequence file by resizing its time dimension to the
valid length (LiteRT), on a streaming file by feeding only the valid
frames (LiteRT and TFLite Micro).

What is refused, and why:

- A mask with holes (padding between valid steps): Keras then holds the
  state mid-sequence, which a trimmed run cannot express.
- A sequence that is all padding.
- A model whose output keeps the time axis: at padded steps Keras returns
  the carried last output (or zeros, inside `Bidirectional`) passed
  through the layers that follow, values that the file, which never sees
  those steps, does not compute.
- A mask produced anywhere but on the model's input, which the caller
  could not evaluate on the data it holds.
- A `go_backwards` LSTM that returns sequences (outside `Bidirectional`):
  Keras hands its reversed outputs on with the mask unreversed, so the
  next layer skips other steps than the padded ones.
- A layer other than an LSTM that reads the mask over the time axis
  (`GlobalAveragePooling1D`, attention): its fixed-shape ops cannot
  follow the valid steps' length, and a streaming file never sees the
  whole sequence.
"""

import inspect

import keras
import numpy as np

from keras_lstm.export import models
from keras_lstm.export.contract import Padding


def _mask_layers(model):
    return [
        layer for layer in models.iter_layers(model) if is_mask_layer(layer)
    ]


def _backwards_sequences(model):
    """go_backwards layers returning sequences, outside Bidirectional."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_backwards_sequences(layer))
        elif (
            isinstance(layer, keras.layers.RNN)
            and layer.go_backwards
            and layer.return_sequences
        ):
            found.append(layer)
    return found


def _mask_readers(model):
    """Layers other than LSTMs whose call reads a mask on a time axis."""
    passes = (
        keras.layers.RNN,
        keras.layers.Bidirectional,
        keras.layers.TimeDistributed,
        keras.layers.BatchNormalization,  # the mask matters in training
        keras.layers.Masking,
        keras.layers.Embedding,
    )
    return [
        layer
        for layer in models.iter_layers(model)
        if not isinstance(layer, passes)
        and "mask" in inspect.signature(layer.call).parameters
        and len(getattr(keras.tree.flatten(layer.input)[0], "shape", ()))
        == 3
    ]


def is_mask_layer(layer) -> bool:
    """Whether `layer` produces the masks `padding_of` handles."""
    return isinstance(layer, keras.layers.Masking) or (
        isinstance(layer, keras.layers.Embedding)
        and bool(getattr(layer, "mask_zero", False))
    )


def padding_of(model) -> Padding | None:
    """The padding convention of a masked model, or `None` if unmasked.

    Args:
        model: A Sequential or Functional model with one input and output.

    Returns:
        A `contract.Padding`, or `None` if the model has no `Masking`
        layer and no `Embedding(mask_zero=True)`.

    Raises:
        ValueError: for masks `to_tflite` cannot reproduce (see the module
            docstring), saying what to do instead.
    """
    layers = _mask_layers(model)
    if not layers:
        return None
    names = ", ".join(repr(layer.name) for layer in layers)
    if len(layers) > 1:
        raise ValueError(
            f"Model {model.name!r} masks in several layers ({names}); "
            "to_tflite exports one mask, computed on the model's input. "
            "Keep a single Masking or Embedding(mask_zero=True) layer."
        )
    (layer,) = layers
    if layer.input is not model.inputs[0]:
        raise ValueError(
            f"Layer {layer.name!r} computes a mask from another layer's "
            "output; the fused LSTM has no mask input, so the file's "
            "callers drop padded steps themselves and must be able to see "
            "them in the model's input. Apply the Masking / "
            "Embedding(mask_zero=True) layer directly to the input."
        )
    if len(model.outputs[0].shape) >= 3:
        raise ValueError(
            f"Model {model.name!r} is masked ({names}) and its output "
            f"{tuple(model.outputs[0].shape)} keeps the time axis. The "
            "fused LSTM has no mask input, so the file runs on the valid "
            "steps only; at padded steps Keras returns the LSTM's carried "
            "last output (zeros inside Bidirectional) passed through the "
            "following layers, which the file never computes. Export a "
            "model that returns the last output (return_sequences=False on "
            "the last LSTM), or drop the mask and export fixed-length "
            "sequences."
        )
    for backwards in _backwards_sequences(model):
        raise ValueError(
            f"Layer {backwards.name!r} of masked model {model.name!r} runs "
            "backwards (go_backwards=True) and returns sequences: Keras "
            "passes its outputs on in reversed order with the mask "
            "unreversed, so the next layer skips other steps than the "
            "padded ones, which a file that runs the valid steps alone "
            "cannot reproduce. Wrap the LSTM in Bidirectional, or return "
            "the last output only (return_sequences=False)."
        )
    for reader in _mask_readers(model):
        raise ValueError(
            f"Layer {reader.name!r} ({type(reader).__name__}) of model "
            f"{model.name!r} reads the mask ({names}) over the time axis. "
            "The fused LSTM has no mask input, so the file runs the valid "
            "steps alone, and this layer's fixed-shape ops cannot follow "
            "their length. Take the last LSTM output instead "
            "(return_sequences=False), or drop the mask and export "
            "fixed-length sequences."
        )
    if isinstance(layer, keras.layers.Masking):
        return Padding(kind="value", value=float(layer.mask_value))
    return Padding(kind="token", value=0)


def spans(x: np.ndarray, padding: Padding) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of each sequence's valid steps.

    Args:
        x: Token ids `(n, time)` or sequences `(n, time, features)`.
        padding: The file's padding convention.

    Returns:
        `(starts, lengths)`, int arrays of shape `(n,)`.

    Raises:
        ValueError: if a sequence is all padding, or has padding between
            valid steps (a mask with holes).
    """
    valid = padding.valid_steps(x)
    steps = valid.shape[1]
    starts = np.argmax(valid, axis=1)
    ends = steps - np.argmax(valid[:, ::-1], axis=1)
    lengths = ends - starts
    empty = np.flatnonzero(~valid.any(axis=1))
    if empty.size:
        raise ValueError(
            f"Sequence {int(empty[0])} of `x` is all padding "
            f"({padding.describe()}); Keras's masked LSTM returns its zero "
            "initial state for it, which no run of the file gives. Drop "
            "empty sequences before calling."
        )
    holes = np.flatnonzero(valid.sum(axis=1) != lengths)
    if holes.size:
        row = int(holes[0])
        gap = int(starts[row]) + int(
            np.argmin(valid[row, starts[row] : ends[row]])
        )
        raise ValueError(
            f"Sequence {row} of `x` has padding at step {gap}, between "
            f"valid steps ({padding.describe()}). A masked Keras LSTM holds "
            "its state through such a hole; the fused LSTM has no mask "
            "input, and the file runs each sequence's valid steps as one "
            "contiguous run. Pad on the right or the left only."
        )
    return starts.astype(int), lengths.astype(int)


def groups(x: np.ndarray, padding: Padding, batch_size: int):
    """Batches of trimmed sequences of one length each, for a fixed batch.

    Sequences with the same number of valid steps are trimmed to them and
    stacked, `batch_size` at a time (the last batch of a length filled up
    by repeating its first sequence), because every slot of a batch steps
    through the file together.

    Args:
        x: Token ids `(n, time)` or sequences `(n, time, features)`.
        padding: The file's padding convention.
        batch_size: The file's batch size.

    Yields:
        `(rows, batch)`: the indices into `x` of the batch's sequences and
        the batch, `(batch_size, length, ...)`, whose first `len(rows)`
        entries are theirs.

    Raises:
        ValueError: as `spans`.
    """
    starts, lengths = spans(x, padding)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        for first in range(0, rows.size, batch_size):
            chunk = rows[first : first + batch_size]
            batch = np.stack(
                [x[r, starts[r] : starts[r] + length] for r in chunk]
            )
            if chunk.size < batch_size:
                filler = np.repeat(batch[:1], batch_size - chunk.size, 0)
                batch = np.concatenate([batch, filler])
            yield chunk, batch


def valid_steps_first(x: np.ndarray, padding: Padding) -> np.ndarray:
    """Each sequence of `x` with its valid steps moved to the front.

    The padding follows them: a left-padded sequence becomes right-padded.
    """
    starts, _ = spans(x, padding)
    return np.stack(
        [
            np.roll(row, -start, axis=0)
            for row, start in zip(x, starts, strict=True)
        ]
    )


def pad_randomly(
    x: np.ndarray, padding: Padding, rng: np.random.Generator
) -> np.ndarray:
    """`x` with padding written in: alternately on the right and the left.

    Each sequence keeps a random number of valid steps, from one to all,
    so a check on the result exercises both padding sides.
    """
    x = np.array(x, copy=True)
    steps = x.shape[1]
    for i in range(x.shape[0]):
        keep = int(rng.integers(1, steps + 1))
        padded = slice(keep, None) if i % 2 == 0 else slice(0, steps - keep)
        x[i, padded] = padding.value
    return x
