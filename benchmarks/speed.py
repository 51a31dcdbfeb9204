"""Training and inference speed: keras_lstm against keras.layers.LSTM.

Measures, in one process and interleaved (round-robin over the candidates, so
that drifts in machine load hit all of them alike):

- a train step (`model.train_on_batch`, Adam);
- an inference call (`model.predict_on_batch`);

for `keras.layers.LSTM` and `keras_lstm.LSTM`, each compiled with Keras's
defaults and with `jit_compile=True` (XLA, which Keras leaves off on a CPU),
`keras.layers.RNN(keras_lstm.LSTMCell)`, and a second copy of
`keras.layers.LSTM` (the control: how far apart two identical models read,
the noise floor), all from the same weights. Prints the CPU (lscpu's model
and AVX flags), the date and the machine's load, a markdown table of
medians with the distance to the FLOP roofs, and the three like-for-like
ratios: default against default, XLA against XLA, and the best of each
layer against the best of the other. Writes it to
`benchmarks/results/speed.md`.

    python benchmarks/speed.py                # B=64, T=100, F=32, U=128
    python benchmarks/speed.py --quick        # a smoke run
    python benchmarks/speed.py --grid         # units x batch, T=50
    python benchmarks/speed.py --grid --jit   # the same, all under XLA
    python benchmarks/speed.py --units-sweep  # where the fast path pays

`--grid` times `keras_lstm.LSTM` as routed, and each of its two TensorFlow
paths forced, against `keras.layers.LSTM` on units {32, ..., 512} x batch
{1, 16, 64, 256}, twice, with the control in the same runs; a cell counts
as faster (or slower) only where both runs agree beyond the control's band,
and only such cells may move a routing rule. It writes `results/grid.md`
(`results/grid_jit.md` with `--jit`). `--units-sweep` is the same grid
along units at one batch (`--batch`), with the forced paths
(`results/units_sweep.md`). The forced paths come from
`keras_lstm.layers.force_route` while a model is traced.
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
from keras_lstm.layers import SequencePath  # noqa: E402

# backends.py's lscpu summary; by path, as a `backends` module may already
# be imported (the test suite has one).
cpu_description = runpy.run_path(
    str(pathlib.Path(__file__).with_name("backends.py"))
)["cpu_description"]

KERAS = "keras.layers.LSTM"
KERAS_XLA = "keras.layers.LSTM (jit_compile=True)"
OURS = "keras_lstm.LSTM"
OURS_XLA = "keras_lstm.LSTM (jit_compile=True)"
CONTROL = "keras.layers.LSTM (control)"
XLA = {"jit_compile": True}

# name: (layer factory, compile() keyword arguments)
CANDIDATES = {
    KERAS: (lambda units: keras.layers.LSTM(units), {}),
    CONTROL: (lambda units: keras.layers.LSTM(units), {}),
    KERAS_XLA: (lambda units: keras.layers.LSTM(units), XLA),
    OURS: (lambda units: keras_lstm.LSTM(units), {}),
    OURS_XLA: (lambda units: keras_lstm.LSTM(units), XLA),
    "RNN(keras_lstm.LSTMCell)": (
        lambda units: keras.layers.RNN(keras_lstm.LSTMCell(units)),
        {},
    ),
}


def like_for_like(train, infer):
    """The three ratios, Keras's time over ours (above 1: ours is faster).

    Returns:
        `{name: (train ratio, inference ratio)}` for default against
        default, XLA against XLA, and the best compile mode of each layer
        against the best of the other.
    """
    ratios = {}
    for times in (train, infer):
        best_keras = min(times[KERAS], times[KERAS_XLA])
        best_ours = min(times[OURS], times[OURS_XLA])
        for name, ratio in (
            ("default vs default", times[KERAS] / times[OURS]),
            ("XLA vs XLA", times[KERAS_XLA] / times[OURS_XLA]),
            ("best vs best", best_keras / best_ours),
        ):
            ratios.setdefault(name, []).append(ratio)
    return {name: tuple(pair) for name, pair in ratios.items()}


def machine_load():
    """The 1-minute load average and the date, for every table's header."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{date}; load average {load:.1f} on {os.cpu_count()} cores"


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
    """`keras_lstm.LSTM` whose path is forced when its model is traced."""

    def __init__(self, units, path, **kwargs):
        super().__init__(units, **kwargs)
        self._forced_path = path

    def call(self, sequences, initial_state=None, mask=None, training=False):
        with keras_lstm.layers.force_route(self._forced_path):
            return super().call(sequences, initial_state, mask, training)


FORCED_PATHS = {
    path: (lambda units, path=path: _RoutedLSTM(units, path), {})
    for path in (SequencePath.PARALLEL, SequencePath.GENERIC)
}

GRID_UNITS = (32, 64, 128, 256, 512)
GRID_BATCHES = (1, 16, 64, 256)


def _verdict(ratios, band):
    """"faster" / "slower" where every run is beyond the control's band."""
    if all(r > band[1] for r in ratios):
        return "faster"
    if all(r < band[0] for r in ratios):
        return "slower"
    return "noise"


def grid(args, grid_units, grid_batches, forced_paths):
    """`keras_lstm.LSTM` (routed, and each path forced) against Keras.

    Times every shape of `grid_units` x `grid_batches` `args.runs` times;
    with `forced_paths`, each TensorFlow path forced too (`--units-sweep`
    is the one-batch case). Every ratio is Keras's time over ours: above 1
    is faster. With `args.jit`, every model is compiled with
    `jit_compile=True`, Keras's and the control included.
    """
    compile_kwargs = XLA if args.jit else {}
    candidates = {
        name: (make, compile_kwargs)
        for name, (make, _) in (
            (KERAS, CANDIDATES[KERAS]),
            # The control: keras.layers.LSTM against itself, the noise
            # floor of every ratio.
            (CONTROL, CANDIDATES[KERAS]),
            (OURS, CANDIDATES[OURS]),
            *(FORCED_PATHS.items() if forced_paths else ()),
        )
    }
    mode = "jit_compile=True" if args.jit else "Keras's default compile"
    lines = [
        f"CPU: {cpu_description()}.",
        f"Measured {machine_load()} (other processes share the cores: read "
        "the control).",
        "",
        f"T={args.timesteps}, F={args.features}; median of {args.repeats} "
        f"interleaved runs, {args.runs} runs per shape ('/' between them); "
        f"{mode} for every model. Ratio: keras.layers.LSTM's time over "
        "keras_lstm.LSTM's (above 1: keras_lstm is faster); `route` is the "
        "path keras_lstm.LSTM takes (train / inference where they differ), "
        "`parallel` / `generic` each path forced; `control` is "
        "keras.layers.LSTM timed against a second copy of itself, the "
        "noise floor. The layer takes the parallel path from "
        f"PARALLEL_MIN_UNITS = {keras_lstm.layers.PARALLEL_MIN_UNITS} units "
        f"(at a batch of at most {keras_lstm.layers.SMALL_BATCH}: "
        f"{keras_lstm.layers.SMALL_BATCH_MIN_UNITS}); under XLA it takes "
        "the xla path.",
        "",
    ]
    header = (
        "| units | batch | route | train | inference | train: control "
        "| inference: control |"
    )
    rule = "|---|---|---|---|---|---|---|"
    timed = [OURS, CONTROL]
    if forced_paths:
        header += (
            " train: parallel | train: generic | inference: parallel "
            "| inference: generic |"
        )
        rule += "---|---|---|---|"
        timed += list(FORCED_PATHS)
    lines += [header, rule]
    print("\n".join(lines), flush=True)
    rows = []
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
            # ratios[phase][name]: one ratio per run.
            ratios = {"train": {}, "inference": {}}
            for _ in range(args.runs):
                train, infer = time_models(models, x, y, args.repeats)
                for phase, times in (("train", train), ("inference", infer)):
                    for name in timed:
                        ratios[phase].setdefault(name, []).append(
                            times[KERAS] / times[name]
                        )
            layer = models[OURS].layers[0]
            route = " / ".join(
                dict.fromkeys(
                    layer.sequence_path(
                        training=phase, batch_size=batch, jit_compile=args.jit
                    )
                    for phase in (True, False)
                )
            )

            def cell(phase, name, ratios=ratios):
                return "/".join(f"{r:.2f}x" for r in ratios[phase][name])

            row = (
                f"| {units} | {batch} | {route} | {cell('train', OURS)} | "
                f"{cell('inference', OURS)} | {cell('train', CONTROL)} | "
                f"{cell('inference', CONTROL)} |"
            )
            if forced_paths:
                row += " ".join(
                    f" {cell(phase, path)} |"
                    for phase in ("train", "inference")
                    for path in FORCED_PATHS
                )
            lines.append(row)
            rows.append((units, batch, ratios))
            print(row, flush=True)
            keras.backend.clear_session()
    lines += ["", *summarize(rows)]
    print("\n".join(lines[-2:]))
    return "\n".join(lines)


def summarize(rows):
    """The control's band, the lowest ratio, and the cells beyond the band.

    A cell is "faster" or "slower" only where every run's ratio lies beyond
    the control's band over the whole grid; routing rules may move only on
    those cells.
    """
    out = []
    for phase in ("train", "inference"):
        controls = [r for *_, ratios in rows for r in ratios[phase][CONTROL]]
        band = (min(controls), max(controls))
        ours = [min(ratios[phase][OURS]) for *_, ratios in rows]
        verdicts = {
            (units, batch): _verdict(ratios[phase][OURS], band)
            for units, batch, ratios in rows
        }
        decided = {
            kind: [f"{u}x{b}" for (u, b), v in verdicts.items() if v == kind]
            for kind in ("faster", "slower")
        }
        out.append(
            f"{phase}: control band {band[0]:.2f}x-{band[1]:.2f}x; lowest "
            f"ratio of keras_lstm.LSTM {min(ours):.2f}x; beyond the band in "
            f"every run (units x batch): faster "
            f"{', '.join(decided['faster']) or 'none'}; slower "
            f"{', '.join(decided['slower']) or 'none'}."
        )
    return out


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
    parser.add_argument(
        "--jit",
        action="store_true",
        help="in --grid, compile every model with jit_compile=True",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=2,
        help="in --grid, timings per shape that must agree",
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
        args.batch, args.timesteps, args.repeats, args.runs = 8, 10, 3, 1
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
        write(table, "grid_jit.md" if args.jit else "grid.md", echo=False)
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
    lines = [
        f"CPU: {cpu_description()}.",
        f"Measured {machine_load()} (other processes share the cores: read "
        "the control).",
        "",
        f"B={args.batch}, T={args.timesteps}, F={args.features}, "
        f"U={args.units}; median of {args.repeats} interleaved runs. Matmul "
        f"reaches {gflops:.0f} GFLOP/s here, so a train step's "
        f"{train_flops / 1e9:.2f} GFLOP take at least {train_roof:.1f} ms and "
        f"an inference call's {forward_flops / 1e9:.2f} GFLOP "
        f"{infer_roof:.1f} ms (the roofs). `vs Keras`: keras.layers.LSTM's "
        "time (default compile) over the row's (above 1: faster); the "
        "control row is keras.layers.LSTM against a second copy of itself, "
        "the noise floor.",
        "",
        "| layer | train (ms) | vs Keras | x roof | "
        "inference (ms) | vs Keras | x roof |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in models:
        lines.append(
            f"| {name} | {train[name] * 1e3:.1f} | "
            f"{train[KERAS] / train[name]:.2f}x | "
            f"{train[name] * 1e3 / train_roof:.1f} | "
            f"{infer[name] * 1e3:.1f} | {infer[KERAS] / infer[name]:.2f}x | "
            f"{infer[name] * 1e3 / infer_roof:.1f} |"
        )
    lines += [
        "",
        "Like for like, keras.layers.LSTM's time over keras_lstm.LSTM's "
        "(train / inference):",
        "",
    ]
    lines += [
        f"- {name}: {t:.2f}x / {i:.2f}x"
        for name, (t, i) in like_for_like(train, infer).items()
    ]
    write("\n".join(lines), "speed.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
