"""Levers for `keras_lstm.LSTM` under XLA, against `keras.layers.LSTM` (XLA).

Under `jit_compile=True` the arithmetic is XLA's, so the levers that the
default path refuses for bitwise parity can be measured there. Each
candidate runs `tf_sequence.lstm_sequence` with one set of options, inside a
model compiled with `jit_compile=True`; all are timed in one process,
interleaved, against `keras.layers.LSTM` with `jit_compile=True` and a
second copy of it (the control, the noise floor). It prints the CPU, the
date and load, each candidate's compile time and its largest output
difference from Keras's, and medians with ratios (Keras-XLA's time over the
candidate's: above 1 is faster). It writes `results/xla_levers.md`.

    python benchmarks/xla_levers.py                  # B=64 T=100 F=32 U=128
    python benchmarks/xla_levers.py --timesteps 10 --unroll

The levers: `parallel_gates` (the four gate products side by side, with
the default path's exact gradient or, `exact_gradient=False`, autodiff's),
`project_first` (the input projection for all steps before the loop) and
`unroll` (a Python loop over a static time axis). `--unroll` adds the
unrolled candidates; XLA's compile time grows with the number of steps, so
keep it for short sequences.
"""

import argparse
import os
import pathlib
import runpy
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm import tf_sequence  # noqa: E402

_speed = runpy.run_path(str(pathlib.Path(__file__).with_name("speed.py")))
cpu_description = _speed["cpu_description"]
machine_load = _speed["machine_load"]
time_interleaved = _speed["time_interleaved"]

KERAS_XLA = "keras.layers.LSTM"
CONTROL = "keras.layers.LSTM (control)"

LEVERS = {
    "xla route (one product)": {},
    "gates side by side": {"parallel_gates": True},
    "side by side, autodiff gradient": {
        "parallel_gates": True,
        "exact_gradient": False,
    },
    "project first": {"project_first": True},
    "side by side + project first": {
        "parallel_gates": True,
        "project_first": True,
    },
}
UNROLLED = {
    "unroll": {"unroll": True},
    "unroll + project first": {"unroll": True, "project_first": True},
}


class LeverLSTM(keras_lstm.LSTM):
    """`keras_lstm.LSTM` that always runs `tf_sequence` with `options`."""

    def __init__(self, units, options, **kwargs):
        super().__init__(units, **kwargs)
        self._options = options

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        last_output, outputs, h, c = tf_sequence.lstm_sequence(
            sequences,
            initial_state[0],
            initial_state[1],
            tf.convert_to_tensor(cell.kernel),
            tf.convert_to_tensor(cell.recurrent_kernel),
            cell.activation,
            cell.recurrent_activation,
            bias=tf.convert_to_tensor(cell.bias),
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            **self._options,
        )
        return last_output, outputs, [h, c]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--unroll", action="store_true")
    parser.add_argument(
        "--out",
        default=str(
            pathlib.Path(__file__).parent / "results" / "xla_levers.md"
        ),
    )
    args = parser.parse_args(argv)
    levers = {**LEVERS, **(UNROLLED if args.unroll else {})}
    shape = (args.batch, args.timesteps, args.features)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype("float32")
    y = rng.integers(0, 10, size=(args.batch,))
    models, weights = {}, None
    makers = {
        KERAS_XLA: lambda: keras.layers.LSTM(args.units),
        CONTROL: lambda: keras.layers.LSTM(args.units),
        **{
            name: (lambda o=options: LeverLSTM(args.units, o))
            for name, options in levers.items()
        },
    }
    for name, make in makers.items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input(shape[1:], batch_size=args.batch), make()]
            + [keras.layers.Dense(10)]
        )
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        weights = weights or model.get_weights()
        model.set_weights(weights)
        models[name] = model
    reference = models[KERAS_XLA].predict_on_batch(x)
    compile_s, error = {}, {}
    for name, model in models.items():
        start = time.perf_counter()
        error[name] = float(
            np.max(np.abs(model.predict_on_batch(x) - reference))
        )
        model.train_on_batch(x, y)
        compile_s[name] = time.perf_counter() - start
    train = time_interleaved(
        {n: (lambda m=m: m.train_on_batch(x, y)) for n, m in models.items()},
        args.repeats,
    )
    infer = time_interleaved(
        {n: (lambda m=m: m.predict_on_batch(x)) for n, m in models.items()},
        args.repeats,
    )
    lines = [
        f"CPU: {cpu_description()}.",
        f"Measured {machine_load()} (other processes share the cores: read "
        "the control).",
        "",
        f"B={args.batch}, T={args.timesteps}, F={args.features}, "
        f"U={args.units}; every model compiled with jit_compile=True; median "
        f"of {args.repeats} interleaved runs. Ratio: keras.layers.LSTM's "
        "time over the row's (above 1: faster). `max diff`: largest "
        "difference of the model's outputs from keras.layers.LSTM's (XLA). "
        "`compile`: the first predict and train step, tracing and XLA "
        "compilation included.",
        "",
        "| candidate | train (ms) | ratio | inference (ms) | ratio | "
        "max diff | compile (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in models:
        lines.append(
            f"| {name} | {train[name] * 1e3:.1f} | "
            f"{train[KERAS_XLA] / train[name]:.2f}x | "
            f"{infer[name] * 1e3:.1f} | "
            f"{infer[KERAS_XLA] / infer[name]:.2f}x | "
            f"{error[name]:.1e} | {compile_s[name]:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    out = pathlib.Path(args.out)
    if args.unroll or args.timesteps != 100:
        out = out.with_name(f"{out.stem}_t{args.timesteps}{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
