"""`python -m dofjax.benchmark train` on the tiny config: runs, and its last line is the JSON.

The full D+G step takes about a minute of CPU to compile even at the tiny size, so its
command-line run is `slow`; the everyday suite times the generator alone, in process.
"""

import ast
import json
import math
import os
import subprocess
import sys
import types

import jax
import pytest

from dofjax import bench_train
from dofjax import errors

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("seconds_per_step_median", "images_per_second", "gflop_per_step", "gflop_per_second",
        "peak_memory_bytes")


@pytest.mark.slow  # Compiling the full tiny train step: 60-90 s of CPU.
def test_train_benchmark_cli_on_tiny():
  proc = subprocess.run(
      [sys.executable, "-m", "dofjax.benchmark", "train", "--config=configs/tiny.py",
       "--config.batch_size=2", "--steps=3", "--warmup=1"],
      cwd=_ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  result = json.loads(lines[-1])
  for key in KEYS:
    assert key in result, key
  assert result["part"] == "step" and result["batch_size"] == 2 and result["steps"] == 3
  assert result["seconds_per_step_median"] > 0
  assert result["images_per_second"] == pytest.approx(2 / result["seconds_per_step_median"])
  assert result["gflop_per_step"] > 0
  assert result["fraction_of_peak"] is None  # A CPU: no listed bf16 rate.
  assert any("seconds/step" in line for line in lines[:-1])


def test_generator_part_in_process(capsys):
  result = bench_train.main(["bench", f"--config={_ROOT}/configs/tiny.py", "--part=generator_fwd",
                             "--steps=2", "--warmup=0", "--config.model.conv_impl=xla",
                             "--peak_tflops=0.5"])
  assert result["part"] == "generator_fwd" and result["conv_impl"] == "xla"
  for key in KEYS:
    assert key in result, key
  assert result["steps"] == 2 and result["gflop_per_step"] > 0
  assert result["fraction_of_peak"] == pytest.approx(result["gflop_per_second"] / 500.0)
  out = capsys.readouterr().out.strip().splitlines()
  assert json.loads(out[-1]) == result
  assert any("fraction of the chip's dense bf16 rate (0.5 TFLOP/s)" in line for line in out)


def test_peak_rate_lookup_by_device_kind():
  assert bench_train.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
  assert bench_train.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
  assert bench_train.peak_bf16_tflops("TPU v5 lite") == 197.0
  assert bench_train.peak_bf16_tflops("cpu") is None


def test_bad_flags_are_user_errors():
  with pytest.raises(errors.UserError):
    bench_train.main(["bench", f"--config={_ROOT}/configs/tiny.py", "--part=everything"])
  with pytest.raises(errors.UserError):
    bench_train.main(["bench", f"--config={_ROOT}/configs/tiny.py", "--steps=0"])


def _answering(value):
  """A zero-argument method stand-in: returns `value`, or raises it if it is an exception."""
  def call():
    if isinstance(value, Exception):
      raise value
    return value
  return call


def _device(stats):
  return types.SimpleNamespace(memory_stats=_answering(stats))


def _compiled(cost):
  return types.SimpleNamespace(cost_analysis=_answering(cost))


def test_missing_figures_are_reported_as_missing_and_bugs_surface(monkeypatch):
  """No statistics (None, NotImplementedError) -> fallbacks; any other error propagates."""
  # pylint: disable=protected-access
  monkeypatch.setattr(jax, "local_devices", lambda: [_device(None)])
  assert bench_train._peak_memory()[1] == "process max RSS"
  monkeypatch.setattr(jax, "local_devices", lambda: [_device({"peak_bytes_in_use": 7})])
  assert bench_train._peak_memory() == (7, "device peak_bytes_in_use")
  monkeypatch.setattr(jax, "local_devices", lambda: [_device(RuntimeError("driver bug"))])
  with pytest.raises(RuntimeError, match="driver bug"):
    bench_train._peak_memory()
  assert bench_train._flops(_compiled([{"flops": 3e9}])) == 3e9
  assert math.isnan(bench_train._flops(_compiled(NotImplementedError("no cost model"))))
  with pytest.raises(TypeError, match="a bug"):
    bench_train._flops(_compiled(TypeError("a bug")))


@pytest.mark.parametrize("module", ["dofjax/bench_train.py", "dofjax/bench_data.py",
                                    "dofjax/input_pipeline.py", "tfds_diml/diml.py",
                                    "tfds_diml/synthetic_rgbd.py", "tfds_diml/make_dummy_data.py",
                                    "tfds_diml/local_builder.py", "tfds_diml/storage.py"])
def test_no_bare_or_broad_except(module):
  """Only specific, expected exceptions are caught: a bug must surface as a bug."""
  with open(os.path.join(_ROOT, module), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  broad = []
  for node in ast.walk(tree):
    if isinstance(node, ast.ExceptHandler):
      names = ([] if node.type is None else
               [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)])
      if node.type is None or {"Exception", "BaseException"} & set(names):
        broad.append(node.lineno)
  assert not broad, f"{module}: broad except at lines {broad}"


def test_data_benchmark_rejects_bad_frame_sizes():
  from dofjax import bench_data  # pylint: disable=g-import-not-at-top
  for bad in ("1344", "0x756", "axb", "1x2x3"):
    with pytest.raises(errors.UserError, match="--hr_size must be WIDTHxHEIGHT"):
      bench_data.main(["bench data", f"--hr_size={bad}"])
