"""Turns trained keras_lstm models into deployable files.

`to_tflite` writes a fused, builtin-only TFLite file (every LSTM one
`UNIDIRECTIONAL_SEQUENCE_LSTM` op) and checks it against Keras;
`load_tflite` runs it with float32 in and out; `verify_tflite` checks a
file already on disk against its Keras model. `run_tflite_micro`,
`tflm_arena_size` and `vela_summary` check it on TFLite Micro and for Arm
Ethos-U NPUs; `tflite_micro_blockers` says why TFLite Micro cannot run a
file, and its entry points refuse such a file
(`TFLiteMicroUnsupportedError`) rather than return NaN. `to_saved_model`
writes a standalone SavedModel with a dynamic batch that loads without
keras_lstm. `quantize_model` prepares a model for quantization-aware
training with tensorflow-model-optimization; `to_tflite` takes the
fine-tuned result. `to_c_source` writes a file as a `.h`/`.cc` pair for
TFLite Micro firmware.
"""

from keras_lstm.export.c_source import CSourceReport, to_c_source
from keras_lstm.export.qat import quantize_model, to_keras3
from keras_lstm.export.quantization import Quantization
from keras_lstm.export.runners import (
    TensorInfo,
    TFLiteMicroUnsupportedError,
    TFLiteRunner,
    TFLMArena,
    TFLMResult,
    VelaSummary,
    load_tflite,
    run_tflite_micro,
    tflite_micro_blockers,
    tflm_arena_size,
    vela_summary,
)
from keras_lstm.export.saved_model import (
    SavedModelReport,
    SignatureTensor,
    to_saved_model,
)
from keras_lstm.export.tflite import ExportError, TFLiteReport, to_tflite
from keras_lstm.export.verification import Verification, verify_tflite

__all__ = [
    "CSourceReport",
    "ExportError",
    "Quantization",
    "SavedModelReport",
    "SignatureTensor",
    "TFLMArena",
    "TFLMResult",
    "TFLiteMicroUnsupportedError",
    "TFLiteReport",
    "TFLiteRunner",
    "TensorInfo",
    "Verification",
    "VelaSummary",
    "load_tflite",
    "quantize_model",
    "run_tflite_micro",
    "tflite_micro_blockers",
    "tflm_arena_size",
    "to_c_source",
    "to_keras3",
    "to_saved_model",
    "to_tflite",
    "vela_summary",
    "verify_tflite",
]
