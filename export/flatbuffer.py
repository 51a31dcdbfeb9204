"""Reading TFLite flatbuffers: the one module that knows the file format.

Everything that looks inside a `.tflite` file goes through here: operator
names, the subgraph count, the graph's inputs and outputs, and `LSTM`, the
table of the fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op's operand positions.
The writer's checks (`keras_lstm.export.tflite`), the rewrites
(`keras_lstm.export.rewrite`) and the runtimes
(`keras_lstm.export.runners`) all read files with these functions.

TFLite's schema module is private to TensorFlow; it is reached only through
`keras_lstm.export._compat.tflite_schema()`.
"""

import dataclasses

import numpy as np

from keras_lstm.export import _compat, contract


@dataclasses.dataclass(frozen=True)
class LSTMOperands:
    """Operand positions of TFLite's fused LSTM op.

    From TFLite's `unidirectional_sequence_lstm` kernel
    (`lstm_shared.h`). Gate tuples are in TFLite's order: input gate,
    forget gate, candidate (TFLite's "cell" gate), output gate.

    Attributes:
        input: The sequence input, `(batch, time, features)`.
        input_weights: Input-to-gate weights, one tensor per gate.
        recurrent_weights: Recurrent (h-to-gate) weights, one per gate.
        gate_biases: Gate biases, one per gate.
        hidden_state: The variable tensor holding `h` between invocations.
        cell_state: The variable tensor holding `c` between invocations.
        peephole_weights: The variants' peephole diagonals, `(units,)`
            each, for the input, forget and output gates (optional; the
            input gate's is absent under CIFG).
        projection_weights: The projection, `(projection_units, units)`
            (optional).
        projection_bias: The projection's bias (optional).
        layer_norm_coefficients: The layer-norm coefficients, one per gate
            (optional; the input gate's is absent under CIFG).
        gate_intermediates: Intermediates (integer op only) holding each
            gate's pre-activation scale.
        hidden_intermediate: The integer op's `effective_hidden_scale`
            intermediate, from which LiteRT takes the output zero point.
    """

    input: int = 0
    input_weights: tuple[int, int, int, int] = (1, 2, 3, 4)
    recurrent_weights: tuple[int, int, int, int] = (5, 6, 7, 8)
    gate_biases: tuple[int, int, int, int] = (12, 13, 14, 15)
    hidden_state: int = 18
    cell_state: int = 19
    gate_intermediates: tuple[int, int, int, int] = (0, 1, 2, 3)
    hidden_intermediate: int = 4
    peephole_weights: tuple[int, int, int] = (9, 10, 11)
    projection_weights: int = 16
    projection_bias: int = 17
    layer_norm_coefficients: tuple[int, int, int, int] = (20, 21, 22, 23)

    @property
    def weights(self) -> tuple[int, ...]:
        """Input-to-gate then recurrent weights, positions 1 to 8."""
        return self.input_weights + self.recurrent_weights


LSTM = LSTMOperands()
"""The fused LSTM's operand positions (see `LSTMOperands`)."""

LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"


@dataclasses.dataclass(frozen=True)
class Tensor:
    """A tensor of a TFLite file, as stored.

    Attributes:
        name: The tensor's name.
        type: Its schema type name: `"FLOAT32"`, `"INT8"`, `"INT16"`, ...
        shape: The stored shape.
        shape_signature: The shape with `-1` for dynamic dimensions (the
            stored shape when the file has no signature).
        constant: Whether its buffer holds data (weights, biases).
    """

    name: str
    type: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    constant: bool


@dataclasses.dataclass(frozen=True)
class Operator:
    """An operator of a TFLite file's first subgraph.

    Attributes:
        index: Its position in execution order.
        name: Its name, as `op_names` gives it.
        inputs: Its operand tensors; `None` for an omitted optional operand.
        outputs: Its result tensors.
    """

    index: int
    name: str
    inputs: tuple[Tensor | None, ...]
    outputs: tuple[Tensor, ...]


def _root(content):
    return _compat.tflite_schema().Model.GetRootAsModel(content, 0)


def _type_names():
    schema = _compat.tflite_schema()
    return {
        value: name
        for name, value in vars(schema.TensorType).items()
        if not name.startswith("_")
    }


def builtin_name(code: int) -> str:
    """The schema name of builtin operator `code` (`"FULLY_CONNECTED"`).

    Args:
        code: A `BuiltinOperator` value.

    Returns:
        Its name, or `"BUILTIN_<code>"` if this schema does not know it.
    """
    schema = _compat.tflite_schema()
    for name, value in vars(schema.BuiltinOperator).items():
        if value == code and not name.startswith("_"):
            return name
    return f"BUILTIN_{code}"


def opcode_name(builtin: int, deprecated_builtin: int, custom) -> str:
    """The name of an operator code, builtin or custom.

    An operator code stores its builtin in two fields (the deprecated int8
    one for codes below 127); the larger is the real one.

    Args:
        builtin: The code's `builtinCode`.
        deprecated_builtin: Its `deprecatedBuiltinCode`.
        custom: Its `customCode` (bytes, str or `None`).

    Returns:
        The schema name (`"UNIDIRECTIONAL_SEQUENCE_LSTM"`), or
        `"CUSTOM:<code>"` for custom ops (Flex included).
    """
    schema = _compat.tflite_schema()
    code = max(builtin, deprecated_builtin)
    if code == schema.BuiltinOperator.CUSTOM:
        if isinstance(custom, bytes):
            custom = custom.decode()
        return f"CUSTOM:{custom or '?'}"
    return builtin_name(code)


def _opcode_names(model):
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        names.append(
            opcode_name(
                code.BuiltinCode(),
                code.DeprecatedBuiltinCode(),
                code.CustomCode(),
            )
        )
    return names


def op_names(content: bytes) -> tuple[str, ...]:
    """Names of the operators in a TFLite flatbuffer, all subgraphs.

    Builtin operators by their schema name (`"UNIDIRECTIONAL_SEQUENCE_LSTM"`),
    custom ones (Flex included) as `"CUSTOM:<code>"`.

    Args:
        content: The file's bytes.

    Returns:
        A tuple of names, subgraph by subgraph, in execution order.
    """
    model = _root(content)
    codes = _opcode_names(model)
    ops = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            ops.append(codes[subgraph.Operators(o).OpcodeIndex()])
    return tuple(ops)


def subgraph_count(content: bytes) -> int:
    """Number of subgraphs (more than one means control flow)."""
    return _root(content).SubgraphsLength()


def _tensor(model, subgraph, index, types):
    tensor = subgraph.Tensors(index)
    shape = tensor.ShapeAsNumpy()
    shape = () if isinstance(shape, int) else tuple(int(d) for d in shape)
    signature = tensor.ShapeSignatureAsNumpy()
    signature = (
        shape
        if isinstance(signature, int)
        else tuple(int(d) for d in signature)
    )
    buffer = model.Buffers(tensor.Buffer())
    return Tensor(
        name=tensor.Name().decode(),
        type=types.get(tensor.Type(), str(tensor.Type())),
        shape=shape,
        shape_signature=signature,
        constant=buffer is not None and buffer.DataLength() > 0,
    )


def graph_inputs(content: bytes) -> tuple[Tensor, ...]:
    """The first subgraph's input tensors, in the subgraph's order."""
    return _graph_tensors(content, "Inputs")


def graph_outputs(content: bytes) -> tuple[Tensor, ...]:
    """The first subgraph's output tensors, in the subgraph's order."""
    return _graph_tensors(content, "Outputs")


def _graph_tensors(content, which):
    """The first subgraph's `which` ("Inputs" or "Outputs") tensors."""
    model = _root(content)
    subgraph = model.Subgraphs(0)
    types = _type_names()
    index = getattr(subgraph, which)
    count = getattr(subgraph, which + "Length")()
    return tuple(
        _tensor(model, subgraph, index(i), types) for i in range(count)
    )


def operators(content: bytes) -> tuple[Operator, ...]:
    """The first subgraph's operators with their operand tensors.

    Args:
        content: The file's bytes.

    Returns:
        One `Operator` per op, in execution order.
    """
    model = _root(content)
    subgraph = model.Subgraphs(0)
    codes = _opcode_names(model)
    types = _type_names()
    result = []
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        inputs = op.InputsAsNumpy()
        outputs = op.OutputsAsNumpy()
        inputs = () if isinstance(inputs, int) else inputs
        outputs = () if isinstance(outputs, int) else outputs
        result.append(
            Operator(
                index=i,
                name=codes[op.OpcodeIndex()],
                inputs=tuple(
                    _tensor(model, subgraph, int(t), types) if t >= 0 else None
                    for t in inputs
                ),
                outputs=tuple(
                    _tensor(model, subgraph, int(t), types) for t in outputs
                ),
            )
        )
    return tuple(result)


def metadata(content: bytes) -> dict[str, bytes]:
    """The file's metadata entries (`Model.metadata`), name to buffer.

    Args:
        content: The file's bytes.

    Returns:
        A dict from entry name to its buffer's bytes (empty for entries
        whose buffer holds nothing).
    """
    model = _root(content)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        data = buffer.DataAsNumpy() if buffer.DataLength() else b""
        entries[entry.Name().decode()] = bytes(data)
    return entries


def padding(content: bytes):
    """The `contract.Padding` a file from a masked model records, or None."""
    data = metadata(content).get(contract.PADDING_METADATA)
    return None if data is None else contract.Padding.decode(data)


def float_weight_lstm_ops(content: bytes) -> tuple[int, ...]:
    """Fused LSTM ops that store their gate weights in float32.

    A weight counts as float32 if it is a float32 constant; float16 weights
    reach the op through DEQUANTIZE and are float32 only at run time.

    Args:
        content: The file's bytes.

    Returns:
        The indices, in the first subgraph, of the fused LSTM ops whose
        weights (`LSTM.weights`) are all stored as float32 constants.
    """
    result = []
    for op in operators(content):
        if op.name != LSTM_OP:
            continue
        weights = [op.inputs[k] for k in LSTM.weights]
        weights = [t for t in weights if t is not None]
        if all(t.constant and t.type == "FLOAT32" for t in weights):
            result.append(op.index)
    return tuple(result)


def lstm_options(content: bytes) -> tuple[dict, ...]:
    """The options of each fused LSTM op in the first subgraph.

    Args:
        content: The file's bytes.

    Returns:
        One dict per `UNIDIRECTIONAL_SEQUENCE_LSTM`, in execution order:
        `cell_clip`, `proj_clip` (0 means no clipping) and `time_major`.
    """
    model = unpack(content)
    result = []
    subgraph = model.subgraphs[0]
    for op, name in zip(
        subgraph.operators, object_op_names(model, subgraph), strict=True
    ):
        if name == LSTM_OP:
            options = op.builtinOptions
            result.append(
                {
                    "cell_clip": float(options.cellClip),
                    "proj_clip": float(options.projClip),
                    "time_major": bool(options.timeMajor),
                }
            )
    return tuple(result)


def unpack(content: bytes):
    """The file as TFLite's mutable object tree (`ModelT`), for rewriting.

    Args:
        content: The file's bytes.

    Returns:
        A schema `ModelT`; `keras_lstm.export.rewrite` packs it back.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(content))


def object_op_names(model, subgraph) -> list[str]:
    """`op_names` for one subgraph of an unpacked `ModelT`."""
    names = []
    for op in subgraph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        names.append(
            opcode_name(
                code.builtinCode, code.deprecatedBuiltinCode, code.customCode
            )
        )
    return names


def object_producers(model, subgraph) -> dict:
    """`{tensor index: (operator, its name)}` for an unpacked subgraph."""
    return {
        int(output): (op, name)
        for op, name in zip(
            subgraph.operators, object_op_names(model, subgraph), strict=True
        )
        for output in op.outputs
    }


def object_weight_values(model, subgraph, index, producers=None):
    """A weight operand of an unpacked `ModelT` as float32 values.

    Args:
        model: The unpacked `ModelT`.
        subgraph: Its `SubGraphT`.
        index: The operand's tensor index.
        producers: `object_producers(model, subgraph)`, if at hand.

    Returns:
        `(values, storage)`: `storage` is `"float32"` for a float32
        constant, `"float16"` for a float16 constant behind a DEQUANTIZE
        (the converter's float16 files), `"int8"` for an int8 constant
        with one symmetric scale (dynamic-range and integer files),
        `"int16"` or `"int32"` likewise (an integer LSTM's peepholes and
        layer norm, its biases); `values` are then dequantized.
        `(None, None)` for anything else.
    """
    schema = _compat.tflite_schema()

    def constant(tensor, dtype):
        if not is_constant(model, tensor):
            return None
        data = bytes(model.buffers[tensor.buffer].data)
        shape = tuple(int(d) for d in tensor.shape)
        return np.frombuffer(data, dtype).reshape(shape).astype(np.float32)

    tensor = subgraph.tensors[index]
    if tensor.type == schema.TensorType.FLOAT32:
        values = constant(tensor, np.float32)
        if values is not None:
            return values, "float32"
    quantization = tensor.quantization
    integers = {
        schema.TensorType.INT8: np.int8,
        schema.TensorType.INT16: np.int16,
        schema.TensorType.INT32: np.int32,
    }
    if (
        tensor.type in integers
        and quantization is not None
        and quantization.scale is not None
        and len(quantization.scale) == 1
        and not np.any(quantization.zeroPoint)
    ):
        dtype = integers[tensor.type]
        values = constant(tensor, dtype)
        if values is not None:
            scale = np.float64(quantization.scale[0])
            return (values * scale).astype(np.float32), np.dtype(dtype).name
    if producers is None:
        producers = object_producers(model, subgraph)
    producer = producers.get(index)
    if producer is not None and producer[1] == "DEQUANTIZE":
        source = subgraph.tensors[int(producer[0].inputs[0])]
        if source.type == schema.TensorType.FLOAT16:
            values = constant(source, np.float16)
            if values is not None:
                return values, "float16"
    return None, None


def lstm_weight_values(content: bytes) -> tuple[dict, ...]:
    """The float weight operands of each fused LSTM op, read back.

    Args:
        content: The file's bytes.

    Returns:
        One dict per `UNIDIRECTIONAL_SEQUENCE_LSTM` of the first subgraph,
        in execution order, from operand position (`LSTM`) to float32
        values, for the operands `object_weight_values` reads.
    """
    model = unpack(content)
    subgraph = model.subgraphs[0]
    producers = object_producers(model, subgraph)
    result = []
    for op, name in zip(
        subgraph.operators, object_op_names(model, subgraph), strict=True
    ):
        if name != LSTM_OP:
            continue
        values = {}
        for slot, index in enumerate(op.inputs):
            if index >= 0:
                value, _ = object_weight_values(
                    model, subgraph, int(index), producers
                )
                if value is not None:
                    values[slot] = value
        result.append(values)
    return tuple(result)


def is_constant(model, tensor) -> bool:
    """Whether a tensor of an unpacked `ModelT` has data (a constant)."""
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


__all__ = [
    "LSTM",
    "LSTM_OP",
    "LSTMOperands",
    "Operator",
    "Tensor",
    "builtin_name",
    "float_weight_lstm_ops",
    "graph_inputs",
    "graph_outputs",
    "is_constant",
    "lstm_options",
    "lstm_weight_values",
    "object_producers",
    "object_weight_values",
    "metadata",
    "object_op_names",
    "op_names",
    "opcode_name",
    "operators",
    "padding",
    "subgraph_count",
    "unpack",
]
