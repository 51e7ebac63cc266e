"""The training CLI end to end on configs/tiny.py: checkpoints, summaries, resume, bad input."""

import json
import os
import subprocess
import sys

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


def test_train_writes_checkpoint_summaries_samples_then_resumes(tmp_path, synthetic_data_dir):
  workdir = str(tmp_path / "w")
  first = run_main(*tiny_args(workdir, synthetic_data_dir, "--config.num_train_steps=4",
                              "--config.checkpoint_every_steps=2", "--config.eval_every_steps=4"))
  assert first.returncode == 0, first.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(workdir))
  lines = _metrics(workdir)
  train_lines = [l for l in lines if l["split"] == "train"]
  val_lines = [l for l in lines if l["split"] == "validation"]
  assert train_lines[-1]["step"] == 4 and "g_loss" in train_lines[-1]
  assert val_lines[-1]["step"] == 4
  for key in ("abs_rel", "rmse", "d1", "silog", "dbe_acc", "bokeh_psnr"):
    assert key in val_lines[-1], key
  assert "step 4/4" in first.stdout
  assert os.path.exists(os.path.join(workdir, "samples", "sample_0.png"))
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["dataset"] == "synthetic_rgbd/tiny"

  second = run_main(*tiny_args(workdir, synthetic_data_dir, "--config.num_train_steps=6",
                               "--config.checkpoint_every_steps=2", "--config.eval_every_steps=4"))
  assert second.returncode == 0, second.stderr[-3000:]
  assert "Resuming from the checkpoint at step 4" in second.stdout
  steps = [l["step"] for l in _metrics(workdir) if l["split"] == "train"]
  assert steps[-1] == 6 and 5 in steps and steps.count(4) == 1  # continued, not restarted
  assert "6" in os.listdir(os.path.join(workdir, "checkpoints"))

  evaluated = run_main(*tiny_args(workdir, synthetic_data_dir, "--mode=eval"))
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  with open(os.path.join(workdir, "eval_test.json")) as f:
    result = json.load(f)
  assert result["step"] == 6 and result["split"] == "test"
  assert result["dataset"] == "synthetic_rgbd/tiny"
  assert 0 < result["metrics"]["abs_rel"] < 10


def test_relative_workdir_saves_checkpoints_and_evaluates(tmp_path, synthetic_data_dir):
  """The README's commands pass relative workdirs (orbax itself only takes absolute paths)."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("JAX_NUM_CPU_DEVICES", None)
  args = [sys.executable, "-m", "dofjax.main", f"--config={ROOT}/configs/tiny.py",
          "--workdir=runs/w", f"--config.data_dir={synthetic_data_dir}",
          "--config.num_train_steps=2", "--config.lr_constant_steps=1",
          "--config.checkpoint_every_steps=1", "--config.num_samples=0"]
  for extra in ([], ["--mode=eval"]):
    result = subprocess.run(args + extra, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert sorted(os.listdir(tmp_path / "runs" / "w" / "checkpoints")) == ["1", "2"]
  assert json.loads((tmp_path / "runs" / "w" / "eval_test.json").read_text())["step"] == 2


@pytest.mark.parametrize("override, message", [
    ("--config.loss.arm=wgan", "loss.arm='wgan' is not one of"),
    ("--config.model.norm=group", "model.norm='group' is not one of"),
    ("--config.dataset=nyu", "dataset='nyu' is unknown"),
    ("--config.eval_dataset=nyu", "eval_dataset='nyu' is unknown"),
    ("--config.image_size=48", "image_size=48 is not divisible by 2**model.num_downs = 32"),
])
def test_bad_config_values_exit_2_with_one_clear_line(tmp_path, override, message):
  result = run_main(*tiny_args(tmp_path / "w", tmp_path / "data", override))
  assert result.returncode == 2
  assert message in result.stderr
  assert "Traceback" not in result.stderr


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
