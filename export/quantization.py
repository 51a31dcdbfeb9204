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
      (`keras_lstm.export.int16`). Runs on TFLite Micro.
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
          that `repair_integer_lstms` fixes gave 11 % to 100 % of the
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


# Two quirks of the converter's integer LSTM output, repaired here; each was
# measured on small stacked and bidirectional models, where LiteRT drifted
# by a third of the output range before the repair and matches TFLite Micro
# to the quantum after it.
#
# 1. LiteRT computes tanh(c) with `ApplyTanh(15 + log2(cell_scale), ...)`
#    (lstm_eval.cc), which handles 0 to 6 integer bits: cell-state scales
#    from 2^-15 to 2^-9. The converter picks the smallest power of two that
#    covers the calibrated cell range, so a layer whose |c| stays under 0.5
#    gets 2^-16, and LiteRT then saturates its hidden state (TFLite Micro
#    computes it correctly). Widening the scale to 2^-15 keeps the file
#    consistent: the cell state is a variable tensor without stored data,
#    and the kernels derive every cell shift from its scale.
# 2. The op writes h to its output and to its hidden-state variable, and
#    reads it back from the variable at the next step, so both (and the
#    `effective_hidden_scale` intermediate, from which LiteRT takes the
#    output zero point) must share one scale. When a consumer forces the
#    output's scale (CONCATENATION after a Bidirectional), the converter
#    moves the output's parameters only. We give the other two the
#    output's parameters, which is what every consumer reads.
_HIDDEN_STATE_INPUT = 18
_CELL_STATE_INPUT = 19
_HIDDEN_SCALE_INTERMEDIATE = 4
_MIN_CELL_EXPONENT, _MAX_CELL_EXPONENT = -15, -9


def _same_params(a, b):
    return np.array_equal(a.quantization.scale, b.quantization.scale) and (
        np.array_equal(a.quantization.zeroPoint, b.quantization.zeroPoint)
    )


def repair_integer_lstms(content: bytes) -> tuple[bytes, list[str]]:
    """Fixes the converter's integer LSTM parameters (see above).

    Args:
        content: An integer-quantized TFLite flatbuffer.

    Returns:
        `(content, repairs)`: the (possibly) rewritten flatbuffer and a list
        of what was changed, for the log.

    Raises:
        ValueError: if a cell state needs more than 6 integer bits
            (|c| > 64), which TFLite's integer LSTM cannot represent.
    """
    import copy

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    lstm = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    repairs = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) != lstm:
                continue
            tensors = subgraph.tensors
            output = tensors[op.outputs[0]]
            cell = tensors[op.inputs[_CELL_STATE_INPUT]]
            if cell.type != schema.TensorType.INT16:
                continue
            name = output.name.decode()
            exponent = round(float(np.log2(cell.quantization.scale[0])))
            if exponent > _MAX_CELL_EXPONENT:
                raise ValueError(
                    f"LSTM {name!r}: the cell state reaches |c| > "
                    f"{2.0 ** (_MAX_CELL_EXPONENT + 15):g} on the "
                    f"representative data (scale 2^{exponent}); TFLite's "
                    "integer LSTM represents at most 6 integer bits. Check "
                    "the representative data, or keep this model in float."
                )
            if exponent < _MIN_CELL_EXPONENT:
                cell.quantization.scale = np.array(
                    [2.0**_MIN_CELL_EXPONENT], np.float32
                )
                repairs.append(
                    f"{name}: cell-state scale 2^{exponent} -> "
                    f"2^{_MIN_CELL_EXPONENT}"
                )
            hidden = [tensors[op.inputs[_HIDDEN_STATE_INPUT]]]
            intermediates = op.intermediates
            if (
                intermediates is not None
                and len(intermediates) > _HIDDEN_SCALE_INTERMEDIATE
            ):
                index = intermediates[_HIDDEN_SCALE_INTERMEDIATE]
                hidden.append(tensors[index])
            for tensor in hidden:
                if not _same_params(tensor, output):
                    tensor.quantization = copy.deepcopy(output.quantization)
                    repairs.append(
                        f"{name}: {tensor.name.decode()} takes the output's "
                        "scale and zero point"
                    )
    if not repairs:
        return content, repairs
    return flatbuffer_utils.convert_object_to_bytearray(model), repairs
