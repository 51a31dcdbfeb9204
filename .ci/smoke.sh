#!/usr/bin/env bash
# Plain-install smoke test: what `pip install keras-lstm` gives a user with
# no extras (no tfmot, TFLite Micro or Vela). In a fresh virtual
# environment, installs this checkout non-editable, then exports a tiny
# model through the console script, inspects the file, and calls to_tflite
# from Python (which verifies on LiteRT). Run it as `make smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3.11}
work=$(mktemp -d "${TMPDIR:-/tmp}/keras-lstm-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS

echo "smoke: installing $repo without extras into $work/venv"
"$python" -m venv "$work/venv"
bin=$work/venv/bin
"$bin/python" -m pip install --quiet --disable-pip-version-check "$repo"
# Run outside the checkout, so that only the installed package is found.
cd "$work"
unset PYTHONPATH KERAS_BACKEND

TF_CPP_MIN_LOG_LEVEL=2 "$bin/python" - <<'PY'
import importlib.util

extras = ["tensorflow_model_optimization", "tf_keras", "tflite_micro", "ethosu"]
present = [name for name in extras if importlib.util.find_spec(name)]
assert not present, f"extras installed without being asked for: {present}"

import keras
import numpy as np

import keras_lstm
from keras_lstm.export import to_tflite

inputs = keras.Input((8, 3))
outputs = keras.layers.Dense(2)(keras_lstm.LSTM(4)(inputs))
model = keras.Model(inputs, outputs)
model.save("model.keras")
report = to_tflite(model, "api.tflite")
assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report.ops, report.ops
print(f"smoke: to_tflite verified on LiteRT, max abs error "
      f"{report.max_abs_error:.2g} <= {report.tolerance:.2g}")
PY

"$bin/keras-lstm" export model.keras out.tflite 2>stderr.txt | tee export.txt
if [ -s stderr.txt ]; then
  echo "smoke: keras-lstm export wrote to stderr:" >&2
  cat stderr.txt >&2
  exit 1
fi
grep -q "UNIDIRECTIONAL_SEQUENCE_LSTM" export.txt
grep -q "TFLite Micro: no blocking op found (tflite-micro not installed" export.txt

"$bin/keras-lstm" inspect out.tflite | tee inspect.txt
grep -q "TFLite Micro: not installed" inspect.txt
grep -q "Vela: not installed" inspect.txt

echo "smoke: passed in $((SECONDS - start)) s"
