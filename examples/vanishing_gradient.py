"""Why the LSTM solves the adding problem: how far back gradients reach.

For a model from examples/adding_problem.py, this measures how much the last
hidden state h_T depends on the input x_t at each earlier step:

    g(T - t) = ‖∂h_T / ∂x_t‖   (Frobenius norm of the units × 2 Jacobian,
                                averaged over a batch of sequences)

and plots it against the lag T - t on a log scale, for `keras.layers.SimpleRNN`
and `keras_lstm.LSTM`, at initialization and after training. A plain RNN's
curve falls off geometrically with the lag: the first marked value, which
sits up to T steps back, barely reaches the loss. The LSTM's additive cell
state keeps it flat.

The trained weights are those that adding_problem.py saved (same seed, so
"at initialization" is the very starting point of that training run). When
they are missing, this script trains them with adding_problem's budget.

Usage:
    python examples/adding_problem.py && python examples/vanishing_gradient.py
    python examples/vanishing_gradient.py --quick    # a smoke run for tests
"""

import json
import pathlib
import sys

import _story
import numpy as np
import tensorflow as tf

# Examples are scripts, not a package: the adding problem's data, models and
# training live in one place, next to this file.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import adding_problem  # noqa: E402

# Sequences averaged over for each curve.
PROBE_BATCH = 32
# Where norms that underflowed to exactly 0 are drawn on the log axis.
UNDERFLOW_FLOOR = 1e-30


def gradient_norms(model, inputs):
    """Mean ‖∂h_T/∂x_t‖ over the batch, for every t: shape `(T,)`.

    `model` is an adding-problem model; h_T is its recurrent layer's output.
    The Jacobian is built one hidden unit at a time (one backward pass per
    unit) because every t is wanted at once.
    """
    layer = model.get_layer("recurrent")
    inputs = tf.constant(inputs, tf.float32)
    units = layer.units

    @tf.function
    def row(direction):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            h_last = layer(inputs)
            projected = tf.reduce_sum(h_last * direction, axis=-1)
        return tape.gradient(projected, inputs)

    squared = np.zeros(inputs.shape[:2], "float64")
    for unit in range(units):
        direction = tf.one_hot(unit, units)
        squared += np.sum(np.square(row(direction).numpy()), axis=-1)
    return np.sqrt(squared).mean(axis=0)


def trained_model(kind, timesteps, weights_dir, quick):
    """The adding-problem model, from saved weights or trained now."""
    path = adding_problem.weights_path(weights_dir, kind, timesteps)
    if path.is_file():
        model = adding_problem.build_model(kind, timesteps)
        model.load_weights(path)
        return model
    print(f"No weights at {path}; training {kind} at T={timesteps} now.")
    budget = adding_problem.budget_for(timesteps, quick)
    run = adding_problem.train(kind, timesteps, budget)
    path.parent.mkdir(parents=True, exist_ok=True)
    run.model.save_weights(path)
    return run.model


def plot(curves, path):
    plt = _story.pyplot()
    lengths = sorted({timesteps for timesteps, _, _ in curves})
    fig, axes = plt.subplots(
        1, len(lengths), figsize=(5.5 * len(lengths), 4), squeeze=False
    )
    colors = {"lstm": "C0", "simple_rnn": "C1"}
    styles = {"initialization": ":", "trained": "-"}
    for ax, timesteps in zip(axes[0], lengths, strict=True):
        for (length, kind, stage), norms in curves.items():
            if length != timesteps:
                continue
            lag = np.arange(timesteps)[::-1]  # T - t for t = 1..T
            ax.plot(
                lag,
                np.maximum(norms, UNDERFLOW_FLOOR),
                color=colors[kind],
                ls=styles[stage],
                label=f"{adding_problem.LABELS[kind]}, {stage}",
            )
        ax.axhline(UNDERFLOW_FLOOR, color="grey", ls=":", lw=1)
        ax.annotate(
            "exactly 0 in float32 (drawn here)",
            (0, UNDERFLOW_FLOOR),
            textcoords="offset points",
            xytext=(2, 3),
            fontsize=7,
            color="grey",
        )
        ax.set_yscale("log")
        ax.set_xlabel("lag T − t (steps)")
        ax.set_ylabel("‖∂h_T / ∂x_t‖")
        ax.set_title(f"gradient reach, T = {timesteps}")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv):
    parser = _story.parser(
        __doc__, "tiny settings, for tests", "artifacts/vanishing_gradient"
    )
    parser.add_argument(
        "--weights",
        default="artifacts/adding_problem",
        help="where adding_problem.py saved its weights (default: %(default)s)",
    )
    adding_problem.add_timesteps_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    lengths = adding_problem.sequence_lengths(args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves = {}
    for timesteps in lengths:
        probe, _ = adding_problem.make_batch(
            np.random.default_rng(123), PROBE_BATCH, timesteps
        )
        for kind in adding_problem.KINDS:
            initial = adding_problem.build_model(kind, timesteps)
            curves[timesteps, kind, "initialization"] = gradient_norms(
                initial, probe
            )
            model = trained_model(kind, timesteps, args.weights, args.quick)
            curves[timesteps, kind, "trained"] = gradient_norms(model, probe)
    plot(curves, out / "vanishing_gradient.png")
    summary = [
        {
            "timesteps": timesteps,
            "model": adding_problem.LABELS[kind],
            "stage": stage,
            # norms[0] is t = 1 (lag T - 1), norms[-1] is t = T (lag 0).
            "norm_lag_0": float(norms[-1]),
            "norm_lag_max": float(norms[0]),
            "norms_by_t": [float(v) for v in norms],
        }
        for (timesteps, kind, stage), norms in curves.items()
    ]
    (out / "vanishing_gradient.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\n{'model':>26} {'T':>4} {'stage':>15} "
        f"{'lag 0':>9} {'lag T-1':>9} {'ratio':>9}"
    )
    for row in summary:
        ratio = row["norm_lag_max"] / max(row["norm_lag_0"], 1e-30)
        print(
            f"{row['model']:>26} {row['timesteps']:>4} {row['stage']:>15} "
            f"{row['norm_lag_0']:>9.2e} {row['norm_lag_max']:>9.2e} "
            f"{ratio:>9.2e}"
        )
    print(f"Wrote {out / 'vanishing_gradient.png'}.")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
