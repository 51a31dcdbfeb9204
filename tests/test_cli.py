"""Tests for the `keras-lstm` console script (keras_lstm.export.cli).

The success paths and one user error run the installed console script in
a subprocess, as a user would. The other user errors call the
same `main(argv)` in-process: each subprocess spends 5-20 s importing
TensorFlow, which would make this file the slowest of the suite.
"""

import fcntl
import os
import pathlib
import re
import struct
import subprocess
import sys
import termios
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm.export import ExportError, cli, load_tflite

REPO = pathlib.Path(__file__).resolve().parents[1]
VENV_BIN = pathlib.Path(sys.executable).parent
TIMESTEPS, FEATURES, UNITS = 10, 3, 4
# What TensorFlow and LiteRT log natively (absl before InitializeLog, glog
# style lines from port.cc and cudart_stub.cc, XNNPACK); the console script
# must keep all of it off stderr.
_TF_NATIVE_LOG = re.compile(
    r"(All log messages before absl::InitializeLog"
    r"|^[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]"
    r"|oneDNN|cuda|XNNPACK|TensorFlow Lite)",
    re.IGNORECASE | re.MULTILINE,
)


@pytest.fixture(scope="module")
def console_script():
    script = VENV_BIN / "keras-lstm"
    if not script.exists():
        subprocess.run(
            [str(VENV_BIN / "pip"), "install", "-e", str(REPO), "--no-deps"]
            + ["-q"],
            check=True,
            timeout=600,
        )
    return script


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved model, calibration data and broken inputs."""
    root = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((TIMESTEPS, FEATURES), name="frames")
    x = keras_lstm.LSTM(UNITS)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    model.save(root / "model.keras")

    rng = np.random.default_rng(0)
    calibration = rng.normal(size=(16, TIMESTEPS, FEATURES))
    np.save(root / "calib.npy", calibration.astype("float32"))
    np.save(root / "calib_2d.npy", calibration[:, :, 0])
    np.save(root / "calib_features.npy", rng.normal(size=(16, TIMESTEPS, 5)))
    np.save(root / "calib_text.npy", np.array([["a", "b"]] * 3)[..., None])
    (root / "calib_text.txt").write_text("1 2 3\n")
    (root / "broken.keras").write_bytes(b"not a zip archive")
    (root / "notes.tflite").write_text("not a flatbuffer\n")
    (root / "taken.tflite").write_bytes(b"")
    return root


def _run(console_script, *args, cwd, stderr=subprocess.PIPE, env=None):
    # No TF_CPP_MIN_LOG_LEVEL: quieting TensorFlow is the console script's
    # job, as for a user who never heard of it.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_CPP_")},
        **(env or {}),
    }
    return subprocess.run(
        [str(console_script), *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=600,
    )


def _own_stderr_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


USER_ERRORS = {
    "missing-model": (
        ["export", "missing.keras", "out.tflite"],
        "MODEL missing.keras does not exist",
    ),
    "model-fails-to-load": (
        ["export", "broken.keras", "out.tflite"],
        "cannot load model broken.keras",
    ),
    "unknown-quantization": (
        ["export", "model.keras", "out.tflite", "--quantization", "int4"],
        "invalid choice: 'int4'",
    ),
    "bad-batch-size": (
        ["export", "model.keras", "out.tflite", "--batch-size", "0"],
        "--batch-size: expected a positive integer, got '0'",
    ),
    "int8-without-calibration": (
        ["export", "model.keras", "out.tflite", "--quantization", "int8"],
        "--quantization int8 needs --calibration",
    ),
    "calibration-not-npy": (
        ["export", "model.keras", "out.tflite", "--calibration"]
        + ["calib_text.txt"],
        "is not a .npy array",
    ),
    "calibration-not-numbers": (
        ["export", "model.keras", "out.tflite", "--calibration"]
        + ["calib_text.npy"],
        "expected float sequences",
    ),
    "calibration-bad-rank": (
        ["export", "model.keras", "out.tflite", "--calibration"]
        + ["calib_2d.npy"],
        "has shape (16, 10); expected (num_sequences, timesteps, features)",
    ),
    "calibration-bad-features": (
        ["export", "model.keras", "out.tflite", "--quantization", "int8"]
        + ["--calibration", "calib_features.npy"],
        "expected shape (num_sequences, timesteps, 3), got (16, 10, 5)",
    ),
    "out-not-tflite": (
        ["export", "model.keras", "out_dir"],
        "must end in .tflite; to write a SavedModel directory, add --format",
    ),
    "tflite-flag-on-saved-model": (
        ["export", "model.keras", "out_dir", "--format", "saved_model"]
        + ["--streaming"],
        "--streaming applies to --format tflite only",
    ),
    "c-source-out-with-suffix": (
        ["export", "model.keras", "kws.tflite", "--format", "c"],
        "is the path without suffix for --format c",
    ),
    "out-exists": (
        ["export", "model.keras", "taken.tflite"],
        "already exists; pass --overwrite",
    ),
    "inspect-not-tflite": (
        ["inspect", "notes.tflite"],
        "is not a TFLite flatbuffer",
    ),
}


def _assert_one_line_user_error(code, stdout, stderr, message):
    assert code == 2, stderr[-2000:]
    lines = _own_stderr_lines(stderr)
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith("keras-lstm: error: "), lines
    assert message in lines[0], lines
    assert "Traceback" not in stderr
    assert stdout == ""


@pytest.mark.parametrize(
    "args, message", USER_ERRORS.values(), ids=USER_ERRORS.keys()
)
def test_user_error_is_one_line_and_nonzero(
    files, args, message, capsys, monkeypatch
):
    monkeypatch.chdir(files)
    before = sorted(os.listdir(files))
    code = cli.main(args)
    captured = capsys.readouterr()
    _assert_one_line_user_error(code, captured.out, captured.err, message)
    assert sorted(os.listdir(files)) == before


@pytest.mark.parametrize("dtype", ["bool", "int8", "int64", "uint8"])
def test_calibration_of_bool_or_int_is_cast_to_float32(dtype, tmp_path):
    # As to_tflite's representative_data: any real numbers, as float32.
    values = np.arange(16 * TIMESTEPS * FEATURES) % 3
    array = values.reshape(16, TIMESTEPS, FEATURES).astype(dtype)
    np.save(tmp_path / "calib.npy", array)
    loaded = cli._load_sequences(str(tmp_path / "calib.npy"), "--calibration")
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array.astype(np.float32))


def test_calibration_of_int_ids_stays_token_ids(tmp_path):
    # (num_sequences, timesteps) integers: token ids for an Embedding model.
    ids = (np.arange(16 * TIMESTEPS) % 7).reshape(16, TIMESTEPS)
    np.save(tmp_path / "ids.npy", ids)
    loaded = cli._load_sequences(str(tmp_path / "ids.npy"), "--calibration")
    assert loaded.dtype.kind == "i"
    np.testing.assert_array_equal(loaded, ids)


def _raise(error):
    def fail(*args, **kwargs):
        raise error

    return fail


FAILURES = {
    # A refused result: one line, exit 1.
    "export-error": (ExportError("outputs 0.5 from Keras"), 1, "0.5 from"),
    # The library refusing an argument: a user error.
    "value-error": (ValueError("bad `timesteps`"), 2, "bad `timesteps`"),
    # A bug: still one line, pointing at --debug.
    "internal-error": (
        RuntimeError("boom"),
        1,
        "internal error (RuntimeError: boom); run again with --debug",
    ),
}


@pytest.mark.slow
def test_export_checks_on_check_data(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(files)
    check = np.random.default_rng(1).normal(size=(5, TIMESTEPS, FEATURES))
    np.save(tmp_path / "check.npy", check.astype("float32"))
    out = tmp_path / "checked.tflite"
    argv = ["export", "model.keras", str(out), "--quantization", "int8"]
    argv += ["--calibration", "calib.npy"]
    argv += ["--check-data", str(tmp_path / "check.npy")]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "on all 5 sequences" in captured.out
    assert "check_data (5 sequences)" in captured.out
    assert "of the spread); held to " in captured.out
    assert "lowering: float32 max abs error" in captured.out
    assert "integer LSTMs: within" in captured.out
    assert "TFLite Micro: runnable" in captured.out


@pytest.mark.slow
def test_export_c_source(files, tmp_path, capsys, monkeypatch):
    # The C++ itself is compiled in tests/test_c_source.py; this checks the
    # CLI writes the pair, and only the pair, from the checked file.
    monkeypatch.chdir(files)
    stem = tmp_path / "kws"
    assert cli.main(["export", "model.keras", str(stem), "--format", "c"]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kws.cc", "kws.h"]
    assert f"wrote {stem}.h and {stem}.cc (array kws_model[" in captured.out
    assert "TFLite Micro: runnable" in captured.out
    assert (
        "alignas(16) const unsigned char kws_model[]"
        in (tmp_path / "kws.cc").read_text()
    )
    # Existing files are kept unless --overwrite.
    code = cli.main(["export", "model.keras", str(stem), "--format", "c"])
    assert code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "error, code, message", FAILURES.values(), ids=FAILURES.keys()
)
def test_library_failures_are_one_line(
    files, error, code, message, capsys, monkeypatch
):
    monkeypatch.chdir(files)
    monkeypatch.setattr(cli, "to_tflite", _raise(error))
    assert cli.main(["export", "model.keras", "out.tflite"]) == code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("keras-lstm: error: "), lines
    assert message in lines[0], lines
    assert "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "export", "model.keras", "out.tflite"],
        ["export", "model.keras", "out.tflite", "--debug"],
    ],
    ids=["before-command", "after-command"],
)
def test_debug_shows_the_traceback(files, argv, capsys, monkeypatch):
    monkeypatch.chdir(files)
    monkeypatch.setattr(cli, "to_tflite", _raise(RuntimeError("boom")))
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):"), err
    assert "RuntimeError: boom" in err
    assert err.splitlines()[-1] == (
        "keras-lstm: error: internal error (RuntimeError: boom)"
    )


@pytest.mark.slow
def test_console_script_user_error_has_no_traceback(console_script, files):
    args, message = USER_ERRORS["missing-model"]
    result = _run(console_script, *args, cwd=files)
    _assert_one_line_user_error(
        result.returncode, result.stdout, result.stderr, message
    )


def test_help_lists_commands_and_examples(capsys):
    # In-process: the console script's own start-up is what the exports
    # below and test_console_script_user_error_has_no_traceback run.
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for text in ("export", "inspect", "examples:", "--calibration calib.npy"):
        assert text in out


def _read_all(fd, chunks):
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal.
            return
        if not data:
            return
        chunks.append(data)


@pytest.fixture(scope="module")
def int8_export(console_script, files):
    """`export --quantization int8`, stderr on a pseudo-terminal.

    Returns (completed process, what the terminal showed, the file).
    tqdm draws only on terminals, hence the pty.
    """
    out = files / "model_int8.tflite"
    primary, secondary = os.openpty()
    # A new pty is 0 columns wide, and tqdm draws nothing in 0 columns.
    fcntl.ioctl(
        secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0)
    )
    chunks = []
    reader = threading.Thread(target=_read_all, args=(primary, chunks))
    reader.start()
    try:
        result = _run(
            console_script,
            "export",
            "model.keras",
            out,
            "--quantization",
            "int8",
            "--calibration",
            "calib.npy",
            cwd=files,
            stderr=secondary,
        )
    finally:
        os.close(secondary)
        reader.join(timeout=60)
        os.close(primary)
    return result, b"".join(chunks).decode(errors="replace"), out


@pytest.mark.slow
def test_export_int8_shows_calibration_progress(int8_export, files):
    result, terminal, out = int8_export

    assert result.returncode == 0, terminal[-3000:]
    # 3 of the 16 sequences (20 %) are held out to check the file.
    assert "calibrating on 13 sequences (3 held out)" in terminal
    # The calibration bar counts the converter's draws, batch by batch.
    assert re.search(r"calibration: +\d+%.*13/13", terminal), terminal[-2000:]
    assert "held out from representative_data (3 of 16" in result.stdout
    assert f"wrote {out}" in result.stdout
    assert "quantization int8" in result.stdout
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in result.stdout

    runner = load_tflite(out)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in runner.ops
    assert [t.dtype for t in runner.inputs] == ["int8"]
    # 8 output quanta + 5 % of the range, the former int8 bound.
    calibration = np.load(files / "calib.npy")
    model = keras.saving.load_model(files / "model.keras")
    expected = model.predict(calibration, verbose=0)
    got = runner.predict(calibration)
    spread = float(expected.max() - expected.min())
    tolerance = 8.0 * runner.outputs[0].scale + 0.05 * spread
    error = float(np.max(np.abs(got - expected)))
    assert error <= tolerance, f"max abs error {error} > {tolerance}"


@pytest.mark.slow
def test_export_saved_model(console_script, files, tmp_path):
    out = tmp_path / "served"
    result = _run(
        console_script,
        "export",
        "model.keras",
        out,
        "--format",
        "saved_model",
        cwd=files,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {out} (SavedModel" in result.stdout
    assert "input   frames (None, 10, 3) float32" in result.stdout

    x = np.load(files / "calib.npy")[:3]
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    model = keras.saving.load_model(files / "model.keras")
    # Same float32 TF ops on both sides: rounding differences only.
    error = float(
        np.max(np.abs(serve(frames=tf.constant(x))["logits"] - model(x)))
    )
    assert error <= 1e-5, error


@pytest.mark.slow
def test_inspect_reports_ops_tensors_arena_and_vela(
    console_script, files, int8_export
):
    export, terminal, tflite = int8_export
    assert export.returncode == 0, terminal[-3000:]

    result = _run(console_script, "inspect", tflite, cwd=files)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"{tflite}: " in out and "KiB, sequences, batch 1" in out
    assert "ops: UNIDIRECTIONAL_SEQUENCE_LSTM" in out
    assert re.search(r"input +sequences \(1, 10, 3\) int8 scale=\S+", out)
    assert re.search(r"output +output \(1, 2\) int8 scale=\S+", out)
    assert re.search(r"TFLite Micro arena: \d+ bytes", out), out
    assert "Vela (ethos-u55-128): 0 CPU operators" in out, out


_TRAIN_ON_JAX = """
import keras, numpy as np, keras_lstm
assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8, 3)).astype("float32")
y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
inputs = keras.Input((8, 3))
outputs = keras.layers.Dense(2, activation="softmax")(
    keras_lstm.LSTM(8)(inputs)
)
model = keras.Model(inputs, outputs)
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, y, epochs=2, verbose=0)
model.save("jax_model.keras")
np.save("jax_calib.npy", x)
try:
    from keras_lstm.export import to_tflite

    to_tflite(model, "api.tflite")
except RuntimeError as error:
    print("REFUSED:", error)
"""


@pytest.mark.slow
def test_model_trained_on_jax_exports_int8_while_the_shell_says_jax(
    console_script, tmp_path
):
    env = {
        **{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
        "KERAS_BACKEND": "jax",
    }
    trained = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _TRAIN_ON_JAX],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    # The Python API cannot trace a JAX process's model for TFLite: it says
    # what to run instead, and writes nothing.
    assert "REFUSED: to_tflite needs Keras's TensorFlow backend" in (
        trained.stdout
    ), trained.stdout
    assert "keras-lstm export model.keras out.tflite" in trained.stdout
    assert not (tmp_path / "api.tflite").exists()

    out = tmp_path / "jax_int8.tflite"
    result = _run(
        console_script,
        "export",
        "jax_model.keras",
        out,
        "--quantization",
        "int8",
        "--calibration",
        "jax_calib.npy",
        cwd=tmp_path,
        env={"KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The console script keeps TensorFlow's and LiteRT's native log off
    # stderr, and KERAS_BACKEND=jax from the shell out of the export.
    assert not _TF_NATIVE_LOG.search(result.stderr), result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]
    assert f"wrote {out}" in result.stdout
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in result.stdout
    assert "quantization int8" in result.stdout
    assert load_tflite(out).inputs[0].dtype == "int8"
