"""Running exported files: LiteRT, TFLite Micro and Arm Vela.

- `runner`: `load_tflite(path)` returns a `TFLiteRunner`, float32 in and
  out, on a `Backend`: LiteRT (int16x8 files on TFLite Micro, which alone
  has their kernel).
- `layout`: what a file takes and gives (`FileLayout`, `TensorInfo`), read
  by the runner and both backends.
- `litert`: the LiteRT backend.
- `tflite_micro`: the TFLite Micro backend, and `run_tflite_micro` and
  `tflm_arena_size` on the TFLite Micro interpreter; `tflite_micro_blockers`
  says why a file cannot run there, and every TFLite Micro entry point
  refuses such a file with `TFLiteMicroUnsupportedError` instead of
  running it.
- `vela`: `vela_summary(path)` compiles the file for an Ethos-U NPU.
"""

from keras_lstm.export.runners.layout import TensorInfo
from keras_lstm.export.runners.runner import Backend, TFLiteRunner, load_tflite
from keras_lstm.export.runners.tflite_micro import (
    TFLiteMicroUnsupportedError,
    TFLMArena,
    TFLMResult,
    run_tflite_micro,
    tflite_micro_blockers,
    tflm_arena_size,
)
from keras_lstm.export.runners.vela import VelaSummary, vela_summary

__all__ = [
    "Backend",
    "TFLMArena",
    "TFLMResult",
    "TFLiteMicroUnsupportedError",
    "TFLiteRunner",
    "TensorInfo",
    "VelaSummary",
    "load_tflite",
    "run_tflite_micro",
    "tflite_micro_blockers",
    "tflm_arena_size",
    "vela_summary",
]
