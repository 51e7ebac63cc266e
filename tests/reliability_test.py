"""Reliability: hard kills, SIGTERM, exact resume, non-finite losses and bad input (issue 8).

Each test runs the CLI (`python -m dofjax.main`, tiny config) as a subprocess, interrupts it where
it matters, runs the same command again and compares the final checkpoint, restored in this
process, with that of one uninterrupted run (bit for bit: parameters, BatchNorm statistics, Adam
state, step and the data iterator's position).

Kill points are found by watching W/checkpoints: a complete checkpoint is a folder named by its
step, one being written is `<step>.orbax-checkpoint-tmp-<time>`. To kill *during* a write, the
child is frozen with SIGSTOP as soon as such a folder appears, the folder is checked to be still
there, and only then is the child sent SIGKILL: no test-only hook in the code is needed.

All runs share one persistent XLA compilation cache, so only the first run of each compiled
function pays for compilation.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEPS = 6  # configs/tiny.py's num_train_steps.
TMP_MARK = ".orbax-checkpoint-tmp"
RUN_TIMEOUT_S = 600


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """The child processes' environment: CPU only, one device, a shared compilation cache (a
  fresh one unless JAX_COMPILATION_CACHE_DIR is set)."""
  e = dict(os.environ)
  e.pop("JAX_NUM_CPU_DEVICES", None)
  e.pop("XLA_FLAGS", None)
  e.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax_cache")))
  e.update(JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
           JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
           JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return e


def _command(workdir, data_dir, *extra):
  return [sys.executable, "-m", "dofjax.main", "--config=configs/tiny.py",
          f"--workdir={workdir}", f"--config.data_dir={data_dir}", "--config.num_samples=0",
          "--config.num_image_summaries=0", "--config.checkpoint_every_steps=1",
          "--config.eval_every_steps=1000", *extra]


def _run(cmd, env):
  """Runs cmd to the end; returns (exit status, stdout, stderr)."""
  p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                     timeout=RUN_TIMEOUT_S, check=False)
  return p.returncode, p.stdout, p.stderr


class _Child:
  """A run in the background; its output goes to a log file (no pipe to fill up)."""

  def __init__(self, cmd, env, log_path):
    self.log_path = log_path
    self._log = open(log_path, "w")
    self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log,
                                 stderr=subprocess.STDOUT)

  def output(self) -> str:
    return pathlib.Path(self.log_path).read_text()

  def wait(self, timeout=RUN_TIMEOUT_S) -> int:
    rc = self.proc.wait(timeout)
    self._log.close()
    return rc

  def kill(self) -> None:
    self.proc.send_signal(signal.SIGKILL)
    self.wait()

  def wait_for(self, condition, what, timeout=RUN_TIMEOUT_S):
    """Polls `condition()` (every ~1 ms) until it returns a true value, and returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      found = condition()
      if found:
        return found
      if self.proc.poll() is not None:
        pytest.fail(f"The run exited ({self.proc.returncode}) before {what}:\n{self.output()}")
      time.sleep(0.001)
    self.kill()
    pytest.fail(f"Timed out waiting for {what}:\n{self.output()}")


def _complete_steps(workdir):
  d = pathlib.Path(workdir) / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def _tmp_folders(workdir):
  d = pathlib.Path(workdir) / "checkpoints"
  return sorted(p.name for p in d.iterdir() if TMP_MARK in p.name) if d.exists() else []


def _step_done(workdir, step):
  return lambda: step in _complete_steps(workdir)


def _kill_during_write(child, workdir, min_step):
  """SIGKILLs `child` while a checkpoint of step >= min_step is being written; returns its
  temporary folder's name (which the kill leaves behind)."""
  before = set(_tmp_folders(workdir))
  while True:
    name = child.wait_for(
        lambda: next((n for n in _tmp_folders(workdir)
                      if n not in before and int(n.split(".")[0]) >= min_step), None),
        f"a checkpoint write of step >= {min_step}")
    child.proc.send_signal(signal.SIGSTOP)  # Freeze every thread, then look again.
    if name in _tmp_folders(workdir):
      child.kill()
      return name
    before.add(name)  # It was renamed in between: too late, catch the next one.
    child.proc.send_signal(signal.SIGCONT)


def _final_checkpoint(workdir):
  """(step, {leaf path: numpy array}, data iterator state) of the newest checkpoint in W."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import checkpointing, parallel  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  manager = checkpointing.make_manager(workdir, config.keep_checkpoints, read_only=True)
  try:
    step, state, data = checkpointing.restore_latest(
        manager, parallel.abstract_state(config, parallel.make_mesh()))
  finally:
    manager.close()
  assert state is not None, f"no checkpoint could be restored from {workdir}"
  leaves = {jax.tree_util.keystr(path): np.asarray(x)
            for path, x in jax.tree_util.tree_flatten_with_path(state)[0]}
  return step, leaves, data


def _assert_identical(got, want):
  (step, leaves, data), (ref_step, ref_leaves, ref_data) = got, want
  assert step == ref_step == STEPS
  assert ref_leaves and leaves.keys() == ref_leaves.keys()
  differ = [k for k in ref_leaves
            if leaves[k].dtype != ref_leaves[k].dtype or leaves[k].shape != ref_leaves[k].shape
            or leaves[k].tobytes() != ref_leaves[k].tobytes()]
  assert not differ, f"{len(differ)} of {len(ref_leaves)} arrays differ, e.g. {differ[:5]}"
  assert data == ref_data, "the data iterator's position differs"


def _assert_clean_error(rc, out, err, *phrases, status=2):
  assert rc == status, f"exit status {rc}\nstdout:\n{out}\nstderr:\n{err}"
  assert "Traceback" not in err + out, err
  assert err.strip().splitlines()[-1].startswith("error: "), err
  assert len(err.strip().splitlines()) == 1, f"more than the error on stderr:\n{err}"
  for phrase in phrases:
    assert phrase in err, f"{phrase!r} not in:\n{err}"


# ----------------------------------------------------------------------------- the reference


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_data_dir, env):
  """(workdir, final checkpoint) of one uninterrupted run of STEPS steps."""
  workdir = tmp_path_factory.mktemp("reference") / "w"
  rc, out, err = _run(_command(workdir, synthetic_data_dir), env)
  assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
  assert f"step {STEPS}/{STEPS}" in out, out
  assert _tmp_folders(workdir) == []
  return workdir, _final_checkpoint(workdir)


# ----------------------------------------------------------------------------- hard kills


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_is_bit_identical(reference, synthetic_data_dir, env,
                                                            tmp_path):
  workdir = tmp_path / "w"
  cmd = _command(workdir, synthetic_data_dir)
  child = _Child(cmd, env, tmp_path / "run1.log")
  child.wait_for(_step_done(workdir, 2), "the checkpoint of step 2")
  child.kill()  # Somewhere in step 3 or its checkpoint.
  killed_at = max(_complete_steps(workdir))
  assert killed_at < STEPS

  rc, out, err = _run(cmd, env)
  assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
  assert f"Resuming from the checkpoint at step {killed_at}" in out, out
  _assert_identical(_final_checkpoint(workdir), reference[1])


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_then_resume_is_bit_identical(
    reference, synthetic_data_dir, env, tmp_path):
  workdir = tmp_path / "w"
  cmd = _command(workdir, synthetic_data_dir)
  # Run 1: killed while writing the checkpoint of step >= 3.
  child = _Child(cmd, env, tmp_path / "run1.log")
  left1 = _kill_during_write(child, workdir, min_step=3)
  assert left1 in _tmp_folders(workdir)
  assert int(left1.split(".")[0]) not in _complete_steps(workdir)
  # Run 2: resumes, reports the leftover, and is killed while writing step >= 5.
  child = _Child(cmd, env, tmp_path / "run2.log")
  left2 = _kill_during_write(child, workdir, min_step=5)
  out2 = child.output()
  assert f"Resuming from the checkpoint at step {int(left1.split('.')[0]) - 1}" in out2, out2
  assert "incomplete checkpoint folder" in out2 and left1 in out2, out2
  assert left1 not in _tmp_folders(workdir)
  # Run 3: finishes.
  rc, out, err = _run(cmd, env)
  assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
  assert left2 in out, out
  assert _tmp_folders(workdir) == []
  _assert_identical(_final_checkpoint(workdir), reference[1])


# ----------------------------------------------------------------------------- SIGTERM


@pytest.mark.slow
def test_sigterm_saves_exits_75_and_resumes_bit_identical(reference, synthetic_data_dir, env,
                                                            tmp_path):
  workdir = tmp_path / "w"
  cmd = _command(workdir, synthetic_data_dir)
  child = _Child(cmd, env, tmp_path / "run1.log")
  child.wait_for(_step_done(workdir, 2), "the checkpoint of step 2")
  child.proc.send_signal(signal.SIGSTOP)  # Deliver SIGTERM while training is surely running.
  child.proc.send_signal(signal.SIGTERM)
  child.proc.send_signal(signal.SIGCONT)
  rc = child.wait()
  out = child.output()
  assert rc == 75, out  # Stopped, resumable.
  line = next((l for l in out.splitlines() if l.startswith("Stopped by SIGTERM at step ")), None)
  assert line is not None, out
  stopped = int(line.split("Stopped by SIGTERM at step ")[1].split(";")[0])
  assert 2 <= stopped < STEPS, out
  assert "Run the same command again to resume" in line
  assert max(_complete_steps(workdir)) == stopped
  assert _tmp_folders(workdir) == []

  rc, out, err = _run(cmd, env)
  assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
  assert f"Resuming from the checkpoint at step {stopped}" in out, out
  _assert_identical(_final_checkpoint(workdir), reference[1])


# ----------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.slow
def test_damaged_checkpoints_are_reported_moved_aside_and_skipped(reference, synthetic_data_dir,
                                                                   env, tmp_path):
  workdir = tmp_path / "w"
  shutil.copytree(reference[0], workdir)
  assert _complete_steps(workdir)[-2:] == [STEPS - 1, STEPS]
  # The newest: its array data files truncated to half (metadata intact). The one before: its
  # data iterator state gone.
  truncated = 0
  for f in (workdir / "checkpoints" / str(STEPS) / "state").rglob("*"):
    if f.is_file() and f.parent.name == "d" and f.stat().st_size > 1:
      with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size // 2)
      truncated += 1
  assert truncated
  shutil.rmtree(workdir / "checkpoints" / str(STEPS - 1) / "data")

  rc, out, err = _run(_command(workdir, synthetic_data_dir), env)
  assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
  assert "Traceback" not in err, err
  for step in (STEPS, STEPS - 1):
    assert f"the checkpoint at step {step} in" in out and "could not be restored" in out, out
  assert f"Resuming from the checkpoint at step {STEPS - 2}" in out, out
  moved = sorted(p.name.split("-")[0] for p in (workdir / "unusable_checkpoints").iterdir())
  assert moved == [str(STEPS - 1), str(STEPS)]
  assert "moved the unusable checkpoint" in out
  _assert_identical(_final_checkpoint(workdir), reference[1])


def test_failed_restore_noise_is_dropped_but_other_asyncio_errors_are_kept():
  """The reports orbax's abandoned reads leave behind (timing-dependent in the test above) are
  dropped; any other asyncio error still reaches stderr. Run in a child for a clean logging setup."""
  script = (
      "import asyncio, gc, logging\n"
      "from dofjax import checkpointing\n"
      "checkpointing._silence_stray_reads()\n"
      "async def async_deserialize():\n"
      "  raise ValueError('OUT_OF_RANGE: byte range not valid')\n"
      "async def other_work():\n"
      "  raise KeyError('a real bug')\n"
      "async def main():\n"
      "  a = asyncio.ensure_future(async_deserialize())\n"
      "  b = asyncio.ensure_future(other_work())\n"
      "  await asyncio.sleep(0.01)\n"
      "loop = asyncio.new_event_loop()\n"
      "loop.run_until_complete(main())\n"
      "loop.close()\n"
      "gc.collect()\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=True)
  assert "async_deserialize" not in result.stderr, result.stderr
  assert "OUT_OF_RANGE" not in result.stderr, result.stderr
  assert "other_work" in result.stderr and "a real bug" in result.stderr, result.stderr


# ----------------------------------------------------------------------------- non-finite steps


@pytest.mark.slow
def test_nonfinite_loss_stops_with_step_and_loss_and_keeps_good_checkpoints(
    reference, synthetic_data_dir, env, tmp_path):
  workdir = tmp_path / "w"
  shutil.copytree(reference[0], workdir)
  shutil.rmtree(workdir / "checkpoints" / str(STEPS))
  good = workdir / "checkpoints" / str(STEPS - 1)
  good_files = {p: p.read_bytes() for p in good.rglob("*") if p.is_file()}
  # Resume for the last step with an absurd learning rate: Adam moves every weight of the
  # discriminator by ~1e30, and the generator's loss against it overflows in that same step.
  rc, out, err = _run(_command(workdir, synthetic_data_dir, "--config.learning_rate=1e30"), env)
  _assert_clean_error(rc, out, err, f"Training stopped at step {STEPS}: non-finite g_loss",
                      f"the last good checkpoint is step {STEPS - 1}", "on_nonfinite=skip",
                      status=3)
  assert _complete_steps(workdir)[-1] == STEPS - 1 and _tmp_folders(workdir) == []
  assert {p: p.read_bytes() for p in good.rglob("*") if p.is_file()} == good_files


@pytest.mark.slow
def test_nonfinite_skip_mode_counts_skips_and_continues(synthetic_data_dir, env, tmp_path):
  workdir = tmp_path / "w"
  rc, out, err = _run(_command(workdir, synthetic_data_dir, "--config.learning_rate=1e30",
                               "--config.on_nonfinite=skip"), env)
  assert rc == 0, f"stdout:\n{out}\nstderr:\n{err}"
  skipped = [l for l in out.splitlines() if "update skipped (on_nonfinite='skip')" in l]
  assert skipped, out
  step, leaves, _ = _final_checkpoint(workdir)
  assert step == STEPS
  count = int(leaves[".nonfinite_skips"])
  assert count == len(skipped), (count, skipped)
  assert f"warning: {count} update(s) with non-finite" in out, out
  assert all(np.all(np.isfinite(x)) for x in leaves.values() if x.dtype.kind == "f")


# ----------------------------------------------------------------------------- bad input


@pytest.mark.slow
def test_shape_changing_config_is_refused(reference, synthetic_data_dir, env, tmp_path):
  workdir = tmp_path / "w"
  shutil.copytree(reference[0], workdir)
  config_before = (workdir / "config.json").read_text()
  rc, out, err = _run(_command(workdir, synthetic_data_dir, "--config.model.ngf=16"), env)
  _assert_clean_error(rc, out, err, "model.ngf: 8 -> 16", "new --workdir")
  assert (workdir / "config.json").read_text() == config_before
  # Without W/config.json (e.g. deleted) the checkpoint's own shapes give the same refusal.
  (workdir / "config.json").unlink()
  rc, out, err = _run(_command(workdir, synthetic_data_dir, "--config.model.ngf=16"), env)
  _assert_clean_error(rc, out, err, "other shapes", "new --workdir")
  assert _complete_steps(workdir) == _complete_steps(reference[0])
  assert not (workdir / "unusable_checkpoints").exists()


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_bad_workdir_fails_before_training(kind, synthetic_data_dir, env, tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("not a folder")
  workdir = a_file if kind == "file" else a_file / "w"
  rc, out, err = _run(_command(workdir, synthetic_data_dir), env)
  phrase = "is a file, not a folder" if kind == "file" else "Cannot write to --workdir"
  _assert_clean_error(rc, out, err, phrase, str(workdir))
  assert "step 1/" not in out
  assert a_file.read_text() == "not a folder"


def test_full_disk_fails_before_training(monkeypatch, tmp_path):
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import errors, workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  usage = types.SimpleNamespace(total=1 << 30, used=(1 << 30) - (1 << 20), free=1 << 20)
  monkeypatch.setattr(workdir_lib.shutil, "disk_usage", lambda path: usage)
  with pytest.raises(errors.UserError, match=r"Only 1 MiB free .* Free some space"):
    workdir_lib.prepare(tmp_path / "w", tiny.get_config())
