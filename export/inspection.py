"""Stage 5 of `to_tflite`: what a converted file holds, checked.

`inspect` refuses a file that is not what the package promises: a fused
LSTM op per lowered LSTM call, no WHILE, Flex, CUSTOM or resource-variable
op, one subgraph, fixed input and output shapes. It warns when a float16
or dynamic-range file left small LSTM weights in float32. `quantization_of`
tells a file's mode from its tensors, for files from elsewhere. Every read
goes through `keras_lstm.export.flatbuffer`.
"""

import dataclasses
import warnings

from keras_lstm.export import flatbuffer
from keras_lstm.export.errors import ExportError
from keras_lstm.export.quantization import Quantization

FUSED_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 1,
    "BIDIRECTIONAL_SEQUENCE_LSTM": 2,
}
"""Fused LSTM ops, with the LSTM calls each stands for."""

FORBIDDEN_OPS = {
    "WHILE": "a recurrence the converter did not fuse",
    "CALL_ONCE": "a resource-variable initializer",
    "VAR_HANDLE": "a resource variable",
    "READ_VARIABLE": "a resource variable",
    "ASSIGN_VARIABLE": "a resource variable",
}
"""Ops that mean the lowering failed, with what each stands for."""


@dataclasses.dataclass(frozen=True)
class Inspection:
    """What a file holds.

    Attributes:
        ops: Its operator names, in execution order.
        fused_lstm_ops: How many LSTM calls its fused ops stand for.
    """

    ops: tuple[str, ...]
    fused_lstm_ops: int


def inspect(
    content: bytes, *, expected_lstm_ops: int, quantization: Quantization
) -> Inspection:
    """Raises `ExportError` unless the file is fused, builtin-only, fixed.

    Args:
        content: The file's bytes.
        expected_lstm_ops: LSTM calls lowered to the fused op.
        quantization: The file's mode (for the unquantized-weights warning).
    """
    ops = flatbuffer.op_names(content)
    for op in ops:
        if op.startswith("CUSTOM:"):
            raise ExportError(
                f"The converted file holds the non-builtin op {op!r} "
                "(Flex/custom); TFLite Micro and Vela cannot run it. Ops: "
                f"{ops}."
            )
        if op in FORBIDDEN_OPS:
            raise ExportError(
                f"The converted file holds {op} ({FORBIDDEN_OPS[op]}): an "
                "LSTM did not lower to the fused op. Ops: "
                f"{ops}. Please report this with the model's summary."
            )
    if flatbuffer.subgraph_count(content) != 1:
        raise ExportError(
            "The converted file has several subgraphs (control flow); "
            f"ops: {ops}."
        )
    fused = sum(FUSED_OPS.get(op, 0) for op in ops)
    if fused != expected_lstm_ops:
        raise ExportError(
            f"Expected {expected_lstm_ops} fused LSTM op(s) (one per LSTM "
            f"call), the file holds {fused}. Ops: {ops}."
        )
    _check_fixed_shapes(content)
    _warn_unquantized(content, quantization, fused)
    return Inspection(ops=ops, fused_lstm_ops=fused)


def _check_fixed_shapes(content):
    for kind, tensors in (
        ("input", flatbuffer.graph_inputs(content)),
        ("output", flatbuffer.graph_outputs(content)),
    ):
        for tensor in tensors:
            if any(size < 0 for size in tensor.shape_signature):
                raise ExportError(
                    f"The file's {kind} {tensor.name!r} has a dynamic shape "
                    f"{list(tensor.shape_signature)}; it must be fixed."
                )


def _warn_unquantized(content, quantization, fused):
    """Warns when "dynamic" or "float16" left an LSTM's weights float32.

    The converter quantizes a weight only from 1,024 elements on, and the
    fused op stores one weight tensor per gate: with features x units (or
    units x units) under 1,024, these modes leave the LSTM float.
    """
    if quantization not in (Quantization.DYNAMIC, Quantization.FLOAT16):
        return
    unquantized = len(flatbuffer.float_weight_lstm_ops(content))
    if unquantized:
        # Not an error (the file is correct, only larger), but never silent.
        warnings.warn(
            f"quantization={quantization.value!r} left the weights of "
            f"{unquantized} of {fused} fused LSTM op(s) in float32: the "
            "converter quantizes only weights of 1,024 elements or more, and "
            "the fused op stores one weight per gate (features x units and "
            "units x units). The file is correct but no smaller for them; "
            "use 'int8' to quantize small LSTMs.",
            stacklevel=4,
        )


def quantization_of(content: bytes) -> Quantization:
    """A file's mode, read from its tensors.

    int8 inputs or outputs: `INT8`; int16: `INT16X8`; float inputs with
    float16 constants: `FLOAT16`; with int8 constants: `DYNAMIC`;
    otherwise `NONE`.
    """
    boundary = {
        t.type
        for t in flatbuffer.graph_inputs(content)
        + flatbuffer.graph_outputs(content)
    }
    if "INT8" in boundary:
        return Quantization.INT8
    if "INT16" in boundary:
        return Quantization.INT16X8
    constants = {
        tensor.type
        for op in flatbuffer.operators(content)
        for tensor in op.inputs
        if tensor is not None and tensor.constant
    }
    if "FLOAT16" in constants:
        return Quantization.FLOAT16
    if "INT8" in constants:
        return Quantization.DYNAMIC
    return Quantization.NONE
