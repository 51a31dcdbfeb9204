"""`keras_lstm.LSTM`'s TensorFlow paths and the body TFLite fuses.

TensorFlow only: `keras_lstm.LSTM` imports this module only on the
TensorFlow backend, and `keras_lstm.export` (TensorFlow by nature) for its
lowering. The step itself is `keras_lstm.recurrence.lstm_step`, the one copy
of the gate math.
"""

import tensorflow as tf

from keras_lstm import recurrence


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


def parallel_matmul(inputs, kernel, blocks, exact_gradient=True):
    """`inputs @ kernel` as independent column-block products run side by side.

    For `h_{t-1} U` with `U` cut into its four gate blocks, the products are
    `h_{t-1} U_g`. On CPU, TensorFlow's executor runs them at once, one per
    core, and each gate's activation can start as soon as its own product is
    done, where one small product split across threads pays its threading
    overhead. Which is faster depends on the product shape and the CPU: see
    `PARALLEL_MIN_UNITS` and `benchmarks/results/units_sweep.md`. Under XLA
    the executor's parallelism is gone (XLA's CPU backend runs a loop body's
    ops one after another), so the XLA route does not use it.

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
        exact_gradient: keep the single product's sums in the gradient, as
            above. `False` leaves the gradient to autodiff (the input
            gradient then adds four partial products), for the XLA route,
            which is not held to the default path's rounding.

    Returns:
        A tuple of column blocks whose concatenation equals `inputs @ kernel`
        up to float32 rounding.
    """
    column_blocks, row_blocks = blocks
    if not exact_gradient:
        return tuple(tf.matmul(inputs, block) for block in column_blocks)

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
    project_first=False,
    unroll=False,
    exact_gradient=True,
    variant=None,
):
    """Runs `recurrence.lstm_step` over a whole sequence.

    Each step projects its input, `x_t W`, then calls `lstm_step`: the
    products, their shapes and the order of the additions are those of
    `keras.layers.LSTM`'s loop. (Projecting all steps in one product before
    the loop changes the rounding of `x_t W`, which a long recurrence
    amplifies past 1e-6.)

    It is the body of the function that TFLite's converter replaces
    wholesale by `UNIDIRECTIONAL_SEQUENCE_LSTM` (`keras_lstm.export.lowering`)
    and what that function computes wherever TensorFlow runs it; with
    `parallel_gates` it is also `keras_lstm.LSTM`'s fast path, and with
    `keras_lstm.layers.XLA_OPTIONS` its route under `jit_compile=True`.

    Args:
        inputs: `(batch, time, features)`.
        h0: `(batch, h_dim)` initial hidden state (`h_dim` is
            `projection_units` under a projection, else `units`).
        c0: `(batch, units)` initial cell state.
        kernel: `(features, G * units)`, G = 4 gate blocks (3 under CIFG).
        recurrent_kernel: `(h_dim, G * units)`.
        activation: callable, as in `lstm_step`.
        recurrent_activation: callable, as in `lstm_step`.
        bias: optional `(G * units,)`, as in `lstm_step`.
        go_backwards: process the sequence from its last step to its first;
            the outputs are then in processing (reversed) order, as in Keras.
        return_sequences: whether to collect the output of every step.
        parallel_gates: compute `h_{t-1} U` as G gate products that run
            side by side (`parallel_matmul`).
        project_first: compute `x_t W` for every step in one product before
            the loop (`recurrence.project_inputs` on the whole sequence),
            leaving only `h_{t-1} U` inside it. It rounds `x_t W`
            differently from Keras's per-step product, so only the XLA
            route, whose arithmetic is XLA's anyway, uses it.
        exact_gradient: with `parallel_gates`, as in `parallel_matmul`.
        unroll: a Python loop over the (static) time axis instead of a
            `tf.while_loop`: one graph node per step, which XLA can
            schedule across steps. Needs a known number of timesteps.
        variant: optional `recurrence.LSTMVariant`, as in `lstm_step`.

    Returns:
        `(last_output, outputs, h, c)`. `outputs` is `(batch, time, h_dim)`
        when `return_sequences`, else `last_output[:, None, :]`.
    """
    if project_first:
        inputs = recurrence.project_inputs(inputs, kernel)
    time_major = tf.transpose(inputs, [1, 0, 2])
    if go_backwards:
        time_major = tf.reverse(time_major, [0])
    blocks = (
        split_for_parallel_matmul(
            recurrent_kernel, parts=recurrence.gate_count(variant)
        )
        if parallel_gates
        else None
    )

    def step(x_t, h, c):
        return recurrence.lstm_step(
            x_t if project_first else recurrence.project_inputs(x_t, kernel),
            h,
            c,
            recurrent_kernel,
            activation,
            recurrent_activation,
            bias=bias,
            recurrent_projection=(
                parallel_matmul(h, recurrent_kernel, blocks, exact_gradient)
                if parallel_gates
                else None
            ),
            variant=variant,
        )

    if unroll:
        if time_major.shape[0] is None:
            raise ValueError(
                "`unroll=True` needs a known number of timesteps, got "
                f"inputs of shape {tuple(inputs.shape)}. Give the model a "
                "fixed sequence length, or leave `unroll` off."
            )
        h, c, outputs = h0, c0, []
        for x_t in tf.unstack(time_major):
            gates = step(x_t, h, c)
            h, c = gates.h, gates.c
            outputs.append(h)
        if return_sequences:
            return h, tf.stack(outputs, axis=1), h, c
        return h, h[:, None, :], h, c

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

    def body(t, h, c, outputs_ta):
        gates = step(inputs_ta.read(t), h, c)
        if return_sequences:
            outputs_ta = outputs_ta.write(t, gates.h)
        return t + 1, gates.h, gates.c, outputs_ta

    _, h, c, outputs_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, outputs_ta),
        # Lets TensorArray reads of later steps run ahead of the recurrence,
        # as Keras's own loop does.
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
