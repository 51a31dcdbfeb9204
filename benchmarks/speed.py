"""Training and inference speed: keras_lstm against keras.layers.LSTM.

Measures, in one process and interleaved (round-robin over the candidates, so
that drifts in machine load hit all of them alike):

- a train step (`model.train_on_batch`, Adam, Keras's default `compile`);
- an inference call (`model.predict_on_batch`);

for `keras.layers.LSTM`, `keras_lstm.LSTM` and
`keras.layers.RNN(keras_lstm.LSTMCell)`, all from the same weights. Prints a
markdown table of medians and ratios, the distance to the FLOP roof, and
writes it to `benchmarks/results/speed.md`.

    python benchmarks/speed.py                # B=64, T=100, F=32, U=128
    python benchmarks/speed.py --quick        # a smoke run
    python benchmarks/speed.py --units-sweep  # where the fast path pays

`--units-sweep` times `keras_lstm.LSTM` on each of its two paths (forced by
setting `keras_lstm.layers.PARALLEL_MIN_UNITS` while a model is traced)
against `keras.layers.LSTM` for 16 to 512 units, which is where that
threshold comes from; it writes `results/units_sweep.md`.
"""

import argparse
import os
import pathlib
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402

CANDIDATES = {
    "keras.layers.LSTM": lambda units: keras.layers.LSTM(units),
    "keras_lstm.LSTM": lambda units: keras_lstm.LSTM(units),
    "RNN(keras_lstm.LSTMCell)": lambda units: keras.layers.RNN(
        keras_lstm.LSTMCell(units)
    ),
}


def build_models(batch, timesteps, features, units, candidates=None):
    models = {}
    weights = None
    for name, make in (candidates or CANDIDATES).items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((timesteps, features), batch_size=batch),
                make(units),
                keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        models[name] = model
    return models


def time_interleaved(functions, repeats):
    """Median seconds per call of each function, calls interleaved."""
    for fn in functions.values():  # trace and warm up
        fn()
        fn()
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def lstm_train_flops(batch, timesteps, features, units):
    """Multiply-adds of the LSTM's matrix products, x2 FLOP, x3 for training.

    Forward: x W and h U per step. Backward costs about twice the forward
    (the gradient wrt activations and wrt weights).
    """
    forward = 2 * batch * timesteps * 4 * units * (features + units)
    return forward, 3 * forward


def measure_gflops():
    """What this machine's matmul reaches, for the roof line."""
    import tensorflow as tf

    a = tf.random.normal((512, 512))
    b = tf.random.normal((512, 512))
    tf.matmul(a, b)
    start = time.perf_counter()
    for _ in range(50):
        c = tf.matmul(a, b)
    c.numpy()
    return 50 * 2 * 512**3 / (time.perf_counter() - start) / 1e9


class _RoutedLSTM(keras_lstm.LSTM):
    """`keras_lstm.LSTM` whose path is fixed when its model is traced."""

    def __init__(self, units, min_units, **kwargs):
        super().__init__(units, **kwargs)
        self._min_units = min_units

    def call(self, sequences, initial_state=None, mask=None, training=False):
        saved = keras_lstm.layers.PARALLEL_MIN_UNITS
        keras_lstm.layers.PARALLEL_MIN_UNITS = self._min_units
        try:
            return super().call(sequences, initial_state, mask, training)
        finally:
            keras_lstm.layers.PARALLEL_MIN_UNITS = saved


def units_sweep(args, x, y):
    """Speed-up of each path of `keras_lstm.LSTM` against Keras, by units."""
    candidates = {
        "keras.layers.LSTM": CANDIDATES["keras.layers.LSTM"],
        "parallel": lambda units: _RoutedLSTM(units, min_units=1),
        "generic": lambda units: _RoutedLSTM(units, min_units=10**9),
    }
    lines = [
        f"B={args.batch}, T={args.timesteps}, F={args.features}; median of "
        f"{args.repeats} interleaved runs; {os.cpu_count()} CPU cores. "
        "Speed-up of each path of keras_lstm.LSTM against keras.layers.LSTM "
        "(above 1 is faster); the layer takes the parallel path from "
        f"PARALLEL_MIN_UNITS = {keras_lstm.layers.PARALLEL_MIN_UNITS} units.",
        "",
        "| units | train: parallel | train: generic | inference: parallel "
        "| inference: generic |",
        "|---|---|---|---|---|",
    ]
    for units in args.sweep_units:
        models = build_models(
            args.batch, args.timesteps, args.features, units, candidates
        )
        train = time_interleaved(
            {n: lambda m=m: m.train_on_batch(x, y) for n, m in models.items()},
            args.repeats,
        )
        infer = time_interleaved(
            {n: lambda m=m: m.predict_on_batch(x) for n, m in models.items()},
            args.repeats,
        )
        t0, i0 = train["keras.layers.LSTM"], infer["keras.layers.LSTM"]
        lines.append(
            f"| {units} | {t0 / train['parallel']:.2f}x | "
            f"{t0 / train['generic']:.2f}x | {i0 / infer['parallel']:.2f}x | "
            f"{i0 / infer['generic']:.2f}x |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--units-sweep", action="store_true")
    parser.add_argument(
        "--sweep-units",
        type=int,
        nargs="+",
        default=[16, 32, 64, 96, 128, 192, 256, 384, 512],
    )
    parser.add_argument(
        "--out",
        default=str(pathlib.Path(__file__).parent / "results" / "speed.md"),
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.timesteps, args.repeats = 8, 10, 3

    rng = np.random.default_rng(0)
    x = rng.standard_normal(
        (args.batch, args.timesteps, args.features)
    ).astype("float32")
    y = rng.integers(0, 10, size=(args.batch,))
    if args.units_sweep:
        table = units_sweep(args, x, y)
        print(table)
        if not args.quick:
            out = pathlib.Path(args.out).with_name("units_sweep.md")
            out.write_text(table + "\n")
        return 0
    models = build_models(args.batch, args.timesteps, args.features, args.units)

    train = time_interleaved(
        {n: (lambda m=m: m.train_on_batch(x, y)) for n, m in models.items()},
        args.repeats,
    )
    infer = time_interleaved(
        {n: (lambda m=m: m.predict_on_batch(x)) for n, m in models.items()},
        args.repeats,
    )
    forward_flops, train_flops = lstm_train_flops(
        args.batch, args.timesteps, args.features, args.units
    )
    gflops = measure_gflops()
    roof_ms = train_flops / (gflops * 1e9) * 1e3

    base_train = train["keras.layers.LSTM"]
    base_infer = infer["keras.layers.LSTM"]
    lines = [
        f"B={args.batch}, T={args.timesteps}, F={args.features}, "
        f"U={args.units}; median of {args.repeats} interleaved runs; "
        f"{os.cpu_count()} CPU cores; matmul reaches {gflops:.0f} GFLOP/s, "
        f"so a train step's {train_flops / 1e9:.2f} GFLOP take at least "
        f"{roof_ms:.1f} ms (the roof).",
        "",
        "| layer | train step (ms) | speed-up | x roof | "
        "inference (ms) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name in models:
        lines.append(
            f"| {name} | {train[name] * 1e3:.1f} | "
            f"{base_train / train[name]:.2f}x | "
            f"{train[name] * 1e3 / roof_ms:.1f} | "
            f"{infer[name] * 1e3:.1f} | {base_infer / infer[name]:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
