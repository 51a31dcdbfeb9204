"""`keras_lstm.LSTM`'s PyTorch CPU fast path: PyTorch's own fused LSTM.

PyTorch only: `keras_lstm.LSTM` imports this module only on the torch
backend. On a CPU, Keras's torch `lstm` runs a Python loop over the steps;
`torch._VF.lstm` (the kernel behind `torch.nn.LSTM`) runs the same
recurrence in ATen, one `addmm` per step, with autograd through the weights.
Its equations are Keras's, with gates in the same order (i, f, g, o):

    z_t = (x_t W + b) + h_{t-1} U
    c_t = σ(z_f) ⊙ c_{t-1} + σ(z_i) ⊙ tanh(z_c)
    h_t = σ(z_o) ⊙ tanh(c_t)

so it serves only `tanh` / `sigmoid` layers (`supports`), as cuDNN does.
"""

import keras
import torch
from keras import ops

_TANH = (keras.activations.tanh, ops.tanh, torch.tanh)
_SIGMOID = (keras.activations.sigmoid, ops.sigmoid, torch.sigmoid)


def supports(activation, recurrent_activation):
    """Whether PyTorch's fused LSTM computes these activations."""
    return activation in _TANH and recurrent_activation in _SIGMOID


def lstm_sequence(
    inputs,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias=None,
    go_backwards=False,
    return_sequences=True,
):
    """Runs PyTorch's fused LSTM over a batch-major sequence.

    Args:
        inputs: `(batch, time, features)`.
        h0: `(batch, units)` initial hidden state.
        c0: `(batch, units)` initial cell state.
        kernel: `(features, 4 * units)`, Keras's layout.
        recurrent_kernel: `(units, 4 * units)`.
        bias: optional `(4 * units,)`.
        go_backwards: process the sequence from its last step to its first;
            the outputs are then in processing (reversed) order, as in Keras.
        return_sequences: whether to return the output of every step.

    Returns:
        `(last_output, outputs, h, c)` as `tf_sequence.lstm_sequence`.
    """
    kernel = ops.convert_to_tensor(kernel)
    recurrent_kernel = ops.convert_to_tensor(recurrent_kernel)
    dtype = kernel.dtype
    inputs = ops.convert_to_tensor(inputs).to(dtype)
    h0 = ops.convert_to_tensor(h0).to(dtype)
    c0 = ops.convert_to_tensor(c0).to(dtype)
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    # PyTorch keeps W and U as (4 * units, in); `.T` of a Keras variable
    # keeps autograd to the variable.
    params = [kernel.T.contiguous(), recurrent_kernel.T.contiguous()]
    if bias is not None:
        bias = ops.convert_to_tensor(bias).to(dtype)
        # PyTorch adds two biases; the second, zero, adds nothing exactly.
        params += [bias, torch.zeros_like(bias)]
    outputs, h, c = torch._VF.lstm(
        inputs,
        (h0[None], c0[None]),
        params,
        bias is not None,  # has_biases
        1,  # num_layers
        0.0,  # dropout (Keras's input dropout is applied by the caller)
        torch.is_grad_enabled(),  # train
        False,  # bidirectional
        True,  # batch_first
    )
    h, c = h[0], c[0]
    if not return_sequences:
        outputs = h[:, None, :]
    return h, outputs, h, c
