"""Checks of the export functions' arguments, each naming the argument.

Every public export function validates all its arguments before any work
starts (`keras_lstm.export.plan`); these are the checks they share.
"""

import math
import numbers
import os


def positive_int(name, value, *, allow_none=False):
    """`value` as an int, or `None` when allowed; raises naming `name`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            "Expected a positive integer" + (" or None." if allow_none else ".")
        )
    if value < 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {value}. "
            "Expected a positive integer."
        )
    return int(value)


def flag(name, value):
    """`value` if it is a bool; raises naming `name`."""
    if not isinstance(value, bool):
        raise TypeError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            "Expected True or False."
        )
    return value


def output_path(path):
    """The absolute path of a file to write, whose directory exists."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received an invalid value for argument `path`: {path!r}. "
            "Expected a file path (str or os.PathLike)."
        )
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(
            f"Received an invalid value for argument `path`: {path!r} is a "
            "directory. Give a file name, e.g. 'model.tflite'."
        )
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Received an invalid value for argument `path`: the directory "
            f"{directory!r} does not exist. Create it first."
        )
    return path


def _positive_real(value):
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and value > 0
    )


def tolerance(value):
    """A positive finite max-abs bound, or `None` for the default."""
    if value is None:
        return None
    if not _positive_real(value):
        raise ValueError(
            f"Received an invalid value for argument `tolerance`: "
            f"{value!r}. Expected a positive float (a bound on the max abs "
            "error against Keras), or None for the default criterion "
            "(keras_lstm.export.verification)."
        )
    return float(value)


def share(name, value, *, low_open=True):
    """A fraction in (0, 1] (or [0, 1]), or `None` for the default."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (0 < value <= 1 if low_open else 0 <= value <= 1)
    ):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            f"Expected a fraction in {interval}, or None for the default "
            "(keras_lstm.export.verification)."
        )
    return float(value)


def positive_float(name, value):
    """A positive finite float, or `None` for the default."""
    if value is None:
        return None
    if not _positive_real(value):
        raise ValueError(
            f"Received an invalid value for argument `{name}`: {value!r}. "
            "Expected a positive float, or None for the default "
            "(keras_lstm.export.verification)."
        )
    return float(value)


def progress(value):
    """A `progress(done, total)` callable, or `None`."""
    if value is not None and not callable(value):
        raise TypeError(
            "Received an invalid value for argument `progress`: expected a "
            f"callable progress(done, total) or None, got {value!r}."
        )
    return value
