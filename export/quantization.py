"""Quantization modes of a TFLite export, checked in one place.

Every mode is a `Quantization` member; `to_tflite` accepts the member or its
string value. What each mode asks of the converter and which dtype its
inputs and outputs have are properties of the member, so no other module
compares mode strings. How a file of each mode is judged against Keras is
`keras_lstm.export.verification`'s.
"""

import enum

import numpy as np


class Quantization(enum.StrEnum):
    """How `to_tflite` quantizes the file.

    - `NONE` (`"none"`): float32 weights and activations.
    - `FLOAT16` (`"float16"`): float16 weights, float32 compute; half the
      size, for GPUs and CPUs.
    - `DYNAMIC` (`"dynamic"`): int8 weights, float activations quantized on
      the fly ("hybrid"); for phone CPUs.
    - `INT8` (`"int8"`): full integer, TFLite's 8x8_16 LSTM spec: int8
      inputs, outputs, activations and weights, int16 cell state, int32
      biases. Needs representative data. For microcontrollers and NPUs.
    - `INT16X8` (`"int16x8"`): 16-bit activations, int8 weights, int64
      biases, int16 input and output. TFLite's converter refuses it for the
      LSTM op (TF#59626), so the file is rewritten from the `INT8` one
      (`keras_lstm.export.rewrite`). Runs on TFLite Micro.
    """

    NONE = "none"
    FLOAT16 = "float16"
    DYNAMIC = "dynamic"
    INT8 = "int8"
    INT16X8 = "int16x8"

    @classmethod
    def parse(
        cls, value: "Quantization | str", argument: str = "quantization"
    ) -> "Quantization":
        """Returns the member for `value` (a member or its string value).

        Raises:
            ValueError: naming `argument`, if `value` is not a mode.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ValueError(
            f"Received an invalid value for argument `{argument}`: "
            f"{value!r}. Expected one of {allowed} (or a "
            "keras_lstm.export.Quantization member)."
        )

    @property
    def is_integer(self):
        """Whether inputs and outputs are integers (full integer modes)."""
        return self in (Quantization.INT8, Quantization.INT16X8)

    @property
    def needs_representative_data(self):
        """Whether the converter must calibrate activation ranges."""
        return self.is_integer

    @property
    def io_dtype(self):
        """NumPy dtype of the file's inputs and outputs."""
        if self is Quantization.INT8:
            return np.dtype("int8")
        if self is Quantization.INT16X8:
            return np.dtype("int16")
        return np.dtype("float32")


def configure_converter(
    converter,
    quantization: Quantization | str,
    representative_dataset,
    *,
    native_int16x8: bool = False,
) -> None:
    """Sets a `tf.lite.TFLiteConverter` up for `quantization`.

    `INT16X8` configures the `INT8` conversion that it is rewritten from
    (the converter refuses 16x8 for the fused LSTM), or, with
    `native_int16x8` for a file without a fused LSTM (an external-state
    step file), the converter's own 16x8 mode.

    Args:
        converter: A `tf.lite.TFLiteConverter`.
        quantization: A `Quantization`.
        representative_dataset: A callable returning an iterator of input
            lists, or `None` for modes without calibration.
    """
    import tensorflow as tf

    quantization = Quantization.parse(quantization)
    if quantization is Quantization.NONE:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization is Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif quantization is Quantization.DYNAMIC:
        pass  # No representative data: int8 weights, float activations.
    else:
        if representative_dataset is None:
            raise ValueError(
                f"Quantization {quantization.value!r} needs representative "
                "data to calibrate activation ranges."
            )
        converter.representative_dataset = representative_dataset
        if native_int16x8 and quantization is Quantization.INT16X8:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.int16
            return
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
