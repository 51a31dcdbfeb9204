"""Every reach into Keras internals that `keras_lstm` makes, in one place.

Keras 3 has no public names for these, and they move between releases, so
each lookup lives here and `tests/test_compat.py` pins them to the Keras
versions in `SUPPORTED_KERAS` (pyproject.toml: `keras>=3.15,<3.16`).

- `DropoutRNNCell`: `keras.layers.RNN` prepares one dropout mask per
  sequence, and clears it afterwards, only for cells that are
  `DropoutRNNCell`s (`rnn.py`, `_maybe_config_dropout_masks`).
- `backend_lstm` and `cudnn_ok`: the active backend's fused LSTM, the seam
  that `keras.layers.LSTM.inner_loop` tries before its generic loop. On a
  GPU each backend sends it to cuDNN (TensorFlow's `CudnnRNNV3`,
  `jax.experimental.rnn`, `torch._VF.lstm`); otherwise it raises
  `NotImplementedError` (TensorFlow, JAX) or, on PyTorch, runs a Python
  loop.
"""

import importlib

import keras

SUPPORTED_KERAS = ("3.15",)


def keras_minor_version():
    """`"3.15"` for Keras 3.15.x."""
    return ".".join(keras.__version__.split(".")[:2])


def _dropout_rnn_cell_base():
    # The class is not public; take it from the public keras.layers.LSTMCell
    # rather than importing keras.src.
    for klass in keras.layers.LSTMCell.__mro__:
        if klass.__name__ == "DropoutRNNCell":
            return klass
    raise ImportError(
        "keras_lstm needs `keras.layers.LSTMCell` to derive from Keras's "
        f"DropoutRNNCell, which Keras {keras.__version__} no longer does. "
        f"Install keras {' or '.join(SUPPORTED_KERAS)}.x (see pyproject.toml)."
    )


DropoutRNNCell = _dropout_rnn_cell_base()


def _backend_module():
    # keras.src.backend re-exports the active backend's rnn functions; it is
    # imported only when a layer routes, so `import keras_lstm` stays cheap.
    return importlib.import_module("keras.src.backend")


def backend_lstm(*args, **kwargs):
    """The active backend's `lstm(...)`, as `keras.layers.LSTM` calls it.

    Raises:
        NotImplementedError: when the backend has no fused kernel for the
            call (no GPU, a mask on JAX or PyTorch, ...).
    """
    return _backend_module().lstm(*args, **kwargs)


def cudnn_ok(activation, recurrent_activation, unroll, use_bias):
    """Whether the active backend would send this LSTM to cuDNN.

    The backend's own predicate: standard activations (tanh, sigmoid), no
    unrolling, a bias, and a GPU that the backend can see.
    """
    return bool(
        _backend_module().cudnn_ok(
            activation, recurrent_activation, unroll, use_bias=use_bias
        )
    )


def tf_in_xla_compilation():
    """Whether TensorFlow is tracing a function that XLA will compile.

    True inside `tf.function(jit_compile=True)`, which is how Keras compiles
    a model under `jit_compile=True`: TensorFlow enters an XLA control-flow
    context while tracing it. TensorFlow has no public name for the check.
    """
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return bool(
        control_flow_util.GraphOrParentsInXlaContext(
            tf.compat.v1.get_default_graph()
        )
    )
