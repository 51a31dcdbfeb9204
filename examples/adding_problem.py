"""The adding problem (Hochreiter & Schmidhuber, 1997), measured.

Each input is a sequence of T steps of (value, marker) pairs: the values are
drawn uniformly from [0, 1]; the marker is 1 at exactly two steps, one in
each half of the sequence, and 0 elsewhere. The target is the sum of the two
marked values. A model that ignores the input and always predicts the mean,
1.0, has MSE Var(U1 + U2) = 2/12 = 0.167: that is the line to beat.

The LSTM's claim is that the gated cell state carries the first marked
value across the whole sequence, where a plain RNN's gradient vanishes. Here
both get the same budget: the same training steps, batch size, optimizer and
learning rate, and about the same number of recurrent parameters
(`keras_lstm.LSTM(32)`: 4,480; `keras.layers.SimpleRNN(64)`: 4,288).

Initialization. The LSTM's gate biases use chrono initialization (Tallec &
Ollivier, 2018, "Can recurrent neural networks warp time?"): forget-gate
biases log(U[1, T - 1]) and input-gate biases their negatives, so that from
the start some units remember for up to T steps. With Keras's default
(forget bias 1, f ≈ 0.73, so 0.73^100 ≈ 1e-14 after the shortest lag at
T = 200) we measured no progress at T = 200 within 2,500 steps. Chrono
initialization only sets biases; the SimpleRNN keeps Keras's defaults
(orthogonal recurrent kernel), which have no gate bias to set.

Usage:
    python examples/adding_problem.py            # T = 100 and 200
    python examples/adding_problem.py --quick    # a smoke run for tests

Writes to --out (default artifacts/adding_problem): learning_curves.png,
results.json, and the trained weights that examples/vanishing_gradient.py
reuses.
"""

import dataclasses
import json
import pathlib
import sys
import time

import _story
import keras
import numpy as np
import tqdm

import keras_lstm

# Var(U1 + U2) for U1, U2 ~ U[0, 1]: the MSE of always predicting 1.0.
BASELINE_MSE = 2.0 / 12.0
# The LSTM has to get below this to count as having solved the task.
SOLVED_MSE = 0.01
KINDS = ("lstm", "simple_rnn")
# Matched recurrent parameter counts: 4 * 32 * (2 + 32 + 1) = 4,480 for the
# LSTM, 64 * (2 + 64 + 1) = 4,288 for the SimpleRNN.
UNITS = {"lstm": 32, "simple_rnn": 64}
LABELS = {
    "lstm": "keras_lstm.LSTM(32)",
    "simple_rnn": "keras.layers.SimpleRNN(64)",
}


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every model gets at one sequence length, whatever its kind."""

    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 5e-3
    eval_every: int = 100
    eval_size: int = 512


# Longer sequences get more steps; both models always get the same.
BUDGETS = {100: Budget(steps=1000), 200: Budget(steps=1200)}
QUICK_BUDGET = Budget(steps=60, batch_size=16, eval_every=20, eval_size=64)


def budget_for(timesteps, quick=False):
    if quick:
        return QUICK_BUDGET
    return BUDGETS.get(timesteps, Budget())


@keras.saving.register_keras_serializable(package="adding_problem")
class ChronoInitializer(keras.initializers.Initializer):
    """LSTM bias `[b_i, b_f, b_c, b_o]` with chrono initialization.

    b_f = log(u), u ~ U[1, max_timesteps - 1], b_i = -b_f, b_c = b_o = 0
    (Tallec & Ollivier, 2018): forget gates start spread over time scales
    up to `max_timesteps` steps.
    """

    def __init__(self, max_timesteps, seed=0):
        self.max_timesteps = max_timesteps
        self.seed = seed

    def __call__(self, shape, dtype=None):
        units = shape[0] // 4
        rng = np.random.default_rng(self.seed)
        forget = np.log(rng.uniform(1.0, self.max_timesteps - 1.0, units))
        bias = np.zeros(shape, "float32")
        bias[:units] = -forget
        bias[units : 2 * units] = forget
        return keras.ops.convert_to_tensor(bias, dtype=dtype)

    def get_config(self):
        return {"max_timesteps": self.max_timesteps, "seed": self.seed}


@dataclasses.dataclass
class Run:
    """One trained model and its learning curve."""

    kind: str
    timesteps: int
    model: keras.Model
    steps: list
    mse: list
    seconds: float

    @property
    def final_mse(self):
        return self.mse[-1]


def make_batch(rng, batch_size, timesteps):
    """Adding-problem inputs `(batch, T, 2)` and targets `(batch, 1)`."""
    values = rng.uniform(0.0, 1.0, (batch_size, timesteps)).astype("float32")
    markers = np.zeros((batch_size, timesteps), "float32")
    rows = np.arange(batch_size)
    half = timesteps // 2
    markers[rows, rng.integers(0, half, batch_size)] = 1.0
    markers[rows, rng.integers(half, timesteps, batch_size)] = 1.0
    inputs = np.stack([values, markers], axis=-1)
    targets = (values * markers).sum(axis=1, keepdims=True)
    return inputs, targets


def build_model(kind, timesteps, seed=0):
    """`Input(T, 2) → recurrent layer → Dense(1)`; `kind` is in `KINDS`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    keras.utils.set_random_seed(seed)
    if kind == "lstm":
        recurrent = keras_lstm.LSTM(
            UNITS[kind],
            unit_forget_bias=False,
            bias_initializer=ChronoInitializer(timesteps, seed=seed),
            name="recurrent",
        )
    else:
        recurrent = keras.layers.SimpleRNN(UNITS[kind], name="recurrent")
    return keras.Sequential(
        [keras.Input((timesteps, 2)), recurrent, keras.layers.Dense(1)],
        name=f"{kind}_T{timesteps}",
    )


def weights_path(out, kind, timesteps):
    return pathlib.Path(out) / f"{kind}_T{timesteps}.weights.h5"


def train(kind, timesteps, budget, seed=0):
    """Trains one model on fresh batches; returns a `Run`.

    The learning curve is the MSE on a fixed held-out set of
    `budget.eval_size` sequences, measured before training and every
    `budget.eval_every` steps.
    """
    model = build_model(kind, timesteps, seed=seed)
    # Clipping keeps the occasional exploding step (SimpleRNN, early LSTM)
    # from wrecking a run; both models get it.
    model.compile(
        keras.optimizers.Adam(budget.learning_rate, clipnorm=1.0), "mse"
    )
    rng = np.random.default_rng(seed)
    x_eval, y_eval = make_batch(
        np.random.default_rng(seed + 1), budget.eval_size, timesteps
    )

    def evaluate():
        return float(model.evaluate(x_eval, y_eval, batch_size=256, verbose=0))

    steps, mse = [0], [evaluate()]
    start = time.perf_counter()
    bar = tqdm.trange(
        budget.steps, desc=f"{LABELS[kind]:>26} T={timesteps}", unit="step"
    )
    for step in bar:
        loss = model.train_on_batch(
            *make_batch(rng, budget.batch_size, timesteps)
        )
        if (step + 1) % budget.eval_every == 0 or step + 1 == budget.steps:
            steps.append(step + 1)
            mse.append(evaluate())
            bar.set_postfix(train=f"{float(loss):.4f}", eval=f"{mse[-1]:.4f}")
    seconds = time.perf_counter() - start
    return Run(kind, timesteps, model, steps, mse, seconds)


def plot(runs, path):
    plt = _story.pyplot()
    lengths = sorted({run.timesteps for run in runs})
    fig, axes = plt.subplots(
        1, len(lengths), figsize=(5.5 * len(lengths), 4), squeeze=False
    )
    for ax, timesteps in zip(axes[0], lengths, strict=True):
        for run in runs:
            if run.timesteps == timesteps:
                ax.plot(run.steps, run.mse, label=LABELS[run.kind])
        ax.axhline(
            BASELINE_MSE, color="grey", ls="--", label="predict 1.0 (0.167)"
        )
        ax.axhline(SOLVED_MSE, color="grey", ls=":", label="solved (0.01)")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("held-out MSE")
        ax.set_title(f"adding problem, T = {timesteps}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv):
    parser = _story.parser(
        __doc__, "tiny budget, for tests", "artifacts/adding_problem"
    )
    add_timesteps_argument(parser)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per model (default: 1000 at T=100, 1200 at T=200)",
    )
    return parser.parse_args(argv)


def add_timesteps_argument(parser):
    """`--timesteps`, which vanishing_gradient.py shares: it reads the
    weights trained here, one file per length."""
    parser.add_argument(
        "--timesteps",
        type=int,
        nargs="+",
        default=None,
        help="sequence lengths (default: 100 200; --quick: 20)",
    )


def sequence_lengths(args):
    """The lengths `--timesteps` asks for, or the defaults."""
    return args.timesteps or ([20] if args.quick else [100, 200])


def main(argv=None):
    args = parse_args(argv)
    lengths = sequence_lengths(args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"Baseline (always predict 1.0): MSE {BASELINE_MSE:.3f}.")
    runs, budgets = [], {}
    for timesteps in lengths:
        budget = budget_for(timesteps, args.quick)
        if args.steps is not None:
            budget = dataclasses.replace(budget, steps=args.steps)
        budgets[timesteps] = budget
        print(
            f"T={timesteps}: {budget.steps} steps of batch "
            f"{budget.batch_size}, Adam lr {budget.learning_rate}, clipnorm "
            "1, for both models."
        )
        for kind in KINDS:
            run = train(kind, timesteps, budget)
            run.model.save_weights(weights_path(out, kind, timesteps))
            runs.append(run)
    plot(runs, out / "learning_curves.png")
    results = {
        "budgets": {t: dataclasses.asdict(b) for t, b in budgets.items()},
        "baseline_mse": BASELINE_MSE,
        "solved_mse": SOLVED_MSE,
        "results": [
            {
                "model": LABELS[run.kind],
                "kind": run.kind,
                "timesteps": run.timesteps,
                "units": UNITS[run.kind],
                "recurrent_params": run.model.get_layer(
                    "recurrent"
                ).count_params(),
                "final_mse": run.final_mse,
                "seconds": run.seconds,
                "curve": {"step": run.steps, "mse": run.mse},
            }
            for run in runs
        ],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\n{'model':>26} {'T':>4} {'final MSE':>10} {'time':>7}")
    for run in runs:
        print(
            f"{LABELS[run.kind]:>26} {run.timesteps:>4} "
            f"{run.final_mse:>10.4f} {run.seconds:>6.0f}s"
        )
    solved = all(
        run.final_mse < SOLVED_MSE for run in runs if run.kind == "lstm"
    )
    if not args.quick:
        print(
            f"\nLSTM below {SOLVED_MSE} MSE at every T: "
            f"{'YES' if solved else 'NO'}"
        )
    print(f"Wrote {out / 'learning_curves.png'} and {out / 'results.json'}.")
    return runs


if __name__ == "__main__":
    main(sys.argv[1:])
