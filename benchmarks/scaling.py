"""How train-step time scales with sequence length and width.

For `keras.layers.LSTM` and `keras_lstm.LSTM` (B=64, F=32, Adam): time per
train step against T in {10, 30, 100, 300, 1000} at U=128, and against U in
{32, 64, 128, 256, 512} at T=100. Median of a few interleaved steps each.
Writes `benchmarks/results/scaling.md` and `scaling.png`.

    python benchmarks/scaling.py            # the table and plot (minutes)
    python benchmarks/scaling.py --quick    # a smoke run
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from speed import build_models, time_interleaved  # noqa: E402

LAYERS = ("keras.layers.LSTM", "keras_lstm.LSTM")
BATCH, FEATURES = 64, 32


def train_step_ms(timesteps, units, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, timesteps, FEATURES)).astype("float32")
    y = rng.integers(0, 10, size=(BATCH,))
    models = build_models(BATCH, timesteps, FEATURES, units)
    medians = time_interleaved(
        {n: (lambda m=models[n]: m.train_on_batch(x, y)) for n in LAYERS},
        repeats,
    )
    keras.utils.clear_session()
    return {name: 1e3 * seconds for name, seconds in medians.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", default=str(pathlib.Path(__file__).parent / "results")
    )
    args = parser.parse_args(argv)
    lengths = [10, 30] if args.quick else [10, 30, 100, 300, 1000]
    widths = [32, 64] if args.quick else [32, 64, 128, 256, 512]
    repeats = 2 if args.quick else args.repeats

    sweeps = {
        "T (U=128)": [
            (t, 128, train_step_ms(t, 128, repeats)) for t in lengths
        ],
        "U (T=100)": [
            (100, u, train_step_ms(100, u, repeats)) for u in widths
        ],
    }
    lines = [
        f"Train step (ms), B={BATCH}, F={FEATURES}, Adam; median of "
        f"{repeats} interleaved steps; {os.cpu_count()} CPU cores.",
        "",
        "| sweep | T | U | keras.layers.LSTM | keras_lstm.LSTM | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for sweep, rows in sweeps.items():
        for t, u, ms in rows:
            ref, ours = ms["keras.layers.LSTM"], ms["keras_lstm.LSTM"]
            lines.append(
                f"| {sweep} | {t} | {u} | {ref:.1f} | {ours:.1f} | "
                f"{ref / ours:.2f}x |"
            )
    table = "\n".join(lines)
    print(table)
    if args.quick:
        return 0

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, (sweep, rows) in zip(axes, sweeps.items(), strict=True):
        xs = [t if sweep.startswith("T") else u for t, u, _ in rows]
        for name in LAYERS:
            axis.plot(xs, [ms[name] for _, _, ms in rows], "o-", label=name)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(sweep)
        axis.set_ylabel("train step (ms)")
        axis.legend()
    figure.tight_layout()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / "scaling.png", dpi=100)
    (out / "scaling.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
