"""Shared judging for the model-zoo tests (imported by test modules).

Issue 11's acceptance, on a held-out split, against Keras (the reference):
- float files: |file - Keras| <= FLOAT_RTOL * max(1, |y|) per element;
- int8 files, on LiteRT and on TFLite Micro: the task metric within
  MSE_RELATIVE relative MSE, or ACCURACY_POINTS accuracy, of Keras float's.
"""

import numpy as np

from keras_lstm.export import load_tflite, run_tflite_micro, to_tflite

FLOAT_RTOL = 1e-4
MSE_RELATIVE = 0.10
ACCURACY_POINTS = 0.02
RUNTIMES = ["litert", "tflite_micro"]


def lossy_bound(report, expected):
    """A max-abs bound for re-checking a lossy file on other data.

    The bound `to_tflite` enforced before it judged lossy files by
    decisions and relative error, kept so that these re-checks stay as
    strict as they were: float16 `1e-2 * s + 1e-2 * range`, dynamic range
    `5e-2 * s + 5e-2 * range` (s = max(1, max |y|)), integer 8 output
    quanta + 5 % of the range (measured on JapaneseVowels: int8 0.077
    worst case over 640 sequences against 0.081).
    """
    expected = np.asarray(expected)
    spread = float(expected.max() - expected.min())
    scale = max(1.0, float(np.abs(expected).max()))
    mode = report.quantization.value
    if mode == "float16":
        return 1e-2 * scale + 1e-2 * spread
    if mode == "dynamic":
        return 5e-2 * scale + 5e-2 * spread
    if mode in ("int8", "int16x8"):
        return 8.0 * report.outputs[0].scale + 0.05 * spread
    return FLOAT_RTOL * scale


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


def assert_int8_keeps_the_metric(actual, expected, target, metric):
    """int8 outputs keep Keras float's task metric ("mse" or "accuracy")."""
    if metric == "mse":
        float_mse, int8_mse = mse(expected, target), mse(actual, target)
        relative = abs(int8_mse - float_mse) / float_mse
        assert relative <= MSE_RELATIVE, (float_mse, int8_mse)
    else:
        float_acc = accuracy(expected, target)
        int8_acc = accuracy(actual, target)
        assert int8_acc >= float_acc - ACCURACY_POINTS, (float_acc, int8_acc)


def assert_float_matches(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    error = np.abs(actual - expected)
    bound = FLOAT_RTOL * np.maximum(1.0, np.abs(expected))
    assert np.all(error <= bound), f"max abs error {error.max():.3g}"


def _sample(train, count):
    if count is None or count >= len(train):
        return train
    rows = np.random.default_rng(0).choice(len(train), count, replace=False)
    return train[np.sort(rows)]


def export_zoo(models, root, *, calibration_limit=None):
    """Each model's float and int8 files, checked on its held-out split.

    Args:
        models: `{name: (model, train, held_out, target)}`.
        root: The directory for the files.
        calibration_limit: Calibrate on a seeded random sample of this many
            training sequences (never a leading slice), `None` for all.

    Returns:
        `{(name, quantization): (report, Keras outputs, held out, target)}`.
    """
    files = {}
    for name, (model, train, held_out, target) in models.items():
        expected = model.predict(held_out, verbose=0)
        for quantization in ("none", "int8"):
            report = to_tflite(
                model,
                root / f"{name}_{quantization}.tflite",
                quantization=quantization,
                representative_data=_sample(train, calibration_limit),
                check_data=held_out,
            )
            files[name, quantization] = (report, expected, held_out, target)
    return files
