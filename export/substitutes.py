"""Layers the export clone replaces by equivalents with better TFLite ops.

`lowering.export_model` rebuilds the user's model for export; for the
layers below it builds a substitute that computes the same numbers with
ops every target has. The user's model is not changed. Measured (TF 2.21,
tflite-micro 2026, Vela 5.2, LSTM -> RepeatVector(30) -> LSTM ->
TimeDistributed(Dense), batch 1):

- `RepeatVector(n)` converts to TILE, which TFLite Micro has no kernel
  for. Candidates: CONCATENATION of n copies fails TFLite Micro's prepare
  step beyond 10 inputs (`kMaxInputNum`); BROADCAST_TO runs on TFLite
  Micro but Vela leaves it on the CPU; a reshape to `(batch, 1, features)`
  times a constant `(1, n, 1)` of ones (MUL with broadcasting) runs on
  TFLite Micro and Vela puts every operator on the NPU. Float: `x * 1` is
  exact.
- `TimeDistributed(Dense)` with a static time dimension unrolls into one
  STRIDED_SLICE and one FULLY_CONNECTED per step (Keras loops over a
  static time axis in Python), then PACK. `Dense` applied to the whole
  `(batch, time, features)` tensor computes the same products per step in
  one FULLY_CONNECTED.

`substitute(layer)` returns the replacement, or `None` to clone the layer
as it is.
"""

import keras


class RepeatByBroadcast(keras.layers.Layer):
    """`RepeatVector(n)` as a broadcast multiplication by ones.

    `(batch, features) -> (batch, n, features)`, the same values as
    `keras.layers.RepeatVector(n)`; TFLite writes it as RESHAPE and MUL
    instead of TILE.

    Args:
        n: Repetitions, as `RepeatVector`'s `n`.
        **kwargs: Base layer arguments (`name`, ...).
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def call(self, inputs):
        ones = keras.ops.ones((1, self.n, 1), dtype=inputs.dtype)
        return keras.ops.expand_dims(inputs, 1) * ones

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class DenseOverTime(keras.layers.Dense):
    """`TimeDistributed(Dense)` as `Dense` on `(batch, time, features)`.

    Takes the `mask` and `training` arguments that the model's graph
    recorded for the `TimeDistributed` call, and ignores them as
    `TimeDistributed(Dense)` does for its outputs.
    """

    def call(self, inputs, mask=None, training=None):
        return super().call(inputs)


def substitute(layer):
    """The export clone's replacement for `layer`, or `None` to keep it.

    The replacement takes the same weights (`get_weights()` of `layer`)
    and computes the same outputs.
    """
    if type(layer) is keras.layers.RepeatVector:
        return RepeatByBroadcast(layer.n, name=layer.name)
    if (
        type(layer) is keras.layers.TimeDistributed
        and type(layer.layer) is keras.layers.Dense
    ):
        # Dense acts on the last axis of a tensor of any rank.
        config = layer.layer.get_config()
        config["name"] = layer.name
        return DenseOverTime.from_config(config)
    return None
