"""The flatbuffer reader (keras_lstm.export.flatbuffer).

References come from LiteRT's interpreter (op names, input and output
details) and from the fused op's documented operand types and shapes
(TFLite's 8x8_16 LSTM spec: int8 weights, int32 biases, int8 hidden state,
int16 cell state), never from this module's own earlier output. Features
and units differ, so a shifted operand position shows in the shapes.
"""

import keras
import numpy as np
import pytest
from seeding import seeded

import keras_lstm
from keras_lstm.export import flatbuffer, to_tflite
from keras_lstm.export.flatbuffer import LSTM, LSTM_OP

T, F, UNITS = 4, 32, 48


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Float, float16 and int8 files of one model, by quantization."""
    rng = np.random.default_rng(11)
    inputs = keras.Input((None, F))
    x = keras_lstm.LSTM(UNITS)(inputs)
    model = seeded(keras.Model(inputs, keras.layers.Dense(3)(x)), rng)
    data = rng.standard_normal((16, T, F)).astype("float32")
    folder = tmp_path_factory.mktemp("files")
    result = {}
    for quantization in ("none", "float16", "int8"):
        path = folder / f"{quantization}.tflite"
        to_tflite(
            model,
            path,
            quantization=quantization,
            representative_data=data,
            timesteps=T,
        )
        result[quantization] = path.read_bytes()
    return result


def _lstm(content):
    (op,) = [op for op in flatbuffer.operators(content) if op.name == LSTM_OP]
    return op


@pytest.mark.parametrize("quantization", ["none", "float16", "int8"])
def test_op_names_and_io_agree_with_litert(files, quantization):
    from ai_edge_litert.interpreter import Interpreter

    content = files[quantization]
    interpreter = Interpreter(model_content=content)

    ops = flatbuffer.op_names(content)
    assert ops == tuple(d["op_name"] for d in interpreter._get_ops_details())
    assert flatbuffer.subgraph_count(content) == 1
    for ours, litert in (
        (flatbuffer.graph_inputs(content), interpreter.get_input_details()),
        (flatbuffer.graph_outputs(content), interpreter.get_output_details()),
    ):
        assert [t.name for t in ours] == [d["name"] for d in litert]
        assert [t.shape for t in ours] == [tuple(d["shape"]) for d in litert]
        assert [t.type.lower() for t in ours] == [
            np.dtype(d["dtype"]).name for d in litert
        ]
        assert not any(t.constant for t in ours)


def test_lstm_operand_table_on_an_int8_file(files):
    op = _lstm(files["int8"])

    assert len(op.inputs) == 24
    data = op.inputs[LSTM.input]
    assert (data.type, data.shape, data.constant) == ("INT8", (1, T, F), False)
    for k in LSTM.input_weights:
        t = op.inputs[k]
        assert (t.type, t.shape, t.constant) == ("INT8", (UNITS, F), True)
    for k in LSTM.recurrent_weights:
        t = op.inputs[k]
        assert (t.type, t.shape, t.constant) == ("INT8", (UNITS, UNITS), True)
    for k in LSTM.gate_biases:
        t = op.inputs[k]
        assert (t.type, t.shape, t.constant) == ("INT32", (UNITS,), True)
    hidden, cell = op.inputs[LSTM.hidden_state], op.inputs[LSTM.cell_state]
    assert (hidden.type, hidden.shape, hidden.constant) == (
        "INT8",
        (1, UNITS),
        False,
    )
    assert (cell.type, cell.shape, cell.constant) == (
        "INT16",
        (1, UNITS),
        False,
    )
    # No peephole, projection or layer norm: those operands are omitted.
    omitted = set(range(24)) - {LSTM.input, LSTM.hidden_state, LSTM.cell_state}
    omitted -= set(LSTM.weights) | set(LSTM.gate_biases)
    assert all(op.inputs[k] is None for k in omitted)


def test_lstm_operand_table_on_a_float_file(files):
    op = _lstm(files["none"])

    for k in LSTM.weights + LSTM.gate_biases:
        assert op.inputs[k].type == "FLOAT32" and op.inputs[k].constant
    for k in (LSTM.hidden_state, LSTM.cell_state):
        assert op.inputs[k].type == "FLOAT32" and not op.inputs[k].constant


def test_float_weight_lstm_ops(files):
    (index,) = flatbuffer.float_weight_lstm_ops(files["none"])
    assert flatbuffer.op_names(files["none"])[index] == LSTM_OP
    # int8 weights, and float16 weights behind DEQUANTIZE, are not float32.
    assert flatbuffer.float_weight_lstm_ops(files["int8"]) == ()
    assert "DEQUANTIZE" in flatbuffer.op_names(files["float16"])
    assert flatbuffer.float_weight_lstm_ops(files["float16"]) == ()


def test_object_api_names_match(files):
    content = files["int8"]
    model = flatbuffer.unpack(content)
    (subgraph,) = model.subgraphs
    assert tuple(flatbuffer.object_op_names(model, subgraph)) == (
        flatbuffer.op_names(content)
    )
    # The integer op carries five intermediates; the last is the hidden
    # scale the repair aligns with the output.
    (op,) = [
        op
        for op, name in zip(
            subgraph.operators,
            flatbuffer.object_op_names(model, subgraph),
            strict=True,
        )
        if name == LSTM_OP
    ]
    assert len(op.intermediates) == LSTM.hidden_intermediate + 1
