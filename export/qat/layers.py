"""The tf_keras side of QAT: the LSTM twin, its quantizers and QuantizeConfig.

tensorflow-model-optimization (tfmot) 0.8.1 only speaks tf_keras (Keras 2), so
quantization-aware training runs on a tf_keras twin of `keras_lstm.LSTMCell`.
The twin computes its step with `keras_lstm.recurrence.project_inputs` and
`keras_lstm.recurrence.lstm_step`: the gate math is not copied here.

Importing this module imports tfmot and tf_keras. `keras_lstm.export.qat`
(`translate._layers()`) imports it lazily, only when QAT is asked for;
nothing else should import it.
Before tfmot runs, `tf.keras` is resolved to Keras 3 and afterwards
`TF_USE_LEGACY_KERAS` (which tfmot sets to "1" at import time) is restored,
so Keras 3 stays in charge of the process.

What `LSTMQuantizeConfig` models of TFLite's integer LSTM (8x8_16, see
`operator_property.cc` and `quantization_utils.cc` in TensorFlow Lite):

- `kernel` and `recurrent_kernel`: int8, symmetric, narrow range
  ([-127, 127]), one scale `max |block| / 127` per gate block: TFLite stores
  `W_i, W_f, W_c, W_o` (and `U_*`) as eight int8 per-tensor tensors
  (six under CIFG, which has no input gate).
- layer input: int8. It is the previous layer's quantized output (or the
  model input's `QuantizeLayer`), as tfmot does for every layer.
- hidden state `h`: int8, asymmetric, one min/max range (as calibration
  measures it) for the output sequence and for `h_{t-1}` fed back at the
  next step: TFLite gives the hidden-state input and the output one scale.
  It is fake-quantized at every step, so the layer's output is already int8
  and no separate output quantizer is added.
- cell state `c`: int16, symmetric, power-of-two scale `2^p / 32768` with
  `p = max(0, ceil(log2(max |c|)))` (TFLite's `GetPowerOfTwoScale`), from a
  running maximum of `|c|`, like the converter's min/max calibration.
- LSTM variants (docs/variants.md): `projection_kernel` int8 symmetric
  narrow range, one scale; `o ⊙ tanh(c)` int8 asymmetric with its own
  min/max range before it is projected (the op's fifth intermediate, from
  which the integer kernel projects), `h` after the projection (and its
  clip) as above.

Not modeled: the gate pre-activations and gate outputs, which TFLite keeps in
int16 fixed point (Q3.12 in, Q0.15 out; errors near 1e-4, far below the
int8 step of `h`; under layer norm also the int16 sums before the
normalisation), the int32 biases (gate and projection), and the int16
peephole and layer-norm coefficients (steps of `max |w| / 32767`, 256
times finer than the int8 weights'). `h_t` is computed from `c_t` before its
int16 rounding (one int16 step, < 1e-4, apart).
"""

import math
import os

import tensorflow as tf

# Resolve tf.keras's lazy loader now, to Keras 3: tfmot sets
# TF_USE_LEGACY_KERAS=1 and would make a later first use pick tf_keras.
tf.keras.__name__  # noqa: B018
_LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS")

import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras  # noqa: E402

if _LEGACY_KERAS is None:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
else:
    os.environ["TF_USE_LEGACY_KERAS"] = _LEGACY_KERAS

import keras_lstm.layers  # noqa: E402
from keras_lstm import recurrence  # noqa: E402
from keras_lstm.export import _compat  # noqa: E402

_PACKAGE = "keras_lstm_qat"
_quantizers = tfmot.quantization.keras.quantizers


# tf_keras keeps the cell's dropout mixin and random-layer base private.
_DropoutRNNCellMixin = _compat.tf_keras_lstm_cell_base("DropoutRNNCellMixin")
_BaseRandomLayer = _compat.tf_keras_lstm_cell_base("BaseRandomLayer")


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class TwinLSTMCell(_DropoutRNNCellMixin, _BaseRandomLayer):
    """tf_keras twin of `keras_lstm.LSTMCell`, for tfmot.

    Same weights (`kernel`, `recurrent_kernel`, `bias`, in Keras's layout,
    and a variant's `peephole_kernel`, `layer_norm_scale`,
    `projection_kernel`, `projection_bias`, in the cell's order and
    shapes) and the same step, through `keras_lstm.recurrence`. Three extra
    hooks, `cell_state_quantize`, `hidden_state_quantize` and, under a
    projection, `projection_input_quantize`, are identities
    (`tf_keras.activations.linear`) until a `QuantizeWrapper` with
    `LSTMQuantizeConfig` swaps in fake-quantizers. `call` reads the weights,
    the activations and the hooks at every step, since tfmot replaces them
    with `setattr`.

    Args:
        units: Positive integer, dimensionality of the cell state.
        activation: Activation for the candidate and for `tanh(c_t)`.
            Default: `"tanh"`.
        recurrent_activation: Activation for the three gates.
            Default: `"sigmoid"`.
        use_bias: Boolean, whether the cell has a bias. Default: `True`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        dropout: Float in [0, 1), input dropout with one mask per sequence
            (per gate once `recurrent_dropout` is on). Default: `0.0`.
        recurrent_dropout: Float in [0, 1), dropout on `h_{t-1}`, one mask
            per gate and sequence. Default: `0.0`.
        seed: Random seed for dropout. Default: `None`.
        use_peepholes: Boolean, as `keras_lstm.LSTMCell`. Default: `False`.
        coupled_input_forget: Boolean (CIFG). Default: `False`.
        use_layer_norm: Boolean. Default: `False`.
        projection_units: `None` or a positive integer. Default: `None`.
        use_projection_bias: Boolean (needs `projection_units`).
            Default: `False`.
        cell_clip: `None` or a positive float. Default: `None`.
        projection_clip: `None` or a positive float (needs
            `projection_units`). Default: `None`.

    Weights are created with zeros: the twin always receives the weights of
    a trained Keras 3 model (`keras_lstm.export.quantize_model`).

    Call arguments:
        inputs: `(batch, features)`.
        states: `[h_{t-1}, c_{t-1}]`, `(batch, h_dim)` and `(batch, units)`;
            `h_dim` is `projection_units`, or `units` without a projection.
        training: Python boolean or boolean tensor.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        *,
        use_peepholes=False,
        coupled_input_forget=False,
        use_layer_norm=False,
        projection_units=None,
        use_projection_bias=False,
        cell_clip=None,
        projection_clip=None,
        **kwargs,
    ):
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(
                "Received an invalid value for argument `units`, expected a "
                f"positive integer, got {units!r}."
            )
        for name, rate in (
            ("dropout", dropout),
            ("recurrent_dropout", recurrent_dropout),
        ):
            if not 0.0 <= rate < 1.0:
                raise ValueError(
                    f"Received an invalid value for argument `{name}`, "
                    f"expected a float in [0, 1), got {rate}."
                )
        # The Keras 3 cell's own checks, so that both accept the same.
        variant = keras_lstm.layers._check_variant(
            use_peepholes,
            coupled_input_forget,
            use_layer_norm,
            projection_units,
            use_projection_bias,
            cell_clip,
            projection_clip,
        )
        super().__init__(seed=seed, **kwargs)
        self.units = units
        for name, value in variant.items():
            setattr(self, name, value)
        self.activation = tf_keras.activations.get(activation)
        self.recurrent_activation = tf_keras.activations.get(
            recurrent_activation
        )
        self.use_bias = use_bias
        self.kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = tf_keras.regularizers.get(
            recurrent_regularizer
        )
        self.bias_regularizer = tf_keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = tf_keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = tf_keras.constraints.get(
            recurrent_constraint
        )
        self.bias_constraint = tf_keras.constraints.get(bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.cell_state_quantize = tf_keras.activations.linear
        self.hidden_state_quantize = tf_keras.activations.linear
        self.projection_input_quantize = tf_keras.activations.linear
        hidden = self.projection_units or units
        self.state_size = [hidden, units]
        self.output_size = hidden

    @property
    def gate_count(self):
        """G, the gate blocks in the kernels: 4, or 3 under CIFG."""
        return recurrence.gate_count(self)

    @property
    def is_variant(self):
        """Whether any variant argument differs from the plain LSTM's."""
        return keras_lstm.layers.is_variant(self)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        gates = self.gate_count
        self.kernel = self.add_weight(
            shape=(input_dim, gates * self.units),
            name="kernel",
            initializer="zeros",
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.state_size[0], gates * self.units),
            name="recurrent_kernel",
            initializer="zeros",
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(gates * self.units,),
                name="bias",
                initializer="zeros",
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        # The variant's weights, in keras_lstm.LSTMCell's order and shapes
        # (docs/variants.md), so that weights copy across by position.
        shapes = {
            "peephole_kernel": (gates - 1, self.units)
            if self.use_peepholes
            else None,
            "layer_norm_scale": (gates, self.units)
            if self.use_layer_norm
            else None,
            "projection_kernel": (self.units, self.projection_units)
            if self.projection_units
            else None,
            "projection_bias": (self.projection_units,)
            if self.use_projection_bias
            else None,
        }
        for name, shape in shapes.items():
            weight = None
            if shape is not None:
                weight = self.add_weight(
                    shape=shape, name=name, initializer="zeros"
                )
            setattr(self, name, weight)
        self.built = True

    def _variant(self):
        """The live variant weights as an `LSTMVariant`, or `None`."""
        if not self.is_variant:
            return None
        return recurrence.LSTMVariant(
            coupled_input_forget=self.coupled_input_forget,
            peephole_kernel=self.peephole_kernel,
            layer_norm_scale=self.layer_norm_scale,
            projection_kernel=self.projection_kernel,
            projection_bias=self.projection_bias,
            cell_clip=self.cell_clip,
            projection_clip=self.projection_clip,
        )

    def call(self, inputs, states, training=None):
        h_prev, c_prev = states[0], states[1]
        gates = self.gate_count
        # Same dropout layout as keras_lstm.LSTMCell: one input mask for all
        # gates, or one per gate once recurrent dropout is on.
        input_mask = self.get_dropout_mask_for_cell(
            inputs, training, count=gates if self.recurrent_dropout > 0 else 1
        )
        recurrent_masks = self.get_recurrent_dropout_mask_for_cell(
            h_prev, training, count=gates
        )
        variant = self._variant()
        projected, bias = recurrence.project_inputs_with_dropout(
            inputs,
            self.kernel,
            self.bias if variant is None else None,
            input_mask,
        )
        if variant is not None:
            # As keras_lstm.LSTMCell: lstm_step adds the bias where the
            # variant needs it (after layer norm).
            bias = self.bias
        step = recurrence.lstm_step(
            projected,
            h_prev,
            c_prev,
            self.recurrent_kernel,
            self.activation,
            self.recurrent_activation,
            bias=bias,
            recurrent_projection=recurrence.project_recurrent_with_dropout(
                h_prev, self.recurrent_kernel, recurrent_masks
            ),
            variant=variant,
            before_projection=self.projection_input_quantize,
        )
        c = self.cell_state_quantize(step.c)
        h = self.hidden_state_quantize(step.h)
        return h, [h, c]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": tf_keras.activations.serialize(self.activation),
            "recurrent_activation": tf_keras.activations.serialize(
                self.recurrent_activation
            ),
            "use_bias": self.use_bias,
            "kernel_regularizer": tf_keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "recurrent_regularizer": tf_keras.regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": tf_keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "kernel_constraint": tf_keras.constraints.serialize(
                self.kernel_constraint
            ),
            "recurrent_constraint": tf_keras.constraints.serialize(
                self.recurrent_constraint
            ),
            "bias_constraint": tf_keras.constraints.serialize(
                self.bias_constraint
            ),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            **{
                name: getattr(self, name)
                for name in keras_lstm.layers.VARIANT_DEFAULTS
            },
        }
        return {**super().get_config(), **config}


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class HiddenStateQuantizer(_quantizers.AllValuesQuantizer):
    """int8 asymmetric fake-quant of `h`, with the range calibration gives it.

    The range is the running min and max of `h` (0 included), what the
    converter's min/max calibration measures. An EMA range (tfmot's
    `MovingAverageQuantizer`) follows the extremes of each batch instead,
    which for Weather's LSTM(32) settled at [-0.60, 0.77] while the file's
    calibrated range was [-0.92, 0.97]: QAT fine-tuned against a clipping
    of `h` that the file does not do, and its int8 file lost twice what
    PTQ's did.

    Under a projection the same grid serves `o ⊙ tanh(c)` before it is
    projected (`tensor="projection_input"`), which TFLite's integer kernel
    rounds to int8 with a range of its own (the op's fifth intermediate).

    Args:
        prefix: Name prefix of the range variables, unique within the layer
            (a Bidirectional layer has one quantizer per direction).
        tensor: Which tensor it quantizes, the stem of its range variables'
            names: `"hidden_state"` or `"projection_input"`.
            Default: `"hidden_state"`.
    """

    def __init__(self, prefix="", tensor="hidden_state", **kwargs):
        kwargs = {
            "num_bits": 8,
            "per_axis": False,
            "symmetric": False,
            "narrow_range": False,
            **kwargs,
        }
        super().__init__(**kwargs)
        self.prefix = prefix
        self.tensor = tensor

    def build(self, tensor_shape, name, layer):
        # Empty until the first training batch, as tfmot's input
        # QuantizeLayer: fine-tune (or run one epoch at learning rate 0)
        # before predicting with the QAT model.
        name = f"{self.prefix}{self.tensor}"
        return {
            "min_var": layer.add_weight(
                f"{name}_min",
                initializer=tf_keras.initializers.Constant(0.0),
                trainable=False,
            ),
            "max_var": layer.add_weight(
                f"{name}_max",
                initializer=tf_keras.initializers.Constant(0.0),
                trainable=False,
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "prefix": self.prefix,
            "tensor": self.tensor,
        }

    def __eq__(self, other):
        return (
            super().__eq__(other)
            and self.prefix == other.prefix
            and self.tensor == getattr(other, "tensor", None)
        )

    def __hash__(self):
        return hash((type(self), self.prefix, self.tensor, self.num_bits))


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class CellStateQuantizer(_quantizers.Quantizer):
    """int16 symmetric fake-quant of `c` with TFLite's power-of-two scale.

    Keeps the running maximum of `|c|` seen in training (`max_abs`), like the
    converter's min/max calibration. The scale is `2^p / 32768` with `p` the
    smallest integer in [0, 10] such that `2^p >= max_abs`
    (`GetPowerOfTwoScale` in TFLite's quantization_utils.cc), and values
    are clamped to `[-32768, 32767]` steps.

    Args:
        prefix: Name prefix of the range variable, unique within the layer.
    """

    BITS = 16
    MAX_POWER = 10

    def __init__(self, prefix=""):
        self.prefix = prefix

    def build(self, tensor_shape, name, layer):
        max_abs = layer.add_weight(
            f"{self.prefix}cell_state_max_abs",
            shape=(),
            initializer=tf_keras.initializers.Constant(1.0),
            trainable=False,
        )
        return {"max_abs": max_abs}

    @classmethod
    def scale(cls, max_abs):
        """The int16 scale TFLite gives a cell state whose range is max_abs."""
        power = tf.math.ceil(tf.math.log(max_abs) / math.log(2.0))
        power = tf.clip_by_value(power, 0.0, float(cls.MAX_POWER))
        return tf.pow(2.0, power) / 2.0 ** (cls.BITS - 1)

    def __call__(self, inputs, training, weights, **kwargs):
        max_abs = weights["max_abs"]
        if training:
            batch_max = tf.reduce_max(tf.abs(inputs))
            max_abs = max_abs.assign(tf.maximum(max_abs, batch_max))
        scale = self.scale(max_abs)
        levels = 2.0 ** (self.BITS - 1)
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs,
            min=-levels * scale,
            max=(levels - 1.0) * scale,
            num_bits=self.BITS,
            narrow_range=False,
        )

    def get_config(self):
        return {"prefix": self.prefix}

    def __eq__(self, other):
        return isinstance(other, CellStateQuantizer) and (
            self.prefix == other.prefix
        )

    def __hash__(self):
        return hash((type(self), self.prefix))


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class GateWeightQuantizer(_quantizers.Quantizer):
    """int8 symmetric narrow-range fake-quant, one scale per gate block.

    TFLite stores `kernel` as four tensors `W_i, W_f, W_c, W_o` (and
    `recurrent_kernel` as `U_i, ...`), each int8 per-tensor with scale
    `max |block| / 127` and zero point 0: the split of the last axis into
    `gates` blocks, quantized each on its own (three under CIFG, which
    stores no input gate; one for the projection kernel, a single int8
    tensor). The range comes from the current weights (tfmot's
    `LastValueQuantizer` keeps the last training batch's instead), so
    inference sees the grid the converter will use.

    Args:
        gates: How many blocks the last axis holds. Default: `4`.
    """

    def __init__(self, gates=4):
        self.gates = gates

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        blocks = []
        for block in tf.split(inputs, self.gates, axis=-1):
            # The range is measured, not learned: no gradient through it.
            limit = tf.stop_gradient(tf.reduce_max(tf.abs(block)))
            limit = tf.maximum(limit, 1e-12)
            blocks.append(
                tf.quantization.fake_quant_with_min_max_vars(
                    block, -limit, limit, num_bits=8, narrow_range=True
                )
            )
        return tf.concat(blocks, axis=-1)

    def get_config(self):
        return {"gates": self.gates}

    def __eq__(self, other):
        return isinstance(other, GateWeightQuantizer) and (
            self.gates == other.gates
        )

    def __hash__(self):
        return hash((type(self), self.gates))


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class PassThroughQuantizer(_quantizers.Quantizer):
    """Leaves a weight as it is (tfmot's `NoQuantizer` is not public)."""

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        return inputs

    def get_config(self):
        return {}

    def __eq__(self, other):
        return isinstance(other, PassThroughQuantizer)

    def __hash__(self):
        return hash(type(self))


def lstm_cells(layer):
    """The `TwinLSTMCell`s of an RNN or Bidirectional layer, with prefixes.

    Returns:
        A list of `(prefix, cell)`; empty if `layer` holds no twin cell.
    """
    if isinstance(layer, tf_keras.layers.Bidirectional):
        return [
            ("forward_", layer.forward_layer.cell),
            ("backward_", layer.backward_layer.cell),
        ]
    if isinstance(layer, tf_keras.layers.RNN) and isinstance(
        layer.cell, TwinLSTMCell
    ):
        return [("", layer.cell)]
    return []


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class LSTMQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """QuantizeConfig of `RNN(TwinLSTMCell)` and `Bidirectional` of it.

    It models TFLite's integer LSTM: int8 symmetric narrow-range `kernel`
    and `recurrent_kernel` with one scale per gate block, int8 `h` (per
    step, so the output too) and int16 power-of-two `c`. For the variants,
    as TFLite's integer LSTM stores them (`operator_property.cc`, LSTM):

    - `projection_kernel`: int8 symmetric narrow range, one scale, like
      the gate kernels; and `o ⊙ tanh(c)` rounded to int8 before it is
      projected (the op's fifth intermediate), with its own min/max range;
    - `peephole_kernel` (int16 symmetric), `layer_norm_scale` (int16
      symmetric) and `projection_bias` (int32): left in float, like the
      int32 gate bias; their steps are at least 256 times finer than the
      int8 grids around them.

    The module docstring says what is not modeled. Use it like tfmot's own
    configs:

    >>> with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
    ...     annotated = tfmot.quantization.keras.quantize_annotate_layer(
    ...         rnn, LSTMQuantizeConfig())
    """

    # Every weight of the cell, in its order. The int8 ones are
    # fake-quantized; the rest pass through, but are listed all the same
    # (see get_weights_and_quantizers).
    WEIGHT_ATTRIBUTES = (
        "kernel",
        "recurrent_kernel",
        "bias",
        "peephole_kernel",
        "layer_norm_scale",
        "projection_kernel",
        "projection_bias",
    )
    STATE_ATTRIBUTES = (
        "cell_state_quantize",
        "hidden_state_quantize",
        "projection_input_quantize",
    )

    def _cells(self, layer):
        cells = lstm_cells(layer)
        if not cells:
            raise ValueError(
                "LSTMQuantizeConfig quantizes tf_keras RNN or Bidirectional "
                "layers around keras_lstm's TwinLSTMCell; got "
                f"{type(layer).__name__} {layer.name!r}."
            )
        return cells

    def _weight_slots(self, layer):
        return [
            (cell, attribute)
            for _, cell in self._cells(layer)
            for attribute in self.WEIGHT_ATTRIBUTES
            # getattr's default: tf_keras's own LSTMCell (a subclass's
            # experiment, tests/test_qat_layers.py) has no variant weights.
            if getattr(cell, attribute, None) is not None
        ]

    @staticmethod
    def _weight_quantizer(cell, attribute):
        if attribute in ("kernel", "recurrent_kernel"):
            return GateWeightQuantizer(getattr(cell, "gate_count", 4))
        if attribute == "projection_kernel":
            return GateWeightQuantizer(1)
        return PassThroughQuantizer()

    def get_weights_and_quantizers(self, layer):
        # The biases, peepholes and layer-norm scales pass through (see
        # the class docstring). Listing them keeps the wrapper's weights in
        # the layer's order however tfmot builds the wrapper; otherwise a
        # reloaded Bidirectional orders them differently and its saved
        # weights fail to load.
        return [
            (
                getattr(cell, attribute),
                self._weight_quantizer(cell, attribute),
            )
            for cell, attribute in self._weight_slots(layer)
        ]

    def _state_slots(self, layer):
        return [
            (prefix, cell, attribute)
            for prefix, cell in self._cells(layer)
            for attribute in self.STATE_ATTRIBUTES
            if attribute != "projection_input_quantize"
            or getattr(cell, "projection_units", None)
        ]

    def get_activations_and_quantizers(self, layer):
        quantizers = {
            "cell_state_quantize": CellStateQuantizer,
            "hidden_state_quantize": HiddenStateQuantizer,
            "projection_input_quantize": lambda prefix: HiddenStateQuantizer(
                prefix, tensor="projection_input"
            ),
        }
        return [
            (getattr(cell, attribute), quantizers[attribute](prefix))
            for prefix, cell, attribute in self._state_slots(layer)
        ]

    def _set(self, layer, slots, values, what):
        if len(slots) != len(values):
            raise ValueError(
                f"`set_quantize_{what}` called on layer {layer.name} with "
                f"{len(values)} values, but it expects {len(slots)}."
            )
        for (cell, attribute), value in zip(slots, values, strict=True):
            setattr(cell, attribute, value)

    def set_quantize_weights(self, layer, quantize_weights):
        self._set(layer, self._weight_slots(layer), quantize_weights, "weights")

    def set_quantize_activations(self, layer, quantize_activations):
        slots = [(cell, a) for _, cell, a in self._state_slots(layer)]
        self._set(layer, slots, quantize_activations, "activations")

    def get_output_quantizers(self, layer):
        # The output is the sequence of h, already fake-quantized per step.
        return []

    def get_config(self):
        return {}


# ---------------------------------------------------------------------------
# The layers around the LSTM: what the converter makes of each, modeled.


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class TwinNormalization(tf_keras.layers.Normalization):
    """tf_keras `Normalization` that reads its adapted statistics live.

    tf_keras (like Keras 3) computes `mean` and `variance` tensors from its
    variables once, in `build`/`finalize_state`. tfmot's `quantize_apply`
    clones the model and sets the weights without `finalize_state`, so a
    plain `Normalization` would normalize with zeros and ones. This one
    reads `adapt_mean` and `adapt_variance` at every call (a layer given
    constant `mean` / `variance` behaves as tf_keras's own).
    """

    def call(self, inputs):
        if self.input_mean is not None or self.invert:
            return super().call(inputs)
        inputs = tf.cast(inputs, self.compute_dtype)
        shape = _compat.tf_keras_normalization_broadcast_shape(self)
        mean = tf.reshape(self.adapt_mean, shape)
        variance = tf.reshape(self.adapt_variance, shape)
        return (inputs - tf.cast(mean, self.compute_dtype)) / tf.maximum(
            tf.sqrt(tf.cast(variance, self.compute_dtype)),
            tf_keras.backend.epsilon(),
        )


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class ChannelWeightQuantizer(_quantizers.Quantizer):
    """int8 symmetric narrow-range fake-quant, one scale per output channel.

    The converter's grid for CONV_2D and FULLY_CONNECTED weights (measured,
    TF 2.21): scale `max |w[..., k]| / 127` for output channel `k` (the
    last axis), zero point 0. Like `GateWeightQuantizer`, the range comes
    from the current weights; tfmot's per-axis `LastValueQuantizer` handles
    only 2-D and 4-D kernels (not Conv1D's 3-D one) and keeps the last
    training batch's range.
    """

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        channels = inputs.shape[-1]
        flat = tf.reshape(inputs, (-1, channels))
        # The range is measured, not learned: no gradient through it.
        limit = tf.stop_gradient(tf.reduce_max(tf.abs(flat), axis=0))
        limit = tf.maximum(limit, 1e-12)
        quantized = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            flat, -limit, limit, num_bits=8, narrow_range=True
        )
        return tf.reshape(quantized, tf.shape(inputs))

    def get_config(self):
        return {}

    def __eq__(self, other):
        return isinstance(other, ChannelWeightQuantizer)

    def __hash__(self):
        return hash(type(self))


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class TableQuantizer(_quantizers.Quantizer):
    """int8 asymmetric per-tensor fake-quant of a lookup table.

    The converter's grid for GATHER's table (measured, TF 2.21): int8 with
    scale `(max - min) / 255` over the whole table (0 included) and a zero
    point; GATHER's output keeps it. The range is the current table's.
    """

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        low = tf.stop_gradient(tf.minimum(tf.reduce_min(inputs), 0.0))
        high = tf.stop_gradient(tf.maximum(tf.reduce_max(inputs), 0.0))
        high = tf.maximum(high, low + 1e-12)
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, low, high, num_bits=8, narrow_range=False
        )

    def get_config(self):
        return {}

    def __eq__(self, other):
        return isinstance(other, TableQuantizer)

    def __hash__(self):
        return hash(type(self))


def _activations():
    # int8 asymmetric, with the range the converter's calibration will give
    # the tensor: the running min and max of the values seen (0 included),
    # as tfmot's input QuantizeLayer does. tfmot's MovingAverageQuantizer
    # starts at [-6, 6] and moves 0.1% a step: after a fine-tune of a few
    # hundred steps it still simulates a grid several times coarser than
    # the file's, and none of the file's clipping (a regression's int8
    # output clipped beyond the calibrated range is what cost Weather).
    return _quantizers.AllValuesQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False
    )


_WEIGHT_GRIDS = {"per_channel": ChannelWeightQuantizer, "table": TableQuantizer}


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class LayerQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """tfmot's `Default8BitQuantizeConfig`, with the converter's grids.

    Weights on the converter's grid (`weight_grid`); activations and outputs
    int8 asymmetric with the running min/max range, which is what the
    converter's calibration measures (tfmot's EMA range, which starts at
    [-6, 6], would not reach it in a short fine-tune).

    Args:
        weight_attrs: Names of the weight attributes to fake-quantize.
        activation_attrs: Names of the activation attributes to wrap
            (tfmot's `QuantizeAwareActivation`, as for `Dense`).
        quantize_output: Whether to fake-quantize the layer's output (int8
            asymmetric, the min/max range seen in training, as calibrated).
        weight_grid: `"per_channel"` (int8 symmetric narrow range, one scale
            per output channel: CONV_2D, FULLY_CONNECTED) or `"table"`
            (int8 asymmetric per tensor: GATHER). Default: `"per_channel"`.
    """

    def __init__(
        self,
        weight_attrs=(),
        activation_attrs=(),
        quantize_output=False,
        weight_grid="per_channel",
    ):
        if weight_grid not in _WEIGHT_GRIDS:
            raise ValueError(
                "Received an invalid value for argument `weight_grid`, "
                f"expected one of {sorted(_WEIGHT_GRIDS)}, got {weight_grid!r}."
            )
        self.weight_attrs = list(weight_attrs)
        self.activation_attrs = list(activation_attrs)
        self.quantize_output = bool(quantize_output)
        self.weight_grid = weight_grid

    def _check(self, layer, attrs, values, what):
        if len(attrs) != len(values):
            raise ValueError(
                f"`set_quantize_{what}` called on layer {layer.name} with "
                f"{len(values)} values, but it expects {len(attrs)}."
            )

    def get_weights_and_quantizers(self, layer):
        grid = _WEIGHT_GRIDS[self.weight_grid]
        return [(getattr(layer, a), grid()) for a in self.weight_attrs]

    def get_activations_and_quantizers(self, layer):
        return [
            (getattr(layer, a), _activations()) for a in self.activation_attrs
        ]

    def set_quantize_weights(self, layer, quantize_weights):
        self._check(layer, self.weight_attrs, quantize_weights, "weights")
        for attr, weight in zip(
            self.weight_attrs, quantize_weights, strict=True
        ):
            setattr(layer, attr, weight)

    def set_quantize_activations(self, layer, quantize_activations):
        self._check(
            layer, self.activation_attrs, quantize_activations, "activations"
        )
        for attr, activation in zip(
            self.activation_attrs, quantize_activations, strict=True
        ):
            setattr(layer, attr, activation)

    def get_output_quantizers(self, layer):
        return [_activations()] if self.quantize_output else []

    def get_config(self):
        return {
            "weight_attrs": self.weight_attrs,
            "activation_attrs": self.activation_attrs,
            "quantize_output": self.quantize_output,
            "weight_grid": self.weight_grid,
        }

    def __eq__(self, other):
        return (
            isinstance(other, LayerQuantizeConfig)
            and self.get_config() == other.get_config()
        )

    def __hash__(self):
        return hash(type(self))


@tf_keras.saving.register_keras_serializable(package=_PACKAGE)
class WrappedQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Quantizes the layer inside a `TimeDistributed` as the layer alone.

    The converter applies the inner layer to all steps at once (one
    FULLY_CONNECTED over `(batch * time, features)`), so the inner layer's
    config holds for the wrapper unchanged.

    Args:
        config: The inner layer's QuantizeConfig.
    """

    def __init__(self, config):
        if isinstance(config, dict):
            config = tf_keras.utils.deserialize_keras_object(
                config, custom_objects=CUSTOM_OBJECTS
            )
        self.config = config

    def get_weights_and_quantizers(self, layer):
        return self.config.get_weights_and_quantizers(layer.layer)

    def get_activations_and_quantizers(self, layer):
        return self.config.get_activations_and_quantizers(layer.layer)

    def set_quantize_weights(self, layer, quantize_weights):
        self.config.set_quantize_weights(layer.layer, quantize_weights)

    def set_quantize_activations(self, layer, quantize_activations):
        self.config.set_quantize_activations(layer.layer, quantize_activations)

    def get_output_quantizers(self, layer):
        return self.config.get_output_quantizers(layer.layer)

    def get_config(self):
        return {"config": tf_keras.utils.serialize_keras_object(self.config)}

    def __eq__(self, other):
        return isinstance(other, WrappedQuantizeConfig) and (
            self.config == other.config
        )

    def __hash__(self):
        return hash(type(self))


class QuantizeRegistry(tfmot.quantization.keras.QuantizeRegistry):
    """tfmot's default 8-bit registry, plus the layers LSTM models use.

    Read like tfmot's `default_8bit_quantize_registry.py`: one entry per
    layer class, saying what the TFLite converter (TF 2.21) makes of it.
    Entries here take precedence over tfmot's; layers in neither are
    refused by `quantize_model`.
    """

    _LAYER_QUANTIZE_CONFIGS = {
        # EXPAND_DIMS + CONV_2D + SQUEEZE (RESHAPEs): int8 per-channel
        # kernel, int32 bias, the (fused) activation's output int8. tfmot
        # leaves Conv1D out; its Conv2D entry is the same.
        tf_keras.layers.Conv1D: LayerQuantizeConfig(["kernel"], ["activation"]),
        # FULLY_CONNECTED: the converter quantizes the kernel per output
        # channel (tfmot's entry simulates one scale per tensor).
        tf_keras.layers.Dense: LayerQuantizeConfig(["kernel"], ["activation"]),
        # MAX_POOL_2D / AVERAGE_POOL_2D: TFLite's int8 kernels require the
        # output's scale to equal the input's, so the output is not
        # requantized (tfmot requantizes AveragePooling1D's output).
        tf_keras.layers.MaxPooling1D: LayerQuantizeConfig(),
        tf_keras.layers.AveragePooling1D: LayerQuantizeConfig(),
        # TILE: copies values, keeps the input's scale.
        tf_keras.layers.RepeatVector: LayerQuantizeConfig(),
        # Folded by the converter into SUB and MUL with constant operands,
        # int8 in and out: the input is quantized (QuantizeLayer or the
        # previous layer) and so is the normalized output.
        TwinNormalization: LayerQuantizeConfig(quantize_output=True),
        # GATHER from an int8 table; the output keeps the table's grid.
        tf_keras.layers.Embedding: LayerQuantizeConfig(
            ["embeddings"], weight_grid="table"
        ),
    }

    def __init__(self):
        self._default = (
            tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
        )

    def _config(self, layer):
        if lstm_cells(layer):
            return LSTMQuantizeConfig()
        if isinstance(layer, tf_keras.layers.TimeDistributed):
            inner = self._config(layer.layer)
            return None if inner is None else WrappedQuantizeConfig(inner)
        config = self._LAYER_QUANTIZE_CONFIGS.get(type(layer))
        if config is not None:
            return LayerQuantizeConfig.from_config(config.get_config())
        if self._default.supports(layer):
            return self._default.get_quantize_config(layer)
        return None

    def supports(self, layer):
        """Whether `layer` (a tf_keras layer) has a QuantizeConfig."""
        return self._config(layer) is not None

    def get_quantize_config(self, layer):
        """The QuantizeConfig for tf_keras `layer`.

        Raises:
            ValueError: if `layer` is not supported (see `supports`).
        """
        config = self._config(layer)
        if config is None:
            raise ValueError(
                f"No QuantizeConfig for {type(layer).__name__} "
                f"{layer.name!r}: neither keras_lstm's registry nor tfmot's "
                "default 8-bit registry has one."
            )
        return config


_transforms = _compat.tfmot_default_8bit_transforms()


class _FloatInputLayerQuantize(_transforms.InputLayerQuantize):
    """tfmot's input QuantizeLayer, for float inputs only.

    An integer input (the token ids of an `Embedding`) reaches the file as
    int32, unquantized; tfmot's fake-quant refuses int32 tensors.
    """

    def pattern(self):
        graph = tfmot.quantization.keras.graph_transformations
        return graph.transforms.LayerPattern("InputLayer", {"dtype": "float.*"})


class QuantizeLayoutTransform(
    tfmot.quantization.keras.default_8bit.Default8BitQuantizeLayoutTransform
):
    """tfmot's default 8-bit layout transforms, float inputs quantized only.

    tfmot builds its list inside `apply`; it is repeated here (tfmot 0.8.1's
    `default_8bit_quantize_layout_transform.py`) with `InputLayerQuantize`
    restricted to float inputs.
    """

    def apply(self, model, layer_quantize_map):
        transformer = tfmot.quantization.keras.graph_transformations
        transforms = [
            _FloatInputLayerQuantize(),
            _transforms.SeparableConv1DQuantize(),
            _transforms.SeparableConvQuantize(),
            _transforms.Conv2DReshapeBatchNormReLUQuantize(),
            _transforms.Conv2DReshapeBatchNormActivationQuantize(),
            _transforms.Conv2DBatchNormReLUQuantize(),
            _transforms.Conv2DBatchNormActivationQuantize(),
            _transforms.Conv2DReshapeBatchNormQuantize(),
            _transforms.Conv2DBatchNormQuantize(),
            _transforms.ConcatTransform6Inputs(),
            _transforms.ConcatTransform5Inputs(),
            _transforms.ConcatTransform4Inputs(),
            _transforms.ConcatTransform3Inputs(),
            _transforms.ConcatTransform(),
            _transforms.DenseBatchNormQuantize(),
            _transforms.DenseBatchNormReLUQuantize(),
            _transforms.DenseBatchNormActivationQuantize(),
            _transforms.LayerReLUQuantize(),
            _transforms.LayerReluActivationQuantize(),
        ]
        return transformer.model_transformer.ModelTransformer(
            model, transforms, set(layer_quantize_map), layer_quantize_map
        ).transform()


class QuantizeScheme(tfmot.quantization.keras.QuantizeScheme):
    """tfmot's default 8-bit scheme with keras_lstm's registry and layout."""

    def get_layout_transformer(self):
        return QuantizeLayoutTransform()

    def get_quantize_registry(self):
        return QuantizeRegistry()


# What `quantize_scope` / `tf_keras.models.load_model` need to rebuild a QAT
# model that holds the twin.
CUSTOM_OBJECTS = {
    "TwinLSTMCell": TwinLSTMCell,
    "LSTMQuantizeConfig": LSTMQuantizeConfig,
    "CellStateQuantizer": CellStateQuantizer,
    "GateWeightQuantizer": GateWeightQuantizer,
    "PassThroughQuantizer": PassThroughQuantizer,
    "HiddenStateQuantizer": HiddenStateQuantizer,
    "TwinNormalization": TwinNormalization,
    "LayerQuantizeConfig": LayerQuantizeConfig,
    "WrappedQuantizeConfig": WrappedQuantizeConfig,
    "ChannelWeightQuantizer": ChannelWeightQuantizer,
    "TableQuantizer": TableQuantizer,
}
