"""int16x8: an int8 LSTM file rewritten to 16-bit activations.

TFLite's converter refuses 16x8 quantization for `UNIDIRECTIONAL_SEQUENCE_LSTM`
("Quantization to 16x8-bit not yet supported", TF#59626), while TFLite
Micro's LSTM kernel runs it: int16 activations, int8 weights, int16 cell
state, int64 gate biases. Following the approach of TFLM's
`requantize_flatbuffer.py` (our own code), this module takes the
calibrated full-integer int8 file and rescales it:

- every int8 activation (graph inputs and outputs, op outputs, the LSTM's
  hidden-state variable and its `effective_hidden_scale` intermediate)
  becomes int16, symmetric (zero point 0), covering the same real range
  as its int8 parameters: `scale16 = max(|r_min|, |r_max|) / 32767`. Tensors
  that had equal int8 parameters (which CONCATENATION, RESHAPE,
  STRIDED_SLICE and the LSTM's output/hidden state need) get equal int16
  ones;
- int8 weights stay as they are;
- biases of FULLY_CONNECTED and of the LSTM gates become int64 with scale
  `input_scale16 * weight_scale` (per channel where the weights are), each
  in a buffer of its own (the converter shares equal int32 buffers, e.g.
  zero biases, between tensors whose new scales differ);
- constant int8 operands of ADD, SUB and MUL (a Normalization layer's mean
  and 1/std) are rescaled like activations, values included;
- SOFTMAX outputs take TFLite's fixed int16 output scale, 1/32768;
- the LSTM cell state is int16 already and keeps its power-of-two scale.

Only the ops listed in `SUPPORTED_OPS` are rewritten; anything else is
refused, because another op with constants of its own would need rules
this module does not have. LiteRT has no int16x8 LSTM kernel, so these files are
checked on TFLite Micro.
"""

import copy

import numpy as np

_LSTM_INPUT_WEIGHTS = (1, 2, 3, 4)
_LSTM_GATE_BIASES = (12, 13, 14, 15)
_LSTM_HIDDEN_STATE = 18
_INT16_MAX = 32767

SUPPORTED_OPS = (
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "FULLY_CONNECTED",
    "STRIDED_SLICE",
    "RESHAPE",
    "CONCATENATION",
    "REVERSE_V2",
    "SOFTMAX",
    "ADD",
    "SUB",
    "MUL",
)


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def _op_name(model, op):
    schema = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    for name, value in vars(schema.BuiltinOperator).items():
        if value == builtin and not name.startswith("_"):
            return name
    return f"BUILTIN_{builtin}"


def _is_constant(model, tensor):
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _activation_to_int16(tensor):
    """int8 activation parameters -> symmetric int16, same real range."""
    schema = _schema()
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        raise ValueError(
            f"Tensor {tensor.name.decode()!r} is not a per-tensor quantized "
            "activation; int16x8 rewriting needs one."
        )
    scale, zero_point = float(q.scale[0]), int(q.zeroPoint[0])
    real_min = scale * (-128 - zero_point)
    real_max = scale * (127 - zero_point)
    scale16 = max(abs(real_min), abs(real_max)) / _INT16_MAX
    tensor.quantization = copy.deepcopy(q)
    tensor.quantization.scale = np.array([scale16], np.float32)
    tensor.quantization.zeroPoint = np.array([0], np.int64)
    tensor.type = schema.TensorType.INT16


def _constant_to_int16(model, tensor):
    """A constant int8 operand to int16 values in a buffer of its own."""
    schema = _schema()
    q = tensor.quantization
    data = np.frombuffer(bytes(model.buffers[tensor.buffer].data), np.int8)
    real = (data.astype(np.float64) - int(q.zeroPoint[0])) * float(q.scale[0])
    _activation_to_int16(tensor)
    scale16 = float(tensor.quantization.scale[0])
    values = np.clip(np.round(real / scale16), -_INT16_MAX, _INT16_MAX)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(values.astype(np.int16).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1


def _bias_to_int64(model, bias, input_scale, weight):
    """Requantizes an int32 bias to int64 in a buffer of its own."""
    schema = _schema()
    if bias.type != schema.TensorType.INT32:
        raise ValueError(
            f"Bias {bias.name.decode()!r} is not int32; the int8 file was "
            "not produced by the full-integer converter."
        )
    old_scales = np.asarray(bias.quantization.scale, np.float64)
    data = np.frombuffer(
        bytes(model.buffers[bias.buffer].data), dtype=np.int32
    ).astype(np.float64)
    weight_scales = np.asarray(weight.quantization.scale, np.float64)
    new_scales = input_scale * weight_scales
    if new_scales.size not in (1, data.size):
        raise ValueError(
            f"Bias {bias.name.decode()!r} has {data.size} values but its "
            f"weights have {new_scales.size} scales."
        )
    real = data * (old_scales if old_scales.size > 1 else old_scales[0])
    values = np.round(real / new_scales).astype(np.int64)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(values.tobytes(), dtype=np.uint8)
    model.buffers.append(buffer)
    bias.buffer = len(model.buffers) - 1
    bias.type = schema.TensorType.INT64
    bias.quantization = copy.deepcopy(bias.quantization)
    bias.quantization.scale = new_scales.astype(np.float32)
    bias.quantization.zeroPoint = np.zeros(new_scales.size, np.int64)


def requantize_int16x8(content: bytes) -> bytes:
    """Rewrites a full-integer int8 LSTM file to int16 activations.

    Args:
        content: Bytes of a TFLite file from the int8 converter (with
            `quantization.repair_integer_lstms` applied).

    Returns:
        The int16x8 file's bytes: int16 input and output, int8 weights,
        int64 biases, int16 cell states.

    Raises:
        ValueError: if the file holds an op outside `SUPPORTED_OPS` or
            tensors that are not quantized as the int8 converter does.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    schema = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    for subgraph in model.subgraphs:
        names = [_op_name(model, op) for op in subgraph.operators]
        unsupported = sorted(set(names) - set(SUPPORTED_OPS))
        if unsupported:
            raise ValueError(
                f"int16x8 rewriting supports the ops {SUPPORTED_OPS}; the "
                f"int8 file also holds {unsupported}. Use "
                "quantization='int8' for this model."
            )
        tensors = subgraph.tensors
        int8 = schema.TensorType.INT8
        # Activations: every non-constant int8 tensor, remembering their new
        # scales for the biases below.
        for tensor in tensors:
            if tensor.type == int8 and not _is_constant(model, tensor):
                _activation_to_int16(tensor)
        for op, name in zip(subgraph.operators, names, strict=True):
            if name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
                input_scale = float(tensors[op.inputs[0]].quantization.scale[0])
                for w, b in zip(
                    _LSTM_INPUT_WEIGHTS, _LSTM_GATE_BIASES, strict=True
                ):
                    _bias_to_int64(
                        model,
                        tensors[op.inputs[b]],
                        input_scale,
                        tensors[op.inputs[w]],
                    )
            elif name == "FULLY_CONNECTED":
                input_scale = float(tensors[op.inputs[0]].quantization.scale[0])
                if len(op.inputs) > 2 and op.inputs[2] >= 0:
                    _bias_to_int64(
                        model,
                        tensors[op.inputs[2]],
                        input_scale,
                        tensors[op.inputs[1]],
                    )
                    op.builtinOptions.quantizedBiasType = (
                        schema.TensorType.INT64
                    )
            elif name in ("ADD", "SUB", "MUL"):
                # Constant operands (a Normalization layer's mean and
                # 1/std) are activations with data: same rescaling.
                for index in op.inputs:
                    tensor = tensors[index]
                    if tensor.type == int8 and _is_constant(model, tensor):
                        _constant_to_int16(model, tensor)
            elif name == "SOFTMAX":
                output = tensors[op.outputs[0]]
                output.quantization.scale = np.array([1 / 32768], np.float32)
                output.quantization.zeroPoint = np.array([0], np.int64)
        leftover = [
            t.name.decode()
            for t in tensors
            if t.type == int8 and not _is_constant(model, t)
        ]
        if leftover:  # pragma: no cover - guarded by the loop above
            raise ValueError(f"int8 activations left: {leftover}.")
    return flatbuffer_utils.convert_object_to_bytearray(model)
