"""Sequence to sequence: keras.io's lstm_seq2seq, exported and decoded.

Builds the models of keras.io's character-level "lstm_seq2seq" example: a
training model (encoder LSTM with `return_state=True` whose `[h, c]` start
the decoder LSTM), then, from its layers, the encoder model
`sequence -> [h, c]` and the decoder step model `[token, h, c] ->
[probs, h, c]`. It trains on a generated task with a learnable mapping
(reverse a short sequence of tokens), exports the encoder and the decoder
step model with `to_tflite` (float32 and dynamic-range), and decodes the
test sequences greedily twice, with the Keras models and with the files,
through one loop. It prints the decoded-sequence accuracy of each and how
often the files' decoded sequences equal Keras's.

Usage:
    python examples/seq2seq.py
    python examples/seq2seq.py --quick
    python examples/seq2seq.py --keras-lstm   # keras.layers.LSTM instead
"""

import argparse
import pathlib
import sys
import tempfile

import keras
import numpy as np

import keras_lstm
from keras_lstm.export import load_tflite, to_tflite

SYMBOLS = 6  # Tokens 0..5; then a start and an end token.
START, END = SYMBOLS, SYMBOLS + 1
TOKENS = SYMBOLS + 2
LENGTH = 5  # Source length; the target is its reversal, then END.


def make_data(rng, n):
    """Random token sequences; the target is the sequence reversed."""
    source = rng.integers(0, SYMBOLS, size=(n, LENGTH))
    target = np.concatenate([source[:, ::-1], np.full((n, 1), END)], axis=1)
    decoder_in = np.concatenate([np.full((n, 1), START), target[:, :-1]], 1)
    eye = np.eye(TOKENS, dtype="float32")
    return eye[source], eye[decoder_in], eye[target], target


def build(lstm_class, latent):
    """keras.io's lstm_seq2seq: training, encoder and decoder step models."""
    encoder_inputs = keras.Input((None, TOKENS), name="encoder_inputs")
    _, state_h, state_c = lstm_class(latent, return_state=True)(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input((None, TOKENS), name="decoder_inputs")
    decoder_lstm = lstm_class(latent, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(
        decoder_inputs, initial_state=encoder_states
    )
    decoder_dense = keras.layers.Dense(TOKENS, activation="softmax")
    training = keras.Model(
        [encoder_inputs, decoder_inputs], decoder_dense(decoder_outputs)
    )

    encoder = keras.Model(encoder_inputs, encoder_states)
    state_h_in = keras.Input((latent,), name="state_h")
    state_c_in = keras.Input((latent,), name="state_c")
    step_outputs, h, c = decoder_lstm(
        decoder_inputs, initial_state=[state_h_in, state_c_in]
    )
    decoder = keras.Model(
        [decoder_inputs, state_h_in, state_c_in],
        [decoder_dense(step_outputs), h, c],
    )
    return training, encoder, decoder


def greedy_decode(encode, step, sources, steps):
    """Greedy decoding, as keras.io's `decode_sequence`, for a batch.

    `encode(sources) -> [h, c]`; `step([token, h, c]) -> [probs, h, c]`
    with `token` one-hot `(n, 1, TOKENS)`. Returns `(n, steps)` token ids.
    """
    h, c = encode(sources)
    token = np.zeros((len(sources), 1, TOKENS), "float32")
    token[:, 0, START] = 1.0
    decoded = []
    for _ in range(steps):
        probs, h, c = step([token, h, c])
        ids = np.argmax(probs[:, -1, :], axis=-1)
        decoded.append(ids)
        token = np.eye(TOKENS, dtype="float32")[ids][:, None, :]
    return np.stack(decoded, axis=1)


def _keras_fn(model):
    return lambda inputs: [
        np.asarray(o) for o in keras.tree.flatten(model(inputs))
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument(
        "--keras-lstm",
        action="store_true",
        help="build with keras.layers.LSTM, as keras.io does",
    )
    parser.add_argument("--out", help="directory for the .tflite files")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    lstm_class = keras.layers.LSTM if args.keras_lstm else keras_lstm.LSTM
    latent = 64
    train = make_data(rng, 2000 if args.quick else 8000)
    src_test, dec_test, _, target_test = make_data(rng, 64)

    training, encoder, decoder = build(lstm_class, latent)
    training.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    training.fit(
        [train[0], train[1]],
        train[2],
        batch_size=64,
        epochs=8 if args.quick else 20,
        verbose=2,
    )

    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="seq2seq_"))
    out.mkdir(parents=True, exist_ok=True)
    steps = LENGTH + 1
    keras_decoded = greedy_decode(
        _keras_fn(encoder), _keras_fn(decoder), src_test, steps
    )
    # Held-out check inputs for the decoder step: the first step of each
    # test sequence, from the Keras encoder's states.
    h_test, c_test = _keras_fn(encoder)(src_test)
    results = {
        "keras": {
            "sequence_accuracy": float(
                np.mean(np.all(keras_decoded == target_test, axis=1))
            )
        }
    }
    for mode in ("none", "dynamic"):
        encoder_report = to_tflite(
            encoder,
            out / f"encoder_{mode}.tflite",
            quantization=mode,
            timesteps=LENGTH,
            check_data=[src_test],
        )
        decoder_report = to_tflite(
            decoder,
            out / f"decoder_{mode}.tflite",
            quantization=mode,
            timesteps=1,
            check_data=[dec_test[:, :1], h_test, c_test],
        )
        encoder_file = load_tflite(encoder_report.path)
        decoder_file = load_tflite(decoder_report.path)
        decoded = greedy_decode(
            encoder_file.predict, decoder_file.predict, src_test, steps
        )
        results[mode] = {
            "encoder_bytes": encoder_report.size_bytes,
            "decoder_bytes": decoder_report.size_bytes,
            "encoder_max_abs_error": encoder_report.max_abs_error,
            "decoder_max_abs_error": decoder_report.max_abs_error,
            "sequence_accuracy": float(
                np.mean(np.all(decoded == target_test, axis=1))
            ),
            "agreement_with_keras": float(
                np.mean(np.all(decoded == keras_decoded, axis=1))
            ),
            "ops": sorted(set(encoder_report.ops) | set(decoder_report.ops)),
        }

    print(f"Keras: {results['keras']['sequence_accuracy']:.1%} reversed")
    for mode in ("none", "dynamic"):
        row = results[mode]
        print(
            f"{mode:8s} encoder {row['encoder_bytes']} B (max abs error "
            f"{row['encoder_max_abs_error']:.2e}), decoder "
            f"{row['decoder_bytes']} B ({row['decoder_max_abs_error']:.2e}); "
            f"{row['sequence_accuracy']:.1%} reversed, "
            f"{row['agreement_with_keras']:.1%} decoded as Keras"
        )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
