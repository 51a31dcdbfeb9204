"""Two LSTM variants on the tasks they ship for, each against a plain LSTM.

TFLite runs LSTM variants that phones use (docs/variants.md). This example
trains two of them, each beside a plain `keras_lstm.LSTM` with about the
same number of parameters, on the same data and budget:

1. Next character, the mobile keyboard's shape: a CIFG LSTM with a
   projection (`coupled_input_forget=True, projection_units=...`) reads 32
   characters of English prose and predicts the next one. The text is
   Python's own reference documentation, which ships with the interpreter
   (`pydoc_data.topics`, no download); every tenth topic is held out.
2. JapaneseVowels (aeon, no download): a layer-norm LSTM
   (`use_layer_norm=True`) classifies 9 speakers; accuracy on the official
   test split.

For every model it reports, on held-out data: Keras float32 accuracy,
parameters, the float32 TFLite file's size, accuracy and LiteRT latency
(one sequence per call, 1 thread, median), and the int8 file's accuracy on
LiteRT. Where `to_tflite` refuses to write a file (int8 of a variant,
today), the report gives the first line of its reason where the number
would be; the cells fill in once the export writes the file.

Usage:
    python examples/variants.py            # the full run (~4 min, 2 cores)
    python examples/variants.py --quick    # a smoke run for tests

Writes variants.md and variants.json to --out (default: artifacts).
"""

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import time

import keras
import numpy as np
import tqdm
from _story import (
    accuracy,
    litert_run,
    markdown_table,
    train,
    write_report,
)
from _story import parser as story_parser

import keras_lstm
from keras_lstm import export

LOSS = "sparse_categorical_crossentropy"
# Characters of context for the next-character model.
CONTEXT = 32


@dataclasses.dataclass(frozen=True)
class Task:
    """A data set, the variant that ships for it, and the budget."""

    name: str
    variant: dict  # keras_lstm.LSTM arguments beyond `units`
    common: dict  # arguments both models take
    units: int  # the variant's units; the plain LSTM's are matched to it
    epochs: int
    quick_epochs: int
    batch_size: int
    learning_rate: float


# The keyboard shape: CIFG drops the input gate's weights, and the
# projection shrinks both the recurrent kernel and the softmax's input, so
# for the plain LSTM's parameters the variant affords twice the cells.
NEXT_CHAR = Task(
    "next character",
    {"coupled_input_forget": True, "projection_units": 48},
    {},
    units=160,
    epochs=6,
    quick_epochs=3,
    batch_size=128,
    learning_rate=5e-3,
)
VOWELS = Task(
    "JapaneseVowels",
    {"use_layer_norm": True},
    # Zero padding and a zero state give a zero pre-activation, which
    # TFLite's layer norm divides by sqrt(0 + 1e-8): a gain of 1e4 per
    # padded step that overflowed the gradient to NaN in the first epoch.
    # A nonzero candidate bias (normal, σ 0.05) moves the state off zero
    # after one step.
    # The plain LSTM gets the same initializer.
    {"bias_initializer": "random_normal"},
    units=32,
    epochs=30,
    quick_epochs=3,
    batch_size=16,
    learning_rate=3e-3,
)


def main(argv=None):
    args = story_parser(
        __doc__, "small data, few epochs: a smoke run for tests"
    ).parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tasks = [
        run_task(NEXT_CHAR, load_text(args.quick), args.quick, out),
        run_task(VOWELS, load_vowels(args.quick), args.quick, out),
    ]
    payload = {
        "quick": args.quick,
        "cpu": cpu_model(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "wall_seconds": time.perf_counter() - start,
        "tasks": tasks,
    }
    write_report(out, "variants", markdown_report(payload), payload)
    return payload


# ---------------------------------------------------------------------------
# Data.


@dataclasses.dataclass
class Data:
    """Inputs and integer labels; `x` is token ids or float frames."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    description: str


def load_text(quick, seed=0):
    """Windows of `CONTEXT` characters and the character after each.

    Python's reference documentation, lower-cased with whitespace runs
    collapsed; characters seen fewer than 100 times in the training topics
    share one id. Topics, not windows, are held out, so no test window
    overlaps a training one.
    """
    from pydoc_data.topics import topics

    texts = [re.sub(r"\s+", " ", topics[key].lower()) for key in sorted(topics)]
    train_text = " ".join(t for i, t in enumerate(texts) if i % 10)
    test_text = " ".join(t for i, t in enumerate(texts) if not i % 10)
    counts = {}
    for char in train_text:
        counts[char] = counts.get(char, 0) + 1
    vocabulary = sorted(c for c, n in counts.items() if n >= 100)
    index = {c: i + 1 for i, c in enumerate(vocabulary)}  # 0: the rest

    def windows(text, count, rng):
        ids = np.array([index.get(c, 0) for c in text], "int32")
        starts = rng.choice(len(ids) - CONTEXT, count, replace=False)
        x = np.stack([ids[s : s + CONTEXT] for s in starts])
        return x, ids[starts + CONTEXT]

    rng = np.random.default_rng(seed)
    x_train, y_train = windows(train_text, 8000 if quick else 60000, rng)
    x_test, y_test = windows(test_text, 300 if quick else 3000, rng)
    return Data(
        x_train,
        y_train,
        x_test,
        y_test,
        classes=len(vocabulary) + 1,
        description=(
            f"`pydoc_data.topics` (Python {sys.version.split()[0]}'s "
            f"reference documentation): {len(train_text):,} training and "
            f"{len(test_text):,} held-out characters (every tenth topic), "
            f"{len(vocabulary) + 1} character classes; {len(x_train):,} "
            f"training and {len(x_test):,} test windows of {CONTEXT}"
        ),
    )


def load_vowels(quick):
    """JapaneseVowels, normalized and left-padded to its longest, 29."""
    from _story import load_aeon

    split = load_aeon("JapaneseVowels", 29)
    if quick:
        # Every class still appears in a stride of the test set.
        split.x_test, split.y_test = split.x_test[::4], split.y_test[::4]
    return Data(
        split.x_train,
        split.y_train,
        split.x_test,
        split.y_test,
        classes=len(split.classes),
        description=(
            f"aeon's JapaneseVowels: {len(split.x_train)} training and "
            f"{len(split.x_test)} test utterances, 12 channels, left-padded "
            "to 29 frames, 9 speakers"
        ),
    )


# ---------------------------------------------------------------------------
# Models.


def build_model(task, data, units, variant):
    """`input → keras_lstm.LSTM(units, **variant, **task.common) →
    Dense(softmax)`.

    Token ids go through a 16-wide Embedding first.
    """
    if data.x_train.ndim == 2:
        head = [
            keras.Input((CONTEXT,), dtype="int32"),
            keras.layers.Embedding(data.classes, 16),
        ]
    else:
        head = [keras.Input(data.x_train.shape[1:])]
    return keras.Sequential(
        head
        + [
            keras_lstm.LSTM(units, name="lstm", **variant, **task.common),
            keras.layers.Dense(data.classes, activation="softmax"),
        ]
    )


def matching_units(task, data):
    """The plain LSTM's units whose model has the variant's parameters
    most nearly (the count grows with the units: bisection)."""
    target = build_model(task, data, task.units, task.variant).count_params()
    low, high = 1, 4 * task.units
    while high - low > 1:
        middle = (low + high) // 2
        if build_model(task, data, middle, {}).count_params() <= target:
            low = middle
        else:
            high = middle
    counts = {
        u: build_model(task, data, u, {}).count_params() for u in (low, high)
    }
    return min(counts, key=lambda u: abs(counts[u] - target))


def describe(units, variant):
    arguments = [str(units)] + [f"{k}={v}" for k, v in variant.items()]
    return f"LSTM({', '.join(arguments)})"


# ---------------------------------------------------------------------------
# One task: train the variant and its plain twin, export, measure.


def run_task(task, data, quick, out):
    majority = np.mean(data.y_test == np.bincount(data.y_train).argmax())
    tqdm.tqdm.write(f"\n== {task.name}: {data.description}")
    models = {
        "variant": (task.units, task.variant),
        "plain": (matching_units(task, data), {}),
    }
    rows = []
    for role, (units, variant) in models.items():
        # The same seed for both: the same initial draw and shuffles.
        keras.utils.set_random_seed(0)
        model = build_model(task, data, units, variant)
        seconds = train(
            model,
            data.x_train,
            data.y_train,
            loss=LOSS,
            learning_rate=task.learning_rate,
            epochs=task.quick_epochs if quick else task.epochs,
            batch_size=task.batch_size,
            seed=1,
            metrics=["accuracy"],
            desc=f"{task.name}: {role}",
        )
        row = {
            "role": role,
            "layer": describe(units, variant),
            "parameters": int(model.count_params()),
            "lstm_parameters": int(model.get_layer("lstm").count_params()),
            "epoch_seconds": seconds,
            "keras_accuracy": accuracy(
                model.predict(data.x_test, verbose=0), data.y_test
            ),
        }
        stem = out / f"variants_{slug(task.name)}_{role}"
        row.update(export_and_run(model, data, stem, quick))
        rows.append(row)
    return {
        "task": task.name,
        "data": data.description,
        "majority_accuracy": float(majority),
        "epochs": task.quick_epochs if quick else task.epochs,
        "rows": rows,
    }


def slug(name):
    return re.sub(r"\W+", "_", name.lower()).strip("_")


def export_and_run(model, data, stem, quick):
    """The float32 and int8 files, each verified by `to_tflite` on the test
    inputs: {"float32": ..., "int8": ...}, each `measure`'s result."""
    runs = 10 if quick else 50
    return {
        "float32": measure(model, data, stem, "float32", runs),
        "int8": measure(
            model,
            data,
            stem,
            "int8",
            runs,
            quantization="int8",
            representative_data=data.x_train,
        ),
    }


def measure(model, data, stem, precision, runs, **options):
    """One file's size, max abs error against Keras on the test inputs,
    and LiteRT accuracy and latency; or, where `to_tflite` refuses to
    write it, the first line of its reason (`"refused"`)."""
    path = stem.with_name(f"{stem.name}_{precision}.tflite")
    try:
        report = export.to_tflite(
            model, path, check_data=data.x_test, **options
        )
    # ValueError: refused before any work (int8 of a variant, today);
    # ExportError: the file missed its check against Keras. Either way the
    # report says why, where a number would be; nothing is loosened.
    except (export.ExportError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        tqdm.tqdm.write(f"  {precision}: refused ({reason})")
        return {"refused": reason}
    probabilities, latency = litert_run(path, data.x_test, runs)
    return {
        "file": str(path),
        "bytes": report.size_bytes,
        "max_abs_error": float(report.max_abs_error),
        "accuracy": accuracy(probabilities, data.y_test),
        "latency_ms": latency,
    }


def cpu_model():
    """`lscpu`'s model name, where there is one, and the core count."""
    try:
        lines = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    names = [
        line.split(":", 1)[1].strip() for line in lines if "Model name" in line
    ]
    name = names[0] if names else "unknown CPU"
    return f"{name}, {os.cpu_count()} cores"


# ---------------------------------------------------------------------------
# The report.

REPORT_COLUMNS = (
    "model",
    "parameters (LSTM)",
    "Keras float32",
    "float32 file",
    "size",
    "LiteRT latency",
    "int8 file",
    "int8 size",
)


def file_cells(entry, precision, latency):
    """A file's accuracy, size (and latency) cells, or why it is missing."""
    if "refused" in entry:
        cells = [f"{precision}: refused ({entry['refused']})", "–"]
    else:
        cells = [
            f"{100 * entry['accuracy']:.1f}%",
            f"{entry['bytes'] / 1024:.1f} KiB",
        ]
    if latency:
        refused = "refused" in entry
        cells.append("–" if refused else f"{entry['latency_ms']:.3f} ms")
    return cells


def markdown_report(payload):
    mode = "quick (a smoke run)" if payload["quick"] else "full"
    lines = [
        "# LSTM variants against plain LSTMs of the same size",
        "",
        f"Mode: {mode}, {payload['date']}, {payload['cpu']}. Wall time: "
        f"{payload['wall_seconds']:.0f} s. Accuracy on held-out data; "
        "latency: LiteRT, 1 thread, one sequence per call (state reset "
        "included), median.",
        "",
    ]
    for task in payload["tasks"]:
        lines += [
            f"## {task['task']}",
            "",
            f"{task['data']}. {task['epochs']} epochs, the same seed for "
            f"both models. Predicting the training set's most frequent "
            f"class scores "
            f"{100 * task['majority_accuracy']:.1f}%.",
            "",
        ]
        cells = []
        for row in task["rows"]:
            cells.append(
                [
                    f"{row['role']}: `{row['layer']}`",
                    f"{row['parameters']:,} ({row['lstm_parameters']:,})",
                    f"{100 * row['keras_accuracy']:.1f}%",
                    *file_cells(row["float32"], "float32", latency=True),
                    *file_cells(row["int8"], "int8", latency=False),
                ]
            )
        lines += markdown_table(REPORT_COLUMNS, cells) + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
