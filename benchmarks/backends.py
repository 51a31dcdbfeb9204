"""keras_lstm.LSTM against keras.layers.LSTM on every installed backend.

For each Keras backend installed (TensorFlow, JAX, PyTorch) it starts a
fresh process with `KERAS_BACKEND` set (the backend is fixed per process)
and times, interleaved call by call, on the same weights:

- a train step (`model.train_on_batch`, Adam);
- an inference call (`model.predict_on_batch`);

for `keras.layers.LSTM` and `keras_lstm.LSTM` at B=64, T=100, F=32, U=128.
It prints the CPU (lscpu's model name and its AVX2 / AVX-512 flags), a
markdown table of medians and ratios (above 1: keras_lstm is faster) with
the route `keras_lstm.LSTM.sequence_path()` took, and writes it to
`results/backends.md`.

    python benchmarks/backends.py                     # every backend
    python benchmarks/backends.py --backends jax      # one
    python benchmarks/backends.py --quick             # a smoke run

`--device gpu` measures on a GPU instead (`benchmarks/gpu.py`); on a CPU
the workers hide any GPU from the backends.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import platform
import subprocess
import sys

ALL_BACKENDS = ("tensorflow", "jax", "torch")
NAMES = ("keras.layers.LSTM", "keras_lstm.LSTM")


def installed_backends(candidates=ALL_BACKENDS):
    return [b for b in candidates if importlib.util.find_spec(b) is not None]


def cpu_description():
    """lscpu's model name and the AVX2 / AVX-512 flags, in one line."""
    model, flags = platform.processor() or "unknown CPU", []
    try:
        lscpu = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "Flags":
            flags = sorted(
                f
                for f in value.split()
                if f == "avx2" or f.startswith("avx512")
            )
    return (
        f"{model}; {os.cpu_count()} cores; "
        f"flags: {' '.join(flags) if flags else 'no avx2/avx512'}"
    )


def worker(args):
    """Runs in a process whose KERAS_BACKEND is set; prints one JSON line."""
    import keras
    import numpy as np

    import keras_lstm

    # speed.py's interleaved timer; it imports Keras and keras_lstm, which
    # this worker has just imported on its backend.
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from speed import time_interleaved

    makers = {
        "keras.layers.LSTM": lambda: keras.layers.LSTM(args.units),
        "keras_lstm.LSTM": lambda: keras_lstm.LSTM(args.units),
    }
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.timesteps, args.features)).astype(
        "float32"
    )
    y = rng.integers(0, 10, size=(args.batch,))
    models, weights = {}, None
    for name, make in makers.items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((args.timesteps, args.features)),
                make(),
                keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        models[name] = model
    train = time_interleaved(
        {n: (lambda m=m: m.train_on_batch(x, y)) for n, m in models.items()},
        args.repeats,
    )
    infer = time_interleaved(
        {n: (lambda m=m: m.predict_on_batch(x)) for n, m in models.items()},
        args.repeats,
    )
    route = models["keras_lstm.LSTM"].layers[0].sequence_path()
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "route": route,
                "train": train,
                "infer": infer,
            }
        )
    )
    return 0


def _device_env(device, backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if device == "cpu":
        # Hide any GPU, so that each backend measures its CPU path.
        env["CUDA_VISIBLE_DEVICES"] = ""
        if backend == "jax":
            env["JAX_PLATFORMS"] = "cpu"
    return env


def _gpu_visible(backend):
    code = {
        "jax": "import jax; "
        "print(any(d.platform == 'gpu' for d in jax.devices()))",
        "torch": "import torch; print(torch.cuda.is_available())",
        "tensorflow": "import tensorflow as tf; "
        "print(bool(tf.config.list_physical_devices('GPU')))",
    }[backend]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_device_env("gpu", backend),
    )
    return result.returncode == 0 and result.stdout.strip().endswith("True")


def main(argv=None, default_backends=ALL_BACKENDS, device="cpu"):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=ALL_BACKENDS)
    parser.add_argument("--device", choices=("cpu", "gpu"), default=device)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.timesteps, args.repeats = 8, 10, 3
    if args.worker:
        return worker(args)

    backends = installed_backends(args.backends or default_backends)
    if args.device == "gpu":
        backends = [b for b in backends if _gpu_visible(b)]
        if not backends:
            print("No installed backend sees a GPU; nothing to measure.")
            return 0
    where = cpu_description() if args.device == "cpu" else "GPU"
    if args.device == "gpu" and "jax" in backends:
        where = (
            subprocess.run(
                [sys.executable, "-c", "import jax; print(jax.devices()[0])"],
                capture_output=True,
                text=True,
                env=_device_env("gpu", "jax"),
            ).stdout.strip()
            or where
        )
    lines = [
        f"{args.device.upper()}: {where}.",
        f"B={args.batch}, T={args.timesteps}, F={args.features}, "
        f"U={args.units}, Adam; median of {args.repeats} interleaved runs. "
        "Ratio: keras.layers.LSTM's time over keras_lstm.LSTM's (above 1: "
        "keras_lstm is faster).",
        "",
        "| backend | route | train: Keras (ms) | train: ours (ms) | train "
        "ratio | inference: Keras (ms) | inference: ours (ms) | inference "
        "ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    status = 0
    for backend in backends:
        worker_argv = [
            sys.executable,
            __file__,
            "--worker",
            f"--batch={args.batch}",
            f"--timesteps={args.timesteps}",
            f"--features={args.features}",
            f"--units={args.units}",
            f"--repeats={args.repeats}",
        ]
        result = subprocess.run(
            worker_argv,
            capture_output=True,
            text=True,
            env=_device_env(args.device, backend),
        )
        if result.returncode != 0:
            print(f"| {backend} | failed: {result.stderr.strip()[-300:]} |")
            status = 1
            continue
        data = json.loads(result.stdout.strip().splitlines()[-1])
        train, infer = data["train"], data["infer"]
        k, o = NAMES
        lines.append(
            f"| {backend} | {data['route']} | {train[k] * 1e3:.1f} | "
            f"{train[o] * 1e3:.1f} | {train[k] / train[o]:.2f}x | "
            f"{infer[k] * 1e3:.1f} | {infer[o] * 1e3:.1f} | "
            f"{infer[k] / infer[o]:.2f}x |"
        )
        print(lines[-1], flush=True)
    if not args.quick:
        out = pathlib.Path(
            args.out
            or pathlib.Path(__file__).parent
            / "results"
            / f"{'backends' if args.device == 'cpu' else 'gpu'}.md"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
