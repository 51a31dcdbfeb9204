"""`to_tflite`: fused, builtin-only files that match Keras.

References are the original Keras models (with `keras.layers.LSTM` where
the variant uses it) with seeded weights. Tolerances:
- float32 files: max abs error <= 1e-5 against Keras (the issue's bound).
  The fused kernel and Keras do the same float32 arithmetic in another
  order; measured errors are ~1e-7.
- quantized files: judged by `to_tflite` with the criterion that fits
  their outputs (`verification`), and re-checked on fresh data within
  `zoo.lossy_bound`, the max-abs bound `to_tflite` used to enforce.
- JapaneseVowels: int8 accuracy within 1 point of the float model's.
"""

import os

import keras
import numpy as np
import pytest
from seeding import seeded
from zoo import lossy_bound

import keras_lstm
from keras_lstm.export import (
    ExportError,
    Quantization,
    TFLiteReport,
    inputs,
    load_tflite,
    run_tflite_micro,
    to_tflite,
    verification,
)

FLOAT_ATOL = 1e-5
T, F = 6, 3
FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"
FORBIDDEN = {"WHILE", "VAR_HANDLE", "READ_VARIABLE", "CALL_ONCE"}


def _functional(body, time=T):
    inputs = keras.Input((time, F))
    return keras.Model(inputs, body(inputs))


def _sequential_last(x):
    return keras.layers.Dense(2)(keras_lstm.LSTM(5)(x))


def _stacked_keras(x):
    x = keras.layers.LSTM(4, return_sequences=True)(x)
    x = keras.layers.LSTM(5, return_sequences=True)(x)
    return keras.layers.Dense(2)(x)


def _rnn_cells_backwards(x):
    x = keras.layers.RNN(
        keras_lstm.LSTMCell(4), return_sequences=True, go_backwards=True
    )(x)
    return keras.layers.RNN(keras.layers.LSTMCell(3), go_backwards=True)(x)


def _bidirectional_concat(x):
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(
        x
    )
    return keras.layers.Bidirectional(keras_lstm.LSTM(3))(x)


def _bidirectional_merge_modes(x):
    x = keras.layers.Bidirectional(
        keras_lstm.LSTM(4, return_sequences=True), merge_mode="sum"
    )(x)
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True), merge_mode="mul"
    )(x)
    return keras.layers.Bidirectional(keras_lstm.LSTM(3), merge_mode="ave")(x)


def _bidirectional_no_merge(x):
    forward, backward = keras.layers.Bidirectional(
        keras_lstm.LSTM(4), merge_mode=None
    )(x)
    return keras.layers.Dense(2)(
        keras.layers.Concatenate()([forward, backward])
    )


def _normalization_dropout(x):
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(3).normal(2.0, 3.0, (64, T, F)))
    x = keras_lstm.LSTM(5, return_sequences=True, dropout=0.2)(norm(x))
    return keras.layers.Dense(2)(keras.layers.Dropout(0.5)(x))


# name: (model body, input time length, LSTM ops expected, export kwargs)
VARIANTS = {
    "sequential_last_output": (None, T, 1, {}),
    "stacked_keras_layers_lstm": (_stacked_keras, T, 2, {}),
    "rnn_cells_go_backwards": (_rnn_cells_backwards, T, 2, {}),
    "bidirectional_concat": (_bidirectional_concat, T, 4, {}),
    "bidirectional_sum_mul_ave": (_bidirectional_merge_modes, T, 6, {}),
    "bidirectional_no_merge": (_bidirectional_no_merge, T, 2, {}),
    "time_none_normalization_batch_3": (
        _normalization_dropout,
        None,
        1,
        {"timesteps": T, "batch_size": 3},
    ),
}


def _variant(name, rng):
    body, time, fused, kwargs = VARIANTS[name]
    if body is None:
        model = keras.Sequential(
            [keras.Input((T, F)), keras_lstm.LSTM(5), keras.layers.Dense(2)]
        )
    else:
        model = _functional(body, time)
    return seeded(model, rng), fused, kwargs


def _assert_builtin_fused(report, fused):
    ops = report.ops
    assert ops.count(FUSED) == fused == report.fused_lstm_ops, ops
    assert not FORBIDDEN & set(ops), ops
    assert not [op for op in ops if op.startswith("CUSTOM")], ops


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_float_file_matches_keras(name, rng, tmp_path):
    model, fused, kwargs = _variant(name, rng)
    path = tmp_path / "model.tflite"

    report = to_tflite(model, path, **kwargs)

    assert isinstance(report, TFLiteReport)
    assert report.path == str(path) and path.exists()
    assert report.size_bytes == path.stat().st_size
    _assert_builtin_fused(report, fused)
    batch = kwargs.get("batch_size", 1)
    assert report.inputs[0].shape == (batch, T, F)
    assert (
        report.input_dtypes == ("float32",) and report.inputs[0].scale is None
    )
    assert report.output_dtypes == ("float32",)
    assert report.max_abs_error <= FLOAT_ATOL, report
    # No data given: the check ran on generated sequences, and the float
    # bound is 1e-4 scaled by their largest |output|.
    assert report.check_set.startswith("generated")
    check, _ = inputs.generated(
        inputs.describe(model), batch_size=batch, timesteps=T
    )
    magnitude = max(1.0, float(np.abs(model(check, training=False)).max()))
    assert report.tolerance == pytest.approx(1e-4 * magnitude, rel=1e-6)
    assert report.check_sequences == check.shape[0] >= batch

    # Fresh data, a count that is not a multiple of the batch size.
    x = rng.standard_normal((7, T, F)).astype("float32")
    runner = load_tflite(path)
    actual = runner.predict(x)
    expected = np.asarray(model(x, training=False))
    error = np.abs(actual - expected).max()
    assert error <= FLOAT_ATOL, f"max abs error {error}"
    # Stateless: the runner resets the op's variable tensors every time.
    np.testing.assert_array_equal(runner.predict(x), actual)


@pytest.fixture(scope="module")
def classifier():
    """32 units: the fused op splits weights per gate, and 32 x 32 reaches
    the converter's 1024-element threshold for weight quantization, so
    "dynamic" quantizes for real."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    inputs = keras.Input((T, F))
    x = keras.layers.LSTM(32, return_sequences=True)(inputs)
    x = keras_lstm.LSTM(32)(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    data = rng.standard_normal((64, T, F)).astype("float32")
    return seeded(model, rng), data


@pytest.mark.parametrize(
    "quantization, io_dtype",
    [
        ("float16", "float32"),
        ("dynamic", "float32"),
        (Quantization.INT8, "int8"),
        ("int16x8", "int16"),
    ],
)
def test_quantized_file_stays_within_its_bound(
    quantization, io_dtype, classifier, tmp_path, rng
):
    model, data = classifier
    path = tmp_path / "model.tflite"

    report = to_tflite(
        model, path, quantization=quantization, representative_data=data
    )

    assert report.quantization is Quantization(quantization)
    _assert_builtin_fused(report, 2)
    assert report.input_dtypes == report.output_dtypes == (io_dtype,)
    if io_dtype != "float32":
        assert report.inputs[0].scale > 0 and report.outputs[0].scale > 0
    # Judged by the criterion that fits linear outputs, and the lowering
    # proved on the float32 twin.
    checked = report.verification
    assert report.tolerance is None and "spread" in checked.criteria[0]
    assert checked.lowering_error <= checked.lowering_tolerance
    x = rng.standard_normal((5, T, F)).astype("float32")
    runner = load_tflite(path)
    expected = np.asarray(model(x))
    error = np.abs(runner.predict(x) - expected).max()
    bound = lossy_bound(report, expected)
    assert error <= bound, f"max abs error {error} > {bound}, {report}"


def test_progress_counts_calibration_batches(classifier, tmp_path):
    model, data = classifier
    calls = []
    to_tflite(
        model,
        tmp_path / "q.tflite",
        quantization="int8",
        representative_data=data[:24],
        check_data=data[24:28],
        batch_size=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    # 24 sequences in batches of 4: the converter draws 6 batches.
    assert calls == [(i, 6) for i in range(1, 7)], calls


def test_progress_counts_every_calibration_sequence_once(classifier, tmp_path):
    model, data = classifier
    calls = []
    report = to_tflite(
        model,
        tmp_path / "q.tflite",
        quantization="int8",
        representative_data=data[:30],
        batch_size=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    # 6 of 30 held out; 24 calibrate, 6 batches of 4 (none dropped).
    assert report.calibration_sequences == 24, report
    assert calls == [(i, 6) for i in range(1, 7)], calls


def test_progress_must_be_callable(classifier, tmp_path):
    model, _ = classifier
    with pytest.raises(TypeError, match="argument `progress`"):
        to_tflite(model, tmp_path / "x.tflite", progress="yes")
    assert not (tmp_path / "x.tflite").exists()


def test_dynamic_range_file_is_smaller(classifier, tmp_path):
    model, _ = classifier
    plain = to_tflite(model, tmp_path / "float.tflite")
    dynamic = to_tflite(model, tmp_path / "dyn.tflite", quantization="dynamic")
    assert dynamic.size_bytes < plain.size_bytes, (dynamic, plain)


def test_dynamic_range_quantizing_nothing_is_not_silent(tmp_path, rng):
    # 4 units: every per-gate weight is under the converter's 1,024-element
    # threshold, so the LSTM stays float32 under "dynamic".
    inputs = keras.Input((T, F))
    model = keras.Model(inputs, keras_lstm.LSTM(4)(inputs))
    with pytest.warns(UserWarning, match="left the weights of 1 of 1 fused"):
        report = to_tflite(
            seeded(model, rng), tmp_path / "t.tflite", quantization="dynamic"
        )
    assert report.max_abs_error <= FLOAT_ATOL, report


def test_dynamic_range_warning_counts_the_float_lstms(classifier, tmp_path):
    # The first LSTM reads F=3 features; the second, 32 x 32 per gate.
    model, _ = classifier
    with pytest.warns(UserWarning, match="left the weights of 1 of 2 fused"):
        to_tflite(model, tmp_path / "dyn.tflite", quantization="dynamic")


def test_dynamic_range_that_quantizes_every_lstm_does_not_warn(tmp_path, rng):
    import warnings

    inputs = keras.Input((T, 32))
    model = keras.Model(inputs, keras_lstm.LSTM(32)(inputs))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*left the weights.*")
        report = to_tflite(
            seeded(model, rng), tmp_path / "q.tflite", quantization="dynamic"
        )
    assert report.verification.losses[0].relative_rms <= 0.1, report


def _streaming_model(rng, time):
    inputs = keras.Input((time, F))
    x = keras.layers.LSTM(4, return_sequences=True)(inputs)
    x = keras_lstm.LSTM(5, return_sequences=True)(x)
    return seeded(keras.Model(inputs, keras.layers.Dense(2)(x)), rng)


@pytest.mark.parametrize(
    "time, external_state", [(None, False), (T, False), (None, True)]
)
def test_streaming_steps_reproduce_the_whole_sequence(
    time, external_state, rng, tmp_path
):
    model = _streaming_model(rng, time)
    path = tmp_path / "stream.tflite"

    report = to_tflite(
        model, path, streaming=True, external_state=external_state
    )

    assert report.streaming and report.timesteps == 1
    shapes = {t.name: t.shape for t in report.inputs}
    assert shapes["frame"] == (1, 1, F)
    if external_state:
        assert FUSED not in report.ops
        assert {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD"} <= set(
            report.ops
        )
        assert shapes == {
            "frame": (1, 1, F),
            "h_0": (1, 4),
            "c_0": (1, 4),
            "h_1": (1, 5),
            "c_1": (1, 5),
        }
    else:
        _assert_builtin_fused(report, 2)
    steps = time or 9
    x = rng.standard_normal((1, steps, F)).astype("float32")
    runner = load_tflite(path)
    for _ in range(2):  # reset() starts a new stream
        runner.reset()
        outputs = [runner.step(x[:, t]) for t in range(steps)]
        steps_out = np.concatenate(outputs, axis=1)
        error = np.abs(steps_out - np.asarray(model(x))).max()
        assert error <= FLOAT_ATOL, f"max abs error {error}"


def test_step_takes_a_features_frame_when_the_batch_is_1(rng, tmp_path):
    model = _streaming_model(rng, None)
    path = tmp_path / "stream.tflite"
    to_tflite(model, path, streaming=True)
    x = rng.standard_normal((1, 5, F)).astype("float32")
    runner = load_tflite(path)
    steps = [runner.step(x[0, t]) for t in range(5)]  # (features,) frames
    error = np.abs(np.concatenate(steps, axis=1) - np.asarray(model(x))).max()
    assert error <= FLOAT_ATOL, f"max abs error {error}"

    to_tflite(model, tmp_path / "b2.tflite", streaming=True, batch_size=2)
    batch_2 = load_tflite(tmp_path / "b2.tflite")
    with pytest.raises(
        ValueError, match=r"\(2, 3\) or \(2, 1, 3\).*got \(3,\)"
    ):
        batch_2.step(x[0, 0])


def test_streaming_last_output_model(rng, tmp_path):
    inputs = keras.Input((None, F))
    outputs = keras.layers.Dense(2)(keras_lstm.LSTM(5)(inputs))
    model = seeded(keras.Model(inputs, outputs), rng)
    path = tmp_path / "stream.tflite"
    to_tflite(model, path, streaming=True, batch_size=2)
    x = rng.standard_normal((5, 7, F)).astype("float32")
    error = np.abs(load_tflite(path).predict(x) - np.asarray(model(x))).max()
    assert error <= FLOAT_ATOL, f"max abs error {error}"


def _model_with(layer, time=T, batch=None):
    inputs = keras.Input((time, F), batch_size=batch)
    outputs = layer(inputs)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "make_model, kwargs, error, match",
    [
        (
            lambda: _model_with(keras_lstm.LSTM(4), None),
            {},
            ValueError,
            "timesteps=N",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"timesteps": 5},
            ValueError,
            "fixed length of 6",
        ),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((T, F)),
                    keras.layers.Masking(),
                    keras_lstm.LSTM(4, return_sequences=True),
                ]
            ),
            {},
            ValueError,
            "masked .* keeps the time axis",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4, activation="relu")),
            {},
            ValueError,
            "activation='tanh'",
        ),
        (
            lambda: _model_with(keras.layers.Bidirectional(keras_lstm.LSTM(4))),
            {"streaming": True},
            ValueError,
            "Bidirectional",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4, go_backwards=True)),
            {"streaming": True},
            ValueError,
            "go_backwards",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"quantization": "int4"},
            ValueError,
            "'int16x8'",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"quantization": "int8"},
            ValueError,
            "representative_data",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"representative_data": np.zeros((4, T, F + 1))},
            ValueError,
            r"\(num_sequences, timesteps, 3\)",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"batch_size": 0},
            ValueError,
            "batch_size",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"batch_size": True},
            TypeError,
            "batch_size",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"external_state": True},
            ValueError,
            "needs streaming=True",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"streaming": "yes"},
            TypeError,
            "streaming",
        ),
        (
            lambda: _model_with(keras_lstm.LSTM(4)),
            {"tolerance": -1.0},
            ValueError,
            "tolerance",
        ),
        (lambda: "model", {}, TypeError, "keras.Model"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_refusals_name_the_problem_and_write_nothing(
    make_model, kwargs, error, match, tmp_path
):
    path = tmp_path / "model.tflite"
    with pytest.raises(error, match=match):
        to_tflite(make_model(), path, **kwargs)
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_refused(tmp_path):
    model = _model_with(keras_lstm.LSTM(4))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_tflite(model, tmp_path / "missing" / "model.tflite")


def test_failed_export_leaves_nothing_and_keeps_an_existing_file(rng, tmp_path):
    model, _, _ = _variant("sequential_last_output", rng)
    path = tmp_path / "model.tflite"
    # A bound no float file meets: the failure comes after conversion, with
    # the file already written to its temporary name.
    with pytest.raises(ExportError, match="past the tolerance 1e-12"):
        to_tflite(model, path, tolerance=1e-12)
    assert os.listdir(tmp_path) == []

    path.write_bytes(b"previous export")
    with pytest.raises(ExportError):
        to_tflite(model, path, tolerance=1e-12)
    assert path.read_bytes() == b"previous export"
    assert os.listdir(tmp_path) == ["model.tflite"]

    report = to_tflite(model, path)
    assert path.read_bytes()[4:8] == b"TFL3"
    assert report.size_bytes == path.stat().st_size
    assert os.listdir(tmp_path) == ["model.tflite"]


def _japanese_vowels(split, mean=None, length=29):
    from aeon.datasets import load_classification

    sequences, labels = load_classification("JapaneseVowels", split=split)
    if mean is None:
        mean = np.concatenate(sequences, axis=1).mean(axis=1)
    # Pre-pad with the channel means (0 after Normalization) so that the
    # last steps, which the LSTM's last output sees, are real data.
    x = np.tile(mean, (len(sequences), length, 1)).astype("float32")
    for i, sequence in enumerate(sequences):
        x[i, length - sequence.shape[1] :] = sequence.T
    return x, labels.astype(int) - 1, mean


@pytest.mark.slow
def test_int8_japanese_vowels_accuracy_within_one_point(tmp_path):
    x_train, y_train, mean = _japanese_vowels("train")
    x_test, y_test, _ = _japanese_vowels("test", mean)
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(x_train.reshape(-1, x_train.shape[-1]))
    model = keras.Sequential(
        [
            keras.Input(x_train.shape[1:]),
            norm,
            keras_lstm.LSTM(16),
            keras.layers.Dense(9, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=15, batch_size=16, verbose=0)

    def accuracy(probabilities):
        return 100 * float(np.mean(probabilities.argmax(-1) == y_test))

    float_accuracy = accuracy(model.predict(x_test, verbose=0))
    assert float_accuracy >= 85, float_accuracy  # the task is learnt
    report = to_tflite(
        model,
        tmp_path / "vowels_int8.tflite",
        quantization="int8",
        representative_data=x_train,
        check_data=x_test,
    )
    assert report.ops.count(FUSED) == 1 and report.input_dtypes == ("int8",)
    assert report.calibration_sequences == len(x_train)
    litert = accuracy(load_tflite(report.path).predict(x_test))
    micro = accuracy(run_tflite_micro(report.path, x_test).outputs)
    assert abs(litert - float_accuracy) <= 1.0, (float_accuracy, litert)
    assert abs(micro - float_accuracy) <= 1.0, (float_accuracy, micro)


def test_report_says_whether_tflite_micro_can_run_the_file(
    classifier, tmp_path
):
    model, data = classifier
    dynamic = to_tflite(model, tmp_path / "d.tflite", quantization="dynamic")
    assert not dynamic.tflite_micro_ready
    assert any(
        "hybrid LSTM" in reason for reason in dynamic.tflite_micro_blockers
    )
    int8 = to_tflite(
        model,
        tmp_path / "i.tflite",
        quantization="int8",
        representative_data=data,
    )
    assert int8.tflite_micro_ready and int8.tflite_micro_blockers == ()


# ---------------------------------------------------------------------------
# Stateful models export as streaming files (issue 11).

CHUNK = 4


def _stateful(layer_class, batch=1):
    inputs = keras.Input(batch_shape=(batch, CHUNK, F))
    x = layer_class(8, stateful=True, return_sequences=True)(inputs)
    x = layer_class(6, stateful=True)(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _reset_states(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


@pytest.mark.parametrize("quantization", ["none", "int8"])
@pytest.mark.parametrize("layer_class", [keras.layers.LSTM, keras_lstm.LSTM])
def test_stateful_model_streams_as_keras_does(
    layer_class, quantization, rng, tmp_path
):
    model = seeded(_stateful(layer_class), rng)
    data = rng.normal(size=(60, 3 * CHUNK, F)).astype("float32")
    report = to_tflite(
        model,
        tmp_path / "stream.tflite",
        quantization=quantization,
        representative_data=data,
        streaming=True,
    )
    assert report.streaming and report.timesteps == 1
    assert report.check_timesteps == 3 * CHUNK
    # Reference: the stateful Keras model fed the sequence chunk by chunk
    # after reset_state(), against the file fed frame by frame.
    sequence = data[-1:]
    _reset_states(model)
    expected = [
        np.asarray(model(sequence[:, k : k + CHUNK]))
        for k in range(0, 3 * CHUNK, CHUNK)
    ]
    runner = load_tflite(report.path)
    runner.reset()
    frames = [runner.step(sequence[:, t]) for t in range(3 * CHUNK)]
    actual = [frames[k + CHUNK - 1] for k in range(0, 3 * CHUNK, CHUNK)]
    # Float: the same float32 arithmetic in another order (FLOAT_ATOL);
    # int8: 8 output quanta + 5 % of the range (`zoo.lossy_bound`).
    bound = (
        FLOAT_ATOL
        if quantization == "none"
        else lossy_bound(report, np.concatenate(expected))
    )
    error = max(
        np.abs(a - e).max() for a, e in zip(actual, expected, strict=True)
    )
    assert error <= bound, f"max abs error {error:.3g} > {bound:.3g}"


def test_stateful_model_without_streaming_warns_and_streams(rng, tmp_path):
    model = seeded(_stateful(keras_lstm.LSTM), rng)
    x = rng.normal(size=(2, CHUNK, F)).astype("float32")
    _reset_states(model)
    model(x[:1])
    states = [np.asarray(v) for v in model.layers[1].states]
    with pytest.warns(UserWarning, match="stateful layers.*streaming=True"):
        report = to_tflite(model, tmp_path / "s.tflite")
    assert report.streaming and report.max_abs_error <= FLOAT_ATOL
    # The user's model keeps its state: export works on a stateless copy.
    for before, after in zip(states, model.layers[1].states, strict=True):
        np.testing.assert_array_equal(before, np.asarray(after))
    assert model.layers[1].stateful


def _steps_with_a_reset_before_every_invoke(path, sequence):
    """Frame by frame, zeroing the variable tensors before each Invoke.

    What TFLite Micro's CMSIS-NN LSTM kernel does: it keeps the cell
    state in a scratch buffer and starts every Invoke from zero. Explicit
    state inputs (an external_state file) are fed from the last outputs,
    through the file's own quantization.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    signature = interpreter.get_signature_runner()
    # Tensor indices by signature name; set/get copy, so no view of the
    # interpreter's memory outlives a reset.
    inputs, outputs = dict(signature._inputs), dict(signature._outputs)
    del signature  # it holds views of the interpreter's memory
    details = {
        d["index"]: d
        for d in interpreter.get_input_details()
        + interpreter.get_output_details()
    }

    def quantized(index, value):
        scale, zero = details[index]["quantization"]
        dtype = details[index]["dtype"]
        if not scale:
            return value.astype(dtype)
        info = np.iinfo(dtype)
        q = np.round(value / scale + zero)
        return np.clip(q, info.min, info.max).astype(dtype)

    def real(index):
        value = interpreter.get_tensor(index).astype(np.float32)
        scale, zero = details[index]["quantization"]
        return (value - zero) * scale if scale else value

    states = {
        name: np.zeros(details[index]["shape"], np.float32)
        for name, index in inputs.items()
        if name != "frame"
    }
    steps = []
    for t in range(sequence.shape[1]):
        interpreter.reset_all_variables()
        frame = sequence[:, t : t + 1]
        interpreter.set_tensor(
            inputs["frame"], quantized(inputs["frame"], frame)
        )
        for name, value in states.items():
            interpreter.set_tensor(inputs[name], quantized(inputs[name], value))
        interpreter.invoke()
        for name in states:
            states[name] = real(outputs[f"{name}_out"])
        steps.append(real(outputs["output"]))
    return np.concatenate(steps, axis=1)


@pytest.mark.parametrize(
    "quantization, external_state, bound",
    [
        # Every step starts from zero: wrong, with no error from the
        # runtime (measured max abs 0.35, RMS 17 % of the outputs' spread,
        # past the export's own criterion). The report says so.
        ("none", False, None),
        ("int8", False, None),
        # The state is the file's input: nothing to lose. Float: max abs,
        # measured 1.8e-7. int16x8 (the converter's own 16x8 mode, the
        # state in int16): RMS relative to the spread, measured 0.16 %.
        # int8 (the cell state in int8): measured 0.55 %.
        ("none", True, 1e-5),
        ("int16x8", True, 0.01),
        ("int8", True, 0.05),
    ],
)
def test_which_streaming_files_survive_a_reset_before_every_invoke(
    quantization, external_state, bound, rng, tmp_path
):
    model = _streaming_model(rng, None)
    train = rng.normal(size=(64, 16, F)).astype("float32")
    sequence = rng.normal(size=(1, 200, F)).astype("float32")
    report = to_tflite(
        model,
        tmp_path / "s.tflite",
        quantization=quantization,
        representative_data=train,
        streaming=True,
        external_state=external_state,
    )
    expected = np.asarray(model(sequence))
    actual = _steps_with_a_reset_before_every_invoke(report.path, sequence)
    error = np.abs(actual - expected)
    relative = float(np.sqrt(np.mean(error**2)) / expected.std())
    if bound is None:
        assert relative > verification.MAX_RELATIVE_ERROR, relative
        assert "CMSIS-NN" in report.state_note
    else:
        assert report.state_note is None
        held = error.max() if quantization == "none" else relative
        assert held <= bound, (float(error.max()), relative)
