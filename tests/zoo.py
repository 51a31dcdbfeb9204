"""Shared judging for the model-zoo tests (imported by test modules).

Issue 11's acceptance, on a held-out split, against Keras (the reference):
- float files: |file - Keras| <= FLOAT_RTOL * max(1, |y|) per element;
- int8 files, on LiteRT and on TFLite Micro: the task metric within
  MSE_RELATIVE relative MSE, or ACCURACY_POINTS accuracy, of Keras float's.
"""

import numpy as np

from keras_lstm.export import load_tflite, run_tflite_micro

FLOAT_RTOL = 1e-4
MSE_RELATIVE = 0.10
ACCURACY_POINTS = 0.02
RUNTIMES = ["litert", "tflite_micro"]


def run_on(runtime, path, x):
    """The file's float32 outputs on `x`, on LiteRT or TFLite Micro."""
    if runtime == "litert":
        return load_tflite(path).predict(x)
    return run_tflite_micro(path, x).outputs


def mse(prediction, target):
    return float(np.mean((prediction - target) ** 2))


def accuracy(prediction, target):
    """Argmax accuracy; `target` one-hot (same shape) or class indices."""
    if target.shape == prediction.shape:
        target = target.argmax(-1)
    return float(np.mean(prediction.argmax(-1) == target))


def assert_float_matches(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    error = np.abs(actual - expected)
    bound = FLOAT_RTOL * np.maximum(1.0, np.abs(expected))
    assert np.all(error <= bound), f"max abs error {error.max():.3g}"
