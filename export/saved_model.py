"""SavedModel export: a `serving_default` signature that needs only TF.

Our layers lower to plain TensorFlow ops (`tf.while_loop` over the shared
LSTM step), so the exported graph refers to no Python class: it loads with
`tf.saved_model.load`, TF Serving or `saved_model_cli` on a machine that has
never heard of keras_lstm.
"""

import dataclasses
import os
import pathlib
import re

import keras
import numpy as np
import tensorflow as tf

from keras_lstm.export import files, lowering, models

SIGNATURE_KEY = "serving_default"

# Signature keys become TF op names, which allow only these characters.
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-/]")
# Rows in the parity probe: more than one, so a batch axis that the graph
# silently fixed to 1 would show up.
_PROBE_BATCH = 2
# Steps in the parity probe when the model leaves its time axis open.
_PROBE_TIMESTEPS = 7


@dataclasses.dataclass(frozen=True)
class SignatureTensor:
    """One input or output of the exported signature.

    Attributes:
        name: Key in the `serving_default` signature.
        shape: Shape, `None` for dynamic axes (always the batch axis).
        dtype: NumPy dtype name, e.g. `"float32"`.
    """

    name: str
    shape: tuple
    dtype: str


@dataclasses.dataclass(frozen=True)
class SavedModelReport:
    """What `to_saved_model` wrote.

    Attributes:
        path: The SavedModel directory.
        size_bytes: Total size of the files under `path`.
        signature: The signature key, `"serving_default"`.
        inputs: The signature's inputs, in the order of `model.inputs`.
        outputs: The signature's outputs.
        max_abs_error: Largest absolute difference between the reloaded
            SavedModel and the Keras model on a random probe batch
            (`float32`; 0 is expected, both run the same TF ops).
    """

    path: pathlib.Path
    size_bytes: int
    signature: str
    inputs: tuple
    outputs: tuple
    max_abs_error: float


def to_saved_model(model, path, *, overwrite=False):
    """Exports a Keras model to a SavedModel with a `serving_default` signature.

    The signature has a dynamic batch axis; other axes (the time axis
    included) are dynamic when the model's are. It is written to a
    temporary directory beside `path`, reloaded and compared with `model`,
    and only then renamed to `path` (`files.staged_dir`): on failure nothing
    is left behind. Files and directories take the user's umask.

    Args:
        model: A built `keras.Model` (with `keras_lstm` layers or any other
            layers that run on TensorFlow ops).
        path: Directory to create. Its parent must exist.
        overwrite: Replace `path` if it is already a SavedModel directory.
            Default: `False`.

    Returns:
        A `SavedModelReport`.

    Raises:
        TypeError: if `model` is not a `keras.Model`.
        ValueError: if `model` is not built or holds a stateful layer (its
            state has a fixed batch size).
        FileNotFoundError: if the parent of `path` does not exist.
        FileExistsError: if `path` exists and `overwrite` is `False`, or it
            exists but is not a SavedModel directory.
    """
    lowering.require_tensorflow_backend("to_saved_model")
    _check_model(model)
    path = _check_path(path, overwrite)

    input_tensors = list(model.inputs)
    specs = _input_specs(input_tensors)
    module = _serving_module(model, specs)

    with files.staged_dir(path) as staging:
        tf.saved_model.save(
            module, str(staging), signatures={SIGNATURE_KEY: module.serve}
        )
        outputs, max_abs_error = _check_parity(model, specs, staging)
    return SavedModelReport(
        path=path,
        size_bytes=_tree_size(path),
        signature=SIGNATURE_KEY,
        inputs=tuple(
            SignatureTensor(s.name, tuple(s.shape.as_list()), s.dtype.name)
            for s in specs
        ),
        outputs=outputs,
        max_abs_error=max_abs_error,
    )


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a keras.Model, got "
            f"{type(model).__name__}. Load one with "
            "keras.saving.load_model(path) after `import keras_lstm`."
        )
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if not inputs:
        raise ValueError(
            f"`model` {model.name} has no defined inputs, so its signature "
            "is unknown. Build it with keras.Input (Functional or Sequential "
            "API) before exporting."
        )
    for layer in models.iter_layers(model):
        if getattr(layer, "stateful", False):
            raise ValueError(
                f"Layer {layer.name} of `model` is stateful, so its state has "
                "a fixed batch size, but a SavedModel signature has a dynamic "
                "batch axis. Rebuild the model with stateful=False, copy the "
                "weights (set_weights) and export that."
            )


def _check_path(path, overwrite):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "`path` must be a str or os.PathLike naming the SavedModel "
            f"directory to create, got {type(path).__name__}."
        )
    path = pathlib.Path(path).absolute()
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"The parent directory of `path` {path} does not exist. Create "
            f"it first (mkdir -p {path.parent})."
        )
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(
                f"`path` {path} already exists. Choose another path or pass "
                "overwrite=True to replace it."
            )
        # Only ever delete what this function could have written.
        if not (path.is_dir() and (path / "saved_model.pb").is_file()):
            raise FileExistsError(
                f"`path` {path} exists and is not a SavedModel directory "
                "(no saved_model.pb), so overwrite=True will not delete it."
            )
    return path


def _input_specs(input_tensors):
    specs = []
    used = set()
    for index, tensor in enumerate(input_tensors):
        name = _INVALID_NAME_CHARS.sub("_", tensor.name or "")
        # Sequential models and unnamed inputs get auto-generated names.
        if not name or name.startswith("keras_tensor") or not name[0].isalnum():
            name = f"input_{index}"
        while name in used:
            name = f"{name}_{index}"
        used.add(name)
        shape = (None, *tensor.shape[1:])
        specs.append(tf.TensorSpec(shape, tf.as_dtype(tensor.dtype), name=name))
    return specs


def _input_structure(model):
    # Functional models may take a dict or a nested structure; `model.input`
    # holds it. Sequential models have no `input` until called; they take
    # a single tensor.
    try:
        return model.input
    except (AttributeError, ValueError):
        return list(model.inputs)


def _call(model, flat_inputs):
    """Calls `model` in inference mode on inputs in `model.inputs` order."""
    structure = _input_structure(model)
    if len(flat_inputs) == 1 and not isinstance(structure, dict):
        inputs = flat_inputs[0]
    else:
        inputs = keras.tree.pack_sequence_as(structure, list(flat_inputs))
    outputs = model(inputs, training=False)
    return _name_outputs(outputs, _functional_output_names(model))


def _serving_module(model, specs):
    module = tf.Module()
    # Track the variables only, not the Keras objects: the SavedModel then
    # restores plain tf.Variables, with no Keras class to deserialize.
    module.model_variables = [v.value for v in model.variables]
    module.serve = tf.function(
        lambda *args: _call(model, args), input_signature=specs
    )
    return module


def _functional_output_names(model):
    try:
        names = list(model.output_names)
    except AttributeError:
        return None
    return names if len(set(names)) == len(names) else None


def _name_outputs(outputs, output_names):
    if isinstance(outputs, dict):
        return {
            _INVALID_NAME_CHARS.sub("_", str(key)): value
            for key, value in outputs.items()
        }
    flat = keras.tree.flatten(outputs)
    if output_names is None or len(output_names) != len(flat):
        output_names = [f"output_{i}" for i in range(len(flat))]
    return {
        _INVALID_NAME_CHARS.sub("_", name): tensor
        for name, tensor in zip(output_names, flat, strict=True)
    }


def _probe(specs):
    rng = np.random.default_rng(0)
    probe = []
    for spec in specs:
        shape = [_PROBE_BATCH] + [
            _PROBE_TIMESTEPS if dim is None else dim
            for dim in spec.shape.as_list()[1:]
        ]
        if spec.dtype.is_floating:
            value = rng.standard_normal(shape)
        else:
            # Index 0 is valid for every embedding or lookup.
            value = np.zeros(shape)
        probe.append(value.astype(spec.dtype.as_numpy_dtype))
    return probe


def _check_parity(model, specs, saved_dir):
    """Reloads the SavedModel, runs it and `model` on a probe batch."""
    serve = tf.saved_model.load(str(saved_dir)).signatures[SIGNATURE_KEY]
    probe = _probe(specs)
    got = serve(
        **{
            spec.name: tf.constant(x)
            for spec, x in zip(specs, probe, strict=True)
        }
    )
    expected = _call(model, probe)
    max_abs_error = 0.0
    for name, value in expected.items():
        difference = np.abs(
            np.asarray(got[name], "float64") - np.asarray(value, "float64")
        )
        max_abs_error = max(max_abs_error, float(np.max(difference, initial=0)))
    # The signature's outputs are a protobuf map, in no stable order; list
    # them in the model's order.
    signature_outputs = serve.structured_outputs
    outputs = tuple(
        SignatureTensor(
            name,
            tuple(signature_outputs[name].shape.as_list()),
            signature_outputs[name].dtype.name,
        )
        for name in expected
    )
    return outputs, max_abs_error


def _tree_size(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
