"""keras_lstm beyond TensorFlow: JAX without TensorFlow, and JAX sharding.

The Keras backend is fixed per process, so each check runs in a fresh
subprocess with `KERAS_BACKEND=jax` (`make test` also runs the parity suite,
tests/test_layers.py, under JAX as a separate pytest invocation).

Tolerance for DataParallel: 1e-5 absolute on every weight after 10 SGD
steps, as in tests/test_distribute.py: the two devices' gradients are summed
in a different order than one device sums the whole batch, which moves
results by float32 rounding only.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

ATOL = 1e-5

requires_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed"
)


def _run(code, *args, env=None, timeout=600):
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


_WITHOUT_TENSORFLOW = """
import sys


class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked in this test")


sys.meta_path.insert(0, BlockTensorFlow())

import keras
import numpy as np

import keras_lstm

assert keras.backend.backend() == "jax", keras.backend.backend()
x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
layer = keras_lstm.LSTM(4, return_sequences=True, dropout=0.1)
model = keras.Sequential(
    [
        keras.Input((5, 3)),
        keras.layers.Bidirectional(layer),
        keras.layers.RNN(keras_lstm.LSTMCell(3)),
    ]
)
model.compile(optimizer="adam", loss="mse")
model.fit(x, np.zeros((2, 3), "float32"), epochs=1, verbose=0)
# Bidirectional trains copies of `layer`.
forward = model.layers[0].forward_layer
assert forward.sequence_path() == "generic", forward.sequence_path()
assert keras_lstm.gate_activations(forward, x).h.shape == (2, 5, 4)
path = sys.argv[1]
model.save(path)
loaded = keras.saving.load_model(path)
assert np.array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
assert "tensorflow" not in sys.modules
print("ok")
"""


@requires_jax
@pytest.mark.slow
def test_keras_lstm_trains_saves_and_loads_on_jax_without_tensorflow(
    tmp_path,
):
    out = _run(
        _WITHOUT_TENSORFLOW,
        str(tmp_path / "model.keras"),
        env={"KERAS_BACKEND": "jax"},
    )
    assert out.strip().endswith("ok")


_DATA_PARALLEL = """
import sys

import jax
import keras
import numpy as np

import keras_lstm

assert len(jax.devices("cpu")) == 2, jax.devices()
KINDS = ("layer", "cell")
rng = np.random.default_rng(0)
x = rng.standard_normal((32, 12, 3)).astype("float32")
y = rng.standard_normal((32, 2)).astype("float32")
initial = {
    kind: [
        (0.3 * rng.standard_normal(shape)).astype("float32")
        for shape in [(3, 24), (6, 24), (24,), (6, 2), (2,)]
    ]
    for kind in KINDS
}


def build(kind):
    recurrent = (
        keras.layers.RNN(keras_lstm.LSTMCell(6))
        if kind == "cell"
        else keras_lstm.LSTM(6)
    )
    model = keras.Sequential(
        [keras.Input((12, 3)), recurrent, keras.layers.Dense(2)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.set_weights(initial[kind])
    return model


data_parallel = keras.distribution.DataParallel(devices=jax.devices("cpu"))
results = {}
for kind in KINDS:
    results[f"{kind}/initial"] = initial[kind]
    for sharded in (False, True):
        keras.distribution.set_distribution(
            data_parallel if sharded else None
        )
        model = build(kind)
        model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)
        if kind == "layer":
            assert model.layers[0].sequence_path() == "generic"
        if sharded:
            kernel = model.layers[0].weights[0].value
            assert len(kernel.sharding.device_set) == 2, kernel.sharding
        results[f"{kind}/{'sharded' if sharded else 'single'}"] = (
            model.get_weights()
        )
keras.distribution.set_distribution(None)
np.savez(
    sys.argv[1],
    **{
        f"{key}/{i}": w
        for key, weights in results.items()
        for i, w in enumerate(weights)
    },
)
"""


@requires_jax
@pytest.mark.slow
def test_data_parallel_on_jax_gives_the_weights_of_one_device(tmp_path):
    path = tmp_path / "weights.npz"
    _run(
        _DATA_PARALLEL,
        str(path),
        env={
            "KERAS_BACKEND": "jax",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        },
    )
    with np.load(path) as data:
        trained = {key: data[key] for key in data.files}
    for kind in ("layer", "cell"):

        def weights(run, kind=kind):
            return [trained[f"{kind}/{run}/{i}"] for i in range(5)]

        for a, b in zip(weights("single"), weights("sharded"), strict=True):
            err = float(np.max(np.abs(a - b)))
            assert err <= ATOL, f"{kind}: max abs weight difference {err:.3g}"
        # Training moved the weights, so the equality above is not vacuous.
        moved = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(weights("single"), weights("initial"), strict=True)
        )
        assert moved > 1e-2, f"{kind}: weights moved by only {moved:.3g}"
