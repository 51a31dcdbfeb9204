"""`to_c_source`: a TFLite file as C++ source that compiles and round-trips.

The reference is the `.tflite` file itself: a program built with the
system C++ compiler from the generated `.h`/`.cc` writes the array back
out, and it must equal the file byte for byte; the scales and zero points
must equal the file's own (`load_tflite`), the arena the one
`tflm_arena_size` measures.
"""

import shutil
import subprocess

import keras
import numpy as np
import pytest

from keras_lstm.export import (
    TFLiteMicroUnsupportedError,
    load_tflite,
    tflm_arena_size,
    to_c_source,
    to_tflite,
)

_COMPILER = shutil.which("c++") or shutil.which("g++")

_MAIN = r"""
#include <cstdint>
#include <cstdio>
#include "{stem}.h"

int main(int argc, char** argv) {{
  if (reinterpret_cast<std::uintptr_t>({var}) % 16 != 0) return 3;
  std::FILE* out = std::fopen(argv[1], "wb");
  if (!out) return 2;
  std::fwrite({var}, 1, {var}_len, out);
  std::fclose(out);
  std::printf("%u %g %d %g %d\n", {var}_arena_size,
              {var}_input_scale[0], {var}_input_zero_point[0],
              {var}_output_scale[0], {var}_output_zero_point[0]);
  return 0;
}}
"""


@pytest.fixture(scope="module")
def int8_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 3))
    model = keras.Model(
        inputs, keras.layers.Dense(2)(keras.layers.LSTM(4)(inputs))
    )
    data = np.random.default_rng(0).normal(size=(40, 6, 3)).astype("float32")
    path = tmp_path_factory.mktemp("c") / "model.tflite"
    # This test is about the bytes, not accuracy: a loose tolerance keeps
    # the untrained model's int8 error from failing it.
    return to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=data,
        tolerance=1.0,
    )


@pytest.mark.skipif(_COMPILER is None, reason="no C++ compiler (c++, g++)")
def test_compiles_and_round_trips(int8_file, tmp_path):
    report = to_c_source(int8_file, tmp_path / "kws")
    assert report.variable == "kws_model"
    assert report.arena_measured
    assert report.arena_size == tflm_arena_size(int8_file.path).arena_size
    main = tmp_path / "main.cc"
    main.write_text(_MAIN.format(stem="kws", var=report.variable))
    program = tmp_path / "roundtrip"
    subprocess.run(
        [
            _COMPILER,
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-o",
            str(program),
            str(main),
            report.source,
            f"-I{tmp_path}",
        ],
        check=True,
        capture_output=True,
    )
    copy = tmp_path / "copy.tflite"
    done = subprocess.run(
        [str(program), str(copy)], check=True, capture_output=True, text=True
    )
    with open(int8_file.path, "rb") as f:
        assert copy.read_bytes() == f.read()
    arena, in_scale, in_zero, out_scale, out_zero = done.stdout.split()
    runner = load_tflite(int8_file.path)
    assert int(arena) == report.arena_size
    # %g prints 6 significant digits.
    np.testing.assert_allclose(float(in_scale), runner.inputs[0].scale, 1e-5)
    np.testing.assert_allclose(float(out_scale), runner.outputs[0].scale, 1e-5)
    assert int(in_zero) == runner.inputs[0].zero_point
    assert int(out_zero) == runner.outputs[0].zero_point


def test_given_arena_and_variable(int8_file, tmp_path):
    report = to_c_source(
        int8_file.path, tmp_path / "net", variable="g_model", arena_size=1000
    )
    assert (report.arena_size, report.arena_measured) == (1008, False)
    header = (tmp_path / "net.h").read_text()
    assert "constexpr unsigned int g_model_arena_size = 1008;" in header
    assert (
        "alignas(16) const unsigned char g_model[]"
        in (tmp_path / "net.cc").read_text()
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"variable": "1x"}, ValueError, "C\\+\\+ identifier"),
        ({"arena_size": 0}, ValueError, "positive number of bytes"),
    ],
)
def test_bad_arguments(int8_file, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        to_c_source(int8_file, tmp_path / "m", **kwargs)
    assert not list(tmp_path.iterdir())


def test_stem_with_suffix_is_refused(int8_file, tmp_path):
    with pytest.raises(ValueError, match="without suffix"):
        to_c_source(int8_file, tmp_path / "m.h")


def test_refuses_a_file_tflite_micro_cannot_run(tmp_path):
    inputs = keras.Input((6, 3))
    x = keras.layers.LSTM(4)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    report = to_tflite(model, tmp_path / "f16.tflite", quantization="float16")
    with pytest.raises(TFLiteMicroUnsupportedError, match="DEQUANTIZE"):
        to_c_source(report, tmp_path / "m", arena_size=4096)
    assert not (tmp_path / "m.h").exists()
