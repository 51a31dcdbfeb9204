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

`lstm_sequence`, `parallel_matmul` and `split_for_parallel_matmul` are
TensorFlow code and live in `keras_lstm.tf_sequence`; they are still
reachable here (imported on first use) for callers written before the move.
"""

import collections

from keras import ops

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
        kernel: `(features, 4 * units)`.
        bias: `(4 * units,)` or `None`.
        mask: `None` or one `(batch, features)` mask (implementation 2), or
            a list of 4 masks, any of them `None` for no dropout
            (implementation 1).

    Returns:
        `(projected, bias)`: the bias still to add after `h U` (pass it to
        `lstm_step`), or `None` when `projected` already holds it.
    """
    if mask is None:
        return project_inputs(inputs, kernel), bias
    if not isinstance(mask, (list, tuple)):
        return project_inputs(inputs * mask, kernel), bias
    kernels = ops.split(kernel, 4, axis=1)
    biases = [None] * 4 if bias is None else ops.split(bias, 4)
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
        h_prev: `(batch, units)`.
        recurrent_kernel: `(units, 4 * units)`.
        masks: `None` for implementation 2, or a list of 4 recurrent-dropout
            masks, any of them `None` for no dropout (implementation 1).

    Returns:
        `None` when `masks` is `None`, so that `lstm_step` computes the
        plain `h_{t-1} U`; otherwise `[h_{t-1} ⊙ m_g] U_g` side by side.
    """
    if masks is None:
        return None
    kernels = ops.split(recurrent_kernel, 4, axis=1)
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
            (`keras_lstm.tf_sequence.parallel_matmul`), which are then
            used gate by gate.

    Returns:
        An `LSTMGates` tuple holding the four gates and the new `c` and `h`.
    """
    if recurrent_projection is None:
        recurrent_projection = ops.matmul(h_prev, recurrent_kernel)
    if isinstance(recurrent_projection, (list, tuple)):
        # Gate by gate, the same element-wise sums as below: each gate's
        # activation waits only for its own product.
        biases = [None] * 4 if bias is None else ops.split(bias, 4)
        z_i, z_f, z_c, z_o = [
            ops.add(x, r) if b is None else ops.add(ops.add(x, r), b)
            for x, r, b in zip(
                ops.split(projected_input, 4, axis=-1),
                recurrent_projection,
                biases,
                strict=True,
            )
        ]
    else:
        z = ops.add(projected_input, recurrent_projection)
        if bias is not None:
            z = ops.add(z, bias)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
    input_gate = recurrent_activation(z_i)
    forget_gate = recurrent_activation(z_f)
    candidate = activation(z_c)
    output_gate = recurrent_activation(z_o)
    c = forget_gate * c_prev + input_gate * candidate
    h = output_gate * activation(c)
    return LSTMGates(forget_gate, input_gate, candidate, output_gate, c, h)
