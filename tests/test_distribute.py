"""Training under `tf.distribute.MirroredStrategy` equals one device.

Logical devices must be configured before TensorFlow initialises them, so
each run happens in a fresh process with 2 logical CPUs.

Tolerance: 1e-5 absolute on every weight after 10 SGD steps. The two
replicas' gradients are summed in a different order than one device sums
the whole batch, which moves results by float32 rounding only.
"""

import subprocess
import sys

import numpy as np
import pytest

ATOL = 1e-5

_TRAIN = """
import contextlib
import sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras
import keras_lstm

KINDS = ("layer", "parallel", "cell")
out = sys.argv[1]
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


strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
results = {}
for kind in KINDS:
    results[f"{kind}/initial"] = initial[kind]
    for mirrored in (False, True):
        # "parallel": the layer's fast path, which 6 units would not take.
        with (
            keras_lstm.layers.force_route("parallel")
            if kind == "parallel"
            else contextlib.nullcontext()
        ):
            if mirrored:
                with strategy.scope():
                    model = build(kind)
            else:
                model = build(kind)
            model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)
            if kind != "cell":
                path = "parallel" if kind == "parallel" else "generic"
                assert model.layers[0].sequence_path() == path, kind
        results[f"{kind}/{'mirrored' if mirrored else 'single'}"] = (
            model.get_weights()
        )
np.savez(
    out,
    **{
        f"{key}/{i}": w
        for key, weights in results.items()
        for i, w in enumerate(weights)
    },
)
"""


def _train_in_fresh_process(tmp_path):
    """Weights before and after 10 SGD steps, per kind and placement."""
    path = tmp_path / "weights.npz"
    result = subprocess.run(
        [sys.executable, "-c", _TRAIN, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


# One test, one subprocess for all kinds: starting TensorFlow twice more
# would cost more than the training itself.
@pytest.mark.slow
def test_mirrored_strategy_gives_the_weights_of_one_device(tmp_path):
    trained = _train_in_fresh_process(tmp_path)
    for kind in ("layer", "parallel", "cell"):

        def weights(run, kind=kind):
            return [trained[f"{kind}/{run}/{i}"] for i in range(5)]

        for a, b in zip(weights("single"), weights("mirrored"), strict=True):
            err = float(np.max(np.abs(a - b)))
            assert err <= ATOL, f"{kind}: max abs weight difference {err:.3g}"
        # Training moved the weights, so the equality above is not vacuous.
        moved = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(weights("single"), weights("initial"), strict=True)
        )
        assert moved > 1e-2, f"{kind}: weights moved by only {moved:.3g}"
