"""Stage 1 of `to_tflite`: every argument checked, and what follows.

`build` validates every argument and the model before any work starts and
returns one `Plan`, for every kind of model:

- one data input and one output (float sequences or token ids, maybe
  masked), whose LSTMs keep their state in the fused op
  (`StateLowering.FUSED`) or, in a single-frame file, as explicit inputs
  and outputs (`StateLowering.EXTERNAL`);
- several inputs or outputs, or an LSTM whose state crosses the model's
  boundary (`keras_lstm.export.multi_io` says when): inputs and outputs
  are named, and the LSTMs that carry state are unrolled
  (`StateLowering.EXPLICIT`).

Calibration is part of the plan: which sequences calibrate an integer
file and which check it (`keras_lstm.export.calibration.split`).
"""

import dataclasses
import enum
import warnings

import keras
import numpy as np

from keras_lstm.export import (
    arguments,
    calibration,
    contract,
    inputs,
    lowering,
    models,
    multi_io,
    qat,
)
from keras_lstm.export.quantization import Quantization
from keras_lstm.layers import _variant_summary

STREAMING_CHECK_STEPS = 16
"""Check sequence length of a streaming file when nothing else fixes one."""


class StateLowering(enum.Enum):
    """Where an exported LSTM keeps its state between steps and calls."""

    FUSED = "fused"
    """In the fused op's variable tensors (reset them per sequence)."""
    EXTERNAL = "external"
    """A single-frame file's explicit `h_i`/`c_i` inputs and outputs."""
    EXPLICIT = "explicit"
    """Named inputs and outputs of a model with several of them; LSTMs
    that take or return state are unrolled (`multi_io`)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every argument of an export, checked, and what follows from them.

    Attributes:
        path: The file to write (absolute).
        model: The Keras 3 model the file stands for (a QAT model is
            translated back; a stateful one made stateless).
        quantization: The `Quantization` mode.
        batch_size: The file's fixed batch size.
        state: The `StateLowering`.
        streaming: Whether the file takes one frame per invocation.
        file_steps: The file's time length (1 when streaming); `None` for
            named inputs (see `shapes`).
        check_steps: The check sequences' length.
        input: The model's one data input (`inputs.ModelInput`), or `None`
            for named inputs.
        shapes: Each named input's shape without the batch axis.
        names_in: The file's input names, for named inputs.
        names_out: The file's output names, for named outputs.
        split: Calibration and check sequences.
        criterion: The caller's `tolerance`, `min_agreement` and
            `max_relative_error` (`verification.criterion`).
        progress: The calibration progress callback, or `None`.
    """

    path: str
    model: keras.Model
    quantization: Quantization
    batch_size: int
    state: StateLowering
    streaming: bool
    file_steps: int | None
    check_steps: int | None
    input: inputs.ModelInput | None
    shapes: tuple | None
    names_in: tuple[str, ...] | None
    names_out: tuple[str, ...] | None
    split: calibration.Split
    criterion: dict
    progress: object

    @property
    def padding(self):
        """A masked model's `contract.Padding`, else `None`."""
        return None if self.input is None else self.input.padding

    def check_set(self) -> tuple[list[np.ndarray], str]:
        """All of the check data, one array per input, and its name.

        Without any, generated data that fits the inputs.
        """
        if self.split.check is not None:
            check = self.split.check
            return (
                list(check) if isinstance(check, list) else [check],
                self.split.check_name,
            )
        if self.input is None:
            return inputs.generated_named(
                self.shapes, batch_size=self.batch_size
            )
        check, name = inputs.generated(
            self.input, batch_size=self.batch_size, timesteps=self.check_steps
        )
        return [check], name


def build(
    model,
    path,
    *,
    quantization,
    representative_data,
    check_data,
    batch_size,
    timesteps,
    streaming,
    external_state,
    tolerance,
    min_agreement,
    max_relative_error,
    progress,
) -> Plan:
    """Checks every argument of `to_tflite` and the model; see there.

    Raises:
        TypeError: for an argument of the wrong type.
        ValueError: for a bad argument or a model the export cannot
            express, saying what to change.
    """
    common = dict(
        path=arguments.output_path(path),
        quantization=Quantization.parse(quantization),
        batch_size=arguments.positive_int("batch_size", batch_size),
    )
    streaming = arguments.flag("streaming", streaming)
    external_state = arguments.flag("external_state", external_state)
    common["criterion"] = dict(
        tolerance=arguments.tolerance(tolerance),
        min_agreement=arguments.share("min_agreement", min_agreement),
        max_relative_error=arguments.positive_float(
            "max_relative_error", max_relative_error
        ),
    )
    common["progress"] = arguments.progress(progress)
    if qat.is_qat_model(model):
        model = _from_qat(model, common["quantization"])
    elif multi_io.applies(model):
        return _named(
            model,
            common,
            representative_data,
            check_data,
            timesteps,
            streaming or external_state,
        )
    return _sequences(
        model,
        common,
        representative_data,
        check_data,
        arguments.positive_int("timesteps", timesteps, allow_none=True),
        streaming,
        external_state,
    )


def _from_qat(model, quantization):
    # A tfmot model is tf_keras; its fine-tuned weights go back into the
    # Keras 3 architecture, which lowers and calibrates (see qat for why
    # the QAT ranges themselves cannot reach the fused op).
    if not quantization.is_integer:
        raise ValueError(
            "Received a QAT model with quantization="
            f"{quantization.value!r}. A QAT model is trained for integer "
            "inference: use 'int8' (or 'int16x8'), or export "
            "keras_lstm.export.to_keras3(qat_model) for a float file."
        )
    return qat.to_keras3(model)


def _sequences(
    model,
    common,
    representative_data,
    check_data,
    timesteps,
    streaming,
    external_state,
):
    quantization = common["quantization"]
    model, streaming = _stateful_as_streaming(model, streaming)
    if external_state and not streaming:
        raise ValueError(
            "external_state=True needs streaming=True: explicit state is "
            "for single-frame files."
        )
    model_input = inputs.describe(model)
    data = inputs.data("representative_data", representative_data, model_input)
    check = inputs.data("check_data", check_data, model_input)
    if data is None and quantization.needs_representative_data:
        raise ValueError(
            f"quantization={quantization.value!r} needs "
            f"`representative_data`: {model_input.expected()} of typical "
            "inputs (the training set, or a random sample of a few hundred "
            "of its sequences) to calibrate activation ranges."
        )
    file_steps, check_steps = _resolve_timesteps(
        model_input.timesteps,
        timesteps,
        {"representative_data": data, "check_data": check},
        streaming,
    )
    if external_state and quantization.is_integer and model_input.padding:
        raise ValueError(
            f"external_state=True with quantization={quantization.value!r} "
            "is not supported for a masked model: its calibration runs "
            "whole padded sequences step by step. Use a float "
            "quantization, or streaming=True without external_state."
        )
    split = calibration.split(
        data, check, calibrated=quantization.needs_representative_data
    )
    # LSTM variants are written into the fused op (rewrite.
    # write_lstm_variants; integer files before calibrating, conversion)
    # and computed in builtin ops by external-state steps
    # (lowering.ExternalStateStep). Refused, naming the variant: int8
    # external-state steps, and the fused integer files no runtime runs
    # faithfully (lowering.check_lstm_layer).
    if external_state and quantization is Quantization.INT8:
        _refuse_int8_step_variants(model)
    lowering.check_model(
        model,
        streaming=streaming,
        variants=True,
        quantization=None if external_state else quantization,
    )
    return Plan(
        model=model,
        state=(
            StateLowering.EXTERNAL if external_state else StateLowering.FUSED
        ),
        streaming=streaming,
        file_steps=file_steps,
        check_steps=check_steps,
        input=model_input,
        shapes=None,
        names_in=None,
        names_out=None,
        split=split,
        **common,
    )


def _refuse_int8_step_variants(model):
    """An int8 external-state file refuses LSTM variants, naming them.

    Its state crosses the file in int8. Measured (2026-12-03, random
    weights, held-out data): a stacked model with every variant missed
    the export's own criterion, 14 % RMS error relative to the outputs'
    spread on its check set (49 % over 64 steps) against 10 %; int16x8
    gave 2.3 % (1.2 %).
    """
    for layer in models.iter_layers(model):
        cell = getattr(layer, "cell", None)
        if models.is_lstm_layer(layer) and getattr(cell, "_is_variant", False):
            raise ValueError(
                f"LSTM layer {layer.name!r} is an LSTM variant "
                f"({_variant_summary(cell)}), which quantization='int8' "
                "with external_state=True does not export: the file "
                "carries its state in int8, and a variant model missed the "
                "export's 10 % criterion by far. Use "
                "quantization='int16x8' (int16 state, for TFLite Micro) or "
                "'none'."
            )


def _named(model, common, representative_data, check_data, timesteps, stream):
    quantization = common["quantization"]
    if quantization.is_integer:
        multi_io.refuse_integer(model, quantization)
    if stream:
        raise ValueError(
            f"Model {model.name!r} has several inputs or outputs, or an LSTM "
            "that returns its state: its state is already explicit. Export "
            "it with streaming=False and external_state=False, and call the "
            "file once per step (e.g. a decoder step model with timesteps=1)."
        )
    lowering.check_model(model, explicit_state=True)
    shapes = multi_io.input_shapes(model, timesteps)
    data = multi_io.data(
        "representative_data", representative_data, model, shapes
    )
    check = multi_io.data("check_data", check_data, model, shapes)
    if check is None and data is not None:
        check_name = "representative_data (no calibration)"
        check = data
    else:
        check_name = "check_data"
    return Plan(
        model=model,
        state=StateLowering.EXPLICIT,
        streaming=False,
        file_steps=None,
        check_steps=None,
        input=None,
        shapes=tuple(shapes),
        names_in=tuple(contract.input_names([t.name for t in model.inputs])),
        names_out=tuple(contract.output_names(len(model.outputs))),
        split=calibration.Split(None, check, check_name),
        **common,
    )


def _resolve_timesteps(model_steps, timesteps, arrays, streaming):
    """(file timesteps, check timesteps); `arrays` maps names to data."""
    if model_steps is not None and timesteps not in (None, model_steps):
        raise ValueError(
            f"Received timesteps={timesteps}, but the model's input has a "
            f"fixed length of {model_steps}. Drop `timesteps` or rebuild "
            "the model with keras.Input(shape=(None, features))."
        )
    steps = model_steps or timesteps
    given = {name: a for name, a in arrays.items() if a is not None}
    if steps is None and streaming:
        steps = next(
            (a.shape[1] for a in given.values()), STREAMING_CHECK_STEPS
        )
    if steps is None:
        raise ValueError(
            "The model's time dimension is None and TFLite's fused LSTM "
            "needs a fixed length: pass timesteps=N (the length the file "
            "will take), or export with streaming=True (one frame per call, "
            "any length)."
        )
    for name, array in given.items():
        if array.shape[1] != steps:
            takes = "the model takes" if streaming else "the file takes"
            raise ValueError(
                f"`{name}` has sequences of {array.shape[1]} steps but "
                f"{takes} {steps}. Pad or crop them to the same length."
            )
    return (1 if streaming else steps), steps


def _stateful_as_streaming(model, streaming):
    """(model, streaming): a stateful model exports as a streaming file.

    A `stateful=True` layer carries its state from one call to the next,
    as the streaming file's variable tensors do from frame to frame. The
    export lowers a stateless copy (same weights; `models.stateless_model`)
    and checks the file against it on whole sequences, which is what the
    stateful model gives on them, fed in chunks after `reset_states()`.
    Without `streaming=True` the file would start each call from a zero
    state, which is not what the stateful model does: streaming is
    implied, with a warning.
    """
    if not isinstance(model, keras.Model) or not models.is_graph_model(
        model
    ):
        return model, streaming  # inputs.describe says what is wrong.
    stateful = models.stateful_layers(model)
    if not stateful:
        return model, streaming
    if not streaming:
        names = ", ".join(repr(layer.name) for layer in stateful)
        warnings.warn(
            f"Model {model.name!r} has stateful layers ({names}): exporting "
            "a streaming file (streaming=True), one frame per invocation, "
            "whose LSTM state persists between invocations as the stateful "
            "layers' does between calls; reset it where you would call "
            "reset_states(). Pass streaming=True to silence this warning.",
            stacklevel=5,
        )
    return models.stateless_model(model), True
