"""Tests for dofjax.compare on fake-but-realistic workdirs (and on real ones when possible)."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from dofjax import compare
from dofjax import errors
from dofjax import losses
from dofjax import metrics

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
      train = {"step": step, "split": "train", "g_loss": 10.0 / step, "g_l1": 0.1,
               "learning_rate": 2e-4, "steps_per_second": 2.0 + seed}
      if losses.uses_discriminator(arm):
        train.update(d_fake=0.6, d_real=0.7, d_loss=0.65)
      f.write(json.dumps(train) + "\n")
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
  full = md[md.index("## All metrics"):]
  row = next(line for line in full.splitlines() if line.startswith("| L1 "))
  assert "| 0.22 ± 0.02 |" in row and "| **0.54 ± 0.04** |" in row and "| 3 |" in row
  cg_row = next(line for line in full.splitlines() if line.startswith("| cGAN+L1 "))
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


def test_headline_table_has_at_most_eight_columns_and_names_separated_arms(tmp_path):
  every = {**{k: 0.3 for k in metrics.KEY_ORDER}, "bokeh_psnr_thin_lens": 30.0}
  runs = []
  for arm, base in (("l1", 0.20), ("cgan", 0.40), ("cgan_l1", 0.21)):
    for seed, jitter in enumerate((-0.01, 0.0, 0.01)):
      w = make_workdir(str(tmp_path), arm, seed)
      with open(os.path.join(w, "eval_test.json"), "w") as f:
        json.dump({"step": 1500, "split": "test",
                   "metrics": {**every, "abs_rel": base + jitter, "d1": 0.7}}, f)
      runs.append(w)
  out = str(tmp_path / "report")
  assert compare.main(runs + ["--out", out, "--num_images", "0"]) == 0
  md = open(os.path.join(out, "README.md")).read()
  headline = md[md.index("## Headline"):md.index("## All metrics")]
  header = next(line for line in headline.splitlines() if line.startswith("| Arm"))
  assert header.count("|") - 1 <= 8
  assert all(f"{k} " in header for k in compare.HEADLINE_KEYS)
  assert "bokeh_psnr_thin_lens" not in header and "sq_rel" not in header
  # abs_rel: L1 (0.20 ± 0.01) and cGAN+L1 (0.21 ± 0.01) overlap; both beat cGAN (0.40 ± 0.01).
  line = next(l for l in headline.splitlines() if l.startswith("- `abs_rel`"))
  assert "L1 beats cGAN;" in line and "cGAN+L1 beats cGAN" in line
  assert "L1 beats cGAN+L1" not in line
  d1 = next(l for l in headline.splitlines() if l.startswith("- `d1`"))
  assert "within the seed spread" in d1
  assert "sq_rel ↓" in md[md.index("## All metrics"):]


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


@pytest.fixture
def figures(monkeypatch):
  """Keeps every figure compare closes: {suptitle text: figure} (closed for real afterwards)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  kept = {}
  real_close = plt.close

  def close(fig=None):
    kept[fig.get_suptitle()] = fig

  monkeypatch.setattr(plt, "close", close)
  yield kept
  for fig in kept.values():
    real_close(fig)


def _figure(kept, title_start):
  matches = [fig for title, fig in kept.items() if title.startswith(title_start)]
  assert len(matches) == 1, list(kept)
  return matches[0]


def _panel_titles(fig):
  return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _legend_texts(fig):
  return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_throughput_is_not_plotted_as_a_training_loss(tmp_path, figures):
  ws = [make_workdir(str(tmp_path), "l1", s) for s in (0, 1)]
  out = str(tmp_path / "report")
  compare.main(ws + ["--out", out, "--num_images", "0"])
  fig = _figure(figures, "Training losses")
  titles = _panel_titles(fig)
  assert titles[:2] == ["g_l1", "g_loss"], titles
  assert "steps_per_second" not in titles   # Not a plain loss panel...
  assert titles[-1] == "steps_per_second (training throughput, not a loss)"  # ...its own.
  throughput_ax = next(ax for ax in fig.axes if ax.get_title() == titles[-1])
  (line,) = throughput_ax.get_lines()
  np.testing.assert_allclose(line.get_ydata(), 2.5)   # Mean over seeds of 2.0 and 3.0 steps/s.
  md = open(os.path.join(out, "README.md")).read()
  assert "is the training speed (steps per second, machine-dependent), not a loss" in md
  assert "steps_per_second" not in json.load(open(os.path.join(out, "summary.json")))["arms"][
      "l1"]["metrics"]


def test_losses_legend_names_every_arm_even_one_missing_from_the_first_panel(tmp_path, figures):
  ws = [make_workdir(str(tmp_path), "l1", 0), make_workdir(str(tmp_path), "cgan_l1", 0)]
  compare.main(ws + ["--out", str(tmp_path / "report"), "--num_images", "0"])
  fig = _figure(figures, "Training losses")
  assert _panel_titles(fig)[0] == "d_fake"   # Logged by cGAN+L1 only: L1 has no line there.
  assert _legend_texts(fig) == ["L1 (n=1)", "cGAN+L1 (n=1)"]
  assert _legend_texts(_figure(figures, "Validation metrics")) == ["L1 (n=1)", "cGAN+L1 (n=1)"]


def test_report_title_names_only_the_arms_present(tmp_path):
  one = make_workdir(str(tmp_path), "cgan", 0)
  out = str(tmp_path / "one")
  compare.main([one, "--out", out, "--num_images", "0"])
  assert open(os.path.join(out, "README.md")).readline() == "# Ablation report: cGAN\n"
  two = make_workdir(str(tmp_path), "l1", 0)
  out = str(tmp_path / "two")
  compare.main([one, two, "--out", out, "--num_images", "0"])
  assert open(os.path.join(out, "README.md")).readline() == "# Ablation report: L1 vs cGAN\n"


def test_a_run_trained_through_the_renderer_is_an_arm_of_its_own(tmp_path):
  plain = make_workdir(str(tmp_path), "cgan_l1", 0)
  bokeh = make_workdir(str(tmp_path / "b"), "cgan_l1", 0)
  config_path = os.path.join(bokeh, "config.json")
  config = json.load(open(config_path))
  config["loss"]["bokeh_weight"] = 100.0
  json.dump(config, open(config_path, "w"))
  out = str(tmp_path / "out")
  compare.main([plain, bokeh, "--out", out, "--num_images", "0"])
  readme = open(os.path.join(out, "README.md")).read()
  assert readme.splitlines()[0] == "# Ablation report: cGAN+L1 vs cGAN+L1+bokeh"
  assert "are both arm" not in readme  # Not flagged as a duplicate seed of one arm.
  assert set(json.load(open(os.path.join(out, "summary.json")))["arms"]) == {
      "cgan_l1", "cgan_l1_bokeh"}


def test_vocabulary_comes_from_the_losses_and_metrics_modules():
  # Every arm the trainer accepts has a display name, and reports list arms in its order.
  assert set(losses.ARM_LABELS) == set(losses.REPORT_ARMS) and set(losses.ARMS) < set(
      losses.REPORT_ARMS)
  runs = [compare.Run(path=a, config={}, arm=a, seed=0, dataset="d", eval_dataset="d",
                      validation=[], train=[], final={}, final_step=None, source="test")
          for a in reversed(losses.REPORT_ARMS + ("zz_new_arm",))]
  assert list(compare.group_by_arm(runs)) == list(losses.REPORT_ARMS) + ["zz_new_arm"]
  for key in metrics.DEPTH_KEYS + metrics.BOUNDARY_KEYS + metrics.BOKEH_KEYS:
    assert compare.higher_is_better(key) == (key in metrics.HIGHER_IS_BETTER), key
    assert compare.higher_is_better(key + "_thin_lens") == (key in metrics.HIGHER_IS_BETTER)
  assert not compare.higher_is_better("l1_code") and not compare.higher_is_better("d_fake")
  keys = compare.metric_keys([{k: 1.0 for k in ("l1_code", "bokeh_psnr_thin_lens", "d1", "rmse",
                                                "thin_lens_floor_psnr", "steps_per_second",
                                                "count")}])
  assert keys == ["rmse", "d1", "bokeh_psnr_thin_lens", "l1_code"]
  for key in metrics.MEDIAN_SCALED_KEYS:
    assert compare.higher_is_better(key) == (key[:-len("_median")] in metrics.HIGHER_IS_BETTER)


def test_constant_baseline_is_a_sentence_and_median_scaled_metrics_are_columns(tmp_path):
  """Real-frame evaluations: the model's *_median metrics get columns; the constant-depth
  baseline, the same for every arm, is stated once under the table."""
  ws = [make_workdir(str(tmp_path), arm, 0) for arm in ("l1", "cgan_l1")]
  for w in ws:
    path = os.path.join(w, "eval_test.json")
    result = json.load(open(path))
    result["metrics"].update(d1_median=0.6, abs_rel_median=0.2, d1_const=0.55,
                             abs_rel_const=0.25, rmse_const=0.9)
    json.dump(result, open(path, "w"))
  compare.main(ws + ["--out", str(tmp_path / "report"), "--num_images", "0"])
  md = open(tmp_path / "report" / "README.md").read()
  assert "d1_median ↑" in md and "abs_rel_median ↓" in md, md
  table = [line for line in md.split("## Runs")[0].splitlines() if line.startswith("|")]
  assert table and not any("_const" in line for line in table), table
  assert "`d1_const` 0.55, `abs_rel_const` 0.25, `rmse_const` 0.9" in md, md


class _FakeEvalIterable:
  """Stand-in for input_pipeline.create_eval_iterator's result: two 40x48 batches of two, the
  second example of each a padding slot; no thin-lens ground truth."""

  def __init__(self, config, split):
    assert split == "test" and config.dataset == "synthetic_rgbd/quickstart"

  def __iter__(self):
    rng = np.random.default_rng(0)
    for _ in range(2):
      image = rng.uniform(0, 1, (2, 40, 48, 3)).astype(np.float32)
      depth = np.full((2, 40, 48, 1), 4.0, np.float32)
      depth[:, :, 24:] = 1.5
      yield {"image_full": image, "depth_full": depth,
             "example_mask": np.array([1.0, 0.0], np.float32)}   # Second example = padding.

  def thin_lens_max_radius_px(self):
    return None


def _stand_in_predictor(workdir):
  scale = 1.0 if "cgan_l1" in workdir else 1.3
  return lambda image01: np.where(np.arange(48)[None, :] < 24, 4.0, 1.5) * scale + 0 * image01[
      ..., 0]


def _fake_sample_modules(monkeypatch, load_depth_predictor=_stand_in_predictor):
  """Stand-ins for dofjax.inference and dofjax.input_pipeline with their public interfaces."""
  import dofjax
  inference = types.ModuleType("dofjax.inference")
  inference.load_depth_predictor = load_depth_predictor
  pipeline = types.ModuleType("dofjax.input_pipeline")
  pipeline.create_eval_iterator = _FakeEvalIterable
  for name, mod in (("inference", inference), ("input_pipeline", pipeline)):
    monkeypatch.setitem(sys.modules, f"dofjax.{name}", mod)
    monkeypatch.setattr(dofjax, name, mod, raising=False)


def test_samples_figure_with_stand_in_predictor_and_data(tmp_path, monkeypatch, figures):
  _fake_sample_modules(monkeypatch)
  ws = [make_workdir(str(tmp_path), "l1", 0), make_workdir(str(tmp_path), "cgan_l1", 0)]
  out = str(tmp_path / "report")
  compare.main(ws + ["--out", out, "--num_images", "2"])
  md = open(os.path.join(out, "README.md")).read()
  assert "samples.png skipped" not in md, md
  assert "![samples](samples.png)" in md and "The same 2 test images" in md
  assert os.path.getsize(os.path.join(out, "samples.png")) > 10_000
  fig = _figure(figures, "test images of synthetic_rgbd/quickstart")
  titles = _panel_titles(fig)
  assert titles[:4] == ["input", "L1 AbsRel 0.300", "cGAN+L1 AbsRel 0.000", "ground truth"]
  # cGAN+L1's stand-in depth is the true depth: its render is the one from ground truth.
  db = {t.split(" DoF ")[0]: float(t.split(" DoF ")[1].split()[0]) for t in titles[4:6]}
  assert list(db) == ["L1", "cGAN+L1"] and db["cGAN+L1"] > 60.0 > db["L1"], titles
  assert titles[6] == "DoF from ground truth" and len(titles) == 2 * 7


def test_samples_title_lies_inside_the_figure(tmp_path, monkeypatch, figures):
  _fake_sample_modules(monkeypatch)
  w = make_workdir(str(tmp_path), "l1", 0)   # One arm: the narrowest figure.
  compare.main([w, "--out", str(tmp_path / "report"), "--num_images", "1"])
  fig = _figure(figures, "test images of")
  fig.canvas.draw()
  (title,) = [t for t in fig.texts if t.get_text() == fig.get_suptitle()]
  box = title.get_window_extent()
  width, height = fig.canvas.get_width_height()
  assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, (box, width)
  panel_tops = [ax.get_window_extent().y1 for ax in fig.axes]
  assert box.y0 > max(panel_tops)   # Above the pictures, not over them.


def test_samples_figure_user_error_is_a_warning_and_the_table_is_kept(tmp_path, monkeypatch):
  def no_checkpoint(workdir):
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints; train first.")

  _fake_sample_modules(monkeypatch, no_checkpoint)
  w = make_workdir(str(tmp_path), "l1", 0)
  out = str(tmp_path / "report")
  compare.main([w, "--out", out, "--num_images", "1"])
  md = open(os.path.join(out, "README.md")).read()
  assert "samples.png skipped" in md and "No checkpoint in" in md and "| 0.2 |" in md
  assert not os.path.exists(os.path.join(out, "samples.png"))


def test_a_bug_in_the_samples_figure_surfaces(tmp_path, monkeypatch):
  def buggy(workdir):
    del workdir
    return lambda image01: image01[..., 5]   # A bug: IndexError, not a user's mistake.

  _fake_sample_modules(monkeypatch, buggy)
  w = make_workdir(str(tmp_path), "l1", 0)
  with pytest.raises(IndexError):
    compare.main([w, "--out", str(tmp_path / "report"), "--num_images", "1"])


# ----------------------------------------------------------------------------------------------
# Real tiny workdirs: trained once per session, through the command line a user runs.


@pytest.fixture(scope="session")
def trained_workdirs(tmp_path_factory, synthetic_data_dir):
  """[l1 workdir, cgan_l1 workdir]: configs/tiny.py trained on synthetic_rgbd/tiny and
  evaluated (--mode=eval) on synthetic_rgbd/dof_tiny, which has thin-lens ground truth."""
  root = tmp_path_factory.mktemp("compare_workdirs")
  env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
  workdirs = []
  for arm in ("l1", "cgan_l1"):
    w = str(root / arm)
    flags = [f"--config={os.path.join(REPO, 'configs', 'tiny.py')}", f"--workdir={w}",
             f"--config.data_dir={synthetic_data_dir}", f"--config.loss.arm={arm}",
             "--config.num_samples=0", "--config.eval_dataset=synthetic_rgbd/dof_tiny"]
    for mode in ("train", "eval"):
      proc = subprocess.run([sys.executable, "-m", "dofjax.main", *flags, f"--mode={mode}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
      assert proc.returncode == 0, proc.stderr[-3000:]
    workdirs.append(w)
  return workdirs


@pytest.mark.slow
def test_samples_figure_on_real_tiny_workdirs(tmp_path, trained_workdirs):
  out = str(tmp_path / "report")
  compare.main(trained_workdirs + ["--out", out, "--num_images", "2"])
  md = open(os.path.join(out, "README.md")).read()
  assert "samples.png skipped" not in md, md
  assert os.path.getsize(os.path.join(out, "samples.png")) > 10_000
  assert os.path.isfile(os.path.join(out, "curves.png"))
  assert "synthetic_rgbd/tiny (evaluated on synthetic_rgbd/dof_tiny)" in md, md
  assert "bokeh_psnr_thin_lens ↑" in md and "against the thin-lens ground truth" in md, md
  assert "thin-lens ground truth's lens and focus" in md, md
  assert "thin_lens_floor_psnr ↑" not in md, md  # A sentence, not a column.
  for w in trained_workdirs:
    result = json.load(open(os.path.join(w, "eval_test.json")))
    assert result["dataset"] == "synthetic_rgbd/dof_tiny"
    assert {"bokeh_psnr_thin_lens", "thin_lens_floor_psnr"} <= set(result["metrics"])


@pytest.mark.slow
def test_real_training_lines_losses_figure(tmp_path, trained_workdirs, figures):
  # The keys compare relies on are the ones training writes.
  l1, cgan_l1 = (compare.load_run(w) for w in trained_workdirs)
  assert any(compare.THROUGHPUT in rec for rec in l1.train)
  assert not any("d_fake" in rec for rec in l1.train)
  assert any("d_fake" in rec for rec in cgan_l1.train)
  compare.main(trained_workdirs + ["--out", str(tmp_path / "report"), "--num_images", "0"])
  fig = _figure(figures, "Training losses")
  titles = _panel_titles(fig)
  assert titles[0] == "d_fake" and compare.THROUGHPUT not in titles, titles
  assert titles[-1].startswith(f"{compare.THROUGHPUT} (training throughput")
  assert _legend_texts(fig) == ["L1 (n=1)", "cGAN+L1 (n=1)"]
