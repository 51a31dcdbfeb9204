"""The LSTM variants (peepholes, CIFG, layer norm, projection, clipping).

Three independent references:

- TFLite's own float kernel tests: `tests/data/tflite_lstm_golden.json`
  holds 10 cases parsed verbatim from LiteRT's `lstm_test.cc` and
  `unidirectional_sequence_lstm_test.cc` (Apache-2.0, The TensorFlow
  Authors; provenance in each case's `source` and in
  `../shared/data/tflite_lstm_golden.md`), loaded into `keras_lstm.LSTM`
  in Keras's layout.
- No golden clips, and none is batch-major with a batch above 1: those
  are checked against `_numpy_lstm`, a float64 NumPy implementation of
  TFLite's equations (`lstm_eval.cc`) written here, independently of
  `keras_lstm.recurrence`.
- Gradients: against float64 central differences of `_numpy_lstm`.

Runs on every Keras backend (`BACKEND_TESTS` in the Makefile).
"""

import json
import pathlib

import keras
import numpy as np
import pytest
from backends import BACKEND, outputs_and_gradients

import keras_lstm
from keras_lstm.layers import VARIANT_DEFAULTS, SequencePath

GOLDEN = pathlib.Path(__file__).parent / "data" / "tflite_lstm_golden.json"
# TFLite's kernel tests hold their goldens to 1e-5; the CIFG + layer-norm
# golden is printed to about 6 significant digits.
GOLDEN_ATOL = 1e-5
# float32 against float64 over 6 steps of at most 8 units: each step
# rounds a few dozen values; layer norm divides by a standard deviation
# that is not small here (weights ~N(0, 0.5)).
ATOL = 2e-6
# float32 gradients of ~200 operations against float64 central differences
# (step 1e-6, truncation error ~1e-12): float32 rounding, relative to the
# gradients' size (~1).
GRAD_ATOL = 2e-5

# Every variant on its own and the combinations TFLite's tests use.
VARIANTS = {
    "peephole": dict(use_peepholes=True),
    "cifg": dict(coupled_input_forget=True),
    "layer_norm": dict(use_layer_norm=True),
    "projection": dict(projection_units=3),
    "projection_bias": dict(projection_units=3, use_projection_bias=True),
    "cell_clip": dict(cell_clip=0.4),
    "projection_clip": dict(projection_units=3, projection_clip=0.15),
    "cifg_peephole": dict(coupled_input_forget=True, use_peepholes=True),
    "peephole_projection": dict(use_peepholes=True, projection_units=3),
    "layer_norm_projection": dict(
        use_layer_norm=True, use_peepholes=True, projection_units=3
    ),
    "cifg_layer_norm": dict(
        coupled_input_forget=True, use_peepholes=True, use_layer_norm=True
    ),
    "all": dict(
        use_peepholes=True,
        coupled_input_forget=True,
        use_layer_norm=True,
        projection_units=3,
        use_projection_bias=True,
        cell_clip=0.4,
        projection_clip=0.15,
    ),
}
UNITS, FEATURES, BATCH, STEPS = 5, 4, 3, 6


def _grid(names, elsewhere):
    """`names` on TensorFlow, `elsewhere` on the other backends.

    JAX compiles a new loop for every layer call (seconds each on 2 cores).
    The gate math is the same `keras.ops` code on every backend, and the
    10 goldens run everywhere; off TensorFlow the grids keep the options
    no golden has (the clips) and the combination of every option. Save and
    load, Bidirectional, stateful and dropout are Keras's own plumbing, the
    same code on every backend.
    """
    return names if BACKEND == "tensorflow" else elsewhere


NUMPY_GRID = _grid(sorted(VARIANTS), ["all", "cell_clip", "projection_clip"])
# Save and load, Bidirectional, stateful and dropout: Keras's plumbing
# around the cell. "all" carries every weight and option at once; the
# others add a variant without CIFG and one without a projection.
PLUMBING = _grid(
    ["all", "layer_norm_projection", "cifg_layer_norm", "peephole"],
    ["all", "layer_norm_projection"],
)
GRADIENTS = _grid(
    ["all", "layer_norm_projection", "cifg_layer_norm", "cell_clip"],
    ["all", "layer_norm_projection"],
)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_lstm(x, weights, variant, h0=None, c0=None):
    """TFLite's float LSTM (`lstm_eval.cc`, `LstmStepFloat`) in float64.

    Written from the equations in `../shared/data/tflite_lstm_golden.md`,
    gate by gate, in Keras's layout; `weights` is a dict by weight name.

    Returns:
        `(outputs (batch, time, h_dim), h, c)`.
    """
    options = {**VARIANT_DEFAULTS, **variant}
    cifg = options["coupled_input_forget"]
    names = ["f", "c", "o"] if cifg else ["i", "f", "c", "o"]
    units = weights["recurrent_kernel"].shape[1] // len(names)

    def blocks(array):
        split = np.split(array, len(names), axis=-1)
        return dict(zip(names, split, strict=True))

    kernel = blocks(weights["kernel"])
    recurrent = blocks(weights["recurrent_kernel"])
    bias = blocks(weights.get("bias", np.zeros(len(names) * units)))
    peephole, gamma = {}, {}
    if options["use_peepholes"]:
        peephole_names = [n for n in names if n != "c"]
        rows = weights["peephole_kernel"]
        peephole = dict(zip(peephole_names, rows, strict=True))
    if options["use_layer_norm"]:
        gamma = dict(zip(names, weights["layer_norm_scale"], strict=True))

    def pre(name, x_t, h, c_peep):
        a = x_t @ kernel[name] + h @ recurrent[name]
        if options["use_peepholes"] and c_peep is not None:
            a = a + peephole[name] * c_peep
        if options["use_layer_norm"]:
            mean = a.mean(axis=-1, keepdims=True)
            var = ((a - mean) ** 2).mean(axis=-1, keepdims=True)
            a = gamma[name] * (a - mean) / np.sqrt(var + 1e-8)
        return a + bias[name]

    batch, steps, _ = x.shape
    h_dim = weights["recurrent_kernel"].shape[0]
    h = np.zeros((batch, h_dim)) if h0 is None else h0
    c = np.zeros((batch, units)) if c0 is None else c0
    outputs = []
    for t in range(steps):
        x_t = x[:, t]
        f = _sigmoid(pre("f", x_t, h, c))
        i = 1.0 - f if cifg else _sigmoid(pre("i", x_t, h, c))
        c = f * c + i * np.tanh(pre("c", x_t, h, None))
        if options["cell_clip"] is not None:
            c = np.clip(c, -options["cell_clip"], options["cell_clip"])
        o = _sigmoid(pre("o", x_t, h, c))
        h = o * np.tanh(c)
        if options["projection_units"] is not None:
            h = h @ weights["projection_kernel"]
            if options["use_projection_bias"]:
                h = h + weights["projection_bias"]
            if options["projection_clip"] is not None:
                clip = options["projection_clip"]
                h = np.clip(h, -clip, clip)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def _random_weights(layer, rng, scale=0.5):
    """Random weights for a built layer; layer-norm scales around 1."""
    values = []
    for w in layer.weights:
        value = scale * rng.standard_normal(w.shape)
        if w.name == "layer_norm_scale":
            value = 1.0 + value
        values.append(value.astype("float32"))
    layer.set_weights(values)
    return {
        w.name: v.astype("float64")
        for w, v in zip(layer.weights, values, strict=True)
    }


def _built(variant, rng, batch=BATCH, **kwargs):
    layer = keras_lstm.LSTM(UNITS, **variant, **kwargs)
    x = rng.standard_normal((batch, STEPS, FEATURES)).astype("float32")
    layer(x)
    return layer, x, _random_weights(layer, rng)


def _max_error(got, expected):
    return float(np.max(np.abs(np.asarray(got, "float64") - expected)))


# -- TFLite's goldens ------------------------------------------------------


def _golden_cases():
    with open(GOLDEN) as f:
        return json.load(f)["cases"]


def _keras_weights(case):
    """A golden case's TFLite weights in `keras_lstm.LSTM`'s layout."""
    w = {
        name: np.asarray(t["values"], "float32").reshape(t["shape"])
        for name, t in case["weights"].items()
    }
    gates = ["forget", "cell", "output"]
    if not case["use_cifg"]:
        gates.insert(0, "input")
    layout = {
        "kernel": np.concatenate(
            [w[f"input_to_{g}_weights"].T for g in gates], axis=1
        ),
        "recurrent_kernel": np.concatenate(
            [w[f"recurrent_to_{g}_weights"].T for g in gates], axis=1
        ),
        "bias": np.concatenate([w[f"{g}_gate_bias"] for g in gates]),
    }
    if case["use_peephole"]:
        layout["peephole_kernel"] = np.stack(
            [w[f"cell_to_{g}_weights"] for g in gates if g != "cell"]
        )
    if case["use_layer_norm"]:
        # The CIFG fixture sets input coefficients it never feeds.
        layout["layer_norm_scale"] = np.stack(
            [w[f"{g}_layer_norm_coefficients"] for g in gates]
        )
    if case["use_projection"]:
        layout["projection_kernel"] = w["projection_weights"].T
        if case["use_projection_bias"]:
            layout["projection_bias"] = w["projection_bias"]
    return layout


@pytest.mark.parametrize(
    "case", _golden_cases(), ids=lambda case: case["name"].split("/")[-1]
)
def test_tflite_golden(case):
    assert case["cell_clip"] == case["proj_clip"] == 0.0  # 0: no clipping
    assert case["activation"] == "tanh" and case["initial_state"] == "zeros"
    layer = keras_lstm.LSTM(
        case["n_cell"],
        return_sequences=True,
        use_peepholes=case["use_peephole"],
        coupled_input_forget=case["use_cifg"],
        use_layer_norm=case["use_layer_norm"],
        projection_units=(case["n_output"] if case["use_projection"] else None),
        use_projection_bias=case["use_projection_bias"],
    )
    x = np.asarray(case["input"], "float32")
    expected = np.asarray(case["golden_output"], "float64")
    assert x.shape == (case["n_batch"], case["seq_len"], case["n_input"])
    layer(x)
    weights = _keras_weights(case)
    assert sorted(w.name for w in layer.weights) == sorted(weights)
    layer.set_weights([weights[w.name] for w in layer.weights])
    out = np.asarray(layer(x))
    assert out.shape == expected.shape
    err = _max_error(out, expected)
    assert err <= GOLDEN_ATOL, f"{case['name']}: max abs error {err:.3g}"


# -- the NumPy reference: clipping, batch > 1, every variant ---------------


@pytest.mark.parametrize("name", NUMPY_GRID)
def test_outputs_states_and_masking_match_numpy(name, rng):
    """Batch 3, batch-major, with return_state; then with right-padded rows,
    which must give the outputs and states of their valid steps."""
    variant = VARIANTS[name]
    layer, x, weights = _built(
        variant, rng, return_sequences=True, return_state=True
    )
    x64 = x.astype("float64")
    out, h, c = layer(x)
    expected, h_ref, c_ref = _numpy_lstm(x64, weights, variant)
    h_dim = variant.get("projection_units", UNITS)
    assert tuple(out.shape) == (BATCH, STEPS, h_dim)
    assert tuple(h.shape) == (BATCH, h_dim) and tuple(c.shape) == (BATCH, UNITS)
    for label, got, ref in (
        ("outputs", out, expected),
        ("h", h, h_ref),
        ("c", c, c_ref),
    ):
        err = _max_error(got, ref)
        assert err <= ATOL, f"{name} {label}: max abs error {err:.3g}"

    lengths = [STEPS, 4, 2]
    mask = np.arange(STEPS)[None, :] < np.array(lengths)[:, None]
    out, h, c = layer(x, mask=mask)
    for row, length in enumerate(lengths):
        ref, h_ref, c_ref = _numpy_lstm(
            x64[row : row + 1, :length], weights, variant
        )
        for label, got, expected in (
            ("outputs", out[row, :length], ref[0]),
            ("h", h[row], h_ref[0]),
            ("c", c[row], c_ref[0]),
        ):
            err = _max_error(got, expected)
            assert err <= ATOL, f"{name} masked row {row} {label}: {err:.3g}"


@pytest.mark.parametrize(
    "variant",
    [
        dict(cell_clip=0.4),
        dict(projection_units=3, projection_clip=0.15),
        dict(
            projection_units=3,
            use_projection_bias=True,
            cell_clip=0.4,
            projection_clip=0.15,
        ),
    ],
    ids=["cell", "projection", "both"],
)
def test_clipping_bites(variant, rng):
    """The clips change the result here: the test above checks them."""
    layer, x, weights = _built(variant, rng, return_sequences=True)
    unclipped = {k: v for k, v in variant.items() if not k.endswith("_clip")}
    with_clip, _, c = _numpy_lstm(x.astype("float64"), weights, variant)
    without, _, _ = _numpy_lstm(x.astype("float64"), weights, unclipped)
    assert np.max(np.abs(with_clip - without)) > 1e-2
    if "cell_clip" in variant:
        assert np.max(np.abs(c)) == pytest.approx(variant["cell_clip"])
    err = _max_error(layer(x), with_clip)
    assert err <= ATOL, f"max abs error {err:.3g}"


@pytest.mark.parametrize("name", GRADIENTS)
def test_gradients_match_central_differences(name, rng):
    variant = VARIANTS[name]
    layer = keras_lstm.LSTM(4, return_sequences=True, **variant)
    x = rng.standard_normal((2, 3, 3)).astype("float32")
    layer(x)
    weights = _random_weights(layer, rng)
    h_dim = variant.get("projection_units", 4)
    probe = rng.standard_normal((2, 3, h_dim))
    _, grads = outputs_and_gradients(layer, x, [probe.astype("float32")])

    def loss(x, weights):
        return float(np.sum(_numpy_lstm(x, weights, variant)[0] * probe))

    def central(array, at, eps=1e-6):
        up, down = array.copy(), array.copy()
        up[at] += eps
        down[at] -= eps
        return up, down

    x64 = x.astype("float64")
    numeric = [np.zeros_like(x64)]
    for at in np.ndindex(x64.shape):
        up, down = central(x64, at)
        numeric[0][at] = (loss(up, weights) - loss(down, weights)) / 2e-6
    for w in layer.weights:
        grad = np.zeros_like(weights[w.name])
        for at in np.ndindex(grad.shape):
            up, down = central(weights[w.name], at)
            grad[at] = (
                loss(x64, {**weights, w.name: up})
                - loss(x64, {**weights, w.name: down})
            ) / 2e-6
        numeric.append(grad)
    labels = ["x"] + [w.name for w in layer.weights]
    for label, got, expected in zip(labels, grads, numeric, strict=True):
        err = _max_error(got, expected)
        assert err <= GRAD_ATOL, f"{name} d/d{label}: max abs error {err:.3g}"


# -- every variant: the Keras layer's contract ------------------------------


def _expected_weight_shapes(variant, features=FEATURES, units=UNITS):
    options = {**VARIANT_DEFAULTS, **variant}
    gates = 3 if options["coupled_input_forget"] else 4
    h_dim = options["projection_units"] or units
    shapes = {
        "kernel": (features, gates * units),
        "recurrent_kernel": (h_dim, gates * units),
        "bias": (gates * units,),
    }
    if options["use_peepholes"]:
        shapes["peephole_kernel"] = (gates - 1, units)
    if options["use_layer_norm"]:
        shapes["layer_norm_scale"] = (gates, units)
    if options["projection_units"]:
        shapes["projection_kernel"] = (units, h_dim)
        if options["use_projection_bias"]:
            shapes["projection_bias"] = (h_dim,)
    return shapes


@pytest.mark.parametrize("name", PLUMBING)
def test_weights_config_and_save_load_in_safe_mode(name, rng, tmp_path):
    variant = VARIANTS[name]
    inputs = keras.Input((STEPS, FEATURES))
    layer = keras_lstm.LSTM(UNITS, **variant)
    model = keras.Model(inputs, layer(inputs))
    shapes = {w.name: tuple(w.shape) for w in layer.weights}
    assert shapes == _expected_weight_shapes(variant)
    h_dim = variant.get("projection_units", UNITS)
    assert layer.cell.state_size == [h_dim, UNITS]
    assert layer.cell.output_size == h_dim
    config = layer.get_config()
    for key, default in VARIANT_DEFAULTS.items():
        assert config[key] == variant.get(key, default), key
    assert keras_lstm.LSTM.from_config(config).get_config() == config
    cell = keras_lstm.LSTMCell(UNITS, **variant)
    assert keras_lstm.LSTMCell.from_config(cell.get_config()).get_config() == (
        cell.get_config()
    )

    _random_weights(layer, rng)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert loaded.layers[-1].get_config() == config


def test_initial_weights():
    layer = keras_lstm.LSTM(UNITS, **VARIANTS["all"])
    layer.build((None, None, FEATURES))
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}
    assert not weights["peephole_kernel"].any()
    assert (weights["layer_norm_scale"] == 1).all()
    assert not weights["projection_bias"].any()
    # unit_forget_bias: the forget block is the first of (f, c, o).
    expected = np.r_[np.ones(UNITS), np.zeros(2 * UNITS)]
    np.testing.assert_array_equal(weights["bias"], expected)


@pytest.mark.parametrize("name", PLUMBING)
def test_bidirectional(name, rng):
    variant = VARIANTS[name]
    layer = keras.layers.Bidirectional(
        keras_lstm.LSTM(UNITS, return_sequences=True, **variant)
    )
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    layer(x)
    forward = _random_weights(layer.forward_layer, rng)
    backward = _random_weights(layer.backward_layer, rng)
    out = np.asarray(layer(x))
    x64 = x.astype("float64")
    ref_forward = _numpy_lstm(x64, forward, variant)[0]
    # Keras re-reverses the backward outputs into input order.
    ref_backward = _numpy_lstm(x64[:, ::-1], backward, variant)[0][:, ::-1]
    h_dim = variant.get("projection_units", UNITS)
    assert out.shape == (BATCH, STEPS, 2 * h_dim)
    err = _max_error(out, np.concatenate([ref_forward, ref_backward], -1))
    assert err <= ATOL, f"{name}: max abs error {err:.3g}"


@pytest.mark.parametrize(
    "name", _grid(["all", "projection_bias", "cifg_layer_norm"], ["all"])
)
def test_stateful_carries_both_states(name, rng):
    variant = VARIANTS[name]
    layer = keras_lstm.LSTM(
        UNITS, stateful=True, return_sequences=True, **variant
    )
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    layer(x[:, :1])
    layer.reset_states()
    weights = _random_weights(layer, rng)
    first = np.asarray(layer(x[:, :3]))
    second = np.asarray(layer(x[:, 3:]))
    expected = _numpy_lstm(x.astype("float64"), weights, variant)[0]
    err = _max_error(np.concatenate([first, second], axis=1), expected)
    assert err <= ATOL, f"{name}: max abs error {err:.3g}"


@pytest.mark.parametrize(
    "name", _grid(["all", "projection", "cifg_peephole"], ["all"])
)
def test_initial_state_has_h_dim_and_units(name, rng):
    variant = VARIANTS[name]
    layer, x, weights = _built(variant, rng)
    h_dim = variant.get("projection_units", UNITS)
    h0 = rng.standard_normal((BATCH, h_dim)).astype("float32")
    c0 = rng.standard_normal((BATCH, UNITS)).astype("float32")
    out = layer(x, initial_state=[h0, c0])
    ref = _numpy_lstm(x.astype("float64"), weights, variant, h0, c0)[0]
    err = _max_error(out, ref[:, -1])
    assert err <= ATOL, f"{name}: max abs error {err:.3g}"
    with pytest.raises(ValueError, match="h_0 must have shape"):
        layer(x, initial_state=[c0[:, :1], c0])


# Implementation 1 draws one mask per gate block: 3 under CIFG.
@pytest.mark.parametrize(
    "name,implementation",
    _grid([("all", 1), ("all", 2), ("layer_norm_projection", 1)], [("all", 1)]),
)
def test_dropout_trains_and_is_off_at_inference(name, implementation, rng):
    variant = VARIANTS[name]
    layer, x, weights = _built(
        variant,
        rng,
        dropout=0.5,
        recurrent_dropout=0.5 if implementation == 1 else 0.0,
        implementation=implementation,
        seed=1,
    )
    assert layer.cell.implementation == implementation
    trained = np.asarray(layer(x, training=True))
    assert np.isfinite(trained).all()
    expected = _numpy_lstm(x.astype("float64"), weights, variant)[0][:, -1]
    assert _max_error(trained, expected) > 1e-3  # dropout did something
    err = _max_error(layer(x, training=False), expected)
    assert err <= ATOL, f"{name}: max abs error {err:.3g}"


def test_cell_in_an_rnn_and_gate_introspection(rng):
    variant = VARIANTS["all"]
    layer = keras.layers.RNN(
        keras_lstm.LSTMCell(UNITS, **variant), return_sequences=True
    )
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    layer(x)
    weights = _random_weights(layer, rng)
    expected = _numpy_lstm(x.astype("float64"), weights, variant)[0]
    err = _max_error(layer(x), expected)
    assert err <= ATOL, f"RNN(LSTMCell): max abs error {err:.3g}"
    gates = keras_lstm.gate_activations(layer, x)
    err = _max_error(gates.h, expected)
    assert err <= ATOL, f"gate_activations h: max abs error {err:.3g}"
    np.testing.assert_allclose(gates.input_gate, 1.0 - gates.forget_gate)
    assert gates.c.shape == (BATCH, STEPS, UNITS)


# -- routing ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_route_to_the_generic_loop(name):
    """No backend kernel (cuDNN, PyTorch's CPU LSTM, the TF fast path)
    computes a variant; the plain layer of the same size would take one."""
    layer = keras_lstm.LSTM(128, **VARIANTS[name])
    plain = keras_lstm.LSTM(128)
    for training in (False, True):
        assert layer.sequence_path(training=training, batch_size=64) == (
            SequencePath.GENERIC
        )
    if BACKEND == "tensorflow":
        assert plain.sequence_path(batch_size=64) == SequencePath.PARALLEL
    if BACKEND == "torch":
        assert plain.sequence_path() == SequencePath.TORCH_CPU
    with keras_lstm.layers.lowering(lambda *args: None):
        assert layer.sequence_path() == SequencePath.LOWERED


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's loop")
@pytest.mark.parametrize("parallel_gates", [False, True])
def test_tf_sequence_carries_the_variant(parallel_gates, rng):
    """The TensorFlow loop that export fuses computes the variant too."""
    from keras_lstm import tf_sequence

    variant = VARIANTS["all"]
    layer, x, weights = _built(variant, rng, return_sequences=True)
    cell = layer.cell
    h_dim = variant["projection_units"]
    _, out, _, _ = tf_sequence.lstm_sequence(
        x,
        np.zeros((BATCH, h_dim), "float32"),
        np.zeros((BATCH, UNITS), "float32"),
        cell.kernel.value,
        cell.recurrent_kernel.value,
        cell.activation,
        cell.recurrent_activation,
        bias=cell.bias.value,
        parallel_gates=parallel_gates,
        variant=cell._variant(),
    )
    expected = _numpy_lstm(x.astype("float64"), weights, variant)[0]
    err = _max_error(out, expected)
    assert err <= ATOL, f"max abs error {err:.3g}"


# -- bad arguments -----------------------------------------------------------


# Argument checks are Python before any tensor: TensorFlow's run covers
# every backend.
@pytest.mark.skipif(BACKEND != "tensorflow", reason="backend-independent")
@pytest.mark.parametrize("cls", [keras_lstm.LSTMCell, keras_lstm.LSTM])
@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(use_peepholes=1), TypeError, "`use_peepholes`.*True or False"),
        (dict(coupled_input_forget="yes"), TypeError, "coupled_input_forget"),
        (dict(use_layer_norm=None), TypeError, "use_layer_norm"),
        (dict(projection_units=0), ValueError, "`projection_units`.*0"),
        (dict(projection_units=2.5), ValueError, "projection_units"),
        (dict(cell_clip=0), ValueError, "`cell_clip`.*None"),
        (dict(cell_clip=-1.0), ValueError, "cell_clip"),
        (dict(cell_clip=float("inf")), ValueError, "cell_clip"),
        (dict(projection_units=2, projection_clip=0.0), ValueError, "clip"),
        (dict(use_projection_bias=True), ValueError, "projection_units=N"),
        (dict(projection_clip=1.0), ValueError, "without a projection"),
    ],
)
def test_bad_variant_arguments(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(4, **kwargs)


def test_use_cudnn_true_refuses_a_variant():
    with pytest.raises(ValueError, match="use_cudnn=True.*use_peepholes"):
        keras_lstm.LSTM(4, use_peepholes=True, use_cudnn=True)
