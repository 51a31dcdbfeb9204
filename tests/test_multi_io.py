"""`to_tflite` on encoder-decoder models (`keras_lstm.export.multi_io`).

keras.io's lstm_seq2seq models, small: an encoder returning `[h, c]` (or
`[output, h, c]`), a decoder step model `[token, h, c] -> [probs, h, c]`,
and the training model joining them. References are the Keras models
themselves, with seeded weights, on held-out inputs the export never saw.

Tolerances:
- float32 files: 1e-5 max abs error against Keras, as in test_tflite.
  Unrolled builtin steps do the layer's float32 arithmetic in another
  order; measured errors are ~2e-7.
- dynamic-range files: re-checked here on other inputs within
  `zoo.lossy_bound`, the max-abs bound `to_tflite` used to enforce.
"""

import keras
import numpy as np
import pytest
from seeding import seeded
from zoo import lossy_bound

import keras_lstm
from keras_lstm.export import (
    Quantization,
    contract,
    load_tflite,
    multi_io,
    to_tflite,
)

FLOAT_ATOL = 1e-5
T, TOKENS, LATENT = 5, 6, 8
FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"
BUILTIN_STEP_OPS = {
    "FULLY_CONNECTED",
    "LOGISTIC",
    "TANH",
    "MUL",
    "ADD",
    "SPLIT",
    "STRIDED_SLICE",
    "SLICE",
    "RESHAPE",
    "PACK",
    "UNPACK",
    "CONCATENATION",
    "SOFTMAX",
    "TRANSPOSE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "GATHER",
}


def _seq2seq(lstm_class=keras.layers.LSTM, latent=LATENT, encoder_outputs=2):
    """keras.io lstm_seq2seq's training, encoder and decoder step models."""
    encoder_inputs = keras.Input((None, TOKENS), name="encoder_inputs")
    output, h, c = lstm_class(latent, return_state=True)(encoder_inputs)
    decoder_inputs = keras.Input((None, TOKENS), name="decoder_inputs")
    decoder_lstm = lstm_class(latent, return_sequences=True, return_state=True)
    dense = keras.layers.Dense(TOKENS, activation="softmax")
    sequence, _, _ = decoder_lstm(decoder_inputs, initial_state=[h, c])
    training = keras.Model([encoder_inputs, decoder_inputs], dense(sequence))
    states = [h, c] if encoder_outputs == 2 else [output, h, c]
    encoder = keras.Model(encoder_inputs, states)
    h_in = keras.Input((latent,), name="h")
    c_in = keras.Input((latent,), name="c")
    step, h_out, c_out = decoder_lstm(
        decoder_inputs, initial_state=[h_in, c_in]
    )
    decoder = keras.Model(
        [decoder_inputs, h_in, c_in], [dense(step), h_out, c_out]
    )
    return training, encoder, decoder


def _errors(got, want):
    return [
        float(np.max(np.abs(g - np.asarray(w))))
        for g, w in zip(got, keras.tree.flatten(want), strict=True)
    ]


def _assert_builtin(report):
    assert "WHILE" not in report.ops
    assert not any(op.startswith("CUSTOM") for op in report.ops)
    unexpected = set(report.ops) - BUILTIN_STEP_OPS - {FUSED}
    assert not unexpected, f"unexpected ops {unexpected}"


@pytest.mark.parametrize("lstm_class", [keras.layers.LSTM, keras_lstm.LSTM])
@pytest.mark.parametrize("encoder_outputs", [2, 3])
def test_encoder_returning_its_state_matches_keras(
    lstm_class, encoder_outputs, rng, tmp_path
):
    _, encoder, _ = _seq2seq(lstm_class, encoder_outputs=encoder_outputs)
    seeded(encoder, rng)
    report = to_tflite(encoder, tmp_path / "encoder.tflite", timesteps=T)
    _assert_builtin(report)
    # c is not readable from the fused op: the LSTM is unrolled.
    assert report.fused_lstm_ops == 0 and FUSED not in report.ops
    assert report.external_state
    assert report.max_abs_error <= FLOAT_ATOL
    runner = load_tflite(report.path)
    assert runner.input_names == ("input_0_encoder_inputs",)
    assert runner.output_names == tuple(contract.output_names(encoder_outputs))
    x = rng.normal(size=(3, T, TOKENS)).astype("float32")
    errors = _errors(runner.predict(x), encoder(x))
    assert max(errors) <= FLOAT_ATOL, f"max abs errors {errors}"


def test_backward_encoder_matches_keras(rng, tmp_path):
    inputs = keras.Input((T, TOKENS))
    _, h, c = keras.layers.LSTM(LATENT, return_state=True, go_backwards=True)(
        inputs
    )
    encoder = seeded(keras.Model(inputs, [h, c]), rng)
    report = to_tflite(encoder, tmp_path / "backward.tflite")
    x = rng.normal(size=(3, T, TOKENS)).astype("float32")
    errors = _errors(load_tflite(report.path).predict(x), encoder(x))
    assert max(errors) <= FLOAT_ATOL, f"max abs errors {errors}"


def test_decoder_step_model_takes_and_returns_the_state(rng, tmp_path):
    _, _, decoder = _seq2seq()
    seeded(decoder, rng)
    report = to_tflite(decoder, tmp_path / "decoder.tflite", timesteps=1)
    _assert_builtin(report)
    assert report.max_abs_error <= FLOAT_ATOL
    runner = load_tflite(report.path)
    assert runner.input_names == (
        "input_0_decoder_inputs",
        "input_1_h",
        "input_2_c",
    )
    assert runner.output_names == ("output_0", "output_1", "output_2")
    token = rng.normal(size=(4, 1, TOKENS)).astype("float32")
    h = rng.normal(size=(4, LATENT)).astype("float32")
    c = rng.normal(size=(4, LATENT)).astype("float32")
    want = decoder([token, h, c])
    errors = _errors(runner.predict([token, h, c]), want)
    assert max(errors) <= FLOAT_ATOL, f"max abs errors {errors}"
    # One invocation by name gives the same, whatever the earlier calls.
    by_name = runner.run(
        {
            "input_0_decoder_inputs": token[:1],
            "input_1_h": h[:1],
            "input_2_c": c[:1],
        }
    )
    errors = _errors(
        [by_name[n] for n in runner.output_names],
        [np.asarray(w)[:1] for w in want],
    )
    assert max(errors) <= FLOAT_ATOL, f"max abs errors {errors}"


def test_greedy_decoding_over_the_files_gives_keras_sequences(rng, tmp_path):
    _, encoder, decoder = _seq2seq(keras_lstm.LSTM, latent=16)
    seeded(encoder, rng)
    seeded(decoder, rng)
    encoder_file = load_tflite(
        to_tflite(
            encoder, tmp_path / "e.tflite", timesteps=T, batch_size=4
        ).path
    )
    decoder_file = load_tflite(
        to_tflite(
            decoder, tmp_path / "d.tflite", timesteps=1, batch_size=4
        ).path
    )

    def decode(encode, step, sources, steps=8):
        h, c = encode(sources)
        token = np.zeros((len(sources), 1, TOKENS), "float32")
        token[:, 0, 0] = 1.0
        ids = []
        for _ in range(steps):
            probs, h, c = step([token, h, c])
            ids.append(np.argmax(probs[:, -1], axis=-1))
            token = np.eye(TOKENS, dtype="float32")[ids[-1]][:, None]
        return np.stack(ids, axis=1)

    def keras_fn(model):
        return lambda x: [np.asarray(o) for o in model(x)]

    sources = np.eye(TOKENS, dtype="float32")[rng.integers(0, TOKENS, (10, T))]
    want = decode(keras_fn(encoder), keras_fn(decoder), sources)
    got = decode(encoder_file.predict, decoder_file.predict, sources)
    np.testing.assert_array_equal(got, want)
    # The same files on TFLite Micro (float32 kernels; no variable tensors
    # are needed, the state is explicit).
    micro = [
        load_tflite(f.path, backend="tflite_micro")
        for f in (encoder_file, decoder_file)
    ]
    got = decode(micro[0].predict, micro[1].predict, sources)
    np.testing.assert_array_equal(got, want)


def test_training_model_unrolls_both_lstms(rng, tmp_path):
    training, _, _ = _seq2seq()
    seeded(training, rng)
    steps = {"encoder_inputs": T, "decoder_inputs": 3}
    report = to_tflite(training, tmp_path / "training.tflite", timesteps=steps)
    _assert_builtin(report)
    assert report.fused_lstm_ops == 0
    x = [
        rng.normal(size=(2, T, TOKENS)).astype("float32"),
        rng.normal(size=(2, 3, TOKENS)).astype("float32"),
    ]
    errors = _errors([load_tflite(report.path).predict(x)], training(x))
    assert max(errors) <= FLOAT_ATOL, f"max abs error {errors}"


def test_lstm_from_zero_without_state_stays_fused(rng, tmp_path):
    # Two inputs: one LSTM starts from zeros and returns no state (fused),
    # one returns its state (unrolled).
    a = keras.Input((T, 3), name="a")
    b = keras.Input((T, 2), name="b")
    fused = keras.layers.LSTM(4)(a)
    _, h, c = keras.layers.LSTM(4, return_state=True)(b)
    model = seeded(
        keras.Model([a, b], [keras.layers.Concatenate()([fused, h]), c]), rng
    )
    report = to_tflite(model, tmp_path / "mixed.tflite")
    assert report.fused_lstm_ops == 1 and report.ops.count(FUSED) == 1
    x = [
        rng.normal(size=(3, T, 3)).astype("float32"),
        rng.normal(size=(3, T, 2)).astype("float32"),
    ]
    # The fused op's variable tensors are reset before every invocation.
    errors = _errors(load_tflite(report.path).predict(x), model(x))
    assert max(errors) <= FLOAT_ATOL, f"max abs errors {errors}"


def test_dynamic_range_decoder_is_smaller_and_within_its_bound(rng, tmp_path):
    _, _, decoder = _seq2seq(latent=64)
    seeded(decoder, rng)
    float_report = to_tflite(decoder, tmp_path / "f.tflite", timesteps=1)
    report = to_tflite(
        decoder, tmp_path / "d.tflite", quantization="dynamic", timesteps=1
    )
    assert report.quantization is Quantization.DYNAMIC
    assert report.size_bytes < 0.5 * float_report.size_bytes
    x = [
        rng.normal(size=(8, 1, TOKENS)).astype("float32"),
        rng.normal(size=(8, 64)).astype("float32"),
        rng.normal(size=(8, 64)).astype("float32"),
    ]
    expected = decoder(x)
    errors = _errors(load_tflite(report.path).predict(x), expected)
    bound = max(lossy_bound(report, np.asarray(e)) for e in expected)
    assert max(errors) <= bound, f"max abs errors {errors} > {bound}"


@pytest.mark.parametrize(
    "case,match",
    [
        ("int8_state", "crosses the file boundary.*quantization='dynamic'"),
        ("int8_no_state", "not supported yet.*'dynamic'"),
        ("streaming", "already explicit.*streaming=False"),
        ("no_timesteps", "time dimension of None.*timesteps="),
        ("bad_check_data", "must be a list of 3 arrays"),
    ],
)
def test_refusals_say_what_to_do(case, match, rng, tmp_path):
    _, encoder, decoder = _seq2seq()
    path = tmp_path / "refused.tflite"
    kwargs = {"timesteps": 1}
    model = decoder
    if case == "int8_state":
        kwargs.update(
            quantization="int8",
            representative_data=[
                np.zeros((4, 1, TOKENS)),
                np.zeros((4, LATENT)),
                np.zeros((4, LATENT)),
            ],
        )
    elif case == "int8_no_state":
        a, b = keras.Input((T, 3)), keras.Input((T, 3))
        model = keras.Model([a, b], keras.layers.LSTM(2)(a + b))
        kwargs = {"quantization": "int8"}
    elif case == "streaming":
        kwargs["streaming"] = True
    elif case == "no_timesteps":
        model, kwargs = encoder, {}
    elif case == "bad_check_data":
        kwargs["check_data"] = np.zeros((4, 1, TOKENS))
    with pytest.raises(ValueError, match=match):
        to_tflite(model, path, **kwargs)
    assert not path.exists()


def test_one_output_of_a_state_returning_lstm_exports(rng, tmp_path):
    # Once refused ("return_state"); the layer's last output is its h.
    inputs = keras.Input((T, 3))
    output, _, c = keras_lstm.LSTM(4, return_state=True)(inputs)
    model = seeded(keras.Model(inputs, keras.layers.Add()([output, c])), rng)
    report = to_tflite(model, tmp_path / "one.tflite")
    assert [t.name for t in report.outputs] == [contract.OUTPUT]
    x = rng.normal(size=(3, T, 3)).astype("float32")
    errors = _errors([load_tflite(report.path).predict(x)], model(x))
    assert max(errors) <= FLOAT_ATOL, f"max abs error {errors}"


def test_single_input_single_output_models_keep_the_one_input_path():
    inputs = keras.Input((T, 3))
    assert not multi_io.applies(
        keras.Model(inputs, keras.layers.LSTM(2)(inputs))
    )
    _, encoder, decoder = _seq2seq()
    assert multi_io.applies(encoder) and multi_io.applies(decoder)


def test_contract_names_keep_the_keras_order():
    names = contract.input_names(["decoder_inputs", "h", "state c"])
    assert names == ["input_0_decoder_inputs", "input_1_h", "input_2_state_c"]
    assert [contract.input_position(n) for n in names] == [0, 1, 2]
    assert contract.output_names(1) == [contract.OUTPUT]
    assert [contract.output_position(n) for n in contract.output_names(12)] == (
        list(range(12))
    )
