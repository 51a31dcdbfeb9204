"""`LSTMCell` and `LSTM` against `keras.layers.LSTM`, the reference.

Backend-agnostic: `make test` runs this module under TensorFlow and JAX
(`KERAS_BACKEND`), `make test-torch` under PyTorch; the reference is
`keras.layers.LSTM` on the same backend, and the tolerances are the same on
every backend.

Tolerances (float32):
- forward: max abs error <= 1e-6, the issue's budget. Both sides do the same
  float32 operations in the same order, so today the error is 0; the budget
  leaves room for a BLAS that blocks products differently, not for a bug
  (a wrong gate order or bias is off by 1e-2 or more).
- gradients: |ours - ref| <= 1e-5 * max(1, |ref|), element-wise; backprop
  through 50 steps accumulates more rounding than the forward pass.
- training: 20 Adam steps give losses equal within 1e-4 relative.
"""

import importlib.util
import inspect
import itertools

import keras
import numpy as np
import pytest
from backends import BACKEND, outputs_and_gradients, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_lstm
from keras_lstm import _compat
from keras_lstm.layers import SequencePath

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="TensorFlow's fast path"
)

FORWARD_ATOL = 1e-6
GRADIENT_RTOL = 1e-5
TRAINING_RTOL = 1e-4

FEATURES = 3
BATCH = 4


# "layer" is `keras_lstm.LSTM` as routed by its rules (units below
# PARALLEL_MIN_UNITS run the generic loop); "parallel" (TensorFlow only) is
# the same layer with every call that the fast path can take sent there (see
# `_route_all_to_parallel`); "cell" is `RNN(keras_lstm.LSTMCell)`.
KINDS = (
    ["layer", "parallel", "cell"]
    if BACKEND == "tensorflow"
    else ["layer", "cell"]
)


def _expected_path(kind, units, **kwargs):
    """The route `keras_lstm.LSTM` should take for a plain call."""
    if _compat.cudnn_ok(
        keras.activations.tanh, keras.activations.sigmoid, False, True
    ):
        return SequencePath.CUDNN
    if BACKEND == "tensorflow":
        fast = (
            kind == "parallel" or units >= keras_lstm.layers.PARALLEL_MIN_UNITS
        )
        return SequencePath.PARALLEL if fast else SequencePath.GENERIC
    if BACKEND == "torch":
        return SequencePath.TORCH_CPU
    return SequencePath.GENERIC


@pytest.fixture(autouse=True)
def _route_all_to_parallel(request):
    """For kind "parallel", sends every call the fast path can take there,
    whatever its shape, so that small test layers run it too."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("kind") == "parallel":
        with keras_lstm.layers.force_route(SequencePath.PARALLEL):
            yield
    else:
        yield


def _as_rnn(cell_class, units, kwargs):
    cell_keys = (
        "dropout",
        "recurrent_dropout",
        "seed",
        "use_bias",
        "implementation",
    )
    kwargs = dict(kwargs)
    cell_kwargs = {k: kwargs.pop(k) for k in cell_keys if k in kwargs}
    return keras.layers.RNN(cell_class(units, **cell_kwargs), **kwargs)


def _ours(kind, units, **kwargs):
    """Our layer, as `keras_lstm.LSTM` or `RNN(keras_lstm.LSTMCell)`."""
    if kind in ("layer", "parallel"):
        return keras_lstm.LSTM(units, **kwargs)
    return _as_rnn(keras_lstm.LSTMCell, units, kwargs)


def _reference(kind, units, **kwargs):
    """Keras's counterpart of `_ours(kind, ...)`.

    A cell is held to Keras's cell in the same `RNN` loop. On TensorFlow
    and JAX (CPU) that is also what `keras.layers.LSTM` runs; on PyTorch
    `keras.layers.LSTM` runs its backend's fallback instead, which sums
    `(x W + b) + h U` where the cell sums `(x W + h U) + b`: on the grid's
    near-chaotic weights Keras's own two differ by up to 6.5e-6 there.
    """
    if kind == "cell":
        return _as_rnn(keras.layers.LSTMCell, units, kwargs)
    return keras.layers.LSTM(units, **kwargs)


def _fixed_weights(layer, rng, scale=0.5):
    """Seeded weights, larger than Keras's initializers give.

    With recurrent weights of std 0.5 the recurrence is near-chaotic over 50
    steps and amplifies any difference in the order of float32 operations,
    so these tests also pin down that we compute in Keras's order.
    """
    return [
        (scale * rng.standard_normal(w.shape)).astype("float32")
        for w in layer.get_weights()
    ]


def _pair(kind, units, x, rng, call=True, **kwargs):
    """Builds the reference and ours on `x` with identical fixed weights.

    With `call=False` the layers are built without a first call: on JAX a
    call compiles the loop, and the gradient tests compile their own.
    """
    reference = _reference(kind, units, **kwargs)
    ours = _ours(kind, units, **kwargs)
    for layer in (reference, ours):
        if call:
            layer(x)
        else:
            layer.build(x.shape)
    weights = _fixed_weights(reference, rng)
    reference.set_weights(weights)
    ours.set_weights(weights)
    return reference, ours


def _max_abs(a, b):
    return float(np.max(np.abs(to_numpy(a) - to_numpy(b)), initial=0.0))


def _assert_close_forward(ours, reference, what="output"):
    for mine, ref in zip(
        keras.tree.flatten(ours), keras.tree.flatten(reference), strict=True
    ):
        err = _max_abs(mine, ref)
        assert np.shape(mine) == np.shape(ref), what
        assert err <= FORWARD_ATOL, f"{what}: max abs error {err:.3g}"


def _outputs_and_gradients(layer, x, probes, **call_kwargs):
    return outputs_and_gradients(layer, x, probes, **call_kwargs)


def _assert_close_gradients(mine, ref):
    names = ["inputs", "kernel", "recurrent_kernel", "bias"]
    for name, g, r in zip(names, mine, ref, strict=True):
        g, r = np.asarray(g), np.asarray(r)
        bound = GRADIENT_RTOL * np.maximum(1.0, np.abs(r))
        excess = np.abs(g - r) - bound
        assert np.all(excess <= 0), (
            f"gradient wrt {name}: max abs error {_max_abs(g, r):.3g} "
            f"exceeds 1e-5 * max(1, |ref|)"
        )


# (units, timesteps): the corners, and on TensorFlow an odd size between
# them. The three flags (return_sequences, return_state, go_backwards) run
# in all 8 combinations at the largest shape (and on TensorFlow at the odd
# one); the other shapes take the flags all off and all on. The flags are
# Keras's RNN plumbing and the sequence functions' branches, which do not
# depend on the shape; the shapes test the gate math and the routing. On
# JAX and PyTorch a case compiles its loop twice (about 2 s on 2 cores); on
# PyTorch the torch_cpu route handles the flags as Keras's fallback does,
# and the largest shape checks every combination of them.
SHAPES = [(1, 1), (1, 50), (64, 1), (64, 50)]
FULL_FLAG_SHAPES = [(64, 50)]
if BACKEND == "tensorflow":
    SHAPES.append((7, 5))
    FULL_FLAG_SHAPES.append((7, 5))
FLAGS = list(itertools.product([False, True], repeat=3))
GRID = [
    (kind, units, timesteps, *flags)
    for kind in KINDS
    for units, timesteps in SHAPES
    for flags in FLAGS
    if (units, timesteps) in FULL_FLAG_SHAPES or len(set(flags)) == 1
]


@pytest.mark.parametrize(
    "kind,units,timesteps,return_sequences,return_state,go_backwards", GRID
)
def test_parity_grid(
    kind, units, timesteps, return_sequences, return_state, go_backwards, rng
):
    x = rng.standard_normal((BATCH, timesteps, FEATURES)).astype("float32")
    reference, ours = _pair(
        kind,
        units,
        x,
        rng,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        call=False,
    )
    shapes = [(BATCH, timesteps, units) if return_sequences else (BATCH, units)]
    shapes += [(BATCH, units)] * 2 if return_state else []
    probes = [rng.standard_normal(shape).astype("float32") for shape in shapes]
    ref_out, ref_grads = _outputs_and_gradients(reference, x, probes)
    our_out, our_grads = _outputs_and_gradients(ours, x, probes)
    _assert_close_forward(our_out, ref_out)
    _assert_close_gradients(our_grads, ref_grads)
    if kind != "cell":
        assert ours.sequence_path() == _expected_path(kind, units)


# The grid's widths are below PARALLEL_MIN_UNITS, so there the fast path runs
# only when forced ("parallel"); here it runs by its own rule, at the width of
# the speed benchmark, with the grid's weights and tolerances.
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_parity_at_a_routed_width(return_sequences, go_backwards, rng):
    units = 128
    assert units >= keras_lstm.layers.PARALLEL_MIN_UNITS
    # Past the small-batch rule, which would send 128 units to the loop.
    batch = keras_lstm.layers.SMALL_BATCH + 1
    x = rng.standard_normal((batch, 50, FEATURES)).astype("float32")
    reference, ours = _pair(
        "layer",
        units,
        x,
        rng,
        return_sequences=return_sequences,
        go_backwards=go_backwards,
        call=False,
    )
    assert ours.sequence_path(
        training=True, batch_size=batch
    ) == _expected_path("layer", units)
    shape = (batch, 50, units) if return_sequences else (batch, units)
    probes = [rng.standard_normal(shape).astype("float32")]
    ref_out, ref_grads = _outputs_and_gradients(reference, x, probes)
    our_out, our_grads = _outputs_and_gradients(ours, x, probes)
    _assert_close_forward(our_out, ref_out)
    _assert_close_gradients(our_grads, ref_grads)


@pytest.mark.parametrize("kind", ["layer", "cell"])
@pytest.mark.parametrize("via", ["masking_layer", "mask_argument"])
def test_masking_with_padded_rows(kind, via, rng):
    timesteps = 6
    x = rng.standard_normal((BATCH, timesteps, FEATURES)).astype("float32")
    lengths = np.array([6, 4, 1, 3])
    mask = np.arange(timesteps)[None, :] < lengths[:, None]
    x[~mask] = 0.0
    results = []
    for layer in _pair(kind, 5, x, rng, return_sequences=True):
        if via == "masking_layer":
            inputs = keras.Input((timesteps, FEATURES))
            model = keras.Model(inputs, layer(keras.layers.Masking()(inputs)))
            results.append(model(x))
        else:
            results.append(layer(x, mask=keras.ops.convert_to_tensor(mask)))
    _assert_close_forward(results[1], results[0], f"masked ({via})")
    # Padded steps carry the last valid output: the mask was honoured.
    masked = to_numpy(results[1])
    np.testing.assert_array_equal(masked[2, 1], masked[2, 0])


@pytest.mark.parametrize("kind", KINDS)
def test_stateful_across_two_calls_and_reset(kind, rng):
    x1 = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    x2 = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference, ours = _pair(kind, 7, x1, rng, stateful=True)
    for layer in (reference, ours):
        layer.reset_state()
    _assert_close_forward(ours(x1), reference(x1), "first call")
    _assert_close_forward(ours(x2), reference(x2), "second call")
    ours.reset_state()
    reference.reset_state()
    _assert_close_forward(ours(x2), reference(x2), "after reset_state")


@pytest.mark.parametrize("kind", KINDS)
def test_initial_state(kind, rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    h0 = rng.standard_normal((BATCH, 7)).astype("float32")
    c0 = rng.standard_normal((BATCH, 7)).astype("float32")
    reference, ours = _pair(kind, 7, x, rng, return_state=True)
    _assert_close_forward(
        ours(x, initial_state=[h0, c0]), reference(x, initial_state=[h0, c0])
    )


@pytest.mark.parametrize("kind", ["layer", "cell"])
def test_unroll(kind, rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference, ours = _pair(kind, 7, x, rng, unroll=True, return_sequences=True)
    _assert_close_forward(ours(x), reference(x))


# On JAX and PyTorch, where each case compiles its loops, both masks at
# once: the input and recurrent masks are drawn by the same Keras code.
@pytest.mark.parametrize("kind", ["layer", "cell"])
@pytest.mark.parametrize(
    "dropout,recurrent_dropout",
    [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)]
    if BACKEND == "tensorflow"
    else [(0.3, 0.4)],
)
def test_dropout_draws_the_same_masks_as_keras(
    kind, dropout, recurrent_dropout, rng
):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    kwargs = dict(
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        seed=7,
        return_sequences=True,
    )
    reference, ours = _pair(kind, 6, x, rng, **kwargs)
    for _ in range(2):  # a fresh mask per call, the same on both sides
        _assert_close_forward(
            ours(x, training=True), reference(x, training=True), "training"
        )
    _assert_close_forward(ours(x), reference(x), "inference")
    assert _max_abs(ours(x, training=True), ours(x)) > 1e-3, "no dropout"


# The merge modes are Keras's Bidirectional code, the same on every
# backend: off TensorFlow, one merged output and the unmerged pair.
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "merge_mode",
    ["concat", "sum", "mul", "ave", None]
    if BACKEND == "tensorflow"
    else ["concat", None],
)
def test_bidirectional(kind, merge_mode, rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference = keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True), merge_mode=merge_mode
    )
    ours = keras.layers.Bidirectional(
        _ours(kind, 4, return_sequences=True), merge_mode=merge_mode
    )
    reference(x)
    ours(x)
    weights = _fixed_weights(reference, rng)
    reference.set_weights(weights)
    ours.set_weights(weights)
    _assert_close_forward(ours(x), reference(x))


def test_stacked_rnn_cells(rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference = keras.layers.RNN(
        keras.layers.StackedRNNCells(
            [keras.layers.LSTMCell(4), keras.layers.LSTMCell(6)]
        ),
        return_sequences=True,
    )
    ours = keras.layers.RNN(
        keras.layers.StackedRNNCells(
            [keras_lstm.LSTMCell(4), keras_lstm.LSTMCell(6)]
        ),
        return_sequences=True,
    )
    reference(x)
    ours(x)
    weights = _fixed_weights(reference, rng)
    reference.set_weights(weights)
    ours.set_weights(weights)
    _assert_close_forward(ours(x), reference(x))


def _stacked_model(make_lstm, api):
    if api == "sequential":
        return keras.Sequential(
            [
                keras.Input((5, FEATURES)),
                make_lstm(8, return_sequences=True),
                make_lstm(4),
                keras.layers.Dense(2),
            ]
        )
    inputs = keras.Input((5, FEATURES))
    hidden = make_lstm(8, return_sequences=True)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(make_lstm(4)(hidden)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_stacked_layers_in_models(kind, api, rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference = _stacked_model(keras.layers.LSTM, api)
    ours = _stacked_model(lambda u, **kw: _ours(kind, u, **kw), api)
    weights = _fixed_weights(reference, rng)
    reference.set_weights(weights)
    ours.set_weights(weights)
    _assert_close_forward(ours(x), reference(x))


@pytest.mark.parametrize("kind", KINDS)
def test_twenty_adam_steps_match(kind, rng):
    x = rng.standard_normal((16, 8, FEATURES)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    models = []
    for make in (keras.layers.LSTM, lambda u: _ours(kind, u)):
        model = keras.Sequential(
            [keras.Input((8, FEATURES)), make(5), keras.layers.Dense(2)]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        models.append(model)
    weights = _fixed_weights(models[0], rng)
    losses = []
    for model in models:
        model.set_weights(weights)
        history = model.fit(
            x, y, batch_size=16, epochs=20, shuffle=False, verbose=0
        )
        losses.append(np.array(history.history["loss"]))
    rel = np.abs(losses[1] - losses[0]) / np.abs(losses[0])
    assert rel.max() <= TRAINING_RTOL, f"max relative loss gap {rel.max():.3g}"
    assert losses[0][-1] < 0.8 * losses[0][0], "training did not progress"


# Each example builds and calls three pairs of layers; on JAX and PyTorch
# each call compiles its loop, so they draw fewer examples than TensorFlow.
@settings(max_examples=15 if BACKEND == "tensorflow" else 5, deadline=None)
@given(
    batch=st.integers(1, 5),
    timesteps=st.integers(1, 12),
    features=st.integers(1, 6),
    units=st.integers(1, 9),
    return_sequences=st.booleans(),
    go_backwards=st.booleans(),
)
def test_property_random_shapes(
    batch, timesteps, features, units, return_sequences, go_backwards
):
    rng = np.random.default_rng(batch * 1000 + timesteps * 10 + features)
    x = rng.standard_normal((batch, timesteps, features)).astype("float32")
    kwargs = dict(return_sequences=return_sequences, go_backwards=go_backwards)
    for kind in ("layer", "cell"):
        reference, ours = _pair(kind, units, x, rng, **kwargs)
        _assert_close_forward(ours(x), reference(x), kind)
    if BACKEND != "tensorflow":
        return
    with keras_lstm.layers.force_route(SequencePath.PARALLEL):
        reference, ours = _pair("parallel", units, x, rng, **kwargs)
        assert ours.sequence_path() == SequencePath.PARALLEL
        _assert_close_forward(ours(x), reference(x), "parallel")


@pytest.mark.parametrize("direction", ["keras_to_ours", "ours_to_keras"])
def test_weights_interchange(direction, rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference, ours = keras.layers.LSTM(6), keras_lstm.LSTM(6)
    reference(x)
    ours(x)
    source, target = (
        (reference, ours) if direction == "keras_to_ours" else (ours, reference)
    )
    source.set_weights(_fixed_weights(source, rng))
    target.set_weights(source.get_weights())
    assert [w.shape for w in ours.weights] == [
        (FEATURES, 24),
        (6, 24),
        (24,),
    ]
    assert [w.name for w in ours.weights] == [w.name for w in reference.weights]
    _assert_close_forward(target(x), source(x))


def test_initial_weights_follow_keras():
    cell = keras_lstm.LSTMCell(3)
    cell.build((None, 2))
    np.testing.assert_array_equal(
        to_numpy(cell.bias), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    )
    no_forget = keras_lstm.LSTMCell(3, unit_forget_bias=False)
    no_forget.build((None, 2))
    np.testing.assert_array_equal(to_numpy(no_forget.bias), np.zeros(12))
    unbiased = keras_lstm.LSTMCell(3, use_bias=False)
    unbiased.build((None, 2))
    assert unbiased.bias is None and len(unbiased.weights) == 2


def test_cell_state_size_output_size_and_initial_state():
    ours, reference = keras_lstm.LSTMCell(5), keras.layers.LSTMCell(5)
    assert ours.state_size == reference.state_size == [5, 5]
    assert ours.output_size == reference.output_size == 5
    states = ours.get_initial_state(batch_size=3)
    assert [tuple(s.shape) for s in states] == [(3, 5), (3, 5)]
    assert all(not np.any(to_numpy(s)) for s in states)


def test_cell_single_step_matches_keras(rng):
    x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
    states = [
        rng.standard_normal((BATCH, 5)).astype("float32") for _ in range(2)
    ]
    ours, reference = keras_lstm.LSTMCell(5), keras.layers.LSTMCell(5)
    ours(x, states)
    reference(x, states)
    ours.set_weights(reference.get_weights())
    _assert_close_forward(ours(x, states), reference(x, states))


# Which path runs is a routing rule; each rule is asserted here, with a
# spy on each path.
@tensorflow_only
@pytest.mark.parametrize(
    "units,kwargs,mask,training,expected",
    [
        (96, {}, None, False, SequencePath.PARALLEL),
        (96, {}, None, True, SequencePath.PARALLEL),
        (96, {"go_backwards": True}, None, False, SequencePath.PARALLEL),
        (96, {"stateful": True}, None, False, SequencePath.PARALLEL),
        # Dropout is the identity at inference: nothing to route away.
        (96, {"dropout": 0.2}, None, False, SequencePath.PARALLEL),
        (96, {"dropout": 0.2}, None, True, SequencePath.GENERIC),
        (96, {"recurrent_dropout": 0.2}, None, True, SequencePath.GENERIC),
        (96, {"unroll": True}, None, False, SequencePath.GENERIC),
        (96, {}, "mask", False, SequencePath.GENERIC),
        (95, {}, None, False, SequencePath.GENERIC),
        (3, {"go_backwards": True}, None, False, SequencePath.GENERIC),
    ],
)
def test_sequence_path_routing(
    units, kwargs, mask, training, expected, monkeypatch
):
    layer = keras_lstm.LSTM(units, **kwargs)
    batch = keras_lstm.layers.SMALL_BATCH + 1
    x = np.ones((batch, 4, FEATURES), "float32")
    mask = np.ones((batch, 4), bool) if mask else None
    assert layer.sequence_path(mask=mask, training=training) == expected
    calls = []
    from keras_lstm import tf_sequence

    generic, parallel = keras.layers.RNN.inner_loop, tf_sequence.lstm_sequence

    def spy_generic(self, *args, **kw):
        calls.append(SequencePath.GENERIC)
        return generic(self, *args, **kw)

    def spy_parallel(*args, **kw):
        calls.append(SequencePath.PARALLEL)
        assert kw["parallel_gates"] is True
        return parallel(*args, **kw)

    monkeypatch.setattr(keras.layers.RNN, "inner_loop", spy_generic)
    monkeypatch.setattr(tf_sequence, "lstm_sequence", spy_parallel)
    layer(x, mask=mask, training=training)
    assert calls == [expected]



# The small-batch rule, at its edges; a batch that is unknown when the call
# is traced (None) keeps the rule by units.
@tensorflow_only
@pytest.mark.parametrize(
    "units,batch,training,expected",
    [
        (128, 16, False, SequencePath.GENERIC),
        (128, 16, True, SequencePath.GENERIC),
        (128, 17, False, SequencePath.PARALLEL),
        (128, None, True, SequencePath.PARALLEL),
        (191, 1, False, SequencePath.GENERIC),
        (192, 1, False, SequencePath.PARALLEL),
        (256, 16, True, SequencePath.GENERIC),
        (511, 16, True, SequencePath.GENERIC),
        (512, 16, True, SequencePath.PARALLEL),
        (256, 17, True, SequencePath.PARALLEL),
    ],
)
def test_small_batches_route_by_units_and_phase(
    units, batch, training, expected, monkeypatch
):
    layer = keras_lstm.LSTM(units)
    path = layer.sequence_path(training=training, batch_size=batch)
    assert path == expected
    if batch is None:
        return
    calls = []
    from keras_lstm import tf_sequence

    parallel = tf_sequence.lstm_sequence

    def spy_parallel(*args, **kw):
        calls.append(SequencePath.PARALLEL)
        return parallel(*args, **kw)

    monkeypatch.setattr(tf_sequence, "lstm_sequence", spy_parallel)
    layer(np.ones((batch, 2, FEATURES), "float32"), training=training)
    assert calls == ([SequencePath.PARALLEL] if path == "parallel" else [])


def test_lowering_context_routes_and_restores():
    layer = keras_lstm.LSTM(3)
    x = np.ones((2, 4, FEATURES), "float32")
    layer(x)
    seen = []

    def sequence_fn(lstm, sequences, initial_state, mask, training):
        seen.append(lstm)
        raise NotImplementedError("sentinel")

    with keras_lstm.layers.lowering(sequence_fn):
        assert layer.sequence_path() == SequencePath.LOWERED
        with pytest.raises(NotImplementedError, match="sentinel"):
            layer(x)
    assert seen == [layer]
    assert layer.sequence_path() == _expected_path("layer", 3)


def test_routes_table_names_every_path_once_and_ends_in_a_catch_all():
    paths = [row.path for row in keras_lstm.layers.ROUTES]
    declared = {
        v for k, v in vars(SequencePath).items() if not k.startswith("_")
    }
    assert set(paths) == declared
    # Only the generic loop appears twice: for masks / unroll before the
    # TensorFlow paths, and as the row that takes everything else.
    assert [p for p in paths if paths.count(p) > 1] == [
        SequencePath.GENERIC,
        SequencePath.GENERIC,
    ]
    assert paths[0] == SequencePath.LOWERED
    assert all(row.reason for row in keras_lstm.layers.ROUTES)
    last = keras_lstm.layers.ROUTES[-1]
    call = keras_lstm.layers.RouteCall(
        keras_lstm.LSTM(3), np.ones((1, 1), bool), True, 1, True
    )
    assert last.applies(call) and last.pays(call)


def test_force_route_refuses_an_unknown_path_and_restores():
    layer = keras_lstm.LSTM(3)
    with pytest.raises(ValueError, match="`path`: 'fast'.*SequencePath"):
        with keras_lstm.layers.force_route("fast"):
            pass
    with keras_lstm.layers.force_route(SequencePath.GENERIC):
        assert layer.sequence_path() == SequencePath.GENERIC
    assert layer.sequence_path() == _expected_path("layer", 3)


# Forcing skips the measured speed rules (units, small batches) but never
# sends a call where the path cannot compute it, and a lowering still wins.
@tensorflow_only
@pytest.mark.parametrize(
    "kwargs,mask,training,expected",
    [
        ({}, None, False, SequencePath.PARALLEL),
        ({}, None, True, SequencePath.PARALLEL),
        ({"dropout": 0.2}, None, True, SequencePath.GENERIC),
        ({"unroll": True}, None, False, SequencePath.GENERIC),
        ({}, "mask", False, SequencePath.GENERIC),
    ],
)
def test_force_route_parallel_where_it_applies(
    kwargs, mask, training, expected
):
    layer = keras_lstm.LSTM(3, **kwargs)
    mask = np.ones((1, 4), bool) if mask else None
    with keras_lstm.layers.force_route(SequencePath.PARALLEL):
        path = layer.sequence_path(mask=mask, training=training, batch_size=1)
        assert path == expected
        with keras_lstm.layers.lowering(lambda *args: None):
            assert layer.sequence_path() == SequencePath.LOWERED
    assert layer.sequence_path(mask=mask, training=training) == (
        SequencePath.GENERIC
    )


# Under XLA (jit_compile=True) TensorFlow takes the "xla" route wherever
# tf_sequence computes the call, at every width and batch.
@tensorflow_only
@pytest.mark.parametrize(
    "units,kwargs,mask,training,expected",
    [
        (3, {}, None, False, SequencePath.XLA),
        (128, {}, None, True, SequencePath.XLA),
        (512, {"go_backwards": True}, None, True, SequencePath.XLA),
        (8, {"dropout": 0.2}, None, False, SequencePath.XLA),
        (8, {"dropout": 0.2}, None, True, SequencePath.GENERIC),
        (8, {"recurrent_dropout": 0.2}, None, True, SequencePath.GENERIC),
        (8, {"unroll": True}, None, False, SequencePath.GENERIC),
        (8, {}, "mask", False, SequencePath.GENERIC),
    ],
)
def test_sequence_path_under_xla(units, kwargs, mask, training, expected):
    layer = keras_lstm.LSTM(units, **kwargs)
    mask = np.ones((1, 4), bool) if mask else None
    path = layer.sequence_path(
        mask=mask, training=training, batch_size=1, jit_compile=True
    )
    assert path == expected


def _xla_outputs_and_gradients(layer, x, probes):
    """`outputs_and_gradients`, traced and compiled by XLA."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = keras.tree.flatten(layer(x))
            loss = sum(
                tf.reduce_sum(out * probe)
                for out, probe in zip(outputs, probes, strict=True)
            )
        weights = [w.value for w in layer.weights]
        return outputs, tape.gradient(loss, [x] + weights)

    outputs, grads = run(tf.constant(x))
    return [o.numpy() for o in outputs], [g.numpy() for g in grads]


# keras_lstm.LSTM under XLA against keras.layers.LSTM under XLA, like for
# like, with the parity suite's tolerances. Weights at Keras's default
# initialisers: the grid's std-0.5 weights are near-chaotic and amplify
# any rounding difference, and on them Keras's own XLA LSTM is far from its
# default path; the XLA route is held to Keras's XLA numbers, not bitwise.
@tensorflow_only
@pytest.mark.parametrize("units", [7, 128])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_parity_under_xla(units, go_backwards, rng):
    timesteps = 50
    x = rng.standard_normal((BATCH, timesteps, FEATURES)).astype("float32")
    kwargs = dict(
        return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    reference = keras.layers.LSTM(units, **kwargs)
    ours = keras_lstm.LSTM(units, **kwargs)
    reference.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(reference.get_weights())
    shapes = [(BATCH, timesteps, units)] + [(BATCH, units)] * 2
    probes = [rng.standard_normal(shape).astype("float32") for shape in shapes]
    routes = []
    original = type(ours)._route

    def spy(self, *args, **kw):
        found = original(self, *args, **kw)
        routes.append(found.path)
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(ours), "_route", spy)
        our_out, our_grads = _xla_outputs_and_gradients(ours, x, probes)
    assert routes == [SequencePath.XLA]
    ref_out, ref_grads = _xla_outputs_and_gradients(reference, x, probes)
    _assert_close_forward(our_out, ref_out, "output under XLA")
    _assert_close_gradients(our_grads, ref_grads)


# A model compiled with jit_compile=True keeps it (nothing in the layer
# turns XLA off on a CPU), and its train and predict steps take the XLA
# route; without it, the same model does not.
@tensorflow_only
@pytest.mark.parametrize("jit_compile", [True, False])
def test_jit_compile_stays_on_and_takes_the_xla_route(jit_compile, rng):
    x = rng.standard_normal((BATCH, 6, FEATURES)).astype("float32")
    y = rng.standard_normal((BATCH, 2)).astype("float32")
    model = keras.Sequential(
        [keras.Input((6, FEATURES)), keras_lstm.LSTM(8), keras.layers.Dense(2)]
    )
    model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    layer = model.layers[0]
    routes = []
    original = type(layer)._route

    def spy(self, *args, **kw):
        found = original(self, *args, **kw)
        routes.append(found.path)
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(layer), "_route", spy)
        model.train_on_batch(x, y)
        model.predict_on_batch(x)
    assert model.jit_compile is jit_compile
    expected = SequencePath.XLA if jit_compile else SequencePath.GENERIC
    assert routes and set(routes) == {expected}, routes


def _init_parameters(cls):
    return [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind is not p.VAR_KEYWORD
    ]


@pytest.mark.parametrize("cls", [keras_lstm.LSTMCell, keras_lstm.LSTM])
def test_get_config_is_complete_and_round_trips(cls):
    instance = cls(
        3,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        kernel_regularizer="l2",
        bias_constraint="non_neg",
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=4,
        unit_forget_bias=False,
    )
    config = instance.get_config()
    missing = set(_init_parameters(cls)) - set(config)
    assert not missing, f"get_config misses {sorted(missing)}"
    clone = cls.from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize(
    "ours,reference",
    [
        (keras_lstm.LSTMCell, keras.layers.LSTMCell),
        (keras_lstm.LSTM, keras.layers.LSTM),
    ],
)
def test_same_arguments_and_defaults_as_keras(ours, reference):
    def defaults(cls):
        return {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "kwargs")
        }

    # Plus the variants' keyword-only arguments, whose defaults give the
    # plain LSTM (tests/test_variants.py).
    variants = keras_lstm.layers.VARIANT_DEFAULTS
    assert {k: defaults(ours)[k] for k in variants} == variants
    assert {
        k: v for k, v in defaults(ours).items() if k not in variants
    } == defaults(reference)


# -- bad input: one test per case ------------------------------------------


@pytest.mark.parametrize("cls", [keras_lstm.LSTMCell, keras_lstm.LSTM])
@pytest.mark.parametrize(
    "units,error",
    [
        (0, ValueError),
        (-3, ValueError),
        (2.5, TypeError),
        ("4", TypeError),
        (True, TypeError),
    ],
)
def test_bad_units(cls, units, error):
    with pytest.raises(error, match="argument `units`.*positive integer"):
        cls(units)


def test_layer_rejects_input_rank_other_than_3():
    with pytest.raises(ValueError, match="rank 3.*Add a time axis"):
        keras_lstm.LSTM(3)(np.ones((2, FEATURES), "float32"))


def test_cell_rejects_input_rank_other_than_2():
    cell = keras_lstm.LSTMCell(3)
    with pytest.raises(ValueError, match="rank 2.*keras.layers.RNN"):
        cell.build((2, 4, FEATURES))


@pytest.mark.parametrize("kind", ["layer", "cell"])
def test_feature_size_changing_after_build(kind):
    layer = _ours(kind, 3)
    layer(np.ones((2, 4, FEATURES), "float32"))
    with pytest.raises(ValueError, match="feature size.*built for 3.*got 5"):
        layer(np.ones((2, 4, 5), "float32"))


@pytest.mark.parametrize("argument", ["activation", "recurrent_activation"])
def test_unknown_activation(argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`.*'nope'"):
        keras_lstm.LSTM(3, **{argument: "nope"})


@pytest.mark.parametrize("argument", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_dropout_outside_unit_interval(argument, value):
    with pytest.raises(ValueError, match=f"argument `{argument}`.*\\[0, 1\\)"):
        keras_lstm.LSTMCell(3, **{argument: value})


@pytest.mark.parametrize(
    "states,match",
    [
        (lambda h, c: [h], "list of 2 tensors"),
        (lambda h, c: [h, c, c], "list of 2 tensors"),
        (lambda h, c: [h[:, :2], c], "h_0 must have shape"),
        (lambda h, c: [h, c[:1]], "c_0 must have shape"),
    ],
)
def test_initial_state_of_wrong_count_or_shape(states, match):
    x = np.ones((2, 4, FEATURES), "float32")
    h = c = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=match):
        keras_lstm.LSTM(3)(x, initial_state=states(h, c))


def test_stateful_without_fixed_batch_size():
    with pytest.raises(ValueError, match="stateful=True.*batch_size=N"):
        keras.Sequential(
            [keras.Input((4, FEATURES)), keras_lstm.LSTM(3, stateful=True)]
        )


@pytest.mark.parametrize("use_cudnn", ["auto", False])
# Same float32 ops on the same weights: the 1e-6 bounds below are float32
# rounding on outputs of magnitude < 1.
def test_use_cudnn_auto_and_false_run_our_kernels(use_cudnn, rng):
    x = rng.normal(size=(2, 5, FEATURES)).astype("float32")
    layer = keras_lstm.LSTM(3, use_cudnn=use_cudnn)
    reference = keras.layers.LSTM(3, use_cudnn=use_cudnn)
    reference.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    assert layer.use_cudnn == use_cudnn
    assert layer.get_config()["use_cudnn"] == use_cudnn
    error = _max_abs(layer(x), reference(x))
    assert error <= 1e-6, f"max abs error {error:.3g}"


@pytest.mark.parametrize("implementation", [1, 2])
def test_implementation_is_accepted_and_changes_nothing(implementation, rng):
    x = rng.normal(size=(2, 5, FEATURES)).astype("float32")
    reference = keras.layers.LSTM(3, implementation=implementation)
    reference.build(x.shape)
    layer = keras_lstm.LSTM(3, implementation=implementation)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    assert layer.cell.implementation == implementation
    assert keras_lstm.LSTMCell(3, implementation=implementation).implementation
    error = _max_abs(layer(x), reference(x))
    assert error <= 1e-6, f"max abs error {error:.3g}"


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_inputs_are_cast_as_keras_does(dtype, rng):
    x = rng.integers(0, 2, size=(2, 5, FEATURES)).astype(dtype)
    reference = keras.layers.LSTM(3)
    reference.build(x.shape)
    layer = keras_lstm.LSTM(3)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    error = _max_abs(layer(x), reference(x.astype("float32")))
    assert error <= 1e-6, f"max abs error {error:.3g}"
    cell = keras_lstm.LSTMCell(3)
    h = c = np.zeros((2, 3), "float32")
    out, _ = cell(x[:, 0], [h, c])
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_bad_use_cudnn(value):
    with pytest.raises(ValueError, match="argument `use_cudnn`.*'auto'"):
        keras_lstm.LSTM(3, use_cudnn=value)


@pytest.mark.parametrize("cls", [keras_lstm.LSTMCell, keras_lstm.LSTM])
@pytest.mark.parametrize("value", [0, 3, "2", True])
def test_bad_implementation(cls, value):
    with pytest.raises(ValueError, match="argument `implementation`.*1 or 2"):
        cls(3, implementation=value)


# -- serialization ------------------------------------------------------------

_LOAD_IN_FRESH_PROCESS = """
import sys
import numpy as np
import keras
import keras_lstm  # registers the layers; no custom_objects below

for path in sys.argv[1:]:
    model = keras.saving.load_model(path + ".keras", safe_mode=True)
    x = np.load(path + ".x.npy")
    expected = np.load(path + ".y.npy")
    got = keras.ops.convert_to_numpy(model(x))
    err = float(np.max(np.abs(got - expected)))
    assert err == 0.0, f"{path}: max abs error {err}"
    print("ok", path)
"""


def _saved_models():
    def sequential(layer):
        return keras.Sequential(
            [keras.Input((5, FEATURES)), layer, keras.layers.Dense(2)]
        )

    return {
        "layer": sequential(
            keras_lstm.LSTM(4, dropout=0.1, kernel_regularizer="l2")
        ),
        "cell_in_rnn": sequential(
            keras.layers.RNN(keras_lstm.LSTMCell(4), return_sequences=True)
        ),
        "bidirectional": sequential(
            keras.layers.Bidirectional(keras_lstm.LSTM(4), merge_mode="sum")
        ),
        "stacked_cells": sequential(
            keras.layers.RNN(
                keras.layers.StackedRNNCells(
                    [keras_lstm.LSTMCell(4), keras_lstm.LSTMCell(3)]
                )
            )
        ),
    }


def _save_models(tmp_path, rng):
    """Saves `_saved_models()` with fixed weights, an input and its output.

    Returns the path stems: `<stem>.keras`, `<stem>.x.npy`, `<stem>.y.npy`,
    which `_LOAD_IN_FRESH_PROCESS` takes.
    """
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    stems = []
    for name, model in _saved_models().items():
        model.set_weights(_fixed_weights(model, rng))
        stem = str(tmp_path / name)
        model.save(stem + ".keras")
        np.save(stem + ".x.npy", x)
        np.save(stem + ".y.npy", to_numpy(model(x)))
        stems.append(stem)
    return stems


@pytest.mark.slow
def test_save_and_load_in_fresh_process_with_safe_mode(tmp_path, rng):
    import subprocess
    import sys

    stems = _save_models(tmp_path, rng)
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, *stems],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == len(stems)


# -- Keras's `implementation`, `use_cudnn` and the backends' routes ----------


# Off TensorFlow, without dropout and with it training: with dropout at
# inference the masks are off, the first case again.
@pytest.mark.parametrize("kind", ["layer", "cell"])
@pytest.mark.parametrize(
    "dropout,training",
    [(0.0, False), (0.3, True), (0.3, False)]
    if BACKEND == "tensorflow"
    else [(0.0, False), (0.3, True)],
)
def test_implementation_1_matches_keras(kind, dropout, training, rng):
    x = rng.standard_normal((BATCH, 20, FEATURES)).astype("float32")
    kwargs = dict(
        implementation=1, dropout=dropout, seed=3, return_sequences=True
    )
    # keras.layers.LSTM's "auto" path broadcasts implementation 1's list of
    # four input masks as if it were one and fails (Keras 3.15), so while
    # dropout trains the reference takes its own generic loop; ours routes
    # there by itself.
    use_cudnn = False if (training and dropout) else "auto"
    reference = keras.layers.LSTM(6, use_cudnn=use_cudnn, **kwargs)
    ours = _ours(kind, 6, **kwargs)
    reference(x)
    ours(x)
    weights = _fixed_weights(reference, rng)
    reference.set_weights(weights)
    ours.set_weights(weights)
    assert ours.cell.implementation == reference.cell.implementation == 1
    probes = [rng.standard_normal((BATCH, 20, 6)).astype("float32")]
    ref_out, ref_grads = _outputs_and_gradients(
        reference, x, probes, training=training
    )
    our_out, our_grads = _outputs_and_gradients(
        ours, x, probes, training=training
    )
    _assert_close_forward(our_out, ref_out)
    _assert_close_gradients(our_grads, ref_grads)


def test_recurrent_dropout_forces_implementation_1():
    assert keras_lstm.LSTMCell(3, recurrent_dropout=0.1).implementation == 1
    assert keras_lstm.LSTMCell(3).implementation == 2


@pytest.mark.parametrize("use_cudnn", ["auto", False])
def test_use_cudnn_auto_or_false_routes_like_keras(use_cudnn, rng):
    x = rng.standard_normal((BATCH, 5, FEATURES)).astype("float32")
    reference, ours = _pair("layer", 7, x, rng, use_cudnn=use_cudnn)
    _assert_close_forward(ours(x), reference(x))
    expected = _expected_path("layer", 7)
    if use_cudnn is False and expected in (
        SequencePath.CUDNN,
        SequencePath.TORCH_CPU,
    ):
        # Keras then skips its backend's kernel for its generic loop, and
        # 7 units are below PARALLEL_MIN_UNITS on TensorFlow.
        expected = SequencePath.GENERIC
    assert ours.sequence_path() == expected
    assert ours.get_config()["use_cudnn"] == use_cudnn


# As keras.layers.LSTM: the argument is accepted, and the refusal comes at
# call time and names it. cuDNN needs a GPU; a relu never goes to it; a mask
# does only on TensorFlow. On PyTorch Keras's `lstm(...)` runs its CPU
# fallback for anything cuDNN does not take, so there keras.layers.LSTM
# accepts the first two, and so do we.
@pytest.mark.parametrize("case", ["plain", "relu", "mask"])
def test_use_cudnn_true_refuses_where_keras_refuses(case):
    x = np.ones((2, 4, FEATURES), "float32")
    kwargs, call_kwargs = {"use_cudnn": True}, {}
    gpu = _compat.cudnn_ok(
        keras.activations.tanh, keras.activations.sigmoid, False, True
    )
    if case == "plain":
        refuses = BACKEND != "torch" and not gpu
    elif case == "relu":
        kwargs["activation"] = "relu"
        refuses = BACKEND != "torch"
    else:
        call_kwargs["mask"] = np.array([[True] * 4, [True, True, False, False]])
        refuses = BACKEND != "tensorflow" or not gpu
    for layer, message in (
        (keras.layers.LSTM(3, **kwargs), "use_cudnn=True"),
        (keras_lstm.LSTM(3, **kwargs), "use_cudnn=True.*use_cudnn='auto'"),
    ):
        if refuses:
            with pytest.raises(ValueError, match=message):
                layer(x, **call_kwargs)
        else:
            layer(x, **call_kwargs)


@pytest.mark.parametrize("use_cudnn", ["auto", False, True])
@pytest.mark.parametrize("implementation", [1, 2])
def test_bidirectional_keeps_use_cudnn_and_implementation(
    use_cudnn, implementation
):
    wrapper = keras.layers.Bidirectional(
        keras_lstm.LSTM(3, use_cudnn=use_cudnn, implementation=implementation)
    )
    for layer in (wrapper.forward_layer, wrapper.backward_layer):
        assert layer.use_cudnn == use_cudnn
        assert layer.cell.implementation == implementation


# On JAX and PyTorch the routes differ from TensorFlow's; each rule is
# asserted with a spy on the path it names (CPU: cuDNN never applies).
@pytest.mark.skipif(
    BACKEND == "tensorflow", reason="TensorFlow's table is above"
)
@pytest.mark.parametrize(
    "kwargs,mask,training,torch_path",
    [
        ({}, None, False, SequencePath.TORCH_CPU),
        ({"go_backwards": True}, None, True, SequencePath.TORCH_CPU),
        ({"stateful": True}, None, False, SequencePath.TORCH_CPU),
        ({"dropout": 0.2}, None, True, SequencePath.TORCH_CPU),
        ({"implementation": 1}, None, False, SequencePath.TORCH_CPU),
        ({"activation": "relu"}, None, False, SequencePath.TORCH_CPU),
        ({"unroll": True}, None, False, SequencePath.TORCH_CPU),
        ({"use_cudnn": False}, None, False, SequencePath.GENERIC),
        ({"recurrent_dropout": 0.2}, None, False, SequencePath.GENERIC),
        (
            {"implementation": 1, "dropout": 0.2},
            None,
            True,
            SequencePath.GENERIC,
        ),
        ({}, "mask", False, SequencePath.GENERIC),
    ],
)
def test_sequence_path_routing_on_jax_and_torch(
    kwargs, mask, training, torch_path, monkeypatch
):
    expected = torch_path if BACKEND == "torch" else SequencePath.GENERIC
    layer = keras_lstm.LSTM(96, **kwargs)
    x = np.ones((2, 4, FEATURES), "float32")
    mask = np.ones((2, 4), bool) if mask else None
    assert layer.sequence_path(mask=mask, training=training) == expected
    calls = []
    generic = keras.layers.RNN.inner_loop

    def spy_generic(self, *args, **kw):
        calls.append(SequencePath.GENERIC)
        return generic(self, *args, **kw)

    monkeypatch.setattr(keras.layers.RNN, "inner_loop", spy_generic)
    if BACKEND == "torch":
        from keras_lstm import torch_sequence

        torch_cpu = torch_sequence.lstm_sequence

        def spy_torch_cpu(*args, **kw):
            calls.append(SequencePath.TORCH_CPU)
            return torch_cpu(*args, **kw)

        monkeypatch.setattr(torch_sequence, "lstm_sequence", spy_torch_cpu)
    layer(x, mask=mask, training=training)
    assert calls == [expected]


# PyTorch's CPU route has two bodies, `torch_sequence` while autograd
# records and Keras's own fallback otherwise; both must be Keras's numbers
# bit for bit, on the grid's near-chaotic weights, where PyTorch's fused
# kernel (`torch._VF.lstm`) was 9e-3 off.
@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's CPU route")
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_torch_cpu_route_is_kerass_fallback_bit_for_bit(
    go_backwards, return_sequences, rng
):
    import torch

    x = rng.standard_normal((BATCH, 50, FEATURES)).astype("float32")
    reference, ours = _pair(
        "layer",
        64,
        x,
        rng,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        return_state=True,
    )
    assert ours.sequence_path() == SequencePath.TORCH_CPU
    with torch.no_grad():
        expected = [to_numpy(t) for t in reference(x)]
        without_grad = [to_numpy(t) for t in ours(x)]
    with_grad = [to_numpy(t.detach()) for t in ours(x)]
    for mine in (without_grad, with_grad):
        for a, b in zip(mine, expected, strict=True):
            np.testing.assert_array_equal(a, b)


_OTHER_BACKENDS = [
    name
    for name in ("tensorflow", "jax", "torch")
    if name != BACKEND and importlib.util.find_spec(name) is not None
]


# The same models, their weights and outputs from this backend, loaded on
# every other installed backend: the file format is the backend's business,
# the numbers are ours. Different backends' kernels round float32
# differently, so this holds them to the forward tolerance, not to 0.
@pytest.mark.slow
@pytest.mark.skipif(not _OTHER_BACKENDS, reason="one backend installed")
@pytest.mark.parametrize("target", _OTHER_BACKENDS)
def test_saved_on_this_backend_loads_on_another(target, tmp_path, rng):
    import os
    import subprocess
    import sys

    stems = _save_models(tmp_path, rng)
    code = _LOAD_IN_FRESH_PROCESS.replace(
        "err == 0.0", f"err <= {FORWARD_ATOL}"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *stems],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": target},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == len(stems)
