"""The training CLI end to end on configs/tiny.py: checkpoints, summaries, resume, bad input."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args, timeout=600, num_devices=None):
  """Runs `python -m dofjax.main ARGS` from the repo root; returns the CompletedProcess."""
  env = dict(os.environ)
  env.pop("JAX_NUM_CPU_DEVICES", None)
  if num_devices:
    env["JAX_NUM_CPU_DEVICES"] = str(num_devices)
  return subprocess.run([sys.executable, "-m", "dofjax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def tiny_args(workdir, data_dir, *extra):
  return ["--config=configs/tiny.py", f"--workdir={workdir}", f"--config.data_dir={data_dir}",
          *extra]


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _labelled(png_path, num_columns):
  """True when the picture has a label strip on top with text over each of its columns."""
  import cv2  # pylint: disable=g-import-not-at-top
  picture = cv2.imread(str(png_path))
  strip = picture[:18]
  columns = np.array_split(np.arange(picture.shape[1]), num_columns)
  return all((strip[:, cols] < 128).any() for cols in columns)


@pytest.mark.slow  # Three CLI runs (train, resume, evaluate): the longest check of the suite.
def test_train_from_relative_workdir_logs_resumes_and_evaluates(tmp_path, synthetic_data_dir):
  """One end-to-end run of the README's flow from a relative --workdir (orbax itself only takes
  absolute paths): train with evaluations between checkpoints, resume, evaluate the test split."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("JAX_NUM_CPU_DEVICES", None)
  args = [sys.executable, "-m", "dofjax.main", f"--config={ROOT}/configs/tiny.py",
          "--workdir=runs/w", f"--config.data_dir={synthetic_data_dir}",
          "--config.checkpoint_every_steps=3", "--config.eval_every_steps=2",
          "--config.log_every_steps=1", "--config.lr_constant_steps=2"]
  workdir = tmp_path / "runs" / "w"

  def run(*extra):
    result = subprocess.run(args + list(extra), cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result

  first = run("--config.num_train_steps=4", "--config.samples_real_photo=True")
  assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "4"]
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(workdir))
  lines = _metrics(workdir)
  train_lines = [l for l in lines if l["split"] == "train"]
  val_lines = [l for l in lines if l["split"] == "validation"]
  assert [l["step"] for l in train_lines] == [1, 2, 3, 4]
  # The evaluation at step 2 must neither count as training time nor zero the next rate.
  assert all(l["steps_per_second"] > 0 for l in train_lines[1:]), train_lines
  progress = [l for l in first.stdout.splitlines() if l.startswith("step ")]
  assert len(progress) == 4 and not any("ETA ?" in l for l in progress[1:]), first.stdout
  assert [l["step"] for l in val_lines] == [2, 4]
  for key in ("abs_rel", "rmse", "d1", "silog", "dbe_acc", "bokeh_psnr"):
    assert key in val_lines[-1], key
  assert "step 4/4" in first.stdout
  assert _labelled(workdir / "samples" / "sample_0.png", 5)
  import cv2  # pylint: disable=g-import-not-at-top
  real = cv2.imread(str(workdir / "samples" / "real_photo.png"))  # The Motorcycle, half size.
  assert real.shape[1] >= 5 * 370 and _labelled(workdir / "samples" / "real_photo.png", 5)
  assert json.loads((workdir / "config.json").read_text())["dataset"] == "synthetic_rgbd/tiny"

  second = run("--config.num_train_steps=6")
  assert "Resuming from the checkpoint at step 4" in second.stdout
  steps = [l["step"] for l in _metrics(workdir) if l["split"] == "train"]
  assert steps[-1] == 6 and 5 in steps and steps.count(4) == 1  # continued, not restarted
  assert "6" in os.listdir(workdir / "checkpoints")

  run("--mode=eval")
  result = json.loads((workdir / "eval_test.json").read_text())
  assert result["step"] == 6 and result["split"] == "test"
  assert result["dataset"] == "synthetic_rgbd/tiny"
  assert 0 < result["metrics"]["abs_rel"] < 10


@pytest.mark.slow  # Trains twice in process.
def test_ctrl_c_while_writing_samples_then_rerun_writes_them(tmp_path, synthetic_data_dir,
                                                            monkeypatch):
  """A Ctrl-C after the last step (while W/samples is written) stops cleanly as resumable, and
  the rerun, with nothing left to train, writes the samples."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import errors, samples, train  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.data_dir = synthetic_data_dir
  config.num_train_steps, config.lr_constant_steps = 2, 1
  workdir = tmp_path / "w"
  tiles = samples.sample_tiles

  def interrupted_tiles(*a, **k):
    os.kill(os.getpid(), signal.SIGINT)  # As if the user pressed Ctrl-C now.
    return tiles(*a, **k)

  monkeypatch.setattr(samples, "sample_tiles", interrupted_tiles)
  with pytest.raises(errors.StoppedResumable, match="while writing the samples"):
    train.train_and_evaluate(config, str(workdir))
  assert not (workdir / "samples" / ".complete").exists()
  monkeypatch.setattr(samples, "sample_tiles", tiles)
  train.train_and_evaluate(config, str(workdir))
  written = sorted(p.name for p in (workdir / "samples").iterdir())
  assert written == [".complete", "sample_0.png", "sample_1.png"]


@pytest.mark.parametrize("override, message", [
    ("--config.loss.arm=wgan", "loss.arm='wgan' is not one of"),
    ("--config.model.norm=group", "model.norm='group' is not one of"),
    ("--config.dataset=nyu", "dataset='nyu' is unknown"),
    ("--config.eval_dataset=nyu", "eval_dataset='nyu' is unknown"),
    ("--config.image_size=48", "48x48 is not divisible by 2**model.num_downs = 32"),
    ("--config.batch_sise=4", "did you mean --config.batch_size?"),
    ("--config.model.ngff=4", "did you mean --config.model.ngf?"),
    ("--config.num_train_steps=2", "add --config.lr_constant_steps=1"),
])
def test_bad_config_values_exit_2_with_one_clear_line(tmp_path, override, message):
  result = run_main(*tiny_args(tmp_path / "w", tmp_path / "data", override))
  assert result.returncode == 2
  assert message in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert result.stderr.startswith("error: ")


def test_missing_config_file_is_one_clear_line(tmp_path):
  result = run_main("--config=configs/quickstrat.py", f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2
  assert result.stderr.strip() == (
      "error: --config=configs/quickstrat.py: no such file. Pass a config file, e.g. "
      "--config=configs/base.py (the configs are in the repository's configs/ folder).")


def test_workdir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / "a_file"
  path.write_text("not a folder")
  result = run_main(*tiny_args(path, tmp_path / "data"))
  assert result.returncode == 2
  assert "is a file, not a folder" in result.stderr
  assert "Traceback" not in result.stderr


def test_eval_without_checkpoint_is_a_clear_error(tmp_path):
  result = run_main(*tiny_args(tmp_path / "empty", tmp_path / "data", "--mode=eval"))
  assert result.returncode == 2
  assert "No checkpoint in" in result.stderr


def test_batch_size_not_divisible_by_device_count_is_refused(tmp_path):
  result = run_main(*tiny_args(tmp_path / "w", tmp_path / "data", "--config.batch_size=3"),
                    num_devices=8)
  assert result.returncode == 2
  assert "batch_size=3 is not divisible by the 8 devices" in result.stderr
  assert "Traceback" not in result.stderr


def test_real_photo_sample_without_scikit_image_is_one_clear_error(monkeypatch):
  """Asking for the real-photo sample where scikit-image is missing fails before training, with
  the two ways out."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import config as config_lib, errors  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.samples_real_photo = True
  config_lib.validate(config)  # scikit-image is a test dependency: present here.
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "skimage" else real_find_spec(name, *a))
  with pytest.raises(errors.UserError, match="pip install scikit-image, or set "
                                              "--config.samples_real_photo=False"):
    config_lib.validate(config)
