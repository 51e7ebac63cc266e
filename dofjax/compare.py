"""The ablation report: reads training workdirs and writes a table, curves and sample pictures.

  python -m dofjax.compare W1 W2 ... --out report/ [--num_images=4] [--split=test]

Each workdir W is what `python -m dofjax.main` writes:
  W/config.json     the resolved config (loss.arm, seed, dataset, ...)
  W/metrics.jsonl   {"step", "split": "train" | "validation", ...scalars} per line
  W/eval_test.json  {"step", "split": "test", "metrics": {...}} from `--mode=eval` (optional)
  W/checkpoints/    used only for the sample figure (through dofjax.inference)

Workdirs are grouped by arm (`losses.ablation_arm`: loss.arm, "_bokeh" added when
loss.bokeh_weight > 0); several workdirs of one arm (different seeds) give mean and
sample standard deviation. Output in --out:
  README.md     the headline table (arm, seeds, six metrics) with the differences larger than the
                seed spread, the full table (every test metric), the runs, notes and warnings
  summary.json  the same numbers at full precision, and every run's values
  curves.png    validation metrics over training steps: mean over seeds, min..max shaded
  losses.png    training losses likewise (when metrics.jsonl has train lines), and the training
                throughput (steps_per_second) on a panel of its own
  samples.png   the same test images for every arm: input | each arm's depth | ground truth |
                each arm's DoF render | DoF render from ground truth (--num_images > 0)
"""

import argparse
import dataclasses
import datetime
import json
import math
import os
import sys
import textwrap
from typing import Optional

import numpy as np

from dofjax import errors
from dofjax import losses
from dofjax import metrics as metrics_lib
from dofjax import steps
from dofjax import summaries

# Record entries that are bookkeeping, not metrics: the line's own fields, the metrics module's
# per-image weights and counts, the training line's learning rate and step-validity flag.
BOOKKEEPING = frozenset({"step", "split", "valid", "num_pixels", "count", "learning_rate",
                         "nonfinite"})
# Training throughput, logged on the train lines (steps/s, higher is better): not a loss, so it
# gets its own panel in losses.png.
THROUGHPUT = summaries.THROUGHPUT_KEY
# Arm-independent reference numbers: reported in sentences under the table, not as columns.
REFERENCE_METRICS = steps.THIN_LENS_FLOOR_KEYS + metrics_lib.CONSTANT_KEYS
# Metric columns, in this order first; anything else (the thin-lens bokeh variants, l1_code)
# follows alphabetically.
METRIC_ORDER = metrics_lib.KEY_ORDER
# The headline table's metrics (with the arm and its seed count: eight columns): depth error and
# accuracy, metric and median-scaled, the depth-boundary error and the bokeh fidelity. Every
# metric is in the full table below it.
HEADLINE_KEYS = ("abs_rel", "d1", "abs_rel_median", "d1_median", "dbe_acc", "bokeh_psnr")
# Config entries that legitimately differ between the workdirs of one ablation.
CONFIG_KEYS_EXPECTED_TO_DIFFER = frozenset({"seed", "loss.arm", "loss.bokeh_weight", "data_dir",
                                            "manual_dir"})


@dataclasses.dataclass
class Run:
  """One workdir, read: its config, its metric history and its final (test) metrics."""
  path: str
  config: dict
  arm: str
  seed: int
  dataset: str           # Training dataset.
  eval_dataset: str      # The dataset its final metrics come from (often the training one).
  validation: list       # [{"step": int, key: float}], sorted by step, one per step.
  train: list            # Same, for the train lines.
  final: dict            # {key: float}: test metrics, or the last validation line's.
  final_step: Optional[int]
  source: str            # 'test' (eval_test.json) or 'validation' (last validation line).

  @property
  def data_label(self) -> str:
    """'train_dataset', or 'train_dataset (evaluated on eval_dataset)' when they differ."""
    if self.eval_dataset != self.dataset:
      return f"{self.dataset} (evaluated on {self.eval_dataset})"
    return self.dataset


# ----------------------------------------------------------------------------------------------
# Reading workdirs.


def _flatten(d, prefix=""):
  """Nested dict -> {'a.b': value}."""
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(_flatten(v, key + "."))
    else:
      out[key] = v
  return out


def _scalars(record):
  """{key: value} -> {key: float} for the finite-or-not numeric metric entries only."""
  out = {}
  for k, v in record.items():
    if k in BOOKKEEPING or isinstance(v, bool) or not isinstance(v, (int, float)):
      continue
    out[k] = float(v)
  return out


def read_jsonl(path):
  """Reads metrics.jsonl -> list of dicts. A truncated last line (a run killed mid-write) is
  dropped with a warning; any other malformed line is a UserError naming the line."""
  with open(path) as f:
    lines = f.read().splitlines()
  records = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      rec = json.loads(line)
      if not isinstance(rec, dict) or "step" not in rec or "split" not in rec:
        raise ValueError("not an object with 'step' and 'split'")
      records.append(rec)
    except ValueError as e:
      if i == len(lines) - 1:
        _warn(f"{path}: ignoring a malformed last line (a run interrupted while writing?).")
        continue
      raise errors.UserError(f"{path} line {i + 1} is not a metrics record ({e}).") from None
  return records


def history(records, split):
  """Records of one split -> [{'step': int, key: float}] sorted by step; for a step logged more
  than once (a resumed run), the last line wins."""
  by_step = {}
  for rec in records:
    if rec.get("split") == split:
      by_step[int(rec["step"])] = {"step": int(rec["step"]), **_scalars(rec)}
  return [by_step[s] for s in sorted(by_step)]


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise errors.UserError(f"{path} is not valid JSON ({e}).") from None


def load_run(path):
  """Reads one workdir into a Run. Raises UserError for a path that is not a dofjax workdir or
  a workdir with no metrics yet."""
  if not os.path.isdir(path):
    raise errors.UserError(f"{path} is not a directory; pass training workdirs "
                           "(the --workdir of python -m dofjax.main).")
  config_path = os.path.join(path, "config.json")
  if not os.path.isfile(config_path):
    raise errors.UserError(f"{path} is not a dofjax workdir: it has no config.json. Pass the "
                           "--workdir given to python -m dofjax.main.")
  config = _read_json(config_path)
  if not isinstance(config, dict):
    raise errors.UserError(f"{config_path} does not hold a config object.")
  loss_config = config.get("loss") or {}
  if not loss_config.get("arm"):
    raise errors.UserError(f"{config_path} has no loss.arm; is it a dofjax config?")
  arm = losses.ablation_arm(loss_config)

  jsonl = os.path.join(path, "metrics.jsonl")
  records = read_jsonl(jsonl) if os.path.isfile(jsonl) else []
  validation, train = history(records, "validation"), history(records, "train")

  final, final_step, source = {}, None, "validation"
  eval_dataset = config.get("eval_dataset") or ""
  test_path = os.path.join(path, "eval_test.json")
  if os.path.isfile(test_path):
    test = _read_json(test_path)
    if not isinstance(test, dict) or not isinstance(test.get("metrics"), dict):
      raise errors.UserError(f"{test_path} has no 'metrics' object; rerun "
                             "python -m dofjax.main --mode=eval for this workdir.")
    final, final_step, source = _scalars(test["metrics"]), test.get("step"), "test"
    eval_dataset = test.get("dataset") or eval_dataset
  elif validation:
    last = validation[-1]
    final = {k: v for k, v in last.items() if k != "step"}
    final_step = last["step"]
  if not final:
    raise errors.UserError(
        f"{path} has no metrics yet: no eval_test.json and no validation line in metrics.jsonl. "
        "Let training reach its first evaluation, or run python -m dofjax.main "
        f"--config=... --workdir={path} --mode=eval.")
  return Run(path=path, config=config, arm=str(arm), seed=int(config.get("seed", 0)),
             dataset=str(config.get("dataset", "?")),
             eval_dataset=str(eval_dataset or config.get("dataset", "?")),
             validation=validation, train=train,
             final=final, final_step=None if final_step is None else int(final_step),
             source=source)


def load_runs(paths, allow_mixed_datasets=False):
  """Reads every workdir; refuses duplicates and (unless allowed) mixed datasets.

  Returns (runs, warnings): runs in the order given, warnings a list of strings for the report.
  """
  if not paths:
    raise errors.UserError("Pass at least one workdir.")
  seen = {}
  for p in paths:
    real = os.path.realpath(p)
    if real in seen:
      raise errors.UserError(f"{p} is given twice (also as {seen[real]}).")
    seen[real] = p
  runs = [load_run(p) for p in paths]
  warnings = []
  datasets = sorted({r.data_label for r in runs})
  if len(datasets) > 1:
    listing = "; ".join(f"{r.path}: {r.data_label}" for r in runs)
    if not allow_mixed_datasets:
      raise errors.UserError(
          f"The workdirs were trained or evaluated on different datasets ({listing}); their "
          "metrics are not "
          "comparable. Compare one dataset at a time, or pass --allow_mixed_datasets.")
    warnings.append(f"Mixed datasets, numbers are not comparable across them: {listing}.")
  seen_seed = {}
  for r in runs:
    key = (r.arm, r.seed)
    if key in seen_seed:
      warnings.append(f"{seen_seed[key]} and {r.path} are both arm {r.arm} with seed {r.seed}; "
                      "they count as two seeds.")
    seen_seed[key] = r.path
  sources = {r.source for r in runs}
  if "validation" in sources:
    missing = [r.path for r in runs if r.source == "validation"]
    warnings.append("No eval_test.json in " + ", ".join(missing) + ": their row uses the last "
                    "validation line instead (run --mode=eval for test numbers).")
  return runs, warnings


def config_differences(runs):
  """{dotted key: [value per run]} for config entries that differ between runs, other than the
  ones an ablation varies on purpose (seed, loss.arm, data paths)."""
  flat = [_flatten(r.config) for r in runs]
  keys = sorted(set().union(*flat))
  out = {}
  for k in keys:
    if k in CONFIG_KEYS_EXPECTED_TO_DIFFER:
      continue
    values = [f.get(k, "<missing>") for f in flat]
    if any(v != values[0] for v in values):
      out[k] = values
  return out


# ----------------------------------------------------------------------------------------------
# Aggregation.


def arm_label(arm):
  """Display name of a loss arm ('cgan_l1' -> 'cGAN+L1'); an unknown arm keeps its name."""
  return losses.ARM_LABELS.get(arm, arm)


def group_by_arm(runs):
  """{arm: [runs sorted by seed]} in the order of losses.REPORT_ARMS, then any other by name."""
  order = losses.REPORT_ARMS
  arms = sorted({r.arm for r in runs},
                key=lambda a: (order.index(a) if a in order else len(order), a))
  return {a: sorted((r for r in runs if r.arm == a), key=lambda r: (r.seed, r.path))
          for a in arms}


def metric_keys(dicts):
  """Metric names present in any of the dicts, in METRIC_ORDER then alphabetical order."""
  keys = set()
  for d in dicts:
    keys.update(k for k in d if k not in BOOKKEEPING and k not in REFERENCE_METRICS
                and k != THROUGHPUT)
  return ([k for k in METRIC_ORDER if k in keys]
          + sorted(k for k in keys if k not in METRIC_ORDER))


def higher_is_better(key):
  """True for accuracy-like metrics (metrics.HIGHER_IS_BETTER, and their variants named
  '<metric>_<suffix>', e.g. bokeh_psnr_thin_lens) and throughput; False for errors and losses."""
  return key == THROUGHPUT or any(key == k or key.startswith(k + "_")
                                  for k in metrics_lib.HIGHER_IS_BETTER)


def mean_std(values):
  """List of floats -> (mean, sample std (ddof 1; 0 for a single value), n)."""
  v = np.asarray(values, np.float64)
  if v.size == 0:
    return float("nan"), float("nan"), 0
  std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
  return float(np.mean(v)), std, int(v.size)


def summarize(groups):
  """{arm: [runs]} -> {arm: {'n': int, 'seeds': [...], 'sources': {...}, 'steps': [...],
  'metrics': {key: {'mean', 'std', 'n', 'values'}}}}."""
  keys = metric_keys([r.final for rs in groups.values() for r in rs])
  out = {}
  for arm, rs in groups.items():
    entry = {"name": arm_label(arm), "n": len(rs), "seeds": [r.seed for r in rs],
             "workdirs": [r.path for r in rs], "steps": [r.final_step for r in rs],
             "sources": {s: sum(r.source == s for r in rs) for s in sorted({r.source for r in rs})},
             "metrics": {}}
    for k in keys:
      values = [r.final[k] for r in rs if k in r.final and math.isfinite(r.final[k])]
      mean, std, n = mean_std(values)
      entry["metrics"][k] = {"mean": mean, "std": std, "n": n, "values": values}
    out[arm] = entry
  return out


# ----------------------------------------------------------------------------------------------
# Markdown.


def format_value(mean, std, n, n_total):
  """'0.1234 ± 0.0056' (4 significant digits, std 2); '0.1234' for one seed; '–' for none;
  '(k of n)' appended when only k of the arm's n runs have the metric."""
  if n == 0:
    return "–"
  text = f"{mean:.4g}" if n == 1 else f"{mean:.4g} ± {std:.2g}"
  if n < n_total:
    text += f" ({n} of {n_total})"
  return text


def _source_text(entry):
  """'test ×3 (step 1500)' / 'test ×2, last validation ×1 (step 1000, 1500)'."""
  parts = [f"{'test' if s == 'test' else 'last validation'} ×{count}"
           for s, count in entry["sources"].items()]
  steps = sorted({st for st in entry["steps"] if st is not None})
  step_text = ", ".join(str(s) for s in steps) if steps else "?"
  return f"{', '.join(parts)} (step {step_text})"


def markdown_table(summary, keys=None, with_source=True):
  """The arm table: one row per arm, columns n seeds, [source] and every metric, or only `keys`
  where the summary has them (↓ lower is better, ↑ higher is better); the best mean of each column
  in bold when there are several arms."""
  present = metric_keys([e["metrics"] for e in summary.values()])
  keys = present if keys is None else [k for k in keys if k in present]
  best = {}
  if len(summary) > 1:
    for k in keys:
      means = [(e["metrics"][k]["mean"], arm) for arm, e in summary.items()
               if e["metrics"].get(k, {}).get("n", 0) > 0]
      if means:
        best[k] = (max if higher_is_better(k) else min)(means)[1]
  lead = ["Arm", "Seeds"] + (["Numbers from"] if with_source else [])
  header = lead + [f"{k} {'↑' if higher_is_better(k) else '↓'}" for k in keys]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(lead) + "---:|" * len(keys)]
  for arm, e in summary.items():
    cells = [f"{e['name']} (`{arm}`)", str(e["n"])] + ([_source_text(e)] if with_source else [])
    for k in keys:
      m = e["metrics"].get(k, {"mean": 0.0, "std": 0.0, "n": 0})
      text = format_value(m["mean"], m["std"], m["n"], e["n"])
      cells.append(f"**{text}**" if best.get(k) == arm else text)
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def separated_pairs(summary, key):
  """[(better_arm, worse_arm)] whose means of `key` differ by more than the seed spread: |mean_a -
  mean_b| > std_a + std_b, both arms with at least two seeds. Pairs in summary order."""
  arms = [(a, e["metrics"][key]) for a, e in summary.items()
          if e["metrics"].get(key, {}).get("n", 0) >= 2]
  pairs = []
  for i, (a, ma) in enumerate(arms):
    for b, mb in arms[i + 1:]:
      if abs(ma["mean"] - mb["mean"]) > ma["std"] + mb["std"]:
        a_better = (ma["mean"] > mb["mean"]) == higher_is_better(key)
        pairs.append((a, b) if a_better else (b, a))
  return pairs


def spread_lines(summary, keys):
  """Markdown bullets, one per headline metric: which arm beats which by more than the seed
  spread, or that no difference is. [] when no arm has two seeds."""
  if not any(e["n"] >= 2 for e in summary.values()):
    return []
  lines = ["Differences larger than the seed spread (|Δ mean| > std₁ + std₂):", ""]
  present = metric_keys([e["metrics"] for e in summary.values()])
  for k in (k for k in keys if k in present):
    pairs = separated_pairs(summary, k)
    text = "; ".join(f"{summary[a]['name']} beats {summary[b]['name']}" for a, b in pairs)
    lines.append(f"- `{k}`: {text or 'none; every difference is within the seed spread'}.")
  return lines + [""]


def runs_table(runs):
  """One row per workdir: arm, seed, numbers' source and step, validation points logged."""
  lines = ["| Workdir | Arm | Seed | Numbers from | Step | Validation points |",
           "|---|---|---:|---|---:|---:|"]
  for r in runs:
    lines.append(f"| `{r.path}` | {arm_label(r.arm)} | {r.seed} | "
                 f"{'eval_test.json' if r.source == 'test' else 'last validation line'} | "
                 f"{r.final_step if r.final_step is not None else '?'} | {len(r.validation)} |")
  return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Figures.


def _matplotlib():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def curve_stats(rs, split_attr, key):
  """Mean, min and max over seeds of one metric at every step any seed logged it.

  Returns (steps, mean, low, high) numpy arrays (empty when no run has the key)."""
  by_step = {}
  for r in rs:
    for rec in getattr(r, split_attr):
      if key in rec and math.isfinite(rec[key]):
        by_step.setdefault(rec["step"], []).append(rec[key])
  steps = np.array(sorted(by_step), np.float64)
  vals = [by_step[int(s)] for s in steps]
  return (steps, np.array([np.mean(v) for v in vals]), np.array([np.min(v) for v in vals]),
          np.array([np.max(v) for v in vals]))


def _panel_title(key, split_attr):
  """Title of one curves panel: validation metrics say which way is better."""
  if key == THROUGHPUT:
    return f"{key} (training throughput, not a loss)"
  if split_attr == "validation":
    return f"{key} ({'higher' if higher_is_better(key) else 'lower'} is better)"
  return key


def curve_keys(groups, split_attr):
  """Panels of a curves figure: the metrics (split_attr 'validation') or losses ('train') that
  any run logged, in `metric_keys` order, then the training throughput on a panel of its own."""
  records = [rec for rs in groups.values() for r in rs for rec in getattr(r, split_attr)]
  keys = metric_keys(records)
  if any(THROUGHPUT in rec for rec in records):
    keys.append(THROUGHPUT)
  return keys


def curves_figure(groups, split_attr="validation", title="Validation metrics"):
  """One panel per key of `curve_keys`: mean over seeds per arm (line), min..max over seeds
  (shaded), against the training step; one legend naming every arm plotted in any panel.
  Returns (matplotlib figure, keys), or (None, []) when there is nothing to plot."""
  keys = curve_keys(groups, split_attr)
  if not keys:
    return None, []
  plt = _matplotlib()
  ncols = min(4, len(keys))
  nrows = int(math.ceil(len(keys) / ncols))
  height = 3.0 * nrows + 0.65   # 0.65 in on top for the title and the legend.
  fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, height), squeeze=False)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  legend = {}   # Arm index -> a line of that arm, from whichever panel has one.
  for i, k in enumerate(keys):
    ax = axes[i // ncols][i % ncols]
    for j, (arm, rs) in enumerate(groups.items()):
      steps, mean, low, high = curve_stats(rs, split_attr, k)
      if steps.size == 0:
        continue
      c = colors[j % len(colors)]
      label = f"{arm_label(arm)} (n={len(rs)})"
      legend[j], = ax.plot(steps, mean, color=c, marker="o" if steps.size < 20 else None, ms=3,
                           label=label)
      if len(rs) > 1:
        ax.fill_between(steps, low, high, color=c, alpha=0.2, linewidth=0)
    ax.set_title(_panel_title(k, split_attr), fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
  for i in range(len(keys), nrows * ncols):
    axes[i // ncols][i % ncols].axis("off")
  handles = [legend[j] for j in sorted(legend)]
  fig.suptitle(f"{title}: mean over seeds, shaded min..max", y=1 - 0.1 / height, va="top",
               fontsize=10)
  fig.legend(handles, [h.get_label() for h in handles], loc="upper center",
             bbox_to_anchor=(0.5, 1 - 0.35 / height), ncol=max(1, len(handles)), fontsize=9,
             frameon=False)
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.65 / height))
  return fig, keys


def _save(fig, path):
  """Writes a matplotlib figure to `path` (PNG, 110 dpi) and frees it."""
  fig.savefig(path, dpi=110)
  _matplotlib().close(fig)


def plot_curves(groups, path, split_attr="validation", title="Validation metrics"):
  """Writes `curves_figure` to `path` (PNG); returns the keys plotted ([] = nothing written)."""
  fig, keys = curves_figure(groups, split_attr, title)
  if fig is not None:
    _save(fig, path)
  return keys


def _config_dict(config):
  """JSON config -> ml_collections.ConfigDict (what the input pipeline expects)."""
  import ml_collections
  return ml_collections.ConfigDict(config)


def load_test_images(config, num_images, split, dataset=None):
  """The first num_images real examples of `split` of `dataset` (default: the config's eval
  data).

  Returns (examples, thin_lens_max_radius): examples a list of (image01 (H, W, 3) in [0, 1],
  depth_m (H, W) metres, 0 = invalid, lens); lens is None, or (dof_full (H, W, 3) in [0, 1],
  focus disparity 1/m, blur scale K px*m) when the data has thin-lens ground truth, and then
  thin_lens_max_radius is the split's largest circle of confusion in px (else None).
  Raises UserError (DataError) when the data cannot be prepared or read."""
  from dofjax import input_pipeline
  cfg = _config_dict(config)
  if dataset:
    with cfg.unlocked():
      cfg.eval_dataset = dataset
  batches = input_pipeline.create_eval_iterator(cfg, split)
  out = []
  for batch in batches:
    mask = np.asarray(batch.get("example_mask", np.ones(len(batch["image_full"]))))
    for j in np.flatnonzero(mask > 0):
      lens = None
      if "dof_full" in batch:
        lens = (np.asarray(batch["dof_full"][j], np.float32),
                float(batch["dof_focus_disparity"][j]), float(batch["dof_blur_scale_px"][j]))
      out.append((np.asarray(batch["image_full"][j], np.float32),
                  np.asarray(batch["depth_full"][j], np.float32)[..., 0], lens))
      if len(out) >= num_images:
        return out, batches.thin_lens_max_radius_px()
  return out, batches.thin_lens_max_radius_px()


def _dof_render(image01, depth_m, focus_m, lens, max_radius):
  """A samples.png DoF render (H, W, 3) in [0, 1] of image01 (H, W, 3) with depth_m (H, W
  metres, <= 0 rendered sharp), focused at focus_m metres: with the preview lens of
  `dof.render_for_preview`, or with the thin-lens ground truth's lens (and the split's largest
  blur radius max_radius, px) when `lens` (see `load_test_images`) is given."""
  from dofjax import dof
  from dofjax import render_plan
  if lens is None:
    out = dof.render_for_preview(image01, depth_m, focus=focus_m)
  else:
    out = dof.render_for_preview(image01, depth_m, focus=1.0 / lens[1], blur_scale_px=lens[2],
                                 max_radius=float(max_radius),
                                 num_layers=render_plan.DEFAULT_NUM_LAYERS)
  return np.asarray(out, np.float32)


def _sample_row(image, gt, lens, preds, *, far, max_radius):
  """One samples.png row: image01 (H, W, 3), gt (H, W) metres, lens (or None), preds {arm:
  (H, W) metres}. Returns (tiles: list of (H, W, 3) uint8, labels: list of str): input | each
  arm's depth (AbsRel) | ground truth | each arm's DoF render (PSNR) | DoF render from ground
  truth [| thin-lens ground truth]. Every render of the row uses one lens and focus: the median
  valid true depth (`dof.focus_disparity_from_depth`), or the thin-lens ground truth's."""
  from dofjax import dof
  from dofjax import visualize
  valid = gt[(gt > 0) & (gt < far)]
  # One colour range per row (the true depth's), shared by every depth panel of the row.
  near_c, far_c = (float(valid.min()), float(valid.max())) if valid.size else (0.5, far)
  far_c = max(far_c, near_c * 1.01)
  tiles, labels = [visualize.to_uint8(image)], ["input"]
  for arm, pred in preds.items():
    err = metrics_lib.depth_metrics_per_image(pred[None], gt[None], max_depth=far)["abs_rel"]
    tiles.append(visualize.colorize_depth_m(pred, near_c, far_c))
    labels.append(f"{arm_label(arm)} AbsRel {float(err[0]):.3f}")
  tiles.append(visualize.colorize_depth_m(gt, near_c, far_c))
  labels.append("ground truth")
  focus_m = float(1.0 / dof.focus_disparity_from_depth(gt))
  reference = _dof_render(image, gt, focus_m, lens, max_radius)
  target = reference if lens is None else lens[0]
  for arm, pred in preds.items():
    render = _dof_render(image, pred, focus_m, lens, max_radius)
    psnr = float(metrics_lib.psnr_per_image(render[None], target[None])[0])
    tiles.append(visualize.to_uint8(render))
    labels.append(f"{arm_label(arm)} DoF {psnr:.1f} dB")
  tiles.append(visualize.to_uint8(reference))
  labels.append("DoF from ground truth")
  if lens is not None:
    tiles.append(visualize.to_uint8(lens[0]))
    labels.append("thin-lens ground truth")
  return tiles, labels


def samples_figure(rows, title, tile_in=2.2, fontsize=8):
  """A grid of image tiles: rows a list of (tiles (H, W, 3) uint8, labels str) per row, each
  tile tile_in inches wide, under `title` wrapped to the figure's width so none of it is cut
  off. Returns the matplotlib figure."""
  plt = _matplotlib()
  ncols, nrows = max(len(tiles) for tiles, _ in rows), len(rows)
  fig, axes = plt.subplots(nrows, ncols, figsize=(tile_in * ncols, tile_in * nrows + 0.6),
                           squeeze=False, layout="constrained")
  for i, (tiles, labels) in enumerate(rows):
    for j in range(ncols):
      ax = axes[i][j]
      ax.axis("off")
      if j < len(tiles):
        ax.imshow(tiles[j])
        ax.set_title(labels[j], fontsize=fontsize - 1)
  # A DejaVu Sans character is about 0.6 em wide on average; keep a 10 % margin.
  chars = max(20, int(0.9 * tile_in * ncols * 72 / (0.6 * fontsize)))
  fig.suptitle(textwrap.fill(title, chars), fontsize=fontsize)
  return fig


def make_samples_figure(groups, path, num_images, split="test"):
  """Writes samples.png: rows = test images, columns as `_sample_row`, where the data has
  thin-lens ground truth the renders use its lens and focus and the arms' PSNR is against it.
  Each arm uses its first (lowest seed) workdir. Returns (rows, thin lens shown). Raises
  UserError if a workdir has no checkpoint or the data cannot be loaded."""
  from dofjax import inference
  first = next(iter(groups.values()))[0]
  far = float(first.config.get("depth_far_m", 10.0))
  dataset = first.eval_dataset
  examples, max_radius = load_test_images(first.config, num_images, split, dataset)
  if not examples:
    raise errors.UserError(f"The {split} split of {dataset} yielded no image.")
  thin_lens = all(lens is not None for _, _, lens in examples)
  predictors = {arm: inference.load_depth_predictor(rs[0].path) for arm, rs in groups.items()}
  rows = []
  for image, gt, lens in examples:
    preds = {a: np.asarray(p(image), np.float32) for a, p in predictors.items()}
    rows.append(_sample_row(image, gt, lens if thin_lens else None, preds, far=far,
                            max_radius=max_radius))
  lens_text = ("the thin-lens ground truth's lens and focus; PSNR against it" if thin_lens else
               "the same lens, focused on the median true depth")
  _save(samples_figure(rows, f"{split} images of {dataset}; depth colour = inverse depth over "
                             "each row's true depth range (bright = near); in a row every DoF "
                             f"render uses {lens_text}"), path)
  return len(examples), thin_lens


# ----------------------------------------------------------------------------------------------
# The report.


def _warn(message):
  print(f"warning: {message}", file=sys.stderr)


def report_title(arms):
  """'# Ablation report: L1 vs cGAN+L1': the labels of the arms present, in report order."""
  return "# Ablation report: " + " vs ".join(arm_label(a) for a in arms)


def write_report(runs, out_dir, *, num_images=4, split="test", warnings=()):
  """Writes README.md, summary.json, curves.png, losses.png and samples.png into out_dir.

  samples.png is skipped, with a warning in README.md, when a workdir has no checkpoint or the
  data cannot be loaded (a UserError); the numbers never depend on it.
  Returns the summary dict ({arm: ...}, see `summarize`)."""
  os.makedirs(out_dir, exist_ok=True)
  warnings = list(warnings)
  groups = group_by_arm(runs)
  summary = summarize(groups)
  diffs = config_differences(runs)
  notes = []

  curves = plot_curves(groups, os.path.join(out_dir, "curves.png"))
  if not curves:
    notes.append("No validation lines in any metrics.jsonl: curves.png not written.")
  loss_keys = plot_curves(groups, os.path.join(out_dir, "losses.png"), "train",
                          "Training losses")

  samples, thin_lens = 0, False
  if num_images > 0:
    try:
      samples, thin_lens = make_samples_figure(groups, os.path.join(out_dir, "samples.png"),
                                               num_images, split)
    except errors.UserError as e:
      warnings.append(f"samples.png skipped: {e}")

  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump({"arms": summary, "config_differences": {k: [str(x) for x in v]
                                                       for k, v in diffs.items()},
               "warnings": warnings}, f, indent=2, sort_keys=True)
  md = (_metrics_markdown(runs, summary, diffs)
        + _figures_markdown(curves, loss_keys, samples, thin_lens, split))
  if warnings or notes:
    md += ["## Warnings and notes", ""] + [f"- {w}" for w in warnings + notes] + [""]
  with open(os.path.join(out_dir, "README.md"), "w") as f:
    f.write("\n".join(md).rstrip("\n") + "\n")
  for w in warnings:
    _warn(w)
  return summary


def _metrics_markdown(runs, summary, diffs):
  """README.md lines: title, the arm table and its legend, the runs and config differences."""
  datasets = sorted({r.data_label for r in runs})
  md = [report_title(summary), "",
        f"Generated by `python -m dofjax.compare` on "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} from {len(runs)} workdir(s); "
        f"dataset: {', '.join(f'`{d}`' for d in datasets)}.", "",
        "## Headline", "",
        markdown_table(summary, HEADLINE_KEYS, with_source=False), "",
        *spread_lines(summary, HEADLINE_KEYS),
        "## All metrics", "",
        markdown_table(summary), "",
        "Mean ± sample standard deviation over seeds (one workdir per seed); ↓ lower is better, "
        "↑ higher is better; the best arm of each column is in bold. Depth metrics follow the "
        "Eigen/BTS protocol (valid 1 mm < gt < max depth, prediction clipped, per image, then "
        "averaged over images); `dbe_acc` / `dbe_comp` are the iBims-1 depth-boundary errors in "
        "pixels; `bokeh_psnr` / `bokeh_ssim` compare the DoF render from predicted depth with the "
        "one from ground-truth depth (network resolution, same lens); `bokeh_*_thin_lens` compare "
        "the render from predicted depth (native resolution) with the exact thin-lens ground "
        "truth of the synthetic `dof` scenes. \"Numbers from\": test = `eval_test.json` "
        "(`--mode=eval`), last validation = the last validation line of `metrics.jsonl`.", "",
        *_constant_sentence(runs),
        *_floor_sentence(runs),
        "## Runs", "", runs_table(runs), ""]
  if diffs:
    md += ["Config entries that differ between workdirs (besides seed and loss.arm):", ""]
    md += [f"- `{k}`: " + ", ".join(f"{r.path}={v!r}" for r, v in zip(runs, vals))
           for k, vals in diffs.items()]
    md.append("")
  return md


def _figures_markdown(curves, loss_keys, samples, thin_lens, split):
  """README.md lines for the figures that were written."""
  md = []
  if curves:
    md += ["## Validation curves", "",
           "Mean over seeds per arm; shaded: min..max over seeds.", "", "![curves](curves.png)",
           ""]
  if loss_keys:
    md += ["## Training losses", ""]
    if THROUGHPUT in loss_keys:
      md += [f"The last panel, `{THROUGHPUT}`, is the training speed (steps per second, "
             "machine-dependent), not a loss.", ""]
    md += ["![losses](losses.png)", ""]
  if samples:
    md += ["## Samples", "",
           f"The same {samples} {split} images for every arm (each arm's lowest-seed workdir): "
           "input, each arm's depth (AbsRel in the title), ground truth, each arm's DoF render "
           + ("(with the thin-lens ground truth's lens and focus; PSNR against it in the title), "
              "the render from ground-truth depth, the thin-lens ground truth." if thin_lens else
              "(PSNR against the render from ground truth in the title), the render from ground "
              "truth."), "", "![samples](samples.png)", ""]
  return md


def _constant_sentence(runs):
  """[markdown line, ''] on the constant-depth baseline of the evaluation frames, or []."""
  shown = [k + metrics_lib.CONSTANT_SUFFIX for k in ("d1", "abs_rel", "rmse")]
  values = {k: [r.final[k] for r in runs if k in r.final] for k in shown}
  if not all(values.values()):
    return []
  text = ", ".join(f"`{k}` {float(np.mean(values[k])):.4g}" for k in shown)
  return [f"A constant depth map, median-scaled (every pixel the median true depth), scores "
          f"{text} on the same frames: compare it with the arms' `*_median` columns (the "
          "prediction median-scaled likewise); an arm that does not beat it has learnt no "
          "relative depth.", ""]


def _floor_sentence(runs):
  """[markdown line, ''] on the renderer's own error against thin-lens ground truth, or []."""
  values = {k: [r.final[k] for r in runs if k in r.final] for k in steps.THIN_LENS_FLOOR_KEYS}
  if not all(values.values()):
    return []
  psnr, ssim = (float(np.mean(values[k])) for k in steps.THIN_LENS_FLOOR_KEYS)
  return [f"The same renderer fed the *true* depth scores {psnr:.2f} dB PSNR / {ssim:.4f} SSIM "
          "against the thin-lens ground truth (`thin_lens_floor_*`, the same for every arm): the "
          "renderer's own error, the best any depth prediction can reach in "
          "`bokeh_*_thin_lens`.", ""]


def parse_args(argv):
  """Command-line flags -> argparse.Namespace."""
  parser = argparse.ArgumentParser(
      prog="python -m dofjax.compare",
      description="Ablation report from training workdirs: a markdown table (mean ± std over "
                  "seeds per loss arm), validation curves and sample pictures.")
  parser.add_argument("workdirs", nargs="+", help="training workdirs (--workdir of dofjax.main)")
  parser.add_argument("--out", default="report", help="output folder (default: report)")
  parser.add_argument("--num_images", type=int, default=4,
                      help="test images in samples.png; 0 = no sample figure (default: 4)")
  parser.add_argument("--split", default="test", help="split for samples.png (default: test)")
  parser.add_argument("--allow_mixed_datasets", action="store_true",
                      help="compare workdirs trained on different datasets (with a warning)")
  args = parser.parse_args(argv)
  if args.num_images < 0:
    raise errors.UserError(f"--num_images must be >= 0; got {args.num_images}.")
  return args


def main(argv=None):
  """Entry point: reads the workdirs, writes the report, prints where it is."""
  args = parse_args(argv)
  runs, warnings = load_runs(args.workdirs, args.allow_mixed_datasets)
  write_report(runs, args.out, num_images=args.num_images, split=args.split, warnings=warnings)
  print(f"Wrote {os.path.join(args.out, 'README.md')} ({len(runs)} workdirs, "
        f"{len(group_by_arm(runs))} arms).")
  return 0


if __name__ == "__main__":
  errors.run_cli(main)
