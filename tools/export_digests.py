"""Prints the SHA-256 of the files `to_tflite` writes for a fixed model set.

A refactor of the export pipeline must not change a single byte: run this
before and after (`python tools/export_digests.py > before.txt`) and diff.
The models are seeded and untrained (weights from fixed initialisers), the
data generated; every lossy export passes `tolerance=10.0` so that a change
in verification alone cannot refuse a file and hide a change in its bytes.
"""

import hashlib
import os
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm.export import to_tflite  # noqa: E402

T, F = 12, 4


def _models():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (64, T, F)), axis=1).astype("float32")
    tokens = rng.integers(1, 50, (64, T)).astype("int32")
    tokens[::2, -3:] = 0
    yield (
        "weather",
        keras.Sequential(
            [keras.Input((T, F)), keras_lstm.LSTM(16), keras.layers.Dense(1)]
        ),
        x,
        ("none", "float16", "dynamic", "int8", "int16x8"),
        {},
    )
    yield (
        "conv",
        keras.Sequential(
            [
                keras.Input((T, F)),
                keras.layers.Conv1D(8, 3, activation="relu"),
                keras.layers.MaxPooling1D(2),
                keras.layers.LSTM(8),
                keras.layers.Dense(3, activation="softmax"),
            ]
        ),
        x,
        ("none", "int8"),
        {},
    )
    yield (
        "tokens",
        keras.Sequential(
            [
                keras.Input((T,), dtype="int32"),
                keras.layers.Embedding(50, 8, mask_zero=True),
                keras.layers.Bidirectional(keras_lstm.LSTM(8)),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        ),
        tokens,
        ("none", "int8"),
        {},
    )
    streaming = keras.Sequential(
        [
            keras.Input((None, F)),
            keras_lstm.LSTM(8, return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    yield "streaming", streaming, x, ("none", "int8"), {"streaming": True}
    yield (
        "external",
        streaming,
        x,
        ("none",),
        {
            "streaming": True,
            "external_state": True,
        },
    )
    inputs = keras.Input((T, F))
    _, h, c = keras_lstm.LSTM(8, return_state=True)(inputs)
    yield "encoder", keras.Model(inputs, [h, c]), [x], ("none", "dynamic"), {}


def main():
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        for name, model, data, modes, options in _models():
            for mode in modes:
                path = os.path.join(folder, f"{name}_{mode}.tflite")
                to_tflite(
                    model,
                    path,
                    quantization=mode,
                    representative_data=data,
                    tolerance=None if mode == "none" else 10.0,
                    **options,
                )
                with open(path, "rb") as file:
                    digest = hashlib.sha256(file.read()).hexdigest()
                print(f"{name:10s} {mode:8s} {digest}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
