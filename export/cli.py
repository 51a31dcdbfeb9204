"""`keras-lstm`: export Keras LSTM models, inspect TFLite files.

A thin command line over `keras_lstm.export`: `export` calls `to_tflite` or
`to_saved_model`, `inspect` calls `load_tflite`, `tflm_arena_size` and
`vela_summary`. The checks here are the ones only a command line needs
(files on disk, flags that go together); everything else is the library's.

Exit codes: 0 success; 2 a user error (a bad flag, a missing or unreadable
file, a model or array the library refuses with `ValueError`, `TypeError`
or `OSError`): fix the command and run it again; 1 the export failed: its
result was refused (`ExportError`: an unfused recurrence, outputs too far
from Keras), or a bug. `ExportError` is not a user error: every argument
passed the library's checks before the work began, and the refusal is of
what the converter made. Every failure is one line on stderr; `--debug`
adds the traceback (and, through the console script, TensorFlow's own
log, see `keras_lstm_cli`).
"""

import argparse
import contextlib
import importlib.util
import pathlib
import sys
import tempfile
import traceback

import keras
import numpy as np
import tqdm

import keras_lstm
from keras_lstm.export import calibration as export_calibration
from keras_lstm.export import runners
from keras_lstm.export.c_source import to_c_source
from keras_lstm.export.inspection import FUSED_OPS
from keras_lstm.export.quantization import Quantization
from keras_lstm.export.report import PERSISTENT_STATE
from keras_lstm.export.saved_model import to_saved_model
from keras_lstm.export.tflite import ExportError, to_tflite

PROG = "keras-lstm"
TFLITE = "tflite"
SAVED_MODEL = "saved_model"
C_SOURCE = "c"
FORMATS = (TFLITE, SAVED_MODEL, C_SOURCE)

_EPILOG = f"""\
examples:
  {PROG} export model.keras model.tflite
  {PROG} export model.keras model_int8.tflite --quantization int8 \\
      --calibration calib.npy
  {PROG} export model.keras stream.tflite --streaming --quantization dynamic
  {PROG} export model.keras served/ --format saved_model
  {PROG} export model.keras firmware/kws --format c --quantization int8 \\
      --calibration calib.npy   # writes firmware/kws.h and kws.cc
  {PROG} inspect model_int8.tflite

Models load with keras.saving.load_model(MODEL, safe_mode=True); the
keras_lstm layers are registered. CALIB.npy holds float sequences
(num_sequences, timesteps, features): a few hundred typical inputs.
Quantization: dynamic for phone CPUs (XNNPACK), int8 / int16x8 for
microcontrollers and Ethos-U NPUs, float16 for GPUs.
"""

# Flags that only mean something for a TFLite file, with their defaults.
_TFLITE_ONLY = {
    "quantization": Quantization.NONE.value,
    "calibration": None,
    "batch_size": 1,
    "timesteps": None,
    "streaming": False,
    "external_state": False,
}
# First bytes 4..8 of every TFLite flatbuffer (its file identifier).
_TFLITE_IDENTIFIER = b"TFL3"


# Accepted before or after the command; a sub-command's default must not
# override the top level's, hence SUPPRESS there.
_DEBUG_FLAG = {
    "action": "store_true",
    "help": "on failure, print the traceback; show TensorFlow's log",
}


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """Reports bad flags as a `UsageError` (one line) instead of usage."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        )
    return value


def build_parser():
    """The `keras-lstm` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Export Keras LSTM models to fused TFLite files or "
        "SavedModels, and inspect TFLite files.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=keras_lstm.__version__
    )
    parser.add_argument("--debug", **_DEBUG_FLAG)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )

    export = _command(
        commands,
        "export",
        help="write a .tflite file or a SavedModel directory",
        description="Export a .keras model. TFLite files get one fused "
        "UNIDIRECTIONAL_SEQUENCE_LSTM op per LSTM and are checked on LiteRT "
        "against Keras before they are written.",
    )
    export.add_argument("model", metavar="MODEL", help="a .keras model file")
    export.add_argument(
        "out",
        metavar="OUT",
        help="the .tflite file, the SavedModel directory, or (--format c) "
        "the path without suffix for OUT.h and OUT.cc, to write",
    )
    export.add_argument(
        "--format",
        choices=FORMATS,
        default=TFLITE,
        help="what to write; c: the .tflite file as C++ source (.h, .cc) "
        "for TFLite Micro firmware (default: %(default)s)",
    )
    export.add_argument(
        "--quantization",
        choices=[mode.value for mode in Quantization],
        default=_TFLITE_ONLY["quantization"],
        help="TFLite quantization mode (default: %(default)s)",
    )
    export.add_argument(
        "--calibration",
        metavar="CALIB.npy",
        help="float array (num_sequences, timesteps, features) of typical "
        "inputs; required for int8 and int16x8. Without --check-data, 20%% "
        "of it is held out of calibration to check the file",
    )
    export.add_argument(
        "--check-data",
        metavar="CHECK.npy",
        help="held-out sequences, shaped like --calibration, to check the "
        "file against Keras on (default: held out of --calibration)",
    )
    export.add_argument(
        "--batch-size",
        type=_positive_int,
        default=_TFLITE_ONLY["batch_size"],
        metavar="N",
        help="the file's fixed batch size (default: %(default)s)",
    )
    export.add_argument(
        "--timesteps",
        type=_positive_int,
        metavar="T",
        help="the file's sequence length, when the model's is None",
    )
    export.add_argument(
        "--streaming",
        action="store_true",
        help="one frame per invocation; the LSTM state persists between calls",
    )
    export.add_argument(
        "--external-state",
        action="store_true",
        help="with --streaming: state as explicit inputs and outputs, "
        "for runtimes that keep none (CMSIS-NN); the route for LSTM "
        "variants to TFLite Micro",
    )
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it exists",
    )
    export.set_defaults(run=_export)

    inspect = _command(
        commands,
        "inspect",
        help="describe a .tflite file written by `export`",
        description="Print a TFLite file's operators, size, tensors and "
        "quantization, the tensor arena TFLite Micro needs, and Arm Vela's "
        "summary for an Ethos-U NPU.",
    )
    inspect.add_argument("file", metavar="FILE", help="a .tflite file")
    inspect.add_argument(
        "--no-arena",
        action="store_true",
        help="skip the TFLite Micro arena search (it runs the file many times)",
    )
    inspect.add_argument(
        "--no-vela", action="store_true", help="skip the Vela compilation"
    )
    inspect.add_argument(
        "--accelerator-config",
        default="ethos-u55-128",
        metavar="CONFIG",
        help="Vela's --accelerator-config (default: %(default)s)",
    )
    inspect.set_defaults(run=_inspect)
    return parser


def _command(commands, name, *, help, description):
    """A subcommand's parser: the examples epilog and `--debug` as well."""
    command = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Accepted after the subcommand too; SUPPRESS keeps the top-level value.
    command.add_argument("--debug", **_DEBUG_FLAG, default=argparse.SUPPRESS)
    return command


def main(argv=None):
    """Runs `keras-lstm` with `argv` (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0 success, 1 export failed (refused or a bug), 2 user
        error, 130 interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        debug = args.debug
        return args.run(args)
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    except UsageError as error:
        return _fail(error, 2, debug)
    except ExportError as error:
        return _fail(error, 1, debug)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, debug)
    except Exception as error:  # A bug: still one line, unless --debug.
        message = f"internal error ({type(error).__name__}: {error})"
        if not debug:
            message += "; run again with --debug for the traceback"
        return _fail(message, 1, debug)


def _fail(error, code, debug=False):
    if debug:  # Called in an `except` block: the exception in flight.
        traceback.print_exc(file=sys.stderr)
    # One line, however the message was wrapped.
    message = " ".join(str(error).split())
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


@contextlib.contextmanager
def _library_errors(context=None):
    """Argument errors raised by the library are user errors."""
    try:
        yield
    except (ValueError, TypeError, OSError) as error:
        message = f"{context}: {error}" if context else str(error)
        raise UsageError(message) from error


def _progress(stages):
    # tqdm shows on terminals only (disable=None), so logs and pipes get
    # just the result; the bar goes to stderr, away from the report.
    return tqdm.tqdm(
        total=len(stages),
        desc=stages[0],
        bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}]",
        disable=None,
        leave=False,
        file=sys.stderr,
    )


@contextlib.contextmanager
def _calibration_bar():
    """A `progress(done, total)` callback drawing one bar per batch."""
    bar = tqdm.tqdm(
        desc="calibration",
        unit="batch",
        disable=None,
        leave=False,
        file=sys.stderr,
        mininterval=0,
        position=1,
    )

    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _advance(bar, description):
    bar.update(1)
    bar.set_description_str(description)


# ---------------------------------------------------------------------------
# export


def _export(args):
    model_path = _existing_file(args.model, "MODEL")
    out = pathlib.Path(args.out)
    if args.format == C_SOURCE:
        return _export_c_source(args, model_path, out)
    if args.format == TFLITE:
        quantization = Quantization.parse(args.quantization)
        if out.suffix != ".tflite":
            raise UsageError(
                f"OUT {out} must end in .tflite; to write a SavedModel "
                "directory, add --format saved_model."
            )
        if quantization.needs_representative_data and not args.calibration:
            raise UsageError(
                f"--quantization {quantization.value} needs --calibration "
                "CALIB.npy: typical inputs (num_sequences, timesteps, "
                "features) to calibrate activation ranges."
            )
    else:
        for name, default in _TFLITE_ONLY.items():
            if getattr(args, name) != default:
                flag = "--" + name.replace("_", "-")
                raise UsageError(
                    f"{flag} applies to --format tflite only; a SavedModel "
                    "keeps float32 weights and a dynamic batch."
                )
    if (out.exists() or out.is_symlink()) and not args.overwrite:
        raise UsageError(
            f"OUT {out} already exists; pass --overwrite to replace it."
        )
    calibration = _load_sequences(args.calibration, "--calibration")
    check = _load_sequences(args.check_data, "--check-data")

    if args.format == SAVED_MODEL:
        stages = ["loading model", "writing SavedModel"]
    elif calibration is not None and quantization.needs_representative_data:
        with _library_errors():
            split = export_calibration.split(
                calibration, check, calibrated=True
            )
        held = len(calibration) - len(split.calibration)
        stages = [
            "loading model",
            f"converting, calibrating on {len(split.calibration)} sequences"
            + (f" ({held} held out)" if held else "")
            + " and checking on LiteRT",
        ]
    else:
        stages = ["loading model", "converting and checking on LiteRT"]
    with _progress(stages) as bar, _calibration_bar() as calibrating:
        model = _load_model(model_path)
        _advance(bar, stages[1])
        with _library_errors():
            if args.format == SAVED_MODEL:
                report = to_saved_model(model, out, overwrite=args.overwrite)
            else:
                report = to_tflite(
                    model,
                    out,
                    quantization=args.quantization,
                    representative_data=calibration,
                    check_data=check,
                    batch_size=args.batch_size,
                    timesteps=args.timesteps,
                    streaming=args.streaming,
                    external_state=args.external_state,
                    progress=calibrating,
                )
        bar.update(1)
    if args.format == SAVED_MODEL:
        _print_saved_model_report(report)
    else:
        _print_tflite_report(report)
    return 0


def _export_c_source(args, model_path, stem):
    """`--format c`: to_tflite into a temporary file, then to_c_source."""
    if stem.suffix in (".tflite", ".h", ".cc", ".c", ".cpp"):
        raise UsageError(
            f"OUT {stem} is the path without suffix for --format c: "
            f"{stem.with_suffix('')} writes {stem.with_suffix('.h').name} "
            f"and {stem.with_suffix('.cc').name}."
        )
    quantization = Quantization.parse(args.quantization)
    if quantization.needs_representative_data and not args.calibration:
        raise UsageError(
            f"--quantization {quantization.value} needs --calibration "
            "CALIB.npy: typical inputs (num_sequences, timesteps, "
            "features) to calibrate activation ranges."
        )
    targets = [stem.with_name(stem.name + suffix) for suffix in (".h", ".cc")]
    for target in targets:
        if (target.exists() or target.is_symlink()) and not args.overwrite:
            raise UsageError(
                f"{target} already exists; pass --overwrite to replace it."
            )
    calibration = _load_sequences(args.calibration, "--calibration")
    check = _load_sequences(args.check_data, "--check-data")
    stages = [
        "loading model",
        "converting and checking on LiteRT",
        "TFLite Micro arena search, writing C++ source",
    ]
    with (
        _progress(stages) as bar,
        _calibration_bar() as calibrating,
        tempfile.TemporaryDirectory() as tmp,
    ):
        model = _load_model(model_path)
        _advance(bar, stages[1])
        with _library_errors():
            report = to_tflite(
                model,
                pathlib.Path(tmp) / f"{stem.name}.tflite",
                quantization=args.quantization,
                representative_data=calibration,
                check_data=check,
                batch_size=args.batch_size,
                timesteps=args.timesteps,
                streaming=args.streaming,
                external_state=args.external_state,
                progress=calibrating,
            )
        _advance(bar, stages[2])
        with _library_errors():
            written = to_c_source(report, stem)
        bar.update(1)
    _print_tflite_report(report)
    print(
        f"wrote {written.header} and {written.source} (array "
        f"{written.variable}[{written.model_bytes}], arena "
        f"{written.arena_size} bytes)"
    )
    return 0


def _existing_file(name, what):
    path = pathlib.Path(name)
    if not path.exists():
        raise UsageError(f"{what} {name} does not exist.")
    if not path.is_file():
        raise UsageError(f"{what} {name} is not a file.")
    return path


def _load_model(path):
    try:
        model = keras.saving.load_model(str(path), safe_mode=True)
    except Exception as error:  # Keras raises anything from a bad file.
        first = str(error).strip().splitlines()
        detail = first[0] if first else type(error).__name__
        raise UsageError(f"cannot load model {path}: {detail}") from error
    if not isinstance(model, keras.Model):
        raise UsageError(
            f"MODEL {path} holds a {type(model).__name__}, not a keras.Model."
        )
    return model


def _load_sequences(name, flag):
    """The `.npy` sequences behind `flag`, as float32; `None` if not given."""
    if not name:
        return None
    path = _existing_file(name, flag)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UsageError(
            f"{flag} {name} is not a .npy array ({error}); save one "
            "with numpy.save."
        ) from error
    if not isinstance(array, np.ndarray):
        array.close()
        raise UsageError(
            f"{flag} {name} is a .npz archive; save the sequences "
            "alone with numpy.save(path, array)."
        )
    # As to_tflite: bool and integer arrays are cast to float32.
    if array.dtype.kind not in "biuf":
        raise UsageError(
            f"{flag} {name} holds {array.dtype} values; expected "
            "float sequences (int and bool arrays are cast to float32)."
        )
    if array.ndim == 2 and array.dtype.kind in "iu" and 0 not in array.shape:
        # Token ids (num_sequences, timesteps) for a model that starts with
        # an Embedding; to_tflite checks them against its vocabulary.
        return array
    if array.ndim != 3 or 0 in array.shape:
        raise UsageError(
            f"{flag} {name} has shape {array.shape}; expected "
            "(num_sequences, timesteps, features), or integer token ids "
            "(num_sequences, timesteps) for a model that starts with an "
            "Embedding."
        )
    return array.astype(np.float32)


def _print_tflite_report(report):
    print(
        f"wrote {report.path} ({_size(report.size_bytes)}, "
        f"quantization {report.quantization.value}, batch "
        f"{report.batch_size}, timesteps {report.timesteps}"
        + (", streaming" if report.streaming else "")
        + ")"
    )
    print(f"ops: {_op_counts(report.ops)}")
    for tensor in report.inputs:
        print(f"input   {_tensor(tensor)}")
    for tensor in report.outputs:
        print(f"output  {_tensor(tensor)}")
    _print_verification(report)
    if report.padding is not None:
        print(
            f"padding: {report.padding.describe()}; callers drop padded "
            "steps (the fused LSTM has no mask input)"
        )
    if report.tflite_micro_ready:
        if importlib.util.find_spec("tflite_micro") is None:
            # Only the file's ops were read; no interpreter was built.
            print(
                "TFLite Micro: no blocking op found (tflite-micro not "
                "installed, so the interpreter was not built)"
            )
        else:
            print("TFLite Micro: runnable")
    for reason in report.tflite_micro_blockers:
        print(f"TFLite Micro: not runnable: {reason}")


def _print_verification(report):
    checked = report.verification
    print(
        f"checked against Keras on all {report.check_sequences} sequences "
        f"of {report.check_timesteps} steps: {report.check_set}"
    )
    print(
        f"lowering: float32 max abs error {checked.lowering_error:.3g} "
        f"(float tolerance {checked.lowering_tolerance:.3g})"
    )
    if checked.lstm_error_quanta is not None:
        print(
            "integer LSTMs: within "
            f"{checked.lstm_error_quanta:.2g} output quanta of the float "
            "LSTM on their own inputs"
        )
    for loss, criterion in zip(checked.losses, checked.criteria, strict=True):
        decisions = (
            f", decisions agree {loss.decision_agreement:.1%}"
            if loss.decision_agreement is not None
            else ""
        )
        print(
            f"error vs Keras: max {loss.max_abs:.3g}, p99 {loss.p99_abs:.3g}, "
            f"RMS {loss.rms:.3g} ({loss.relative_rms:.1%} of the spread)"
            f"{decisions}; held to {criterion}"
        )
    if report.calibration_set:
        print(f"calibrated on {report.calibration_set}")
    if report.quantization.is_integer:
        ranges = checked.ranges
        print(
            f"outside the file's ranges: {ranges.inputs_outside:.1%} of "
            f"check inputs, {ranges.outputs_outside:.1%} of Keras outputs"
        )
    if report.state_note is not None:
        print(f"state: {report.state_note}")


def _print_saved_model_report(report):
    print(
        f"wrote {report.path} (SavedModel, {_size(report.size_bytes)}, "
        f"signature {report.signature})"
    )
    for tensor in report.inputs:
        print(f"input   {tensor.name} {tensor.shape} {tensor.dtype}")
    for tensor in report.outputs:
        print(f"output  {tensor.name} {tensor.shape} {tensor.dtype}")
    print(f"max abs error vs Keras: {report.max_abs_error:.3g}")


# ---------------------------------------------------------------------------
# inspect


def _inspect(args):
    path = _existing_file(args.file, "FILE")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] != _TFLITE_IDENTIFIER:
        raise UsageError(f"FILE {path} is not a TFLite flatbuffer.")
    with _library_errors(f"cannot read {path}"):
        runner = runners.load_tflite(str(path))

    kind = "streaming" if runner.streaming else "sequences"
    if runner.external_state:
        kind += ", external state"
    print(
        f"{path}: {_size(path.stat().st_size)}, {kind}, batch "
        f"{runner.batch_size}, timesteps {runner.timesteps}"
    )
    print(f"ops: {_op_counts(runner.ops)}")
    for tensor in runner.inputs:
        print(f"input   {_tensor(tensor)}")
    for tensor in runner.outputs:
        print(f"output  {_tensor(tensor)}")
    if runner.streaming and any(op in FUSED_OPS for op in runner.ops):
        print(f"state: this streaming file {PERSISTENT_STATE}")

    stages = []
    if not args.no_arena:
        stages.append("TFLite Micro arena search")
    if not args.no_vela:
        stages.append("Vela compilation")
    if not stages:
        return 0
    with _progress(stages) as bar:
        if not args.no_arena:
            line = _arena_line(path)
            _advance(bar, stages[-1])
            bar.write(line, file=sys.stdout)
        if not args.no_vela:
            line = _vela_line(path, runner, args.accelerator_config)
            bar.update(1)
            bar.write(line, file=sys.stdout)
    return 0


def _arena_line(path):
    if importlib.util.find_spec("tflite_micro") is None:
        return "TFLite Micro: not installed (pip install tflite-micro)"
    try:
        arena = runners.tflm_arena_size(str(path))
    except runners.TFLiteMicroUnsupportedError as error:
        # Refused before any search: the 64 MiB cap is no arena size.
        return "TFLite Micro: not runnable: " + "; ".join(error.blockers)
    except (RuntimeError, ValueError) as error:
        return f"TFLite Micro: does not run it: {_summary(error)}"
    recorded = (
        f", allocator records {arena.recorded_bytes} bytes"
        if arena.recorded_bytes is not None
        else ""
    )
    return (
        f"TFLite Micro arena: {arena.arena_size} bytes "
        f"({_size(arena.arena_size)}{recorded})"
    )


def _vela_line(path, runner, accelerator_config):
    if importlib.util.find_spec("ethosu") is None:
        return "Vela: not installed (pip install ethos-u-vela)"
    dtypes = {tensor.dtype for tensor in runner.inputs}
    if "float32" in dtypes:
        # Ethos-U runs int8 and int16 only, and Vela 5.2 aborts on a float
        # fused LSTM ("IFM must be INT8 or INT16") instead of leaving it to
        # the CPU.
        return (
            "Vela: skipped, Ethos-U NPUs run int8 and int16x8 files only "
            "(this one takes float32)"
        )
    try:
        vela = runners.vela_summary(
            str(path), accelerator_config=accelerator_config
        )
    except (RuntimeError, ValueError) as error:
        return f"Vela ({accelerator_config}): failed: {_summary(error)}"
    return (
        f"Vela ({accelerator_config}): {vela.cpu_operators} CPU operators, "
        f"{vela.npu_operators} NPU operators, SRAM "
        f"{vela.sram_used_kib:.1f} KiB, flash {vela.flash_used_kib:.1f} KiB, "
        f"estimated {vela.inference_time_s * 1e3:.3g} ms per inference"
    )


# ---------------------------------------------------------------------------
# formatting


def _summary(error):
    # Runtime errors carry a tool's log: its first line says what failed,
    # its last line usually why.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) == 1:
        return lines[0]
    return f"{lines[0]} ... {lines[-1]}"


def _size(size_bytes):
    if size_bytes < 1024:
        return f"{size_bytes} B"
    return f"{size_bytes / 1024:.1f} KiB"


def _op_counts(ops):
    counts = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return ", ".join(
        op if count == 1 else f"{op} x{count}" for op, count in counts.items()
    )


def _tensor(info):
    text = f"{info.name} {info.shape} {info.dtype}"
    if info.scale is not None:
        text += f" scale={info.scale:.6g} zero_point={info.zero_point}"
    return text


if __name__ == "__main__":
    sys.exit(main())
