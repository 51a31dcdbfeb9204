"""pytest plugin: runs Keras's own RNN test files against keras_lstm.

Loaded with `-p keras_suite_plugin` by `tests/test_keras_suite.py`, in a
subprocess that collects `keras/src/layers/rnn/{lstm,bidirectional,
stacked_rnn_cells}_test.py` from the installed wheel. Those modules call
`layers.LSTM` / `layers.LSTMCell` through their module global `layers`
(`from keras.src import layers`); this plugin rebinds that global to a
copy of the module whose `LSTM` and `LSTMCell` are keras_lstm's, so every
other name (`Bidirectional`, `GRU`, `RNN`, `StackedRNNCells`, ...) stays
Keras's own. Keras itself is not patched.

Each test's outcome is written as JSON to `$KERAS_SUITE_RESULTS`.
"""

import json
import os
import types

import keras_lstm

_SUBSTITUTED = {"LSTM": keras_lstm.LSTM, "LSTMCell": keras_lstm.LSTMCell}
_outcomes = {}


def _substituted_layers(original):
    module = types.ModuleType(original.__name__)
    module.__dict__.update(vars(original))
    module.__dict__.update(_SUBSTITUTED)
    return module


def pytest_collection_modifyitems(session, config, items):
    patched = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is None or id(module) in patched:
            continue
        patched.add(id(module))
        layers = getattr(module, "layers", None)
        if isinstance(layers, types.ModuleType) and hasattr(layers, "LSTM"):
            module.layers = _substituted_layers(layers)
            _outcomes[f"#substituted:{os.path.basename(module.__file__)}"] = (
                module.layers.LSTM.__module__
            )


def pytest_runtest_logreport(report):
    name = report.nodeid.split("::", 1)[-1]
    key = f"{os.path.basename(str(report.fspath))}::{name}"
    if report.when == "call" or report.outcome != "passed":
        if report.outcome == "failed" and report.when != "call":
            outcome = "error"
        else:
            outcome = report.outcome
        # Keep the first non-pass outcome (setup errors, call failures).
        if _outcomes.get(key) in (None, "passed"):
            _outcomes[key] = outcome
            if outcome != "passed":
                _outcomes[key + "#reason"] = str(report.longrepr)[-600:]


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("KERAS_SUITE_RESULTS")
    if path:
        with open(path, "w") as f:
            json.dump(_outcomes, f, indent=1, sort_keys=True)
