"""`python -m dofjax.benchmark train` on the tiny config: runs, and its last line is the JSON."""

import json
import os
import subprocess
import sys

import pytest

from dofjax import bench_train
from dofjax import errors

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("seconds_per_step_median", "images_per_second", "gflop_per_step", "gflop_per_second",
        "peak_memory_bytes")


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
  assert 0 < result["seconds_per_step_median"] < 60
  assert result["images_per_second"] == pytest.approx(2 / result["seconds_per_step_median"])
  assert result["gflop_per_step"] > 0
  assert result["fraction_of_peak"] is None  # A CPU: no listed bf16 rate.
  assert any("seconds/step" in line for line in lines[:-1])


def test_generator_part_in_process(capsys):
  result = bench_train.main(["bench", f"--config={_ROOT}/configs/tiny.py", "--part=generator_fwd",
                             "--steps=2", "--warmup=0", "--config.model.conv_impl=xla",
                             "--peak_tflops=0.5"])
  assert result["part"] == "generator_fwd" and result["conv_impl"] == "xla"
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
