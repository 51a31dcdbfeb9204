"""Models with several inputs or outputs, and LSTM state at the boundary.

The keras.io character-level seq2seq (lstm_seq2seq) needs three models:
an encoder `sequence -> [h, c]` (`return_state=True`), a decoder step model
`[token, h, c] -> [probs, h, c]` (`initial_state=` from inputs), and the
training model that joins them. They export through `to_tflite`'s one
pipeline; this module owns what is theirs alone:

- `applies`: when a model takes this route (`plan.StateLowering.EXPLICIT`);
- `refuse_integer`: why `int8`/`int16x8` are refused for them;
- `input_shapes` and `data`: their named inputs, each with a fixed shape,
  and the caller's data as one float32 array per input.

Lowering (`lowering.StateLowering`): an LSTM call that starts from zeros
and does not return its state becomes the fused op; one that takes or
returns its state is unrolled into builtin ops, since the fused op's
state lives in variable tensors that no input or output reaches
(TF#62775).

File contract (`contract.input_names`, `contract.output_names`): inputs are
named after the Keras inputs, outputs `output_<i>` in Keras's order (one
output: `output`). `load_tflite(path).predict([...])` and `.run({...})`
feed and return them by name.
"""

import numbers

import numpy as np

from keras_lstm.export import arguments, models


def applies(model) -> bool:
    """Whether `to_tflite` exports `model` through this module.

    True for a graph model with several inputs or outputs, or with an LSTM
    that returns its state (`return_state=True`).
    """
    if not models.is_graph_model(model):
        return False
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        return False
    if len(inputs) != 1 or len(outputs) != 1:
        return True
    return any(
        models.is_lstm_layer(layer) and layer.return_state
        for layer in models.iter_layers(model)
    )


def refuse_integer(model, quantization) -> None:
    """Raises: `model`'s integer export is not supported, saying why."""
    carries_state = any(len(t.shape) == 2 for t in model.inputs) or any(
        models.is_lstm_layer(layer) and layer.return_state
        for layer in models.iter_layers(model)
    )
    if not carries_state:
        raise ValueError(
            f"quantization={quantization.value!r} is not supported yet for "
            f"model {model.name!r}, which has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs: integer calibration feeds one "
            "input. Use 'dynamic' or 'float16', or export the part with one "
            "input and one output as a model of its own."
        )
    raise ValueError(
        f"quantization={quantization.value!r} cannot export model "
        f"{model.name!r}: its LSTM state crosses the file boundary (an "
        "encoder returning [h, c], a decoder step taking them). TFLite's "
        "integer LSTM keeps h and c inside the fused op (an int16 cell "
        "state in variable tensors) and exposes neither, and the unrolled "
        "builtin steps that carry the state here would pass the cell "
        "state, which is unbounded, through int8 tensors at every call. "
        "Use quantization='dynamic' (int8 weights, float state, a quarter "
        "of the weight bytes) or 'float16'; for an int8 file, export a "
        "model whose LSTMs start from zero and return no state, e.g. a "
        "single-frame streaming file (streaming=True) that keeps the state "
        "in the op."
    )


def input_shapes(model, timesteps) -> list[tuple]:
    """Each input's shape without the batch axis, with time fixed."""
    names = [t.name for t in model.inputs]
    if timesteps is None or isinstance(timesteps, numbers.Integral):
        per_input = {name: timesteps for name in names}
    elif isinstance(timesteps, dict):
        unknown = set(timesteps) - set(names)
        if unknown:
            raise ValueError(
                f"Received timesteps for unknown inputs {sorted(unknown)}; "
                f"the model's inputs are {names}."
            )
        per_input = {name: timesteps.get(name) for name in names}
    else:
        raise TypeError(
            "Received an invalid value for argument `timesteps`: expected "
            "a positive integer, a dict from input name to one, or None; "
            f"got {timesteps!r}."
        )
    shapes = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape)[1:]
        steps = per_input[tensor.name]
        if steps is not None:
            arguments.positive_int("timesteps", steps)
        if tensor.dtype != "float32":
            raise ValueError(
                f"Model {model.name!r} has the {tensor.dtype} input "
                f"{tensor.name!r}; a model with several inputs or outputs "
                "exports with float32 inputs (one-hot tokens, frames, "
                "states)."
            )
        if len(shape) == 2 and shape[0] is None:
            if steps is None:
                raise ValueError(
                    f"Input {tensor.name!r} of model {model.name!r} has a "
                    "time dimension of None and TFLite needs it fixed: pass "
                    "timesteps=N, or timesteps={name: N, ...} per input "
                    "(1 for a decoder step model)."
                )
            shape = (steps, shape[1])
        elif steps is not None and len(shape) == 2 and shape[0] != steps:
            raise ValueError(
                f"Received timesteps={steps} for input {tensor.name!r}, "
                f"which has a fixed length of {shape[0]}."
            )
        if None in shape:
            raise ValueError(
                f"Input {tensor.name!r} of model {model.name!r} has shape "
                f"{tuple(tensor.shape)}; every axis but the batch must be "
                "known."
            )
        shapes.append(shape)
    return shapes


def data(name, data, model, shapes) -> list[np.ndarray] | None:
    """`data` as a list of float32 arrays in model input order, or None."""
    if data is None:
        return None
    names = [t.name for t in model.inputs]
    if isinstance(data, dict):
        missing = set(names) - set(data)
        if missing:
            raise ValueError(
                f"`{name}` misses the inputs {sorted(missing)}; give one "
                f"array per input of {names}."
            )
        data = [data[n] for n in names]
    elif isinstance(data, np.ndarray) and len(names) == 1:
        data = [data]
    if not isinstance(data, (list, tuple)) or len(data) != len(names):
        raise ValueError(
            f"`{name}` must be a list of {len(names)} arrays (one per input "
            f"of {names}, in order) or a dict by input name."
        )
    arrays = []
    for input_name, array, shape in zip(names, data, shapes, strict=True):
        array = np.asarray(array, np.float32)
        if array.shape[1:] != shape or array.shape[0] == 0:
            raise ValueError(
                f"`{name}` for input {input_name!r} must have shape "
                f"(num_samples, {', '.join(map(str, shape))}), got "
                f"{array.shape}."
            )
        if not np.isfinite(array).all():
            raise ValueError(
                f"`{name}` for input {input_name!r} holds NaN or infinite "
                "values."
            )
        arrays.append(array)
    if len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(
            f"`{name}` must hold the same number of samples for every input, "
            f"got {[a.shape[0] for a in arrays]}."
        )
    return arrays
