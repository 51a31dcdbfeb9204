"""Stage 3 of `to_tflite`: TFLite's converter, calibrating from zero states.

`convert` hands a traced model to `tf.lite.TFLiteConverter`, configured
for the quantization mode (`quantization.configure_converter`); integer
modes calibrate on the plan's calibration sequences, each from a zero LSTM
state (`calibration.representative_dataset`). The converter's own failures
become `ExportError`s.

An integer file with LSTM variants is converted in float32 first: the
converter's Keras fusion builds the plain LSTM, so its own calibration
would run the plain LSTM. The variants are written into the float file
(`rewrite.write_lstm_variants`), and that file is calibrated and quantized
as the converter would (`_compat.calibrate_and_quantize`), so the ranges
are the variant's own, its layer-norm and hidden intermediates included.

That float file holds Keras's options too (`cell_clip` 0 in every op). A
plain integer file is calibrated inside the converter, whose fused op has
`cell_clip` 10, and the calibrator's logging kernel clips
(`builtin_logging_ops/lstm.cc`): a cell state that passes 10 on the
representative data is calibrated as 10, so its int16 range is ±16
(scale 2^-11) however far it goes (read from the sources, not measured
here). The file itself gets `cell_clip` 0
(`rewrite.write_lstm_variants`); verification judges what that costs.
"""

import tensorflow as tf

from keras_lstm.export import _compat, calibration, contract, rewrite
from keras_lstm.export.errors import ExportError
from keras_lstm.export.plan import Plan
from keras_lstm.export.quantization import Quantization, configure_converter
from keras_lstm.export.tracing import Traced


def convert(
    traced: Traced, checked: Plan, *, float_twin: bool = False
) -> bytes:
    """The converted flatbuffer of `traced`, as `checked` plans it.

    Args:
        traced: The lowered, traced model (`tracing.trace`).
        checked: The plan: its mode, calibration sequences, batch size,
            streaming, padding and progress callback.
        float_twin: Convert the float32 twin of a lossy file instead: no
            quantization, no calibration (it proves the lowering).

    Raises:
        ExportError: if the converter fails.
    """
    quantization = Quantization.NONE if float_twin else checked.quantization
    calibration_data = None if float_twin else checked.split.calibration
    if quantization.is_integer and traced.variants:
        return _quantized_variants(traced, checked)
    batch_size, progress = checked.batch_size, checked.progress
    # The converter must see the tf.Variables behind Keras 3's variables:
    # given a trackable that holds them, it saves a SavedModel, keeps the
    # `api_implements` functions whole (fusing them) and freezes the
    # weights. Without one it inlines every function first, which loses the
    # fusion attribute and leaves WHILE loops.
    module = tf.Module()
    module.weights = [v.value for v in traced.export.variables]
    module.serve = traced.function
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [traced.concrete], module
    )
    with _compat.calibration_resets() as reset:
        dataset = None
        if calibration_data is not None and traced.state_inputs:
            dataset = calibration.stepped_dataset(
                calibration_data,
                batch_size=batch_size,
                step=traced.function,
                frame_name=contract.FRAME,
                state_inputs=traced.state_inputs,
                progress=progress,
            )
        elif calibration_data is not None:
            dataset = calibration.representative_dataset(
                calibration_data,
                batch_size=batch_size,
                streaming=checked.streaming,
                reset=reset,
                progress=progress,
                padding=checked.padding,
            )
        # Without a fused LSTM (an external-state step) the converter's own
        # 16x8 mode applies; with one, int16x8 is rewritten from int8.
        configure_converter(
            converter,
            quantization,
            dataset,
            native_int16x8=traced.fused_calls == 0,
        )
        return _run(converter.convert)


def _run(step):
    try:
        return step()
    except Exception as error:  # The converter raises many types.
        raise ExportError(
            f"TFLite's converter failed ({type(error).__name__}): {error}"
        ) from error


def _quantized_variants(traced, checked):
    """An integer file with LSTM variants: float, variants written, then
    calibrated and quantized (see the module docstring)."""
    content = convert(traced, checked, float_twin=True)
    try:
        content = rewrite.write_lstm_variants(content, traced.variants)
    except ValueError as error:
        raise ExportError(str(error)) from error
    with _compat.calibration_resets() as reset:
        dataset = calibration.representative_dataset(
            checked.split.calibration,
            batch_size=checked.batch_size,
            streaming=checked.streaming,
            reset=reset,
            progress=checked.progress,
            padding=checked.padding,
        )
        return _run(lambda: _compat.calibrate_and_quantize(content, dataset))
