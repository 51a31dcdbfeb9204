"""Every private reach-in of `keras_lstm.export._compat`, pinned.

These fail first when a new TensorFlow or Keras moves an internal: the fix
then belongs in `_compat` alone.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_lstm.export import _compat


def test_supported_versions_are_the_installed_ones():
    installed = {"tensorflow": tf.__version__, "keras": keras.__version__}
    for package, version in installed.items():
        assert version.startswith(_compat.SUPPORTED[package]), (
            package,
            version,
            _compat.SUPPORTED[package],
        )


def test_tflite_schema_reads_a_model():
    schema = _compat.tflite_schema()
    for name in ("Model", "BuiltinOperator", "TensorType", "ModelT"):
        assert hasattr(schema, name), name


def test_calibration_resets_patches_the_calibrator_and_restores_it():
    from tensorflow.lite.python.optimize import calibrator

    original = calibrator.Calibrator._feed_tensors
    with _compat.calibration_resets() as reset:
        assert calibrator.Calibrator._feed_tensors is not original
        reset()  # no calibration under way: nothing to reset, no error
    assert calibrator.Calibrator._feed_tensors is original


def test_calibration_resets_zero_the_state_between_samples():
    # The calibrator's own loop, with a recorder for its C++ wrapper: each
    # reset() re-runs Prepare(), which resets the variable tensors. The
    # effect on a real LSTM is tested in test_calibration.py.
    from tensorflow.lite.python.optimize import calibrator

    fed = []

    class Recorder:
        def Prepare(self, *args):  # noqa: N802 (the wrapper's name)
            fed.append("prepare")

        def FeedTensor(self, *args):  # noqa: N802
            fed.append("feed")

    instance = calibrator.Calibrator.__new__(calibrator.Calibrator)
    instance._calibrator = Recorder()
    with _compat.calibration_resets() as reset:

        def samples():
            for _ in range(3):
                reset()
                yield [np.zeros((1, 1), np.float32)]

        instance._feed_tensors(samples, resize_input=False)
    # The calibrator prepares once by itself; each reset prepares again.
    assert fed == ["prepare", "prepare", "feed"] + ["prepare", "feed"] * 2
