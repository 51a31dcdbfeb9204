"""Training and inference speed: keras_lstm against keras.layers.LSTM.

Measures, in one process and interleaved (round-robin over the candidates, so
that drifts in machine load hit all of them alike):

- a train step (`model.train_on_batch`, Adam);
- an inference call (`model.predict_on_batch`);

for `keras.layers.LSTM` compiled with Keras's defaults and with
`jit_compile=True` (XLA, which Keras leaves off on a CPU), `keras_lstm.LSTM`
and `keras.layers.RNN(keras_lstm.LSTMCell)` with Keras's defaults, all from
the same weights. Prints the CPU (lscpu's model and AVX flags), a markdown
table of medians, ratios against both Keras configurations and the
distance to the FLOP roof, and writes it to `benchmarks/results/speed.md`.

    python benchmarks/speed.py                # B=64, T=100, F=32, U=128
    python benchmarks/speed.py --quick        # a smoke run
    python benchmarks/speed.py --grid         # units x batch, T=50
    python benchmarks/speed.py --units-sweep  # where the fast path pays

`--grid` times `keras_lstm.LSTM` as routed, and each of its two TensorFlow
paths forced, against `keras.layers.LSTM` on units {32, ..., 512} x batch
{1, 16, 64, 256}; it writes `results/grid.md`. `--units-sweep` is the
same grid along units at one batch (`--batch`), with the forced paths
(`results/units_sweep.md`). The forced paths come
from setting `keras_lstm.layers.PARALLEL_MIN_UNITS` while a model is traced.

Ratios depend on the CPU: the same configuration gave 1.30x / 1.82x on an
AVX2 machine and 1.11x / 1.14x on an AVX-512 one.
"""

import argparse
import os
import pathlib
import runpy
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402

# backends.py's lscpu summary; by path, as a `backends` module may already
# be imported (the test suite has one).
cpu_description = runpy.run_path(
    str(pathlib.Path(__file__).with_name("backends.py"))
)["cpu_description"]

KERAS = "keras.layers.LSTM"
KERAS_XLA = "keras.layers.LSTM (jit_compile=True)"
OURS = "keras_lstm.LSTM"
CONTROL = "keras.layers.LSTM (control)"

# name: (layer factory, compile() keyword arguments)
CANDIDATES = {
    KERAS: (lambda units: keras.layers.LSTM(units), {}),
    KERAS_XLA: (
        lambda units: keras.layers.LSTM(units),
        {"jit_compile": True},
    ),
    OURS: (lambda units: keras_lstm.LSTM(units), {}),
    "RNN(keras_lstm.LSTMCell)": (
        lambda units: keras.layers.RNN(keras_lstm.LSTMCell(units)),
        {},
    ),
}


def build_models(batch, timesteps, features, units, candidates=None):
    models = {}
    weights = None
    for name, (make, compile_kwargs) in (candidates or CANDIDATES).items():
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
            **compile_kwargs,
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


def time_models(models, x, y, repeats):
    """`(train, inference)`: median seconds per call, by model name."""
    train = time_interleaved(
        {n: (lambda m=m: m.train_on_batch(x, y)) for n, m in models.items()},
        repeats,
    )
    infer = time_interleaved(
        {n: (lambda m=m: m.predict_on_batch(x)) for n, m in models.items()},
        repeats,
    )
    return train, infer


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
        layers = keras_lstm.layers
        saved = layers.PARALLEL_MIN_UNITS, layers.SMALL_BATCH
        layers.PARALLEL_MIN_UNITS = self._min_units
        layers.SMALL_BATCH = 0  # units alone decide
        try:
            return super().call(sequences, initial_state, mask, training)
        finally:
            layers.PARALLEL_MIN_UNITS, layers.SMALL_BATCH = saved


FORCED_PATHS = {
    "parallel": (lambda units: _RoutedLSTM(units, min_units=1), {}),
    "generic": (lambda units: _RoutedLSTM(units, min_units=10**9), {}),
}

GRID_UNITS = (32, 64, 128, 256, 512)
GRID_BATCHES = (1, 16, 64, 256)


def grid(args, grid_units, grid_batches, forced_paths):
    """`keras_lstm.LSTM` (routed, and each path forced) against Keras.

    Times every shape of `grid_units` x `grid_batches`; with
    `forced_paths`, each TensorFlow path forced too (`--units-sweep` is
    the one-batch case). Every ratio is Keras's time (defaults) over ours:
    above 1 is faster.
    """
    # The control is keras.layers.LSTM against itself: how far apart two
    # identical models read here, the noise floor of every ratio.
    candidates = {
        KERAS: CANDIDATES[KERAS],
        CONTROL: CANDIDATES[KERAS],
        OURS: CANDIDATES[OURS],
    }
    if forced_paths:
        candidates.update(FORCED_PATHS)
    lines = [
        f"CPU: {cpu_description()}.",
        "",
        f"T={args.timesteps}, F={args.features}; median of {args.repeats} "
        "interleaved runs; Keras's default compile for every model. Ratio: "
        "keras.layers.LSTM's time over keras_lstm.LSTM's (above 1: "
        "keras_lstm is faster); `route` is the path keras_lstm.LSTM takes "
        "(train / inference where they differ), "
        "`parallel` / `generic` each path forced; `control` is "
        "keras.layers.LSTM timed against a second copy of itself, the "
        "noise floor. The layer takes the parallel path from "
        f"PARALLEL_MIN_UNITS = {keras_lstm.layers.PARALLEL_MIN_UNITS} units "
        f"(at a batch of at most {keras_lstm.layers.SMALL_BATCH}: "
        f"{keras_lstm.layers.SMALL_BATCH_MIN_UNITS}).",
        "",
    ]
    header = (
        "| units | batch | route | train | inference | train: control "
        "| inference: control |"
    )
    rule = "|---|---|---|---|---|---|---|"
    if forced_paths:
        header += (
            " train: parallel | train: generic | inference: parallel "
            "| inference: generic |"
        )
        rule += "---|---|---|---|"
    lines += [header, rule]
    print("\n".join(lines), flush=True)
    worst = {"train": np.inf, "inference": np.inf}
    spread = {"train": [np.inf, 0.0], "inference": [np.inf, 0.0]}
    rng = np.random.default_rng(0)
    for units in grid_units:
        for batch in grid_batches:
            x = rng.standard_normal(
                (batch, args.timesteps, args.features)
            ).astype("float32")
            y = rng.integers(0, 10, size=(batch,))
            models = build_models(
                batch, args.timesteps, args.features, units, candidates
            )
            train, infer = time_models(models, x, y, args.repeats)
            layer = models[OURS].layers[0]
            route = " / ".join(
                dict.fromkeys(
                    layer.sequence_path(training=phase, batch_size=batch)
                    for phase in (True, False)
                )
            )
            t0, i0 = train[KERAS], infer[KERAS]
            worst["train"] = min(worst["train"], t0 / train[OURS])
            worst["inference"] = min(worst["inference"], i0 / infer[OURS])
            for key, base, times in (
                ("train", t0, train),
                ("inference", i0, infer),
            ):
                control = base / times[CONTROL]
                spread[key] = [
                    min(spread[key][0], control),
                    max(spread[key][1], control),
                ]
            row = (
                f"| {units} | {batch} | {route} | {t0 / train[OURS]:.2f}x | "
                f"{i0 / infer[OURS]:.2f}x | {t0 / train[CONTROL]:.2f}x | "
                f"{i0 / infer[CONTROL]:.2f}x |"
            )
            if forced_paths:
                row += " ".join(
                    f" {base / times[path]:.2f}x |"
                    for base, times in ((t0, train), (i0, infer))
                    for path in FORCED_PATHS
                )
            lines.append(row)
            print(row, flush=True)
            keras.backend.clear_session()
    lines += [
        "",
        f"Lowest ratio of keras_lstm.LSTM: train {worst['train']:.2f}x, "
        f"inference {worst['inference']:.2f}x. The control ranged "
        f"{spread['train'][0]:.2f}x-{spread['train'][1]:.2f}x (train) and "
        f"{spread['inference'][0]:.2f}x-{spread['inference'][1]:.2f}x "
        "(inference).",
    ]
    print(lines[-1])
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--grid-units", type=int, nargs="+", default=GRID_UNITS)
    parser.add_argument(
        "--grid-batches", type=int, nargs="+", default=GRID_BATCHES
    )
    parser.add_argument(
        "--routed-only",
        action="store_true",
        help="in --grid, time only keras_lstm.LSTM as routed",
    )
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
    if args.timesteps is None:
        args.timesteps = 50 if args.grid else 100
    if args.quick:
        args.batch, args.timesteps, args.repeats = 8, 10, 3
        if args.grid_units is GRID_UNITS:
            args.grid_units = GRID_UNITS[:1]
        args.grid_batches = [8]

    def write(table, name, echo=True):
        if echo:
            print(table)
        if not args.quick:
            out = pathlib.Path(args.out).with_name(name)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(table + "\n")

    if args.grid:
        table = grid(
            args, args.grid_units, args.grid_batches, not args.routed_only
        )
        write(table, "grid.md", echo=False)
        return 0
    if args.units_sweep:
        table = grid(args, args.sweep_units, [args.batch], True)
        write(table, "units_sweep.md", echo=False)
        return 0
    rng = np.random.default_rng(0)
    x = rng.standard_normal(
        (args.batch, args.timesteps, args.features)
    ).astype("float32")
    y = rng.integers(0, 10, size=(args.batch,))
    models = build_models(args.batch, args.timesteps, args.features, args.units)
    train, infer = time_models(models, x, y, args.repeats)
    forward_flops, train_flops = lstm_train_flops(
        args.batch, args.timesteps, args.features, args.units
    )
    gflops = measure_gflops()
    train_roof = train_flops / (gflops * 1e9) * 1e3
    infer_roof = forward_flops / (gflops * 1e9) * 1e3
    best_train = min(train[KERAS], train[KERAS_XLA])
    best_infer = min(infer[KERAS], infer[KERAS_XLA])
    lines = [
        f"CPU: {cpu_description()}.",
        "",
        f"B={args.batch}, T={args.timesteps}, F={args.features}, "
        f"U={args.units}; median of {args.repeats} interleaved runs. Matmul "
        f"reaches {gflops:.0f} GFLOP/s here, so a train step's "
        f"{train_flops / 1e9:.2f} GFLOP take at least {train_roof:.1f} ms and "
        f"an inference call's {forward_flops / 1e9:.2f} GFLOP "
        f"{infer_roof:.1f} ms (the roofs). Ratios: the Keras configuration's "
        "time over this layer's (above 1: faster than Keras); `vs best` is "
        "against the faster of the two Keras configurations.",
        "",
        "| layer | train (ms) | vs Keras | vs best | x roof | "
        "inference (ms) | vs Keras | vs best | x roof |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in models:
        lines.append(
            f"| {name} | {train[name] * 1e3:.1f} | "
            f"{train[KERAS] / train[name]:.2f}x | "
            f"{best_train / train[name]:.2f}x | "
            f"{train[name] * 1e3 / train_roof:.1f} | "
            f"{infer[name] * 1e3:.1f} | {infer[KERAS] / infer[name]:.2f}x | "
            f"{best_infer / infer[name]:.2f}x | "
            f"{infer[name] * 1e3 / infer_roof:.1f} |"
        )
    write("\n".join(lines), "speed.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
