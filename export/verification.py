"""Verification: a written file against the Keras model, on held-out data.

`to_tflite` runs every file it writes on LiteRT and compares it with the
Keras model it came from. What that proves, and what it does not:

- It proves the file computes what the Keras model computes, on the check
  set, within the mode's tolerance: the lowering, the conversion, the
  quantization and the flatbuffer rewrites together.
- The check set is never the calibration data: it is `check_data`, or a
  share held out of `representative_data` (`calibration.split`), so an
  integer file's ranges are judged on sequences they were not fitted to.
  Without any data the check runs on generated random-normal sequences and
  says so; that proves the arithmetic, not the ranges.
- It does not prove the Keras model is any good, nor that data unlike the
  check set stays within the bound (ranges clip what calibration never
  saw). It runs on LiteRT; TFLite Micro and Vela are checked separately
  (`runners.run_tflite_micro`, `runners.vela_summary`).
"""

import dataclasses

import keras
import numpy as np

from keras_lstm.export.errors import ExportError
from keras_lstm.export.quantization import Quantization

CHECK_LIMIT = 256
"""Most check sequences run; more cost time and prove little more."""

GENERATED_SEQUENCES = 16
"""Random-normal check sequences when the caller gives no data."""


@dataclasses.dataclass(frozen=True)
class Verification:
    """How a file compares with Keras on its check set.

    Attributes:
        check_set: Where the check sequences came from.
        sequences: How many were run.
        timesteps: Their length.
        max_abs_error: Max |file - Keras| over every output element.
        tolerance: The bound it was held to.
        output_range: `max - min` of the Keras outputs.
        argmax_agreement: For outputs with a class axis (last dimension of 2
            or more), the share of rows whose argmax over it agrees with
            Keras's; `None` otherwise.
    """

    check_set: str
    sequences: int
    timesteps: int
    max_abs_error: float
    tolerance: float
    output_range: float
    argmax_agreement: float | None


def check_sequences(
    check: np.ndarray | None,
    check_name: str,
    *,
    batch_size: int,
    timesteps: int,
    features: int,
) -> tuple[np.ndarray, str]:
    """The sequences to verify on, and their name.

    Takes at most `CHECK_LIMIT` of `check`; without any, generates
    `max(batch_size, GENERATED_SEQUENCES)` random-normal sequences (seed 0)
    and names them as such.
    """
    if check is not None:
        if check.shape[0] > CHECK_LIMIT:
            check_name = f"{check_name}, first {CHECK_LIMIT}"
        return check[:CHECK_LIMIT], check_name
    count = max(batch_size, GENERATED_SEQUENCES)
    rng = np.random.default_rng(0)
    generated = rng.normal(size=(count, timesteps, features))
    name = (
        f"generated ({count} random-normal sequences: no data was given, so "
        "this checks the arithmetic, not the ranges)"
    )
    return generated.astype(np.float32), name


def keras_predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The Keras model's float32 outputs on `x`, in batches it accepts."""
    batch = model.inputs[0].shape[0]
    if batch is None:
        return np.asarray(model(x, training=False), np.float32)
    outputs = []
    for start in range(0, x.shape[0], batch):
        chunk = x[start : start + batch]
        count = chunk.shape[0]
        chunk = np.concatenate([chunk, np.zeros_like(x[: batch - count])])
        outputs.append(np.asarray(model(chunk, training=False))[:count])
    return np.concatenate(outputs).astype(np.float32)


def tolerance_for(
    quantization: Quantization,
    expected: np.ndarray,
    *,
    output_scale: float | None,
    tolerance: float | None,
) -> float:
    """`tolerance`, or the mode's default bound for outputs `expected`."""
    if tolerance is not None:
        return tolerance
    return quantization.default_tolerance(
        output_scale=output_scale,
        output_range=float(expected.max() - expected.min()),
        output_magnitude=float(np.abs(expected).max()),
    )


def _argmax_agreement(actual, expected):
    if expected.ndim < 2 or expected.shape[-1] < 2:
        return None
    agree = np.argmax(actual, axis=-1) == np.argmax(expected, axis=-1)
    return float(np.mean(agree))


def verify(
    actual: np.ndarray,
    expected: np.ndarray,
    check: np.ndarray,
    check_name: str,
    *,
    quantization: Quantization,
    bound: float,
    streaming: bool,
) -> Verification:
    """Compares the file's outputs with Keras's; raises past `bound`.

    Args:
        actual: The file's outputs on `check`.
        expected: The Keras model's.
        check: The check sequences.
        check_name: Where they came from.
        quantization: The file's mode (for advice in the error).
        bound: The largest accepted max-abs error.
        streaming: Whether the file takes one frame per call (for advice).

    Returns:
        A `Verification`.

    Raises:
        ExportError: on a shape mismatch, or an error past `bound`.
    """
    if actual.shape != expected.shape:
        raise ExportError(
            f"The file's output has shape {actual.shape}, Keras gives "
            f"{expected.shape} on the check sequences ({check_name})."
        )
    error = float(np.max(np.abs(actual - expected)))
    output_range = float(expected.max() - expected.min())
    agreement = _argmax_agreement(actual, expected)
    if not error <= bound:
        advice = [
            "Pass `tolerance=` to accept a larger error, or `check_data=` "
            "to judge the file on other held-out sequences."
        ]
        if quantization.needs_representative_data:
            advice.append(
                "For an integer file, calibrate on more, or more typical, "
                "sequences (`representative_data=`), or fine-tune with "
                "quantization-aware training (keras_lstm.export."
                "quantize_model)."
            )
        if streaming:
            advice.append(
                "For a streaming file, check that no layer after the LSTMs "
                "mixes time steps."
            )
        agreeing = (
            f", argmax agreement {agreement:.1%}"
            if agreement is not None
            else ""
        )
        raise ExportError(
            f"The file's outputs are {error:.3g} (max abs) from the Keras "
            f"model's on {check.shape[0]} check sequences of "
            f"{check.shape[1]} steps ({check_name}), past the tolerance "
            f"{bound:.3g} for quantization={quantization.value!r} (output "
            f"range {output_range:.3g}{agreeing}). " + " ".join(advice)
        )
    return Verification(
        check_set=check_name,
        sequences=int(check.shape[0]),
        timesteps=int(check.shape[1]),
        max_abs_error=error,
        tolerance=bound,
        output_range=output_range,
        argmax_agreement=agreement,
    )
