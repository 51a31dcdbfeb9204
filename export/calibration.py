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
3. **Calibration covers the data.** Pass the whole training set: past
   `CALIBRATION_LIMIT` sequences, a seeded random sample of them
   calibrates, never a leading slice, which on an ordered series is one
   season whose ranges clip the rest.
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

CALIBRATION_LIMIT = 1000
"""Most sequences calibrated on; a larger set is sampled (`SAMPLE_SEED`).

Calibration runs the float model once per sequence, so its time grows
with the count, while min/max ranges settle within a few hundred random
sequences: on a weather regression, int8 lost 1.0 % MSE held out when
calibrated on a random 256 of 2,417 training windows, 0.8 % on all."""

SAMPLE_SEED = 1
"""Seed of the sample of a calibration set past `CALIBRATION_LIMIT`."""


@dataclasses.dataclass(frozen=True)
class Split:
    """The sequences that calibrate a file and those that check it.

    Attributes:
        calibration: `(n, timesteps, features)` float32 sequences fed to
            the converter, or `None` for modes without calibration.
        check: The sequences the file is verified on, or `None` when the
            caller has none (verification then generates some).
        check_name: Where `check` came from, for the report.
        calibration_name: Which sequences calibrate, for the report.
    """

    calibration: np.ndarray | None
    check: np.ndarray | None
    check_name: str
    calibration_name: str = ""


def split(
    representative_data: np.ndarray | None,
    check_data: np.ndarray | None,
    *,
    calibrated: bool,
    limit: int = CALIBRATION_LIMIT,
) -> Split:
    """Splits the user's data into calibration and check sets.

    - `check_data` given: calibrate on `representative_data` (a seeded
      random `CALIBRATION_LIMIT` of it when it holds more), check on
      `check_data`.
    - Calibrated mode without `check_data`: hold out `HOLDOUT_SHARE` (at
      least one sequence), picked by a seeded permutation so that data
      sorted by class or speaker still calibrates on every class; the
      rest calibrates (sampled past `CALIBRATION_LIMIT`).
    - Uncalibrated mode: nothing is calibrated, so `representative_data`
      is itself unseen by the export and checks the file whole.

    `limit` is the most sequences calibrated on (`CALIBRATION_LIMIT`).

    Raises:
        ValueError: if `representative_data` has a single sequence, which
            cannot both calibrate and verify.
    """
    if check_data is not None:
        name = f"check_data ({check_data.shape[0]} sequences)"
        if not calibrated:
            return Split(None, check_data, name)
        calibration, calibration_name = _sampled(
            representative_data, "representative_data", limit
        )
        return Split(calibration, check_data, name, calibration_name)
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
    calibration, calibration_name = _sampled(
        representative_data[calibration_rows],
        f"the other {count - held} of representative_data",
        limit,
    )
    return Split(
        calibration,
        representative_data[check_rows],
        name,
        calibration_name,
    )


def _sampled(data, what, limit):
    """(calibration sequences, their name): `data`, sampled past `limit`."""
    count = data.shape[0]
    if count <= limit:
        return data, f"{what} ({count} sequences)"
    rows = np.random.default_rng(SAMPLE_SEED).choice(
        count, limit, replace=False
    )
    return data[np.sort(rows)], (
        f"a random {limit} of {what} ({count} sequences, seed {SAMPLE_SEED})"
    )


def _full_batches(data, batch_size):
    """Every sequence once, in batches; the last one filled up with the
    first sequences, which repeats values and so moves no min or max."""
    filler = np.concatenate([data] * -(-batch_size // data.shape[0]))
    for start in range(0, data.shape[0], batch_size):
        chunk = data[start : start + batch_size]
        if chunk.shape[0] < batch_size:
            missing = batch_size - chunk.shape[0]
            chunk = np.concatenate([chunk, filler[:missing]])
        yield chunk


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

    def batches():
        done = 0
        for chunk in _full_batches(data, batch_size):
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


def stepped_dataset(
    data: np.ndarray,
    *,
    batch_size: int,
    step: Callable,
    frame_name: str,
    state_inputs: tuple,
    progress: Callable[[int, int], None] | None = None,
) -> Callable[[], Iterator[dict]]:
    """The data set of an external-state step file: frames with states.

    An external-state file takes its LSTM state as inputs, so its ranges
    must cover the states a sequence passes through: each sequence is
    run frame by frame through the float step (`step`, the traced
    function), from a zero state, and every frame is fed with the state
    the float model holds before it. Inputs are named, as the converter
    orders a signature's inputs by name.

    Args:
        data: `(n, timesteps, ...)` calibration sequences.
        batch_size: The file's batch size.
        step: The traced step, `step(frame, h_0, c_0, ...)` returning a
            dict with the new state as `h_i_out`, `c_i_out`.
        frame_name: The frame input's name.
        state_inputs: `((h_in, c_in), ...)` per LSTM.
        progress: Called as `progress(done, total)` after each frame.
    """
    total = -(-data.shape[0] // batch_size) * data.shape[1]
    names = [name for pair in state_inputs for name in pair]
    shapes = [tuple(spec.shape) for spec in step.input_signature[1:]]

    def frames():
        done = 0
        for chunk in _full_batches(data, batch_size):
            states = [np.zeros(shape, np.float32) for shape in shapes]
            for t in range(chunk.shape[1]):
                frame = chunk[:, t : t + 1]
                yield {
                    frame_name: frame,
                    **dict(zip(names, states, strict=True)),
                }
                new = step(frame, *states)
                states = [np.asarray(new[f"{name}_out"]) for name in names]
                done += 1
                if progress is not None:
                    progress(done, total)

    return frames


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
