"""Keras 3 model <-> tfmot QAT model (tf_keras): the graph translation.

`quantize_model` rebuilds a Keras 3 graph model in tf_keras, layer by layer
and call by call, with every LSTM as `tf_keras.layers.RNN(TwinLSTMCell)`
(`keras_lstm.export.qat.layers`), `Normalization` as `TwinNormalization`,
and annotates each layer with the config `layers.QuantizeRegistry` gives it
(or the caller's, `quantize_configs`). `to_keras3` goes
back: the QAT model's latent float weights into a clone of the Keras 3
architecture. Keras 3 configs reach tf_keras through `_translate`, which
keeps only the arguments a tf_keras class accepts and refuses, with the
reason, any set argument it cannot carry.

tfmot and tf_keras are imported by `_layers()` only, on first use.
"""

import contextlib
import importlib
import inspect
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import keras

import keras_lstm.layers
from keras_lstm.export import _compat, lowering, masking, models

if TYPE_CHECKING:  # Never at run time: importing tf_keras is QAT's job.
    import tf_keras

# Keyword arguments every tf_keras layer takes besides its own.
_TF_KERAS_LAYER_KWARGS = frozenset(
    {
        "name",
        "dtype",
        "trainable",
        "dynamic",
        "input_dim",
        "input_shape",
        "batch_input_shape",
        "batch_size",
        "weights",
        "activity_regularizer",
        "autocast",
        "implementation",
    }
)
_SOURCE_ATTRIBUTE = "_keras_lstm_source_json"


def _layers():
    # Imports tfmot and tf_keras, and keeps Keras 3 in charge (see there).
    return importlib.import_module("keras_lstm.export.qat.layers")


class _Unsupported(Exception):
    """A layer (or one of its arguments) with no QAT twin; collected."""


def is_qat_model(model: object) -> bool:
    """Whether `model` is a tfmot QAT model (a tf_keras model with wrappers).

    Cheap for anything else: it imports nothing unless tfmot is already
    loaded (a QAT model cannot exist without it), so `to_tflite` can ask it
    about every model.

    Args:
        model: Any object.

    Returns:
        `True` for a tf_keras model holding tfmot `QuantizeWrapper` layers,
        such as the one `quantize_model` returns.
    """
    if isinstance(model, keras.Model) or not {
        "tf_keras",
        "tensorflow_model_optimization",
    } <= set(sys.modules):
        return False
    tf_keras = sys.modules["tf_keras"]
    if not isinstance(model, tf_keras.Model):
        return False
    wrapper = _layers().tfmot.quantization.keras.QuantizeWrapper
    return any(isinstance(layer, wrapper) for layer in model.layers)


@contextlib.contextmanager
def quantize_scope() -> Iterator[None]:
    """tfmot's `quantize_scope` with keras_lstm's QAT classes.

    Use it to load a QAT model saved in HDF5 (`qat_model.save("qat.h5")`;
    tfmot 0.8.1's `QuantizeLayer` cannot reload from the `.keras` format),
    then `to_keras3(qat_model, like=float_model)`:

    >>> with keras_lstm.export.qat.quantize_scope():
    ...     qat_model = tf_keras.models.load_model("qat.h5")
    """
    qat_layers = _layers()
    quantization = qat_layers.tfmot.quantization.keras
    with quantization.quantize_scope(qat_layers.CUSTOM_OBJECTS):
        yield


# ---------------------------------------------------------------------------
# Keras 3 configs -> tf_keras configs.


def _fit_kwargs(klass, config, extra=frozenset(), *, what):
    """Keeps the keys `klass` accepts; drops only unset Keras 3 extras."""
    accepted = set(extra)
    # Follow **kwargs up the class hierarchy (BatchNormalization passes its
    # renorm arguments on to its base class).
    for base in klass.__mro__:
        if "__init__" not in vars(base):
            continue
        parameters = inspect.signature(base.__init__).parameters
        accepted.update(parameters)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    fitted = {}
    for key, value in config.items():
        if key in accepted:
            fitted[key] = value
        elif value not in (None, False):
            raise _Unsupported(
                f"{what} argument `{key}`={value!r} has no tf_keras equivalent"
            )
    return fitted


def _translate(value, tf_keras):
    """A Keras 3 config value in a form tf_keras deserializes."""
    if isinstance(value, (list, tuple)):
        return type(value)(_translate(v, tf_keras) for v in value)
    if not isinstance(value, dict):
        return value
    class_name = value.get("class_name")
    if class_name in ("DTypePolicy", "FloatDTypePolicy"):
        return value["config"]["name"]
    if "module" in value and isinstance(value.get("config"), dict):
        modules = {
            "keras.initializers": tf_keras.initializers,
            "keras.regularizers": tf_keras.regularizers,
            "keras.constraints": tf_keras.constraints,
        }
        module = modules.get(value["module"])
        klass = getattr(module, class_name, None) if module else None
        if klass is None:
            raise _Unsupported(
                f"{class_name} (from {value['module']}) has no tf_keras "
                "equivalent"
            )
        config = _fit_kwargs(
            klass, _translate(value["config"], tf_keras), what=class_name
        )
        return {"class_name": class_name, "config": config}
    return {k: _translate(v, tf_keras) for k, v in value.items()}


def _object(kind, obj, tf_keras):
    """A Keras 3 initializer/regularizer/constraint as its tf_keras twin."""
    if obj is None:
        return None
    serialized = getattr(keras, kind).serialize(obj)
    return getattr(tf_keras, kind).deserialize(_translate(serialized, tf_keras))


def _twin_rnn(layer, qat_layers):
    """`tf_keras.layers.RNN(TwinLSTMCell)` equivalent to a Keras 3 LSTM."""
    tf_keras = qat_layers.tf_keras
    cell = layer.cell
    if layer.unroll:
        raise _Unsupported("unroll=True (the fused op is a loop)")
    cell_kwargs = {
        "units": cell.units,
        "activation": keras.activations.serialize(cell.activation),
        "recurrent_activation": keras.activations.serialize(
            cell.recurrent_activation
        ),
        "use_bias": cell.use_bias,
        "dropout": cell.dropout,
        "recurrent_dropout": cell.recurrent_dropout,
        "seed": cell.seed,
    }
    # The variant arguments (keras.layers.LSTMCell has none: the plain
    # LSTM's defaults).
    for name, default in keras_lstm.layers.VARIANT_DEFAULTS.items():
        cell_kwargs[name] = getattr(cell, name, default)
    for kind, attributes in (
        ("regularizers", ("kernel", "recurrent", "bias")),
        ("constraints", ("kernel", "recurrent", "bias")),
    ):
        for attribute in attributes:
            name = f"{attribute}_{kind[:-1]}"
            cell_kwargs[name] = _object(kind, getattr(cell, name), tf_keras)
    twin = qat_layers.TwinLSTMCell(**cell_kwargs, name=cell.name)
    return tf_keras.layers.RNN(
        twin,
        return_sequences=layer.return_sequences,
        go_backwards=layer.go_backwards,
        activity_regularizer=_object(
            "regularizers", layer.activity_regularizer, tf_keras
        ),
        name=layer.name,
    )


def _tf_keras_layer(layer, qat_layers):
    """The tf_keras twin of Keras 3 `layer` (QuantizeConfig: the registry).

    Raises:
        _Unsupported: with the reason.
    """
    tf_keras = qat_layers.tf_keras
    if models.is_lstm_layer(layer):
        return _twin_rnn(layer, qat_layers)
    if isinstance(layer, keras.layers.Bidirectional):
        directions = (layer.forward_layer, layer.backward_layer)
        if not all(models.is_lstm_layer(d) for d in directions):
            raise _Unsupported("Bidirectional around a non-LSTM layer")
        forward, backward = (_twin_rnn(d, qat_layers) for d in directions)
        return tf_keras.layers.Bidirectional(
            forward,
            backward_layer=backward,
            merge_mode=layer.merge_mode,
            name=layer.name,
        )
    if isinstance(layer, keras.layers.TimeDistributed):
        return tf_keras.layers.TimeDistributed(
            _tf_keras_layer(layer.layer, qat_layers), name=layer.name
        )
    class_name = type(layer).__name__
    # Normalization's twin reads its statistics live (see TwinNormalization).
    klass = (
        qat_layers.TwinNormalization
        if isinstance(layer, keras.layers.Normalization)
        else getattr(tf_keras.layers, class_name, None)
    )
    if not type(layer).__module__.startswith("keras.") or klass is None:
        raise _Unsupported(
            "not a built-in Keras layer with a tf_keras counterpart"
        )
    config = _fit_kwargs(
        klass,
        _translate(layer.get_config(), tf_keras),
        _TF_KERAS_LAYER_KWARGS,
        what=class_name,
    )
    return klass.from_config(config)


# ---------------------------------------------------------------------------
# Rebuilding the graph in tf_keras.


def _resolve(value, tensors):
    # `tensors[(layer_name, node_index)]` lists the outputs of that call.
    history = _compat.keras_tensor_history(value)
    if history is not None:
        name, node, index = history
        return tensors[(name, node)][index]
    if isinstance(value, dict):
        return {k: _resolve(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v, tensors) for v in value)
    return value


def _call_kwargs(kwargs):
    # `training` follows the outer call in tf_keras; a recorded
    # `training=False` would switch dropout off during fine-tuning.
    kwargs = {k: v for k, v in kwargs.items() if k != "training"}
    if kwargs.get("mask", None) is not None:
        raise _Unsupported("called with a mask (the fused op has none)")
    kwargs.pop("mask", None)
    return kwargs


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Received an invalid value for argument `model`: expected a "
            f"trained Keras 3 keras.Model, got {type(model).__name__}."
        )
    models.require_graph_model(model)
    try:
        inputs = model.inputs
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Model {model.name!r} is not built. Build it with an input "
            "shape (keras.Input) before quantize_model."
        ) from error
    if len(inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs and "
            f"{len(model.outputs)} outputs; quantize_model takes models with "
            "one input (batch, time, features) and one output, as "
            "to_tflite exports."
        )
    # What the fused export would refuse, refused before fine-tuning. LSTM
    # variants pass: the twin computes them, and to_tflite says which modes
    # write them (its int8 refusal, until it writes them, is the one place
    # that refuses an integer variant file).
    lowering.check_model(model, variants=True)
    for layer in models.iter_layers(model):
        if masking.is_mask_layer(layer):
            # to_tflite exports masked models (callers drop the padding),
            # but the tf_keras twin is not built to carry masks.
            raise ValueError(
                f"Layer {layer.name!r} produces a mask, and quantize_model "
                "does not carry masks into the QAT model. Export the trained "
                "model with to_tflite(..., quantization='int8') directly, "
                "which handles masked models, or fine-tune without the mask."
            )


def quantize_model(
    model: keras.Model,
    *,
    quantize_configs: "Mapping[str, object] | None" = None,
) -> "tf_keras.Model":
    """A tfmot QAT model of a trained Keras 3 LSTM model.

    Rebuilds `model` in tf_keras with the same layers, names and weights
    (every LSTM as `tf_keras.layers.RNN(TwinLSTMCell)`), annotates every
    layer with the QuantizeConfig of `keras_lstm.export.qat`'s registry
    (`layers.QuantizeRegistry`: its own entries, then tfmot's default 8-bit
    registry), and applies tfmot. The result is ready for `compile` and
    `fit`; `to_keras3` gives the fine-tuned Keras 3 model back.

    Supported: Sequential and Functional models of `keras_lstm.LSTM`,
    `keras.layers.LSTM`, `keras.layers.RNN(LSTMCell)` (either cell),
    `Bidirectional` of these, `keras_lstm`'s LSTM variants (peepholes,
    CIFG, layer norm, projection, clips; docs/variants.md, whose int8
    files `to_tflite` does not write yet), `Conv1D`, `MaxPooling1D`,
    `AveragePooling1D`, `Normalization`, `Embedding` (int32 token
    inputs), `RepeatVector`, `TimeDistributed` of a supported layer, and
    the built-in layers tfmot quantizes (`Dense`, `Dropout`, `Flatten`,
    `Reshape`, `Add`, `Concatenate`, ...). Any other built-in layer takes a
    config of yours through `quantize_configs`.

    Args:
        model: A trained, built Keras 3 Sequential or Functional model with
            one input and one output.
        quantize_configs: Layer name -> tfmot `QuantizeConfig`, for layers
            the registry does not cover (or to override it). The config
            quantizes the layer's tf_keras counterpart, as it would under
            `tfmot.quantization.keras.quantize_annotate_layer`; its class
            must be importable (registered with
            `tf_keras.saving.register_keras_serializable`) for tfmot to
            clone the model. Default: `None`.

    Returns:
        A tf_keras `Model` (tfmot QAT model). Compile it (with a small
        learning rate) and fine-tune it.

    Raises:
        TypeError: if `model` is not a Keras 3 model, or a value of
            `quantize_configs` is not a tfmot `QuantizeConfig`.
        ValueError: if the model is subclassed, unbuilt, cannot be exported
            to the fused int8 op, names unknown layers in
            `quantize_configs`, or holds layers that cannot be quantized
            (one error naming all of them, with what to do).
    """
    lowering.require_tensorflow_backend("quantize_model")
    _check_model(model)
    qat_layers = _layers()
    quantize_configs = _check_quantize_configs(
        quantize_configs, model, qat_layers
    )
    annotated = _annotated_twin(model, qat_layers, quantize_configs)
    quantization = qat_layers.tfmot.quantization.keras
    custom = {type(c).__name__: type(c) for c in quantize_configs.values()}
    with quantization.quantize_scope({**qat_layers.CUSTOM_OBJECTS, **custom}):
        qat_model = quantization.quantize_apply(
            annotated, qat_layers.QuantizeScheme()
        )
    setattr(qat_model, _SOURCE_ATTRIBUTE, model.to_json())
    return qat_model


def _check_quantize_configs(quantize_configs, model, qat_layers):
    if quantize_configs is None:
        return {}
    if not isinstance(quantize_configs, Mapping):
        raise TypeError(
            "Received an invalid value for argument `quantize_configs`: "
            "expected a dict of layer name -> tfmot QuantizeConfig, got "
            f"{type(quantize_configs).__name__}."
        )
    names = {layer.name for layer in model.layers}
    unknown = sorted(set(quantize_configs) - names)
    if unknown:
        raise ValueError(
            "Received an invalid value for argument `quantize_configs`: "
            f"model {model.name!r} has no layers named {unknown}; its layers "
            f"are {sorted(names)}."
        )
    base = qat_layers.tfmot.quantization.keras.QuantizeConfig
    for name, config in quantize_configs.items():
        if not isinstance(config, base):
            raise TypeError(
                "Received an invalid value for argument `quantize_configs`: "
                f"layer {name!r} maps to a {type(config).__name__}, expected "
                "a tfmot.quantization.keras.QuantizeConfig."
            )
    return dict(quantize_configs)


def _annotated_twin(model, qat_layers, quantize_configs=None):
    """The float tf_keras twin of `model`, annotated for `quantize_apply`.

    `QuantizeAnnotate` only marks layers, so this model computes what
    `model` computes (it is what the parity tests compare).
    """
    tf_keras = qat_layers.tf_keras
    quantization = qat_layers.tfmot.quantization.keras
    registry = qat_layers.QuantizeRegistry()
    quantize_configs = quantize_configs or {}

    input_names, nodes, output_refs = _compat.functional_graph(model)
    converted, problems = {}, []
    for name in dict.fromkeys(name for name, _, _ in nodes):
        layer = model.get_layer(name)
        try:
            new = _tf_keras_layer(layer, qat_layers)
            if name in quantize_configs:
                config = quantize_configs[name]
            elif registry.supports(new):
                config = registry.get_quantize_config(new)
            else:
                raise _Unsupported(
                    "neither keras_lstm's QuantizeRegistry nor tfmot's "
                    "default 8-bit registry has a QuantizeConfig for it"
                )
        except _Unsupported as reason:
            problems.append(f"{name!r} ({type(layer).__name__}): {reason}")
            continue
        converted[name] = (layer, new, config)
    for name, _, kwargs in nodes:
        try:
            _call_kwargs(kwargs)
        except _Unsupported as reason:
            problems.append(f"{name!r}: {reason}")
    if problems:
        raise ValueError(
            "quantize_model cannot build a QAT model of "
            f"{model.name!r}; these layers cannot be quantized:\n  - "
            + "\n  - ".join(problems)
            + "\nFor each, either replace the layer by one that quantizes "
            "(keras_lstm.LSTM / keras.layers.LSTM, Conv1D, MaxPooling1D, "
            "AveragePooling1D, Normalization, Embedding, RepeatVector, "
            "TimeDistributed(Dense), Dense, Dropout, Flatten, Reshape, Add, "
            "Concatenate, ReLU, Softmax, GlobalAveragePooling1D, ...), move "
            "it out of the model (preprocess the inputs, post-process the "
            "outputs), or, for a built-in Keras layer, give it your own "
            "tfmot QuantizeConfig: quantize_model(model, quantize_configs="
            "{'<layer name>': YourQuantizeConfig()}), as tfmot's "
            "quantize_annotate_layer would (see the README, QAT)."
        )

    tensors = {}
    for name, source in zip(input_names, model.inputs, strict=True):
        tensors[(name, 0)] = [
            tf_keras.Input(
                batch_shape=tuple(source.shape), dtype=source.dtype, name=name
            )
        ]
    annotated = {}
    node_counts = {}
    for name, args, kwargs in nodes:
        _, new, config = converted[name]
        if name not in annotated:
            annotated[name] = quantization.quantize_annotate_layer(new, config)
        outputs = annotated[name](
            *_resolve(args, tensors),
            **_resolve(_call_kwargs(kwargs), tensors),
        )
        index = node_counts.get(name, 0)
        node_counts[name] = index + 1
        tensors[(name, index)] = _flatten(outputs)
    float_twin = tf_keras.Model(
        [tensors[(name, 0)][0] for name in input_names],
        [tensors[(n, i)][t] for n, i, t in output_refs],
        name=model.name,
    )
    for layer, new, _ in converted.values():
        _copy_weights(layer, new)
    return float_twin


def _flatten(outputs):
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in _flatten(item)]
    return [outputs]


def _pairs(source, target):
    """Weight-holding layer pairs: Bidirectional is two pairs."""
    if hasattr(source, "forward_layer") and hasattr(target, "forward_layer"):
        return [
            (source.forward_layer, target.forward_layer),
            (source.backward_layer, target.backward_layer),
        ]
    return [(source, target)]


def _copy_weights(source, target):
    """Copies weights between twin layers (Keras 3 <-> tf_keras), exactly."""
    for a, b in _pairs(source, target):
        weights = a.get_weights()
        expected = [tuple(w.shape) for w in b.get_weights()]
        if [tuple(w.shape) for w in weights] != expected:
            raise ValueError(
                f"Layer {a.name!r} has weights of shapes "
                f"{[tuple(w.shape) for w in weights]}, its twin {b.name!r} "
                f"{expected}; they cannot be copied."
            )
        b.set_weights(weights)


# ---------------------------------------------------------------------------
# Back to Keras 3.


def _latent_variables(layer, wrapper_class):
    """The float variables of a QAT model's layer, in its weights' order.

    Once a `QuantizeWrapper` has run, the attributes it quantizes hold
    fake-quantized tensors and the layer itself no longer lists those
    variables. `QuantizeWrapperV2.trainable_weights` keeps them in the
    layer's original order (tfmot relies on it after `quantize_apply`;
    `LSTMQuantizeConfig` lists every LSTM weight so that a reloaded model
    keeps it too).
    """
    if not isinstance(layer, wrapper_class):
        return list(layer.weights)
    variables = list(layer.trainable_weights)
    for variable in layer.layer.non_trainable_weights:
        if not any(variable is v for v in variables):
            variables.append(variable)
    return variables


def _copy_latent_weights(layer, target, wrapper_class):
    """Copies the float weights of QAT model layer `layer` into `target`."""
    variables = _latent_variables(layer, wrapper_class)

    def describe(weights, name):
        return [(name(w), tuple(w.shape)) for w in weights]

    found = describe(variables, lambda v: v.name.split(":")[0].split("/")[-1])
    expected = describe(target.weights, lambda w: w.name)
    if found != expected:
        raise ValueError(
            f"Layer {target.name!r} of the Keras 3 model has weights "
            f"{expected}, but its QAT counterpart {layer.name!r} holds "
            f"{found}; the architectures differ."
        )
    target.set_weights([v.numpy() for v in variables])
    # Normalization computes its mean and variance tensors from its
    # variables in `finalize_state`, not at call time.
    if isinstance(target, keras.layers.Normalization):
        target.finalize_state()


def _check_qat_model(qat_model):
    if not is_qat_model(qat_model):
        raise TypeError(
            "Received an invalid value for argument `qat_model`: expected "
            "the tfmot QAT model that keras_lstm.export.quantize_model "
            f"returned, got {type(qat_model).__name__}."
        )


def to_keras3(
    qat_model: "tf_keras.Model", *, like: keras.Model | None = None
) -> keras.Model:
    """The Keras 3 model with the QAT model's fine-tuned float weights.

    Args:
        qat_model: A model returned by `quantize_model` (and fine-tuned).
        like: The Keras 3 model to take the architecture from (it is cloned,
            not modified). Default: `None`, the model `quantize_model` was
            given, as recorded on `qat_model`; pass it for a QAT model
            loaded from disk, which carries no record.

    Returns:
        A new, built `keras.Model` with the same architecture as the model
        given to `quantize_model` and the latent (float) weights of
        `qat_model`. TFLite's converter then quantizes the weights to the
        same int8 grid that QAT simulated.

    Raises:
        TypeError: if `qat_model` is not a QAT model.
        ValueError: if the architecture is unknown (`like` missing for a
            loaded model) or a layer's weights cannot be matched.
    """
    _check_qat_model(qat_model)
    if like is not None:
        if not isinstance(like, keras.Model):
            raise TypeError(
                "Received an invalid value for argument `like`: expected a "
                f"Keras 3 keras.Model, got {type(like).__name__}."
            )
        model = keras.models.clone_model(like)
    else:
        source = getattr(qat_model, _SOURCE_ATTRIBUTE, None)
        if source is None:
            raise ValueError(
                f"QAT model {qat_model.name!r} carries no record of its Keras "
                "3 architecture (it was loaded from disk, or not made by "
                "keras_lstm.export.quantize_model). Pass the float model: "
                "to_keras3(qat_model, like=float_model)."
            )
        model = keras.models.model_from_json(source)
    wrapper_class = _layers().tfmot.quantization.keras.QuantizeWrapper
    by_name = {}
    for layer in qat_model.layers:
        inner = layer.layer if isinstance(layer, wrapper_class) else layer
        by_name[inner.name] = layer
    for layer in model.layers:
        if not layer.weights or isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.name not in by_name:
            raise ValueError(
                f"Layer {layer.name!r} of the Keras 3 model has no "
                f"counterpart in QAT model {qat_model.name!r}; the "
                "architectures differ."
            )
        _copy_latent_weights(by_name[layer.name], layer, wrapper_class)
    return model
