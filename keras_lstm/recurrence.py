"""The LSTM recurrence, written once, in `keras.ops`.

Every implementation in this package computes a step through `lstm_step`:
the Keras 3 cell (Keras's RNN loop, on every backend);
`keras_lstm.tf_sequence.lstm_sequence`, which is both `keras_lstm.LSTM`'s
TensorFlow CPU fast path and the body of the function that TFLite fuses into
`UNIDIRECTIONAL_SEQUENCE_LSTM`; the tf_keras twin used for QAT; gate
introspection. There is no second copy of the gate math. (The backends'
fused kernels, cuDNN and PyTorch's CPU LSTM, compute the same equations in
their own code; `keras_lstm.LSTM` routes to them only where
`keras.layers.LSTM` would, or where they give its numbers within float32
rounding.)

Weights follow Keras: `kernel (input_dim, 4 * units)`,
`recurrent_kernel (units, 4 * units)`, `bias (4 * units,)`, gates in the order
input, forget, candidate, output.

The variants of TFLite's LSTM kernel (peepholes, the coupled input-forget
gate, layer normalisation, a projection, clipping) are options of the same
step, described by an `LSTMVariant`; without one the step is the plain LSTM,
operation for operation.
"""

import collections

from keras import ops

LSTMGates = collections.namedtuple(
    "LSTMGates",
    ["input_gate", "forget_gate", "candidate", "output_gate", "c", "h"],
)
LSTMGates.__doc__ = """Gate activations and new state of one LSTM step.

In the order of the equations and of the kernel's gate blocks: `i, f, c̃, o`,
then the new `c` and `h`. All fields have shape `(batch, units)`, except `h`
under a projection: `(batch, projection_units)`. Under the coupled
input-forget gate, `input_gate` is `1 - forget_gate`.
"""

# TFLite's layer-norm LSTM adds this to the variance
# (`PortableMeanStddevNormalization` in `tensor_utils`).
LAYER_NORM_EPSILON = 1e-8

LSTMVariant = collections.namedtuple(
    "LSTMVariant",
    [
        "coupled_input_forget",
        "peephole_kernel",
        "layer_norm_scale",
        "projection_kernel",
        "projection_bias",
        "cell_clip",
        "projection_clip",
    ],
    defaults=(False, None, None, None, None, None, None),
)
LSTMVariant.__doc__ = """The extra weights and options of an LSTM variant.

Every field left at its default turns its variant off; `LSTMVariant()` is
the plain LSTM.

Attributes:
    coupled_input_forget: Boolean. CIFG: there is no input-gate block
        (`G = 3` gate blocks, in the order f, c̃, o) and `i = 1 - f`.
    peephole_kernel: `None`, or `(P, units)`: the peephole diagonals, rows
        in the order (i, f, o), or (f, o) under CIFG.
    layer_norm_scale: `None`, or `(G, units)`: the layer-norm coefficients
        γ, rows in the kernel's gate order.
    projection_kernel: `None`, or `(units, projection_units)`.
    projection_bias: `None`, or `(projection_units,)`.
    cell_clip: `None`, or a positive float: `c_t` is clipped to
        `[-cell_clip, cell_clip]`.
    projection_clip: `None`, or a positive float: the projected `h_t` is
        clipped to `[-projection_clip, projection_clip]`.
"""


def gate_count(variant=None):
    """How many gate blocks the kernels hold: 4, or 3 under CIFG.

    `variant` is an `LSTMVariant`, a cell (anything with a
    `coupled_input_forget` attribute), or `None` for the plain LSTM.
    """
    return 3 if variant is not None and variant.coupled_input_forget else 4


def project_inputs(inputs, kernel, bias=None):
    """Input part of the gate pre-activations: `x W + b`.

    Works on one step `(batch, features)` or a whole sequence
    `(batch, time, features)`: computing it for every step in one matrix
    product leaves only `h U` inside the recurrence.
    """
    if len(inputs.shape) == 2:
        projected = ops.matmul(inputs, kernel)
    else:
        # One (batch * time, features) product; reshape keeps it a plain
        # MatMul, which einsum did not always lower to.
        shape = ops.shape(inputs)
        flat = ops.reshape(inputs, (-1, inputs.shape[-1]))
        projected = ops.reshape(
            ops.matmul(flat, kernel), (shape[0], shape[1], -1)
        )
    if bias is not None:
        projected = ops.add(projected, bias)
    return projected


def project_inputs_with_dropout(inputs, kernel, bias, mask):
    """`x_t W` for one step under Keras's two layouts.

    Keras's `implementation=2` draws one input mask for all four gates:
    `x W`, with the bias added after `h U`. Its `implementation=1` (forced
    once recurrent dropout is on) computes each gate on its own, with one
    mask per gate, and adds each gate's bias right away:
    `x_g = (x ⊙ m_g) W_g + b_g`.

    Args:
        inputs: `(batch, features)`.
        kernel: `(features, G * units)`, G gate blocks (4, or 3 under CIFG).
        bias: `(G * units,)` or `None`.
        mask: `None` or one `(batch, features)` mask (implementation 2), or
            a list of G masks, one per gate block, any of them `None` for no
            dropout (implementation 1).

    Returns:
        `(projected, bias)`: the bias still to add after `h U` (pass it to
        `lstm_step`), or `None` when `projected` already holds it.
    """
    if mask is None:
        return project_inputs(inputs, kernel), bias
    if not isinstance(mask, (list, tuple)):
        return project_inputs(inputs * mask, kernel), bias
    kernels = ops.split(kernel, len(mask), axis=1)
    biases = [None] * len(mask) if bias is None else ops.split(bias, len(mask))
    projected = ops.concatenate(
        [
            project_inputs(inputs if m is None else inputs * m, k, b)
            for m, k, b in zip(mask, kernels, biases, strict=True)
        ],
        axis=-1,
    )
    return projected, None


def project_recurrent_with_dropout(h_prev, recurrent_kernel, masks):
    """`h_{t-1} U` gate by gate (implementation 1), or `None`.

    Args:
        h_prev: `(batch, h_dim)`.
        recurrent_kernel: `(h_dim, G * units)`.
        masks: `None` for implementation 2, or a list of G recurrent-dropout
            masks, one per gate block, any of them `None` for no dropout
            (implementation 1).

    Returns:
        `None` when `masks` is `None`, so that `lstm_step` computes the
        plain `h_{t-1} U`; otherwise `[h_{t-1} ⊙ m_g] U_g` side by side.
    """
    if masks is None:
        return None
    kernels = ops.split(recurrent_kernel, len(masks), axis=1)
    return ops.concatenate(
        [
            ops.matmul(h_prev if m is None else h_prev * m, u)
            for m, u in zip(masks, kernels, strict=True)
        ],
        axis=-1,
    )


def lstm_step(
    projected_input,
    h_prev,
    c_prev,
    recurrent_kernel,
    activation,
    recurrent_activation,
    bias=None,
    recurrent_projection=None,
    variant=None,
    before_projection=None,
):
    """One LSTM step from a pre-projected input.

    With `z = x_t W + h_{t-1} U + b` split into four blocks of `units`:

        i_t  = σ(z_i)                    input gate
        f_t  = σ(z_f)                    forget gate
        c̃_t  = tanh(z_c)                 candidate cell state
        c_t  = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        o_t  = σ(z_o)                    output gate
        h_t  = o_t ⊙ tanh(c_t)

    where σ is `recurrent_activation` and tanh is `activation`.

    A `variant` changes the step as TFLite's LSTM kernel does
    (`lstm_eval.cc`, `LstmStepFloat`), each option on its own or combined.
    With `a_g = x_t W_g + h_{t-1} U_g`:

        peepholes   a_i += p_i ⊙ c_{t-1},  a_f += p_f ⊙ c_{t-1},
                    a_o += p_o ⊙ c_t       (the new, clipped cell state)
        layer norm  z_g = γ_g ⊙ (a_g − mean(a_g)) / sqrt(var(a_g) + 1e-8)
                          + b_g            (mean and variance over the units
                                            of each row, variance / n; the
                                            bias after, the peephole before)
                    else z_g = a_g + b_g
        CIFG        i_t = 1 − f_t          (no input-gate block)
        cell_clip   c_t = clip(c_t, −cell_clip, cell_clip)
        projection  h_t = (o_t ⊙ tanh(c_t)) P + p_b
        proj. clip  h_t = clip(h_t, −projection_clip, projection_clip)

    Without a `variant` (or with `LSTMVariant()`) the operations, and so
    the numbers, are those of the plain step above.

    Args:
        projected_input: `(batch, G * units)`, the input part `x_t W`; G is
            4, or 3 under CIFG.
        h_prev: `(batch, h_dim)`, the previous hidden state `h_{t-1}`;
            `h_dim` is `projection_units` under a projection, else `units`.
        c_prev: `(batch, units)`, the previous cell state `c_{t-1}`.
        recurrent_kernel: `(h_dim, G * units)`, the matrix `U`.
        activation: callable used for the candidate and for `tanh(c_t)`.
        recurrent_activation: callable used for the gates.
        bias: optional `(G * units,)`, added last. Keras adds the bias after
            `x W + h U`; keeping its order keeps results within float32
            rounding of `keras.layers.LSTM` over long sequences. Pass `None`
            when `projected_input` already holds it; with layer norm it
            must not (the bias follows the normalisation): pass it here.
        recurrent_projection: optional `h_{t-1} U`, either as one
            `(batch, G * units)` tensor (callers that mask `h_{t-1}` per
            gate for recurrent dropout) or as its G gate blocks
            (`keras_lstm.tf_sequence.parallel_matmul`), which are then
            used gate by gate.
        variant: optional `LSTMVariant`, the variant's weights and clips.
        before_projection: optional callable applied to `o_t ⊙ tanh(c_t)`
            before the projection (ignored without one). TFLite's integer
            kernel rounds that tensor to int8 (the op's fifth intermediate)
            before projecting it; the QAT twin passes its fake-quant here.

    Returns:
        An `LSTMGates` tuple holding the gates and the new `c` and `h`.
    """
    if variant is None:
        variant = _PLAIN
    gates = gate_count(variant)
    layer_norm = variant.layer_norm_scale is not None
    if recurrent_projection is None:
        recurrent_projection = ops.matmul(h_prev, recurrent_kernel)
    if layer_norm:
        # The bias follows the normalisation.
        biases = [None] * gates if bias is None else ops.split(bias, gates)
        bias = None
    if isinstance(recurrent_projection, (list, tuple)):
        # Gate by gate, the same element-wise sums as below: each gate's
        # activation waits only for its own product.
        split_bias = [None] * gates if bias is None else ops.split(bias, gates)
        blocks = [
            ops.add(x, r) if b is None else ops.add(ops.add(x, r), b)
            for x, r, b in zip(
                ops.split(projected_input, gates, axis=-1),
                recurrent_projection,
                split_bias,
                strict=True,
            )
        ]
    else:
        z = ops.add(projected_input, recurrent_projection)
        if bias is not None:
            z = ops.add(z, bias)
        blocks = ops.split(z, gates, axis=-1)
    # The blocks in the kernel's order; the peephole rows skip the
    # candidate, and the layer-norm rows follow the blocks.
    names = ("f", "c", "o") if variant.coupled_input_forget else "ifco"
    block = dict(zip(names, blocks, strict=True))
    gate_bias = dict(zip(names, biases, strict=True)) if layer_norm else {}
    peephole_row = {n: k for k, n in enumerate(n for n in names if n != "c")}

    def pre_activation(name, c_peep=None):
        """`z_g`: the block, plus its peephole, normalised, plus its bias."""
        a = block[name]
        if variant.peephole_kernel is not None and c_peep is not None:
            a = ops.add(a, variant.peephole_kernel[peephole_row[name]] * c_peep)
        if layer_norm:
            a = _layer_norm(a, variant.layer_norm_scale[names.index(name)])
            if gate_bias[name] is not None:
                a = ops.add(a, gate_bias[name])
        return a

    # The input gate first, as the plain step always computed it: the
    # unrolled step files keep their op order, and so their bytes.
    if not variant.coupled_input_forget:
        input_gate = recurrent_activation(pre_activation("i", c_prev))
    forget_gate = recurrent_activation(pre_activation("f", c_prev))
    if variant.coupled_input_forget:
        input_gate = 1.0 - forget_gate
    candidate = activation(pre_activation("c"))
    c = forget_gate * c_prev + input_gate * candidate
    if variant.cell_clip is not None:
        c = ops.clip(c, -variant.cell_clip, variant.cell_clip)
    output_gate = recurrent_activation(pre_activation("o", c))
    h = output_gate * activation(c)
    if variant.projection_kernel is not None:
        if before_projection is not None:
            h = before_projection(h)
        h = ops.matmul(h, variant.projection_kernel)
        if variant.projection_bias is not None:
            h = ops.add(h, variant.projection_bias)
        if variant.projection_clip is not None:
            h = ops.clip(h, -variant.projection_clip, variant.projection_clip)
    return LSTMGates(input_gate, forget_gate, candidate, output_gate, c, h)


_PLAIN = LSTMVariant()


def _layer_norm(a, scale):
    """TFLite's layer norm of one gate: over the units, variance / n."""
    mean = ops.mean(a, axis=-1, keepdims=True)
    centred = a - mean
    variance = ops.mean(ops.square(centred), axis=-1, keepdims=True)
    return scale * centred / ops.sqrt(variance + LAYER_NORM_EPSILON)
