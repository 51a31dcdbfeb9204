"""Keras models as export reads them: their layers, and a stateless copy.

Every export module walks a model the same way, through nested models and
wrappers (`Bidirectional`, `TimeDistributed`, ...), and asks the same
questions of it: is it a graph model (Sequential or Functional) that can
be rebuilt layer by layer, which of its layers are LSTMs that lower to the
fused op, which are stateful. This module answers them once; rebuilding a
model for the fused op is `keras_lstm.export.lowering.export_model`.
"""

import keras

import keras_lstm
from keras_lstm.export import _compat


def is_graph_model(model) -> bool:
    """Whether `model` is a Sequential or Functional model (not subclassed).

    `Functional` is not public in Keras 3 (`_compat.is_functional`).
    """
    return isinstance(model, keras.Sequential) or _compat.is_functional(model)


def require_graph_model(model) -> None:
    """Raises unless `model` is a Sequential or Functional model."""
    if not is_graph_model(model):
        raise ValueError(
            f"Model {model.name!r} is a subclassed {type(model).__name__}; "
            "export rebuilds models layer by layer and needs the Functional "
            "or Sequential API. Wrap it: inputs = keras.Input(shape); "
            "keras.Model(inputs, model(inputs)), with its LSTMs being "
            "keras_lstm.LSTM layers."
        )


def _is_lstm_cell(cell):
    return isinstance(cell, (keras_lstm.LSTMCell, keras.layers.LSTMCell))


def is_lstm_layer(layer) -> bool:
    """Whether `layer` is an LSTM that `lowering.export_model` lowers.

    `keras_lstm.LSTM`, `keras.layers.LSTM` and `keras.layers.RNN` around a
    `keras_lstm.LSTMCell` or `keras.layers.LSTMCell`.
    """
    return isinstance(layer, keras.layers.RNN) and _is_lstm_cell(layer.cell)


def _sublayers(layer):
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    if isinstance(layer, keras.layers.Wrapper):
        return [layer.layer]
    return []


def iter_layers(model):
    """All layers of `model`, depth first, through nested models/wrappers.

    A wrapper comes before the layers it wraps; a `Bidirectional` yields
    its forward and backward layers.
    """
    for layer in _sublayers(model):
        yield layer
        yield from iter_layers(layer)


def stateful_layers(model: keras.Model) -> list:
    """The recurrent layers of `model` with `stateful=True`."""
    return [
        layer
        for layer in iter_layers(model)
        if getattr(layer, "stateful", False) is True
    ]


def stateless_model(model: keras.Model) -> keras.Model:
    """A copy of a stateful `model` with `stateful=False` layers.

    Same layer classes and weights, and an input of any batch size and
    length `(None, None, features)`. Run on a whole sequence it gives what
    the stateful model gives, after `reset_states()`, fed the sequence in
    chunks: a stateful layer carries its state from chunk to chunk as the
    stateless one does from step to step. `model` and its states are not
    touched.

    Args:
        model: A Sequential or Functional model with one input
            `(batch, time, features)`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: if a layer cannot be cloned from its config.
    """
    require_graph_model(model)
    pairs = []

    def clone(layer):
        config = layer.get_config()
        if getattr(layer, "stateful", False) is True:
            config["stateful"] = False
        try:
            new = layer.__class__.from_config(config)
        except Exception as error:  # Layers raise anything from from_config.
            raise ValueError(
                f"Could not clone layer {layer.name!r} "
                f"({type(layer).__name__}) from its config for export: "
                f"{error}. Give it a complete get_config()."
            ) from error
        pairs.append((layer, new))
        return new

    inputs = keras.Input(
        shape=(None, *model.inputs[0].shape[2:]), dtype=model.inputs[0].dtype
    )
    copy = keras.models.clone_model(
        model, input_tensors=inputs, clone_function=clone, recursive=True
    )
    for old, new in pairs:
        new.set_weights(old.get_weights())
    return copy
