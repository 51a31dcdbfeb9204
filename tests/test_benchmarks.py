"""The benchmark scripts run (`--quick`) and print every row.

Benchmarks measure; this only checks that they still work end to end, so
that `make bench` and the README's figures can be regenerated. No timing is
asserted.
"""

import pathlib
import re
import runpy
import types

import pytest

BENCHMARKS = pathlib.Path(__file__).parent.parent / "benchmarks"


def _load(name):
    """The script's globals (its `main`, its tables), without running it."""
    path = BENCHMARKS / f"{name}.py"
    return types.SimpleNamespace(**runpy.run_path(str(path), run_name=name))


@pytest.mark.slow
def test_speed_quick_prints_a_ratio_per_candidate(capsys, tmp_path):
    speed = _load("speed")
    assert speed.main(["--quick", "--out", str(tmp_path / "speed.md")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "x |" in line]
    assert [row.split("|")[1].strip() for row in rows] == list(
        speed.CANDIDATES
    )
    # Both layers under both compile modes, and the three like-for-like
    # ratios (train / inference) that `make bench` promises.
    assert {speed.OURS_XLA, speed.KERAS_XLA, speed.CONTROL} <= set(
        speed.CANDIDATES
    )
    for name in ("default vs default", "XLA vs XLA", "best vs best"):
        assert re.search(rf"\n- {name}: [\d.]+x / [\d.]+x", out), name
    assert "CPU: " in out and "load average" in out
    assert not (tmp_path / "speed.md").exists(), "--quick must not write"


def test_like_for_like_ratios_pair_each_mode_and_the_bests():
    speed = _load("speed")
    train = {
        speed.KERAS: 4.0,
        speed.KERAS_XLA: 3.0,
        speed.OURS: 2.0,
        speed.OURS_XLA: 1.0,
    }
    infer = dict.fromkeys(train, 1.0) | {speed.KERAS_XLA: 0.5}
    assert speed.like_for_like(train, infer) == {
        "default vs default": (2.0, 1.0),
        "XLA vs XLA": (3.0, 0.5),
        "best vs best": (3.0, 0.5),
    }


def test_grid_calls_a_cell_only_where_every_run_clears_the_control():
    speed = _load("speed")

    def ratios(ours, control):
        return {
            phase: {speed.OURS: ours, speed.CONTROL: control}
            for phase in ("train", "inference")
        }

    rows = [
        (32, 1, ratios([1.30, 1.25], [0.90, 1.10])),
        (64, 1, ratios([1.30, 1.05], [0.95, 1.05])),
        (128, 1, ratios([0.80, 0.85], [1.00, 1.00])),
    ]
    train, inference = speed.summarize(rows)
    assert train == inference.replace("inference", "train")
    assert "control band 0.90x-1.10x" in train
    assert "lowest ratio of keras_lstm.LSTM 0.80x" in train
    assert "faster 32x1; slower 128x1." in train


@pytest.mark.slow
def test_grid_prints_a_row_per_shape_and_the_lowest_ratio(capsys, tmp_path):
    speed = _load("speed")
    # --routed-only, as `make bench` runs it; the forced paths are the
    # units-sweep test's.
    argv = ["--quick", "--grid", "--routed-only", "--grid-units", "16", "128"]
    assert speed.main(argv + ["--out", str(tmp_path / "speed.md")]) == 0
    out = capsys.readouterr().out
    for units in (16, 128):
        assert f"\n| {units} | 8 | " in out
    assert "train: control band " in out
    assert "inference: control band " in out
    assert not (tmp_path / "grid.md").exists(), "--quick must not write"


@pytest.mark.slow
def test_units_sweep_times_both_paths(capsys, tmp_path):
    # --units-sweep is grid() at one batch with every TensorFlow path
    # forced; one width shows each forced column (the grid test above times
    # two widths, routed).
    speed = _load("speed")
    argv = ["--quick", "--units-sweep", "--sweep-units", "16"]
    assert speed.main(argv + ["--out", str(tmp_path / "speed.md")]) == 0
    out = capsys.readouterr().out
    assert "\n| 16 | 8 | " in out
    assert "train: parallel | train: generic" in out
