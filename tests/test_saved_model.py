"""Tests for keras_lstm.export.saved_model."""

import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm.export import saved_model
from keras_lstm.export.saved_model import to_saved_model

# Both sides run float32 TF ops; they differ only by kernel scheduling, so
# 1e-5 is a few ulps at the magnitudes of an LSTM output (|h| < 1).
ATOL = 1e-5
FEATURES = 3
UNITS = 4
VENV_BIN = pathlib.Path(sys.executable).parent


def _model(lstm_class, timesteps=None, **lstm_kwargs):
    inputs = keras.Input((timesteps, FEATURES), name="frames")
    x = lstm_class(UNITS, **lstm_kwargs)(inputs)
    outputs = keras.layers.Dense(2, name="logits")(x)
    return keras.Model(inputs, outputs)


def _model_and_twin(timesteps=None, **lstm_kwargs):
    """Our model and the same model on keras.layers.LSTM, equal weights."""
    ours = _model(keras_lstm.LSTM, timesteps, **lstm_kwargs)
    twin = _model(keras.layers.LSTM, timesteps, **lstm_kwargs)
    twin.set_weights(ours.get_weights())
    return ours, twin


def _max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def _tf_env():
    """A minimal environment: no PYTHONPATH, quiet TF."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


@pytest.mark.parametrize(
    "timesteps, lstm_kwargs",
    [
        (None, {"return_sequences": True}),
        (None, {"go_backwards": True}),
        (6, {"return_sequences": True}),
        (6, {}),
    ],
)
def test_signature_serves_any_batch_like_keras_lstm(
    tmp_path, rng, timesteps, lstm_kwargs
):
    ours, twin = _model_and_twin(timesteps, **lstm_kwargs)
    report = to_saved_model(ours, tmp_path / "model")

    (spec,) = report.inputs
    assert spec == saved_model.SignatureTensor(
        "frames", (None, timesteps, FEATURES), "float32"
    )
    assert [o.name for o in report.outputs] == ["logits"]
    assert report.max_abs_error <= ATOL, report.max_abs_error

    serve = tf.saved_model.load(str(report.path)).signatures["serving_default"]
    for batch, steps in [(1, 6), (3, 6), (2, 11)]:
        if timesteps is not None and steps != timesteps:
            continue
        x = rng.standard_normal((batch, steps, FEATURES)).astype("float32")
        got = serve(frames=tf.constant(x))["logits"]
        error = _max_abs(got, twin(x))
        assert error <= ATOL, f"batch={batch} steps={steps}: {error}"


def test_report_describes_the_directory(tmp_path):
    ours, _ = _model_and_twin()
    report = to_saved_model(ours, str(tmp_path / "model"))

    assert report.path == tmp_path / "model"
    assert (report.path / "saved_model.pb").is_file()
    files = [f for f in report.path.rglob("*") if f.is_file()]
    assert report.size_bytes == sum(f.stat().st_size for f in files)
    assert report.signature == "serving_default"
    assert report.outputs == (
        saved_model.SignatureTensor("logits", (None, 2), "float32"),
    )
    # Nothing but the SavedModel itself is left beside it.
    assert os.listdir(tmp_path) == ["model"]


def test_dict_inputs_and_outputs_keep_their_keys(tmp_path, rng):
    a = keras.Input((4, 2), name="a")
    b = keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([keras_lstm.LSTM(2)(a), b])
    model = keras.Model({"b": b, "a": a}, {"y": joined, "z": 2 * joined})
    report = to_saved_model(model, tmp_path / "model")

    assert [i.name for i in report.inputs] == ["a", "b"]
    assert [o.name for o in report.outputs] == ["y", "z"]
    serve = tf.saved_model.load(str(report.path)).signatures["serving_default"]
    xa = rng.standard_normal((2, 4, 2)).astype("float32")
    xb = rng.standard_normal((2, 3)).astype("float32")
    got = serve(a=tf.constant(xa), b=tf.constant(xb))
    expected = model({"a": xa, "b": xb})
    for key in ("y", "z"):
        error = _max_abs(got[key], expected[key])
        assert error <= ATOL, f"{key}: {error}"


def test_sequential_model_gets_positional_names(tmp_path):
    model = keras.Sequential(
        [keras.Input((5, FEATURES)), keras_lstm.LSTM(UNITS)]
    )
    report = to_saved_model(model, tmp_path / "model")
    assert [i.name for i in report.inputs] == ["input_0"]
    assert [o.name for o in report.outputs] == ["output_0"]
    assert report.max_abs_error <= ATOL, report.max_abs_error


# The blocker makes any import of keras_lstm fail, so the load proves the
# SavedModel needs no class of ours. (Keras itself stays: TF 2.21 imports it
# on `import tensorflow`, and a machine with TF has it.) `-I` drops
# PYTHONPATH, the working directory and user site-packages from sys.path;
# the editable install stays visible, which is what the blocker is for.
_LOAD_WITHOUT_KERAS_LSTM = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "keras_lstm":
                raise ModuleNotFoundError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], serve(frames=tf.constant(x))["logits"].numpy())
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "keras_lstm")
    assert not loaded, loaded
    """
)


@pytest.mark.slow
def test_loads_where_keras_lstm_cannot_be_imported(tmp_path, rng):
    ours, twin = _model_and_twin(return_sequences=True)
    report = to_saved_model(ours, tmp_path / "model")
    x = rng.standard_normal((3, 9, FEATURES)).astype("float32")
    np.save(tmp_path / "x.npy", x)

    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _LOAD_WITHOUT_KERAS_LSTM,
            str(report.path),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        cwd=tmp_path,
        env=_tf_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    error = _max_abs(np.load(tmp_path / "y.npy"), twin(x))
    assert error <= ATOL, error


@pytest.mark.slow
def test_saved_model_cli_runs_it(tmp_path, rng):
    ours, twin = _model_and_twin(return_sequences=True)
    report = to_saved_model(ours, tmp_path / "model")
    cli = str(VENV_BIN / "saved_model_cli")

    # What `saved_model_cli show` prints, read in-process (a subprocess
    # spends ~10 s importing TensorFlow); `run` below is the real tool.
    signature = tf.saved_model.load(str(report.path)).signatures[
        "serving_default"
    ]
    (spec,) = signature.structured_input_signature[1].values()
    assert list(signature.structured_input_signature[1]) == ["frames"]
    assert list(signature.structured_outputs) == ["logits"]
    assert spec.shape.as_list() == [None, None, 3]

    x = rng.standard_normal((2, 5, FEATURES)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            str(report.path),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"frames={tmp_path / 'x.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        env=_tf_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    error = _max_abs(np.load(tmp_path / "out" / "logits.npy"), twin(x))
    assert error <= ATOL, error


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    ours, _ = _model_and_twin()
    real_save = tf.saved_model.save

    def save_then_fail(*args, **kwargs):
        real_save(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(saved_model.tf.saved_model, "save", save_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        to_saved_model(ours, tmp_path / "model")
    assert os.listdir(tmp_path) == []


def test_directory_and_files_take_the_umask(tmp_path):
    # A SavedModel is served by another user (TF Serving): 0755 / 0644
    # under umask 022, not tempfile's 0700.
    ours, _ = _model_and_twin()
    previous = os.umask(0o022)
    try:
        report = to_saved_model(ours, tmp_path / "model")
    finally:
        os.umask(previous)
    entries = [report.path, *report.path.rglob("*")]
    modes = {
        str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777)
        for p in entries
    }
    for entry in entries:
        expected = 0o755 if entry.is_dir() else 0o644
        assert entry.stat().st_mode & 0o777 == expected, modes


def test_existing_path_is_refused_unless_overwrite(tmp_path, rng):
    first, _ = _model_and_twin()
    second, second_twin = _model_and_twin()
    path = tmp_path / "model"
    to_saved_model(first, path)

    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_saved_model(second, path)

    to_saved_model(second, path, overwrite=True)
    assert os.listdir(tmp_path) == ["model"]
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    x = rng.standard_normal((1, 4, FEATURES)).astype("float32")
    error = _max_abs(serve(frames=tf.constant(x))["logits"], second_twin(x))
    assert error <= ATOL, error


def test_overwrite_never_deletes_other_directories(tmp_path):
    ours, _ = _model_and_twin()
    path = tmp_path / "photos"
    path.mkdir()
    (path / "keep.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a SavedModel directory"):
        to_saved_model(ours, path, overwrite=True)
    assert (path / "keep.jpg").read_bytes() == b"x"


def _stateful_model():
    inputs = keras.Input((4, FEATURES), batch_size=2)
    return keras.Model(inputs, keras_lstm.LSTM(UNITS, stateful=True)(inputs))


def _stateful_inside_a_wrapper():
    # TimeDistributed has no `stateful` of its own: only a walk through
    # wrappers (models.iter_layers) finds the LSTM inside.
    inputs = keras.Input((3, 4, FEATURES), batch_size=2)
    lstm = keras_lstm.LSTM(UNITS, stateful=True, name="inner_lstm")
    return keras.Model(inputs, keras.layers.TimeDistributed(lstm)(inputs))


@pytest.mark.parametrize(
    "make_model, path, error, match",
    [
        (lambda: "model.keras", "ok", TypeError, "must be a keras.Model"),
        (
            lambda: keras.Sequential([keras_lstm.LSTM(UNITS)]),
            "ok",
            ValueError,
            "has no defined inputs",
        ),
        (_stateful_model, "ok", ValueError, "stateful=False"),
        (
            _stateful_inside_a_wrapper,
            "ok",
            ValueError,
            "Layer inner_lstm of `model` is stateful",
        ),
        (
            lambda: _model(keras_lstm.LSTM),
            "missing/model",
            FileNotFoundError,
            "does not exist",
        ),
        (lambda: _model(keras_lstm.LSTM), None, TypeError, "`path` must be"),
    ],
    ids=[
        "not-a-model",
        "unbuilt",
        "stateful",
        "stateful-in-wrapper",
        "no-parent",
        "path-type",
    ],
)
def test_invalid_arguments_fail_before_any_work(
    tmp_path, make_model, path, error, match
):
    target = None if path is None else tmp_path / path
    with pytest.raises(error, match=match):
        to_saved_model(make_model(), target)
    assert os.listdir(tmp_path) == []
