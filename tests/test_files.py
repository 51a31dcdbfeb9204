"""Tests for keras_lstm.export.files: atomic writes with the umask's modes."""

import os
import stat

import pytest

from keras_lstm.export import files

# (umask, file mode, directory mode): what `open()` and `mkdir` give.
UMASKS = [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)]


@pytest.fixture
def umask(request):
    """Sets the process umask for one test (xdist workers are processes)."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _entries(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize(
    "umask, file_mode, dir_mode",
    UMASKS,
    ids=[oct(u) for u, _, _ in UMASKS],
    indirect=["umask"],
)
def test_modes_follow_the_umask(umask, file_mode, dir_mode, tmp_path):
    files.write_atomic(tmp_path / "a.tflite", b"abc")
    assert _mode(tmp_path / "a.tflite") == file_mode

    with files.staged_file(tmp_path / "b.tflite") as temp:
        assert _mode(temp) == file_mode
        temp.write_bytes(b"abc")
    assert _mode(tmp_path / "b.tflite") == file_mode

    with files.staged_dir(tmp_path / "served") as staging:
        (staging / "variables").mkdir()
        (staging / "saved_model.pb").write_bytes(b"pb")
    assert _mode(tmp_path / "served") == dir_mode
    assert _mode(tmp_path / "served" / "variables") == dir_mode
    assert _mode(tmp_path / "served" / "saved_model.pb") == file_mode
    # A replaced file takes the new mode too, not the old file's.
    os.chmod(tmp_path / "a.tflite", 0o400)
    files.write_atomic(tmp_path / "a.tflite", b"new")
    assert _mode(tmp_path / "a.tflite") == file_mode


def test_write_atomic_writes_and_replaces(tmp_path):
    path = tmp_path / "model.tflite"
    files.write_atomic(path, b"old")
    files.write_atomic(str(path), bytearray(b"new"))
    assert path.read_bytes() == b"new"
    assert _entries(tmp_path) == ["model.tflite"]


def test_write_atomic_refuses_text_before_touching_disk(tmp_path):
    with pytest.raises(TypeError):
        files.write_atomic(tmp_path / "model.tflite", "text")
    assert _entries(tmp_path) == []


def test_failed_rename_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")

    def fail(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert _entries(tmp_path) == ["model.tflite"]


def test_failure_inside_staged_file_leaves_old_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="verification failed"):
        with files.staged_file(path) as temp:
            temp.write_bytes(b"half")
            assert temp.parent == tmp_path
            assert temp.name.startswith(".") and temp.suffix == ".tflite"
            raise RuntimeError("verification failed")
    assert path.read_bytes() == b"old"
    assert _entries(tmp_path) == ["model.tflite"]


def test_staged_file_writes_into_missing_destination(tmp_path):
    with files.staged_file(tmp_path / "model.tflite") as temp:
        assert temp.read_bytes() == b""
        temp.write_bytes(b"content")
    assert (tmp_path / "model.tflite").read_bytes() == b"content"
    assert _entries(tmp_path) == ["model.tflite"]


def test_interrupt_inside_staged_file_removes_the_temporary(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with files.staged_file(tmp_path / "model.tflite") as temp:
            temp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert _entries(tmp_path) == []


def test_staged_dir_replaces_an_existing_directory(tmp_path):
    path = tmp_path / "served"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    with files.staged_dir(path) as staging:
        (staging / "new.pb").write_bytes(b"new")
    assert _entries(path) == ["new.pb"]
    assert _entries(tmp_path) == ["served"]


def test_failure_inside_staged_dir_leaves_old_directory(tmp_path):
    path = tmp_path / "served"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="parity"):
        with files.staged_dir(path) as staging:
            (staging / "sub").mkdir()
            (staging / "sub" / "half.pb").write_bytes(b"half")
            raise RuntimeError("parity")
    assert _entries(path) == ["old.pb"]
    assert _entries(tmp_path) == ["served"]


def test_failed_swap_restores_old_directory(tmp_path, monkeypatch):
    path = tmp_path / "served"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    rename = os.rename

    def fail_on_staging(source, destination):
        if os.path.basename(source).startswith(".tmp-") and (
            os.fspath(destination) == os.fspath(path)
        ):
            raise OSError("rename failed")
        rename(source, destination)

    monkeypatch.setattr(os, "rename", fail_on_staging)
    with pytest.raises(OSError, match="rename failed"):
        with files.staged_dir(path) as staging:
            (staging / "new.pb").write_bytes(b"new")
    assert _entries(path) == ["old.pb"]
    assert _entries(tmp_path) == ["served"]
