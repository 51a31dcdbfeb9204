"""How train-step and inference time scale with sequence length and width.

For `keras.layers.LSTM` and `keras_lstm.LSTM` (B=64, F=32, Adam): time per
train step and per inference call against T in {10, 30, 100, 300, 1000} at
U=128, and against U in {32, 64, 128, 256, 512} at T=100. Median of a few
interleaved calls each. Writes `benchmarks/results/scaling.md` and
`scaling.png`.

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


def step_ms(timesteps, units, repeats):
    """Median train-step and inference ms of each layer, interleaved."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, timesteps, FEATURES)).astype("float32")
    y = rng.integers(0, 10, size=(BATCH,))
    models = build_models(BATCH, timesteps, FEATURES, units)
    calls = {}
    for n in LAYERS:
        calls[("train", n)] = lambda m=models[n]: m.train_on_batch(x, y)
        calls[("inference", n)] = lambda m=models[n]: m.predict_on_batch(x)
    medians = time_interleaved(calls, repeats)
    keras.utils.clear_session()
    return {key: 1e3 * seconds for key, seconds in medians.items()}


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
        "T (U=128)": [(t, 128, step_ms(t, 128, repeats)) for t in lengths],
        "U (T=100)": [(100, u, step_ms(100, u, repeats)) for u in widths],
    }
    lines = [
        f"Time in ms, B={BATCH}, F={FEATURES}, Adam; median of {repeats} "
        f"interleaved calls; {os.cpu_count()} CPU cores. Speed-up is "
        "keras.layers.LSTM's time over keras_lstm.LSTM's.",
        "",
        "| sweep | T | U | train: Keras | train: ours | speed-up "
        "| inference: Keras | inference: ours | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sweep, rows in sweeps.items():
        for t, u, ms in rows:
            cells = []
            for mode in ("train", "inference"):
                ref = ms[(mode, "keras.layers.LSTM")]
                ours = ms[(mode, "keras_lstm.LSTM")]
                cells.append(f"{ref:.1f} | {ours:.1f} | {ref / ours:.2f}x")
            lines.append(f"| {sweep} | {t} | {u} | {' | '.join(cells)} |")
    table = "\n".join(lines)
    print(table)
    if args.quick:
        return 0

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 8))
    for row, mode in zip(axes, ("train", "inference"), strict=True):
        for axis, (sweep, rows) in zip(row, sweeps.items(), strict=True):
            xs = [t if sweep.startswith("T") else u for t, u, _ in rows]
            for name in LAYERS:
                times = [ms[(mode, name)] for _, _, ms in rows]
                axis.plot(xs, times, "o-", label=name)
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel(sweep)
            axis.set_ylabel(f"{mode} (ms)")
            axis.legend()
    figure.tight_layout()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / "scaling.png", dpi=100)
    (out / "scaling.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
