"""Checkpoints (orbax, async, atomic) and the record of each run's resolved config.

Layout in the workdir W:
  W/checkpoints/<step>/state  the TrainState pytree (orbax StandardSave)
  W/checkpoints/<step>/data   the input iterator's state (JSON)
  W/config.json               the resolved config of the latest run
  W/runs/<time>.json          every run's resolved config, never overwritten

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a killed
process never leaves a checkpoint that looks complete. A checkpoint that fails to restore is
reported and the next older one is tried; nothing is deleted.
"""

import datetime
import json

import orbax.checkpoint as ocp
from etils import epath

from dofjax import errors

# Config fields that change parameter shapes: resuming with a different value cannot work.
SHAPE_FIELDS = ("model.ngf", "model.num_downs", "model.norm", "model.ndf", "model.n_layers",
                "model.disc_norm")


def _get(flat: dict, dotted: str):
  node = flat
  for part in dotted.split("."):
    if not isinstance(node, dict) or part not in node:
      return None
    node = node[part]
  return node


def _shape_signature(config_dict: dict) -> dict:
  from dofjax import losses
  sig = {f: _get(config_dict, f) for f in SHAPE_FIELDS}
  arm = _get(config_dict, "loss.arm")
  sig["has_discriminator"] = losses.uses_discriminator(arm) if arm else None
  return sig


def record_config(workdir, config, has_checkpoints: bool, write: bool = True) -> None:
  """Writes W/config.json and W/runs/<time>.json; refuses a shape-changing config on resume.

  Raises UserError when W already has checkpoints made with a config whose model shapes differ.
  """
  workdir = epath.Path(workdir)
  new = json.loads(config.to_json_best_effort())
  previous_path = workdir / "config.json"
  if has_checkpoints and previous_path.exists():
    old = json.loads(previous_path.read_text())
    old_sig, new_sig = _shape_signature(old), _shape_signature(new)
    diffs = [f"{k}: {old_sig[k]!r} -> {new_sig[k]!r}" for k in new_sig if old_sig[k] != new_sig[k]]
    if diffs:
      raise errors.UserError(
          f"{workdir} holds checkpoints of a model with other shapes ({'; '.join(diffs)}). "
          "Resume with the original config, or use a new --workdir.")
  if not write:
    return
  text = json.dumps(new, indent=2, sort_keys=True)
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
  (workdir / "runs").mkdir(parents=True, exist_ok=True)
  (workdir / "runs" / f"{stamp}.json").write_text(text)
  atomic_write_text(previous_path, text)


def atomic_write_text(path, text: str) -> None:
  """Writes `text` to path.tmp, then replaces `path` with it: never a half-written file."""
  path = epath.Path(path)
  tmp = path.parent / (path.name + ".tmp")
  tmp.write_text(text)
  tmp.replace(path)


def make_manager(workdir, keep: int) -> ocp.CheckpointManager:
  """An async CheckpointManager over W/checkpoints keeping the newest `keep` checkpoints."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(epath.Path(workdir) / "checkpoints", options=options,
                               item_names=("state", "data"))


def save(manager, step: int, state, data_state, force: bool = False) -> None:
  """Starts an async save of (state, data iterator state) at `step`."""
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state if data_state is not None else {})), force=force)


def restore_latest(manager, abstract_state, log=print):
  """Restores the newest checkpoint that restores cleanly.

  Args:
    manager: from make_manager.
    abstract_state: a pytree of jax.ShapeDtypeStruct (with shardings) like the saved state.
    log: where to report skipped checkpoints.
  Returns:
    (step, state, data_state) or (None, None, None) when there is no usable checkpoint.
  """
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      restored = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
      return step, restored["state"], restored["data"]
    except Exception as e:  # noqa: BLE001 -- any failure means this checkpoint is unusable.
      log(f"warning: checkpoint at step {step} in {manager.directory} could not be restored "
          f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
          "it is left in place and an older one is tried.")
  return None, None, None


def latest_step(workdir):
  """The newest complete checkpoint step in W/checkpoints, or None (no manager kept open)."""
  directory = epath.Path(workdir) / "checkpoints"
  if not directory.exists():
    return None
  steps = [int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir()]
  return max(steps) if steps else None

