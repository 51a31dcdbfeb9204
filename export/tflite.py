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

`verification.verify_tflite` runs stage 6 on a file already on disk;
`report.TFLiteReport` is what an export returns.
"""

import logging
import os
from collections.abc import Callable

import keras
import numpy as np

from keras_lstm.export import (
    conversion,
    files,
    inspection,
    lowering,
    plan,
    rewrite,
    tracing,
    verification,
)
from keras_lstm.export import report as reporting
from keras_lstm.export.errors import ExportError  # noqa: F401 (re-exported)
from keras_lstm.export.quantization import Quantization
from keras_lstm.export.report import TFLiteReport  # noqa: F401 (public)

logger = logging.getLogger(__name__)

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
            without variable tensors, such as CMSIS-NN. LSTM variants are
            computed there too, in builtin ops (layer norm in MEAN,
            SQUARED_DIFFERENCE and RSQRT), which makes this the file for
            TFLite Micro, whose LSTM kernel refuses them: in "none" and
            "int16x8" (refused in "int8", whose int8 state misses the
            criterion); under a projection `h_i` has `projection_units`
            values. Default: `False`.
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
    checked = plan.build(  # 1. Check every argument and the model.
        model, path, quantization=quantization,
        representative_data=representative_data, check_data=check_data,
        batch_size=batch_size, timesteps=timesteps, streaming=streaming,
        external_state=external_state, tolerance=tolerance,
        min_agreement=min_agreement, max_relative_error=max_relative_error,
        progress=progress,
    )
    traced = tracing.trace(checked)  # 2. Lower and trace.
    converted = conversion.convert(traced, checked)  # 3. Convert.
    content, int8 = rewrite.finish(  # 4. Rewrite.
        converted, checked.quantization, checked.padding, traced.variants
    )
    found = inspection.inspect(  # 5. Inspect what the file holds.
        content, expected_lstm_ops=traced.fused_calls,
        quantization=checked.quantization,
    )
    with files.staged_file(checked.path) as temp:  # 6-7. Verify, write.
        temp.write_bytes(content)
        verified, runner = _verify(temp, checked, traced, int8)
    report = reporting.build(checked, traced, content, found, verified, runner)
    _log(report)
    return report


def _verify(temp, checked, traced, int8):
    """Stage 6 for a file of this pipeline, with its float32 twin."""
    twin = None
    if checked.quantization is not Quantization.NONE:
        twin = rewrite.finish(
            conversion.convert(traced, checked, float_twin=True),
            Quantization.NONE,
            checked.padding,
            traced.variants,
        )[0]
    check, check_name = checked.check_set()
    return verification.verify_file(
        temp, checked.model, check, check_name,
        quantization=checked.quantization, streaming=checked.streaming,
        batch_size=checked.batch_size, integer_content=int8,
        float_content=twin, names_in=checked.names_in,
        names_out=checked.names_out, **checked.criterion,
    )


def _log(report):
    checked = report.verification
    logger.info(
        "Wrote %s (%d bytes, %s) on %s: %s; lowering %.3g; LSTM fidelity "
        "%s quanta; %s.",
        report.path, report.size_bytes, report.quantization.value,
        report.check_set, "; ".join(checked.criteria),
        checked.lowering_error, checked.lstm_error_quanta,
        "; ".join(
            f"relative RMS {item.relative_rms:.3g}, decisions "
            f"{item.decision_agreement}, near ties {item.near_ties}, max "
            f"{item.max_abs:.3g}"
            for item in checked.losses
        ),
    )


