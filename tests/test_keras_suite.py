"""Keras's own LSTM tests pass against keras_lstm.

Keras ships its tests in the wheel. This runs three of them, from the
installed package (not copied here), in a subprocess whose
`keras_suite_plugin` rebinds the test modules' `layers.LSTM` and
`layers.LSTMCell` to `keras_lstm.LSTM` and `keras_lstm.LSTMCell`; every
other layer (Bidirectional, StackedRNNCells, GRU, ...) stays Keras's.

A test may fail only if it is listed in `EXPECTED_FAILURES` with the reason:
one that reads a Keras-private attribute our class does not have. Any other
failure, and any listed test that starts passing, fails this test.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

HERE = pathlib.Path(__file__).resolve().parent
RNN_TESTS = pathlib.Path(keras.__file__).parent / "src" / "layers" / "rnn"
FILES = ("lstm_test.py", "bidirectional_test.py", "stacked_rnn_cells_test.py")

EXPECTED_FAILURES = {
    # Calls Bidirectional's private `_can_attempt_fused_lstm`, which admits
    # only Keras's own LSTM class (`isinstance(..., keras LSTM)`) to its
    # JAX-cuDNN bidirectional kernel; keras_lstm.LSTM is a separate class
    # with its own fast paths, so the private precondition says False.
    "bidirectional_test.py::SimpleRNNTest::test_fused_lstm_eligibility",
}
# Skipped by Keras itself on this backend (a torch-only cuDNN dispatch).
EXPECTED_SKIPS = {
    "bidirectional_test.py::SimpleRNNTest::"
    "test_torch_cudnn_bidirectional_gru_dispatch_fires",
}
# Keras 3.15.1's three files hold 26 tests; a change of count means the
# wheel changed and the lists above must be looked at again.
EXPECTED_TESTS = 26


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    results = tmp_path_factory.mktemp("keras_suite") / "results.json"
    env = dict(
        os.environ,
        KERAS_SUITE_RESULTS=str(results),
        PYTHONPATH=os.pathsep.join(
            [str(HERE), os.environ.get("PYTHONPATH", "")]
        ),
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "keras_suite_plugin",
        "-p",
        "no:cacheprovider",
        # Keras's files, with none of this repository's pytest settings.
        "-c",
        os.devnull,
        "--rootdir",
        str(RNN_TESTS),
        "-q",
        *(str(RNN_TESTS / name) for name in FILES),
    ]
    run = subprocess.run(
        command,
        env=env,
        cwd=str(results.parent),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert results.is_file(), f"pytest wrote no results:\n{run.stdout[-3000:]}"
    data = json.loads(results.read_text())
    return {k: v for k, v in data.items() if "#" not in k}, data


@pytest.mark.slow
def test_keras_rnn_tests_pass_against_keras_lstm(outcomes):
    results, details = outcomes
    # The substitution took in every file.
    for name in FILES:
        assert details[f"#substituted:{name}"] == "keras_lstm.layers", name
    assert len(results) == EXPECTED_TESTS, sorted(results)
    failed = {k for k, v in results.items() if v in ("failed", "error")}
    skipped = {k for k, v in results.items() if v == "skipped"}
    unexpected = failed - EXPECTED_FAILURES
    assert not unexpected, "\n".join(
        f"{k}: {details.get(k + '#reason', '')}" for k in sorted(unexpected)
    )
    now_passing = EXPECTED_FAILURES - failed
    assert not now_passing, f"listed as failing but passed: {now_passing}"
    assert skipped == EXPECTED_SKIPS
    passed = sum(v == "passed" for v in results.values())
    assert passed == EXPECTED_TESTS - len(EXPECTED_FAILURES) - len(skipped)
