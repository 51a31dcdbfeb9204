"""The benchmark scripts run (`--quick`) and print every row.

Benchmarks measure; this only checks that they still work end to end, so
that `make bench` and the README's figures can be regenerated. No timing is
asserted.
"""

import pathlib
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
    rows = [
        line for line in capsys.readouterr().out.splitlines() if "x |" in line
    ]
    assert [row.split("|")[1].strip() for row in rows] == list(
        speed.CANDIDATES
    )
    assert not (tmp_path / "speed.md").exists(), "--quick must not write"


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
    assert "Lowest ratio of keras_lstm.LSTM: train " in out
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
