"""Flatbuffer rewrites (keras_lstm.export.rewrite).

The integer-LSTM repair is checked on an int8 file with each converter
quirk put back in (through the object API): the repair must restore what
TFLite's kernels need (cell-state scale 2^-15..2^-9; hidden state, its
intermediate and the output on one scale). The int16x8 rewrite is checked
against the int16x8 LSTM spec TFLite Micro's kernel runs (int16
activations, zero point 0; int8 weights; int64 biases; int16 cell state).
Emptying unused buffers is checked on a buffer put back in, and by the
reproducibility it buys: two exports of one model are the same bytes.
That the rewritten files compute the model is checked where they run:
tests/test_runners.py (TFLite Micro) and tests/test_tflite.py (LiteRT).
"""

import keras
import numpy as np
import pytest
from seeding import seeded

import keras_lstm
from keras_lstm.export import (
    _compat,
    flatbuffer,
    load_tflite,
    rewrite,
    to_tflite,
)
from keras_lstm.export.flatbuffer import LSTM, LSTM_OP

T, F = 6, 3


@pytest.fixture(scope="module")
def int8_model():
    rng = np.random.default_rng(21)
    inputs = keras.Input((None, F))
    x = keras_lstm.LSTM(8)(inputs)
    model = seeded(keras.Model(inputs, keras.layers.Dense(3)(x)), rng)
    return model, rng.standard_normal((16, T, F)).astype("float32")


def _int8_export(model, data, path):
    to_tflite(
        model, path, quantization="int8", representative_data=data, timesteps=T
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def int8_content(int8_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("int8") / "int8.tflite"
    return _int8_export(*int8_model, path)


def _edit(content, change):
    """`change(model, subgraph, lstm_op)` applied to an unpacked copy."""
    model = flatbuffer.unpack(content)
    subgraph = model.subgraphs[0]
    names = flatbuffer.object_op_names(model, subgraph)
    op = subgraph.operators[names.index(LSTM_OP)]
    change(model, subgraph, op)
    return rewrite._pack(model)


def _lstm_tensors(content):
    model = flatbuffer.unpack(content)
    subgraph = model.subgraphs[0]
    names = flatbuffer.object_op_names(model, subgraph)
    op = subgraph.operators[names.index(LSTM_OP)]
    tensors = subgraph.tensors
    return (
        tensors[op.outputs[0]],
        tensors[op.inputs[LSTM.hidden_state]],
        tensors[op.intermediates[LSTM.hidden_intermediate]],
        tensors[op.inputs[LSTM.cell_state]],
    )


def _cell_scale(scale):
    def change(model, subgraph, op):
        cell = subgraph.tensors[op.inputs[LSTM.cell_state]]
        cell.quantization.scale = np.array([scale], np.float32)

    return change


def test_repair_leaves_a_repaired_file_alone(int8_content):
    content, repairs = rewrite.repair_integer_lstms(int8_content)
    assert repairs == [] and content == int8_content


def test_repair_widens_a_cell_scale_litert_saturates_on(int8_content):
    broken = _edit(int8_content, _cell_scale(2.0**-16))

    content, repairs = rewrite.repair_integer_lstms(broken)

    assert (
        len(repairs) == 1 and "cell-state scale 2^-16 -> 2^-15" in (repairs[0])
    )
    *_, cell = _lstm_tensors(content)
    assert list(cell.quantization.scale) == [2.0**-15]


def test_repair_refuses_a_cell_past_six_integer_bits(int8_content):
    broken = _edit(int8_content, _cell_scale(2.0**-8))
    with pytest.raises(ValueError, match="at most 6 integer bits"):
        rewrite.repair_integer_lstms(broken)


def test_repair_puts_hidden_state_on_the_output_scale(int8_content):
    def change(model, subgraph, op):
        for index in (
            op.inputs[LSTM.hidden_state],
            op.intermediates[LSTM.hidden_intermediate],
        ):
            q = subgraph.tensors[index].quantization
            q.scale = np.asarray(q.scale, np.float32) * 2
            q.zeroPoint = np.asarray(q.zeroPoint, np.int64) + 1

    content, repairs = rewrite.repair_integer_lstms(_edit(int8_content, change))

    assert len(repairs) == 2, repairs
    output, hidden, intermediate, _ = _lstm_tensors(content)
    for tensor in (hidden, intermediate):
        np.testing.assert_array_equal(
            tensor.quantization.scale, output.quantization.scale
        )
        np.testing.assert_array_equal(
            tensor.quantization.zeroPoint, output.quantization.zeroPoint
        )


def test_int16x8_follows_the_int16_lstm_spec(int8_content):
    content = rewrite.requantize_int16x8(int8_content)

    for tensor in flatbuffer.graph_inputs(content) + flatbuffer.graph_outputs(
        content
    ):
        assert tensor.type == "INT16", tensor
    ops = flatbuffer.operators(content)
    (lstm,) = [op for op in ops if op.name == LSTM_OP]
    assert {lstm.inputs[k].type for k in LSTM.weights} == {"INT8"}
    assert {lstm.inputs[k].type for k in LSTM.gate_biases} == {"INT64"}
    assert lstm.inputs[LSTM.hidden_state].type == "INT16"
    assert lstm.inputs[LSTM.cell_state].type == "INT16"
    (dense,) = [op for op in ops if op.name == "FULLY_CONNECTED"]
    assert [t.type for t in dense.inputs] == ["INT16", "INT8", "INT64"]
    # Symmetric int16 everywhere: every activation's zero point is 0.
    model = flatbuffer.unpack(content)
    for tensor in model.subgraphs[0].tensors:
        if tensor.type == _compat.tflite_schema().TensorType.INT16:
            assert list(tensor.quantization.zeroPoint) == [0], tensor.name


def test_int16x8_refuses_ops_it_has_no_rules_for(int8_content):
    schema = _compat.tflite_schema()

    def change(model, subgraph, op):
        # Relabel the Dense layer's op: the rewrite must refuse before it
        # touches anything.
        names = flatbuffer.object_op_names(model, subgraph)
        dense = subgraph.operators[names.index("FULLY_CONNECTED")]
        code = model.operatorCodes[dense.opcodeIndex]
        code.builtinCode = schema.BuiltinOperator.TILE
        code.deprecatedBuiltinCode = schema.BuiltinOperator.TILE

    with pytest.raises(ValueError, match=r"\['TILE'\].*quantization='int8'"):
        rewrite.requantize_int16x8(_edit(int8_content, change))


def _unused_buffers_with_data(content):
    model = flatbuffer.unpack(content)
    used = {t.buffer for sg in model.subgraphs for t in sg.tensors}
    used.update(entry.buffer for entry in model.metadata or [])
    return [
        index
        for index, buffer in enumerate(model.buffers)
        if index not in used and buffer.data is not None and len(buffer.data)
    ]


def test_exporting_one_model_twice_gives_the_same_bytes(
    int8_model, int8_content, tmp_path
):
    # The converter's leftover state buffers changed from one conversion
    # to the next (measured: int8 h all 0 or all 127, int16 c 2048 or 6144).
    assert _unused_buffers_with_data(int8_content) == []
    assert _int8_export(*int8_model, tmp_path / "again.tflite") == int8_content


def test_drop_unused_buffers_empties_only_unused_ones(int8_content):
    schema = _compat.tflite_schema()
    model = flatbuffer.unpack(int8_content)
    orphan = schema.BufferT()
    orphan.data = [7] * 64
    model.buffers.append(orphan)
    constants = {
        index: list(buffer.data)
        for index, buffer in enumerate(model.buffers)
        if buffer.data is not None and len(buffer.data)
    }
    content = rewrite._pack(model)
    assert _unused_buffers_with_data(content) == [len(model.buffers) - 1]

    dropped = rewrite.drop_unused_buffers(content)

    assert _unused_buffers_with_data(dropped) == []
    after = flatbuffer.unpack(dropped)
    assert len(after.buffers) == len(model.buffers)  # no index moved
    for index, data in constants.items():
        if index != len(model.buffers) - 1:
            assert list(after.buffers[index].data) == data, index
    assert len(dropped) < len(content)
    assert rewrite.drop_unused_buffers(dropped) is dropped


def _cell_past_ten_model():
    """A plain LSTM whose cell state climbs to 20, then falls to 5.

    Input, forget and output gates saturated open (biases 30: σ = 1 in
    float32), the candidate `tanh(30 x)` = ±1: the cell adds ±1 per step,
    `x` = +1 for 20 steps, then −1 for 15. Keras's `c` ends at 5,
    `h = tanh(5)`; clipped to ±10 it would end at −5, `h` off by 2. Unit 2
    is unit 1 mirrored, for the −10 side.
    """
    units = 2
    model = keras.Sequential(
        [
            keras.Input((35, 1)),
            keras_lstm.LSTM(units, return_sequences=True),
        ]
    )
    kernel = np.zeros((1, 4 * units), "float32")
    kernel[0, 2 * units : 3 * units] = (30.0, -30.0)  # candidate
    bias = np.full(4 * units, 30.0, "float32")
    bias[2 * units : 3 * units] = 0.0
    model.layers[0].set_weights(
        [kernel, np.zeros((units, 4 * units), "float32"), bias]
    )
    x = np.concatenate([np.ones((2, 20, 1)), -np.ones((2, 15, 1))], axis=1)
    return model, x.astype("float32")


def test_plain_lstm_cell_is_not_clipped(tmp_path):
    # The converter writes cell_clip 10 into every fused op (lstm_utils.cc);
    # Keras never clips, so the file must carry 0 (no clip).
    model, x = _cell_past_ten_model()
    path = tmp_path / "model.tflite"

    report = to_tflite(model, path, check_data=x)

    assert flatbuffer.lstm_options(path.read_bytes()) == (
        {"cell_clip": 0.0, "proj_clip": 0.0, "time_major": False},
    )
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        expected[:, -1], [[np.tanh(5.0), -np.tanh(5.0)]] * 2, atol=1e-5
    )
    # The export's float bound: 1e-4 * max(1, |y|), and |y| <= 1.
    assert report.max_abs_error <= 1e-4, report.max_abs_error
    error = float(np.abs(load_tflite(path).predict(x) - expected).max())
    assert error <= 1e-4, f"max abs error {error}"


def test_integer_lstm_is_not_clipped(int8_content):
    # Integer kernels read 0 as "no clip" too (quantized_cell_clip 0,
    # rewrite.py "Clips"); int16x8 keeps the int8 file's options.
    no_clip = ({"cell_clip": 0.0, "proj_clip": 0.0, "time_major": False},)
    assert flatbuffer.lstm_options(int8_content) == no_clip
    int16 = rewrite.requantize_int16x8(int8_content)
    assert flatbuffer.lstm_options(int16) == no_clip
