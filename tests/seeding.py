"""Seeded weights for the export tests (imported by test modules)."""

import keras
import numpy as np

from keras_lstm.export import models


def seeded(model, rng):
    """Seeded LSTM and Dense weights at the scale of Keras's initializers.

    Matrices get std 1/sqrt(fan_in), vectors std 0.5. Other layers (an
    adapted Normalization) keep theirs. Returns `model`.
    """
    for layer in models.iter_layers(model):
        if isinstance(layer, (keras.layers.RNN, keras.layers.Dense)):
            layer.set_weights(
                [
                    (
                        rng.standard_normal(w.shape)
                        * (0.5 if w.ndim == 1 else 1 / np.sqrt(w.shape[0]))
                    ).astype("float32")
                    for w in layer.get_weights()
                ]
            )
    return model
