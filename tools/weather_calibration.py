"""How calibration data changes int8 on an ordered time series, held out.

A keras.io-style weather regression (timeseries_weather_forecasting: past
frames of several channels -> a later temperature), on a generated series
with yearly seasons and a slow warming trend, split in time: the model
trains on the first 80 % of the windows and is judged on the last 20 %,
which a slow trend (about 1.8 degrees over ten years) carries slightly
past the training range. The same model is
exported in int8, calibrated three ways:

- `leading`: the first 256 training windows (`x_train[:256]`, the old
  README's advice): one season;
- `random`: a seeded random 256 of the training windows;
- `all`: the whole training set (`to_tflite` samples
  `calibration.CALIBRATION_LIMIT` of it itself);

and int16x8 (TFLite Micro) and dynamic range on the whole set. It prints
each file's held-out MSE against the targets, relative to float32's.

Run: `python tools/weather_calibration.py`.
"""

import os
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm.export import (  # noqa: E402
    load_tflite,
    run_tflite_micro,
    to_tflite,
)

PAST, AHEAD, CHANNELS = 24, 6, 5
YEAR = 365


def series(rng, days=3650):
    """Daily channels: temperature-like seasons plus a warming trend."""
    t = np.arange(days)
    season = np.sin(2 * np.pi * t / YEAR)
    temperature = 10 * season + 0.0005 * t + rng.normal(0, 1.5, days)
    temperature = np.convolve(temperature, np.ones(3) / 3, mode="same")
    pressure = -0.5 * temperature + rng.normal(0, 1.0, days)
    humidity = 60 - 2 * season * 10 + rng.normal(0, 3.0, days)
    wind = np.abs(rng.normal(3, 1.5, days))
    sun = np.clip(season + rng.normal(0, 0.3, days), -1.5, 1.5)
    return np.stack([temperature, pressure, humidity, wind, sun], axis=1)


def windows(data):
    x = np.stack(
        [data[i : i + PAST] for i in range(len(data) - PAST - AHEAD)]
    )
    y = data[PAST + AHEAD :, :1][: len(x)]
    return x.astype("float32"), y.astype("float32")


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    raw = series(rng)
    split = int(0.8 * len(raw))
    mean, std = raw[:split].mean(0), raw[:split].std(0)
    x, y = windows((raw - mean) / std)
    cut = int(0.8 * len(x))
    x_train, y_train, x_test, y_test = x[:cut], y[:cut], x[cut:], y[cut:]
    model = keras.Sequential(
        [
            keras.Input((PAST, CHANNELS)),
            keras_lstm.LSTM(32),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    model.fit(x_train, y_train, epochs=10, batch_size=64, verbose=0)
    float_mse = float(np.mean((model.predict(x_test, verbose=0) - y_test) ** 2))
    print(
        f"{len(x_train)} training windows, {len(x_test)} held out (later in "
        f"time); float32 held-out MSE {float_mse:.4f}"
    )
    sample = np.random.default_rng(0).choice(len(x_train), 256, replace=False)
    runs = [
        ("int8", "leading 256", x_train[:256]),
        ("int8", "random 256", x_train[np.sort(sample)]),
        ("int8", "all", x_train),
        ("int16x8", "all", x_train),
        ("dynamic", "all", None),
    ]
    with tempfile.TemporaryDirectory() as folder:
        for mode, name, data in runs:
            path = os.path.join(folder, f"{mode}.tflite")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = to_tflite(
                    model,
                    path,
                    quantization=mode,
                    representative_data=data,
                    check_data=x_test,
                    max_relative_error=1.0,  # measured here, not judged
                )
            if mode == "int16x8":
                predicted = run_tflite_micro(path, x_test).outputs
                runtime = "TFLite Micro"
            else:
                predicted = load_tflite(path).predict(x_test)
                runtime = "LiteRT"
            mse = float(np.mean((predicted - y_test) ** 2))
            outside = report.verification.ranges
            print(
                f"{mode:8s} calibrated on {name:12s} {runtime:12s} MSE "
                f"{mse:.4f} ({(mse / float_mse - 1) * 100:+.1f} % vs float); "
                f"relative RMS vs Keras "
                f"{report.verification.losses[0].relative_rms:.3f}; outside "
                f"range: inputs {outside.inputs_outside:.1%}, outputs "
                f"{outside.outputs_outside:.1%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
