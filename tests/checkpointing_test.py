"""Restoring: a damaged checkpoint is skipped and moved aside; the environment's errors stop."""

import errno

import jax
import numpy as np
import pytest

from dofjax import checkpointing
from dofjax import errors


def _tree(value):
  return {"w": np.full((64,), value, np.float32), "step": np.int32(value)}


def _abstract():
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype, sharding=sharding),
      _tree(0))


@pytest.fixture
def workdir(tmp_path):
  manager = checkpointing.make_manager(tmp_path, keep=5)
  for step in (1, 2):
    checkpointing.save(manager, step, _tree(step), {"position": step})
  manager.wait_until_finished()
  manager.close()
  return tmp_path


def _restore(workdir, log):
  manager = checkpointing.make_manager(workdir, keep=5)
  try:
    return checkpointing.restore_latest(manager, _abstract(), log=log.append, move_unusable=True)
  finally:
    manager.close()


def test_truncated_checkpoint_is_skipped_and_moved_aside(workdir):
  for f in (workdir / "checkpoints" / "2" / "state").rglob("*"):
    if f.is_file() and f.parent.name == "d" and f.stat().st_size > 1:
      with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size // 2)
  log = []
  step, state, data = _restore(workdir, log)
  assert step == 1 and int(state["step"]) == 1 and data == {"position": 1}
  assert any("step 2" in line and "could not be restored" in line for line in log), log
  assert [p.name.split("-")[0] for p in (workdir / "unusable_checkpoints").iterdir()] == ["2"]


@pytest.mark.parametrize("failure", [
    PermissionError(errno.EACCES, "Permission denied"),
    OSError(errno.EIO, "Input/output error"),
    ConnectionError("bucket unreachable"),
    MemoryError(),
])
def test_environment_errors_stop_with_one_message_and_move_nothing(workdir, monkeypatch,
                                                                   failure):
  """Permission denied, I/O errors, an unreachable bucket or out of memory are not damage: the
  run must stop, and no checkpoint may be moved aside (or training would start from scratch)."""

  def fail(self, *args, **kwargs):
    raise failure

  monkeypatch.setattr(checkpointing.ocp.CheckpointManager, "restore", fail)
  with pytest.raises(errors.UserError, match="Nothing was moved") as raised:
    _restore(workdir, [])
  assert "step 2" in str(raised.value)
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["1", "2"]
  assert not (workdir / "unusable_checkpoints").exists()


def test_a_bug_during_restore_is_not_called_damage(workdir, monkeypatch):
  def bug(self, *args, **kwargs):
    raise TypeError("unsupported operand")  # A programming error, not a file problem.

  monkeypatch.setattr(checkpointing.ocp.CheckpointManager, "restore", bug)
  with pytest.raises(TypeError):
    _restore(workdir, [])
  assert not (workdir / "unusable_checkpoints").exists()


def test_a_checkpoint_from_before_a_new_optional_field_still_resumes(tmp_path):
  """Checkpoints written before the TrainState gained `gen_ema` (config.ema_decay) lack that
  field. Resuming one with the average off must restore it as it is, not call it damaged and
  start from scratch; with the average on, the config change is refused and nothing moves."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import parallel  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  mesh = parallel.make_mesh()
  state = parallel.init_state_on_mesh(config, jax.random.key(0), mesh)
  assert state.gen_ema is None
  older_layout = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
                  if f.name != "gen_ema"}
  manager = checkpointing.make_manager(tmp_path, keep=5)
  checkpointing.save(manager, 3, older_layout, {"position": 3})
  manager.wait_until_finished()
  manager.close()

  manager = checkpointing.make_manager(tmp_path, keep=5)
  try:
    log = []
    step, restored, data = checkpointing.restore_latest(
        manager, parallel.abstract_state(config, mesh), log=log.append, move_unusable=True)
    assert (step, data, log) == (3, {"position": 3}, [])
    assert restored.gen_ema is None
    want = jax.tree_util.tree_leaves(state)
    got = jax.tree_util.tree_leaves(restored)
    assert len(got) == len(want) and all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(got, want))

    config.ema_decay = 0.99
    with pytest.raises(errors.UserError, match="other shapes"):
      checkpointing.restore_latest(manager, parallel.abstract_state(config, mesh),
                                   move_unusable=True)
  finally:
    manager.close()
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["3"]
  assert not (tmp_path / "unusable_checkpoints").exists()
