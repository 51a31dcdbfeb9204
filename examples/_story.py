"""What the examples share, so that each one reads top-down as a story.

Not a framework: the command line every example takes (`--quick`,
`--out`), aeon's classification data prepared for a fused LSTM, float and
QAT training with Adam, LiteRT accuracy and latency, the accuracy score,
and the markdown table, plot and file plumbing of the reports.
"""

import argparse
import dataclasses
import json
import pathlib
import statistics
import sys
import time

import keras
import numpy as np
import tqdm


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


class _EpochBar(keras.callbacks.Callback):
    """A tqdm bar per fit, one tick per epoch, recording epoch times."""

    def __init__(self, epochs, desc):
        super().__init__()
        self.bar = tqdm.tqdm(total=epochs, desc=desc, unit="epoch")
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        logs = logs or {}
        shown = (("loss", "loss"), ("accuracy", "acc"))
        self.bar.set_postfix(
            {label: f"{logs[key]:.3f}" for key, label in shown if key in logs}
        )
        self.bar.update()

    def on_train_end(self, logs=None):
        self.bar.close()


def train(
    model,
    x,
    y,
    *,
    loss,
    learning_rate,
    epochs,
    batch_size,
    seed=None,
    metrics=None,
    desc="training",
):
    """Compiles `model` with Adam and fits it, with a progress bar.

    Args:
        model: a Keras 3 model.
        x, y: the training split.
        loss: the Keras loss.
        learning_rate: Adam's learning rate.
        epochs, batch_size: as for `fit`.
        seed: if not None, Keras's random seed, set just before fitting so
            that models fitted with one seed see the same shuffles.
        metrics: as for `compile`.
        desc: the progress bar's title.

    Returns:
        The median epoch time in seconds, the first epoch (which traces the
        training function) left out.
    """
    model.compile(keras.optimizers.Adam(learning_rate), loss, metrics=metrics)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    bar = _EpochBar(epochs, desc)
    model.fit(
        x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[bar]
    )
    return statistics.median(bar.seconds[1:] or bar.seconds)


def fine_tune_qat(
    model, x, y, *, loss, epochs, batch_size, learning_rate=1e-3, callbacks=()
):
    """A QAT copy of `model` (`keras_lstm.export.qat.quantize_model`), fitted.

    The QAT model is a tf_keras model (tfmot 0.8 speaks only Keras 2), so it
    is compiled with tf_keras's Adam.

    Args:
        model: the trained Keras 3 float model.
        x, y: the training split.
        loss: the loss, by name.
        epochs, batch_size: as for `fit`.
        learning_rate: Adam's learning rate (1e-3 is Adam's default).
        callbacks: tf_keras callbacks for `fit`.

    Returns:
        The fine-tuned tf_keras QAT model.
    """
    from keras_lstm.export import qat

    qat_model = qat.quantize_model(model)
    tf_keras = sys.modules["tf_keras"]
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate),
        loss=loss,
    )
    qat_model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        verbose=2,
        callbacks=list(callbacks),
    )
    return qat_model


def litert_run(path, x, runs):
    """Probabilities for `x` from a TFLite file on LiteRT (1 thread), and
    the median latency in ms of one sequence per call over the first
    `runs` sequences (state reset included), after a warm-up call."""
    from keras_lstm import export

    runner = export.load_tflite(path, num_threads=1)
    probabilities = runner.predict(x)
    runner.predict(x[:1])
    times = []
    for i in range(min(runs, len(x))):
        start = time.perf_counter()
        runner.predict(x[i : i + 1])
        times.append(time.perf_counter() - start)
    return probabilities, 1e3 * statistics.median(times)


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


def save_figure(fig, path, dpi=110):
    """Lays `fig` out, writes it to `path` and closes it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def write_report(out, name, markdown, payload=None):
    """Writes `<out>/<name>.md` (and `payload` as `<name>.json`), prints it.

    Returns:
        The markdown file's path.
    """
    out = pathlib.Path(out)
    if payload is not None:
        (out / f"{name}.json").write_text(json.dumps(payload, indent=2))
    path = out / f"{name}.md"
    path.write_text(markdown)
    print("\n" + markdown)
    return path
