"""Verification: a file against the Keras model, on held-out data.

Every file `to_tflite` writes is run on LiteRT (int16x8 files on TFLite
Micro) and compared with the Keras model it came from, on all of the check
data. Three questions are asked, and the report answers each apart:

1. **Is the lowering right?** A float question, held to float tolerance
   for every file: the float32 file of the same lowering matches Keras
   within `1e-4 * max(1, |y|)` (`LOWERING_RTOL`). For a lossy file this
   float32 file is converted too, so a lowering bug can never hide under a
   quantization bound.
2. **Is the integer file a faithful quantization of that float graph?**
   Each fused LSTM op is run against the float LSTM on its own dequantized
   inputs, weights and biases (`keras_lstm.export.fidelity`); a wrong
   scale or a broken rewrite shows as tens of output quanta where a
   faithful op stays under one.
3. **What does the quantization cost, as users judge it?**
   (`Loss`, `Criterion`): decisions for classifiers (softmax: argmax over
   the last axis; sigmoid: each element above 0.5), error relative to the
   output's spread for regressions. The report gives max, p99, mean and
   RMS error, and how much of the check data falls outside the file's
   input and output ranges (an integer file clips there).

The check set is never the calibration data: it is `check_data`, or a
share held out of `representative_data` (`calibration.split`). Without any
data the check runs on generated sequences and says so; that proves the
arithmetic, not the ranges. It does not prove the Keras model is any good.
"""

import dataclasses
import enum
import math
import os
import tempfile
import warnings

import keras
import numpy as np

from keras_lstm.export import (
    _compat,
    arguments,
    fidelity,
    inputs,
    inspection,
    lowering,
    multi_io,
    runners,
)
from keras_lstm.export.errors import ExportError
from keras_lstm.export.quantization import Quantization

LOWERING_RTOL = 1e-4
"""Float32 files: max |file - Keras| <= LOWERING_RTOL * max(1, max |y|).

The fused kernel and Keras differ by float rounding only (measured <= 1e-7
relative on every tested model); float rounding is relative, so the bound
scales with the outputs (a file whose outputs are around 280 differs by
~1e-4)."""

MIN_AGREEMENT = 0.98
"""Default for class outputs: the file's decisions agree with Keras's on
at least 98 % of the check rows Keras decides by `TIE_MARGIN` or more, so
a user's accuracy moves by at most two points. The keras.io classifiers in
the suite (addition_rnn, which the former max-abs bound refused at 0.096
against 0.081, IMDB with and without a mask, Conv1D, JapaneseVowels)
export in int8 with it, and 100 random trained architectures
(`tools/random_models.py`, seeds 0-99, 2026-12-03) gave no int8 file that
passed and then failed on fresh data (the former max-abs bound let 4
through)."""

MAX_RELATIVE_ERROR = 0.1
"""Default for value outputs: RMS |file - Keras| <= 10 % of the standard
deviation of Keras's outputs. For a model that explains 90 % of its
target's variance this adds at most 10 % to its MSE (the acceptance bar
for regressions). Measured held out on a weather-style regression
(`tools/weather_calibration.py`, 2026-12-03): int8 1.2 % calibrated on
the whole training set, 1.9 % on a random 256, 2.0 % on a leading slice;
int16x8 0.2 %."""

TIE_MARGIN = 0.02
"""A decision Keras itself takes by less (top probability minus the
runner-up; |2p - 1| for a sigmoid) is a near tie: rounding may flip it
without changing anything a user would call a decision, so
`decision_agreement` leaves it out and reports its share. 0.02 is five
quanta of an int8 softmax (1/256); a broken file flips decisive rows."""

OUTSIDE_WARNING = 0.02
"""Warn when more than this share of the check data falls outside the
file's integer input or output range (values there are clipped)."""


class OutputKind(enum.StrEnum):
    """How users judge an output, which sets its default criterion."""

    CLASSES = "classes"
    """A softmax: the decision is the argmax over the last axis."""
    BINARY = "binary"
    """A sigmoid: each element is a decision, above or below 0.5."""
    VALUES = "values"
    """Anything else (a regression, logits, features)."""


def output_kinds(model: keras.Model) -> tuple[OutputKind, ...]:
    """Each output's `OutputKind`, from the layer that computes it.

    A `Softmax` layer or a `softmax` activation gives `CLASSES`, a
    `sigmoid` activation `BINARY`, through wrappers such as
    `TimeDistributed`; anything else `VALUES`.
    """
    return tuple(_kind_of(layer) for layer in _compat.output_layers(model))


def _kind_of(layer):
    while not hasattr(layer, "activation") and hasattr(layer, "layer"):
        layer = layer.layer  # TimeDistributed, Bidirectional ...
    if isinstance(layer, keras.layers.Softmax):
        return OutputKind.CLASSES
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "")
    if name == "softmax":
        return OutputKind.CLASSES
    if name == "sigmoid":
        return OutputKind.BINARY
    return OutputKind.VALUES


@dataclasses.dataclass(frozen=True)
class Loss:
    """How far a file's outputs are from Keras's, as users judge them.

    Attributes:
        kind: The output's `OutputKind`.
        max_abs: Max |file - Keras| over every element.
        p99_abs: Its 99th percentile.
        mean_abs: Its mean.
        rms: Root mean square of `file - Keras`.
        spread: Standard deviation of Keras's outputs.
        relative_rms: `rms / spread` (`inf` for a constant output that the
            file misses, 0 when both are exact).
        decision_agreement: For `CLASSES` and `BINARY` outputs, the share
            of Keras's decisions that the file takes too, among those Keras
            takes by at least `TIE_MARGIN`; else `None`.
        near_ties: The share of decisions Keras takes by less than
            `TIE_MARGIN` (left out of `decision_agreement`); `None` for
            values.
    """

    kind: OutputKind
    max_abs: float
    p99_abs: float
    mean_abs: float
    rms: float
    spread: float
    relative_rms: float
    decision_agreement: float | None
    near_ties: float | None = None


def _decisions(kind, y):
    if kind is OutputKind.CLASSES:
        return np.argmax(y, axis=-1)
    return y > 0.5


def _margins(kind, y):
    """Keras's own margin for each decision: top minus runner-up."""
    if kind is OutputKind.CLASSES:
        top = np.sort(y, axis=-1)
        return top[..., -1] - top[..., -2]
    return np.abs(2.0 * y - 1.0)  # p against 1 - p


def loss(actual: np.ndarray, expected: np.ndarray, kind: OutputKind) -> Loss:
    """The `Loss` of `actual` (the file's outputs) against `expected`."""
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    rms = float(np.sqrt(np.mean(difference**2)))
    spread = float(np.std(expected.astype(np.float64)))
    if spread > 0:
        relative = rms / spread
    else:
        relative = 0.0 if rms == 0 else math.inf
    agreement = ties = None
    if kind is not OutputKind.VALUES:
        decisive = _margins(kind, expected) >= TIE_MARGIN
        ties = float(1.0 - np.mean(decisive))
        agree = _decisions(kind, actual) == _decisions(kind, expected)
        agreement = float(np.mean(agree[decisive])) if decisive.any() else 1.0
    return Loss(
        kind=kind,
        max_abs=float(difference.max()),
        p99_abs=float(np.percentile(difference, 99)),
        mean_abs=float(difference.mean()),
        rms=rms,
        spread=spread,
        relative_rms=relative,
        decision_agreement=agreement,
        near_ties=ties,
    )


def float_tolerance(expected: np.ndarray) -> float:
    """The float32 bound for outputs `expected` (`LOWERING_RTOL`)."""
    return LOWERING_RTOL * max(1.0, float(np.abs(expected).max()))


@dataclasses.dataclass(frozen=True)
class Criterion:
    """What a file's outputs must satisfy against Keras's.

    A float32 file is held to `max_abs` (float rounding). A lossy file is
    held to `max_abs` when the caller gives `tolerance=`, else to the
    default that fits its output: `min_agreement` for class outputs,
    `max_relative_error` for values.

    Attributes:
        max_abs: A bound on max |file - Keras|, or `None`.
        min_agreement: The least share of agreeing decisions.
        max_relative_error: The largest `Loss.relative_rms`.
    """

    max_abs: float | None = None
    min_agreement: float = MIN_AGREEMENT
    max_relative_error: float = MAX_RELATIVE_ERROR

    def describe(self, kind: OutputKind) -> str:
        """The criterion in words, for the report."""
        if self.max_abs is not None:
            return f"max abs error <= {self.max_abs:.3g}"
        if kind is OutputKind.VALUES:
            return (
                f"RMS error <= {self.max_relative_error:.3g} x the spread "
                "of Keras's outputs"
            )
        return (
            f"decision agreement >= {self.min_agreement:.1%} "
            f"({kind.value} output)"
        )

    def problem(self, result: Loss) -> str | None:
        """Why `result` fails the criterion, or `None` if it holds."""
        if self.max_abs is not None:
            if result.max_abs <= self.max_abs:
                return None
            return (
                f"max abs error {result.max_abs:.3g} is past the "
                f"tolerance {self.max_abs:.3g}"
            )
        if result.kind is OutputKind.VALUES:
            if result.relative_rms <= self.max_relative_error:
                return None
            return (
                f"RMS error {result.rms:.3g} is {result.relative_rms:.1%} "
                "of the spread of Keras's outputs "
                f"({result.spread:.3g}), past {self.max_relative_error:.1%}"
            )
        if result.decision_agreement >= self.min_agreement:
            return None
        return (
            f"its decisions agree with Keras's on "
            f"{result.decision_agreement:.1%} of the check rows Keras "
            f"decides by {TIE_MARGIN:g} or more, under "
            f"{self.min_agreement:.1%}"
        )


def criterion(
    quantization: Quantization,
    expected: np.ndarray,
    *,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    max_relative_error: float | None = None,
) -> Criterion:
    """The `Criterion` for a file of mode `quantization`.

    `tolerance` (a max-abs bound) wins for every mode; a float32 file is
    otherwise held to `float_tolerance(expected)`; lossy files to the
    output kind's default, or the caller's `min_agreement` /
    `max_relative_error`.
    """
    if tolerance is None and quantization is Quantization.NONE:
        tolerance = float_tolerance(expected)
    return Criterion(
        max_abs=tolerance,
        min_agreement=MIN_AGREEMENT if min_agreement is None else min_agreement,
        max_relative_error=(
            MAX_RELATIVE_ERROR
            if max_relative_error is None
            else max_relative_error
        ),
    )


@dataclasses.dataclass(frozen=True)
class Ranges:
    """How much of the check data an integer file clips.

    Attributes:
        inputs_outside: The share of check sequences with a value outside
            the input tensor's representable range.
        outputs_outside: The share of Keras's output values outside the
            output tensor's representable range.
    """

    inputs_outside: float = 0.0
    outputs_outside: float = 0.0


def ranges(check, expected, input_info, output_info) -> Ranges:
    """`Ranges` of the check data against the file's integer I/O tensors.

    Float tensors and token ids clip nothing (0.0).
    """

    def outside(x, info):
        if not info.scale or np.issubdtype(x.dtype, np.integer):
            return np.zeros(x.shape, bool)
        limits = np.iinfo(np.dtype(info.dtype))
        low = (limits.min - info.zero_point) * info.scale
        high = (limits.max - info.zero_point) * info.scale
        # Half a quantum past the last level still rounds onto it.
        margin = info.scale / 2
        return (x < low - margin) | (x > high + margin)

    rows = outside(check, input_info).reshape(check.shape[0], -1)
    return Ranges(
        inputs_outside=float(np.mean(rows.any(axis=1))),
        outputs_outside=float(np.mean(outside(expected, output_info))),
    )


@dataclasses.dataclass(frozen=True)
class Verification:
    """How a file compares with Keras on its check set.

    Attributes:
        check_set: Where the check sequences came from.
        sequences: How many were run (all of them).
        timesteps: Their length.
        losses: One `Loss` per output.
        criteria: What each output was held to, in words.
        tolerance: The max-abs bound, where the criterion is one, else
            `None`.
        lowering_error: Max |float32 file - Keras| of the same lowering.
        lowering_tolerance: The float bound it was held to.
        lstm_error_quanta: For integer files, the largest error of a fused
            LSTM op against the float LSTM on its own inputs, in output
            quanta (`keras_lstm.export.fidelity`); else `None`.
        ranges: How much of the check data the file's integer input and
            output clip.
        rules: The `Criterion` each output was held to.
        kinds: Each output's `OutputKind`.
    """

    check_set: str
    sequences: int
    timesteps: int
    losses: tuple[Loss, ...]
    criteria: tuple[str, ...]
    tolerance: float | None
    lowering_error: float
    lowering_tolerance: float
    lstm_error_quanta: float | None = None
    ranges: Ranges = Ranges()
    rules: tuple[Criterion, ...] = (Criterion(),)
    kinds: tuple[OutputKind, ...] = (OutputKind.VALUES,)

    def problems(self, actual, expected) -> list[str]:
        """Why other outputs of the file fail this check's criteria.

        For judging the same file on other data or another runtime (TFLite
        Micro) as it was judged here.

        Args:
            actual: The file's outputs, one array per output (or one array).
            expected: Keras's, likewise.

        Returns:
            One sentence per failing output; empty when all hold.
        """
        if not isinstance(actual, (list, tuple)):
            actual, expected = [actual], [expected]
        found = []
        for got, want, kind, rule in zip(
            actual, expected, self.kinds, self.rules, strict=True
        ):
            if np.shape(got) != np.shape(want):
                found.append(f"shape {np.shape(got)} != {np.shape(want)}")
                continue
            problem = rule.problem(loss(got, want, kind))
            if problem is not None:
                found.append(problem)
        return found

    @property
    def max_abs_error(self) -> float:
        return max(item.max_abs for item in self.losses)

    @property
    def output_range(self) -> float:
        return max(item.spread for item in self.losses)

    @property
    def argmax_agreement(self) -> float | None:
        agreements = [
            item.decision_agreement
            for item in self.losses
            if item.decision_agreement is not None
        ]
        return min(agreements) if agreements else None


def keras_predict(model: keras.Model, x) -> list[np.ndarray]:
    """The Keras model's float32 outputs on `x`, one array per output.

    `x` is one array, or a list with one per input; the model runs in
    batches it accepts (a fixed batch size is padded up).
    """
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    batch = model.inputs[0].shape[0]
    count = arrays[0].shape[0]
    size = count if batch is None else batch
    outputs = []
    for start in range(0, count, size):
        chunk = [a[start : start + size] for a in arrays]
        taken = chunk[0].shape[0]
        if taken < size:
            chunk = [
                np.concatenate(
                    [c, np.zeros((size - taken, *a.shape[1:]), a.dtype)]
                )
                for c, a in zip(chunk, arrays, strict=True)
            ]
        result = model(chunk if len(chunk) > 1 else chunk[0], training=False)
        outputs.append(
            [np.asarray(o)[:taken] for o in keras.tree.flatten(result)]
        )
    return [
        np.concatenate(parts).astype(np.float32)
        for parts in zip(*outputs, strict=True)
    ]


def check_lowering(actual, expected, check_name) -> tuple[float, float]:
    """Holds a float32 file of the lowering to float tolerance.

    Returns:
        `(max abs error, tolerance)` over every output.

    Raises:
        ExportError: past `float_tolerance`: the lowering computes
            something other than Keras, which no quantization bound may
            hide.
    """
    worst, bound = 0.0, 0.0
    for got, want in zip(actual, expected, strict=True):
        error = float(np.max(np.abs(got - want)))
        tolerance = float_tolerance(want)
        if not error <= tolerance:
            raise ExportError(
                f"The float32 file of this model's lowering is {error:.3g} "
                f"(max abs) from Keras on the check sequences ({check_name}), "
                f"past the float tolerance {tolerance:.3g}: the lowering "
                "computes something other than Keras, whatever the "
                "quantization. Please report this with the model's summary; "
                "meanwhile export the model without the layer the message "
                "of a float32 export points to."
            )
        worst, bound = max(worst, error), max(bound, tolerance)
    return worst, bound


def judge(
    actual: list[np.ndarray],
    expected: list[np.ndarray],
    kinds: tuple[OutputKind, ...],
    rules: tuple[Criterion, ...],
    *,
    check_name: str,
    sequences: int,
    timesteps: int,
    quantization: Quantization,
    streaming: bool,
    names: tuple[str, ...] | None = None,
) -> tuple[tuple[Loss, ...], tuple[str, ...]]:
    """Each output's `Loss`, held to its `Criterion` in `rules`.

    Returns:
        `(losses, criteria in words)`.

    Raises:
        ExportError: on a shape mismatch, or an output that fails its rule,
            with the figures and what to do.
    """
    losses, criteria = [], []
    for index, (got, want, kind, rule) in enumerate(
        zip(actual, expected, kinds, rules, strict=True)
    ):
        label = f"output {names[index]!r}" if names else "output"
        if got.shape != want.shape:
            raise ExportError(
                f"The file's {label} has shape {got.shape}, Keras gives "
                f"{want.shape} on the check sequences ({check_name})."
            )
        result = loss(got, want, kind)
        problem = rule.problem(result)
        if problem is not None:
            raise ExportError(
                _refusal(
                    label,
                    problem,
                    result,
                    check_name,
                    sequences,
                    timesteps,
                    quantization,
                    streaming,
                )
            )
        losses.append(result)
        criteria.append(rule.describe(kind))
    return tuple(losses), tuple(criteria)


def _refusal(
    label,
    problem,
    result,
    check_name,
    sequences,
    timesteps,
    quantization,
    streaming,
):
    agreeing = (
        f", decision agreement {result.decision_agreement:.1%}"
        if result.decision_agreement is not None
        else ""
    )
    advice = [
        "Pass `tolerance=` (max abs), `min_agreement=` or "
        "`max_relative_error=` to state your own criterion, or "
        "`check_data=` to judge the file on other held-out sequences."
    ]
    if quantization.needs_representative_data:
        advice.append(
            "For an integer file, calibrate on a random sample of the "
            "training set (`representative_data=`, not a leading slice of "
            "an ordered series), or fine-tune with quantization-aware "
            "training (keras_lstm.export.quantize_model)."
        )
    if streaming:
        advice.append(
            "For a streaming file, check that no layer after the LSTMs "
            "mixes time steps."
        )
    return (
        f"The file's {label} fails its check against the Keras model on "
        f"{sequences} check sequences of {timesteps} steps ({check_name}), "
        f"quantization={quantization.value!r}: {problem} (max abs "
        f"{result.max_abs:.3g}, p99 {result.p99_abs:.3g}, RMS "
        f"{result.rms:.3g}, spread {result.spread:.3g}{agreeing}). "
        + " ".join(advice)
    )


def warn_outside(found: Ranges, check_name: str) -> None:
    """Warns when the file clips more than `OUTSIDE_WARNING` of the data."""
    for what, share in (
        ("check sequences have inputs", found.inputs_outside),
        ("Keras output values are", found.outputs_outside),
    ):
        if share > OUTSIDE_WARNING:
            warnings.warn(
                f"{share:.1%} of the {what} outside the integer file's "
                f"range ({check_name}), which clips them. Calibrate on data "
                "that covers them: a random sample of the whole training "
                "set (`representative_data=`), not a leading slice.",
                stacklevel=3,
            )


def _run(path, check, names_in):
    """The file's outputs on `check`, one array per output."""
    runner = runners.load_tflite(path)
    try:
        if names_in is not None:
            outputs = runner.predict(dict(zip(names_in, check, strict=True)))
        else:
            outputs = runner.predict(check[0])
    except (RuntimeError, ValueError) as error:
        raise ExportError(
            f"The file could not run on {runner.backend} "
            f"({type(error).__name__}: {error}). Ops: {list(runner.ops)}. "
            "Please report this with the model's summary."
        ) from error
    if not isinstance(outputs, list):
        outputs = [outputs]
    return runner, outputs


def verify_file(
    path: str | os.PathLike,
    model: keras.Model,
    check: list[np.ndarray],
    check_name: str,
    *,
    quantization: Quantization,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    max_relative_error: float | None = None,
    streaming: bool = False,
    batch_size: int = 1,
    float_content: bytes | None = None,
    integer_content: bytes | None = None,
    names_in: tuple[str, ...] | None = None,
    names_out: tuple[str, ...] | None = None,
) -> tuple[Verification, "runners.TFLiteRunner"]:
    """Verifies the file at `path` against `model` on all of `check`.

    Args:
        path: The file.
        model: The Keras model it stands for.
        check: The check inputs, one array per model input.
        check_name: Where they came from, for the report.
        quantization: The file's mode.
        tolerance, min_agreement, max_relative_error: The caller's
            criterion (`criterion`), `None` for the defaults.
        streaming: Whether the file takes one frame per invocation.
        batch_size: The file's batch size.
        float_content: The float32 file of the same lowering, for a lossy
            file (the lowering check); `None` when `path` is float32 itself
            or when no lowering is known (a file from elsewhere).
        integer_content: An int8 file whose LSTM ops to replay
            (`fidelity`): the file itself, or the int8 file an int16x8 one
            was rewritten from; `None` for other modes.
        names_in: The file's input names for a file with named inputs;
            `None` for one data input.
        names_out: Its output names, for messages.

    Returns:
        `(Verification, runner)`.

    Raises:
        ExportError: if the file does not run, its lowering misses Keras
            at float tolerance, an LSTM op is not a faithful quantization,
            or an output fails its criterion.
    """
    expected = keras_predict(model, check)
    runner, actual = _run(path, check, names_in)
    sequences = int(check[0].shape[0])
    timesteps = int(check[0].shape[1]) if check[0].ndim > 1 else 1
    if float_content is not None:
        with tempfile.TemporaryDirectory() as folder:
            reference = os.path.join(folder, "float32.tflite")
            with open(reference, "wb") as file:
                file.write(float_content)
            lowered = _run(reference, check, names_in)[1]
        lowering_error, lowering_tolerance = check_lowering(
            lowered, expected, check_name
        )
    quanta = None
    if integer_content is not None and names_in is None:
        quanta = fidelity.lstm_error_quanta(
            integer_content,
            check[0],
            batch_size=batch_size,
            streaming=streaming,
        )
        if quanta is not None and not quanta <= fidelity.FAITHFUL_QUANTA:
            raise ExportError(
                "The integer file is not a faithful quantization of its "
                f"float graph: a fused LSTM op is {quanta:.3g} output quanta "
                "from the float LSTM run on its own inputs and weights, "
                f"past {fidelity.FAITHFUL_QUANTA:g} (a wrong scale or a "
                "broken rewrite; a faithful op stays within a few). "
                "Please report this with the model's summary."
            )
    # Each output to its own criterion: a float bound scales with its own
    # outputs (an encoder's h and its unbounded c differ).
    rules = tuple(
        criterion(
            quantization,
            want,
            tolerance=tolerance,
            min_agreement=min_agreement,
            max_relative_error=max_relative_error,
        )
        for want in expected
    )
    kinds = output_kinds(model)
    losses, criteria = judge(
        actual,
        expected,
        kinds,
        rules,
        check_name=check_name,
        sequences=sequences,
        timesteps=timesteps,
        quantization=quantization,
        streaming=streaming,
        names=names_out,
    )
    if float_content is None:
        lowering_error = max(item.max_abs for item in losses)
        lowering_tolerance = float_tolerance(
            np.concatenate([e.ravel() for e in expected])
        )
    found = Ranges()
    if quantization.is_integer and names_in is None:
        found = ranges(
            check[0], expected[0], runner.inputs[0], runner.outputs[0]
        )
        warn_outside(found, check_name)
    return (
        Verification(
            check_set=check_name,
            sequences=sequences,
            timesteps=timesteps,
            losses=losses,
            criteria=criteria,
            tolerance=max(
                (r.max_abs for r in rules if r.max_abs is not None),
                default=None,
            ),
            lowering_error=lowering_error,
            lowering_tolerance=lowering_tolerance,
            lstm_error_quanta=quanta,
            ranges=found,
            rules=rules,
            kinds=kinds,
        ),
        runner,
    )


def verify_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    check_data,
    *,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    max_relative_error: float | None = None,
) -> Verification:
    """Verifies a TFLite file already on disk against its Keras model.

    The same check `to_tflite` runs before it writes (after a firmware
    step, say, or on a file from another tool), on all of `check_data`:
    for integer files the fused LSTM ops' fidelity, and the loss as users
    judge it (see `to_tflite`). The lowering check needs the export
    itself and is not repeated here.

    Args:
        model: The Keras model the file stands for.
        path: The `.tflite` file.
        check_data: Held-out inputs, as `to_tflite` takes them.
        tolerance: A max-abs bound replacing the default criterion.
        min_agreement: For class outputs of a lossy file, the least share
            of agreeing decisions (default 0.98).
        max_relative_error: For value outputs of a lossy file, the largest
            RMS error as a share of the outputs' spread (default 0.1).

    Returns:
        A `verification.Verification`.

    Raises:
        FileNotFoundError: if there is no file at `path`.
        ValueError: for check data that does not fit the model.
        ExportError: if the file fails, with the figures.
    """
    lowering.require_tensorflow_backend("verify_tflite")
    criterion = dict(
        tolerance=arguments.tolerance(tolerance),
        min_agreement=arguments.share("min_agreement", min_agreement),
        max_relative_error=arguments.positive_float(
            "max_relative_error", max_relative_error
        ),
    )
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise FileNotFoundError(
            f"Received an invalid value for argument `path`: no file at "
            f"{str(path)!r}."
        )
    with open(path, "rb") as file:
        content = file.read()
    quantization = inspection.quantization_of(content)
    runner = runners.load_tflite(path)
    names_in = names_out = None
    if multi_io.applies(model):
        shapes = multi_io.input_shapes(model, None)
        check = multi_io.data("check_data", check_data, model, shapes)
        names_in = tuple(runner.input_names)
        names_out = tuple(runner.output_names)
    else:
        check = [inputs.data("check_data", check_data, inputs.describe(model))]
    if check is None or check[0] is None:
        raise ValueError(
            "Received an invalid value for argument `check_data`: None. "
            "Give held-out inputs to verify the file on."
        )
    verified, _ = verify_file(
        path,
        model,
        check,
        f"check_data ({check[0].shape[0]} sequences)",
        quantization=quantization,
        streaming=runner.streaming,
        batch_size=runner.batch_size,
        integer_content=content if quantization is Quantization.INT8 else None,
        names_in=names_in,
        names_out=names_out,
        **criterion,
    )
    return verified
