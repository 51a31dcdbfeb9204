"""Atomic writes of export artefacts, with the permissions of the user's umask.

Every file or directory the export pipeline puts on disk goes through here:
it is built under a hidden temporary name beside its destination, and moved
into place with one `os.replace` only when complete, so a reader never sees
half a file and a failure leaves the previous one untouched and no
temporary behind.

The temporary is created with `os.open(..., 0o666)` / `os.mkdir(..., 0o777)`,
so the kernel applies the umask (and any default ACL), as `open()` does:
0644 files and 0755 directories under the usual umask 022. `tempfile`'s
0600 / 0700 would make an exported model unreadable to the service that
serves it.
"""

import contextlib
import os
import pathlib
import secrets
import shutil
from collections.abc import Iterator

_FILE_MODE = 0o666
_DIR_MODE = 0o777
_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 100


def write_atomic(path: str | os.PathLike, content: bytes) -> None:
    """Writes `content` to `path` atomically, with the umask's mode.

    Args:
        path: The file to write. Its directory must exist; an existing file
            is replaced.
        content: The bytes to write.

    Raises:
        TypeError: if `content` is not bytes-like.
        OSError: as writing or renaming does; `path` is then unchanged.
    """
    content = memoryview(content)  # TypeError before any file exists.
    with staged_file(path) as temp:
        with open(temp, "wb") as f:
            f.write(content)


@contextlib.contextmanager
def staged_file(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields an empty temporary file that replaces `path` on success.

    The temporary lies in `path`'s directory under a hidden name that keeps
    `path`'s suffix (`.tmp-<random>-model.tflite`). Write it, check it (run
    it, for a model), and leave the block: it is synced and moved onto
    `path` with `os.replace`. If the block raises, it is removed and `path`
    is left as it was.

    Args:
        path: The destination file. Its directory must exist.

    Yields:
        The temporary file's `pathlib.Path`.
    """
    path = pathlib.Path(path)
    temp = _create(path, _new_file)
    try:
        yield temp
        _sync(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields an empty temporary directory that becomes `path` on success.

    As `staged_file`, for a directory (a SavedModel). If `path` exists it
    is swapped out (two renames) and deleted only once the new directory is
    in place; deciding whether it may be replaced is the caller's job.

    Args:
        path: The destination directory. Its parent must exist.

    Yields:
        The temporary directory's `pathlib.Path`.
    """
    path = pathlib.Path(path)
    staging = _create(path, _new_dir)
    try:
        yield staging
        _move_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _new_file(name):
    os.close(os.open(name, _EXCLUSIVE, _FILE_MODE))


def _new_dir(name):
    os.mkdir(name, _DIR_MODE)


def _create(path, make):
    """A fresh hidden sibling of `path`, made by `make(name)`."""
    for _ in range(_ATTEMPTS):
        temp = path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")
        try:
            make(temp)
        except FileExistsError:
            continue
        return temp
    raise FileExistsError(
        f"Could not create a temporary file beside {path} after "
        f"{_ATTEMPTS} attempts."
    )


def _sync(path):
    # The rename must not land before the data on a crash.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_dir(staging, path):
    if not (path.exists() or path.is_symlink()):
        os.rename(staging, path)
        return
    # Swap, so `path` is missing a complete directory only between two
    # renames, and the old one is restored if the second fails.
    retired = _create(path, lambda name: os.mkdir(name, 0o700))
    os.rename(path, retired / path.name)
    try:
        os.rename(staging, path)
    except BaseException:
        os.rename(retired / path.name, path)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)
