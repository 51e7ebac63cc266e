"""Tests for dofjax.compare on fake-but-realistic workdirs (and on real ones when possible)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dofjax import compare
from dofjax import errors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Test metrics per (arm, seed); cgan_l1 seed 1 has no eval_test.json (falls back to validation).
TEST_METRICS = {
    ("l1", 0): {"abs_rel": 0.20, "rmse": 0.50, "d1": 0.70, "dbe_acc": 3.0},
    ("l1", 1): {"abs_rel": 0.22, "rmse": 0.54, "d1": 0.68, "dbe_acc": 3.4},
    ("l1", 2): {"abs_rel": 0.24, "rmse": 0.58, "d1": 0.66, "dbe_acc": 3.2},
    ("cgan_l1", 0): {"abs_rel": 0.18, "rmse": 0.60, "d1": 0.75, "dbe_acc": 2.0},
}
LAST_VALIDATION = {"abs_rel": 0.16, "rmse": 0.64, "d1": 0.77, "dbe_acc": 2.5}


def _config(arm, seed, dataset="synthetic_rgbd/quickstart"):
  return {"seed": seed, "dataset": dataset, "image_size": 128, "depth_near_m": 0.5,
          "depth_far_m": 10.0, "loss": {"arm": arm, "lambda_l1": 100.0, "gan_mode": "vanilla"},
          "model": {"ngf": 32, "ndf": 32, "num_downs": 7}}


def make_workdir(root, arm, seed, *, dataset="synthetic_rgbd/quickstart", test=True,
                 steps=(500, 1000, 1500)):
  """A workdir as the training loop writes it: config.json, metrics.jsonl, eval_test.json."""
  w = os.path.join(root, f"{arm}_s{seed}")
  os.makedirs(os.path.join(w, "checkpoints"))
  with open(os.path.join(w, "config.json"), "w") as f:
    json.dump(_config(arm, seed, dataset), f)
  final = TEST_METRICS.get((arm, seed), LAST_VALIDATION)
  with open(os.path.join(w, "metrics.jsonl"), "w") as f:
    for step in range(50, steps[-1] + 1, 50):
      f.write(json.dumps({"step": step, "split": "train", "g_loss": 10.0 / step, "g_l1": 0.1,
                          "learning_rate": 2e-4}) + "\n")
      if step in steps:
        scale = steps[-1] / step   # Errors shrink over training, the last line is the best.
        rec = {k: (v if k == "d1" else v * scale) for k, v in LAST_VALIDATION.items()}
        rec.update(num_pixels=16384.0)
        f.write(json.dumps({"step": step, "split": "validation", **rec}) + "\n")
  if test:
    with open(os.path.join(w, "eval_test.json"), "w") as f:
      json.dump({"step": steps[-1], "split": "test", "test_time": "standard",
                 "metrics": {**final, "num_pixels": 16384.0}}, f)
  return w


@pytest.fixture
def workdirs(tmp_path):
  ws = [make_workdir(str(tmp_path), "l1", s) for s in (0, 1, 2)]
  ws.append(make_workdir(str(tmp_path), "cgan_l1", 0))
  ws.append(make_workdir(str(tmp_path), "cgan_l1", 1, test=False))
  return ws


def test_table_numbers_and_files(tmp_path, workdirs):
  out = str(tmp_path / "report")
  assert compare.main(workdirs + ["--out", out, "--num_images", "0"]) == 0
  summary = json.load(open(os.path.join(out, "summary.json")))["arms"]
  assert set(summary) == {"l1", "cgan_l1"}
  l1 = summary["l1"]["metrics"]
  assert summary["l1"]["n"] == 3 and summary["l1"]["sources"] == {"test": 3}
  assert l1["abs_rel"]["mean"] == pytest.approx(0.22)
  assert l1["abs_rel"]["std"] == pytest.approx(0.02)      # Sample std of 0.20, 0.22, 0.24.
  assert l1["rmse"]["std"] == pytest.approx(0.04)
  assert l1["dbe_acc"]["mean"] == pytest.approx(3.2)
  cg = summary["cgan_l1"]
  assert cg["sources"] == {"test": 1, "validation": 1}
  assert cg["metrics"]["abs_rel"]["mean"] == pytest.approx(0.17)  # 0.18 (test), 0.16 (val).
  assert cg["metrics"]["abs_rel"]["std"] == pytest.approx(np.std([0.18, 0.16], ddof=1))
  assert "num_pixels" not in l1

  md = open(os.path.join(out, "README.md")).read()
  row = next(line for line in md.splitlines() if line.startswith("| L1 "))
  assert "| 0.22 ± 0.02 |" in row and "| **0.54 ± 0.04** |" in row and "| 3 |" in row
  cg_row = next(line for line in md.splitlines() if line.startswith("| cGAN+L1 "))
  assert md.index(row) < md.index(cg_row)    # Arms in the order L1, cGAN, cGAN+L1.
  assert "test ×1, last validation ×1" in cg_row
  assert "**0.17 ± 0.014**" in cg_row        # Best (lowest) abs_rel is bold.
  assert "abs_rel ↓" in md and "d1 ↑" in md
  assert "No eval_test.json" in md and "cgan_l1_s1" in md
  for name in ("curves.png", "losses.png"):
    path = os.path.join(out, name)
    assert os.path.getsize(path) > 10_000
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert "samples.png" not in md


def test_history_dedupes_resumed_steps_and_tolerates_truncated_last_line(tmp_path):
  w = make_workdir(str(tmp_path), "l1", 0)
  with open(os.path.join(w, "metrics.jsonl"), "a") as f:
    f.write(json.dumps({"step": 1500, "split": "validation", "abs_rel": 0.01}) + "\n")
    f.write('{"step": 1550, "split": "tr')
  run = compare.load_run(w)
  assert [r["step"] for r in run.validation] == [500, 1000, 1500]
  assert run.validation[-1]["abs_rel"] == 0.01
  steps, mean, low, high = compare.curve_stats([run], "validation", "abs_rel")
  assert list(steps) == [500, 1000, 1500] and mean[-1] == 0.01


def test_curve_stats_mean_and_spread(tmp_path):
  runs = [compare.load_run(make_workdir(str(tmp_path), "l1", s)) for s in (0, 1)]
  runs[1].validation[0]["rmse"] = 10.0
  steps, mean, low, high = compare.curve_stats(runs, "validation", "rmse")
  first = runs[0].validation[0]["rmse"]
  assert mean[0] == pytest.approx((first + 10.0) / 2)
  assert (low[0], high[0]) == (first, 10.0)


def test_bad_inputs_give_one_clear_message(tmp_path):
  good = make_workdir(str(tmp_path), "l1", 0)
  with pytest.raises(errors.UserError, match="not a directory"):
    compare.load_runs([str(tmp_path / "nope")])
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(errors.UserError, match="no config.json"):
    compare.load_runs([str(empty)])
  bare = make_workdir(str(tmp_path), "cgan", 0, test=False)
  os.remove(os.path.join(bare, "metrics.jsonl"))
  with pytest.raises(errors.UserError, match="no metrics yet"):
    compare.load_runs([bare])
  other = make_workdir(str(tmp_path), "cgan_l1", 0, dataset="diml/lr")
  with pytest.raises(errors.UserError, match="different datasets"):
    compare.load_runs([good, other])
  runs, warnings = compare.load_runs([good, other], allow_mixed_datasets=True)
  assert len(runs) == 2 and any("Mixed datasets" in w for w in warnings)
  with pytest.raises(errors.UserError, match="given twice"):
    compare.load_runs([good, good + "/"])
  with open(os.path.join(good, "metrics.jsonl"), "a") as f:
    f.write("not json\n{}\n")
  with pytest.raises(errors.UserError, match="line"):
    compare.load_run(good)


def test_cli_exit_status_2_and_message(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "dofjax.compare", str(tmp_path / "missing"),
                         "--out", str(tmp_path / "r")], cwd=REPO, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1


def test_config_differences_are_reported(tmp_path):
  a = make_workdir(str(tmp_path), "l1", 0)
  b = make_workdir(str(tmp_path), "cgan_l1", 1)
  cfg = json.load(open(os.path.join(b, "config.json")))
  cfg["model"]["ngf"] = 64
  json.dump(cfg, open(os.path.join(b, "config.json"), "w"))
  runs, _ = compare.load_runs([a, b])
  assert compare.config_differences(runs) == {"model.ngf": [32, 64]}


def _fake_sample_modules(monkeypatch):
  """Stand-ins for dofjax.inference and dofjax.input_pipeline with their agreed interfaces."""
  import types
  import dofjax

  def create_eval_iterator(config, split):
    assert split == "test" and config.dataset == "synthetic_rgbd/quickstart"
    rng = np.random.default_rng(0)
    for _ in range(2):
      image = rng.uniform(0, 1, (2, 40, 48, 3)).astype(np.float32)
      depth = np.full((2, 40, 48, 1), 4.0, np.float32)
      depth[:, :, 24:] = 1.5
      yield {"image_full": image, "depth_full": depth,
             "example_mask": np.array([1.0, 0.0], np.float32)}   # Second example = padding.

  def load_depth_predictor(workdir):
    scale = 1.0 if "cgan_l1" in workdir else 1.3
    return lambda image01: np.where(np.arange(48)[None, :] < 24, 4.0, 1.5) * scale + 0 * image01[
        ..., 0]

  inference = types.ModuleType("dofjax.inference")
  inference.load_depth_predictor = load_depth_predictor
  pipeline = types.ModuleType("dofjax.input_pipeline")
  pipeline.create_eval_iterator = create_eval_iterator
  for name, mod in (("inference", inference), ("input_pipeline", pipeline)):
    monkeypatch.setitem(sys.modules, f"dofjax.{name}", mod)
    monkeypatch.setattr(dofjax, name, mod, raising=False)


@pytest.mark.skipif(importlib.util.find_spec("dofjax.dof") is None, reason="needs dofjax.dof")
def test_samples_figure_with_stand_in_predictor_and_data(tmp_path, monkeypatch):
  _fake_sample_modules(monkeypatch)
  ws = [make_workdir(str(tmp_path), "l1", 0), make_workdir(str(tmp_path), "cgan_l1", 0)]
  out = str(tmp_path / "report")
  compare.main(ws + ["--out", out, "--num_images", "2"])
  md = open(os.path.join(out, "README.md")).read()
  assert "samples.png skipped" not in md, md
  assert "![samples](samples.png)" in md and "The same 2 test images" in md
  assert os.path.getsize(os.path.join(out, "samples.png")) > 10_000


_HAVE_SAMPLE_MODULES = all(importlib.util.find_spec(m) is not None
                           for m in ("dofjax.inference", "dofjax.input_pipeline", "dofjax.dof"))


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_SAMPLE_MODULES,
                    reason="samples.png needs dofjax.inference (load_depth_predictor), "
                           "dofjax.input_pipeline (create_eval_iterator) and dofjax.dof; "
                           "not all exist yet")
def test_samples_figure_on_real_tiny_workdirs(tmp_path, synthetic_data_dir):
  from configs import tiny
  from dofjax import train
  workdirs = []
  for arm in ("l1", "cgan_l1"):
    config = tiny.get_config()
    config.data_dir = synthetic_data_dir
    config.num_samples = 0
    config.loss.arm = arm
    config.eval_dataset = "synthetic_rgbd/dof_tiny"  # Thin-lens ground truth: its bokeh error.
    w = str(tmp_path / arm)
    train.train_and_evaluate(config, w)
    train.evaluate_checkpoint(config, w, split="test")
    workdirs.append(w)
  out = str(tmp_path / "report")
  compare.main(workdirs + ["--out", out, "--num_images", "2"])
  md = open(os.path.join(out, "README.md")).read()
  assert "samples.png skipped" not in md, md
  assert os.path.getsize(os.path.join(out, "samples.png")) > 10_000
  assert os.path.isfile(os.path.join(out, "curves.png"))
  assert "synthetic_rgbd/tiny (evaluated on synthetic_rgbd/dof_tiny)" in md, md
  assert "bokeh_psnr_thin_lens ↑" in md and "against the thin-lens ground truth" in md, md
  assert "thin-lens ground truth's lens and focus" in md, md
  assert "thin_lens_floor_psnr ↑" not in md, md  # A sentence, not a column.
  for w in workdirs:
    result = json.load(open(os.path.join(w, "eval_test.json")))
    assert result["dataset"] == "synthetic_rgbd/dof_tiny"
    assert {"bokeh_psnr_thin_lens", "thin_lens_floor_psnr"} <= set(result["metrics"])
