"""Serving: export a SavedModel and call it with TensorFlow alone.

`keras_lstm.export.to_saved_model` writes a SavedModel with a
`serving_default` signature (dynamic batch, and here a dynamic time axis
too). Our layers lower to plain TensorFlow ops, so the loaded graph needs
neither Keras nor keras_lstm: `tf.saved_model.load` (or TF Serving, or
`saved_model_cli`) is enough. This script exports a small trained
classifier, loads it back, calls `serving_default` on sequences of two
lengths and compares with Keras.

Usage:
    python examples/serving.py
    python examples/serving.py --quick
"""

import pathlib
import sys

import _story
import keras
import numpy as np
import tensorflow as tf

import keras_lstm
from keras_lstm import export

FEATURES, UNITS, CLASSES = 4, 16, 3


def make_data(rng, n, timesteps):
    """Class = which of the first three features has the largest sum."""
    x = rng.standard_normal((n, timesteps, FEATURES)).astype("float32")
    return x, np.argmax(x[:, :, :CLASSES].sum(axis=1), axis=-1)


def main(argv=None):
    parser = _story.parser(__doc__, "tiny training", "artifacts/serving")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 256 if args.quick else 2048, 20)

    model = keras.Sequential(
        [
            keras.Input((None, FEATURES), name="sequences"),
            keras_lstm.LSTM(UNITS),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        epochs=1 if args.quick else 5,
        batch_size=64,
        verbose=2,
    )

    report = export.to_saved_model(model, out / "saved_model", overwrite=True)
    print(f"\nWrote {report.path} ({report.size_bytes} bytes).")
    print(f"signature {report.signature!r}:")
    for tensor in report.inputs:
        print(f"  input  {tensor.name}: {tensor.shape} {tensor.dtype}")
    for tensor in report.outputs:
        print(f"  output {tensor.name}: {tensor.shape} {tensor.dtype}")

    # What a server does: TensorFlow only, no Keras objects.
    loaded = tf.saved_model.load(str(report.path))
    serve = loaded.signatures["serving_default"]
    input_name = report.inputs[0].name
    errors = {}
    for timesteps in (20, 35):
        x, y = make_data(rng, 8, timesteps)
        outputs = serve(**{input_name: tf.constant(x)})
        (probabilities,) = outputs.values()
        expected = model.predict(x, verbose=0)
        errors[timesteps] = float(np.max(np.abs(probabilities - expected)))
        print(
            f"T={timesteps}: predicted {np.argmax(probabilities, -1)}, "
            f"true {y}, max |SavedModel − Keras| {errors[timesteps]:.2e}"
        )
    return errors


if __name__ == "__main__":
    main(sys.argv[1:])
