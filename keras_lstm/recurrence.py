"""The LSTM recurrence, written once.

Every implementation in this package computes a step through `lstm_step`:
the Keras 3 cell (Keras's RNN loop); `lstm_sequence`, which is both
`keras_lstm.LSTM`'s fast path and the body of the function that TFLite fuses
into `UNIDIRECTIONAL_SEQUENCE_LSTM`; the tf_keras twin used for QAT; gate
introspection. There is no second copy of the gate math.

Weights follow Keras: `kernel (input_dim, 4 * units)`,
`recurrent_kernel (units, 4 * units)`, `bias (4 * units,)`, gates in the order
input, forget, candidate, output.
"""

import collections

import tensorflow as tf

LSTMGates = collections.namedtuple(
    "LSTMGates",
    ["forget_gate", "input_gate", "candidate", "output_gate", "c", "h"],
)
LSTMGates.__doc__ = """Gate activations and new state of one LSTM step.

All fields have shape `(batch, units)`.
"""


def project_inputs(inputs, kernel, bias=None):
    """Input part of the gate pre-activations: `x W + b`.

    Works on one step `(batch, features)` or a whole sequence
    `(batch, time, features)`: computing it for every step in one matrix
    product leaves only `h U` inside the recurrence.
    """
    if len(inputs.shape) == 2:
        projected = tf.matmul(inputs, kernel)
    else:
        # One (batch * time, features) product; reshape keeps it a plain
        # MatMul, which einsum did not always lower to.
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
        projected = tf.reshape(
            tf.matmul(flat, kernel), tf.concat([shape[:2], [-1]], 0)
        )
    if bias is not None:
        projected = projected + bias
    return projected


def project_inputs_with_dropout(inputs, kernel, bias, mask):
    """`x_t W` for one step under Keras's input-dropout layouts.

    Keras draws one input mask for all four gates, or, once recurrent
    dropout is on (its `implementation=1`), one mask per gate, and then adds
    each gate's bias right away: `x_g = (x ⊙ m_g) W_g + b_g`.

    Args:
        inputs: `(batch, features)`.
        kernel: `(features, 4 * units)`.
        bias: `(4 * units,)` or `None`.
        mask: `None`, one `(batch, features)` mask, or a list of 4.

    Returns:
        `(projected, bias)`: the bias still to add after `h U` (pass it to
        `lstm_step`), or `None` when `projected` already holds it.
    """
    if mask is None:
        return project_inputs(inputs, kernel), bias
    if not isinstance(mask, (list, tuple)):
        return project_inputs(inputs * mask, kernel), bias
    kernels = tf.split(kernel, 4, axis=1)
    biases = [None] * 4 if bias is None else tf.split(bias, 4)
    projected = tf.concat(
        [
            project_inputs(inputs * m, k, b)
            for m, k, b in zip(mask, kernels, biases, strict=True)
        ],
        axis=-1,
    )
    return projected, None


def project_recurrent_with_dropout(h_prev, recurrent_kernel, masks):
    """`h_{t-1} U` with one recurrent-dropout mask per gate, or `None`.

    Returns `None` when `masks` is `None`, so that `lstm_step` computes the
    plain `h_{t-1} U`.
    """
    if masks is None:
        return None
    kernels = tf.split(recurrent_kernel, 4, axis=1)
    return tf.concat(
        [tf.matmul(h_prev * m, u) for m, u in zip(masks, kernels, strict=True)],
        axis=-1,
    )


def split_for_parallel_matmul(kernel, parts=4):
    """Pre-splits `kernel` for `parallel_matmul`, once, outside a loop.

    Args:
        kernel: `(rows, columns)`; `columns` divisible by `parts`.
        parts: how many independent products to run.

    Returns:
        `(column_blocks, row_blocks)`: `kernel` cut into `parts` blocks of
        columns (for the product) and into at most `parts` blocks of rows
        (for the gradient with respect to the input).
    """
    rows = kernel.shape[0]
    row_parts = max(1, min(parts, rows))
    row_sizes = [
        rows // row_parts + (1 if i < rows % row_parts else 0)
        for i in range(row_parts)
    ]
    return (
        tuple(tf.split(kernel, parts, axis=1)),
        tuple(tf.split(kernel, row_sizes, axis=0)),
    )


def parallel_matmul(inputs, kernel, blocks):
    """`inputs @ kernel` as independent column-block products run side by side.

    For `h_{t-1} U` with `U` cut into its four gate blocks, the products are
    `h_{t-1} U_g`. On CPU, TensorFlow's executor runs them at once, one per
    core, and each gate's activation can start as soon as its own product is
    done. On 2 cores a single (64, 128) x (128, 512) product split across
    threads ran at about 50 GFLOP/s; four (128, 128) blocks side by side
    made the layer 1.6-1.8x faster at inference (`benchmarks/speed.py`).
    Which is faster depends on the product shape: see `PARALLEL_MIN_UNITS`
    and `benchmarks/results/units_sweep.md`.

    The gradient keeps the sums of the single product: the gradient with
    respect to `inputs` contracts over all columns at once (cut by rows of
    `kernel`, which splits only its output) rather than adding per-block
    partial products, whose different rounding a recurrence amplifies over
    long sequences; the gradient with respect to `kernel` is one product,
    as for `tf.matmul`.

    Args:
        inputs: `(batch, rows)`.
        kernel: `(rows, columns)`.
        blocks: `split_for_parallel_matmul(kernel)`.

    Returns:
        A tuple of column blocks whose concatenation equals `inputs @ kernel`
        up to float32 rounding.
    """
    column_blocks, row_blocks = blocks

    @tf.custom_gradient
    def product(inputs, kernel):
        outputs = [tf.matmul(inputs, block) for block in column_blocks]

        def grad(*d_outputs):
            d_outputs = tf.concat(d_outputs, axis=-1)
            d_inputs = tf.concat(
                [
                    tf.matmul(d_outputs, block, transpose_b=True)
                    for block in row_blocks
                ],
                axis=-1,
            )
            d_kernel = tf.matmul(inputs, d_outputs, transpose_a=True)
            return d_inputs, d_kernel

        return outputs, grad

    return tuple(product(inputs, kernel))


def lstm_step(
    projected_input,
    h_prev,
    c_prev,
    recurrent_kernel,
    activation,
    recurrent_activation,
    bias=None,
    recurrent_projection=None,
):
    """One LSTM step from a pre-projected input.

    With `z = x_t W + h_{t-1} U + b` split into four blocks of `units`:

        i_t  = σ(z_i)                    input gate
        f_t  = σ(z_f)                    forget gate
        c̃_t  = tanh(z_c)                 candidate cell state
        o_t  = σ(z_o)                    output gate
        c_t  = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        h_t  = o_t ⊙ tanh(c_t)

    where σ is `recurrent_activation` and tanh is `activation`.

    Args:
        projected_input: `(batch, 4 * units)`, the input part `x_t W`.
        h_prev: `(batch, units)`, the previous hidden state `h_{t-1}`.
        c_prev: `(batch, units)`, the previous cell state `c_{t-1}`.
        recurrent_kernel: `(units, 4 * units)`, the matrix `U`.
        activation: callable used for the candidate and for `tanh(c_t)`.
        recurrent_activation: callable used for the three gates.
        bias: optional `(4 * units,)`, added last. Keras adds the bias after
            `x W + h U`; keeping its order keeps results within float32
            rounding of `keras.layers.LSTM` over long sequences. Pass `None`
            when `projected_input` already holds it.
        recurrent_projection: optional `h_{t-1} U`, either as one
            `(batch, 4 * units)` tensor (callers that mask `h_{t-1}` per
            gate for recurrent dropout) or as its four gate blocks
            (`parallel_matmul`), which are then used gate by gate.

    Returns:
        An `LSTMGates` tuple holding the four gates and the new `c` and `h`.
    """
    if recurrent_projection is None:
        recurrent_projection = tf.matmul(h_prev, recurrent_kernel)
    if isinstance(recurrent_projection, (list, tuple)):
        # Gate by gate, the same element-wise sums as below: each gate's
        # activation waits only for its own product.
        biases = [None] * 4 if bias is None else tf.split(bias, 4)
        z_i, z_f, z_c, z_o = [
            x + r if b is None else (x + r) + b
            for x, r, b in zip(
                tf.split(projected_input, 4, axis=-1),
                recurrent_projection,
                biases,
                strict=True,
            )
        ]
    else:
        z = projected_input + recurrent_projection
        if bias is not None:
            z = z + bias
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
    input_gate = recurrent_activation(z_i)
    forget_gate = recurrent_activation(z_f)
    candidate = activation(z_c)
    output_gate = recurrent_activation(z_o)
    c = forget_gate * c_prev + input_gate * candidate
    h = output_gate * activation(c)
    return LSTMGates(forget_gate, input_gate, candidate, output_gate, c, h)


def lstm_sequence(
    inputs,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    activation,
    recurrent_activation,
    bias=None,
    go_backwards=False,
    return_sequences=True,
    parallel_gates=False,
):
    """Runs `lstm_step` over a whole sequence.

    Each step projects its input, `x_t W`, then calls `lstm_step`: the
    products, their shapes and the order of the additions are those of
    `keras.layers.LSTM`'s loop. (Projecting all steps in one product before
    the loop changes the rounding of `x_t W`, which a long recurrence
    amplifies past 1e-6.)

    It is the body of the function that TFLite's converter replaces
    wholesale by `UNIDIRECTIONAL_SEQUENCE_LSTM` (`keras_lstm.export.lowering`)
    and what that function computes wherever TensorFlow runs it; with
    `parallel_gates` it is also `keras_lstm.LSTM`'s fast path.

    Args:
        inputs: `(batch, time, features)`.
        h0: `(batch, units)` initial hidden state.
        c0: `(batch, units)` initial cell state.
        kernel: `(features, 4 * units)`.
        recurrent_kernel: `(units, 4 * units)`.
        activation: callable, as in `lstm_step`.
        recurrent_activation: callable, as in `lstm_step`.
        bias: optional `(4 * units,)`, as in `lstm_step`.
        go_backwards: process the sequence from its last step to its first;
            the outputs are then in processing (reversed) order, as in Keras.
        return_sequences: whether to collect the output of every step.
        parallel_gates: compute `h_{t-1} U` as four gate products that run
            side by side (`parallel_matmul`).

    Returns:
        `(last_output, outputs, h, c)`. `outputs` is `(batch, time, units)`
        when `return_sequences`, else `last_output[:, None, :]`.
    """
    time_major = tf.transpose(inputs, [1, 0, 2])
    if go_backwards:
        time_major = tf.reverse(time_major, [0])
    steps = tf.shape(time_major)[0]
    inputs_ta = tf.TensorArray(
        time_major.dtype, size=steps, element_shape=time_major.shape[1:]
    ).unstack(time_major)
    # Without return_sequences nothing but the last h is kept.
    outputs_ta = (
        tf.TensorArray(h0.dtype, size=steps, element_shape=h0.shape)
        if return_sequences
        else ()
    )

    blocks = (
        split_for_parallel_matmul(recurrent_kernel) if parallel_gates else None
    )

    def body(t, h, c, outputs_ta):
        gates = lstm_step(
            project_inputs(inputs_ta.read(t), kernel),
            h,
            c,
            recurrent_kernel,
            activation,
            recurrent_activation,
            bias=bias,
            recurrent_projection=(
                parallel_matmul(h, recurrent_kernel, blocks)
                if parallel_gates
                else None
            ),
        )
        if return_sequences:
            outputs_ta = outputs_ta.write(t, gates.h)
        return t + 1, gates.h, gates.c, outputs_ta

    _, h, c, outputs_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, outputs_ta),
        # Lets TensorArray reads of later steps run ahead of the recurrence,
        # as Keras's own loop does; parallel_iterations=1 ran 2x slower.
        parallel_iterations=32,
        # A known trip count lets the gradient preallocate its per-step
        # accumulators instead of growing TensorLists.
        maximum_iterations=steps,
    )
    if return_sequences:
        outputs = tf.transpose(outputs_ta.stack(), [1, 0, 2])
    else:
        outputs = h[:, None, :]
    return h, outputs, h, c
