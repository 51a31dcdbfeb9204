"""Size and latency of LSTM TFLite files on LiteRT, one CPU thread.

One LSTM layer, B=1, T=100, F=32, U=128 (the shape in
/work/shared/TFLITE_LSTM_NOTES.md), with the same weights in three files
per quantization mode:

- **fused (ours)**: `keras_lstm.export.to_tflite`, one
  `UNIDIRECTIONAL_SEQUENCE_LSTM` op;
- **unrolled**: `keras.layers.LSTM(unroll=True)` converted with
  `tf.lite.TFLiteConverter.from_concrete_functions`, 100 copies of the step
  in builtin ops;
- **tf_keras fused**: `tf_keras.layers.LSTM` converted with
  `TFLiteConverter.from_keras_model`, the reference path to the same fused
  kernel.

Each file runs on `ai_edge_litert.interpreter.Interpreter(num_threads=1)`;
the LSTM state is reset before every timed `invoke()` (outside the timer)
and the median of many runs is reported, with the max abs error against
the Keras model on the timed input. The table is printed and written to
benchmarks/results/tflite_latency.md. Run from the repository root:

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/tflite_latency.py

It takes a few minutes on two cores, mostly in the converter.
"""

import os

# tf_keras is the reference here; `from_keras_model` needs `tf.keras` to be
# tf_keras for its models. Only this script sets it, before TF is imported.
# keras_lstm uses Keras 3 through `import keras`, which this does not change.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import ai_edge_litert  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm.export import Quantization, to_tflite  # noqa: E402
from keras_lstm.export.flatbuffer import op_names  # noqa: E402

BATCH, TIMESTEPS, FEATURES, UNITS = 1, 100, 32, 128
MODES = (
    Quantization.NONE,
    Quantization.FLOAT16,
    Quantization.DYNAMIC,
    Quantization.INT8,
)
CALIBRATION_SEQUENCES = 32
RESULTS = pathlib.Path(__file__).parent / "results" / "tflite_latency.md"


def build_models(seed=0):
    """Our model and its Keras 3 unrolled and tf_keras twins, same weights."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((TIMESTEPS, FEATURES), batch_size=BATCH)
    ours = keras.Model(inputs, keras_lstm.LSTM(UNITS)(inputs))
    weights = ours.get_weights()

    unrolled_inputs = keras.Input((TIMESTEPS, FEATURES), batch_size=BATCH)
    unrolled = keras.Model(
        unrolled_inputs,
        keras.layers.LSTM(UNITS, unroll=True)(unrolled_inputs),
    )
    unrolled.set_weights(weights)

    legacy_inputs = tf_keras.Input((TIMESTEPS, FEATURES), batch_size=BATCH)
    legacy = tf_keras.Model(
        legacy_inputs, tf_keras.layers.LSTM(UNITS)(legacy_inputs)
    )
    legacy.set_weights(weights)
    return ours, unrolled, legacy


def configure(converter, mode, calibration):
    """Converter settings for `mode`, as to_tflite uses them."""
    if mode is Quantization.NONE:
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode is Quantization.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif mode is Quantization.INT8:
        converter.representative_dataset = lambda: (
            [calibration[i : i + BATCH]]
            for i in range(0, len(calibration), BATCH)
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def convert_unrolled(model, mode, calibration):
    # The converter needs a trackable holding the tf.Variables to freeze
    # them (keras_lstm.export.tflite does the same).
    module = tf.Module()
    module.weights = [v.value for v in model.variables]
    function = tf.function(
        lambda x: model(x, training=False),
        input_signature=[
            tf.TensorSpec((BATCH, TIMESTEPS, FEATURES), tf.float32)
        ],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], module
    )
    return configure(converter, mode, calibration).convert()


def convert_legacy(model, mode, calibration):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return configure(converter, mode, calibration).convert()


def convert_ours(model, mode, calibration, directory):
    path = os.path.join(directory, f"ours_{mode.value}.tflite")
    to_tflite(
        model,
        path,
        quantization=mode,
        representative_data=calibration
        if mode.needs_representative_data
        else None,
    )
    with open(path, "rb") as f:
        return f.read()


class _Timed:
    """One file on LiteRT, one thread, with its input set."""

    def __init__(self, content, x):
        self.interpreter = Interpreter(model_content=content, num_threads=1)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        scale, zero_point = self.input["quantization"]
        dtype = self.input["dtype"]
        if scale:
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale) + zero_point, info.min, info.max)
        self.value = x.astype(dtype)
        self.times = []

    def invoke(self):
        # The fused op keeps h and c in variable tensors across invokes.
        self.interpreter.reset_all_variables()
        self.interpreter.set_tensor(self.input["index"], self.value)
        start = time.perf_counter_ns()
        self.interpreter.invoke()
        self.times.append((time.perf_counter_ns() - start) / 1e6)

    def output_float(self):
        y = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        y = y.astype(np.float32)
        return (y - zero_point) * scale if scale else y


def measure(files, x, runs, warmup):
    """Times every file, interleaved: run r of each file, then run r + 1.

    Interleaving spreads the load of other processes over all files alike,
    so their ratios hold on a busy machine.
    """
    timed = {key: _Timed(content, x) for key, content in files.items()}
    for _ in range(warmup):
        for t in timed.values():
            t.invoke()
    for t in timed.values():
        t.times.clear()
    for _ in range(runs):
        for t in timed.values():
            t.invoke()
    return timed


def lstm_op_summary(content):
    ops = op_names(content)
    fused = ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM")
    if fused:
        return f"{fused} fused LSTM + {len(ops) - fused}"
    return f"{len(ops)} ops" + (" (WHILE)" if "WHILE" in ops else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    calibration = rng.normal(
        size=(CALIBRATION_SEQUENCES, TIMESTEPS, FEATURES)
    ).astype(np.float32)
    x = calibration[:BATCH]
    ours, unrolled, legacy = build_models()
    # The reference is keras.layers.LSTM (the unrolled twin), not ours.
    expected = np.asarray(unrolled(x, training=False))

    started = time.perf_counter()
    files = {}
    with tempfile.TemporaryDirectory() as directory:
        for mode in MODES:
            print(f"converting {mode.value} ...", flush=True)
            files["fused (ours)", mode] = convert_ours(
                ours, mode, calibration, directory
            )
            files["unrolled (Keras 3)", mode] = convert_unrolled(
                unrolled, mode, calibration
            )
            files["fused (tf_keras)", mode] = convert_legacy(
                legacy, mode, calibration
            )
    print(f"timing {len(files)} files x {args.runs} runs ...", flush=True)
    timed = measure(files, x, args.runs, args.warmup)
    baseline = statistics.median(timed["fused (ours)", Quantization.NONE].times)
    rows = []
    for (name, mode), content in files.items():
        t = timed[name, mode]
        median = statistics.median(t.times)
        rows.append(
            (
                name,
                mode.value,
                len(content) / 1024,
                lstm_op_summary(content),
                median,
                statistics.quantiles(t.times, n=10)[-1],
                median / baseline,
                float(np.max(np.abs(t.output_float() - expected))),
            )
        )
    elapsed = time.perf_counter() - started

    table = render(rows, args, elapsed)
    print()
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(f"wrote {RESULTS}")
    return 0


def render(rows, args, elapsed):
    lines = [
        "# LSTM TFLite files on LiteRT, one thread",
        "",
        f"B={BATCH}, T={TIMESTEPS}, F={FEATURES}, U={UNITS}; one LSTM layer "
        "(last output), same weights in every file. Median and p90 of "
        f"{args.runs} `invoke()` calls per file after {args.warmup} warm-up "
        "calls, the files interleaved call by call; state reset before each "
        "call, outside the timer. Error: max abs "
        "difference from the Keras model on the timed input "
        "(dequantized).",
        "",
        f"Measured {datetime.date.today().isoformat()} on "
        f"{_cpu_name()} ({platform.machine()}), TensorFlow {tf.__version__}, "
        f"ai-edge-litert {ai_edge_litert.__version__}, Keras "
        f"{keras.__version__}, tf_keras {tf_keras.__version__}; "
        f"{elapsed:.0f} s including conversions.",
        "",
        "| file | mode | size (KiB) | ops | median (ms) | p90 (ms) | "
        "median / fused float | max abs error |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, mode, size, ops, median, p90, ratio, error in rows:
        lines.append(
            f"| {name} | {mode} | {size:.1f} | {ops} | {median:.3f} | "
            f"{p90:.3f} | {ratio:.2f} | {error:.2g} |"
        )
    lines += [
        "",
        "Which mode for which target:",
        "- **dynamic** (int8 weights, float activations) for phone and "
        "desktop CPUs: a quarter of the float file and the fastest fused "
        "row.",
        "- **int8** (full integer) for microcontrollers (TFLite Micro, "
        "CMSIS-NN) and Ethos-U NPUs (Vela). On x86 LiteRT it is the slowest "
        "fused row: TFLite's integer LSTM kernel is not an XNNPACK kernel. "
        "The unrolled int8 file runs faster here (its int8 FULLY_CONNECTED "
        "ops have optimized kernels) but is about ten times larger and "
        "has ~1500 ops.",
        "- **float16** for GPU delegates; on CPU its weights are "
        "dequantized once at load, so it runs at float speed in half the "
        "size.",
        "- **none** (float32) as the reference, or where size does not matter.",
        "",
        "The fused files from keras_lstm and from tf_keras are the same op "
        "with the same weights; keras_lstm's is smaller by the dead LSTM "
        "state buffers to_tflite drops. Where their latencies differ here, "
        "it is this benchmark's: on 2026-12-01 (Intel Xeon) tf_keras's "
        "float files read 1.2x slower in two runs of this table, while the "
        "two float32 files timed alone, interleaved, read 0.92 and 0.94 ms; "
        "on 2026-11-24 (AMD EPYC) this table had them 8% the other way.",
        "",
    ]
    return "\n".join(lines)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
