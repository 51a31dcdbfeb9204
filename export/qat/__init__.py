"""Quantization-aware training (QAT) of keras_lstm models for int8 TFLite.

The flow is Keras 3 model -> tfmot QAT model (tf_keras) -> fine-tune ->
int8 TFLite file, with one way out, `keras_lstm.export.to_tflite`:

    qat_model = quantize_model(float_model)     # tf_keras, fake-quantized
    qat_model.compile(...); qat_model.fit(...)  # fine-tune
    to_tflite(qat_model, "model.tflite", quantization="int8",
              representative_data=x)

Four modules, one concept each:

- this package: the public API (`quantize_model`, `to_keras3`,
  `is_qat_model`, `quantize_scope`, and, imported on first access,
  `LayerQuantizeConfig` from `layers`, for `quantize_model(quantize_configs=)`,
  and `KeepBestInt8Epoch` from `selection`);
- `translate`: the Keras 3 graph rebuilt in tf_keras (tfmot 0.8.1 speaks
  only tf_keras), every LSTM as `tf_keras.layers.RNN(TwinLSTMCell)`, and
  the fine-tuned weights copied back;
- `layers`: the tf_keras twin of the cell, which computes its step through
  `keras_lstm.recurrence`, and `LSTMQuantizeConfig`, which models TFLite's
  integer LSTM: int8 symmetric weights with one scale per gate, int8 `h`,
  int16 power-of-two `c`; `QuantizeRegistry`, tfmot's default 8-bit
  registry plus the layers LSTM models use (Conv1D, pooling,
  Normalization, Embedding, RepeatVector, TimeDistributed), each modeled
  on what the converter makes of it;
- `selection`: `KeepBestInt8Epoch`, the `fit` callback that keeps the
  epoch whose int8 file scores best on validation, the start included.

Which ranges the int8 file uses, and why
----------------------------------------
The file is calibrated, not built from the QAT ranges: `to_tflite` takes
the QAT model, `to_keras3` copies its fine-tuned float weights back into the
Keras 3 model, which is lowered to the fused op and calibrated with
`representative_data`. The QAT model contributes weights that tolerate int8
(that is where the accuracy comes from); the converter picks the same weight
scales that QAT simulated (`max |w| / 127` per gate block), and calibration
measures activation ranges on the data as QAT's moving averages did.

We checked whether the converter could keep the QAT (FakeQuant) ranges
instead, with TF 2.21 (`test_converter_cannot_use_qat_ranges` in
`tests/test_qat_layers.py` keeps the evidence):

- The fused op is made from a function carrying `api_implements="lstm_..."`,
  whose body the converter throws away. A QAT graph feeds that function
  fake-quantized weights (FakeQuant outputs, not constants). Even tf_keras's
  own fusable `LSTM` then converts to a WHILE loop with QUANTIZE and
  DEQUANTIZE around it, not to `UNIDIRECTIONAL_SEQUENCE_LSTM`.
- Without weight fake-quant the op fuses, but the QAT conversion (no
  representative data) leaves it float between QUANTIZE/DEQUANTIZE: its
  int16 cell state and 5 intermediates have no FakeQuant to take a range
  from. Adding representative data fails ("We cannot duplicate the value
  since it's not constant", on the op's state).

So the fused integer LSTM needs calibration, and calibration needs the float
Keras 3 model.

Import hygiene: tfmot sets `TF_USE_LEGACY_KERAS=1` when imported. Importing
this package imports neither tfmot nor tf_keras; `layers` does, on the first
call that needs them, and restores the variable and pins `tf.keras` to
Keras 3 first.
"""

import importlib

from keras_lstm.export.qat import translate
from keras_lstm.export.qat.translate import (
    is_qat_model,
    quantize_model,
    quantize_scope,
    to_keras3,
)

__all__ = [
    "KeepBestInt8Epoch",
    "LayerQuantizeConfig",
    "is_qat_model",
    "quantize_model",
    "quantize_scope",
    "to_keras3",
]

# Classes of modules that import tfmot and tf_keras: resolved on first
# access only.
_LAZY = {
    "LayerQuantizeConfig": "keras_lstm.export.qat.layers",
    "KeepBestInt8Epoch": "keras_lstm.export.qat.selection",
}


def __getattr__(name):
    if name in _LAZY:
        translate._layers()  # Keeps Keras 3 in charge before tf_keras loads.
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
