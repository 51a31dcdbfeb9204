"""Random architectures from the grammar the README says exports.

`draw(rng)` composes a model from what `to_tflite` promises: float or
token inputs, an optional mask, a front end, one to three recurrent layers
of the three kinds (`keras_lstm.LSTM`, `keras.layers.LSTM`,
`keras.layers.RNN(LSTMCell)`), `Bidirectional` with every merge mode,
`go_backwards`, and a head (softmax, sigmoid, linear, pooled). Its task
has a learnable signal, so a brief fit gives a model with real decisions.

`trial(...)` trains it briefly, exports it, and judges the file on *fresh*
data of the same distribution, which neither calibration nor the export's
own check saw, by the criterion the export reported
(`Verification.problems`). Each draw ends in one of:

- `held`: exported, and holds on fresh data;
- `refused`: `to_tflite` refused it with a clear message (`ValueError`
  or `ExportError`);
- `failed_fresh`: exported, but fails on fresh data (a defect);
- `crashed`: any other exception (a defect).

Run `python tools/random_models.py --models 100` for the long run; the
suite runs a short one (`tests/test_property.py`).
"""

import argparse
import collections
import dataclasses
import os
import sys
import tempfile
import time
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm.export import ExportError, load_tflite, to_tflite  # noqa: E402

T = 12
FEATURES = 4
VOCABULARY = 30
TRAIN, FRESH = 192, 96


@dataclasses.dataclass
class Draw:
    """A drawn model and how to make data for it."""

    model: keras.Model
    description: str
    tokens: bool
    masked: bool
    head: str

    def data(self, rng, count):
        """`count` inputs and targets of the draw's task."""
        if self.tokens:
            x = rng.integers(1, VOCABULARY, size=(count, T)).astype("int32")
            signal = (x[:, :] < VOCABULARY // 2).mean(axis=1)
            if self.masked:
                lengths = rng.integers(T // 2, T + 1, size=count)
                for row, length in enumerate(lengths):
                    x[row, length:] = 0
        else:
            x = rng.normal(size=(count, T, FEATURES)).astype("float32")
            signal = x[:, :, 0].mean(axis=1) * np.sqrt(T)
            if self.masked:
                lengths = rng.integers(T // 2, T + 1, size=count)
                for row, length in enumerate(lengths):
                    x[row, length:] = 0.0
        if self.head == "softmax":
            y = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))
            y = keras.utils.to_categorical(y, 3)
        elif self.head == "sigmoid":
            y = (signal > np.median(signal)).astype("float32")[:, None]
        else:
            y = signal.astype("float32")[:, None]
        return x, y


def _recurrent(rng, units, return_sequences):
    kind = str(rng.choice(["keras_lstm", "keras", "rnn_cell"]))
    bidirectional = bool(rng.random() < 0.3)
    # Keras's Bidirectional refuses a layer that already runs backwards.
    go_backwards = not bidirectional and bool(rng.random() < 0.25)
    options = dict(return_sequences=return_sequences, go_backwards=go_backwards)
    if kind == "keras_lstm":
        layer = keras_lstm.LSTM(units, **options)
    elif kind == "keras":
        layer = keras.layers.LSTM(units, **options)
    else:
        layer = keras.layers.RNN(keras.layers.LSTMCell(units), **options)
    name = f"{kind}({units}{', back' if go_backwards else ''})"
    if bidirectional:
        merge = str(rng.choice(["concat", "sum", "mul", "ave"]))
        return keras.layers.Bidirectional(layer, merge_mode=merge), (
            f"Bidirectional[{merge}]({name})"
        )
    return layer, name


def draw(rng) -> Draw:
    """A random model from the README's grammar (see the module doc)."""
    tokens = bool(rng.random() < 0.35)
    masked = bool(rng.random() < 0.3)
    parts = []
    if tokens:
        inputs = keras.Input((T,), dtype="int32")
        x = keras.layers.Embedding(VOCABULARY, 8, mask_zero=masked)(inputs)
        parts.append(f"Embedding(mask_zero={masked})")
    else:
        inputs = keras.Input((T, FEATURES))
        x = inputs
        if masked:
            x = keras.layers.Masking(0.0)(x)
            parts.append("Masking")
        else:
            front = rng.choice(["none", "conv", "dense"])
            if front == "conv":
                x = keras.layers.Conv1D(
                    8, 3, padding="same", activation="relu"
                )(x)
                parts.append("Conv1D")
            elif front == "dense":
                x = keras.layers.Dense(8, activation="tanh")(x)
                parts.append("Dense")
    depth = int(rng.integers(1, 4))
    pooled = bool(rng.random() < 0.2)
    for index in range(depth):
        last = index == depth - 1
        units = int(rng.choice([4, 8, 16]))
        layer, name = _recurrent(rng, units, not last or pooled)
        x = layer(x)
        parts.append(name)
    if pooled:
        x = keras.layers.GlobalAveragePooling1D()(x)
        parts.append("GlobalAveragePooling1D")
    head = str(rng.choice(["softmax", "sigmoid", "linear"]))
    if head == "softmax":
        outputs = keras.layers.Dense(3, activation="softmax")(x)
    elif head == "sigmoid":
        outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    else:
        outputs = keras.layers.Dense(1)(x)
    parts.append(f"Dense[{head}]")
    model = keras.Model(inputs, outputs)
    return Draw(model, " -> ".join(parts), tokens, masked, head)


def trial(seed, quantization, folder, *, epochs=8):
    """One draw, trained, exported and judged on fresh data.

    Returns:
        `(outcome, description, detail)`.
    """
    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    drawn = draw(rng)
    x, y = drawn.data(rng, TRAIN)
    fresh, _ = drawn.data(rng, FRESH)
    loss = {
        "softmax": "categorical_crossentropy",
        "sigmoid": "binary_crossentropy",
        "linear": "mse",
    }[drawn.head]
    drawn.model.compile(keras.optimizers.Adam(0.01), loss)
    drawn.model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    path = os.path.join(folder, f"model_{seed}.tflite")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = to_tflite(
                drawn.model,
                path,
                quantization=quantization,
                representative_data=x,
            )
    except (ValueError, ExportError) as error:
        return "refused", drawn.description, str(error).split(". ")[0]
    except Exception:  # noqa: BLE001 - counted, with the traceback
        return "crashed", drawn.description, traceback.format_exc()[-800:]
    try:
        actual = load_tflite(path).predict(fresh)
        expected = np.asarray(drawn.model.predict(fresh, verbose=0))
        problems = _problems(report, actual, expected)
    except Exception:  # noqa: BLE001
        return "crashed", drawn.description, traceback.format_exc()[-800:]
    quanta = getattr(
        getattr(report, "verification", None), "lstm_error_quanta", None
    )
    fidelity = "" if quanta is None else f"LSTM fidelity {quanta:.2f} quanta"
    if problems:
        return "failed_fresh", drawn.description, "; ".join(problems)
    return "held", drawn.description, fidelity


def _problems(report, actual, expected):
    """Why the file fails on fresh data, by the criterion it was held to.

    Releases before the criteria by output kind held every file to a
    max-abs `report.tolerance`; the same generator measures them so.
    """
    checked = getattr(report, "verification", None)
    if checked is not None:
        return checked.problems(actual, expected)
    error = float(np.max(np.abs(actual - expected)))
    if error <= report.tolerance:
        return []
    return [f"max abs error {error:.3g} past {report.tolerance:.3g}"]


def run(models, *, seed=0, quantization="int8", verbose=True):
    """`models` trials from `seed` on; returns `{outcome: [(seed, ...)]}`."""
    outcomes = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as folder:
        for index in range(models):
            start = time.perf_counter()
            outcome, description, detail = trial(
                seed + index, quantization, folder
            )
            outcomes[outcome].append((seed + index, description, detail))
            if verbose:
                seconds = time.perf_counter() - start
                print(
                    f"{seed + index:4d} {outcome:12s} {seconds:5.1f}s "
                    f"{description}" + (f"\n     {detail}" if detail else ""),
                    flush=True,
                )
    return outcomes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quantization", default="int8", help="to_tflite's mode"
    )
    args = parser.parse_args(argv)
    outcomes = run(args.models, seed=args.seed, quantization=args.quantization)
    counts = {
        k: len(outcomes.get(k, []))
        for k in ("held", "refused", "failed_fresh", "crashed")
    }
    print(
        f"{args.models} models, {args.quantization}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    return 1 if counts["failed_fresh"] or counts["crashed"] else 0


if __name__ == "__main__":
    sys.exit(main())
