"""Quantization modes of a TFLite export, checked in one place.

Every mode is a `Quantization` member; `to_tflite` accepts the member or its
string value. What each mode asks of the converter, which dtype its inputs
and outputs have, and how far its outputs may drift from Keras are
properties of the member, so no other module compares mode strings.
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

    def default_tolerance(
        self,
        *,
        output_scale: float | None = None,
        output_range: float = 0.0,
        output_magnitude: float = 0.0,
    ) -> float:
        """Largest max-abs error against Keras that a check accepts.

        With `s = max(1, output_magnitude)`, the largest |output|: float
        rounding is relative, so the float bounds scale with `s` (a float
        file whose outputs are around 280 differs from Keras by ~1e-4).

        - float32: `1e-4 * s`. The fused kernel and Keras differ by float
          rounding only (measured <= 1e-7 relative on every tested
          variant).
        - float16 weights: `1e-2 * s + 1e-2 * range`. Rounding every
          weight to 11 significant bits; measured 8.5e-4 worst case over
          640 JapaneseVowels sequences (softmax outputs, range ~1).
        - dynamic range: `5e-2 * s + 5e-2 * range`. Weights int8 per
          tensor, activations quantized on the fly at every step.
        - int8 / int16x8: 8 output quanta + 5 % of the output range. The
          integer LSTM rounds its gates, cell and hidden state at every
          step and the errors add up over the sequence. Measured on
          JapaneseVowels (29 steps, softmax outputs): int8 0.019 on the
          check batch, 0.077 worst case over 640 sequences, against a
          bound of 0.081; int16x8 0.031 worst case. The converter bugs
          that `rewrite.repair_integer_lstms` fixes gave 11 % to 100 % of the
          range, well past it.

        Args:
            output_scale: The output tensor's quantization scale (integer
                modes only).
            output_range: `max - min` of the Keras outputs on the check
                sequences.
            output_magnitude: `max |output|` of the Keras outputs on the
                check sequences.

        Returns:
            The tolerance, a float.
        """
        output_range = float(output_range)
        scale = max(1.0, float(output_magnitude))
        if self is Quantization.NONE:
            return 1e-4 * scale
        if self is Quantization.FLOAT16:
            return 1e-2 * scale + 1e-2 * output_range
        if self is Quantization.DYNAMIC:
            return 5e-2 * scale + 5e-2 * output_range
        if output_scale is None:
            raise ValueError(
                f"`output_scale` is needed for quantization {self.value!r}."
            )
        return 8.0 * float(output_scale) + 0.05 * output_range


def configure_converter(
    converter, quantization: Quantization | str, representative_dataset
) -> None:
    """Sets a `tf.lite.TFLiteConverter` up for `quantization`.

    `INT16X8` configures the `INT8` conversion that it is rewritten from.

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
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
