"""Calibration: which sequences calibrate an integer file, and how.

Two rules make the calibrated ranges those of the file users run:

1. **Every sequence starts from a zero LSTM state**, as in Keras and in the
   stateless file (which `load_tflite` resets before each sequence). The
   fused op keeps `h` and `c` in variable tensors, and TFLite's calibrator
   resets them once, before its first sample (see
   `_compat.calibration_resets`); the data set below resets them before
   the first frame of every batch of sequences. The ranges therefore
   depend neither on `batch_size` nor on the order of the data.
2. **The check is held out.** Without `check_data`, a seeded random
   `HOLDOUT_SHARE` of `representative_data` is kept out of calibration and
   verifies the file instead (`split`).
"""

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

from keras_lstm.export import masking
from keras_lstm.export.contract import Padding

HOLDOUT_SHARE = 0.2
"""Share of `representative_data` held out to verify a calibrated file."""

HOLDOUT_SEED = 0
"""Seed of the permutation that picks the held-out sequences."""


@dataclasses.dataclass(frozen=True)
class Split:
    """The sequences that calibrate a file and those that check it.

    Attributes:
        calibration: `(n, timesteps, features)` float32 sequences fed to
            the converter, or `None` for modes without calibration.
        check: The sequences the file is verified on, or `None` when the
            caller has none (verification then generates some).
        check_name: Where `check` came from, for the report.
    """

    calibration: np.ndarray | None
    check: np.ndarray | None
    check_name: str


def split(
    representative_data: np.ndarray | None,
    check_data: np.ndarray | None,
    *,
    calibrated: bool,
) -> Split:
    """Splits the user's data into calibration and check sets.

    - `check_data` given: calibrate on all of `representative_data`, check
      on `check_data`.
    - Calibrated mode without `check_data`: hold out `HOLDOUT_SHARE` (at
      least one sequence), picked by a seeded permutation so that data
      sorted by class or speaker still calibrates on every class.
    - Uncalibrated mode: nothing is calibrated, so `representative_data`
      is itself unseen by the export and checks the file whole.

    Raises:
        ValueError: if `representative_data` has a single sequence, which
            cannot both calibrate and verify.
    """
    if check_data is not None:
        name = f"check_data ({check_data.shape[0]} sequences)"
        return Split(representative_data, check_data, name)
    if representative_data is None:
        return Split(None, None, "")
    count = representative_data.shape[0]
    if not calibrated:
        name = (
            f"representative_data ({count} sequences; nothing is calibrated "
            "in this mode)"
        )
        return Split(None, representative_data, name)
    held = max(1, int(round(HOLDOUT_SHARE * count)))
    if count - held < 1:
        raise ValueError(
            f"`representative_data` has {count} sequence: it cannot both "
            "calibrate the file and verify it on data calibration never "
            "saw. Give more sequences, or pass `check_data=` (held-out "
            "sequences) and calibrate on all of them."
        )
    order = np.random.default_rng(HOLDOUT_SEED).permutation(count)
    check_rows = np.sort(order[:held])
    calibration_rows = np.sort(order[held:])
    name = (
        f"held out from representative_data ({held} of {count} sequences, "
        f"{HOLDOUT_SHARE:.0%}, never calibrated on)"
    )
    return Split(
        representative_data[calibration_rows],
        representative_data[check_rows],
        name,
    )


def representative_dataset(
    data: np.ndarray,
    *,
    batch_size: int,
    streaming: bool,
    reset: Callable[[], None],
    progress: Callable[[int, int], None] | None = None,
    padding: Padding | None = None,
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's `representative_dataset`, one batch at a time.

    Every sequence is fed once: the last batch is filled up with the
    calibration set's first sequences, which repeats values and so leaves
    every min and max as it is. A streaming file (one frame per call) gets
    each batch frame by frame.

    Args:
        data: `(n, timesteps, features)` calibration sequences.
        batch_size: The file's batch size.
        streaming: Whether to feed frames `(batch, 1, features)`.
        reset: Zeroes the LSTM state; called before each batch of
            sequences (from `_compat.calibration_resets`).
        progress: Called as `progress(done, total)` after each call the
            converter makes.
        padding: A masked model's padding convention. The file only ever
            runs valid steps (`keras_lstm.export.masking`), so a streaming
            file is calibrated on each sequence's valid frames alone. A
            whole-sequence file has one fixed length, which the calibrator
            cannot resize per sequence: its sequences get their valid steps
            first and the padding after, so that forward LSTMs calibrate
            from the zero state they start from at run time.

    Returns:
        A callable returning an iterator of input lists.
    """
    if padding is not None and streaming:
        return _valid_frames(data, padding, batch_size, reset, progress)
    if padding is not None:
        data = masking.valid_steps_first(data, padding)
    count = -(-data.shape[0] // batch_size)  # every sequence, once
    total = count * (data.shape[1] if streaming else 1)
    filler = np.concatenate([data] * -(-batch_size // data.shape[0]))

    def batches():
        done = 0
        for i in range(count):
            chunk = data[i * batch_size : (i + 1) * batch_size]
            if chunk.shape[0] < batch_size:
                missing = batch_size - chunk.shape[0]
                chunk = np.concatenate([chunk, filler[:missing]])
            frames = (
                [chunk[:, t : t + 1] for t in range(chunk.shape[1])]
                if streaming
                else [chunk]
            )
            reset()
            for frame in frames:
                yield [frame]
                done += 1
                if progress is not None:
                    progress(done, total)

    return batches


def _valid_frames(data, padding, batch_size, reset, progress):
    """A streaming file's data set for a masked model: valid frames only."""
    batches = list(masking.groups(data, padding, batch_size))
    total = sum(batch.shape[1] for _, batch in batches)

    def frames():
        done = 0
        for _, batch in batches:
            reset()
            for t in range(batch.shape[1]):
                yield [batch[:, t : t + 1]]
                done += 1
                if progress is not None:
                    progress(done, total)

    return frames
