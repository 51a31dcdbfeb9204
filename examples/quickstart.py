"""Quickstart: keras_lstm.LSTMCell in a Sequential model, checked against Keras.

Builds `keras.layers.RNN(keras_lstm.LSTMCell(16))` in a Sequential model,
trains it for a moment on a generated task (does the sequence's running sum
end above zero?), then copies its weights into a model built with
`keras.layers.LSTM` and prints how far apart the two are. They share the
weight layout, so `get_weights` / `set_weights` is all it takes.

Usage:
    python examples/quickstart.py
    python examples/quickstart.py --quick
"""

import argparse
import sys

import keras
import numpy as np

import keras_lstm

TIMESTEPS, FEATURES, UNITS = 20, 3, 16


def make_data(rng, n):
    """Random walks; label 1 when the first feature ends above zero."""
    x = rng.standard_normal((n, TIMESTEPS, FEATURES)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")[:, None]
    return x, y


def build(recurrent):
    return keras.Sequential(
        [
            keras.Input((TIMESTEPS, FEATURES)),
            recurrent,
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one epoch")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 512 if args.quick else 2048)
    x_test, y_test = make_data(rng, 256)

    ours = build(keras.layers.RNN(keras_lstm.LSTMCell(UNITS)))
    ours.compile(
        keras.optimizers.Adam(1e-2),
        "binary_crossentropy",
        metrics=["accuracy"],
    )
    ours.fit(
        x_train,
        y_train,
        epochs=1 if args.quick else 5,
        batch_size=64,
        verbose=2,
    )
    _, accuracy = ours.evaluate(x_test, y_test, verbose=0)

    reference = build(keras.layers.LSTM(UNITS))
    reference.set_weights(ours.get_weights())
    ours_out = ours.predict(x_test, verbose=0)
    reference_out = reference.predict(x_test, verbose=0)
    max_abs_error = float(np.max(np.abs(ours_out - reference_out)))

    print(f"test accuracy (keras_lstm.LSTMCell): {accuracy:.3f}")
    print(
        "max |keras_lstm − keras.layers.LSTM| on the test set, same weights: "
        f"{max_abs_error:.2e}"
    )
    return {"accuracy": float(accuracy), "max_abs_error": max_abs_error}


if __name__ == "__main__":
    main(sys.argv[1:])
