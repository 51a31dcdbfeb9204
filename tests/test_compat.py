"""`keras_lstm._compat` against the Keras it was written for.

Every reach into Keras internals goes through `_compat`; these tests pin
each one to Keras 3.15 and fail first when a Keras upgrade moves them.
"""

import pathlib

import keras
import numpy as np

import keras_lstm
from keras_lstm import _compat

PACKAGE = pathlib.Path(keras_lstm.__file__).parent


def test_keras_is_a_supported_version():
    assert _compat.SUPPORTED_KERAS == ("3.15",)
    assert _compat.keras_minor_version() in _compat.SUPPORTED_KERAS, (
        f"keras {keras.__version__}: re-check keras_lstm/_compat.py"
    )


def test_no_private_keras_import_outside_compat():
    offenders = [
        path.name
        for path in PACKAGE.glob("*.py")
        if path.name != "_compat.py" and "keras.src" in path.read_text()
    ]
    assert not offenders, f"keras.src used outside _compat: {offenders}"


def test_dropout_rnn_cell_is_the_class_rnn_configures_masks_for():
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

    assert _compat.DropoutRNNCell is DropoutRNNCell
    assert issubclass(keras_lstm.LSTMCell, DropoutRNNCell)


def test_backend_lstm_is_the_function_keras_lstm_calls(monkeypatch):
    # keras.layers.LSTM.inner_loop calls keras.src.backend.lstm; a spy there
    # must see Keras's call and ours, with the same arguments.
    import keras.src.backend as keras_backend

    seen = []

    def spy(*args, **kwargs):
        seen.append(sorted(kwargs))
        raise NotImplementedError("spy")

    monkeypatch.setattr(keras_backend, "lstm", spy)
    monkeypatch.setattr(_compat, "cudnn_ok", lambda *a, **k: True)
    x = np.ones((2, 4, 3), "float32")
    keras.layers.LSTM(5)(x)
    keras_lstm.LSTM(5)(x)
    assert len(seen) == 2 and seen[0] == seen[1], seen


def test_cudnn_ok_takes_kerass_arguments():
    import keras.src.backend as keras_backend

    args = (keras.activations.tanh, keras.activations.sigmoid, False)
    assert _compat.cudnn_ok(*args, use_bias=True) == bool(
        keras_backend.cudnn_ok(*args, use_bias=True)
    )
    # A relu never goes to cuDNN, on any backend or device.
    assert not _compat.cudnn_ok(
        keras.activations.relu, keras.activations.sigmoid, False, True
    )
