"""Gate introspection: what the four gates did, step by step."""

import keras
import numpy as np
from keras import ops

from keras_lstm import recurrence
from keras_lstm.layers import LSTMCell


def _cell_and_direction(layer):
    if isinstance(layer, keras.layers.RNN):
        cell = layer.cell
        go_backwards = layer.go_backwards
    else:
        cell, go_backwards = layer, False
    if not isinstance(cell, (LSTMCell, keras.layers.LSTMCell)):
        raise TypeError(
            "`layer` must be a keras_lstm.LSTM, keras_lstm.LSTMCell, "
            "keras.layers.RNN around one, or their keras.layers twins; got "
            f"{type(layer).__name__}."
        )
    if not cell.built:
        raise ValueError(
            f"`layer` {layer.name} is not built yet. Call it on data (or "
            "build the model) before asking for its gates."
        )
    return cell, go_backwards


def gate_activations(layer, inputs, initial_state=None):
    """Per-step gate activations and states of an LSTM on a batch.

    Runs the layer's own weights through the shared step
    (`keras_lstm.recurrence.lstm_step`) and records, for every step t,

        i_t, f_t, c̃_t, o_t   input, forget, candidate, output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        h_t = o_t ⊙ tanh(c_t)

    (or the equations of the layer's variant: peepholes, CIFG, layer norm,
    projection, clipping).

    Dropout is not applied (inference). Steps are in processing order, so a
    `go_backwards` layer's results run from the last input step to the first,
    like its outputs.

    Args:
        layer: A built `keras_lstm.LSTM`, `keras_lstm.LSTMCell`,
            `keras.layers.RNN` wrapping an LSTM cell, or `keras.layers.LSTM`.
        inputs: Array `(batch, time, features)`.
        initial_state: Optional `[h_0, c_0]`, each `(batch, units)` (`h_0`
            `(batch, projection_units)` under a projection).
            Default: zeros.

    Returns:
        A `keras_lstm.recurrence.LSTMGates` of NumPy arrays, each
        `(batch, time, units)`: `input_gate`, `forget_gate`, `candidate`,
        `output_gate`, `c` and `h` (`h` is `(batch, time, projection_units)`
        under a projection).

    Raises:
        TypeError: if `layer` is not an LSTM layer or cell.
        ValueError: if `layer` is not built or `inputs` has the wrong shape.
    """
    cell, go_backwards = _cell_and_direction(layer)
    inputs = np.asarray(inputs, dtype="float32")
    features = cell.kernel.shape[0]
    if inputs.ndim != 3 or inputs.shape[-1] != features:
        raise ValueError(
            "`inputs` must have shape (batch, time, features) with "
            f"features={features}, got {inputs.shape}."
        )
    if go_backwards:
        inputs = inputs[:, ::-1, :]
    batch = inputs.shape[0]
    variant = cell._variant() if isinstance(cell, LSTMCell) else None
    if initial_state is None:
        h = ops.zeros((batch, cell.state_size[0]))
        c = ops.zeros((batch, cell.state_size[1]))
    else:
        h, c = (ops.convert_to_tensor(s, "float32") for s in initial_state)
    projected = recurrence.project_inputs(
        ops.convert_to_tensor(inputs), cell.kernel
    )
    steps = []
    for t in range(inputs.shape[1]):
        gates = recurrence.lstm_step(
            projected[:, t, :],
            h,
            c,
            cell.recurrent_kernel,
            cell.activation,
            cell.recurrent_activation,
            bias=cell.bias,
            variant=variant,
        )
        h, c = gates.h, gates.c
        steps.append(gates)
    if not steps:
        sizes = [cell.units] * 5 + [cell.state_size[0]]
        return recurrence.LSTMGates(
            *(np.zeros((batch, 0, size), "float32") for size in sizes)
        )
    return recurrence.LSTMGates(
        *(
            np.stack([ops.convert_to_numpy(step[k]) for step in steps], axis=1)
            for k in range(len(recurrence.LSTMGates._fields))
        )
    )
