"""Compiling exported files for Arm Ethos-U NPUs with Vela.

`vela_summary(path)` runs Vela (a command-line tool, so a subprocess) and
reports how many operators stay on the CPU, with Vela's SRAM, flash and
latency estimates.
"""

import csv
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from keras_lstm.export import flatbuffer


@dataclasses.dataclass(frozen=True)
class VelaSummary:
    """What Vela made of a file for an Ethos-U NPU.

    Attributes:
        accelerator_config: e.g. `"ethos-u55-128"`.
        cpu_operators: Operators left to the CPU (0: all on the NPU).
        npu_operators: Operators Vela placed on the NPU.
        sram_used_kib: SRAM the NPU needs, KiB.
        flash_used_kib: Off-chip flash for weights and command streams, KiB.
        inference_time_s: Vela's estimate of one inference, seconds.
        macs: Multiply-accumulates per inference.
        output_ops: Operators of the compiled file (`ethos-u` custom ops and
            any CPU fallbacks).
        log: Vela's standard output.
    """

    accelerator_config: str
    cpu_operators: int
    npu_operators: int
    sram_used_kib: float
    flash_used_kib: float
    inference_time_s: float
    macs: int
    output_ops: tuple
    log: str


_VELA = "import sys; from ethosu.vela.vela import main; sys.exit(main())"


def vela_summary(
    path: str | os.PathLike,
    *,
    accelerator_config: str = "ethos-u55-128",
    timeout: float = 600,
) -> VelaSummary:
    """Compiles a file with Arm Vela and summarizes the result.

    Vela runs as a subprocess into a temporary directory; nothing is left
    behind. Files with backward layers (`go_backwards`, `Bidirectional`)
    hold REVERSE_V2, which Vela keeps on the CPU for Ethos-U55/U65 ("Axis
    attribute is not supported") and maps to the NPU for Ethos-U85.

    Args:
        path: An int8 (or int16x8) file.
        accelerator_config: Vela's `--accelerator-config`.
        timeout: Seconds before Vela is stopped.

    Returns:
        A `VelaSummary`.

    Raises:
        RuntimeError: if Vela fails or its summary cannot be read.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at {path!r}.")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _VELA,
                path,
                "--accelerator-config",
                accelerator_config,
                "--output-dir",
                tmp,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        log = done.stdout
        if done.returncode != 0:
            raise RuntimeError(
                f"Vela failed on {path} (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )
        cpu = re.search(r"CPU operators = (\d+)", log)
        npu = re.search(r"NPU operators = (\d+)", log)
        summaries = list(pathlib.Path(tmp).glob("*_summary_*.csv"))
        compiled = list(pathlib.Path(tmp).glob("*_vela.tflite"))
        if not (cpu and npu and summaries and compiled):
            raise RuntimeError(
                f"Could not read Vela's summary for {path}:\n{log[-2000:]}"
            )
        with open(summaries[0], newline="") as f:
            row = next(csv.DictReader(f))
        output_ops = flatbuffer.op_names(compiled[0].read_bytes())
    return VelaSummary(
        accelerator_config=accelerator_config,
        cpu_operators=int(cpu.group(1)),
        npu_operators=int(npu.group(1)),
        sram_used_kib=float(row["sram_memory_used"]),
        flash_used_kib=float(row["off_chip_flash_memory_used"]),
        inference_time_s=float(row["inference_time"]),
        macs=int(float(row["nn_macs"])),
        output_ops=output_ops,
        log=log,
    )


__all__ = ["VelaSummary", "vela_summary"]
