# The two commands a newcomer needs: `make demo` and `make test`.
# Both bootstrap .venv at the repository root with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test smoke lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,qat,edge,data]"
	touch $(STAMP)

# The main job: train on real data, export, verify on LiteRT, TFLite Micro
# and Vela, and write artifacts/report.{md,json} with plots.
demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python examples/demo.py

# The suite. Exit code 5 (no tests collected) counts as failure here too:
# a suite that runs nothing proves nothing.
test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -n 2 --dist loadfile -q

# `pip install keras-lstm` without extras, in a fresh venv: the CLI exports
# and inspects, and to_tflite verifies on LiteRT (a few minutes; CI runs it).
smoke:
	bash .ci/smoke.sh

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/speed.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache
