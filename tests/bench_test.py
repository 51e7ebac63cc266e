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
import numpy as np
import pytest

from dofjax import bench_dof
from dofjax import bench_train
from dofjax import dof
from dofjax import errors
from dofjax import metrics

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
# ----------------------------------------------------------------------------- dof benchmark

def _linear(x):
  return np.asarray(dof.srgb_to_linear(np.asarray(x, np.float32)), np.float64)


def test_scatter_anchor_spreads_a_point_light_over_its_disc_keeping_energy():
  image = np.zeros((41, 41, 3), np.float32)
  image[20, 20] = 1.0                               # One white point (linear 1) on black.
  radius = 6.0
  out = _linear(bench_dof.scatter_render(image, np.full((41, 41), radius)))
  assert out.sum(axis=(0, 1)) == pytest.approx([1.0, 1.0, 1.0], rel=2e-3)   # Energy kept.
  yy, xx = np.mgrid[:41, :41]
  dist = np.hypot(yy - 20, xx - 20)
  inner, outer = out[dist <= radius - 1, 0], out[dist >= radius + 1, 0]
  assert inner.min() > 0.95 * inner.max()          # A flat disc ...
  assert outer.max() < 1e-3 * inner.max()          # ... ending at the CoC radius.
  assert inner.mean() == pytest.approx(1.0 / (np.pi * radius ** 2), rel=0.05)


def test_scatter_anchor_keeps_a_constant_image_constant_at_any_depth():
  rng = np.random.default_rng(0)
  image = np.full((30, 40, 3), [0.2, 0.5, 0.8], np.float32)
  out = bench_dof.scatter_render(image, rng.uniform(0.0, 7.0, (30, 40)))
  np.testing.assert_allclose(out, image, atol=2e-5)


def test_scatter_anchor_leaves_in_focus_pixels_nearly_sharp():
  image = np.random.default_rng(1).random((24, 24, 3)).astype(np.float32)
  out = bench_dof.scatter_render(image, np.zeros((24, 24)))
  # Its soft edge gives each neighbour 0.07 % of a focused pixel's weight: ~0.3 % leaks in.
  assert np.abs(_linear(out) - _linear(image)).max() < 4e-3


def test_depth_edge_band_is_one_local_coc_radius_wide():
  depth = np.full((40, 60), 4.0)
  depth[:, :30] = 1.0                               # A near half at column < 30.
  radius = np.where(depth < 2.0, 5.0, 1.0)          # Near: 5 px of blur; far: 1 px.
  band = bench_dof.depth_edge_band(depth, radius)
  row = band[20]
  assert row[24:36].all() and not row[:23].any() and not row[37:].any()   # 29/30 +- 5 px.
  assert not bench_dof.depth_edge_band(np.full((40, 60), 3.0), radius).any()


def test_psnr_on_a_mask_is_evaluations_psnr_of_those_pixels():
  rng = np.random.default_rng(2)
  a = rng.random((16, 16, 3)).astype(np.float32)
  b = a.copy()
  b[:8] += 0.1
  mask = np.zeros((16, 16), bool)
  mask[:8] = True
  assert bench_dof.psnr_on(a, b, mask) == pytest.approx(20.0, abs=1e-3)
  assert bench_dof.psnr_on(a, b) == pytest.approx(
      float(metrics.psnr(a[None], b[None])), abs=1e-6)
  assert bench_dof.psnr_on(a, b, np.zeros_like(mask)) is None


@pytest.mark.parametrize("flag", ["--repeats=0", "--max_radius=-1", "--large_max_radius=0",
                                  "--seeds=a,b", "--quality_width=0", "--user_mp=0"])
def test_dof_benchmark_bad_flags_are_user_errors(flag):
  with pytest.raises(errors.UserError):
    bench_dof.main(["dof", flag])
