"""Runtimes for exported files: LiteRT runner, TFLite Micro, Arm Vela.

Everything runs for real: LiteRT and the TFLite Micro interpreter on the
files `to_tflite` writes, and Vela as a subprocess. Files that TFLite Micro
cannot run (dynamic range, TILE) are refused by every TFLite Micro entry
point and by `keras-lstm inspect`, and the reasons are checked against the
interpreter's own behaviour. Tolerances:
- TFLite Micro against LiteRT on the same int8 file: at most 1 output
  quantum (both run the reference integer LSTM; rounding in their
  rescaling may differ by one step);
- LiteRT against Keras: the bound `to_tflite` enforced, from its report.
"""

import pathlib

import keras
import numpy as np
import pytest
from seeding import seeded
from zoo import lossy_bound

import keras_lstm
from keras_lstm.export import (
    TFLiteMicroUnsupportedError,
    TFLMArena,
    VelaSummary,
    cli,
    load_tflite,
    run_tflite_micro,
    tflite_micro_blockers,
    tflm_arena_size,
    to_tflite,
    vela_summary,
)
from keras_lstm.export.runners import Backend, tflite_micro
from keras_lstm.export.runners.layout import LayoutKind, layout_of

T, F = 8, 3


def _quanta_apart(report, raw, dequantized):
    """Max distance in output quanta, compared as integers."""
    requantized = report.outputs[0].quantize(dequantized).astype(np.int32)
    return int(np.abs(raw.astype(np.int32) - requantized).max())


@pytest.fixture(scope="module")
def model_and_data():
    rng = np.random.default_rng(7)
    inputs = keras.Input((None, F))
    x = keras.layers.LSTM(8, return_sequences=True)(inputs)
    x = keras_lstm.LSTM(8)(x)
    model = seeded(keras.Model(inputs, keras.layers.Dense(3)(x)), rng)
    data = rng.standard_normal((64, T, F)).astype("float32")
    return model, data


@pytest.fixture(scope="module")
def int8_file(model_and_data, tmp_path_factory):
    model, data = model_and_data
    path = tmp_path_factory.mktemp("int8") / "model_int8.tflite"
    report = to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=data,
        timesteps=T,
    )
    return path, report


def test_runner_describes_the_file(int8_file):
    path, report = int8_file
    runner = load_tflite(path)
    assert runner.ops == report.ops
    assert runner.ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    assert runner.backend is Backend.LITERT
    assert layout_of(pathlib.Path(path).read_bytes()).kind is (
        LayoutKind.SEQUENCES
    )
    assert (runner.batch_size, runner.timesteps) == (1, T)
    assert not runner.streaming and not runner.external_state
    (info,) = runner.inputs
    assert (info.name, info.dtype, info.shape) == (
        "sequences",
        "int8",
        (1, T, F),
    )
    assert info.scale == report.inputs[0].scale > 0
    assert "litert" in repr(runner)


def test_runner_scales_batches_and_resets(int8_file, model_and_data, rng):
    path, report = int8_file
    model, _ = model_and_data
    runner = load_tflite(path)
    x = rng.standard_normal((5, T, F)).astype("float32")

    y = runner.predict(x)

    assert y.dtype == np.float32 and y.shape == (5, 3)
    expected = np.asarray(model(x))
    error = np.abs(y - expected).max()
    assert error <= lossy_bound(report, expected), f"max abs error {error}"
    # The same sequence gives the same output wherever it sits: the state
    # is reset before each one.
    np.testing.assert_array_equal(runner.predict(x[::-1]), y[::-1])
    np.testing.assert_array_equal(runner.predict(x[2:3]), y[2:3])


def test_runner_refuses_misuse(int8_file, tmp_path):
    path, _ = int8_file
    runner = load_tflite(path)
    with pytest.raises(ValueError, match="sequences of 8 steps"):
        runner.predict(np.zeros((1, T + 1, F), "float32"))
    with pytest.raises(ValueError, match="streaming=True"):
        runner.step(np.zeros((1, F), "float32"))
    with pytest.raises(FileNotFoundError):
        load_tflite(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="`backend`: 'gpu'. Expected one of"):
        load_tflite(path, backend="gpu")
    # A TFLite file that to_tflite did not write (no signature).
    import tflite_micro

    foreign = pathlib.Path(tflite_micro.__file__).parent / "python"
    foreign = foreign / "tflite_micro" / "sine_float.tflite"
    with pytest.raises(ValueError, match="to_tflite"):
        load_tflite(foreign)


def test_tflite_micro_within_one_quantum_of_litert(int8_file, rng):
    path, report = int8_file
    x = rng.standard_normal((4, T, F)).astype("float32")
    x[3] = x[0]  # Stateless: a repeated sequence gives the same output.

    micro = run_tflite_micro(path, x)
    litert = load_tflite(path).predict(x)

    quanta = _quanta_apart(report, micro.raw_outputs, litert)
    assert quanta <= 1, f"{quanta} quanta apart"
    assert micro.raw_outputs.dtype == np.int8
    np.testing.assert_array_equal(micro.raw_outputs[3], micro.raw_outputs[0])
    # The runner's in-process TFLM backend computes the same.
    in_process = load_tflite(path, backend="tflite_micro").predict(x)
    np.testing.assert_array_equal(in_process, micro.outputs)


def test_tflm_arena_size_is_the_smallest_that_runs(int8_file, rng):
    path, _ = int8_file
    x = rng.standard_normal((1, T, F)).astype("float32")

    arena = tflm_arena_size(path)

    assert isinstance(arena, TFLMArena)
    assert arena.arena_size % arena.alignment == 0
    assert arena.recorded_bytes and arena.arena_size >= arena.recorded_bytes
    fits = run_tflite_micro(path, x, arena_size=arena.arena_size)
    reference = run_tflite_micro(path, x)
    np.testing.assert_array_equal(fits.raw_outputs, reference.raw_outputs)
    with pytest.raises(RuntimeError, match="TFLite Micro failed"):
        run_tflite_micro(path, x, arena_size=arena.arena_size - arena.alignment)


@pytest.fixture(scope="module")
def int16x8_file(model_and_data, tmp_path_factory):
    model, data = model_and_data
    path = tmp_path_factory.mktemp("int16") / "model_int16x8.tflite"
    report = to_tflite(
        model,
        path,
        quantization="int16x8",
        representative_data=data,
        timesteps=T,
    )
    return path, report


def test_int16x8_runs_on_tflite_micro(int16x8_file, model_and_data, rng):
    path, report = int16x8_file
    model, _ = model_and_data
    assert report.input_dtypes == report.output_dtypes == ("int16",)
    assert report.inputs[0].zero_point == 0
    x = rng.standard_normal((3, T, F)).astype("float32")
    micro = run_tflite_micro(path, x)
    assert micro.raw_outputs.dtype == np.int16
    expected = np.asarray(model(x))
    error = np.abs(micro.outputs - expected).max()
    assert error <= lossy_bound(report, expected), f"max abs error {error}"
    assert load_tflite(path).backend is Backend.TFLITE_MICRO


@pytest.mark.parametrize("file", ["int8_file", "int16x8_file"])
def test_vela_puts_every_operator_on_the_npu(file, request):
    path, _ = request.getfixturevalue(file)

    summary = vela_summary(path, accelerator_config="ethos-u55-128")

    assert isinstance(summary, VelaSummary)
    assert summary.cpu_operators == 0, summary.log
    assert summary.npu_operators > 0
    assert summary.output_ops == ("CUSTOM:ethos-u",)
    assert summary.sram_used_kib > 0 and summary.flash_used_kib > 0
    assert summary.macs > 0 and summary.inference_time_s > 0


def test_streaming_int8_file_on_both_runtimes(model_and_data, tmp_path, rng):
    model, data = model_and_data
    path = tmp_path / "stream_int8.tflite"
    report = to_tflite(
        model,
        path,
        streaming=True,
        quantization="int8",
        representative_data=data,
    )
    x = rng.standard_normal((2, 12, F)).astype("float32")

    litert = load_tflite(path).predict(x)
    micro = run_tflite_micro(path, x)

    expected = np.asarray(model(x))
    error = np.abs(litert - expected).max()
    assert error <= lossy_bound(report, expected), f"max abs error {error}"
    quanta = _quanta_apart(report, micro.raw_outputs, litert)
    assert quanta <= 1, f"{quanta} quanta apart"


def test_tflite_micro_refuses_bad_arguments(
    int8_file, model_and_data, tmp_path
):
    path, _ = int8_file
    with pytest.raises(ValueError, match="arena_size"):
        run_tflite_micro(path, np.zeros((1, T, F), "float32"), arena_size=0)
    model, _ = model_and_data
    external = tmp_path / "external.tflite"
    to_tflite(model, external, streaming=True, external_state=True)
    with pytest.raises(
        ValueError, match=r"CMSIS-NN.*load_tflite\(path, backend='tflite_micro'"
    ):
        run_tflite_micro(external, np.zeros((1, 4, F), "float32"))


# ---------------------------------------------------------------------------
# Files TFLite Micro cannot run.

# 32 features x 32 units: every gate weight has 1,024 elements, the
# converter's threshold for quantizing it in dynamic-range mode.
WIDE = 32


@pytest.fixture(scope="module")
def wide_model():
    rng = np.random.default_rng(3)
    inputs = keras.Input((None, WIDE))
    x = keras_lstm.LSTM(WIDE)(inputs)
    return seeded(keras.Model(inputs, keras.layers.Dense(3)(x)), rng)


@pytest.fixture(scope="module")
def dynamic_file(wide_model, tmp_path_factory):
    """Hybrid LSTM: float32 activations, int8 weights."""
    path = tmp_path_factory.mktemp("dynamic") / "dynamic.tflite"
    to_tflite(wide_model, path, quantization="dynamic", timesteps=T)
    return path


@pytest.fixture(scope="module")
def float16_file(wide_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("float16") / "float16.tflite"
    to_tflite(wide_model, path, quantization="float16", timesteps=T)
    return path


@pytest.fixture(scope="module")
def hybrid_dense_file(tmp_path_factory):
    """Float LSTM (too small to quantize), hybrid FULLY_CONNECTED."""
    rng = np.random.default_rng(4)
    inputs = keras.Input((None, F))
    x = keras_lstm.LSTM(8)(inputs)
    x = keras.layers.Dense(128)(x)  # 8 x 128 = 1,024 weights: quantized.
    model = seeded(keras.Model(inputs, keras.layers.Dense(3)(x)), rng)
    path = tmp_path_factory.mktemp("dense") / "hybrid_dense.tflite"
    with pytest.warns(UserWarning, match="left the weights of 1 of 1"):
        to_tflite(model, path, quantization="dynamic", timesteps=T)
    return path


class _Tile(keras.layers.Layer):
    """`keras.ops.tile`, which converts to TILE (TFLM has no kernel).

    (`keras.layers.RepeatVector` converted to TILE too; the export now
    substitutes it, see `keras_lstm.export.substitutes`.)
    """

    def call(self, x):
        return keras.ops.tile(keras.ops.expand_dims(x, 1), (1, 4, 1))


@pytest.fixture(scope="module")
def tile_file(tmp_path_factory):
    """A file with TILE, for which TFLM has no kernel."""
    rng = np.random.default_rng(5)
    inputs = keras.Input((None, F))
    x = keras_lstm.LSTM(8)(inputs)
    x = _Tile()(x)
    x = keras_lstm.LSTM(8)(x)
    model = seeded(keras.Model(inputs, keras.layers.Dense(3)(x)), rng)
    path = tmp_path_factory.mktemp("tile") / "tile.tflite"
    report = to_tflite(model, path, timesteps=T)
    assert "TILE" in report.ops
    return path


# Each file, the op its blocker names, and words its reason must hold.
BLOCKED = {
    "dynamic_file": (
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        ["hybrid LSTM kernel", "NaN", "quantization='int8'"],
    ),
    "hybrid_dense_file": (
        "FULLY_CONNECTED",
        ["int8 weights", "hybrid", "quantization='int8'"],
    ),
    "float16_file": ("DEQUANTIZE", ["float16", "quantization='int8'"]),
    "tile_file": ("TILE", ["no TFLite Micro kernel", "RepeatVector"]),
}


@pytest.mark.parametrize("file", sorted(BLOCKED))
def test_blockers_name_the_op_and_what_to_do(file, request):
    path = request.getfixturevalue(file)
    op, words = BLOCKED[file]

    (reason,) = tflite_micro_blockers(path.read_bytes())

    assert reason.startswith(f"{op} (operator"), reason
    for word in words:
        assert word in reason, reason


@pytest.mark.parametrize("file", ["int8_file", "int16x8_file"])
def test_integer_files_have_no_blockers(file, request):
    path, _ = request.getfixturevalue(file)
    assert tflite_micro_blockers(path.read_bytes()) == ()


@pytest.mark.parametrize("file", ["hybrid_dense_file", "float16_file"])
def test_static_reasons_agree_with_the_interpreter(file, request):
    """The interpreter itself refuses to prepare these, at the same op."""
    path = request.getfixturevalue(file)
    op, _ = BLOCKED[file]
    ((name, reason),) = tflite_micro._probe(path.read_bytes())
    assert name == op and "prepare" in reason, reason


def test_tile_has_no_kernel_in_the_interpreter(tile_file):
    """Pins `_NO_KERNEL`: drop TILE from it when TFLite Micro gains one."""
    ((name, reason),) = tflite_micro._probe(tile_file.read_bytes())
    assert name == "TILE" and "no registration" in reason, reason


def test_hybrid_lstm_runs_on_tflite_micro_and_returns_nan(dynamic_file):
    """Why the hybrid LSTM is caught from the file: TFLM does not refuse it.

    Runs the TFLite Micro interpreter directly, in this process, with a
    generous arena (only a too-small one crashes its LSTM kernel).
    """
    from tflite_micro.python.tflite_micro import runtime

    assert tflite_micro._probe(dynamic_file.read_bytes()) == ()
    interpreter = runtime.Interpreter.from_file(
        str(dynamic_file), arena_size=16 * 1024 * 1024
    )
    x = np.random.default_rng(0).standard_normal((1, T, WIDE))
    interpreter.set_input(x.astype(np.float32), 0)
    interpreter.invoke()
    assert np.isnan(interpreter.get_output(0)).all()


@pytest.mark.parametrize("file", ["dynamic_file", "tile_file"])
def test_tflite_micro_entry_points_refuse_before_running(file, request):
    path = request.getfixturevalue(file)
    op, _ = BLOCKED[file]
    features = WIDE if file == "dynamic_file" else F
    x = np.zeros((1, T, features), "float32")
    match = f"TFLite Micro cannot run .*{op}"

    with pytest.raises(TFLiteMicroUnsupportedError, match=match) as error:
        run_tflite_micro(path, x)
    assert isinstance(error.value, ValueError)
    assert error.value.blockers == tflite_micro_blockers(path.read_bytes())
    with pytest.raises(TFLiteMicroUnsupportedError, match=match):
        tflm_arena_size(path)
    with pytest.raises(TFLiteMicroUnsupportedError, match=match):
        load_tflite(path, backend="tflite_micro")
    # LiteRT runs them.
    assert np.isfinite(load_tflite(path).predict(x)).all()


@pytest.mark.parametrize("file", ["dynamic_file", "tile_file"])
def test_inspect_says_why_tflite_micro_cannot_run_it(file, request, capsys):
    path = request.getfixturevalue(file)
    op, _ = BLOCKED[file]

    assert cli.main(["inspect", str(path), "--no-vela"]) == 0

    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("TFLite Micro")]
    assert line.startswith(f"TFLite Micro: not runnable: {op} (operator")
    assert "arena" not in line


def test_external_state_file_whose_output_is_its_hidden_state(rng, tmp_path):
    # The last layer is the LSTM, so `output` and `h_0_out` are one tensor,
    # listed twice among the subgraph's outputs: the layout gives each name
    # its own position, on LiteRT and on TFLite Micro.
    inputs = keras.Input((None, 3))
    model = seeded(keras.Model(inputs, keras_lstm.LSTM(4)(inputs)), rng)
    path = tmp_path / "external.tflite"
    report = to_tflite(model, path, streaming=True, external_state=True)
    assert {t.name for t in report.outputs} == {"output", "h_0_out", "c_0_out"}
    x = rng.standard_normal((1, 7, 3)).astype("float32")
    expected = np.asarray(model(x))
    assert layout_of(path.read_bytes()).kind is LayoutKind.EXTERNAL_STATE
    # The backend by its enum member or by its string value.
    for backend in (Backend.LITERT, "tflite_micro"):
        runner = load_tflite(path, backend=backend)
        assert runner.backend is Backend.parse(backend)
        outputs = [runner.step(x[:, t]) for t in range(7)]
        error = np.abs(outputs[-1] - expected).max()
        assert error <= 1e-5, f"{backend}: max abs error {error}"
