# The two commands a newcomer needs: `make demo` and `make test`.
# Both bootstrap .venv at the repository root with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-torch smoke lint bench bench-backends clean

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

# The modules that hold for every Keras backend. The backend is fixed per
# process, so they run once more per backend in a pytest of their own.
BACKEND_TESTS := tests/test_layers.py tests/test_compat.py tests/test_variants.py

# The suite: everything under TensorFlow, then the backend-agnostic modules
# under JAX. Exit code 5 (no tests collected) counts as failure here too:
# a suite that runs nothing proves nothing.
test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -n 2 --dist loadfile -q
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 --dist load -q \
		$(BACKEND_TESTS)

# The backend-agnostic modules under PyTorch. Not part of `make test` (or
# CI): PyPI's Linux torch wheel pulls the CUDA libraries, gigabytes. Pass
# a CPU-only wheel or index with TORCH, e.g. TORCH=/path/to/torch-*+cpu.whl.
TORCH ?= torch
test-torch: $(STAMP)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	KERAS_BACKEND=torch TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest \
		-n 2 --dist load -q $(BACKEND_TESTS)

# `pip install keras-lstm` without extras, in a fresh venv: the CLI exports
# and inspects, and to_tflite verifies on LiteRT (a few minutes; CI runs it).
smoke:
	bash .ci/smoke.sh

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/speed.py
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/speed.py --grid --routed-only

# keras_lstm.LSTM against keras.layers.LSTM on each installed backend (CPU).
bench-backends: $(STAMP)
	$(BIN)/python benchmarks/backends.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache
