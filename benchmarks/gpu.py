"""keras_lstm.LSTM against keras.layers.LSTM on a GPU, per backend.

`benchmarks/backends.py` with `--device gpu`: for each installed backend
that sees a GPU, a train step (Adam) and an inference call of both layers
at B=64, T=100, F=32, U=128, interleaved, medians and ratios, with the route
`keras_lstm.LSTM` took (`"cudnn"` where the backend's cuDNN kernel applies).
It measures JAX and PyTorch by default and needs no TensorFlow; add
`--backends tensorflow jax torch` to include TensorFlow. Writes
`results/gpu.md`. Without a GPU it says so and exits 0.

    python benchmarks/gpu.py
    python benchmarks/gpu.py --quick
"""

import pathlib
import runpy

_BACKENDS = runpy.run_path(str(pathlib.Path(__file__).with_name("backends.py")))

if __name__ == "__main__":
    raise SystemExit(
        _BACKENDS["main"](default_backends=("jax", "torch"), device="gpu")
    )
