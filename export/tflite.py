"""`to_tflite`: a Keras LSTM model to a fused, builtin-only TFLite file.

`to_tflite` reads as the pipeline's table of contents; each stage refuses
rather than falls back, and has one owner:

1. check every argument and the model, before any work (`plan`);
2. lower and trace, so that TFLite's converter turns every LSTM into
   `UNIDIRECTIONAL_SEQUENCE_LSTM` (`tracing`, `lowering`);
3. convert, integer modes calibrating every sequence from a zero LSTM
   state on data the check never sees (`conversion`, `calibration`); a
   lossy file's float32 twin is converted too, to prove the lowering;
4. rewrite: repair the converter's integer LSTMs, derive int16x8 from int8
   (`rewrite`);
5. inspect: one fused op per LSTM call, no WHILE, Flex, CUSTOM or
   resource-variable op, one subgraph, fixed shapes (`inspection`);
6. verify on held-out data: the lowering at float tolerance, the integer
   LSTMs' fidelity, the loss as users judge it (`verification`);
7. write: move the verified file into place atomically (`files`).

`verify_tflite` runs stage 6 on a file already on disk.
"""

import dataclasses
import logging
import os
from collections.abc import Callable

import keras
import numpy as np

from keras_lstm.export import (
    arguments,
    conversion,
    files,
    flatbuffer,
    inputs,
    inspection,
    lowering,
    multi_io,
    plan,
    rewrite,
    runners,
    tracing,
    verification,
)
from keras_lstm.export.errors import ExportError  # noqa: F401 (re-exported)
from keras_lstm.export.quantization import Quantization
from keras_lstm.export.verification import Verification

logger = logging.getLogger(__name__)

PERSISTENT_STATE = (
    "needs a runtime that keeps the LSTM's variable tensors between "
    "invocations (LiteRT, TFLite Micro's reference kernels); TFLite "
    "Micro's CMSIS-NN LSTM kernel (the usual Cortex-M build) starts every "
    "invocation from a zero state, so there use an external_state=True "
    "step file, whose state is explicit inputs and outputs"
)
"""Why a streaming or stateful file is not for every runtime."""


@dataclasses.dataclass(frozen=True)
class TFLiteReport:
    """What `to_tflite` wrote and how well it matches Keras.

    Attributes:
        path: The file written.
        size_bytes: Its size.
        ops: Its operator names, in execution order.
        inputs: `TensorInfo` per input (name, shape, dtype, scale,
            zero point).
        outputs: `TensorInfo` per output.
        quantization: The `Quantization` mode.
        batch_size: The file's fixed batch size.
        timesteps: The file's fixed sequence length (1 when streaming).
        streaming: Whether the file takes one frame per invocation.
        external_state: Whether LSTM state is explicit inputs/outputs.
        fused_lstm_ops: Number of fused LSTM ops in the file.
        calibration_sequences: Sequences the integer ranges were
            calibrated on (0 for modes without calibration).
        check_set: Which sequences verified the file: `check_data`, a
            share held out of `representative_data`, or generated ones.
        check_sequences: Sequences in the check set (all were run).
        check_timesteps: Their length.
        max_abs_error: Max |file - Keras| over the check set.
        tolerance: The max-abs bound the file was held to, where its
            criterion is one (float32 files, or `tolerance=`); `None` when
            it was judged by decisions or relative error (`criteria`).
        output_range: The largest spread (standard deviation) of Keras's
            outputs on the check set.
        argmax_agreement: For class outputs, the least share of check
            decisions that agree with Keras's; else `None`.
        tflite_micro_blockers: Why TFLite Micro cannot run the file (the
            op or kernel, and what to do), empty if it can
            (`runners.tflite_micro_blockers`).
        input_kind: `InputKind.SEQUENCES` (float) or `InputKind.TOKENS`
            (int32 token ids read by an Embedding, `keras_lstm.export.
            inputs`).
        padding: For a masked model, the padding convention the file
            records (`contract.Padding`): callers drop padded steps
            (`keras_lstm.export.masking`); `None` otherwise.
        verification: The whole `verification.Verification`: per-output
            losses (max, p99, mean, RMS, relative, decisions), the
            criteria, the lowering's float error, the integer LSTMs'
            fidelity in quanta, and the share of check data outside the
            file's integer ranges.
        calibration_set: Which sequences calibrated the file, sampled
            with a seed when many were given; empty for float modes.
        state_note: For a file whose LSTM state lives in the op between
            invocations (streaming or stateful), what runtime it needs
            (`PERSISTENT_STATE`); `None` otherwise.
    """

    path: str
    size_bytes: int
    ops: tuple
    inputs: tuple
    outputs: tuple
    quantization: Quantization
    batch_size: int
    timesteps: int
    streaming: bool
    external_state: bool
    fused_lstm_ops: int
    calibration_sequences: int
    check_set: str
    check_sequences: int
    check_timesteps: int
    max_abs_error: float
    tolerance: float | None
    output_range: float
    argmax_agreement: float | None
    tflite_micro_blockers: tuple[str, ...]
    input_kind: inputs.InputKind = inputs.InputKind.SEQUENCES
    padding: object = None
    verification: Verification | None = None
    calibration_set: str = ""
    state_note: str | None = None

    @property
    def tflite_micro_ready(self) -> bool:
        """Whether TFLite Micro can run the file."""
        return not self.tflite_micro_blockers

    @property
    def input_dtypes(self):
        """NumPy dtype names of the inputs."""
        return tuple(t.dtype for t in self.inputs)

    @property
    def output_dtypes(self):
        """NumPy dtype names of the outputs."""
        return tuple(t.dtype for t in self.outputs)


def to_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    quantization: Quantization | str = "none",
    representative_data: np.ndarray | None = None,
    check_data: np.ndarray | None = None,
    batch_size: int = 1,
    timesteps: int | None = None,
    streaming: bool = False,
    external_state: bool = False,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    max_relative_error: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TFLiteReport:
    """Exports a Keras LSTM model to a fused, builtin-only TFLite file.

    Every LSTM (`keras_lstm.LSTM`, `keras.layers.LSTM`,
    `keras.layers.RNN(LSTMCell)`, also inside `Bidirectional`) becomes one
    `UNIDIRECTIONAL_SEQUENCE_LSTM` op; the file has no WHILE, Flex or
    CUSTOM op and a fixed batch size. Before it is written (atomically),
    it is run against the Keras model on all of the check data, which
    calibration never saw (`keras_lstm.export.verification`):

    - the lowering: the float32 file of the same lowering matches Keras
      within float rounding (`1e-4 * max(1, |y|)`), for every mode, so a
      lowering bug never hides under a quantization bound;
    - integer files: each fused LSTM op is a faithful quantization of the
      float LSTM on its own inputs (`keras_lstm.export.fidelity`);
    - the loss, as users judge it: float32 files to float rounding; lossy
      files by decisions for class outputs (softmax, sigmoid: at least
      98 % agree with Keras's) and by RMS error relative to the outputs'
      spread for values (at most 10 %), unless `tolerance=` (max abs),
      `min_agreement=` or `max_relative_error=` say otherwise.

    State: the fused op keeps `h` and `c` in variable tensors that persist
    across invocations. Reset them before each sequence
    (`reset_all_variables()` in Python, `ResetVariableTensors()` in C++ /
    Android, `reset()` in TFLite Micro); `load_tflite` does it for you. A
    streaming or stateful file relies on that persistence: TFLite Micro's
    CMSIS-NN LSTM kernel does not keep it (`TFLiteReport.state_note`);
    there, export with `external_state=True`.

    Token models: a model whose `(batch, time)` input feeds a
    `keras.layers.Embedding` gives a file that takes int32 token ids
    `(batch, time)` (`(batch, 1)` when streaming); the lookup is a builtin
    GATHER, and integer modes quantize the table, not the ids.

    Masked models (`keras.layers.Masking` or `Embedding(mask_zero=True)` on
    the input): the file has no mask (the fused op has none); it records
    the padding convention (`TFLiteReport.padding`) and its callers drop
    the padded steps, as `load_tflite(...).predict` does, which returns
    Keras's masked outputs for right- and left-padded sequences
    (`keras_lstm.export.masking` says what is refused, and why).

    Models with several inputs or outputs, or with an LSTM that returns
    its state (keras.io's seq2seq encoder `sequence -> [h, c]` and decoder
    step model `[token, h, c] -> [probs, h, c]`), export in float modes
    ("none", "float16", "dynamic") with named inputs and outputs
    (`keras_lstm.export.multi_io`): an LSTM that takes or returns its
    state is unrolled into builtin ops over its fixed steps, the others
    stay fused; inputs keep the Keras inputs' names and outputs are
    `output_<i>` in Keras's order.

    Args:
        model: A built Sequential or Functional Keras model with one float32
            input `(batch, time, features)` or one `(batch, time)` token-id
            input read by an Embedding, and one output (stateful layers
            export as a streaming file, see `streaming`), or a QAT model
            from `keras_lstm.export.quantize_model` (integer modes only), or
            a model with several float32 inputs and outputs (see above;
            then `representative_data`/`check_data` are lists of arrays,
            one per input, or dicts by input name, and `timesteps` may be a
            dict from input name to length).
        path: Where to write the `.tflite` file. Its directory must exist;
            an existing file is replaced only on success.
        quantization: A `Quantization` or its value: `"none"`, `"float16"`,
            `"dynamic"`, `"int8"` or `"int16x8"`. Default: `"none"`.
        representative_data: Array `(num_sequences, timesteps,
            features)` of typical inputs (cast to float32), or integer
            token ids `(num_sequences, timesteps)` for a token model: give
            the whole training set, never a leading slice of an ordered
            series. Required for `"int8"` and `"int16x8"`: calibration,
            each sequence from a zero LSTM state, on a seeded random
            `calibration.CALIBRATION_LIMIT` of it when it holds more.
            Without `check_data`, a seeded random 20 %
            (`calibration.HOLDOUT_SHARE`) is held out of calibration to
            verify the file; in float modes, nothing is calibrated and all
            of it verifies the file. Default: `None`.
        check_data: Held-out sequences, shaped like `representative_data`,
            to verify the file on, all of them. Default: `None`: held out
            of `representative_data`, or, without any data, random-normal
            sequences or random token ids, padded on both sides for a
            masked model (the report says which).
        batch_size: The file's fixed batch size. Default: `1`.
        timesteps: The file's sequence length, needed when the model's time
            dimension is `None`. With `streaming=True`, the length of the
            check sequences. Default: `None`.
        streaming: Write a single-frame model `(batch_size, 1, features)`
            whose LSTM state persists between invocations, so T calls give
            the Keras output on a T-step sequence. A model with
            `stateful=True` layers always exports so (implied with a
            warning when `False`): the file keeps the state between calls
            as the layers do. Default: `False`.
        external_state: With `streaming=True`, keep the state as explicit
            inputs `h_i`, `c_i` and outputs `h_i_out`, `c_i_out` (one step
            in FULLY_CONNECTED, LOGISTIC, TANH, MUL and ADD), for runtimes
            without variable tensors, such as CMSIS-NN. Float modes only.
            Default: `False`.
        tolerance: A max-abs bound on |file - Keras| on the check data,
            replacing the default criterion. Default: `None`.
        min_agreement: For class outputs of a lossy file, the least share
            of decisions that must agree with Keras's. Default: `None`
            (`verification.MIN_AGREEMENT`, 0.98).
        max_relative_error: For value outputs of a lossy file, the largest
            RMS error as a share of the spread of Keras's outputs.
            Default: `None` (`verification.MAX_RELATIVE_ERROR`, 0.1).
        progress: Called as `progress(done, total)` after each calibration
            batch the converter draws (integer modes), e.g. to drive a
            progress bar. Default: `None`.

    Returns:
        A `TFLiteReport`.

    Raises:
        TypeError: for an argument of the wrong type.
        ValueError: for a bad argument or a model configuration the fused
            op cannot express (the message says what to change).
        ExportError: if the converted file is not fused and builtin-only,
            does not run, its lowering misses Keras, an integer LSTM is not
            faithful, or it fails its criterion on the check data.
    """
    lowering.require_tensorflow_backend("to_tflite")
    checked = plan.build(  # 1. Check every argument.
        model,
        path,
        quantization=quantization,
        representative_data=representative_data,
        check_data=check_data,
        batch_size=batch_size,
        timesteps=timesteps,
        streaming=streaming,
        external_state=external_state,
        tolerance=tolerance,
        min_agreement=min_agreement,
        max_relative_error=max_relative_error,
        progress=progress,
    )
    traced = tracing.trace(checked)  # 2. Lower and trace.
    content, int8 = rewrite.finish(  # 3-4. Convert, rewrite.
        conversion.convert(
            traced,
            checked.quantization,
            calibration_data=checked.split.calibration,
            batch_size=checked.batch_size,
            streaming=checked.streaming,
            padding=checked.padding,
            progress=checked.progress,
        ),
        checked.quantization,
        checked.padding,
    )
    found = inspection.inspect(  # 5. What the file holds.
        content,
        expected_lstm_ops=traced.fused_calls,
        quantization=checked.quantization,
    )
    check, check_name = checked.check_set()  # 6-7. Verify, then write.
    with files.staged_file(checked.path) as temp:
        temp.write_bytes(content)
        verified, runner = verification.verify_file(
            temp,
            checked.model,
            check,
            check_name,
            quantization=checked.quantization,
            streaming=checked.streaming,
            batch_size=checked.batch_size,
            integer_content=int8,
            float_content=_float_twin(traced, checked),
            names_in=checked.names_in,
            names_out=checked.names_out,
            **checked.criterion,
        )
    report = _report(checked, traced, content, found, verified, runner)
    logger.info(
        "Wrote %s (%d bytes, %s): %s on %s.",
        report.path,
        report.size_bytes,
        report.quantization.value,
        "; ".join(verified.criteria),
        report.check_set,
    )
    return report


def _float_twin(traced, checked):
    """A lossy file's float32 twin of the same lowering, else `None`."""
    if checked.quantization is Quantization.NONE:
        return None
    content = conversion.convert(
        traced,
        Quantization.NONE,
        batch_size=checked.batch_size,
        streaming=checked.streaming,
    )
    return rewrite.finish(content, Quantization.NONE, checked.padding)[0]


def _report(checked, traced, content, found, verified, runner):
    calibrated = checked.split.calibration
    persistent = checked.streaming and found.fused_lstm_ops > 0
    return TFLiteReport(
        path=checked.path,
        size_bytes=len(content),
        ops=found.ops,
        inputs=runner.inputs,
        outputs=runner.outputs,
        quantization=checked.quantization,
        batch_size=checked.batch_size,
        timesteps=runner.timesteps,
        streaming=checked.streaming,
        external_state=(
            checked.state is plan.StateLowering.EXTERNAL
            or (
                checked.state is plan.StateLowering.EXPLICIT
                and traced.unrolled_calls > 0
            )
        ),
        fused_lstm_ops=found.fused_lstm_ops,
        calibration_sequences=0 if calibrated is None else len(calibrated),
        check_set=verified.check_set,
        check_sequences=verified.sequences,
        check_timesteps=verified.timesteps,
        max_abs_error=verified.max_abs_error,
        tolerance=verified.tolerance,
        output_range=verified.output_range,
        argmax_agreement=verified.argmax_agreement,
        tflite_micro_blockers=runners.tflite_micro_blockers(content),
        input_kind=(
            inputs.InputKind.SEQUENCES
            if checked.input is None
            else checked.input.kind
        ),
        padding=checked.padding,
        verification=verified,
        calibration_set=(
            "" if calibrated is None else checked.split.calibration_name
        ),
        state_note=(
            f"A streaming file {PERSISTENT_STATE}." if persistent else None
        ),
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
    names_in = names_out = None
    if multi_io.applies(model):
        shapes = multi_io.input_shapes(model, None)
        check = multi_io.data("check_data", check_data, model, shapes)
        names_in = tuple(runners.load_tflite(path).input_names)
        names_out = tuple(runners.load_tflite(path).output_names)
    else:
        check = [inputs.data("check_data", check_data, inputs.describe(model))]
    if check is None or check[0] is None:
        raise ValueError(
            "Received an invalid value for argument `check_data`: None. "
            "Give held-out inputs to verify the file on."
        )
    streaming = flatbuffer.graph_inputs(content)[0].shape[1:2] == (1,) and (
        check[0].ndim > 1 and check[0].shape[1] > 1
    )
    verified, _ = verification.verify_file(
        path,
        model,
        check,
        f"check_data ({check[0].shape[0]} sequences)",
        quantization=quantization,
        streaming=streaming,
        batch_size=int(flatbuffer.graph_inputs(content)[0].shape[0]),
        integer_content=content if quantization is Quantization.INT8 else None,
        names_in=names_in,
        names_out=names_out,
        **criterion,
    )
    return verified
