"""The workdir W of a training run: its layout, the checks before a run, and the records in it.

Layout (checkpoints are `dofjax.checkpointing`'s, TensorBoard events and metrics.jsonl
`dofjax.summaries`'s):
  W/config.json               the resolved config of the latest run
  W/runs/<time>.json          every run's resolved config, never overwritten
  W/init_from.json            where a fine-tuning run started (config.init_from): source
                              workdir, step, which weights
  W/metrics.jsonl             one JSON object per logged step and evaluation
  W/eval_<split>.json         written by --mode=eval
  W/samples/sample_<i>.png    the end-of-training pictures
  W/checkpoints/<step>/       orbax checkpoints; W/unusable_checkpoints/ those that failed
"""

import datetime
import json
import os
import shutil

import ml_collections
from etils import epath

from dofjax import errors
from dofjax import state as state_lib


def is_remote(workdir) -> bool:
  """True for object-store paths (gs://...), whose client reports its own errors."""
  return "://" in str(workdir)


def prepare(workdir, config) -> epath.Path:
  """Creates the workdir; UserError if it is a file, not writable, or the disk is too full for
  about two checkpoints of `config`. Returns it as a Path."""
  path = epath.Path(workdir)
  if is_remote(workdir):
    path.mkdir(parents=True, exist_ok=True)
    return path
  if path.exists() and not path.is_dir():
    raise errors.UserError(f"--workdir={workdir} is a file, not a folder; pass a folder path.")
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".write_probe_{os.getpid()}"
    probe.write_text("ok")
    probe.unlink()
  except OSError as e:
    raise errors.UserError(f"Cannot write to --workdir={workdir} ({e.strerror or e}); choose a "
                           "writable folder.") from None
  need = 2 * state_lib.state_bytes(config) + (64 << 20)
  free = shutil.disk_usage(str(path)).free
  if free < need:
    raise errors.UserError(
        f"Only {free / 2**20:.0f} MiB free on the disk of {workdir}; checkpoints need about "
        f"{need / 2**20:.0f} MiB. Free some space or choose another --workdir.")
  return path


def atomic_write_text(path, text: str) -> None:
  """Writes `text` to path.tmp, then replaces `path` with it: never a half-written file."""
  path = epath.Path(path)
  tmp = path.parent / (path.name + ".tmp")
  tmp.write_text(text)
  tmp.replace(path)


def _config_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def record_config(workdir, config) -> None:
  """Writes the resolved config to W/config.json and W/runs/<time>.json (call on process 0)."""
  text = json.dumps(_config_json(config), indent=2, sort_keys=True)
  workdir = epath.Path(workdir)
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
  (workdir / "runs").mkdir(parents=True, exist_ok=True)
  (workdir / "runs" / f"{stamp}.json").write_text(text)
  atomic_write_text(workdir / "config.json", text)


def record_init_from(workdir, record: dict) -> None:
  """Writes W/init_from.json (where this run's first state came from; call on process 0)."""
  atomic_write_text(epath.Path(workdir) / "init_from.json",
                    json.dumps(record, indent=2, sort_keys=True))


def load_config(workdir) -> ml_collections.ConfigDict:
  """The resolved config recorded in W/config.json; UserError if W has none."""
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise errors.UserError(f"{workdir} is not a dofjax workdir (no config.json); pass the "
                           "--workdir of a training run.")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def model_config_changes(workdir, config) -> list:
  """'field: old -> new' for each model.* field, loss.arm and ema_decay on/off that differ
  between W/config.json and `config` (empty if W has no config.json). Explains a refused
  resume."""
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    return []
  old, new = json.loads(path.read_text()), _config_json(config)
  pairs = [(f"model.{k}", old.get("model", {}).get(k), v) for k, v in new["model"].items()]
  pairs.append(("loss.arm", old.get("loss", {}).get("arm"), new["loss"]["arm"]))
  old_ema, new_ema = old.get("ema_decay", 0.0), new.get("ema_decay", 0.0)
  if (old_ema > 0) != (new_ema > 0):  # Only on/off changes the state's shape.
    pairs.append(("ema_decay", old_ema, new_ema))
  return [f"{name}: {a!r} -> {b!r}".replace("'", "") for name, a, b in pairs if a != b]


def write_eval_result(workdir, split: str, result: dict) -> epath.Path:
  """Writes W/eval_<split>.json atomically; returns its path."""
  path = epath.Path(workdir) / f"eval_{split}.json"
  atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True))
  return path


def samples_dir(workdir) -> epath.Path:
  """W/samples."""
  return epath.Path(workdir) / "samples"


def samples_complete(workdir, num_samples: int) -> bool:
  """True when W/samples holds the end-of-training pictures (its completion mark exists), or
  none are asked for."""
  return num_samples <= 0 or (samples_dir(workdir) / ".complete").exists()


def mark_samples_complete(workdir, complete: bool) -> None:
  """Sets (after the last picture) or clears (before the first) W/samples' completion mark."""
  mark = samples_dir(workdir) / ".complete"
  if complete:
    mark.write_text("")
  elif mark.exists():
    mark.unlink()
