"""Evaluation of a model over a split: during training (validation) and of a saved checkpoint
(`--mode=eval`, which writes W/eval_<split>.json)."""

import jax

from dofjax import checkpointing
from dofjax import config as config_lib
from dofjax import metrics as metrics_lib
from dofjax import parallel
from dofjax import samples
from dofjax import state as state_lib
from dofjax import steps
from dofjax import workdir as workdir_lib


_GROUP_ORDER = ("code", "depth", "depth_median", "constant", "boundary", "bokeh", "thin_lens")
_KEY_ORDER = metrics_lib.KEY_ORDER


# Rows of `baseline_table`: (label, depth metric key, higher is better).
_TABLE_ROWS = (("delta1", "d1", True), ("delta2", "d2", True), ("AbsRel", "abs_rel", False),
               ("RMSE (m)", "rmse", False), ("RMSE log", "rmse_log", False))


def baseline_table(metrics) -> str:
  """The model against the constant-depth baseline, as text lines: one row per depth metric,
  columns model (metric depth), model median-scaled, constant depth median-scaled (every pixel
  the median true depth). `metrics`: an evaluation result {name: value}. '' when it has no
  depth metrics."""
  columns = ("", metrics_lib.MEDIAN_SCALED_SUFFIX, metrics_lib.CONSTANT_SUFFIX)
  rows = [(label, better, [metrics.get(key + suffix) for suffix in columns])
          for label, key, better in _TABLE_ROWS if key in metrics]
  if not rows:
    return ""
  lines = [f"{'':10s} {'model':>14s} {'model':>14s} {'constant depth':>14s}",
           f"{'':10s} {'metric depth':>14s} {'median-scaled':>14s} {'median-scaled':>14s}"]
  for label, better, values in rows:
    cells = " ".join(f"{'-':>14s}" if v is None else f"{v:14.4f}" for v in values)
    lines.append(f"{label:10s} {cells}  ({'higher' if better else 'lower'} is better)")
  return "\n".join(lines)


def _key_order(key):
  return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)


def _add(total, group_sums):
  host = parallel.to_host(group_sums)
  if total is None:
    return host
  return jax.tree_util.tree_map(lambda a, b: a + b, total, host)


def evaluate(state, config, split, eval_fn, mesh, rng, num_batches=None, num_images=0):
  """Averages per-image metrics over `split` of the eval dataset.

  state: a plain (not pmap-replicated) TrainState; eval_fn: parallel.compile_eval_step.
  num_batches: None = config.num_eval_batches, -1 = the whole split.
  Returns ({metric: mean over the images that count}, up to num_images picture rows for
  samples.labelled_grid).
  """
  from dofjax import input_pipeline
  eval_config = config.copy_and_resolve_references()
  with eval_config.unlocked():
    eval_config.num_eval_batches = config.num_eval_batches if num_batches is None else num_batches
  batches = input_pipeline.create_eval_iterator(eval_config, split)
  thin_lens_max_radius = batches.thin_lens_max_radius_px()
  totals, rows = None, []
  for i, local in enumerate(batches):
    batch = parallel.global_batch(local, mesh)
    group_sums, code, pred_full = eval_fn(state, batch, jax.random.fold_in(rng, i))
    if thin_lens_max_radius is not None:
      group_sums["thin_lens"] = metrics_lib.sum_per_image(
          steps.thin_lens_metrics(batch, pred_full, thin_lens_max_radius), batch["example_mask"])
    totals = _add(totals, group_sums)
    if len(rows) < num_images:
      rows += samples.grid_rows(local, parallel.gather_rows(code, local["image"].shape[0]),
                                num_images - len(rows), config)
  result = {}
  for name in sorted(totals or {}, key=_GROUP_ORDER.index):
    means = metrics_lib.finalize_sums(totals[name])
    if float(means.pop("count")) > 0:
      result.update({k: float(means[k]) for k in sorted(means, key=_key_order)})
  return result, rows


def evaluate_checkpoint(config, workdir, split="test"):
  """Evaluates the latest checkpoint in W on all of `split`; writes W/eval_<split>.json.

  Returns {'step', 'split', 'dataset', 'test_time', 'metrics': {name: value}}.
  """
  from dofjax import input_pipeline
  config_lib.validate(config)
  mesh = parallel.make_mesh()
  step, state = checkpointing.restore_for_inference(
      workdir, lambda: parallel.abstract_state(config, mesh))
  input_pipeline.prepare(config, input_pipeline.eval_dataset(config))
  eval_rng = state_lib.run_keys(config)[2]
  metrics, _ = evaluate(state, config, split, parallel.compile_eval_step(config, mesh), mesh,
                        eval_rng, num_batches=-1)
  result = {"step": int(step), "split": split, "dataset": input_pipeline.eval_dataset(config),
            "test_time": config.test_time, "metrics": metrics}
  if jax.process_index() == 0:
    workdir_lib.write_eval_result(workdir, split, result)
  return result
