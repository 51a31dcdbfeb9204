"""Streaming: one frame in, one prediction out, from an exported file.

TFLite's fused LSTM keeps h and c in variable tensors that persist between
invocations (TF#38312). A single-frame file, `to_tflite(..., streaming=True)`,
turns that into streaming inference: feed a sequence frame by frame with
`runner.step(frame)` and the t-th result equals what Keras computes on the
first t frames as a whole. `runner.reset()` starts a new stream.

The model here is an online detector: for every frame of a random walk it
says whether the walk so far is above zero
(`keras_lstm.LSTM(16, return_sequences=True) → Dense(1, sigmoid)`). Its
input has no fixed length, so the file serves streams of any length. The
script exports float32 and int8 files, streams the test sequences frame by
frame and prints how far each is from Keras on the whole sequence: float32
agrees to rounding (~1e-7); int8 rounds the state at every frame, and after
full training we measured up to ~0.09 on the output probability.

Usage:
    python examples/streaming.py
    python examples/streaming.py --quick
"""

import pathlib
import sys

import _story
import keras
import numpy as np

import keras_lstm
from keras_lstm import export

TIMESTEPS, FEATURES, UNITS = 50, 2, 16
# Calibration sequences for int8. With 64, the trained model's int8 file
# missed to_tflite's tolerance (0.113 against 0.081 on the check batch).
CALIBRATION = 512


def make_data(rng, n):
    """Random walks; per-frame label: has feature 0's running sum gone >0?"""
    x = rng.standard_normal((n, TIMESTEPS, FEATURES)).astype("float32")
    y = (np.cumsum(x[:, :, 0], axis=1) > 0).astype("float32")[..., None]
    return x, y


def stream(runner, sequence):
    """Feeds one sequence frame by frame; returns `(1, T, 1)` outputs."""
    runner.reset()  # a new stream starts from h = c = 0
    # Each step returns (batch=1, 1 frame, 1): this frame's prediction.
    return np.concatenate(
        [runner.step(frame[None]) for frame in sequence], axis=1
    )


def main(argv=None):
    parser = _story.parser(__doc__, "tiny training", "artifacts/streaming")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 256 if args.quick else 2048)
    x_test, _ = make_data(rng, 4 if args.quick else 16)

    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            keras_lstm.LSTM(UNITS, return_sequences=True),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit(
        x_train,
        y_train,
        epochs=1 if args.quick else 5,
        batch_size=64,
        verbose=2,
    )
    # Keras on whole sequences: the reference for every frame.
    expected = model.predict(x_test, verbose=0)[..., 0]

    # A seeded random sample of the training set, never a leading slice:
    # on ordered data a slice covers one stretch, and int8 clips the rest.
    count = min(CALIBRATION, len(x_train))
    sample = np.random.default_rng(1).choice(len(x_train), count, replace=False)
    calibration = x_train[sample]

    errors = {}
    for quantization in ("none", "int8"):
        path = out / f"streaming_{quantization}.tflite"
        report = export.to_tflite(
            model,
            path,
            quantization=quantization,
            representative_data=calibration,
            streaming=True,
        )
        runner = export.load_tflite(path)
        ops = sorted(set(runner.ops))
        print(
            f"\n{path}: {report.size_bytes} bytes, input "
            f"{runner.inputs[0].shape} (one frame), ops {ops}"
        )
        streamed = np.concatenate(
            [stream(runner, sequence) for sequence in x_test], axis=0
        )[..., 0]
        errors[quantization] = float(np.max(np.abs(streamed - expected)))
        print(
            f"sequence 0, frames 1-8, streamed: {np.round(streamed[0, :8], 3)}"
        )
        print(
            f"sequence 0, frames 1-8, Keras:    {np.round(expected[0, :8], 3)}"
        )
        print(
            f"max |streamed − Keras on whole sequences| over "
            f"{len(x_test)} × {TIMESTEPS} frames ({quantization}): "
            f"{errors[quantization]:.2e}"
        )
    return errors


if __name__ == "__main__":
    main(sys.argv[1:])
