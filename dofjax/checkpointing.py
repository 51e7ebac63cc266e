"""Checkpoints (orbax, async, atomic) and the record of each run's resolved config.

Layout in the workdir W (the rest of W is described in `dofjax.workdir`):
  W/checkpoints/<step>/state  the TrainState pytree (orbax StandardSave)
  W/checkpoints/<step>/data   the input iterator's state (JSON)
  W/unusable_checkpoints/     checkpoints that failed to restore, moved here (never deleted)

Orbax writes each checkpoint to `<step>.orbax-checkpoint-tmp-<time>` and renames it to `<step>`
when complete, so a killed process never leaves a checkpoint that looks complete; the next
training run reports such leftovers and removes them. A checkpoint that fails to restore is
reported and the next older one is tried; once an older one restores, the unusable newer ones
are moved to W/unusable_checkpoints (so that the run can save those steps again). Only a
checkpoint whose own files are missing, truncated or unparseable counts as damaged; an error of
the environment (permission denied, out of memory, an unreachable bucket) stops with one message
and moves nothing. A checkpoint written before the TrainState gained an optional field (one that
is None in the current config, such as `gen_ema`) restores with that field None.
"""

from collections.abc import Mapping
import dataclasses
import datetime
import errno
import json
import logging
import os
import sys
import warnings

import jax
import orbax.checkpoint as ocp
from etils import epath

from dofjax import errors

# What orbax appends to the folder name of a checkpoint that is still being written.
TMP_MARK = ".orbax-checkpoint-tmp"

def make_manager(workdir, keep: int, read_only: bool = False) -> ocp.CheckpointManager:
  """An async CheckpointManager over W/checkpoints keeping the newest `keep` checkpoints.

  A training manager removes the temporary folders of interrupted saves (report them first with
  `incomplete_checkpoints`). With read_only (evaluation, perhaps beside a running training job)
  it creates and removes nothing; never call save on it. (Orbax's own read_only option is not
  used: it logs warnings on every start.)
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                         cleanup_tmp_directories=not read_only,
                                         enable_async_checkpointing=True)
  # Orbax refuses relative paths (when it first saves), so a local workdir is made absolute.
  workdir = str(workdir)
  if "://" not in workdir:
    workdir = os.path.abspath(workdir)
  return ocp.CheckpointManager(epath.Path(workdir) / "checkpoints", options=options,
                               item_names=("state", "data"))


def incomplete_checkpoints(workdir) -> list:
  """Names of the temporary folders that interrupted saves left in W/checkpoints."""
  directory = epath.Path(workdir) / "checkpoints"
  if not directory.exists():
    return []
  return sorted(p.name for p in directory.iterdir() if TMP_MARK in p.name)


def gather_process_states(local_state) -> dict:
  """Every process's JSON-able iterator state, for process 0 to write (call on all processes).

  Returns {"process_count": n, "states": [state of process 0, ..., state of process n-1]}.
  Orbax's JSON item is written by process 0 only, so each process's own position must be
  gathered first, or a resumed multi-host run would hand process 0's position to everyone.
  """
  import jax
  import numpy as np
  n = jax.process_count()
  if n == 1:
    return {"process_count": 1, "states": [local_state]}
  from jax.experimental import multihost_utils
  encoded = np.frombuffer(json.dumps(local_state).encode(), np.uint8)
  lengths = np.asarray(multihost_utils.process_allgather(np.int32(encoded.size)))
  padded = np.zeros(int(lengths.max()), np.uint8)
  padded[:encoded.size] = encoded
  everyone = np.asarray(multihost_utils.process_allgather(padded))
  return {"process_count": n,
          "states": [json.loads(everyone[i, :lengths[i]].tobytes()) for i in range(n)]}


def local_process_state(data_state):
  """This process's iterator state from a gather_process_states() dict, or None if the
  checkpoint was written by a different number of processes (the data order then restarts)."""
  import jax
  if not data_state or "states" not in data_state:
    return None
  if data_state.get("process_count") != jax.process_count():
    return None
  return data_state["states"][jax.process_index()]


def save(manager, step: int, state, data_state, force: bool = False) -> None:
  """Starts an async save of (state, data iterator state) at `step`; data_state as returned by
  gather_process_states."""
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state if data_state is not None else {})), force=force)


def _path_names(path) -> str:
  parts = []
  for key in path:
    for attr in ("name", "key", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts)


def _saved_tree(manager, step: int):
  """The metadata tree of the state saved at `step` (nested dicts of orbax array metadata), or
  None when it cannot be read (then the checkpoint is damaged)."""
  handler = ocp.PyTreeCheckpointHandler()
  try:
    saved = handler.metadata(epath.Path(manager.directory) / str(step) / "state")
  except Exception:  # noqa: BLE001 -- unreadable metadata: damaged, not a config mismatch.
    return None
  finally:
    handler.close()
  return getattr(saved, "tree", saved)


def _shape_mismatch(saved, abstract_state):
  """A description of how the saved state's shapes (`_saved_tree`) differ from
  `abstract_state`, or None (also when `saved` is None: a damaged checkpoint)."""
  if saved is None:
    return None
  saved_shapes = {_path_names(p): tuple(x.shape) for p, x in
                  jax.tree_util.tree_flatten_with_path(saved)[0] if hasattr(x, "shape")}
  if not saved_shapes:
    return None
  wanted = {_path_names(p): tuple(x.shape) for p, x in
            jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
  diffs = [f"{k}: saved {saved_shapes.get(k, 'absent')}, config {wanted.get(k, 'absent')}"
           for k in sorted(set(saved_shapes) | set(wanted), key=lambda k: ("/params/" not in k, k))
           if saved_shapes.get(k) != wanted.get(k)]
  if not diffs:
    return None
  more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
  return "; ".join(diffs[:3]) + more


def _fields_added_since(saved, abstract_state) -> tuple:
  """Names of the fields of `abstract_state` (a dataclass such as the TrainState) that are None
  in it and absent from the saved tree: the checkpoint predates them (e.g. `gen_ema`, added
  with config.ema_decay). Such a checkpoint restores with those fields None."""
  if not dataclasses.is_dataclass(abstract_state) or not isinstance(saved, Mapping):
    return ()
  return tuple(f.name for f in dataclasses.fields(abstract_state)
               if getattr(abstract_state, f.name) is None and f.name not in saved)


def _restore_state(manager, step: int, abstract_state, added: tuple):
  """(state, data_state) restored from `step`; the fields named in `added` (absent from this
  checkpoint, None in abstract_state) are left out of the read and come back None."""
  target = abstract_state
  if added:
    target = {f.name: getattr(abstract_state, f.name) for f in dataclasses.fields(abstract_state)
              if f.name not in added}
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
  state = restored["state"]
  if added:
    state = abstract_state.replace(**state)
  return state, restored["data"]


def _move_aside(manager, steps, log) -> None:
  """Moves unusable step folders to W/unusable_checkpoints/ (process 0) and reloads the manager."""
  directory = epath.Path(manager.directory)
  target_dir = directory.parent / "unusable_checkpoints"
  if jax.process_index() == 0:
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for step in steps:
      target = target_dir / f"{step}-{stamp}"
      (directory / str(step)).rename(target)
      log(f"warning: moved the unusable checkpoint of step {step} to {target} (not deleted; "
          "inspect or delete it yourself).")
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices("dofjax_move_unusable_checkpoints")
  manager.reload()


class _DropFailedReadReports(logging.Filter):
  """Drops asyncio's "Task exception was never retrieved" reports of orbax reads.

  When one array of a checkpoint fails to read, orbax gives up on the restore while the reads of
  the other arrays are still in flight; asyncio later logs each of those as an error with a
  traceback. restore_latest has already reported the checkpoint in one line, so these go.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not ("Task exception was never retrieved" in message and "deserialize" in message)


def _silence_stray_reads() -> None:
  """Drops the noise that follows a failed orbax restore (installed once per process).

  Orbax runs each restore on a fresh event loop and closes it when a read fails, while reads of
  other arrays are still in flight. As they finish, Python reports each as an unraisable
  "RuntimeError: Event loop is closed", asyncio logs "Task exception was never retrieved", or a
  coroutine is reported "never awaited", each with a traceback, and all only noise: the failure
  itself is reported by restore_latest. These exact reports are dropped; everything else passes.
  """
  previous = sys.unraisablehook
  if getattr(previous, "dofjax_silences_stray_reads", False):
    return

  def hook(unraisable):
    e = unraisable.exc_value
    if isinstance(e, RuntimeError) and str(e) == "Event loop is closed":
      return
    previous(unraisable)

  hook.dofjax_silences_stray_reads = True
  sys.unraisablehook = hook
  logging.getLogger("asyncio").addFilter(_DropFailedReadReports())
  warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited",
                          category=RuntimeWarning, module=r"orbax\.")


# Errors of the environment, not of a checkpoint's files: the run stops and nothing is moved.
_ENVIRONMENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.ENOMEM, errno.ENOSPC,
                                 errno.EIO, errno.EROFS, errno.ETIMEDOUT, errno.ECONNREFUSED,
                                 errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH})


def _unreadable_file(directory):
  """The first file under a local checkpoint folder that this process may not read, or None."""
  if "://" in str(directory):
    return None
  for root, _, files in os.walk(str(directory)):
    for name in files:
      path = os.path.join(root, name)
      if not os.access(path, os.R_OK):
        return path
  return None


def _environment_error(step, directory, e):
  """A UserError for a restore that failed because of the environment, or None when the
  failure says the checkpoint's files themselves are damaged (missing, truncated, unparseable)."""
  where = f"the checkpoint at step {step} in {directory}"
  if isinstance(e, MemoryError):
    return errors.UserError(f"Out of memory while restoring {where}. Nothing was moved; free "
                            "memory (or use a machine with more) and run again.")
  if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS or isinstance(
      e, (PermissionError, ConnectionError, TimeoutError)):
    return errors.UserError(f"Cannot read {where} ({type(e).__name__}: {e}). Nothing was moved; "
                            "fix the storage or its permissions and run again.")
  unreadable = _unreadable_file(epath.Path(directory) / str(step))
  if unreadable:
    return errors.UserError(f"Cannot read {where}: permission denied for {unreadable}. Nothing "
                            "was moved; fix the permissions and run again.")
  return None


# What a damaged checkpoint raises when orbax or tensorstore reads it: missing files or folders,
# truncated or unparseable data (tensorstore and JSON report those as ValueError).
_DAMAGE_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError, KeyError,
                  EOFError, OSError)


def _shape_error(manager, step, mismatch, config_changes):
  explain = f" ({'; '.join(config_changes)})" if config_changes else f" ({mismatch})"
  return errors.UserError(
      f"{epath.Path(manager.directory).parent} holds checkpoints of a model with other shapes"
      f"{explain}: the checkpoint at step {step} does not fit this config. Resume with the "
      "config that made it (each run's config is in W/runs/), or use a new --workdir.")


def restore_latest(manager, abstract_state, log=print, move_unusable: bool = False,
                   config_changes=()):
  """Restores the newest checkpoint that restores cleanly.

  A damaged checkpoint (files missing, truncated or unparseable) is reported and the next older
  one is tried. With `move_unusable` (training), the damaged ones are then moved to
  W/unusable_checkpoints so that their steps can be saved again; otherwise they are left.

  Args:
    manager: from make_manager.
    abstract_state: a pytree of jax.ShapeDtypeStruct (with shardings) like the saved state.
    log: where to report skipped checkpoints.
    move_unusable: move the damaged checkpoints out of W/checkpoints.
    config_changes: 'field: old -> new' lines (workdir.model_config_changes) that explain a
      shape mismatch in the error message.
  Returns:
    (step, state, data_state) or (None, None, None) when there is no usable checkpoint.
  Raises:
    UserError: a checkpoint holds a state of other shapes (another config made it), or the
      environment keeps a checkpoint from being read (nothing is moved then).
  """
  _silence_stray_reads()  # Now: the noise can come before a failed restore returns.
  failed = []
  result = (None, None, None)
  for step in sorted(manager.all_steps(), reverse=True):
    saved = _saved_tree(manager, step)
    mismatch = _shape_mismatch(saved, abstract_state)  # Before restore: no noisy failure.
    if mismatch:
      raise _shape_error(manager, step, mismatch, config_changes)
    try:
      state, data_state = _restore_state(manager, step, abstract_state,
                                         _fields_added_since(saved, abstract_state))
      result = (step, state, data_state)
      break
    except (_DAMAGE_ERRORS + (MemoryError,)) as e:
      environment = _environment_error(step, manager.directory, e)
      if environment is not None:
        raise environment from None
      first_line = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
      log(f"warning: the checkpoint at step {step} in {manager.directory} could not be restored "
          f"({type(e).__name__}: {first_line}); trying an older one.")
      failed.append(step)
  if failed and move_unusable:
    _move_aside(manager, failed, log)
  elif failed:
    log(f"warning: unusable checkpoints left in place: steps {', '.join(map(str, failed))}.")
  if failed and result[0] is None:
    log("warning: no checkpoint could be restored; starting from scratch.")
  return result


def restore_for_inference(workdir, make_abstract_state):
  """(step, TrainState) of the newest restorable checkpoint in W, read-only (nothing created,
  moved or removed; safe beside a running training job). UserError if there is none.

  make_abstract_state: () -> the abstract TrainState to restore into (called only when W has a
  checkpoint).
  """
  if latest_step(workdir) is None:
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints; train first, e.g. "
                           "python -m dofjax.main --config=configs/quickstart.py "
                           f"--workdir={workdir}")
  manager = make_manager(workdir, keep=1, read_only=True)
  try:
    step, state, _ = restore_latest(manager, make_abstract_state())
  finally:
    manager.close()
  if state is None:
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints could be restored.")
  return step, state


def source_checkpoint(source: str):
  """(workdir, step) named by config.init_from: 'W' (its newest checkpoint) or
  'W/checkpoints/<step>'. UserError if there is no such checkpoint."""
  path = os.path.normpath(str(source))
  parent = os.path.dirname(path)
  if os.path.basename(path).isdigit() and os.path.basename(parent) == "checkpoints":
    workdir, step = os.path.dirname(parent), int(os.path.basename(path))
    if step not in (all_steps(workdir) or []):
      raise errors.UserError(f"init_from={source}: no checkpoint of step {step} in "
                             f"{workdir}/checkpoints (it has: "
                             f"{', '.join(map(str, all_steps(workdir))) or 'none'}).")
    return workdir, step
  step = latest_step(path)
  if step is None:
    raise errors.UserError(f"init_from={source}: no checkpoint in {path}/checkpoints; pass the "
                           "--workdir of a finished training run (or W/checkpoints/<step>).")
  return path, step


def restore_step(workdir, step: int, abstract_state):
  """The TrainState saved at `step` in W, read-only (nothing created, moved or removed)."""
  manager = make_manager(workdir, keep=1, read_only=True)
  try:
    saved = _saved_tree(manager, step)
    return _restore_state(manager, step, abstract_state,
                          _fields_added_since(saved, abstract_state))[0]
  finally:
    manager.close()


def all_steps(workdir):
  """The complete checkpoint steps in W/checkpoints, ascending (no manager kept open)."""
  directory = epath.Path(workdir) / "checkpoints"
  if not directory.exists():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir())


def latest_step(workdir):
  """The newest complete checkpoint step in W/checkpoints, or None (no manager kept open)."""
  steps = all_steps(workdir)
  return steps[-1] if steps else None

