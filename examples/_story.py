"""What the examples share, so that each one reads top-down as a story.

Not a framework: the command line every example takes (`--quick`,
`--out`), aeon's classification data prepared for a fused LSTM, the
accuracy score, and the markdown table and plot plumbing of the reports.
"""

import argparse
import dataclasses

import numpy as np


def parser(doc, quick_help, out_default="artifacts"):
    """The examples' argument parser: `--quick` and `--out`.

    Args:
        doc: the example's module docstring; its first paragraph is the
            description, the rest (usage) the help text's tail.
        quick_help: what `--quick` does in this example.
        out_default: the default output directory.

    Returns:
        An `argparse.ArgumentParser` to add the example's own flags to.
    """
    result = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("--quick", action="store_true", help=quick_help)
    result.add_argument(
        "--out",
        default=out_default,
        help="output directory (default: %(default)s)",
    )
    return result


@dataclasses.dataclass
class Split:
    """An aeon data set as padded float32 tensors and integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list
    train_lengths: np.ndarray
    test_lengths: np.ndarray


def _pad_left(sequences, timesteps):
    batch = np.zeros((len(sequences), timesteps, sequences[0].shape[1]))
    for row, s in enumerate(sequences):
        if len(s) > timesteps:
            raise ValueError(
                f"A sequence has {len(s)} frames, more than {timesteps}."
            )
        batch[row, timesteps - len(s) :] = s
    return batch.astype("float32")


def load_aeon(name, timesteps):
    """aeon's `name`, normalized and left-padded to `timesteps` frames.

    Every channel is normalized with the mean and standard deviation of the
    real training frames. TFLite's fused LSTM has no mask input, so the
    sequences are left-padded with zeros (the training mean after
    normalization): the real frames are the last the LSTM reads.

    Args:
        name: an aeon classification data set that ships with aeon
            (no download), e.g. "JapaneseVowels".
        timesteps: the padded length; no sequence may be longer.

    Returns:
        A `Split`; labels index the sorted class names.
    """
    from aeon.datasets import load_classification

    x_train, y_train = load_classification(name, split="train")
    x_test, y_test = load_classification(name, split="test")
    # aeon gives (N, C, L) arrays or lists of (C, L_i): (L_i, C) each.
    train = [np.asarray(s, "float32").T for s in x_train]
    test = [np.asarray(s, "float32").T for s in x_test]
    # Statistics of real training frames only; padding comes after.
    frames = np.concatenate(train, axis=0)
    mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-8
    train = [(s - mean) / std for s in train]
    test = [(s - mean) / std for s in test]
    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}
    return Split(
        x_train=_pad_left(train, timesteps),
        y_train=np.array([index[c] for c in y_train]),
        x_test=_pad_left(test, timesteps),
        y_test=np.array([index[c] for c in y_test]),
        classes=classes,
        train_lengths=np.array([len(s) for s in train]),
        test_lengths=np.array([len(s) for s in test]),
    )


def accuracy(probabilities, labels):
    """The share of rows whose argmax is the label, in [0, 1]."""
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def fmt(value, spec, missing="–"):
    """`value` formatted with `spec`, or `missing` for None."""
    return missing if value is None else format(value, spec)


def markdown_table(header, rows):
    """A markdown table: `header` a list of titles, `rows` lists of cells."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
