"""`keras_lstm.LSTM`'s PyTorch path without cuDNN: Keras's numbers, faster.

PyTorch only: `keras_lstm.LSTM` imports this module only on the torch
backend. Without cuDNN, `keras.layers.LSTM` on PyTorch runs its backend's
fallback (`_fallback_lstm` in Keras's torch backend, reached through the
backend's `lstm(...)`): the input part `x_t W + b` of every step in one
product, then per step

    z_t = (x_t W + b) + h_{t-1} U
    c_t = σ(z_f) ⊙ c_{t-1} + σ(z_i) ⊙ tanh(z_c)
    h_t = σ(z_o) ⊙ tanh(c_t)

`lstm_sequence` does the same float32 operations in the same order, with
the step written once, in `recurrence.lstm_step`, so its outputs are
Keras's bit for bit. It differs in one thing: Keras's loop reads step `t`
as `x_proj[t]`, whose gradient is a full `(time, batch, 4 * units)` tensor
of zeros per step; `lstm_sequence` walks `unbind`'s views, whose gradient
is one stack, a much cheaper backward pass (`benchmarks/backends.py`
measures it; `benchmarks/results/backends.md`).

Without gradient tracking there is no backward pass to save, and Keras's
fallback, plain torch calls, has less per-step overhead than `keras.ops`;
`keras_lstm.LSTM` then calls it through the same seam as Keras.

PyTorch's own fused kernel (`torch._VF.lstm`, behind `torch.nn.LSTM`) is
faster still, but it rounds differently, up to 9e-3 from
`keras.layers.LSTM` on the parity suite's near-chaotic weights, past the
suite's 1e-6, so `keras_lstm` does not use it.
"""

import torch
from keras import ops

from keras_lstm import recurrence


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
):
    """Runs the LSTM over a batch-major sequence in Keras's torch order.

    Args:
        inputs: `(batch, time, features)`.
        h0: `(batch, units)` initial hidden state.
        c0: `(batch, units)` initial cell state.
        kernel: `(features, 4 * units)`, Keras's layout.
        recurrent_kernel: `(units, 4 * units)`.
        activation: the cell's activation (candidate and `tanh(c_t)`).
        recurrent_activation: the cell's gate activation.
        bias: optional `(4 * units,)`.
        go_backwards: process the sequence from its last step to its first;
            the outputs are then in processing (reversed) order, as in Keras.
        return_sequences: whether to return the output of every step.

    Returns:
        `(last_output, outputs, h, c)` as `tf_sequence.lstm_sequence`:
        `outputs` is `(batch, time, units)`, or `(batch, 1, units)` holding
        the last output when `return_sequences` is false.
    """
    # convert_to_tensor of a Keras variable is its torch parameter, so
    # autograd reaches the variables.
    kernel = ops.convert_to_tensor(kernel)
    recurrent_kernel = ops.convert_to_tensor(recurrent_kernel)
    dtype = kernel.dtype
    inputs = ops.convert_to_tensor(inputs).to(dtype)
    h = ops.convert_to_tensor(h0).to(dtype)
    c = ops.convert_to_tensor(c0).to(dtype)
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    # Time-major, as Keras's fallback: the same product, the same sums.
    projected = torch.matmul(inputs.permute(1, 0, 2), kernel)
    if bias is not None:
        projected = projected + ops.convert_to_tensor(bias).to(dtype)
    outputs = []
    for projected_t in projected.unbind(0):
        step = recurrence.lstm_step(
            projected_t,
            h,
            c,
            recurrent_kernel,
            activation,
            recurrent_activation,
        )
        h, c = step.h, step.c
        if return_sequences:
            outputs.append(h)
    if return_sequences:
        sequence = torch.stack(outputs, dim=1)
    else:
        sequence = h[:, None, :]
    return h, sequence, h, c
