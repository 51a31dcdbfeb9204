"""`LSTMCell` and `LSTM`: Keras 3 layers with the four gates written out.

Both are drop-in replacements for `keras.layers.LSTMCell` and
`keras.layers.LSTM` on every Keras backend (TensorFlow, JAX, PyTorch): same
arguments, same weights in the same layout, same numbers. The gate math
lives in `keras_lstm.recurrence`, written in `keras.ops`; backend-specific
fast paths (`tf_sequence`, `torch_sequence`, the backends' cuDNN kernels)
are imported only on their backend, behind `LSTM.inner_loop`.
"""

import contextlib
import contextvars
import math
import numbers
import typing

import keras

from keras_lstm import _compat, recurrence


def _check_units(units):
    if isinstance(units, bool) or not isinstance(units, numbers.Integral):
        raise TypeError(
            "Received an invalid value for argument `units`, expected a "
            f"positive integer, got {units!r} of type {type(units).__name__}."
        )
    if units <= 0:
        raise ValueError(
            "Received an invalid value for argument `units`, expected a "
            f"positive integer, got {units}."
        )
    return int(units)


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"float in [0, 1), got {value!r}."
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"float in [0, 1), got {value}. It is the fraction of units to "
            "drop: use 0 for no dropout."
        )
    return float(value)


def _check_implementation(implementation):
    if isinstance(implementation, bool) or implementation not in (1, 2):
        raise ValueError(
            "Received an invalid value for argument `implementation`, "
            f"expected 1 or 2, got {implementation!r}. 2 (the default) "
            "computes the four gates in one product; 1 in four, as Keras "
            "does once `recurrent_dropout` is on."
        )
    return implementation


def _check_flag(name, value):
    # `is`: 1 == True, but 1 is not a valid value.
    if value is not True and value is not False:
        raise TypeError(
            f"Received an invalid value for argument `{name}`, expected "
            f"True or False, got {value!r}."
        )
    return value


def _check_projection_units(value):
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value <= 0
    ):
        raise ValueError(
            "Received an invalid value for argument `projection_units`, "
            f"expected None (no projection) or a positive integer, got "
            f"{value!r}."
        )
    return int(value)


def _check_clip(name, value):
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected None "
            f"(no clipping) or a positive float, got {value!r}. (TFLite "
            "writes 0 for no clipping; here that is None.)"
        )
    return float(value)


# The variant arguments and their defaults, which give the plain LSTM.
VARIANT_DEFAULTS = {
    "use_peepholes": False,
    "coupled_input_forget": False,
    "use_layer_norm": False,
    "projection_units": None,
    "use_projection_bias": False,
    "cell_clip": None,
    "projection_clip": None,
}


def is_variant(cell):
    """Whether any of `cell`'s variant arguments differs from its default.

    `cell` is an `LSTMCell`, or anything holding the same arguments as
    attributes (the QAT twin in `keras_lstm.export.qat.layers`).
    """
    return any(
        getattr(cell, name) != default
        for name, default in VARIANT_DEFAULTS.items()
    )


def _check_variant(
    use_peepholes,
    coupled_input_forget,
    use_layer_norm,
    projection_units,
    use_projection_bias,
    cell_clip,
    projection_clip,
):
    """The variant arguments, validated, as a dict keyed by argument name."""
    variant = {
        "use_peepholes": _check_flag("use_peepholes", use_peepholes),
        "coupled_input_forget": _check_flag(
            "coupled_input_forget", coupled_input_forget
        ),
        "use_layer_norm": _check_flag("use_layer_norm", use_layer_norm),
        "projection_units": _check_projection_units(projection_units),
        "use_projection_bias": _check_flag(
            "use_projection_bias", use_projection_bias
        ),
        "cell_clip": _check_clip("cell_clip", cell_clip),
        "projection_clip": _check_clip("projection_clip", projection_clip),
    }
    if variant["projection_units"] is None:
        for name in ("use_projection_bias", "projection_clip"):
            if variant[name] not in (None, False):
                raise ValueError(
                    f"Received {name}={variant[name]!r} without a "
                    "projection: it applies to the projected output. Pass "
                    f"projection_units=N as well, or drop {name}."
                )
    return variant


def _variant_summary(cell):
    """The variant arguments that differ from the plain LSTM's, as text."""
    return ", ".join(
        f"{name}={getattr(cell, name)!r}"
        for name, default in VARIANT_DEFAULTS.items()
        if getattr(cell, name) != default
    )


def _as_float(inputs, dtype):
    """Integer or boolean inputs cast to `dtype`, as Keras takes them."""
    if keras.backend.is_float_dtype(
        keras.backend.standardize_dtype(inputs.dtype)
    ):
        return inputs
    return keras.ops.cast(inputs, dtype)


def _get_activation(name, identifier):
    try:
        return keras.activations.get(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: "
            f"{identifier!r} is not a Keras activation. Pass a name such as "
            "'tanh' or 'sigmoid', or a callable."
        ) from error


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTMCell(keras.layers.Layer, _compat.DropoutRNNCell):
    """Long short-term memory cell (Hochreiter & Schmidhuber, 1997).

    One step of the LSTM, with its four gates written out. For an input
    `x_t` and the previous state `(h_{t-1}, c_{t-1})`:

        i_t  = σ(x_t W_i + h_{t-1} U_i + b_i)      input gate
        f_t  = σ(x_t W_f + h_{t-1} U_f + b_f)      forget gate
        c̃_t  = tanh(x_t W_c + h_{t-1} U_c + b_c)   candidate cell state
        o_t  = σ(x_t W_o + h_{t-1} U_o + b_o)      output gate
        c_t  = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        h_t  = o_t ⊙ tanh(c_t)

    σ is `recurrent_activation` and tanh is `activation`. `kernel` holds
    `[W_i, W_f, W_c, W_o]` side by side (shape `(input_dim, 4 * units)`),
    `recurrent_kernel` holds `[U_i, U_f, U_c, U_o]` (shape
    `(units, 4 * units)`) and `bias` holds `[b_i, b_f, b_c, b_o]`: the layout
    of `keras.layers.LSTMCell`, so weights move between the two with
    `get_weights` / `set_weights`.

    The variants that TFLite's LSTM kernel runs are opt-in, alone or
    combined, with TFLite's equations (`keras_lstm.recurrence.lstm_step`,
    docs/variants.md). With `a_g = x_t W_g + h_{t-1} U_g`:

        peepholes   a_i += p_i ⊙ c_{t-1},  a_f += p_f ⊙ c_{t-1},
                    a_o += p_o ⊙ c_t
        layer norm  z_g = γ_g ⊙ (a_g − mean(a_g)) / sqrt(var(a_g) + 1e-8)
                          + b_g
        CIFG        i_t = 1 − f_t
        cell_clip   c_t = clip(c_t, −cell_clip, cell_clip)
        projection  h_t = clip((o_t ⊙ tanh(c_t)) P + p_b, ±projection_clip)

    Their weights, with G = 4 gate blocks (3 under CIFG: f, c̃, o) and
    `h_dim = projection_units or units`: `kernel (input_dim, G * units)`,
    `recurrent_kernel (h_dim, G * units)`, `bias (G * units,)`,
    `peephole_kernel (P, units)` (rows i, f, o; f, o under CIFG;
    zeros at first), `layer_norm_scale (G, units)` (ones at first),
    `projection_kernel (units, projection_units)` (`kernel_initializer`)
    and `projection_bias (projection_units,)` (zeros at first). The
    variants' weights take no regularizer or constraint.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation for the candidate and for `tanh(c_t)`.
            Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation for the three gates.
            Default: `"sigmoid"`. `None` means linear.
        use_bias: Boolean, whether the cell uses a bias vector.
            Default: `True`.
        kernel_initializer: Initializer for `kernel`.
            Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        unit_forget_bias: Boolean. If `True`, add 1 to the forget-gate bias
            at initialization (Jozefowicz et al., 2015). Default: `True`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        dropout: Float in [0, 1). Fraction of the inputs to drop, with one
            mask for the whole sequence. Default: `0.0`.
        recurrent_dropout: Float in [0, 1). Fraction of `h_{t-1}` to drop,
            with one mask per gate for the whole sequence. Default: `0.0`.
        seed: Random seed for dropout. Default: `None`.
        use_peepholes: Keyword only. Boolean, whether the input, forget
            and output gates read the cell state through diagonal
            (peephole) weights. Default: `False`.
        coupled_input_forget: Keyword only. Boolean, CIFG: no input gate
            of its own, `i_t = 1 - f_t`. Default: `False`.
        use_layer_norm: Keyword only. Boolean, whether each gate's
            pre-activation is layer-normalised (TFLite's layer-norm LSTM).
            Default: `False`.
        projection_units: Keyword only. `None`, or a positive integer: the
            size of a linear projection of the output, which is then the
            hidden state fed back. Default: `None`.
        use_projection_bias: Keyword only. Boolean, whether the projection
            has a bias; needs `projection_units`. Default: `False`.
        cell_clip: Keyword only. `None`, or a positive float that bounds
            the cell state. Default: `None`.
        projection_clip: Keyword only. `None`, or a positive float that
            bounds the projected output; needs `projection_units`.
            Default: `None`.
        implementation: Keyword only, 1 or 2, as in Keras. 2 computes the
            gates from one product per step and draws one input-dropout
            mask; 1 computes each gate from its own product, with its own
            masks. Keras, and so this cell, switches to 1 whenever
            `recurrent_dropout > 0`. Default: `2`.

    Call arguments:
        inputs: A 2D tensor `(batch, features)`; integer inputs are cast
            to the compute dtype.
        states: A list `[h_{t-1}, c_{t-1}]`, `h` of shape
            `(batch, projection_units or units)`, `c` of `(batch, units)`.
        training: Python boolean; dropout is applied only when `True`.

    Example:

    >>> cell = keras_lstm.LSTMCell(4)
    >>> rnn = keras.layers.RNN(cell, return_sequences=True)
    >>> rnn(np.zeros((2, 10, 8), "float32")).shape
    (2, 10, 4)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
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
        units = _check_units(units)
        dropout = _check_rate("dropout", dropout)
        recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        implementation = _check_implementation(kwargs.pop("implementation", 2))
        variant = _check_variant(
            use_peepholes,
            coupled_input_forget,
            use_layer_norm,
            projection_units,
            use_projection_bias,
            cell_clip,
            projection_clip,
        )
        super().__init__(**kwargs)
        self.units = units
        self.use_peepholes = variant["use_peepholes"]
        self.coupled_input_forget = variant["coupled_input_forget"]
        self.use_layer_norm = variant["use_layer_norm"]
        self.projection_units = variant["projection_units"]
        self.use_projection_bias = variant["use_projection_bias"]
        self.cell_clip = variant["cell_clip"]
        self.projection_clip = variant["projection_clip"]
        self.activation = _get_activation("activation", activation)
        self.recurrent_activation = _get_activation(
            "recurrent_activation", recurrent_activation
        )
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(
            recurrent_regularizer
        )
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        # Keras switches to `implementation=1` once recurrent dropout is on,
        # and then draws one mask per gate; the same draws and the same
        # per-gate products keep results identical.
        self.implementation = 1 if recurrent_dropout > 0 else implementation
        if self.implementation == 1:
            self.dropout_mask_count = self._gate_count
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        hidden = self.projection_units or self.units
        self.state_size = [hidden, self.units]
        self.output_size = hidden

    @property
    def _gate_count(self):
        """G, the gate blocks in the kernels: 4, or 3 under CIFG."""
        return recurrence.gate_count(self)

    @property
    def _is_variant(self):
        """Whether any variant argument differs from the plain LSTM's."""
        return is_variant(self)

    def _variant(self):
        """The live variant weights as a `recurrence.LSTMVariant`, or `None`.

        Read at every call, never cached: tfmot swaps weights with
        `setattr`.
        """
        if not self._is_variant:
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

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "LSTMCell expects `inputs` of rank 2, (batch, features), got "
                f"shape {tuple(input_shape)}. To run it over a sequence, wrap "
                "it: keras.layers.RNN(keras_lstm.LSTMCell(units))."
            )
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "LSTMCell needs a known feature size (last axis of `inputs`), "
                f"got shape {tuple(input_shape)}."
            )
        gates = self._gate_count
        self.kernel = self.add_weight(
            shape=(input_dim, gates * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.state_size[0], gates * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(gates * self.units,),
                name="bias",
                initializer=self._bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self._build_variant(gates)

    def _build_variant(self, gates):
        self.peephole_kernel = self.layer_norm_scale = None
        self.projection_kernel = self.projection_bias = None
        if self.use_peepholes:
            # Zeros: training starts from the plain LSTM.
            self.peephole_kernel = self.add_weight(
                shape=(gates - 1, self.units),
                name="peephole_kernel",
                initializer="zeros",
            )
        if self.use_layer_norm:
            self.layer_norm_scale = self.add_weight(
                shape=(gates, self.units),
                name="layer_norm_scale",
                initializer="ones",
            )
        if self.projection_units is not None:
            self.projection_kernel = self.add_weight(
                shape=(self.units, self.projection_units),
                name="projection_kernel",
                initializer=self.kernel_initializer,
            )
            if self.use_projection_bias:
                self.projection_bias = self.add_weight(
                    shape=(self.projection_units,),
                    name="projection_bias",
                    initializer="zeros",
                )

    def _bias_initializer(self, shape, dtype=None):
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        units = self.units
        # The forget block is the second of (i, f, c, o), the first of
        # (f, c, o) under CIFG.
        before = [] if self.coupled_input_forget else [units]
        return keras.ops.concatenate(
            [self.bias_initializer((n,), dtype=dtype) for n in before]
            + [
                keras.initializers.get("ones")((units,), dtype=dtype),
                self.bias_initializer((2 * units,), dtype=dtype),
            ]
        )

    def check_feature_size(self, feature_size):
        """Raises `ValueError` if `feature_size` differs from the built one."""
        expected = self.kernel.shape[0]
        if feature_size is not None and feature_size != expected:
            raise ValueError(
                f"The feature size of `inputs` changed after build: "
                f"{self.name} was built for {expected} features, got "
                f"{feature_size}. Create a new layer for inputs of another "
                "width."
            )

    def call(self, inputs, states, training=False):
        if len(inputs.shape) != 2:
            raise ValueError(
                "LSTMCell expects `inputs` of rank 2, (batch, features), got "
                f"shape {tuple(inputs.shape)}."
            )
        self.check_feature_size(inputs.shape[-1])
        inputs = _as_float(inputs, self.compute_dtype)
        h_prev, c_prev = states[0], states[1]
        # Implementation 1 computes gate by gate: a list of 4 masks, `None`
        # where there is no dropout.
        per_gate = self.implementation == 1
        input_mask = recurrent_masks = (
            [None] * self._gate_count if per_gate else None
        )
        if training and self.dropout > 0:
            input_mask = self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            recurrent_masks = self.get_recurrent_dropout_mask(h_prev)
        variant = self._variant()
        projected, bias = recurrence.project_inputs_with_dropout(
            inputs,
            self.kernel,
            self.bias if variant is None else None,
            input_mask,
        )
        if variant is not None:
            # Layer norm needs the bias after the normalisation; lstm_step
            # adds it where it belongs.
            bias = self.bias
        gates = recurrence.lstm_step(
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
        )
        return gates.h, [gates.h, gates.c]

    def get_initial_state(self, batch_size=None):
        return [
            keras.ops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in self.state_size
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "recurrent_regularizer": keras.regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint
            ),
            "recurrent_constraint": keras.constraints.serialize(
                self.recurrent_constraint
            ),
            "bias_constraint": keras.constraints.serialize(
                self.bias_constraint
            ),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "implementation": self.implementation,
            **{name: getattr(self, name) for name in VARIANT_DEFAULTS},
        }
        return {**super().get_config(), **config}


# The sequence kernel that `LSTM.inner_loop` uses while a lowering is active
# (see `lowering`). `keras_lstm.export` installs the TFLite fused-LSTM
# function here; nothing in this package sets it.
_LOWERING = contextvars.ContextVar("keras_lstm_lowering", default=None)


@contextlib.contextmanager
def lowering(sequence_fn):
    """Routes every `keras_lstm.LSTM` through `sequence_fn` while active.

    `sequence_fn(layer, sequences, initial_state, mask, training)` returns
    `(last_output, outputs, [h, c])`, as `LSTM.inner_loop` does. It must
    raise rather than fall back when it cannot handle a configuration.
    This is the seam through which `keras_lstm.export` emits TFLite's fused
    LSTM; it is not needed for training or inference.
    """
    token = _LOWERING.set(sequence_fn)
    try:
        yield
    finally:
        _LOWERING.reset(token)


class SequencePath:
    """How `LSTM` runs a sequence; see `LSTM.sequence_path` and `ROUTES`."""

    GENERIC = "generic"
    PARALLEL = "parallel"
    XLA = "xla"
    CUDNN = "cudnn"
    TORCH_CPU = "torch_cpu"
    LOWERED = "lowered"


# Below this many units the four gate products are too small to gain from
# running side by side: the extra ops cost about what they save
# (`benchmarks/speed.py --units-sweep`, results/units_sweep.md).
PARALLEL_MIN_UNITS = 96

# With a batch of at most SMALL_BATCH, known when the call is traced, the
# parallel path needs more units to pay, more while training
# (`benchmarks/speed.py --grid`, results/grid.md, docs/speed.md).
SMALL_BATCH = 16
SMALL_BATCH_MIN_UNITS = {"inference": 192, "training": 512}


class RouteCall(typing.NamedTuple):
    """What a routing rule reads: the layer and one call's circumstances.

    `batch_size` is `None` where it is unknown when the call is traced;
    `xla` is whether the call is being compiled by XLA (TensorFlow under
    `jit_compile=True`).
    """

    layer: "LSTM"
    mask: object
    training: bool
    batch_size: int | None
    xla: bool


class Route(typing.NamedTuple):
    """One row of `ROUTES`.

    `applies(call)`: the path computes this call with `keras.layers.LSTM`'s
    numbers. `pays(call)`: it is also the faster choice (a measured rule;
    `force_route` skips it). `reason`: the rule in words.
    """

    path: str
    applies: typing.Callable[[RouteCall], bool]
    pays: typing.Callable[[RouteCall], bool]
    reason: str


def _always(call):
    return True


def _lowering_active(call):
    return _LOWERING.get() is not None


def _backend_kernel_applies(call):
    """Whether `keras.layers.LSTM` would call the backend's `lstm(...)`.

    Keras's conditions before it tries the backend's kernel, plus one of
    ours: no mask on JAX or PyTorch, where that kernel refuses one.
    """
    layer = call.layer
    cell = layer.cell
    if layer._is_variant:
        return False  # No backend kernel has peepholes, CIFG, layer norm...
    if layer.use_cudnn not in ("auto", True) or cell.recurrent_dropout:
        return False
    if call.training and cell.dropout and cell.implementation == 1:
        # Keras would broadcast a list of 4 masks; one mask per gate is
        # not something a fused kernel takes.
        return False
    return call.mask is None or keras.backend.backend() == "tensorflow"


def _cudnn_applies(call):
    cell = call.layer.cell
    return _backend_kernel_applies(call) and _compat.cudnn_ok(
        cell.activation,
        cell.recurrent_activation,
        call.layer.unroll,
        cell.use_bias,
    )


def _torch_fallback_applies(call):
    # Keras's torch `lstm(...)` runs its CPU fallback for anything cuDNN
    # does not take, unroll included.
    return keras.backend.backend() == "torch" and _backend_kernel_applies(call)


def _needs_keras_loop(call):
    return call.mask is not None or call.layer.unroll


def _tf_sequence_applies(call):
    """`tf_sequence.lstm_sequence` computes this call: TensorFlow, no mask,
    no unroll, no dropout to draw while training (the cell draws it), and
    no variant (these routes pass the plain LSTM's weights only)."""
    layer = call.layer
    return (
        keras.backend.backend() == "tensorflow"
        and not layer._is_variant
        and not _needs_keras_loop(call)
        and not (
            call.training and (layer.dropout > 0 or layer.recurrent_dropout > 0)
        )
    )


def _xla_applies(call):
    return call.xla and _tf_sequence_applies(call)


def _parallel_pays(call):
    units = call.layer.units
    if units < PARALLEL_MIN_UNITS:
        return False
    phase = "training" if call.training else "inference"
    return not (
        call.batch_size is not None
        and call.batch_size <= SMALL_BATCH
        and units < SMALL_BATCH_MIN_UNITS[phase]
    )


# The routing rules, in order: the first row whose `applies` and `pays`
# hold is the call's path. `LSTM.sequence_path()` and `LSTM.inner_loop`
# both read this table and nothing else.
ROUTES = (
    Route(
        SequencePath.LOWERED,
        _lowering_active,
        _always,
        "keras_lstm.export is lowering the layer to TFLite's fused LSTM "
        "(see `lowering`)",
    ),
    Route(
        SequencePath.CUDNN,
        _cudnn_applies,
        _always,
        "the backend's cuDNN kernel, where keras.layers.LSTM would use it: "
        "use_cudnn 'auto' or True, no recurrent dropout, the backend's "
        "cudnn_ok (tanh / sigmoid, a bias, no unroll, a GPU), and no mask "
        "on JAX or PyTorch; under 'auto' a kernel that still refuses falls "
        "back to the rows below",
    ),
    Route(
        SequencePath.TORCH_CPU,
        _torch_fallback_applies,
        _always,
        "PyTorch, where keras.layers.LSTM calls its backend's lstm(...) and "
        "that runs its CPU fallback: use_cudnn 'auto' or True, no recurrent "
        "dropout, no mask, not implementation=1 with dropout while "
        "training; any activations, unroll ignored (as Keras's fallback "
        "ignores it)",
    ),
    Route(
        SequencePath.GENERIC,
        _needs_keras_loop,
        _always,
        "a mask or unroll=True: Keras's masking and unrolling live in "
        "keras.layers.RNN's loop",
    ),
    Route(
        SequencePath.XLA,
        _xla_applies,
        _always,
        "TensorFlow, compiled by XLA (jit_compile=True), no dropout while "
        "training: tf_sequence.lstm_sequence with XLA_OPTIONS",
    ),
    Route(
        SequencePath.PARALLEL,
        _tf_sequence_applies,
        _parallel_pays,
        "TensorFlow, no dropout while training, at least PARALLEL_MIN_UNITS "
        "units, and for a batch of at most SMALL_BATCH at least "
        "SMALL_BATCH_MIN_UNITS (192 at inference, 512 while training): "
        "tf_sequence.lstm_sequence with the four gate products side by side",
    ),
    Route(
        SequencePath.GENERIC,
        _always,
        _always,
        "everything else: keras.layers.RNN's loop over LSTMCell, which is "
        "also what keras.layers.LSTM runs on a CPU under JAX",
    ),
)

# `tf_sequence.lstm_sequence`'s options on the XLA route, where the
# arithmetic is XLA's and the default path's bitwise order need not hold
# (docs/speed.md says which levers were measured and why these).
XLA_OPTIONS = {"parallel_gates": False, "project_first": False, "unroll": False}

# The path `force_route` holds. Process-wide rather than a context variable:
# tf.distribute traces each replica in a thread of its own.
_FORCED = []


@contextlib.contextmanager
def force_route(path):
    """Sends every `keras_lstm.LSTM` call to `path` wherever it applies.

    For tests and benchmarks: while active, a call takes `path` whenever
    that path can compute it (its row's `applies` in `ROUTES`), skipping the
    measured speed rules (`pays`: `PARALLEL_MIN_UNITS`, the small-batch
    rule); a call it cannot compute (a mask on the parallel path, say)
    keeps its usual route, and a lowering (`lowering`) still comes first.
    It acts when a call is traced, so keep it active around the first call
    or `fit` of a model, not just its construction. Not thread-safe across
    overlapping uses; process-wide so that `tf.distribute` replicas see it.

    Args:
        path: a `SequencePath` value.

    Raises:
        ValueError: if `path` is not a `SequencePath` value.

    Example:

    >>> layer = keras_lstm.LSTM(4)
    >>> with keras_lstm.layers.force_route("generic"):
    ...     layer.sequence_path()
    'generic'
    """
    paths = {route.path for route in ROUTES}
    if path not in paths:
        raise ValueError(
            f"Received an invalid value for argument `path`: {path!r}. "
            f"Expected one of {sorted(paths)} (keras_lstm.layers."
            "SequencePath)."
        )
    _FORCED.append(path)
    try:
        yield
    finally:
        _FORCED.pop()


def route(call, exclude=()):
    """The `Route` (a row of `ROUTES`) that `call` takes.

    Args:
        call: a `RouteCall`.
        exclude: paths to skip (cuDNN once its kernel has refused).

    Returns:
        The first row of `ROUTES` that applies and pays, or, under
        `force_route`, the forced path's row where it applies.
    """
    rows = [row for row in ROUTES if row.path not in exclude]
    if rows[0].path == SequencePath.LOWERED and rows[0].applies(call):
        return rows[0]
    if _FORCED:
        for row in rows:
            if row.path == _FORCED[-1] and row.applies(call):
                return row
    for row in rows:
        if row.applies(call) and row.pays(call):
            return row
    raise AssertionError("ROUTES ends with a row that always applies")


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTM(keras.layers.RNN):
    """Long short-term memory layer (Hochreiter & Schmidhuber, 1997).

    Runs `keras_lstm.LSTMCell` over a sequence. Each step computes

        i_t  = σ(x_t W_i + h_{t-1} U_i + b_i)      input gate
        f_t  = σ(x_t W_f + h_{t-1} U_f + b_f)      forget gate
        c̃_t  = tanh(x_t W_c + h_{t-1} U_c + b_c)   candidate cell state
        o_t  = σ(x_t W_o + h_{t-1} U_o + b_o)      output gate
        c_t  = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        h_t  = o_t ⊙ tanh(c_t)

    It takes the arguments of `keras.layers.LSTM`, has the same weights and
    gives the same numbers, on TensorFlow, JAX and PyTorch.

    Its `inner_loop` routes each call by one ordered table,
    `keras_lstm.layers.ROUTES`, which `sequence_path()` reads too:

    - `"cudnn"`: on a GPU, the backend's cuDNN kernel, through the seam
      `keras.layers.LSTM` uses (the backend's `lstm(...)`), under Keras's
      conditions: `use_cudnn` `"auto"` or `True`, `tanh` / `sigmoid`, a
      bias, no `unroll`, no `recurrent_dropout`, and no mask on JAX or
      PyTorch.
    - `"xla"` (TensorFlow under `jit_compile=True`): `tf_sequence.
      lstm_sequence` compiled by XLA, held to `keras.layers.LSTM` under
      `jit_compile=True`. The layer keeps `supports_jit` on a CPU, so a
      model compiled with `jit_compile=True` stays compiled.
    - `"parallel"` (TensorFlow, CPU): `tf_sequence.lstm_sequence`, the
      function that `keras_lstm.export` fuses into TFLite's LSTM, with
      `h_{t-1} U` computed as four gate products that run side by side;
      from `PARALLEL_MIN_UNITS` units, where it pays. The gain depends on
      the CPU: `make bench` measures it (docs/speed.md).
    - `"torch_cpu"` (PyTorch, no cuDNN): where `keras.layers.LSTM` runs its
      backend's CPU fallback, the same operations in the same order
      (`torch_sequence`), with a cheaper backward pass; without gradient
      tracking, that fallback itself (`benchmarks/backends.py`).
    - `"generic"`: `keras.layers.RNN`'s loop over `LSTMCell`, for masks,
      `use_cudnn=False` or recurrent dropout on PyTorch, and on TensorFlow
      for `unroll=True`, dropout while training, fewer than 96 units and
      small batches (`SMALL_BATCH`); and JAX on a CPU (where
      `keras.layers.LSTM` runs the same loop).
    - `"lowered"`: TFLite's fused LSTM, while `keras_lstm.export` exports.

    Every path gives `keras.layers.LSTM`'s numbers within float32 rounding.

    The variants (`use_peepholes`, `coupled_input_forget`, `use_layer_norm`,
    `projection_units`, `cell_clip`, `projection_clip`; see `LSTMCell` and
    docs/variants.md) have no cuDNN or backend kernel: they run the
    `"generic"` path (or `"lowered"`).

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation for the candidate and for `tanh(c_t)`.
            Default: `"tanh"`.
        recurrent_activation: Activation for the three gates.
            Default: `"sigmoid"`.
        use_bias: Boolean, whether the layer uses a bias vector.
            Default: `True`.
        kernel_initializer: Initializer for `kernel`.
            Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        unit_forget_bias: Boolean. If `True`, add 1 to the forget-gate bias
            at initialization. Default: `True`.
        kernel_regularizer: Regularizer for `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer for `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer for `bias`. Default: `None`.
        activity_regularizer: Regularizer for the output. Default: `None`.
        kernel_constraint: Constraint for `kernel`. Default: `None`.
        recurrent_constraint: Constraint for `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint for `bias`. Default: `None`.
        dropout: Float in [0, 1), input dropout. Default: `0.0`.
        recurrent_dropout: Float in [0, 1), dropout on `h_{t-1}`.
            Default: `0.0`.
        seed: Random seed for dropout. Default: `None`.
        return_sequences: Boolean. Return the whole output sequence rather
            than the last output. Default: `False`.
        return_state: Boolean. Also return the last `h` and `c`.
            Default: `False`.
        go_backwards: Boolean. Process the sequence backwards and return the
            reversed sequence. Default: `False`.
        stateful: Boolean. Carry the last state of each sample into the next
            batch; needs a fixed batch size. Default: `False`.
        unroll: Boolean. Unroll the loop in the graph. Default: `False`.
        use_cudnn: `"auto"`, `True` or `False`, as in Keras. `"auto"` uses
            the backend's cuDNN kernel where it applies and falls back
            otherwise; `True` raises `ValueError` at call time where it does
            not apply; `False` never uses it. Default: `"auto"`.
        use_peepholes: Keyword only, as in `LSTMCell`. Default: `False`.
        coupled_input_forget: Keyword only, as in `LSTMCell`.
            Default: `False`.
        use_layer_norm: Keyword only, as in `LSTMCell`. Default: `False`.
        projection_units: Keyword only, as in `LSTMCell`; the output and
            `h` then have this size. Default: `None`.
        use_projection_bias: Keyword only, as in `LSTMCell`.
            Default: `False`.
        cell_clip: Keyword only, as in `LSTMCell`. Default: `None`.
        projection_clip: Keyword only, as in `LSTMCell`. Default: `None`.
        implementation: Keyword only, 1 or 2, as in `LSTMCell`.
            Default: `2`.

    Call arguments:
        inputs: A 3D tensor `(batch, timesteps, features)`; integer inputs
            are cast to the compute dtype.
        mask: Optional boolean tensor `(batch, timesteps)`; `False` skips a
            step.
        training: Python boolean; dropout is applied only when `True`.
        initial_state: Optional list `[h_0, c_0]`: `h_0` of shape
            `(batch, projection_units or units)`, `c_0` of `(batch, units)`.

    Example:

    >>> layer = keras_lstm.LSTM(4, return_sequences=True)
    >>> layer(np.zeros((2, 10, 8), "float32")).shape
    (2, 10, 4)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
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
        # `is` for the booleans: 1 == True, but 1 is not a valid value.
        if not (use_cudnn == "auto" or use_cudnn is True or use_cudnn is False):
            raise ValueError(
                "Received an invalid value for argument `use_cudnn`, "
                f"expected one of 'auto', True, False, got {use_cudnn!r}."
            )
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            use_peepholes=use_peepholes,
            coupled_input_forget=coupled_input_forget,
            use_layer_norm=use_layer_norm,
            projection_units=projection_units,
            use_projection_bias=use_projection_bias,
            cell_clip=cell_clip,
            projection_clip=projection_clip,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
            implementation=kwargs.pop("implementation", 2),
        )
        if use_cudnn is True and cell._is_variant:
            raise ValueError(
                "Received use_cudnn=True with an LSTM variant "
                f"({_variant_summary(cell)}): cuDNN computes only the plain "
                "LSTM. Pass use_cudnn='auto' (the default) or False."
            )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        # Read live at every call, so that Bidirectional can copy it, as it
        # does for keras.layers.LSTM.
        self.use_cudnn = use_cudnn
        # cuDNN ops are not XLA-compatible: Keras turns jit off for such a
        # layer on TensorFlow, and so do we.
        if (
            keras.backend.backend() == "tensorflow"
            and use_cudnn in ("auto", True)
            and _compat.cudnn_ok(
                cell.activation,
                cell.recurrent_activation,
                self.unroll,
                cell.use_bias,
            )
        ):
            self.supports_jit = False

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                "LSTM expects `inputs` of rank 3, (batch, timesteps, "
                f"features), got shape {tuple(sequences_shape)}. Add a time "
                "axis, e.g. x[:, None, :] for a single step."
            )
        if self.stateful and sequences_shape[0] is None:
            raise ValueError(
                "`stateful=True` needs a fixed batch size, but the input "
                f"shape is {tuple(sequences_shape)}. Give it one: "
                "keras.Input(shape=(timesteps, features), batch_size=N)."
            )
        super().build(sequences_shape, initial_state_shape)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if len(sequences.shape) != 3:
            raise ValueError(
                "LSTM expects `inputs` of rank 3, (batch, timesteps, "
                f"features), got shape {tuple(sequences.shape)}."
            )
        self.cell.check_feature_size(sequences.shape[-1])
        sequences = _as_float(sequences, self.compute_dtype)
        if initial_state is not None:
            self._check_initial_state(initial_state, sequences.shape[0])
        return super().call(
            sequences, mask=mask, training=training, initial_state=initial_state
        )

    def _check_initial_state(self, initial_state, batch_size):
        states = (
            list(initial_state)
            if isinstance(initial_state, (list, tuple))
            else [initial_state]
        )
        if len(states) != 2:
            raise ValueError(
                "`initial_state` must be a list of 2 tensors [h_0, c_0], got "
                f"{len(states)}. Pass both the hidden and the cell state."
            )
        for name, size, state in zip(
            ("h_0", "c_0"), self.cell.state_size, states, strict=True
        ):
            shape = tuple(state.shape)
            ok = len(shape) == 2 and shape[1] == size
            if ok and None not in (batch_size, shape[0]):
                ok = shape[0] == batch_size
            if not ok:
                what = (
                    "projection_units"
                    if name == "h_0" and self.cell.projection_units
                    else "units"
                )
                raise ValueError(
                    f"`initial_state` {name} must have shape "
                    f"(batch, {what}) = ({batch_size}, {size}), got "
                    f"{shape}."
                )

    def sequence_path(
        self, mask=None, training=False, batch_size=None, jit_compile=None
    ):
        """Which implementation runs for this call: a `SequencePath` value.

        The first row of `keras_lstm.layers.ROUTES` that applies, the one
        table `inner_loop` reads too. In order:

        - `"lowered"` while `keras_lstm.export` lowers the layer to TFLite's
          fused LSTM (see `lowering`).
        - `"generic"` for an LSTM variant (peepholes, CIFG, layer norm,
          projection, clipping), which no backend kernel computes.
        - `"cudnn"`, the backend's cuDNN kernel, where `keras.layers.LSTM`
          would use it: `use_cudnn` is `"auto"` or `True`, no recurrent
          dropout, the backend's `cudnn_ok` (`tanh` / `sigmoid`, a bias, no
          `unroll`, a GPU the backend sees), and no `mask` on JAX or
          PyTorch (TensorFlow's kernel takes right-padded masks). Like
          Keras, a kernel that still refuses under `"auto"` falls back to
          the rules below.
        - On PyTorch, `"torch_cpu"` where `keras.layers.LSTM` calls its
          backend's `lstm(...)` and that runs its CPU fallback: `use_cudnn`
          `"auto"` or `True`, no recurrent dropout, no `mask`, not
          `implementation=1` with dropout while training; any activations,
          and `unroll` ignored (as Keras's fallback ignores it).
        - `"generic"`: `keras.layers.RNN`'s loop over `LSTMCell`, for a
          `mask` (Keras's masking rules live in that loop) or
          `unroll=True`.
        - On TensorFlow, no dropout while training (the cell draws the
          masks): `"xla"` when XLA compiles the call (`jit_compile=True`);
          otherwise `"parallel"`, the fast path, from `PARALLEL_MIN_UNITS`
          units and, for a `batch_size` of at most `SMALL_BATCH`, from
          `SMALL_BATCH_MIN_UNITS` units (192 at inference, 512 while
          training).
        - `"generic"` otherwise: on JAX, the loop `keras.layers.LSTM` runs
          on a CPU.

        Every path gives `keras.layers.LSTM`'s numbers within float32
        rounding (`tests/test_layers.py` holds each to the same
        tolerances); `"xla"` is held to `keras.layers.LSTM` under
        `jit_compile=True`. `force_route` overrides the speed rules for
        tests and benchmarks.

        Args:
            mask: the call's mask, or `None`.
            training: Python boolean, the call's phase.
            batch_size: the call's batch size where it is known when the
                call is traced; `None`: unknown.
            jit_compile: whether XLA compiles the call. `None`: as the
                current trace (outside a trace, no).

        Returns:
            A `SequencePath` value.
        """
        return self._route(mask, training, batch_size, jit_compile).path

    def _route(self, mask, training, batch_size, jit_compile=None, exclude=()):
        if jit_compile is None:
            jit_compile = (
                keras.backend.backend() == "tensorflow"
                and _compat.tf_in_xla_compilation()
            )
        call = RouteCall(self, mask, training, batch_size, bool(jit_compile))
        return route(call, exclude)

    @property
    def _is_variant(self):
        """Whether the layer is an LSTM variant: no backend kernel computes
        one, so it runs the generic loop (or the lowering)."""
        return self.cell._is_variant

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if keras.tree.is_nested(mask):
            mask = mask[0]
        batch = sequences.shape[0]
        path = self._route(mask, training, batch).path
        if path == SequencePath.CUDNN:
            try:
                return self._backend_sequence(
                    sequences, initial_state, mask, training
                )
            except NotImplementedError:
                # As keras.layers.LSTM: "auto" falls back.
                path = self._route(
                    mask, training, batch, exclude=(SequencePath.CUDNN,)
                ).path
        # On a PyTorch CPU Keras's `lstm(...)` runs its fallback, and
        # keras.layers.LSTM accepts use_cudnn=True there.
        if self.use_cudnn is True and path not in (
            SequencePath.CUDNN,
            SequencePath.TORCH_CPU,
        ):
            raise ValueError(
                "Received use_cudnn=True, but cuDNN does not apply to this "
                f"call on the {keras.backend.backend()} backend (it would "
                f"run the {path!r} path): it needs a GPU, tanh and sigmoid "
                "activations, a bias, no unroll, no recurrent_dropout, and "
                "no mask on JAX or PyTorch. Pass use_cudnn='auto' to fall "
                "back."
            )
        if path == SequencePath.LOWERED:
            return _LOWERING.get()(
                self, sequences, initial_state, mask, training
            )
        if path == SequencePath.PARALLEL:
            return self._tf_sequence(
                sequences, initial_state, parallel_gates=True
            )
        if path == SequencePath.XLA:
            return self._tf_sequence(sequences, initial_state, **XLA_OPTIONS)
        if path == SequencePath.TORCH_CPU:
            return self._torch_sequence(sequences, initial_state, training)
        return super().inner_loop(
            sequences, initial_state, mask=mask, training=training
        )

    def _dropped_out(self, sequences, training):
        # One input mask for the whole sequence, drawn by the cell, as
        # keras.layers.LSTM does before its backend kernel.
        if not (training and self.dropout):
            return sequences
        mask = self.cell.get_dropout_mask(sequences[:, 0, :])
        mask = keras.ops.broadcast_to(
            keras.ops.expand_dims(mask, axis=1), keras.ops.shape(sequences)
        )
        return sequences * mask

    def _backend_sequence(self, sequences, initial_state, mask, training):
        cell = self.cell
        out = _compat.backend_lstm(
            self._dropped_out(sequences, training),
            initial_state[0],
            initial_state[1],
            mask,
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
        )
        if keras.backend.backend() == "tensorflow":
            self.supports_jit = False
        return out

    def _tf_sequence(self, sequences, initial_state, **options):
        from keras_lstm import tf_sequence

        cell = self.cell
        bias = keras.ops.convert_to_tensor(cell.bias) if cell.use_bias else None
        last_output, outputs, h, c = tf_sequence.lstm_sequence(
            sequences,
            initial_state[0],
            initial_state[1],
            keras.ops.convert_to_tensor(cell.kernel),
            keras.ops.convert_to_tensor(cell.recurrent_kernel),
            cell.activation,
            cell.recurrent_activation,
            bias=bias,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            **options,
        )
        return last_output, outputs, [h, c]

    def _torch_sequence(self, sequences, initial_state, training):
        import torch

        from keras_lstm import torch_sequence

        if not torch.is_grad_enabled():
            # Nothing to differentiate: Keras's own fallback, the same
            # numbers with less per-step overhead (see torch_sequence).
            return self._backend_sequence(
                sequences, initial_state, None, training
            )
        cell = self.cell
        last_output, outputs, h, c = torch_sequence.lstm_sequence(
            self._dropped_out(sequences, training),
            initial_state[0],
            initial_state[1],
            cell.kernel,
            cell.recurrent_kernel,
            cell.activation,
            cell.recurrent_activation,
            bias=cell.bias,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
        )
        return last_output, outputs, [h, c]

    @property
    def units(self):
        return self.cell.units

    @property
    def activation(self):
        return self.cell.activation

    @property
    def recurrent_activation(self):
        return self.cell.recurrent_activation

    @property
    def use_bias(self):
        return self.cell.use_bias

    @property
    def dropout(self):
        return self.cell.dropout

    @property
    def recurrent_dropout(self):
        return self.cell.recurrent_dropout

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {
            key: cell_config[key]
            for key in (
                "units",
                "activation",
                "recurrent_activation",
                "use_bias",
                "kernel_initializer",
                "recurrent_initializer",
                "bias_initializer",
                "unit_forget_bias",
                "kernel_regularizer",
                "recurrent_regularizer",
                "bias_regularizer",
                "kernel_constraint",
                "recurrent_constraint",
                "bias_constraint",
                "dropout",
                "recurrent_dropout",
                "seed",
                *VARIANT_DEFAULTS,
            )
        }
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer
        )
        config["use_cudnn"] = self.use_cudnn
        config["implementation"] = self.cell.implementation
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
