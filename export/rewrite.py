"""Rewriting TFLite flatbuffers: every change made to a converted file.

`finish` is stage 4 of `to_tflite`: it applies, in order, one rewrite to
every fused LSTM, two to integer files, all addressing the fused LSTM's
operands through `keras_lstm.export.flatbuffer.LSTM`, another to every
file, and records a masked model's padding convention:

- `write_lstm_variants`: Keras's LSTM in every fused op: no cell clip
  (the converter writes 10, below), and the variants' operands and clips.
- `repair_integer_lstms`: fixes two quirks of the converter's integer LSTM
  parameters (below).
- `requantize_int16x8`: turns the int8 file into the int16x8 one, which the
  converter refuses to produce.
- `drop_unused_buffers`: empties the buffers no tensor or metadata entry
  refers to. The converter leaves behind the zeros that initialised each
  LSTM's `h` and `c` before they became variable tensors (which carry no
  data; runtimes zero them): one float32 buffer, or in integer files one
  per state. Quantized, their bytes are whatever the quantizer left, and
  they changed from one conversion of the same model to the next (int8 `h`
  all 0 or all 127, int16 `c` 2048 or 6144 per element), so two exports of
  one model differed. Dead data: 3 bytes per unit of each LSTM in int8
  files, 4 in float32 ones. Emptied, the same model and data give the same
  bytes.

# LSTM variants

`write_lstm_variants` writes peepholes, CIFG, layer norm, a projection and
the clips into float32, float16 and dynamic-range files, and into the
float32 file an integer one is calibrated and quantized from
(`keras_lstm.export.conversion`). TFLite's kernel takes them as optional
operands of the fused op (`lstm_shared.h`; `lstm_eval.cc`, `LstmStepFloat`,
for the equations), but the converter's Keras fusion
(`lstm_utils.cc`, `ConvertKerasLSTMLayer`) builds only four gate blocks of
weights and biases, takes `n_output` from the recurrent kernel's rows (so
a projection's output size is already right) and leaves operands 9-11,
16-17 and 20-23 empty, with `cell_clip` 10 and `proj_clip` 0 (both set
to 0 in every op first, "Clips" below). The rewrite

- finds each variant's op by its forget-gate input weights (operand 2),
  which every variant has;
- adds the peephole diagonals (9-11), the projection `P^T` and its bias
  (16-17) and the layer-norm coefficients (20-23) as float32 constants;
- under CIFG empties the input gate's operands (1, 5, 12; 9 and 20 stay
  empty), which the lowering filled with zeros;
- sets `cell_clip` and `proj_clip` (0, no clipping, where Keras has
  `None`).

# Clips

Keras never clips the cell state, but the converter's Keras fusion gives
every fused op `cell_clip` 10, so a plain LSTM whose `|c|` passes 10 ran
clipped (a next-character `LSTM(88)` reached 28.7 and its float32 file
missed Keras by 0.081). `write_lstm_variants` gives every op `cell_clip`
and `proj_clip` 0 before writing the variants' own, and 0 means "no
clip" in every kernel that runs these files:

- LiteRT float and hybrid (`lstm_eval.cc`): `if (params->cell_clip > 0.0)`
  around the clipping;
- LiteRT integer (`unidirectional_sequence_lstm.cc`,
  `PopulateQuantizedLstmParams8x8_16`): `quantized_cell_clip` is
  `cell_clip / cell_scale` only if `cell_clip > 0`, else 0, and
  `lstm_eval.cc` clips only `if (quantized_cell_clip > 0)`; the same for
  `quantized_proj_clip`;
- TFLite Micro's reference kernels (`lstm_eval.h`, `UpdateLstmCell`, float
  and integer): `if (cell_state_info.cell_clip > 0)`; its
  `CreateLstmCellStateInfo` makes `quantized_cell_clip` 0 from 0;
- CMSIS-NN (`arm_nn_lstm_update_cell_state_s16`) has no clip at all, only
  int16 saturation, so the converter's 10 was already ignored there;
- Vela (`lstm.py`): no Clip activation on the cell update when
  `cell_clip == 0`; none of its `constraint_lstm_*` reads the clips;
- the calibrator's logging LSTM kernel
  (`calibration/builtin_logging_ops/lstm.cc`, `UpdateLstmCellFloat`):
  `if (clip > 0.0f)`. It calibrates whatever file it is given, so the
  float file an integer file with variants is calibrated from holds
  Keras's options; a plain integer file is calibrated inside the
  converter, with its 10 (see `keras_lstm.export.conversion`).

# Integer LSTM repair

Two quirks of the converter's integer LSTM output, each measured on small
stacked and bidirectional models, where LiteRT drifted by a third of the
output range before the repair and matches TFLite Micro to the quantum
after it.

1. LiteRT computes tanh(c) with `ApplyTanh(15 + log2(cell_scale), ...)`
   (lstm_eval.cc), which handles 0 to 6 integer bits: cell-state scales
   from 2^-15 to 2^-9. The converter picks the smallest power of two that
   covers the calibrated cell range, so a layer whose |c| stays under 0.5
   gets 2^-16, and LiteRT then saturates its hidden state (TFLite Micro
   computes it correctly). Widening the scale to 2^-15 keeps the file
   consistent: the cell state is a variable tensor without stored data,
   and the kernels derive every cell shift from its scale.
2. The op writes h to its output and to its hidden-state variable, and
   reads it back from the variable at the next step, so both (and the
   `effective_hidden_scale` intermediate, from which LiteRT takes the
   output zero point) must share one scale. When a consumer forces the
   output's scale (CONCATENATION after a Bidirectional), the converter
   moves the output's parameters only. We give the other two the output's
   parameters, which is what every consumer reads. Under a projection the
   intermediate is `o * tanh(c)` before the projection, with its own
   range, and keeps it (repair 3 instead).

Two more concern LSTM variants, measured on the int8 variant models of
`tests/test_variant_export.py` against the float LSTM on the op's own
inputs (`keras_lstm.export.fidelity`):

3. Projection: LiteRT folds the hidden intermediate's zero point into the
   projection's bias with the wrong sign
   (`unidirectional_sequence_lstm.cc`,
   `PopulatePrecomputedZPTimesWeightsWithBias` passes `hidden_zp` where the
   gates pass `-zero_point`, so the kernel adds `zp * sum(W)` that it should
   subtract). The quantizer gives that intermediate an asymmetric int8
   range, so we make it symmetric over the same real range (zero point 0)
   and requantize the projection bias to its new scale
   (`projection weight scale * hidden scale`, `operator_property.cc`'s
   derived scale for operand 17). Measured: 25.6 output quanta off with a
   projection bias before, 1.1 after.
4. CIFG with layer norm: the calibrator logs no input gate, so the
   quantizer leaves the input gate's intermediate (0) unquantized, while
   LiteRT's Prepare (`PopulateQuantizedLstmParams8x8_16`) reads the scales
   of all four gate intermediates under layer norm and requires them to
   be quantized. Measured: 127 quanta off (the output saturated) before;
   given the forget gate's int16 parameters, which no computation uses
   under CIFG, 1.4.

# int16x8

TFLite's converter refuses 16x8 quantization for `UNIDIRECTIONAL_SEQUENCE_LSTM`
("Quantization to 16x8-bit not yet supported", TF#59626), while TFLite
Micro's LSTM kernel runs it: int16 activations, int8 weights, int16 cell
state, int64 gate biases. Following the approach of TFLM's
`requantize_flatbuffer.py` (our own code), `requantize_int16x8` takes the
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

Only the ops listed in `INT16X8_OPS` are rewritten; anything else is
refused, because another op with constants of its own would need rules
this module does not have. LiteRT has no int16x8 LSTM kernel, so these
files are checked on TFLite Micro.
"""

import copy
import logging

import numpy as np

from keras_lstm.export import _compat, contract, flatbuffer
from keras_lstm.export.errors import ExportError
from keras_lstm.export.flatbuffer import LSTM, LSTM_OP
from keras_lstm.export.quantization import Quantization

logger = logging.getLogger(__name__)

_MIN_CELL_EXPONENT, _MAX_CELL_EXPONENT = -15, -9
_INT16_MAX = 32767

INT16X8_OPS = (
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
"""The ops `requantize_int16x8` knows how to rewrite."""


def finish(
    content: bytes, quantization: Quantization, padding=None, variants=()
) -> tuple[bytes, bytes | None]:
    """Every rewrite of a converted file, in order.

    Integer files: `repair_integer_lstms`, then for int16x8
    `requantize_int16x8` (unless the converter wrote 16x8 itself, for a
    file without a fused LSTM); every file: `drop_unused_buffers`; a masked
    model's file: its padding convention as metadata
    (`contract.PADDING_METADATA`).

    Args:
        content: The converter's flatbuffer.
        quantization: The file's mode.
        padding: A masked model's `contract.Padding`, else `None`.
        variants: LSTM variants to write into their fused ops
            (`write_lstm_variants`), for float modes; integer files hold
            them already (`keras_lstm.export.conversion` writes them before
            calibrating).

    Returns:
        `(file, int8)`: the finished file, and for integer modes the
        repaired int8 file it came from (whose LSTMs
        `keras_lstm.export.fidelity` replays), else `None`.

    Raises:
        ExportError: if an integer LSTM cannot be repaired.
    """
    int8 = None
    if not (quantization.is_integer and variants):
        # Integer files with variants have them, clips included, from the
        # float file they were calibrated from (`conversion`).
        content = write_lstm_variants(content, variants)
    if quantization.is_integer:
        try:
            content, repairs = repair_integer_lstms(content)
        except ValueError as error:
            raise ExportError(str(error)) from error
        for repair in repairs:
            logger.info("Integer LSTM repair: %s.", repair)
        int8 = content
    if quantization is Quantization.INT16X8 and not _is_int16(content):
        content = requantize_int16x8(content)
    content = drop_unused_buffers(content)
    if padding is not None:
        content = with_metadata(
            content, contract.PADDING_METADATA, padding.encode()
        )
    return content, int8


def _is_int16(content):
    """Whether the converter wrote int16 activations itself (16x8 mode)."""
    return any(t.type == "INT16" for t in flatbuffer.graph_inputs(content))


def _pack(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def with_metadata(content: bytes, name: str, data: bytes) -> bytes:
    """The file with metadata entry `name` set to `data` (`Model.metadata`).

    Runtimes ignore entries they do not know; `to_tflite` records the
    padding convention of a masked model this way
    (`contract.PADDING_METADATA`), read back by `flatbuffer.metadata`.
    """
    schema = _compat.tflite_schema()
    model = flatbuffer.unpack(content)
    buffer = schema.BufferT()
    buffer.data = list(data)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [
        m for m in (model.metadata or []) if _name(m.name) != name
    ] + [entry]
    return _pack(model)


def _name(value):
    return value.decode() if isinstance(value, bytes) else value


def drop_unused_buffers(content: bytes) -> bytes:
    """The file with every buffer no tensor or metadata entry uses emptied.

    Indices stay as they are (an emptied buffer is what buffer 0, the
    schema's "no data", already is), so nothing that refers to a buffer
    moves. Returns `content` itself when no buffer is unused.
    """
    model = flatbuffer.unpack(content)
    used = {
        tensor.buffer
        for subgraph in model.subgraphs
        for tensor in subgraph.tensors
    }
    used.update(entry.buffer for entry in model.metadata or [])
    unused = [
        buffer
        for index, buffer in enumerate(model.buffers)
        if index not in used and buffer.data is not None and len(buffer.data)
    ]
    if not unused:
        return content
    for buffer in unused:
        buffer.data = None
    return _pack(model)


# ---------------------------------------------------------------------------
# LSTM variants.


def _new_tensor(model, subgraph, name, shape, tensor_type, data=None):
    schema = _compat.tflite_schema()
    tensor = schema.TensorT()
    tensor.name = name
    tensor.shape = np.asarray(shape, np.int32)
    tensor.type = tensor_type
    tensor.buffer = 0  # The schema's "no data".
    if data is not None:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, np.uint8)
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _opcode_index(model, builtin):
    schema = _compat.tflite_schema()
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _add_constant(model, subgraph, name, values, storage, before):
    """An operand stored as the converter stored the op's other weights.

    float32 constants; float16 ones dequantized before the op (`before`)
    in float16 files; int8 with one symmetric scale in dynamic-range
    (hybrid) files, `storage` `"int8"`, which LiteRT's hybrid kernel
    requires of the peephole and projection weights (the layer-norm
    coefficients and the projection bias stay float32 there: pass
    `"float32"`).
    """
    schema = _compat.tflite_schema()
    types = schema.TensorType
    values = np.ascontiguousarray(values, np.float32)
    if storage == "float32":
        return _new_tensor(
            model, subgraph, name, values.shape, types.FLOAT32, values.tobytes()
        )
    if storage == "int8":
        scale = float(np.max(np.abs(values))) / 127 or 1.0
        quantized = np.clip(np.round(values / scale), -127, 127)
        index = _new_tensor(
            model,
            subgraph,
            name,
            values.shape,
            types.INT8,
            quantized.astype(np.int8).tobytes(),
        )
        params = schema.QuantizationParametersT()
        params.scale = np.asarray([scale], np.float32)
        params.zeroPoint = np.asarray([0], np.int64)
        subgraph.tensors[index].quantization = params
        return index
    half = _new_tensor(
        model,
        subgraph,
        f"{name}/float16",
        values.shape,
        types.FLOAT16,
        values.astype(np.float16).tobytes(),
    )
    output = _new_tensor(model, subgraph, name, values.shape, types.FLOAT32)
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE)
    op.inputs = np.asarray([half], np.int32)
    op.outputs = np.asarray([output], np.int32)
    subgraph.operators.insert(subgraph.operators.index(before), op)
    return output


def _variant_operands(variant):
    """`{operand: (suffix, values, weight)}` for a variant's operands.

    `weight`: whether a dynamic-range file stores it in int8 (peepholes
    and projection), rather than float32 (layer norm, projection bias).
    """
    names = ("f", "c", "o") if variant.coupled_input_forget else "ifco"
    operands = {}
    if variant.peephole_kernel is not None:
        rows = [n for n in names if n != "c"]
        for gate, values in zip(rows, variant.peephole_kernel, strict=True):
            slot = LSTM.peephole_weights["ifo".index(gate)]
            operands[slot] = (f"cell_to_{gate}_weights", values, True)
    if variant.layer_norm_scale is not None:
        for gate, values in zip(names, variant.layer_norm_scale, strict=True):
            slot = LSTM.layer_norm_coefficients["ifco".index(gate)]
            operands[slot] = (
                f"{gate}_layer_norm_coefficients",
                values,
                False,
            )
    if variant.projection_kernel is not None:
        operands[LSTM.projection_weights] = (
            "projection_weights",
            variant.projection_kernel.T,
            True,
        )
        if variant.projection_bias is not None:
            operands[LSTM.projection_bias] = (
                "projection_bias",
                variant.projection_bias,
                False,
            )
    return operands


def write_lstm_variants(content: bytes, variants=()) -> bytes:
    """Writes Keras's LSTM into every fused op: no clip, or the variant's.

    The converter gives every fused op `cell_clip` 10 (`lstm_utils.cc`,
    `ConvertKerasLSTMLayer`); Keras never clips. Every op gets `cell_clip`
    and `proj_clip` 0, which every kernel reads as "no clipping" (see
    "Clips" above), and each lowered variant's op then gets its operands
    and its own clips. For float32, float16 and dynamic-range files, for
    the float32 file an integer file with variants is calibrated from
    (`keras_lstm.export.conversion`), and, without variants, for integer
    files; the operands are stored as the op's other weights are, float32
    constants or float16 ones behind a DEQUANTIZE.

    See "LSTM variants" above for what changes and the TFLite sources it
    relies on.

    Args:
        content: The converted file.
        variants: The `keras_lstm.export.lowering.LoweredVariant`s that
            `fused_sequence(..., variants=[...])` collected; float32,
            float16 or dynamic-range weights when there are any.

    Returns:
        The file's bytes; `content` itself when no op changes (no fused
        LSTM, or every one already has Keras's options).

    Raises:
        ValueError: if no op has a variant's float32 forget-gate weights,
            or two variants have the same ones.
    """
    model = flatbuffer.unpack(content)
    subgraph = model.subgraphs[0]
    lstm_ops = [
        op
        for op, name in zip(
            subgraph.operators,
            flatbuffer.object_op_names(model, subgraph),
            strict=True,
        )
        if name == LSTM_OP
    ]
    changed = False
    for op in lstm_ops:
        options = op.builtinOptions
        if options.cellClip != 0 or options.projClip != 0:
            options.cellClip = options.projClip = 0.0
            changed = True
    if not variants:
        return _pack(model) if changed else content
    producers = flatbuffer.object_producers(model, subgraph)
    # A function traced twice records its layers twice: one per name.
    by_name = {lowered.name: lowered for lowered in variants}
    written = set()
    for op in lstm_ops:
        values, storage = flatbuffer.object_weight_values(
            model, subgraph, int(op.inputs[LSTM.input_weights[1]]), producers
        )
        matches = [
            lowered
            for lowered in by_name.values()
            if values is not None
            and _same_weights(values, storage, lowered.forget_kernel.T)
        ]
        if len(matches) > 1:
            raise ValueError(
                "LSTM variants "
                f"{sorted(lowered.name for lowered in matches)} have the "
                "same forget-gate weights, so their fused ops cannot be "
                "told apart. Give the layers different weights."
            )
        if matches:
            _write_variant(model, subgraph, op, matches[0], storage)
            written.add(matches[0].name)
    missing = sorted(set(by_name) - written)
    if missing:
        raise ValueError(
            f"LSTM variants {missing}: no fused LSTM op has their "
            "forget-gate weights in float32 or float16. Variants are "
            "written into float32 and float16 files only."
        )
    _release_orphans(model, subgraph)
    return _pack(model)


def _same_weights(values, storage, weights):
    """Whether stored `values` are `weights` as that storage rounds them."""
    if values.shape != weights.shape:
        return False
    if storage == "int8":
        # Within half a quantum: the scale is the largest |w| / 127.
        half_step = float(np.max(np.abs(weights))) / 127 / 2
        return bool(np.all(np.abs(values - weights) <= half_step * 1.001))
    dtype = np.float16 if storage == "float16" else np.float32
    return np.array_equal(values, weights.astype(dtype).astype(np.float32))


def _write_variant(model, subgraph, op, lowered, storage):
    inputs = [int(i) for i in op.inputs]
    variant = lowered.variant
    if variant.coupled_input_forget:
        for slot in (
            LSTM.input_weights[0],
            LSTM.recurrent_weights[0],
            LSTM.gate_biases[0],
        ):
            inputs[slot] = -1
    for slot, (suffix, values, weight) in _variant_operands(variant).items():
        inputs[slot] = _add_constant(
            model,
            subgraph,
            f"{lowered.name}/{suffix}",
            values,
            storage if weight or storage != "int8" else "float32",
            op,
        )
    op.inputs = np.asarray(inputs, np.int32)
    op.builtinOptions.cellClip = float(variant.cell_clip or 0.0)
    op.builtinOptions.projClip = float(variant.projection_clip or 0.0)


def _release_orphans(model, subgraph):
    """Drops what only CIFG's stand-in input-gate operands used.

    DEQUANTIZE ops whose output nothing reads (float16 files) are removed;
    constants no operator reads lose their data, and
    `drop_unused_buffers` then empties their buffers.
    """

    def read():
        used = {int(i) for i in subgraph.outputs}
        for op in subgraph.operators:
            for operands in (op.inputs, op.intermediates):
                if operands is not None:
                    used.update(int(i) for i in operands)
        return used

    used = read()
    names = flatbuffer.object_op_names(model, subgraph)
    subgraph.operators = [
        op
        for op, name in zip(subgraph.operators, names, strict=True)
        if not (name == "DEQUANTIZE" and int(op.outputs[0]) not in used)
    ]
    used = read() | {int(i) for i in subgraph.inputs}
    for index, tensor in enumerate(subgraph.tensors):
        if index not in used and flatbuffer.is_constant(model, tensor):
            tensor.buffer = 0


# ---------------------------------------------------------------------------
# Integer LSTM repair.


def _same_params(a, b):
    return np.array_equal(a.quantization.scale, b.quantization.scale) and (
        np.array_equal(a.quantization.zeroPoint, b.quantization.zeroPoint)
    )


def repair_integer_lstms(content: bytes) -> tuple[bytes, list[str]]:
    """Fixes the converter's integer LSTM parameters (see the module doc:
    repairs 1 and 2 for every integer LSTM, 3 and 4 for variants).

    Args:
        content: An integer-quantized TFLite flatbuffer.

    Returns:
        `(content, repairs)`: the (possibly) rewritten flatbuffer and a list
        of what was changed, for the log.

    Raises:
        ValueError: if a cell state needs more than 6 integer bits
            (|c| > 64), which TFLite's integer LSTM cannot represent.
    """
    schema = _compat.tflite_schema()
    model = flatbuffer.unpack(content)
    repairs = []
    for subgraph in model.subgraphs:
        names = flatbuffer.object_op_names(model, subgraph)
        for op, op_name in zip(subgraph.operators, names, strict=True):
            if op_name != LSTM_OP:
                continue
            tensors = subgraph.tensors
            output = tensors[op.outputs[0]]
            cell = tensors[op.inputs[LSTM.cell_state]]
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
            hidden = [tensors[op.inputs[LSTM.hidden_state]]]
            intermediates = op.intermediates
            projected = op.inputs[LSTM.projection_weights] >= 0
            if projected:
                # The intermediate is o * tanh(c), before the projection.
                repairs += _symmetric_hidden(model, tensors, op, name)
            elif (
                intermediates is not None
                and len(intermediates) > LSTM.hidden_intermediate
            ):
                index = intermediates[LSTM.hidden_intermediate]
                hidden.append(tensors[index])
            repairs += _cifg_layer_norm_intermediate(tensors, op, name)
            for tensor in hidden:
                if not _same_params(tensor, output):
                    tensor.quantization = copy.deepcopy(output.quantization)
                    repairs.append(
                        f"{name}: {tensor.name.decode()} takes the output's "
                        "scale and zero point"
                    )
    if not repairs:
        return content, repairs
    return _pack(model), repairs


def _symmetric_hidden(model, tensors, op, name):
    """A projected LSTM's hidden intermediate, made symmetric, and its
    projection bias requantized to match (repair 3)."""
    schema = _compat.tflite_schema()
    hidden = tensors[op.intermediates[LSTM.hidden_intermediate]]
    q = hidden.quantization
    if q is None or q.scale is None or not len(q.scale):
        return []
    zero_point = int(q.zeroPoint[0])
    if zero_point == 0:
        return []
    scale = float(q.scale[0])
    real_max = scale * max(128 + zero_point, 127 - zero_point)
    new_scale = real_max / 127
    hidden.quantization = copy.deepcopy(q)
    hidden.quantization.scale = np.array([new_scale], np.float32)
    hidden.quantization.zeroPoint = np.array([0], np.int64)
    repaired = [
        f"{name}: {hidden.name.decode()} symmetric (zero point "
        f"{zero_point} -> 0, scale {scale:.4g} -> {new_scale:.4g})"
    ]
    slot = op.inputs[LSTM.projection_bias]
    if slot >= 0:
        bias = tensors[slot]
        weight_scale = float(
            tensors[op.inputs[LSTM.projection_weights]].quantization.scale[0]
        )
        old = float(bias.quantization.scale[0])
        values = np.frombuffer(
            bytes(model.buffers[bias.buffer].data), np.int32
        ).astype(np.float64)
        new = weight_scale * np.float64(np.float32(new_scale))
        requantized = np.clip(
            np.round(values * old / new), -(2**31), 2**31 - 1
        ).astype(np.int32)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(requantized.tobytes(), np.uint8)
        model.buffers.append(buffer)
        bias.buffer = len(model.buffers) - 1
        bias.quantization = copy.deepcopy(bias.quantization)
        bias.quantization.scale = np.array([new], np.float32)
        repaired.append(
            f"{name}: {bias.name.decode()} rescaled to the hidden scale"
        )
    return repaired


def _cifg_layer_norm_intermediate(tensors, op, name):
    """Parameters for the absent input gate's intermediate (repair 4)."""
    schema = _compat.tflite_schema()
    intermediates = op.intermediates
    layer_norm = op.inputs[LSTM.layer_norm_coefficients[1]] >= 0
    cifg = op.inputs[LSTM.input_weights[0]] < 0
    if not (layer_norm and cifg) or intermediates is None:
        return []
    gates = [tensors[i] for i in intermediates[: LSTM.hidden_intermediate]]
    first = gates[LSTM.gate_intermediates[0]]
    if first.type == schema.TensorType.INT16:
        return []
    forget = gates[LSTM.gate_intermediates[1]]
    first.type = forget.type
    first.quantization = copy.deepcopy(forget.quantization)
    return [
        f"{name}: {first.name.decode()} (CIFG, no input gate) takes the "
        "forget gate's int16 parameters"
    ]


# ---------------------------------------------------------------------------
# int16x8.


def _activation_to_int16(tensor):
    """int8 activation parameters -> symmetric int16, same real range."""
    schema = _compat.tflite_schema()
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
    schema = _compat.tflite_schema()
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
    schema = _compat.tflite_schema()
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
            `repair_integer_lstms` applied).

    Returns:
        The int16x8 file's bytes: int16 input and output, int8 weights,
        int64 biases, int16 cell states.

    Raises:
        ValueError: if the file holds an op outside `INT16X8_OPS` or
            tensors that are not quantized as the int8 converter does.
    """
    schema = _compat.tflite_schema()
    model = flatbuffer.unpack(content)
    for subgraph in model.subgraphs:
        names = flatbuffer.object_op_names(model, subgraph)
        unsupported = sorted(set(names) - set(INT16X8_OPS))
        if unsupported:
            raise ValueError(
                f"int16x8 rewriting supports the ops {INT16X8_OPS}; the "
                f"int8 file also holds {unsupported}. Use "
                "quantization='int8' for this model."
            )
        tensors = subgraph.tensors
        int8 = schema.TensorType.INT8
        # Activations: every non-constant int8 tensor, remembering their new
        # scales for the biases below.
        for tensor in tensors:
            if tensor.type == int8 and not flatbuffer.is_constant(
                model, tensor
            ):
                _activation_to_int16(tensor)
        for op, name in zip(subgraph.operators, names, strict=True):
            if name == LSTM_OP:
                input_scale = float(
                    tensors[op.inputs[LSTM.input]].quantization.scale[0]
                )
                for w, b in zip(
                    LSTM.input_weights, LSTM.gate_biases, strict=True
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
                    if tensor.type == int8 and flatbuffer.is_constant(
                        model, tensor
                    ):
                        _constant_to_int16(model, tensor)
            elif name == "SOFTMAX":
                output = tensors[op.outputs[0]]
                output.quantization.scale = np.array([1 / 32768], np.float32)
                output.quantization.zeroPoint = np.array([0], np.int64)
        leftover = [
            t.name.decode()
            for t in tensors
            if t.type == int8 and not flatbuffer.is_constant(model, t)
        ]
        if leftover:  # pragma: no cover - guarded by the loop above
            raise ValueError(f"int8 activations left: {leftover}.")
    return _pack(model)


__all__ = [
    "INT16X8_OPS",
    "repair_integer_lstms",
    "requantize_int16x8",
    "write_lstm_variants",
]
