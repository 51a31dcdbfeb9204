"""The report of an export: what `to_tflite` wrote and how it verified.

`TFLiteReport` gathers what each stage of the pipeline found: the plan
(mode, batch, streaming, calibration), the inspection (ops, fused LSTMs),
and the verification (`verification.Verification`), so that a caller
reads one object. `PERSISTENT_STATE` is the runtime requirement of a file
whose LSTM state lives in the op between invocations, which the report,
`keras-lstm inspect` and `to_c_source` state in the same words.
"""

import dataclasses

from keras_lstm.export import inputs, plan, runners
from keras_lstm.export.quantization import Quantization
from keras_lstm.export.verification import Verification

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



def build(checked, traced, content, found, verified, runner) -> TFLiteReport:
    """The report of an export: what each stage found."""
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
