"""Property: every model the README's grammar allows exports or is refused.

`tools/random_models.py` draws architectures from what the README says
exports (float or token inputs, masks, front ends, one to three LSTMs of
the three kinds, Bidirectional merge modes, go_backwards, heads), trains
each briefly on a task with a signal, exports int8 with default
arguments, and judges the file on fresh data of the same distribution
that neither calibration nor the export's check saw. A draw that crashes,
or that exports and then fails on fresh data, is a defect. The long run:
`python tools/random_models.py --models 100`.
"""

import pytest
import random_models

MODELS = 6
SEED = 1000


@pytest.fixture(scope="module")
def outcomes():
    return random_models.run(MODELS, seed=SEED, verbose=False)


@pytest.mark.slow
def test_no_draw_crashes(outcomes):
    assert not outcomes.get("crashed"), outcomes["crashed"]


@pytest.mark.slow
def test_no_exported_file_fails_on_fresh_data(outcomes):
    assert not outcomes.get("failed_fresh"), outcomes["failed_fresh"]


@pytest.mark.slow
def test_refusals_say_why_and_some_draws_export(outcomes):
    assert sum(len(v) for v in outcomes.values()) == MODELS
    for _, description, reason in outcomes.get("refused", []):
        assert len(reason) > 40, (description, reason)
    assert outcomes.get("held"), dict(outcomes)
