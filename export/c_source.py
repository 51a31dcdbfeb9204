"""C++ source for microcontrollers: a TFLite file as a `.h`/`.cc` pair.

TFLite Micro targets usually have no file system: the model is compiled
into the firmware as a byte array (what `xxd -i` gives, as in TFLite
Micro's examples). `to_c_source` writes that array, aligned to 16 bytes
(TFLite Micro reads the flatbuffer in place, and its tensors' buffers
must be aligned), with what the C++ caller needs beside it: its length,
the tensor arena size TFLite Micro was measured to need
(`runners.tflm_arena_size`), and each input's and output's scale and zero
point (to quantize frames and dequantize results). Both files are written
atomically (`files.write_atomic`).
"""

import dataclasses
import os
import pathlib
import re

from keras_lstm.export import files, runners
from keras_lstm.export.inspection import FUSED_OPS
from keras_lstm.export.runners.tflite_micro import refuse_blocked

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BYTES_PER_LINE = 12
# TFLite Micro needs 16-byte aligned buffers (`kBufferAlignment`, and
# `alignas(16)` in its examples' model arrays).
ALIGNMENT = 16


@dataclasses.dataclass(frozen=True)
class CSourceReport:
    """What `to_c_source` wrote.

    Attributes:
        header: The `.h` file.
        source: The `.cc` file.
        variable: The array's C++ name; `<variable>_len`,
            `<variable>_arena_size`, ... are named after it.
        model_bytes: The model's size in bytes.
        arena_size: The tensor arena size written (bytes).
        arena_measured: Whether `arena_size` was measured with TFLite
            Micro (`tflm_arena_size`) rather than given.
    """

    header: str
    source: str
    variable: str
    model_bytes: int
    arena_size: int
    arena_measured: bool


def _tflite_path(model):
    path = getattr(model, "path", model)  # A TFLiteReport, or a path.
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "Received an invalid value for argument `model`: expected a "
            ".tflite path or the TFLiteReport that to_tflite returned, got "
            f"{type(model).__name__}."
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at {path!r}.")
    return path


def _check_stem(out_stem):
    if not isinstance(out_stem, (str, os.PathLike)):
        raise TypeError(
            "Received an invalid value for argument `out_stem`: expected a "
            f"path without suffix (str or os.PathLike), got {out_stem!r}."
        )
    stem = pathlib.Path(os.path.abspath(os.fspath(out_stem)))
    if stem.suffix in (".h", ".cc", ".c", ".cpp"):
        raise ValueError(
            f"Received out_stem={os.fspath(out_stem)!r}; give the path "
            f"without suffix ({stem.with_suffix('')}), to which .h and .cc "
            "are added."
        )
    if not stem.parent.is_dir():
        raise FileNotFoundError(
            f"Received an invalid value for argument `out_stem`: the "
            f"directory {str(stem.parent)!r} does not exist. Create it first."
        )
    return stem


def _check_variable(variable, stem):
    if variable is None:
        variable = re.sub(r"\W", "_", stem.name)
        if not variable or variable[0].isdigit():
            variable = "model_" + variable
        variable = variable + ("" if variable.endswith("model") else "_model")
    if not isinstance(variable, str) or not _IDENTIFIER.match(variable):
        raise ValueError(
            f"Received an invalid value for argument `variable`: "
            f"{variable!r}. Expected a C++ identifier, e.g. 'g_model'."
        )
    return variable


def _check_arena(arena_size):
    if arena_size is None:
        return None
    if (
        isinstance(arena_size, bool)
        or not isinstance(arena_size, int)
        or arena_size <= 0
    ):
        raise ValueError(
            "Received an invalid value for argument `arena_size`: "
            f"{arena_size!r}. Expected a positive number of bytes, or None "
            "to measure it with TFLite Micro."
        )
    return arena_size


def _float_literal(value):
    return f"{float(value)!r}f" if value is not None else "0.0f"


def _state_note(runner):
    """Header lines saying where the file keeps its LSTM state."""
    if runner.external_state:
        return [
            "// The LSTM state is explicit: after each Invoke() copy every",
            "// h_i_out / c_i_out output to its h_i / c_i input; set them to",
            "// zero (their zero point) before each new sequence.",
        ]
    return [
        "// The fused LSTM keeps its state in variable tensors: call",
        "// interpreter.Reset() before each new sequence.",
    ]


def _streaming_note(runner):
    """Header lines for a streaming file whose state lives in the op."""
    if not runner.streaming or not any(op in FUSED_OPS for op in runner.ops):
        return []
    return [
        "// STREAMING: this file relies on the LSTM's variable tensors",
        "// keeping h and c between Invoke() calls. TFLite Micro's",
        "// reference kernels do; its CMSIS-NN LSTM kernel (the usual",
        "// Cortex-M build) restarts every Invoke from zero state and",
        "// gives wrong answers without an error. For CMSIS-NN, export",
        "// with external_state=True (state as explicit inputs/outputs).",
    ]


def _quantization_lines(variable, kind, tensors):
    """Declarations (for the .h) and definitions (for the .cc)."""
    count = len(tensors)
    scales = ", ".join(_float_literal(t.scale) for t in tensors)
    zeros = ", ".join(str(t.zero_point or 0) for t in tensors)
    names = "; ".join(
        f"{i}: {t.name} {list(t.shape)} {t.dtype}"
        for i, t in enumerate(tensors)
    )
    header = [
        f"// {kind.capitalize()}s ({names}).",
        "// Scale and zero point: real = scale * (q - zero_point); "
        "scale 0 means a float32 tensor.",
        f"constexpr int {variable}_{kind}_count = {count};",
        f"extern const float {variable}_{kind}_scale[{count}];",
        f"extern const int {variable}_{kind}_zero_point[{count}];",
    ]
    source = [
        f"const float {variable}_{kind}_scale[{count}] = {{{scales}}};",
        f"const int {variable}_{kind}_zero_point[{count}] = {{{zeros}}};",
    ]
    return header, source


def _byte_lines(content):
    for start in range(0, len(content), _BYTES_PER_LINE):
        chunk = content[start : start + _BYTES_PER_LINE]
        yield "    " + ", ".join(f"0x{b:02x}" for b in chunk) + ","


def to_c_source(
    model,
    out_stem: str | os.PathLike,
    *,
    variable: str | None = None,
    arena_size: int | None = None,
) -> CSourceReport:
    """Writes a TFLite file as C++ source for TFLite Micro: `.h` and `.cc`.

    The `.cc` defines `alignas(16) const unsigned char <variable>[]`, the
    file's bytes; the `.h` declares it and defines
    `<variable>_len`, `<variable>_arena_size` (the tensor arena TFLite
    Micro needs, in bytes) and, per input and output, its scale and zero
    point (`<variable>_input_scale[]`, `<variable>_input_zero_point[]`,
    `<variable>_output_scale[]`, `<variable>_output_zero_point[]`).

    Args:
        model: A `.tflite` path, or the `TFLiteReport` from `to_tflite`.
        out_stem: The path without suffix: writes `<out_stem>.h` and
            `<out_stem>.cc`. Its directory must exist; existing files are
            replaced atomically.
        variable: The array's C++ name. Default: `None`, from the stem's
            name (`kws` -> `kws_model`).
        arena_size: The arena size to write, in bytes. Default: `None`,
            measured with TFLite Micro (`tflm_arena_size`, a few seconds),
            rounded up to 16 bytes.

    Returns:
        A `CSourceReport`.

    Raises:
        TypeError, ValueError: for a bad argument.
        FileNotFoundError: if the file or the stem's directory is missing.
        TFLiteMicroUnsupportedError: (a `ValueError`) if TFLite Micro
            cannot run the file; it names the op (`tflite_micro_blockers`).

    Example:

    ```python
    report = to_tflite(model, "kws.tflite", quantization="int8",
                       representative_data=calib)
    to_c_source(report, "firmware/kws")  # kws.h, kws.cc: kws_model[]
    ```
    """
    path = _tflite_path(model)
    stem = _check_stem(out_stem)
    variable = _check_variable(variable, stem)
    arena_size = _check_arena(arena_size)
    content = pathlib.Path(path).read_bytes()
    refuse_blocked(content, path)
    measured = arena_size is None
    if measured:
        arena_size = runners.tflm_arena_size(path).arena_size
    arena_size = -(-arena_size // ALIGNMENT) * ALIGNMENT
    runner = runners.load_tflite(path)

    guard = re.sub(r"\W", "_", stem.name).upper() + "_H_"
    in_h, in_cc = _quantization_lines(variable, "input", runner.inputs)
    out_h, out_cc = _quantization_lines(variable, "output", runner.outputs)
    arena_note = (
        "measured with TFLite Micro (keras_lstm.export.tflm_arena_size); "
        "add your platform's allocator margin"
        if measured
        else "given to to_c_source"
    )
    header = "\n".join(
        [
            f"// Generated by keras_lstm.export.to_c_source from "
            f"{os.path.basename(path)}.",
            *_state_note(runner),
            *_streaming_note(runner),
            f"#ifndef {guard}",
            f"#define {guard}",
            "",
            f"// The .tflite file's bytes, {ALIGNMENT}-byte aligned.",
            f"extern const unsigned char {variable}[];",
            f"constexpr unsigned int {variable}_len = {len(content)};",
            f"// Tensor arena in bytes, {arena_note}.",
            f"constexpr unsigned int {variable}_arena_size = {arena_size};",
            "",
            *in_h,
            "",
            *out_h,
            "",
            f"#endif  // {guard}",
            "",
        ]
    )
    source = "\n".join(
        [
            f'#include "{stem.name}.h"',
            "",
            f"alignas({ALIGNMENT}) const unsigned char {variable}[] = {{",
            *_byte_lines(content),
            "};",
            "",
            *in_cc,
            *out_cc,
            "",
        ]
    )
    header_path = stem.with_name(stem.name + ".h")
    source_path = stem.with_name(stem.name + ".cc")
    files.write_atomic(header_path, header.encode())
    files.write_atomic(source_path, source.encode())
    return CSourceReport(
        header=str(header_path),
        source=str(source_path),
        variable=variable,
        model_bytes=len(content),
        arena_size=int(arena_size),
        arena_measured=measured,
    )


__all__ = ["CSourceReport", "to_c_source"]
