"""The training loop: train (resuming from W/checkpoints), evaluate periodically, write samples.

The loop only orchestrates; each piece has its own module:
  config.validate -> workdir.prepare -> checkpointing.restore_latest -> input_pipeline
  -> parallel.compile_training (steps.train_step under jit or pmap) -> summaries
  -> evaluation.evaluate -> checkpointing.save -> samples.write_samples.
The host never waits on the step it just dispatched: a step's metrics are fetched and logged
after the next step has been dispatched.
"""

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from dofjax import checkpointing
from dofjax import config as config_lib
from dofjax import errors
from dofjax import evaluation
from dofjax import interrupts
from dofjax import losses
from dofjax import parallel
from dofjax import samples
from dofjax import state as state_lib
from dofjax import steps
from dofjax import summaries
from dofjax import workdir as workdir_lib


@dataclasses.dataclass
class _Run:
  """What one training run holds while it loops."""
  config: Any
  workdir: Any
  manager: Any
  mesh: Any
  is_chief: bool
  progress: Any = None
  writer: Any = None
  train_iter: Any = None
  training: Any = None
  eval_fn: Any = None
  train_rng: Any = None
  eval_rng: Any = None


def train_and_evaluate(config, workdir):
  """Trains (resuming from W/checkpoints if present), evaluates periodically, writes samples.

  Returns the final TrainState. Summaries go to W (TensorBoard), W/metrics.jsonl and stdout.
  Raises errors.UserError for bad input, errors.TrainingDiverged when a step is not finite
  (on_nonfinite='stop'), errors.StoppedResumable after a signal or preemption notice stopped the
  run with a checkpoint saved.
  """
  config_lib.validate(config)
  workdir = workdir_lib.prepare(workdir, config)
  leftovers = checkpointing.incomplete_checkpoints(workdir)
  manager = checkpointing.make_manager(workdir, config.keep_checkpoints)  # Removes leftovers.
  run = _Run(config=config, workdir=workdir, manager=manager, mesh=parallel.make_mesh(),
             is_chief=jax.process_index() == 0)
  try:
    run.progress = summaries.Progress(config.num_train_steps, 0, enabled=run.is_chief)
    if leftovers:
      run.progress.message(
          f"warning: removing {len(leftovers)} incomplete checkpoint folder(s) that an "
          f"interrupted save left in {workdir}/checkpoints: {', '.join(leftovers)}.")
    start, state = _start(run)
    with interrupts.StopRequest() as stop:
      state, stopped_by = _loop(run, start, state, stop)
      return _finish(run, start, state, stopped_by, stop)
  finally:
    manager.close()  # Also on errors: an unclosed manager's threads print tracebacks at exit.
    if run.writer is not None:
      run.writer.close()


def _start(run):
  """Restores or initialises the state, records the config, prepares data, compiles.
  Returns (first step, state placed for the compiled step)."""
  from dofjax import input_pipeline
  config, progress = run.config, run.progress
  init_rng, run.train_rng, run.eval_rng = state_lib.run_keys(config)
  start, state, data_state = checkpointing.restore_latest(
      run.manager, parallel.abstract_state(config, run.mesh), log=progress.message,
      move_unusable=True, config_changes=workdir_lib.model_config_changes(run.workdir, config))
  source = None
  if state is None and config.get("init_from"):
    source = load_init_source(config, run.mesh)  # Before the data: a bad source fails fast.
  if run.is_chief:
    workdir_lib.record_config(run.workdir, config)
  input_pipeline.prepare(config)
  input_pipeline.prepare(config, input_pipeline.eval_dataset(config))  # Fails before training.
  if state is None:
    start, state = 0, parallel.init_state_on_mesh(config, init_rng, run.mesh)
    if source is not None:
      state = state_lib.start_from(state, source.state, bool(config.init_discriminator))
      if run.is_chief:
        workdir_lib.record_init_from(run.workdir, source.record(config))
      progress.message(f"Starting from the checkpoint at step {source.step} in {source.workdir}"
                       f" ({source.what(config)}; fresh optimiser, step 0).")
  else:
    note = (f" (init_from={config.init_from} only starts a new workdir; this one continues)"
            if config.get("init_from") else "")
    progress.message(f"Resuming from the checkpoint at step {start} in {run.workdir}/checkpoints"
                     f"{note}.")
  run.train_iter = input_pipeline.create_train_iterator(config)
  local_data_state = checkpointing.local_process_state(data_state)
  if local_data_state is not None:
    run.train_iter.set_state(local_data_state)
  elif data_state:
    progress.message(f"warning: the checkpoint's data position was saved by "
                     f"{data_state.get('process_count')} processes, now there are "
                     f"{jax.process_count()}; the data order restarts from the beginning.")
  run.eval_fn = parallel.compile_eval_step(config, run.mesh)
  run.training = parallel.compile_training(config, run.mesh)
  run.writer = summaries.SummaryWriter(run.workdir, enabled=run.is_chief)
  run.progress = summaries.Progress(config.num_train_steps, start, enabled=run.is_chief)
  return start, run.training.to_device(state)


@dataclasses.dataclass(frozen=True)
class InitSource:
  """The checkpoint a fine-tuning run starts from (config.init_from)."""
  workdir: str
  step: int
  state: Any  # Its TrainState, as saved.

  def what(self, config) -> str:
    """Which weights are taken, in words."""
    with_disc = (config.init_discriminator and self.state.disc is not None
                 and losses.uses_discriminator(config.loss.arm))
    return ("generator and discriminator weights" if with_disc else "generator weights") + (
        " with their BatchNorm statistics")

  def record(self, config) -> dict:
    """What W/init_from.json records."""
    return {"init_from": config.init_from, "workdir": os.path.abspath(self.workdir),
            "step": self.step, "weights": self.what(config)}


def _shapes(tree) -> dict:
  return {jax.tree_util.keystr(p): tuple(x.shape)
          for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def load_init_source(config, mesh) -> InitSource:
  """Restores the checkpoint config.init_from names ('W' = its newest, or
  'W/checkpoints/<step>') with the source run's own config (W/config.json). UserError if there
  is none, or if its generator (or, with init_discriminator, its discriminator) has other
  shapes than this config's: the message names the config fields that differ."""
  workdir, step = checkpointing.source_checkpoint(config.init_from)
  source_config = workdir_lib.load_config(workdir)
  saved, wanted = (parallel.abstract_state(c, mesh) for c in (source_config, config))
  nets = [("generator", saved.gen.weights(), wanted.gen.weights())]
  if config.init_discriminator and saved.disc is not None and wanted.disc is not None:
    nets.append(("discriminator", saved.disc.weights(), wanted.disc.weights()))
  for name, a, b in nets:
    if _shapes(a) != _shapes(b):
      changes = [c for c in workdir_lib.model_config_changes(workdir, config)
                 if not c.startswith(("model.conv_impl", "model.dropout_rate", "ema_decay"))]
      fields = "; ".join(changes) or "its shapes differ"
      raise errors.UserError(
          f"init_from={config.init_from}: its {name} does not fit this config ({fields}); "
          f"fine-tune with the model settings of {workdir}/config.json, or set "
          "--config.init_from= to train from scratch.")
  return InitSource(workdir=workdir, step=step,
                    state=checkpointing.restore_step(workdir, step, saved))


def _loop(run, start, state, stop):
  """Steps from `start` to config.num_train_steps (or a stop request). Returns (state as one
  plain copy, what stopped it or None)."""
  config, total = run.config, run.config.num_train_steps
  pending = None  # (step, metrics) not yet fetched: the host never waits on the newest step.
  for step in range(start, total):
    state, metrics = run.training.step(state, next(run.train_iter), run.train_rng)
    done = step + 1
    if pending is not None:
      _log_train(run, *pending, first=pending[0] == start + 1)
    pending = (done, metrics)
    preempted = stop.signal_name is not None or run.manager.reached_preemption(done)
    if done % config.checkpoint_every_steps == 0 or done == total or preempted:
      _log_train(run, *pending, first=done == start + 1)
      pending = None
      checkpointing.save(run.manager, done, run.training.to_plain(state),
                         checkpointing.gather_process_states(run.train_iter.get_state()),
                         force=preempted)
    if preempted:  # A preempted run leaves at once: its grace period is short.
      return run.training.to_plain(state), stop.signal_name or "preemption notice"
    if done == total or done % config.eval_every_steps == 0:
      _evaluate(run, done, run.training.to_plain(state))
  if pending is not None:
    _log_train(run, *pending)
  return run.training.to_plain(state), None


def _evaluate(run, step, state):
  """Validation metrics and pictures at `step`, outside the training clock."""
  with run.progress.paused():
    metrics, rows = evaluation.evaluate(state, run.config, run.config.eval_split, run.eval_fn,
                                        run.mesh, run.eval_rng,
                                        num_images=run.config.num_image_summaries)
    run.writer.scalars(step, "validation", metrics)
    if rows:
      run.writer.image(step, "validation/" + "|".join(samples.GRID_LABELS),
                       samples.labelled_grid(rows))
    run.progress.message(f"eval step {step}: " +
                         "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))


def _log_train(run, step, metrics, first=False):
  """Fetches a step's metrics, stops on a non-finite step, logs every log_every_steps."""
  host = parallel.to_host(metrics)
  _check_finite(run, step, host)
  config = run.config
  if step % config.log_every_steps == 0 or step == config.num_train_steps or first:
    # The first step includes compilation: its rate is not reported, the clock starts after it.
    rate = run.progress.steps_per_second(step)
    scalars = {k: v for k, v in host.items() if k != "nonfinite"}
    if first:
      rate = float("nan")
    else:
      scalars[summaries.THROUGHPUT_KEY] = rate
    run.writer.scalars(step, "train", scalars)
    shown = {k: host[k] for k in ("g_loss", "g_l1", "g_gan", "d_loss") if k in host}
    run.progress.line(step, shown, rate)


def _check_finite(run, step, host_metrics):
  """Raises TrainingDiverged (or warns, with on_nonfinite='skip') when step `step` was not
  finite."""
  if int(host_metrics.get("nonfinite", 0)) == 0:
    return
  bad = [k for k in steps.LOSS_KEYS if k in host_metrics and not np.isfinite(host_metrics[k])]
  what = f"non-finite {', '.join(bad)}" if bad else "non-finite gradients"
  if run.config.on_nonfinite == "skip":
    run.progress.message(f"warning: step {step}: {what}; update skipped (on_nonfinite='skip').")
    return
  run.manager.wait_until_finished()  # Checkpoints saved so far hold only finite, checked steps.
  last = run.manager.latest_step()
  kept = (f"the last good checkpoint is step {last} in {run.manager.directory}"
          if last is not None else "no checkpoint was saved yet")
  raise errors.TrainingDiverged(
      f"Training stopped at step {step}: {what}. The state was not updated and {kept}. Lower "
      "--config.learning_rate, check the data, or set --config.on_nonfinite=skip to skip such "
      "steps.")


def _finish(run, start, state, stopped_by, stop):
  """After the loop: wait for checkpoints, report, write the samples (also those an earlier
  run was stopped before writing). Returns the state; StoppedResumable if stopped."""
  config, progress, workdir = run.config, run.progress, run.workdir
  run.manager.wait_until_finished()
  run.writer.flush()
  step = int(state.step)
  skips = int(state.nonfinite_skips)
  if skips:
    progress.message(f"warning: {skips} update(s) with non-finite losses or gradients were "
                     "skipped in this training run so far (on_nonfinite='skip').")
  if stopped_by:
    raise errors.StoppedResumable(
        f"Stopped by {stopped_by} at step {step}; checkpoint saved in "
        f"{workdir}/checkpoints/{step}. Run the same command again to resume.")
  samples_due = run.is_chief and config.num_samples > 0 and (
      start < config.num_train_steps or not workdir_lib.samples_complete(workdir,
                                                                         config.num_samples))
  if start >= config.num_train_steps:
    progress.message(f"Already trained to step {start} (num_train_steps="
                     f"{config.num_train_steps}); nothing to train. Raise "
                     "--config.num_train_steps to train longer.")
    if samples_due:
      progress.message("Writing the samples that the previous run did not finish.")
  if samples_due:
    paths = samples.write_samples(state, config, workdir, run.eval_rng, stop=stop)
    if stop.signal_name:
      raise errors.StoppedResumable(
          f"Stopped by {stop.signal_name} while writing the samples (training is complete and "
          f"saved at step {step}). Run the same command again to write them.")
    progress.message(f"Depth-of-field samples written to {workdir}/samples/ ({len(paths)} "
                     "images: " + " | ".join(samples.SAMPLE_LABELS) + ").")
  return state
