"""Lowering LSTM layers to TFLite's fused `UNIDIRECTIONAL_SEQUENCE_LSTM`.

TFLite's converter replaces a function whose `api_implements` attribute
starts with `lstm_` by its fused LSTM op (`prepare_composite_functions_tf.cc`,
`ConvertKerasLSTMLayer` in `lstm_utils.cc`), as it did for tf_keras's
`standard_lstm`. The contract, read from that pass:

- arguments, by position: `(inputs, init_h, init_c, kernel,
  recurrent_kernel, bias)`, all ranked, `init_h`/`init_c` and the weights
  with static shapes (so the batch size must be fixed);
- five results `(last_output, outputs, h, c, runtime)`, of which only the
  first two may be consumed: the pass replaces `h`, `c` and `runtime` by
  zeros;
- attributes `time_major` and `go_backwards` (the pass reverses the input
  itself, so the outputs stay in processing order, as in Keras);
- no mask argument, `tanh` and `sigmoid` activations (the op has no
  others), and `init_h`/`init_c` become the op's variable tensors, which
  is why they must be zeros.

When a check in that pass fails the converter keeps the body as a WHILE
loop without a word, so everything here refuses such configurations up
front, and `to_tflite` asserts the fused ops after conversion.

`fused_sequence` is the `sequence_fn` for `keras_lstm.layers.lowering`;
`export_model` rebuilds any supported Keras model with `keras_lstm.LSTM`
layers and a fixed input shape; `ExternalStateStep` lowers one frame with
the state as explicit tensors, through the shared `lstm_step`.
"""

import contextlib
import dataclasses
import functools
import uuid

import keras
import numpy as np
import tensorflow as tf

import keras_lstm
from keras_lstm import recurrence, tf_sequence
from keras_lstm.export import masking, models, substitutes
from keras_lstm.export.quantization import Quantization
from keras_lstm.layers import lowering

_TANH = (keras.activations.tanh, tf.tanh, tf.math.tanh, tf.nn.tanh)
_SIGMOID = (keras.activations.sigmoid, tf.sigmoid, tf.math.sigmoid)


def require_tensorflow_backend(api: str) -> None:
    """Raises unless Keras runs on TensorFlow, saying what to run instead.

    Export traces the model into a TensorFlow graph for TFLite's converter
    (or a SavedModel), which needs Keras's TensorFlow backend; the backend
    is fixed per process when Keras is imported. The `keras-lstm` command
    always runs its own process on TensorFlow, so a `.keras` file trained
    on JAX or PyTorch exports through it whatever `KERAS_BACKEND` says.

    Args:
        api: The public function called, for the message.

    Raises:
        RuntimeError: on another backend.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{api} needs Keras's TensorFlow backend, and this process runs "
            f"{backend!r} (KERAS_BACKEND). Save the model "
            "(model.save('model.keras')) and run `keras-lstm export "
            "model.keras out.tflite` (it runs TensorFlow in its own "
            "process), or call it from a process started with "
            "KERAS_BACKEND=tensorflow."
        )


def fused_lstm_function(*, go_backwards: bool = False, variant=None):
    """A `tf.function` that TFLite converts to `UNIDIRECTIONAL_SEQUENCE_LSTM`.

    Each call returns a new function with its own `lstm_<uuid>` name, so
    every layer gets its own fused op. In TensorFlow the body runs
    `keras_lstm.tf_sequence.lstm_sequence`, the same gate math as the layer,
    with `tanh` and `sigmoid`, the only activations the fused op has.

    The converter builds the op from the arguments alone (`lstm_utils.cc`,
    `ConvertKerasLSTMLayer`): four gate blocks of `kernel`,
    `recurrent_kernel` and `bias`, and `n_output` from `recurrent_kernel`'s
    rows, so a projection's `(projection_units, 4 * units)` recurrent
    kernel gives the op its `(batch, time, projection_units)` output. A
    `variant`'s other weights are not arguments: the body computes with
    them, and `keras_lstm.export.rewrite.write_lstm_variants` writes them
    into the op after conversion.

    Args:
        go_backwards: Whether the function processes the sequence from its
            last step to its first. Outputs are in processing order.
        variant: Optional `keras_lstm.recurrence.LSTMVariant` of NumPy
            arrays (`variant_arrays`). Under CIFG the arguments still hold
            four gate blocks, the first (input gate) a stand-in that the
            body drops.

    Returns:
        A `tf.function` `(inputs, init_h, init_c, kernel, recurrent_kernel,
        bias) -> (last_output, outputs, h, c, runtime)`, batch-major
        (`time_major=False`). Only `last_output` and `outputs` may be
        consumed if it is to fuse.
    """
    go_backwards = bool(go_backwards)

    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        step_variant = None
        if variant is not None:
            # Constants made inside the body: the converter did not fuse
            # bodies that captured outer tensors (measured without a
            # projection, TF 2.21).
            step_variant = variant._replace(
                **{
                    key: tf.constant(value)
                    for key, value in variant._asdict().items()
                    if isinstance(value, np.ndarray)
                }
            )
            if variant.coupled_input_forget:
                units = init_c.shape[-1]
                kernel = kernel[:, units:]
                recurrent_kernel = recurrent_kernel[:, units:]
                bias = bias[units:]
        last_output, outputs, h, c = tf_sequence.lstm_sequence(
            inputs,
            init_h,
            init_c,
            kernel,
            recurrent_kernel,
            tf.tanh,
            tf.sigmoid,
            bias=bias,
            go_backwards=go_backwards,
            return_sequences=True,
            variant=step_variant,
        )
        # tf_keras's `runtime` result (which kernel ran); the converter
        # expects five float results.
        return last_output, outputs, h, c, tf.constant(0.0)

    return tf.function(
        lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4().hex}",
            "time_major": False,
            "go_backwards": go_backwards,
        },
    )


def _refuse(layer, problem, fix):
    raise ValueError(
        f"LSTM layer {layer.name!r} cannot be exported to TFLite's fused "
        f"LSTM op: {problem}. {fix}"
    )


def check_lstm_layer(
    layer,
    *,
    streaming: bool = False,
    explicit_state: bool = False,
    variants: bool = False,
    quantization: Quantization | None = None,
) -> None:
    """Raises if `layer` has a configuration the fused op cannot express.

    Args:
        layer: A `keras_lstm.LSTM` or `keras.layers.LSTM` (or a
            `keras.layers.RNN` around an LSTM cell).
        streaming: Whether the export is a single-frame streaming model,
            which cannot run backwards.
        explicit_state: Whether the export may lower the layer with its
            state as explicit tensors (`StateLowering`), which allows
            `return_state=True`.
        variants: Whether the export writes LSTM variants (peepholes,
            CIFG, layer norm, projection, clipping) into the fused op
            (`rewrite.write_lstm_variants`); without it they are refused.
        quantization: The file's `Quantization`, or `None`: the integer
            modes refuse the variants LiteRT's integer kernel gets wrong
            (`_check_integer_variant`).

    Raises:
        ValueError: explaining what to change.
    """
    cell = layer.cell
    if cell.activation not in _TANH:
        _refuse(
            layer,
            f"activation={_activation_name(cell.activation)!r}; the fused "
            "op computes tanh",
            "Train with activation='tanh'.",
        )
    if cell.recurrent_activation not in _SIGMOID:
        _refuse(
            layer,
            "recurrent_activation="
            f"{_activation_name(cell.recurrent_activation)!r}; the fused op "
            "computes sigmoid gates",
            "Train with recurrent_activation='sigmoid'.",
        )
    if layer.stateful:
        _refuse(
            layer,
            "stateful=True",
            "Lower stateless_model(model) instead; to_tflite does, and "
            "writes a streaming file (streaming=True) that keeps the state "
            "between calls in the op's variable tensors.",
        )
    if layer.return_state and not explicit_state:
        _refuse(
            layer,
            "return_state=True; the converter fuses only when the outputs "
            "alone are used (TF#62775) and the op does not expose its cell "
            "state",
            "Build the exported model with return_state=False.",
        )
    if layer.compute_dtype != "float32":
        _refuse(
            layer,
            f"it computes in {layer.compute_dtype}",
            "Export from a float32 model (keras.config."
            "set_dtype_policy('float32') before building it) and use "
            "quantization='float16' for a half-size file.",
        )
    if streaming and layer.go_backwards:
        _refuse(
            layer,
            "go_backwards=True in a streaming export; a backward pass "
            "needs the whole sequence before its first output",
            "Export with streaming=False (whole sequences).",
        )
    if getattr(cell, "_is_variant", False) and not variants:
        # TFLite's op runs the variants, but the converter's Keras fusion
        # knows only the plain LSTM: the rest is written after conversion
        # (`rewrite.write_lstm_variants`), which this export does not do.
        _refuse(
            layer,
            "it is an LSTM variant "
            f"({keras_lstm.layers._variant_summary(cell)}), which this "
            "export does not write into the fused op yet",
            "Train a plain LSTM to export it, or run the variant in Keras.",
        )
    if getattr(cell, "_is_variant", False) and quantization is not None:
        _check_integer_variant(layer, quantization)


def _check_integer_variant(layer, quantization):
    """Refuses the variants an integer file cannot run faithfully."""
    cell = layer.cell
    summary = keras_lstm.layers._variant_summary(cell)
    if quantization is Quantization.INT16X8:
        # int16x8 LSTM files are op version 5, which LiteRT does not
        # register (`register.cc`, up to 4); TFLite Micro runs them and
        # refuses every variant (`ValidateTensorStatus`).
        _refuse(
            layer,
            f"it is an LSTM variant ({summary}) and quantization="
            "'int16x8': no runtime runs an int16x8 variant (LiteRT has no "
            "int16x8 LSTM kernel; TFLite Micro's refuses variants)",
            "Use quantization='int8' (LiteRT runs integer variants) or a "
            "float quantization; for TFLite Micro, export an int16x8 step "
            "file with streaming=True, external_state=True.",
        )
    projection = cell.projection_units
    if (
        quantization.is_integer
        and cell.use_peepholes
        and projection is not None
        and projection != cell.units
    ):
        # LiteRT's integer gate (`lstm_eval.cc`,
        # `CalculateLstmGateInteger8x8_16`) adds the peephole term over
        # `n_output` values per batch row, not `n_cell`: with a projection
        # to another size, the peepholes miss cells and rows. Measured
        # with every repair applied: units 6 -> 4, 22.5 output quanta off
        # the float LSTM; 6 -> 6, 1.4.
        _refuse(
            layer,
            f"use_peepholes=True with projection_units={projection} != "
            f"units={cell.units} in a {quantization.value!r} file: LiteRT's "
            "integer LSTM kernel adds the peepholes over projection_units "
            "values instead of units",
            "Export it with quantization='dynamic' or a float "
            "quantization, or train without peepholes or with "
            "projection_units == units.",
        )


def _activation_name(activation):
    return getattr(activation, "__name__", repr(activation))


def _check_initial_state(layer, initial_state):
    for state in initial_state:
        value = tf.get_static_value(state)
        if value is None or value.any():
            _refuse(
                layer,
                "it is called with an initial_state; the fused op starts "
                "from its own zero state (its variable tensors)",
                "Export a model that does not pass initial_state.",
            )


def _check_call(
    layer, sequences, initial_state, mask, training, *, any_state=False
):
    if mask is not None:
        _refuse(
            layer,
            "it receives a mask; the fused op has no mask input (TF#49936)",
            "Remove Masking / mask_zero=True from the exported model and "
            "pad sequences to the file's length.",
        )
    if training:
        _refuse(
            layer,
            "it is called with training=True",
            "Export calls the model with training=False.",
        )
    if sequences.shape[0] is None:
        _refuse(
            layer,
            "the batch size is not fixed (TF#53101)",
            "Pass batch_size= to the export.",
        )
    if sequences.dtype != tf.float32:
        _refuse(layer, f"its input is {sequences.dtype.name}", "Use float32.")
    if not any_state:
        _check_initial_state(layer, initial_state)


def _weights(cell):
    """`kernel`, `recurrent_kernel` and `bias` with four gate blocks.

    Under CIFG a zero input-gate block goes first, where the converter
    expects one (`fused_lstm_function` drops it again, and
    `rewrite.write_lstm_variants` empties its operands).
    """
    gates = 3 if getattr(cell, "coupled_input_forget", False) else 4
    bias = cell.bias if cell.use_bias else tf.zeros((gates * cell.units,))
    weights = [
        tf.convert_to_tensor(w)
        for w in (cell.kernel, cell.recurrent_kernel, bias)
    ]
    if gates == 3:
        weights = [
            tf.concat([tf.zeros_like(w[..., : cell.units]), w], axis=-1)
            for w in weights
        ]
    return weights


@dataclasses.dataclass(frozen=True)
class LoweredVariant:
    """An LSTM variant lowered to the fused op, for the rewrite after it.

    Attributes:
        name: The layer's name, for messages.
        forget_kernel: `(input_dim, units)`, the forget gate's input
            weights, by which `rewrite.write_lstm_variants` finds the op.
        variant: The `keras_lstm.recurrence.LSTMVariant`, NumPy arrays.
    """

    name: str
    forget_kernel: np.ndarray
    variant: object


def variant_arrays(cell):
    """The cell's `LSTMVariant` with NumPy arrays, or `None` when plain.

    Read eagerly (`tf.init_scope`), also while a function is traced: the
    fused function bakes them in as constants.
    """
    variant = cell._variant() if getattr(cell, "_is_variant", False) else None
    if variant is None:
        return None
    with tf.init_scope():
        return variant._replace(
            **{
                key: keras.ops.convert_to_numpy(value).astype(np.float32)
                for key, value in variant._asdict().items()
                if key.endswith(("_kernel", "_scale", "_bias"))
                and value is not None
            }
        )


def _forget_kernel(cell):
    block = 0 if cell.coupled_input_forget else 1
    with tf.init_scope():
        kernel = keras.ops.convert_to_numpy(cell.kernel)
    return kernel[:, block * cell.units : (block + 1) * cell.units]


def fused_sequence(
    layer, sequences, initial_state, mask, training, *, variants=None
):
    """`sequence_fn` for `keras_lstm.layers.lowering`: the fused LSTM call.

    Calls a fresh `fused_lstm_function` with the layer's live weights and
    zero initial states of static shape.

    Args:
        layer, sequences, initial_state, mask, training: as
            `LSTM.inner_loop` passes them.
        variants: `None` to refuse LSTM variants, or a list to which each
            variant layer lowered here appends its `LoweredVariant`, for
            `rewrite.write_lstm_variants` to write into the converted file.

    Returns:
        `(last_output, outputs, [h, c])`, as `LSTM.inner_loop`.

    Raises:
        ValueError: for a mask, an initial state, training, a dynamic batch
            size or a layer configuration the op cannot express.
    """
    check_lstm_layer(layer, variants=variants is not None)
    _check_call(layer, sequences, initial_state, mask, training)
    variant = variant_arrays(layer.cell)
    if variant is not None:
        variants.append(
            LoweredVariant(layer.name, _forget_kernel(layer.cell), variant)
        )
    # Two zero tensors: the converter turns each into one of the op's
    # variable tensors, and a tensor shared between states or layers would
    # make them share memory.
    batch = sequences.shape[0]
    h_dim, units = layer.cell.state_size
    init_h = tf.zeros((batch, h_dim), tf.float32, name="init_h")
    init_c = tf.zeros((batch, units), tf.float32, name="init_c")
    fn = fused_lstm_function(go_backwards=layer.go_backwards, variant=variant)
    last_output, outputs, h, c, _ = fn(
        sequences, init_h, init_c, *_weights(layer.cell)
    )
    # The function's TensorArray loop leaves the time dimension unknown.
    # Layers after it read the static shape: TimeDistributed, given time
    # None, takes its vectorized path and traces a single step (issue 11).
    outputs.set_shape((batch, sequences.shape[1], h_dim))
    return last_output, outputs, [h, c]


def without_mask(sequence_fn):
    """`sequence_fn` with the mask dropped: for masked models only.

    Keras 3 records a mask's computation as operations of the functional
    graph and passes it to each LSTM call, so the rebuilt model still
    hands the LSTMs the mask of the model's input. A masked model's file
    is only ever run on the valid steps of each sequence
    (`keras_lstm.export.masking`), on which the mask is all true; the
    LSTM drops it, and `fused_sequence` still refuses any other mask.
    """

    def call(layer, sequences, initial_state, mask, training):
        return sequence_fn(layer, sequences, initial_state, None, training)

    return call


@contextlib.contextmanager
def fused_lowering(*, variants: list | None = None):
    """Context manager: every `keras_lstm.LSTM` calls the fused function.

    Shorthand for `keras_lstm.layers.lowering(fused_sequence)`.

    Args:
        variants: As in `fused_sequence`: `None` refuses LSTM variants; a
            list collects them for `rewrite.write_lstm_variants`.
    """
    with lowering(functools.partial(fused_sequence, variants=variants)):
        yield


class ExternalStateStep:
    """`sequence_fn` for one frame with the LSTM state as explicit tensors.

    For runtimes without variable tensors: every LSTM layer computes one
    step, `keras_lstm.recurrence.lstm_step`, which TFLite writes with
    builtin ops (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD), from the
    states given here, and records its new state in `new_states`. Layers
    are numbered in call order.

    LSTM variants run here too, through the same `lstm_step` with the
    layer's `LSTMVariant`: peepholes are MULs and ADDs, CIFG a SUB, layer
    norm MEAN, SQUARE, SQRT and DIV, a projection one more
    FULLY_CONNECTED, clips MINIMUM and MAXIMUM; all of them ops TFLite
    Micro has kernels for, where its fused LSTM kernel refuses variants.
    `h` has the layer's `h_dim` (`projection_units` under a projection),
    `c` its `units`.

    Args:
        states: `[(h, c), ...]`, one pair per LSTM layer in call order, or
            `None` to use zeros (a first pass that only discovers layers).
    """

    def __init__(self, states=None):
        self.states = states
        self.layers = []
        self.new_states = []

    def __call__(self, layer, sequences, initial_state, mask, training):
        check_lstm_layer(layer, streaming=True, variants=True)
        _check_call(layer, sequences, initial_state, mask, training)
        if sequences.shape[1] != 1:
            _refuse(
                layer,
                f"it receives {sequences.shape[1]} steps in an "
                "external-state step model",
                "Feed one frame, (batch, 1, features), per call.",
            )
        index = len(self.layers)
        self.layers.append(layer)
        if self.states is None:
            batch = sequences.shape[0]
            h_dim, units = layer.cell.state_size
            h = tf.zeros((batch, h_dim), tf.float32)
            c = tf.zeros((batch, units), tf.float32)
        else:
            h, c = self.states[index]
        if getattr(layer.cell, "_is_variant", False):
            gates = _variant_step(layer.cell, sequences[:, 0, :], h, c)
        else:
            kernel, recurrent_kernel, bias = _weights(layer.cell)
            gates = recurrence.lstm_step(
                recurrence.project_inputs(sequences[:, 0, :], kernel, bias),
                h,
                c,
                recurrent_kernel,
                tf.tanh,
                tf.sigmoid,
            )
        self.new_states.append((gates.h, gates.c))
        return gates.h, gates.h[:, None, :], [gates.h, gates.c]


def _variant_step(cell, frame, h, c):
    """One step of a variant cell, as its own `call` computes it.

    The cell's kernels as they are (three gate blocks under CIFG, no
    stand-in for the converter), and the bias passed to `lstm_step`,
    which adds it where the variant needs it (after layer norm).
    """
    return recurrence.lstm_step(
        recurrence.project_inputs(frame, cell.kernel),
        h,
        c,
        cell.recurrent_kernel,
        tf.tanh,
        tf.sigmoid,
        bias=cell.bias if cell.use_bias else None,
        variant=cell._variant(),
    )


def _is_zero_state(initial_state):
    for state in initial_state:
        value = tf.get_static_value(state)
        if value is None or value.any():
            return False
    return True


class StateLowering:
    """`sequence_fn` for models whose LSTM state crosses the file boundary.

    An encoder with `return_state=True` outputs its last `h` and `c`; a
    decoder step model takes `h` and `c` as inputs (`initial_state`). The
    fused op can do neither: it keeps its state in variable tensors that
    start at zero, and the converter fuses only when `h` and `c` are not
    consumed (TF#62775). So each LSTM call is lowered

    - to the fused op (`fused_sequence`) when it starts from a zero state
      and does not return its state;
    - else unrolled over its fixed number of steps, each step
      `keras_lstm.recurrence.lstm_step` (the layer's gate math), which
      TFLite writes with builtin ops (FULLY_CONNECTED, LOGISTIC, TANH, MUL,
      ADD) and no WHILE. The weights are shared by every step, so the file
      grows by operators, not by weights.

    Attributes:
        fused: LSTM calls lowered to the fused op.
        unrolled: LSTM calls unrolled, with their step counts.
    """

    def __init__(self):
        self.fused = 0
        self.unrolled = []

    def __call__(self, layer, sequences, initial_state, mask, training):
        check_lstm_layer(layer, explicit_state=True)
        _check_call(
            layer, sequences, initial_state, mask, training, any_state=True
        )
        if not layer.return_state and _is_zero_state(initial_state):
            self.fused += 1
            return fused_sequence(layer, sequences, [], mask, training)
        steps = sequences.shape[1]
        if steps is None:
            _refuse(
                layer,
                "its time dimension is not fixed",
                "Pass timesteps= to the export.",
            )
        self.unrolled.append(steps)
        kernel, recurrent_kernel, bias = _weights(layer.cell)
        projected = recurrence.project_inputs(sequences, kernel, bias)
        h, c = (tf.convert_to_tensor(s, tf.float32) for s in initial_state)
        order = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
        outputs = []
        for t in order:
            gates = recurrence.lstm_step(
                projected[:, t, :], h, c, recurrent_kernel, tf.tanh, tf.sigmoid
            )
            h, c = gates.h, gates.c
            outputs.append(h)
        # Outputs in processing order, as Keras's RNN returns them.
        return h, tf.stack(outputs, axis=1), [h, c]


# ---------------------------------------------------------------------------
# Rebuilding a model with keras_lstm.LSTM layers and a fixed input shape.


def check_model(
    model: keras.Model,
    *,
    streaming: bool = False,
    explicit_state: bool = False,
    variants: bool = False,
    quantization: Quantization | None = None,
) -> list:
    """Raises if `model` holds a layer the fused export cannot express.

    Args:
        model: A Keras model.
        streaming: Whether the export is a single-frame streaming model.
        explicit_state: Whether LSTM states may be explicit tensors
            (`StateLowering`).
        variants: Whether the export writes LSTM variants into the fused
            op (`check_lstm_layer`).
        quantization: The file's `Quantization`, whose integer modes
            refuse some variants (`check_lstm_layer`), or `None`.

    Returns:
        The list of LSTM layers found (a `Bidirectional` counts two).

    Raises:
        ValueError: explaining what to change.
    """
    found = []
    for layer in models.iter_layers(model):
        if models.is_lstm_layer(layer):
            check_lstm_layer(
                layer,
                streaming=streaming,
                explicit_state=explicit_state,
                variants=variants,
                quantization=quantization,
            )
            found.append(layer)
        elif isinstance(layer, keras.layers.RNN):
            raise ValueError(
                f"Layer {layer.name!r} is a {type(layer).__name__} around a "
                f"{type(layer.cell).__name__}; only LSTM layers (keras_lstm."
                "LSTM, keras.layers.LSTM, keras.layers.RNN(LSTMCell)) lower "
                "to builtin TFLite ops. Replace it by an LSTM."
            )
        elif streaming and isinstance(layer, keras.layers.Bidirectional):
            raise ValueError(
                f"Layer {layer.name!r} is Bidirectional; a streaming export "
                "runs one frame at a time and cannot see the future. Export "
                "with streaming=False."
            )
    return found


def _lstm_from(layer):
    """A `keras_lstm.LSTM` equivalent to the LSTM layer `layer`."""
    if isinstance(layer, keras_lstm.LSTM):
        config = layer.get_config()
    elif isinstance(layer, keras.layers.LSTM):
        # Same arguments and weight layout (see keras_lstm.LSTM's docs).
        config = layer.get_config()
        config.pop("use_cudnn", None)
    else:  # keras.layers.RNN(LSTMCell)
        config = dict(layer.cell.get_config())
        for key in ("return_sequences", "return_state", "go_backwards"):
            config[key] = getattr(layer, key)
        config["stateful"] = layer.stateful
        config["unroll"] = layer.unroll
        config["name"] = layer.name
    config.pop("implementation", None)
    # Dropout is the identity at inference, but Keras's RNN draws its masks
    # whenever the cell has a rate, and the draw leaves seed-variable
    # updates (VAR_HANDLE, ASSIGN_VARIABLE) in the exported graph.
    config["dropout"] = 0.0
    config["recurrent_dropout"] = 0.0
    return keras_lstm.LSTM.from_config(config)


def export_model(
    model: keras.Model,
    *,
    batch_size: int,
    timesteps: int | None = None,
    input_shapes: list | None = None,
) -> keras.Model:
    """Rebuilds `model` with `keras_lstm.LSTM` layers and a fixed input.

    The copy has the input shape `(batch_size, timesteps, features)`, the
    same weights, and is for inference: LSTM dropout rates are set to 0.
    Every LSTM (`keras.layers.LSTM`, `keras.layers.RNN(LSTMCell)`, also
    inside `Bidirectional` and nested models) becomes a `keras_lstm.LSTM`,
    whose `inner_loop` is the lowering seam. Other layers are cloned from
    their config. The original model is not modified.

    A masked model loses its mask (`Masking` becomes the identity,
    `Embedding(mask_zero=True)` a plain lookup); callers drop the padded
    steps instead (`keras_lstm.export.masking`). A token model's copy takes
    int32 ids `(batch_size, timesteps)`.

    Args:
        model: A built Keras model with one input `(batch, time, features)`,
            or `(batch, time)` token ids read by an Embedding.
        batch_size: The file's fixed batch size.
        timesteps: The file's fixed sequence length (1 for streaming).
        input_shapes: Instead of `timesteps`, for a model with several
            inputs: each input's shape without the batch axis, fixed.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: if the model is subclassed or a layer cannot be cloned.
    """
    models.require_graph_model(model)
    # (features,) for float sequences, () for token ids (int32 in the file
    # whatever the Keras input's dtype: the Embedding casts to int32).
    step_shape = tuple(model.inputs[0].shape[2:])
    dtype = "int32" if not step_shape else model.inputs[0].dtype
    pairs = []

    def clone(layer):
        if isinstance(layer, keras.layers.Bidirectional):
            new = keras.layers.Bidirectional(
                _lstm_or_clone(layer.forward_layer),
                backward_layer=_lstm_or_clone(layer.backward_layer),
                merge_mode=layer.merge_mode,
                name=layer.name,
            )
            # Bidirectional rebuilds its layers from their configs.
            pairs.append((layer.forward_layer, new.forward_layer))
            pairs.append((layer.backward_layer, new.backward_layer))
            return new
        new = substitutes.substitute(layer) or _lstm_or_clone(layer)
        # Keras 3 records a mask's computation (Embedding's NotEqual) as an
        # operation of the functional graph; operations hold no weights.
        if isinstance(layer, keras.layers.Layer):
            pairs.append((layer, new))
        return new

    if input_shapes is None:
        inputs = keras.Input(
            batch_shape=(batch_size, timesteps, *step_shape), dtype=dtype
        )
    else:
        inputs = [
            keras.Input(batch_shape=(batch_size, *shape), dtype=tensor.dtype)
            for shape, tensor in zip(input_shapes, model.inputs, strict=True)
        ]
        # clone_model wants the structure of model.input.
        inputs = inputs if len(inputs) > 1 else inputs[0]
    try:
        copy = keras.models.clone_model(
            model, input_tensors=inputs, clone_function=clone, recursive=True
        )
    except (ValueError, TypeError, NotImplementedError) as error:
        raise ValueError(
            f"Could not rebuild model {model.name!r} with input shape(s) "
            f"{[tuple(i.shape) for i in keras.tree.flatten(inputs)]} for "
            f"export: {error}"
        ) from error
    for old, new in pairs:
        new.set_weights(old.get_weights())
        # Preprocessing layers (Normalization, ...) compute the tensors
        # they use from their variables in `finalize_state`, which Keras
        # calls after `adapt` and after loading, not after `set_weights`.
        for layer in [new, *models.iter_layers(new)]:
            if callable(getattr(layer, "finalize_state", None)):
                layer.finalize_state()
    return copy


def _lstm_or_clone(layer):
    if models.is_lstm_layer(layer):
        return _lstm_from(layer)
    if isinstance(layer, keras.layers.Embedding):
        return TokenLookup.from_embedding(layer)
    if masking.is_mask_layer(layer):
        return _without_mask(layer)
    try:
        return layer.__class__.from_config(layer.get_config())
    except Exception as error:  # Layers raise anything from from_config.
        raise ValueError(
            f"Could not clone layer {layer.name!r} "
            f"({type(layer).__name__}) from its config for export: {error}. "
            "Give it a complete get_config()."
        ) from error


def _without_mask(layer):
    """`Masking` as the identity: the fused LSTM has no mask input.

    Its zeroing of padded steps is moot: callers drop them (see
    `keras_lstm.export.masking`).
    """
    return keras.layers.Identity(name=layer.name)


class TokenLookup(keras.layers.Layer):
    """`keras.layers.Embedding` for export: one builtin GATHER, no mask.

    Keras's TensorFlow `take` first maps negative ids with LESS, ADD and
    SELECT, and TFLite Micro has no SELECT kernel; ids are checked to lie in
    `[0, input_dim)` before they reach the file
    (`keras_lstm.export.inputs`), where the plain gather gives the same
    rows. The mask (`mask_zero=True`) is dropped: callers drop padded steps
    (`keras_lstm.export.masking`).

    Args:
        input_dim: Vocabulary size.
        output_dim: Embedding width.
    """

    def __init__(self, input_dim, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)

    @classmethod
    def from_embedding(cls, layer):
        """A lookup with `layer`'s name and table shape (weights follow)."""
        if getattr(layer, "quantization_mode", None) or getattr(
            layer, "lora_enabled", False
        ):
            raise ValueError(
                f"Embedding {layer.name!r} is quantized or has LoRA weights; "
                "export the float table (merge LoRA weights first) and "
                "let to_tflite quantize it."
            )
        return cls(layer.input_dim, layer.output_dim, name=layer.name)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim), name="embeddings"
        )

    def call(self, inputs):
        return tf.gather(self.embeddings, tf.cast(inputs, tf.int32))

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
        }
