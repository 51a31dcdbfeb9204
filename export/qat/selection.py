"""Which QAT weights to ship: the epoch whose int8 file scores best.

QAT is a fine-tune, and a fine-tune can make the int8 file worse than the
post-training one. `KeepBestInt8Epoch` is a tf_keras callback for the QAT
model's `fit`: it exports the int8 file of the starting weights and of every
epoch (`keras_lstm.export.to_tflite`, as the final export will), scores each
on held-out validation data on LiteRT, and at the end of training restores
the weights of the best. The start counts as epoch 0 and a later epoch must
score strictly better, so a fine-tune that helps nothing on validation is
dropped: QAT weights that never moved export the post-training file itself,
byte for byte.

Only the trainable (float) weights are restored; the quantizers' ranges keep
what the last epoch learned, since the file is calibrated, not built from
them (see `keras_lstm.export.qat`).

Importing this module imports tf_keras (through `translate._layers()`, which
keeps Keras 3 in charge); `keras_lstm.export.qat` resolves
`KeepBestInt8Epoch` from here on first access.
"""

import pathlib
import tempfile
from collections.abc import Callable

import numpy as np

from keras_lstm.export.qat import translate
from keras_lstm.export.runners import load_tflite
from keras_lstm.export.tflite import to_tflite

tf_keras = translate._layers().tf_keras

_SCORES = {
    # name: (score(predictions, targets), mode)
    "accuracy": (
        lambda p, y: float(
            np.mean(
                np.argmax(p, -1)
                == (np.argmax(y, -1) if np.ndim(y) == np.ndim(p) else y)
            )
        ),
        "max",
    ),
    "mse": (
        lambda p, y: float(np.mean((p - np.reshape(y, np.shape(p))) ** 2)),
        "min",
    ),
}


class KeepBestInt8Epoch(tf_keras.callbacks.Callback):
    """Restores the QAT weights whose int8 file scores best on validation.

    Pass it to the QAT model's `fit`. Before the first epoch and after
    each, it writes the int8 file of the current weights to a temporary
    directory with `to_tflite(model, ..., quantization="int8",
    representative_data=..., **export_kwargs)`, runs it on LiteRT over
    `validation_data`, and scores the outputs. With `s_0` the start's
    score and `s_k` epoch `k`'s (k = 1..n), it keeps the earliest best,

        best = min { k : s_k = max(s_0, ..., s_n) }    (min(...) for "min")

    and restores that candidate's trainable weights when training ends.

    Example:

    ```python
    keep = qat.KeepBestInt8Epoch((x_val, y_val), representative_data=x_train)
    qat_model.fit(x_train, y_train, epochs=10, callbacks=[keep])
    keep.best_epoch   # 0: the fine-tune was dropped
    to_tflite(qat_model, "model.tflite", quantization="int8",
              representative_data=x_train)
    ```

    Args:
        validation_data: `(x, y)`, data neither the float model nor QAT
            trains on, and not the test set you report.
        representative_data: The sequences that calibrate each int8 file,
            as for the final `to_tflite` call.
        score: `"accuracy"` (argmax against class ids or one-hot targets),
            `"mse"`, or `score(predictions, y) -> float`.
        mode: `"max"`, `"min"`, or `"auto"` (default): the named scores
            know theirs; a callable needs `"max"` or `"min"`.
        **export_kwargs: More `to_tflite` arguments (`tolerance`,
            `batch_size`, `timesteps`, ...), as for the final export.

    Attributes:
        scores: After `fit`, the score of the start, then of each epoch.
        best_epoch: After `fit`, the candidate restored (0: the start).
    """

    def __init__(
        self,
        validation_data: tuple,
        *,
        representative_data: np.ndarray,
        score: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
        mode: str = "auto",
        **export_kwargs,
    ):
        super().__init__()
        if (
            not isinstance(validation_data, (tuple, list))
            or len(validation_data) != 2
            or len(validation_data[0]) != len(validation_data[1])
        ):
            raise ValueError(
                "Received an invalid value for argument `validation_data`: "
                "expected a pair (x, y) with one target per sequence, the "
                "held-out data each epoch's int8 file is scored on."
            )
        if callable(score):
            if mode not in ("max", "min"):
                raise ValueError(
                    "Received an invalid value for argument `mode`: "
                    f"{mode!r}. A callable `score` needs mode='max' (higher "
                    "is better) or mode='min'."
                )
            self._score = score
        elif score in _SCORES:
            self._score, default = _SCORES[score]
            if mode not in ("auto", default):
                raise ValueError(
                    f"Received an invalid value for argument `mode`: {mode!r}"
                    f". score={score!r} is better when {default}imized; "
                    "leave mode='auto'."
                )
            mode = default
        else:
            raise ValueError(
                f"Received an invalid value for argument `score`: {score!r}. "
                f"Expected one of {sorted(_SCORES)} or a callable "
                "score(predictions, y) -> float."
            )
        fixed = {"quantization", "representative_data"} & set(export_kwargs)
        if fixed:
            raise ValueError(
                f"Received an invalid argument {sorted(fixed)[0]}: "
                "KeepBestInt8Epoch exports int8 files calibrated on "
                "`representative_data`, its own argument; pass only other "
                "to_tflite arguments (tolerance, batch_size, timesteps, ...)."
            )
        self._better = (
            (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
        )
        self.validation_data = validation_data
        self.representative_data = representative_data
        self.export_kwargs = export_kwargs
        self.scores: list[float] = []
        self.best_epoch: int | None = None

    def _score_file(self):
        path = str(pathlib.Path(self._directory.name) / "epoch.tflite")
        to_tflite(
            self.model,
            path,
            quantization="int8",
            representative_data=self.representative_data,
            **self.export_kwargs,
        )
        x, y = self.validation_data
        score = float(self._score(load_tflite(path).predict(x), y))
        if not self.scores or self._better(score, self.scores[self.best_epoch]):
            self.best_epoch = len(self.scores)
            self._best = [v.numpy() for v in self.model.trainable_weights]
        self.scores.append(score)

    def on_train_begin(self, logs=None):
        if not translate.is_qat_model(self.model):
            raise TypeError(
                "KeepBestInt8Epoch scores int8 files of a QAT model: pass it "
                "to the fit() of the model keras_lstm.export.quantize_model "
                f"returned, not of {type(self.model).__name__}."
            )
        self._directory = tempfile.TemporaryDirectory(prefix="keras_lstm_qat")
        self.scores, self.best_epoch = [], None
        self._score_file()

    def on_epoch_end(self, epoch, logs=None):
        self._score_file()

    def on_train_end(self, logs=None):
        for variable, value in zip(
            self.model.trainable_weights, self._best, strict=True
        ):
            variable.assign(value)
        self._best = None
        self._directory.cleanup()
