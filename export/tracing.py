"""Stage 2 of `to_tflite`: lower the model and trace what the converter reads.

`trace(plan)` rebuilds the model with `keras_lstm.LSTM` layers and fixed
shapes (`lowering.export_model`) and traces it into one concrete function
under a lowering of its LSTM calls (`keras_lstm.layers.lowering`), chosen
by the plan's `StateLowering`:

- `FUSED`: every LSTM call becomes a function TFLite's converter fuses
  into `UNIDIRECTIONAL_SEQUENCE_LSTM` (`lowering.fused_sequence`), counted
  so that the file's fused ops can be checked against it;
- `EXTERNAL`: one frame through the shared `lstm_step`, the state as
  explicit inputs `h_i`, `c_i` and outputs `h_i_out`, `c_i_out`
  (`lowering.ExternalStateStep`);
- `EXPLICIT`: named inputs and outputs; LSTMs that take or return state
  are unrolled, the others fused (`lowering.StateLowering`).
"""

import dataclasses

import keras
import tensorflow as tf

from keras_lstm.export import contract, lowering
from keras_lstm.export.plan import Plan, StateLowering
from keras_lstm.layers import lowering as lowering_scope


@dataclasses.dataclass(frozen=True)
class Traced:
    """A lowered model, traced for the converter.

    Attributes:
        export: The lowered Keras model (its variables are the weights).
        function: The `tf.function` to convert.
        concrete: Its concrete function.
        fused_calls: LSTM calls lowered to the fused op, which the file
            must hold one fused op each for.
        unrolled_calls: LSTM calls unrolled into builtin ops.
        state_inputs: For an external-state step, its explicit state
            inputs `((h_in, c_in), ...)` per LSTM; empty otherwise.
        variants: The LSTM variants lowered to the plain fused op, whose
            extra operands `rewrite.write_lstm_variants` writes in
            (`lowering.LoweredVariant`).
    """

    export: keras.Model
    function: tf.types.experimental.GenericFunction
    concrete: tf.types.experimental.ConcreteFunction
    fused_calls: int
    unrolled_calls: int = 0
    state_inputs: tuple = ()
    variants: list = dataclasses.field(default_factory=list)


def trace(plan: Plan) -> Traced:
    """The plan's model, lowered and traced (see the module docstring)."""
    if plan.state is StateLowering.EXPLICIT:
        return _trace_named(plan)
    export = lowering.export_model(
        plan.model, batch_size=plan.batch_size, timesteps=plan.file_steps
    )
    # A masked model's LSTMs run on valid steps only: they drop the mask.
    seam = lowering.without_mask if plan.padding else (lambda f: f)
    data_spec = tf.TensorSpec(
        (plan.batch_size, plan.file_steps, *plan.input.step_shape),
        plan.input.dtype,
        name=contract.FRAME if plan.streaming else contract.SEQUENCES,
    )
    if plan.state is StateLowering.FUSED:
        return _trace_fused(export, seam, data_spec)
    return _trace_external(export, seam, data_spec, plan.batch_size)


class _CountingLowering:
    """`fused_sequence`, counting the LSTM calls it lowers and collecting
    the variants among them."""

    def __init__(self):
        self.calls = 0
        self.variants = []

    def __call__(self, *args):
        self.calls += 1
        return lowering.fused_sequence(*args, variants=self.variants)


def _trace_fused(export, seam, data_spec):
    counter = _CountingLowering()

    def serve(x):
        with lowering_scope(seam(counter)):
            return {contract.OUTPUT: export(x, training=False)}

    function = tf.function(serve, input_signature=[data_spec])
    concrete = function.get_concrete_function()
    return Traced(
        export,
        function,
        concrete,
        fused_calls=counter.calls,
        variants=counter.variants,
    )


def _trace_external(export, seam, data_spec, batch_size):
    # First pass: which LSTM layers run, in which order, with which units.
    discovery = lowering.ExternalStateStep()
    with lowering_scope(seam(discovery)):
        tf.function(lambda x: export(x, training=False)).get_concrete_function(
            data_spec
        )
    specs = [data_spec]
    for index, layer in enumerate(discovery.layers):
        # h has the layer's h_dim (projection_units under a projection).
        for name, size in zip(
            contract.state_names(index)[0], layer.cell.state_size, strict=True
        ):
            specs.append(
                tf.TensorSpec((batch_size, size), tf.float32, name=name)
            )

    def serve_step(frame, *states):
        pairs = list(zip(states[0::2], states[1::2], strict=True))
        step = lowering.ExternalStateStep(pairs)
        with lowering_scope(seam(step)):
            results = {contract.OUTPUT: export(frame, training=False)}
        for index, (h, c) in enumerate(step.new_states):
            h_name, c_name = contract.state_names(index)[1]
            results[h_name] = tf.identity(h)
            results[c_name] = tf.identity(c)
        return results

    function = tf.function(serve_step, input_signature=specs)
    concrete = function.get_concrete_function()
    return Traced(
        export,
        function,
        concrete,
        fused_calls=0,
        unrolled_calls=len(discovery.layers),
        state_inputs=tuple(
            contract.state_names(index)[0]
            for index in range(len(discovery.layers))
        ),
    )


def _trace_named(plan):
    export = lowering.export_model(
        plan.model, batch_size=plan.batch_size, input_shapes=list(plan.shapes)
    )
    specs = [
        tf.TensorSpec((plan.batch_size, *shape), tf.float32, name=name)
        for name, shape in zip(plan.names_in, plan.shapes, strict=True)
    ]
    lowerings = []

    def serve(*inputs):
        state_lowering = lowering.StateLowering()
        lowerings.append(state_lowering)
        model_inputs = list(inputs) if len(inputs) > 1 else inputs[0]
        with lowering_scope(state_lowering):
            outputs = keras.tree.flatten(export(model_inputs, training=False))
        # An identity per output: an encoder's last output and h are one
        # tensor, and each signature output needs its own name.
        return {
            name: tf.identity(output, name=name)
            for name, output in zip(plan.names_out, outputs, strict=True)
        }

    function = tf.function(serve, input_signature=specs)
    concrete = function.get_concrete_function()
    return Traced(
        export,
        function,
        concrete,
        fused_calls=lowerings[-1].fused,
        unrolled_calls=len(lowerings[-1].unrolled),
    )
