"""Pix2Pix training: state, the pure train and eval steps, and the loop.

`train_step` does what the reference pix2pix does each iteration (DESIGN.md section 4): one
generator forward; a discriminator update on (input, fake) and (input, real) as two separate
passes, loss 0.5 * (fake + real); then the generator update against the *updated* discriminator,
GAN + lambda * L1. The generator forward is not repeated: its VJP is kept and pulled back with the
gradient of the generator loss with respect to its output.

Batches are dicts of NHWC float32 arrays: 'image' (N,S,S,3) RGB in [-1, 1], 'target' (N,S,S,1)
inverse-depth code in [-1, 1] (dofjax.depth), 'mask' (N,S,S,1) 1 where depth is valid, 'depth'
(N,S,S,1) metres.
"""

import functools
import os
import shutil
import signal
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec as P

from dofjax import checkpointing
from dofjax import depth as depth_lib
from dofjax import errors
from dofjax import layers
from dofjax import losses
from dofjax import models
from dofjax import optim
from dofjax import summaries

PARALLELISMS = ("jit", "pmap")
TEST_TIMES = ("standard", "paper")
ON_NONFINITE = ("stop", "skip")
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
DATA_AXIS = "data"


@flax.struct.dataclass
class NetState:
  """One network's trainable state: parameters, BatchNorm statistics and Adam state."""
  params: Any
  batch_stats: Any
  opt_state: Any


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint holds. `disc` is None for the 'l1' arm (no discriminator)."""
  step: jax.Array
  gen: NetState
  disc: Optional[NetState]
  nonfinite_skips: jax.Array


# ----------------------------------------------------------------------------- config


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first invalid config value and how to fix it."""
  from dofjax import input_pipeline
  known = ", ".join(input_pipeline.KNOWN_DATASETS)
  if config.dataset not in input_pipeline.KNOWN_DATASETS:
    raise errors.UserError(f"dataset={config.dataset!r} is unknown; use one of {known}.")
  eval_name = config.get("eval_dataset")
  if eval_name and eval_name not in input_pipeline.KNOWN_DATASETS:
    raise errors.UserError(f"eval_dataset={eval_name!r} is unknown; use one of {known} (or '' "
                           "for the training dataset).")
  losses.check_loss_config(config.loss)
  for field, allowed in (("parallelism", PARALLELISMS), ("test_time", TEST_TIMES),
                         ("on_nonfinite", ON_NONFINITE), ("compute_dtype", tuple(COMPUTE_DTYPES))):
    if config[field] not in allowed:
      raise errors.UserError(f"{field}={config[field]!r} is not one of "
                             f"{', '.join(map(repr, allowed))}.")
  for field in ("norm", "disc_norm"):
    if config.model[field] not in models.NORMS:
      raise errors.UserError(f"model.{field}={config.model[field]!r} is not one of "
                             f"{', '.join(map(repr, models.NORMS))}.")
  layers.resolve_impl(config.model.conv_impl)
  if config.model.num_downs < 5:
    raise errors.UserError(f"model.num_downs={config.model.num_downs} must be at least 5.")
  size = 2**config.model.num_downs
  if config.image_size <= 0 or config.image_size % size:
    raise errors.UserError(
        f"image_size={config.image_size} is not divisible by 2**model.num_downs = {size}; "
        f"use image_size={max(size, config.image_size // size * size)} or change "
        "model.num_downs (8 for 256 px, 7 for 128 px).")
  if config.load_size < config.image_size:
    raise errors.UserError(f"load_size={config.load_size} must be >= image_size="
                           f"{config.image_size} (the random crop is taken from it).")
  for field in ("batch_size", "eval_batch_size", "num_train_steps", "log_every_steps",
                "eval_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
    if int(config[field]) <= 0:
      raise errors.UserError(f"{field}={config[field]} must be a positive integer.")
  if not 0 <= config.model.dropout_rate < 1:
    raise errors.UserError(f"model.dropout_rate={config.model.dropout_rate} must be in [0, 1).")
  if config.learning_rate <= 0:
    raise errors.UserError(f"learning_rate={config.learning_rate} must be > 0.")
  if not 0 <= config.lr_constant_steps <= config.num_train_steps:
    raise errors.UserError(f"lr_constant_steps={config.lr_constant_steps} must be between 0 and "
                           f"num_train_steps={config.num_train_steps}.")
  n = jax.device_count()
  for field in ("batch_size", "eval_batch_size"):
    if config[field] % n:
      raise errors.UserError(
          f"{field}={config[field]} is not divisible by the {n} devices; use a multiple of {n} "
          f"(e.g. --config.{field}={n * max(1, config[field] // n)}).")
  if not 0 < config.depth_near_m < config.depth_far_m:
    raise errors.UserError("Need 0 < depth_near_m < depth_far_m; got "
                           f"{config.depth_near_m}, {config.depth_far_m}.")


# ----------------------------------------------------------------------------- state


def make_models(config, axis_name=None):
  """(UNetGenerator, PatchDiscriminator or None) for the config; RGB in, 1-channel code out.

  `axis_name` (pmap) makes BatchNorm statistics global over replicas unless
  config.per_replica_batch_norm.
  """
  dtype = COMPUTE_DTYPES[config.compute_dtype]
  bn_axis = None if config.per_replica_batch_norm else axis_name
  gen = models.UNetGenerator(out_channels=1, ngf=config.model.ngf,
                             num_downs=config.model.num_downs, norm=config.model.norm,
                             dropout_rate=config.model.dropout_rate,
                             conv_impl=config.model.conv_impl, dtype=dtype, bn_axis_name=bn_axis)
  disc = None
  if losses.uses_discriminator(config.loss.arm):
    disc = models.PatchDiscriminator(ndf=config.model.ndf, n_layers=config.model.n_layers,
                                     norm=config.model.disc_norm,
                                     conv_impl=config.model.conv_impl, dtype=dtype,
                                     bn_axis_name=bn_axis)
  return gen, disc


def learning_rate_schedule(config):
  """Constant `learning_rate` for `lr_constant_steps`, then linear decay to 0 at the end."""
  decay_steps = config.num_train_steps - config.lr_constant_steps
  if decay_steps <= 0:
    return optax.constant_schedule(config.learning_rate)
  return optax.join_schedules(
      [optax.constant_schedule(config.learning_rate),
       optax.linear_schedule(config.learning_rate, 0.0, decay_steps)],
      [config.lr_constant_steps])


def _init_net(module, rng, x):
  variables = module.init({"params": rng, "dropout": rng}, x, train=False)
  params = variables["params"]
  return NetState(params=params, batch_stats=variables.get("batch_stats", {}),
                  opt_state=optim.adam_init(params))


def create_train_state(config, rng) -> TrainState:
  """Freshly initialised TrainState (reference init) for inputs of config.image_size px."""
  gen, disc = make_models(config)
  s = config.image_size
  g_rng, d_rng = jax.random.split(rng)
  gen_state = _init_net(gen, g_rng, jnp.zeros((1, s, s, 3), jnp.float32))
  disc_state = None
  if disc is not None:
    disc_state = _init_net(disc, d_rng, jnp.zeros((1, s, s, 4), jnp.float32))
  return TrainState(step=jnp.zeros((), jnp.int32), gen=gen_state, disc=disc_state,
                    nonfinite_skips=jnp.zeros((), jnp.int32))


# ----------------------------------------------------------------------------- steps


def _all_finite(tree):
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
  return jnp.stack(leaves).all() if leaves else jnp.array(True)


def _apply_update(config, net: NetState, grads, new_batch_stats, ok) -> NetState:
  """Adam(schedule, b1, b2, eps 1e-8) as the reference; keeps the old state everywhere when `ok`
  is False (non-finite step)."""
  params, opt_state = optim.adam_update(net.params, grads, net.opt_state,
                                        learning_rate=learning_rate_schedule(config),
                                        b1=config.b1, b2=config.b2, eps=1e-8, apply=ok)
  keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
  return NetState(params=params, opt_state=opt_state,
                  batch_stats=jax.tree_util.tree_map(keep, new_batch_stats, net.batch_stats))


def _pmean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def train_step(state: TrainState, batch, rng, *, config, axis_name=None):
  """One Pix2Pix iteration. Pure: (state, batch, rng) -> (new state, metrics dict of scalars).

  `rng` is the run's base key; the step folds in state.step, so a resumed run draws the same
  dropout masks. With `axis_name` (pmap), gradients, losses and BatchNorm statistics are averaged
  over that axis. A step whose losses or gradients are not finite leaves the state unchanged and
  reports metrics['nonfinite'] = 1.
  """
  gen, disc = make_models(config, axis_name)
  arm, gan_mode = config.loss.arm, config.loss.gan_mode
  image, target, mask = batch["image"], batch["target"], batch["mask"]
  dropout_rng = jax.random.fold_in(rng, state.step)
  if axis_name is not None:
    dropout_rng = jax.random.fold_in(dropout_rng, jax.lax.axis_index(axis_name))

  def gen_forward(params):
    out, mutated = gen.apply({"params": params, "batch_stats": state.gen.batch_stats}, image,
                             train=True, rngs={"dropout": dropout_rng}, mutable=["batch_stats"])
    return out, mutated["batch_stats"]

  fake, gen_vjp, gen_batch_stats = jax.vjp(gen_forward, state.gen.params, has_aux=True)
  metrics = {}
  ok = jnp.array(True)
  new_disc = None
  disc_batch_stats = None

  if disc is not None:
    real_pair = jnp.concatenate([image, target], axis=-1)
    fake_pair = jnp.concatenate([image, jax.lax.stop_gradient(fake)], axis=-1)

    def disc_loss_fn(params):
      stats = state.disc.batch_stats
      logits_fake, m = disc.apply({"params": params, "batch_stats": stats}, fake_pair,
                                  train=True, mutable=["batch_stats"])
      logits_real, m = disc.apply({"params": params, "batch_stats": m["batch_stats"]},
                                  real_pair, train=True, mutable=["batch_stats"])
      loss_fake = losses.gan_loss(logits_fake, False, gan_mode)
      loss_real = losses.gan_loss(logits_real, True, gan_mode)
      return 0.5 * (loss_fake + loss_real), (m["batch_stats"], loss_fake, loss_real)

    (d_loss, (d_stats, d_fake, d_real)), d_grads = jax.value_and_grad(
        disc_loss_fn, has_aux=True)(state.disc.params)
    d_grads = _pmean(d_grads, axis_name)
    ok = ok & jnp.isfinite(d_loss) & _all_finite(d_grads)
    new_disc = _apply_update(config, state.disc, d_grads, _pmean(d_stats, axis_name), ok)
    metrics.update(d_loss=d_loss, d_real=d_real, d_fake=d_fake)

  def gen_loss_fn(fake_code):
    terms = {}
    total = jnp.zeros((), jnp.float32)
    stats = None
    if disc is not None:
      pair = jnp.concatenate([image, fake_code], axis=-1)
      logits, m = disc.apply({"params": new_disc.params, "batch_stats": new_disc.batch_stats},
                             pair, train=True, mutable=["batch_stats"])
      stats = m["batch_stats"]
      terms["g_gan"] = losses.gan_loss(logits, True, gan_mode)
      total = total + terms["g_gan"]
    if losses.uses_l1(arm):
      terms["g_l1"] = losses.masked_l1(fake_code, target, mask, axis_name)
      total = total + config.loss.lambda_l1 * terms["g_l1"]
    else:
      terms["g_l1"] = jax.lax.stop_gradient(losses.masked_l1(fake_code, target, mask))
    if config.loss.bokeh_weight > 0:
      terms["g_bokeh"] = bokeh_loss(batch, fake_code, config)
      total = total + config.loss.bokeh_weight * terms["g_bokeh"]
    return total, (terms, stats)

  (g_loss, (g_terms, disc_stats_after_g)), d_fake_code = jax.value_and_grad(
      gen_loss_fn, has_aux=True)(fake)
  (g_grads,) = gen_vjp(d_fake_code)
  g_grads = _pmean(g_grads, axis_name)
  ok = ok & jnp.isfinite(g_loss) & _all_finite(g_grads)
  new_gen = _apply_update(config, state.gen, g_grads, _pmean(gen_batch_stats, axis_name), ok)
  if disc is not None:
    # The G step's D pass runs in train mode as in the reference, so its BN statistics move too.
    disc_batch_stats = _pmean(disc_stats_after_g, axis_name)
    keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    new_disc = new_disc.replace(batch_stats=jax.tree_util.tree_map(
        keep, disc_batch_stats, new_disc.batch_stats))

  metrics.update(g_loss=g_loss, **g_terms)
  metrics = _pmean(metrics, axis_name)
  metrics["learning_rate"] = learning_rate_schedule(config)(state.step)
  metrics["nonfinite"] = 1 - ok.astype(jnp.int32)
  new_state = TrainState(step=state.step + 1, gen=new_gen, disc=new_disc,
                         nonfinite_skips=state.nonfinite_skips + (1 - ok.astype(jnp.int32)))
  return new_state, metrics


def bokeh_loss(batch, fake_code, config):
  """L1 between DoF renders of the input made with predicted and with true depth (dof.py)."""
  from dofjax import dof
  image01 = (batch["image"] + 1.0) * 0.5
  pred_depth = depth_lib.decode_depth(fake_code, config.depth_near_m, config.depth_far_m)[..., 0]
  true_depth = batch["depth"][..., 0] * batch["mask"][..., 0]
  return dof.bokeh_loss(image01, pred_depth, true_depth)


def predict_code(gen_state: NetState, image, rng, *, config):
  """Generator output (N,S,S,1) code in [-1, 1] at test time (config.test_time decides how)."""
  gen, _ = make_models(config)
  variables = {"params": gen_state.params, "batch_stats": gen_state.batch_stats}
  if config.test_time == "paper":
    out, _ = gen.apply(variables, image, train=True, rngs={"dropout": rng},
                       mutable=["batch_stats"])
    return out
  return gen.apply(variables, image, train=False)


def eval_step(state: TrainState, batch, rng, thin_lens_max_radius=None, *, config):
  """Per-batch sums of per-image metrics (weighted by batch['example_mask']) and their counts.

  Depth and boundary metrics compare the prediction, resized to the native ground truth
  ('depth_full'), with it (DESIGN.md section 6). The bokeh metrics compare DoF renders at the
  network's resolution made with predicted and with true depth (same lens, same focus). With
  thin-lens ground truth in the batch (`thin_lens_max_radius`, static, set), also
  `thin_lens_metrics`.
  Returns (sums: {name: sum, '_count_' + name: weight}, predicted code (N,S,S,1)).
  """
  from dofjax import dof
  from dofjax import metrics as metrics_lib
  near, far = config.depth_near_m, config.depth_far_m
  code = predict_code(state.gen, batch["image"], rng, config=config)
  weight = batch["example_mask"].astype(jnp.float32)
  mask = batch["mask"]
  valid_pixels = mask.sum((1, 2, 3))
  l1_code = (jnp.abs(code - batch["target"]) * mask).sum((1, 2, 3))
  groups = [{"l1_code": l1_code / jnp.maximum(valid_pixels, 1.0),
             "valid": (valid_pixels > 0).astype(jnp.float32)}]
  gt_full = batch["depth_full"][..., 0]
  code_full = jax.image.resize(code, gt_full.shape + (1,), "bilinear")[..., 0]
  pred_full = depth_lib.decode_depth(code_full, near, far)
  groups.append(metrics_lib.depth_metrics_per_image(pred_full, gt_full, max_depth=far))
  groups.append(metrics_lib.boundary_metrics_per_image(pred_full, gt_full, max_depth=far))
  image01 = (batch["image"] + 1.0) * 0.5
  pred_small = depth_lib.decode_depth(code[..., 0], near, far)
  true_small = jnp.where(mask[..., 0] > 0, batch["depth"][..., 0], pred_small)
  focus = 1.0 / dof.focus_disparity_from_depth(batch["depth"][..., 0] * mask[..., 0])
  render_pred = dof.render_for_preview(image01, pred_small, focus=focus)
  render_true = dof.render_for_preview(image01, true_small, focus=focus)
  groups.append(metrics_lib.bokeh_metrics_per_image(render_pred, render_true))
  if thin_lens_max_radius is not None:
    groups.append(thin_lens_metrics(batch, pred_full, thin_lens_max_radius))
  sums = {}
  for group in groups:
    w = weight * group.pop("valid").astype(jnp.float32)
    group.pop("num_pixels", None)
    for name, values in group.items():
      sums[name] = jnp.sum(jnp.where(w > 0, values, 0.0) * w)
      sums[f"_count_{name}"] = jnp.sum(w)
  return sums, code


def thin_lens_metrics(batch, pred_full_m, max_radius):
  """Bokeh error against the exact thin-lens ground truth (synthetic_rgbd/dof*), per image.

  Renders the native-resolution photo ('image_full') with the lens and focus of its ground
  truth ('dof_full', 'dof_focus_disparity', 'dof_blur_scale_px') from the predicted depth
  pred_full_m (N, H, W) metres, and, for reference, from the true depth ('depth_full'; invalid
  pixels take the prediction), and compares each with the ground truth.
  Returns {'bokeh_psnr_thin_lens', 'bokeh_ssim_thin_lens' (render from predicted depth),
  'thin_lens_floor_psnr', 'thin_lens_floor_ssim' (from true depth: the renderer's own error),
  'valid'}, each (N,).
  """
  from dofjax import dof
  from dofjax import metrics as metrics_lib

  def render(depth_m):
    return dof.render_disparity(batch["image_full"], 1.0 / jnp.maximum(depth_m, 1e-3),
                                focus_disparity=batch["dof_focus_disparity"],
                                blur_scale_px=batch["dof_blur_scale_px"],
                                max_radius=float(max_radius))

  gt = batch["depth_full"][..., 0]
  truth = batch["dof_full"]
  pred = metrics_lib.bokeh_metrics_per_image(render(pred_full_m), truth)
  floor = metrics_lib.bokeh_metrics_per_image(render(jnp.where(gt > 0, gt, pred_full_m)), truth)
  return {"bokeh_psnr_thin_lens": pred["bokeh_psnr"], "bokeh_ssim_thin_lens": pred["bokeh_ssim"],
          "thin_lens_floor_psnr": floor["bokeh_psnr"], "thin_lens_floor_ssim": floor["bokeh_ssim"],
          "valid": pred["valid"]}


# ----------------------------------------------------------------------------- devices


def make_mesh():
  """1-D mesh over every device (all processes) on the 'data' axis.

  Auto axis types: shardings are given at jit boundaries and XLA propagates them (newer jax
  defaults make_mesh to Explicit axes, which would put shardings into every array type).
  """
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def compile_train_step(config, mesh=None):
  """train_step compiled with jax.jit over `mesh`: batch split on 'data', state replicated,
  state buffers donated. Returns fn(state, batch, rng) -> (state, metrics)."""
  mesh = mesh or make_mesh()
  replicated = NamedSharding(mesh, P())
  data = NamedSharding(mesh, P(DATA_AXIS))
  return jax.jit(functools.partial(train_step, config=config),
                 in_shardings=(replicated, data, replicated),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


PMAP_AXIS = "batch"


def compile_train_step_pmap(config):
  """The same train_step compiled with jax.pmap over the local devices (axis 'batch').

  Takes a state replicated with `replicate`, a batch with a leading local-device axis
  (`split_for_devices`) and a rng; gradients, losses and BatchNorm statistics are averaged
  across replicas (per replica BN statistics with config.per_replica_batch_norm).
  """
  return jax.pmap(functools.partial(train_step, config=config, axis_name=PMAP_AXIS),
                  axis_name=PMAP_AXIS, in_axes=(0, 0, None), donate_argnums=(0,))


def replicate(tree):
  """Copies a pytree onto every local device (leading axis = local device count) for pmap."""
  devices = jax.local_devices()
  sharding = NamedSharding(jax.sharding.Mesh(np.array(devices), (PMAP_AXIS,)), P(PMAP_AXIS))

  def put(x):
    x = np.asarray(x)  # One host copy; each device then receives its slice of the broadcast.
    return jax.device_put(np.broadcast_to(x[None], (len(devices),) + x.shape), sharding)

  return jax.tree_util.tree_map(put, tree)


def unreplicate(tree):
  """The first local replica of a pmap-replicated pytree."""

  def first(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:  # Several processes.
      x = x.addressable_shards[0].data
    return x[0]

  return jax.tree_util.tree_map(first, tree)


def split_for_devices(local_batch: dict) -> dict:
  """(B, ...) numpy arrays -> (local devices, B / local devices, ...) for pmap."""
  n = jax.local_device_count()
  return {k: np.asarray(v).reshape((n, -1) + np.shape(v)[1:]) for k, v in local_batch.items()}


def compile_eval_step(config, mesh=None):
  """eval_step compiled with jax.jit over `mesh` (batch on 'data'); its 4th argument,
  `thin_lens_max_radius`, is static (one compilation per value)."""
  mesh = mesh or make_mesh()
  replicated = NamedSharding(mesh, P())
  data = NamedSharding(mesh, P(DATA_AXIS))
  return jax.jit(functools.partial(eval_step, config=config),
                 in_shardings=(replicated, data, replicated),
                 out_shardings=(replicated, data), static_argnums=(3,))


def global_batch(local_batch: dict, mesh) -> dict:
  """Per-process numpy batch -> global jax arrays sharded on the mesh's 'data' axis."""
  from dofjax import input_pipeline
  return input_pipeline.to_global_batch(local_batch, NamedSharding(mesh, P(DATA_AXIS)))


def init_state_on_mesh(config, rng, mesh):
  """create_train_state run under jit with replicated output sharding (no host copy)."""
  replicated = NamedSharding(mesh, P())
  return jax.jit(functools.partial(create_train_state, config), out_shardings=replicated)(rng)


def abstract_state(config, mesh):
  """ShapeDtypeStructs (with shardings) of the TrainState, for restoring checkpoints."""
  replicated = NamedSharding(mesh, P())
  shapes = jax.eval_shape(functools.partial(create_train_state, config), jax.random.key(0))
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes)


# ----------------------------------------------------------------------------- the loop


class TrainingDiverged(errors.UserError):
  """A loss or gradient became non-finite and config.on_nonfinite == 'stop'."""


class _StopRequest:
  """Turns SIGTERM / SIGINT into a flag the loop checks between steps (main thread only).

  Single process only: with several processes a flag set on one of them would make them part
  ways (one saves and leaves, the others wait for it forever), so there SIGTERM is left to jax's
  preemption service, which agrees on a step for all (`manager.reached_preemption`).
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def __enter__(self):
    import threading
    if (threading.current_thread() is threading.main_thread()
        and jax.process_count() == 1):
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signal_name is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # A second Ctrl-C stops at once.
    self.signal_name = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _checkpoint_bytes(config) -> int:
  shapes = jax.eval_shape(functools.partial(create_train_state, config), jax.random.key(0))
  return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(shapes))


def prepare_workdir(workdir, config) -> epath.Path:
  """Creates the workdir; UserError if it is a file, not writable, or the disk is too full."""
  path = epath.Path(workdir)
  if "://" in str(workdir):  # gs:// and friends: the storage client reports its own errors.
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
  need = 2 * _checkpoint_bytes(config) + (64 << 20)
  free = shutil.disk_usage(str(path)).free
  if free < need:
    raise errors.UserError(
        f"Only {free / 2**20:.0f} MiB free on the disk of {workdir}; checkpoints need about "
        f"{need / 2**20:.0f} MiB. Free some space or choose another --workdir.")
  return path


def _fetch(tree):
  return jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x)), tree)


def _gather_rows(x, n: int):
  """First n rows of a (possibly multi-process) sharded array as numpy."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)[:n]


def evaluate(state, config, split, eval_fn, mesh, rng, num_batches=None, num_images=0):
  """Averages per-image metrics over `split`. Returns (metrics dict, grid rows for a picture)."""
  from dofjax import input_pipeline
  sums, counts = {}, {}
  rows = []
  num_batches = config.num_eval_batches if num_batches is None else num_batches
  eval_config = config.copy_and_resolve_references()
  with eval_config.unlocked():
    eval_config.num_eval_batches = num_batches
  batches = input_pipeline.create_eval_iterator(eval_config, split)
  thin_lens_max_radius = batches.thin_lens_max_radius_px()
  for i, local in enumerate(batches):
    batch = global_batch(local, mesh)
    batch_sums, code = eval_fn(state, batch, jax.random.fold_in(rng, i), thin_lens_max_radius)
    for k, v in _fetch(batch_sums).items():
      if k.startswith("_count_"):
        counts[k[len("_count_"):]] = counts.get(k[len("_count_"):], 0.0) + float(v)
      else:
        sums[k] = sums.get(k, 0.0) + float(v)
    if len(rows) < num_images:
      rows += _picture_rows(local, _gather_rows(code, local["image"].shape[0]),
                            num_images - len(rows), config)
  metrics = {k: sums[k] / counts[k] for k in sums if counts.get(k, 0) > 0}
  return metrics, rows


def _picture_rows(local, code, n, config):
  """Rows of [input | predicted depth | ground truth | DoF render from predicted depth]."""
  from dofjax import visualize
  rows = []
  for j in range(min(n, code.shape[0])):
    if float(local["example_mask"][j]) == 0:
      continue
    row = [visualize.to_uint8(local["image"][j], -1.0, 1.0),
           visualize.colorize(code[j]),
           visualize.colorize(np.where(local["mask"][j] > 0, local["target"][j], -1.0))]
    image01 = (local["image"][j] + 1.0) * 0.5
    pred_m = np.asarray(depth_lib.decode_depth(code[j][..., 0], config.depth_near_m,
                                               config.depth_far_m))
    true_m = local["depth"][j][..., 0]
    focus = np.median(true_m[true_m > 0]) if np.any(true_m > 0) else np.median(pred_m)
    row.append(visualize.to_uint8(preview_render(image01, pred_m, focus)))
    rows.append(row)
  return rows


@functools.lru_cache(maxsize=None)
def _jitted_preview():
  from dofjax import dof
  return jax.jit(dof.render_for_preview)


def preview_render(image01, depth_m, focus):
  """A shallow-DoF preview (H,W,3 float [0,1]) of an image (H,W,3 in [0,1]) and its depth
  (H,W metres), focused at `focus` metres (dof.render_for_preview, compiled once per size)."""
  return np.asarray(_jitted_preview()(np.asarray(image01, np.float32),
                                      np.asarray(depth_m, np.float32),
                                      focus=np.float32(focus)))


def write_samples(state, config, workdir, mesh, rng) -> list:
  """Writes W/samples/sample_<i>.png: input | render(pred depth) | render(true depth) | depths."""
  from dofjax import input_pipeline, visualize
  import cv2
  out_dir = epath.Path(workdir) / "samples"
  out_dir.mkdir(parents=True, exist_ok=True)
  predict = jax.jit(functools.partial(predict_code, config=config))
  gen_state = jax.device_get(state.gen)  # A host copy: process 0 runs this alone.
  written = []
  for local in input_pipeline.create_eval_iterator(config, config.eval_split):
    code = np.asarray(predict(gen_state, jnp.asarray(local["image"]), rng))
    for j in range(code.shape[0]):
      if len(written) >= config.num_samples:
        return written
      if float(local["example_mask"][j]) == 0:
        continue
      image01 = local["image_full"][j]
      gt = local["depth_full"][j][..., 0]
      code_full = jax.image.resize(code[j], gt.shape + (1,), "bilinear")[..., 0]
      pred = np.asarray(depth_lib.decode_depth(code_full, config.depth_near_m,
                                               config.depth_far_m))
      true_for_render = np.where(gt > 0, gt, pred)
      focus = float(np.median(gt[gt > 0])) if np.any(gt > 0) else float(np.median(pred))
      # Colours span this image's true depth range (bright = near), the same for both maps.
      near, far = np.percentile(true_for_render, [1, 99])
      far = max(far, near * 1.01)
      tiles = [visualize.to_uint8(image01),
               visualize.to_uint8(preview_render(image01, pred, focus)),
               visualize.to_uint8(preview_render(image01, true_for_render, focus)),
               visualize.colorize_depth_m(pred, near, far),
               visualize.colorize_depth_m(gt, near, far)]
      path = out_dir / f"sample_{len(written)}.png"
      cv2.imwrite(str(path), visualize.grid([tiles])[..., ::-1])
      written.append(path)
  return written


def _check_finite(step, host_metrics, config, manager, progress):
  """Stops (TrainingDiverged) or warns ('skip') when step `step` was not finite."""
  if int(host_metrics.get("nonfinite", 0)) == 0:
    return
  bad = [k for k in ("g_loss", "g_l1", "g_gan", "g_bokeh", "d_loss", "d_real", "d_fake")
         if k in host_metrics and not np.isfinite(host_metrics[k])]
  what = f"non-finite {', '.join(bad)}" if bad else "non-finite gradients"
  if config.on_nonfinite == "skip":
    progress.message(f"warning: step {step}: {what}; update skipped (on_nonfinite='skip').")
    return
  manager.wait_until_finished()  # Checkpoints saved so far hold only finite, checked steps.
  last = manager.latest_step()
  kept = (f"the last good checkpoint is step {last} in {manager.directory}" if last is not None
          else "no checkpoint was saved yet")
  raise TrainingDiverged(
      f"Training stopped at step {step}: {what}. The state was not updated and {kept}. Lower "
      "--config.learning_rate, check the data, or set --config.on_nonfinite=skip to skip such "
      "steps.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains (resuming from W/checkpoints if present), evaluates periodically, writes samples.

  Returns the final TrainState. Summaries go to W (TensorBoard), W/metrics.jsonl and stdout.
  """
  validate_config(config)
  is_chief = jax.process_index() == 0
  workdir = prepare_workdir(workdir, config)
  mesh = make_mesh()
  leftovers = checkpointing.incomplete_checkpoints(workdir)
  manager = checkpointing.make_manager(workdir, config.keep_checkpoints)  # Removes leftovers.
  try:
    return _train_with_manager(config, workdir, manager, mesh, is_chief, leftovers)
  finally:
    manager.close()  # Also on errors: an unclosed manager's threads print tracebacks at exit.


def _train_with_manager(config, workdir, manager, mesh, is_chief, leftovers):
  """train_and_evaluate once W/checkpoints is open (the caller closes `manager`)."""
  from dofjax import input_pipeline
  progress = summaries.Progress(config.num_train_steps, 0, enabled=is_chief)
  if leftovers:
    progress.message(f"warning: removing {len(leftovers)} incomplete checkpoint folder(s) that an "
                     f"interrupted save left in {workdir}/checkpoints: {', '.join(leftovers)}.")
  checkpointing.record_config(workdir, config, bool(manager.all_steps()), write=is_chief)
  input_pipeline.prepare(config)
  input_pipeline.prepare(config, input_pipeline.eval_dataset(config))  # Fails before training.

  init_rng, train_rng, eval_rng = jax.random.split(jax.random.key(config.seed), 3)
  start, state, data_state = checkpointing.restore_latest(
      manager, abstract_state(config, mesh), log=progress.message, move_unusable=True)
  if state is None:
    start, state = 0, init_state_on_mesh(config, init_rng, mesh)
  else:
    progress.message(f"Resuming from the checkpoint at step {start} in {workdir}/checkpoints.")
  train_iter = input_pipeline.create_train_iterator(config)
  local_data_state = checkpointing.local_process_state(data_state)
  if local_data_state is not None:
    train_iter.set_state(local_data_state)
  elif data_state:
    progress.message(f"warning: the checkpoint's data position was saved by "
                     f"{data_state.get('process_count')} processes, now there are "
                     f"{jax.process_count()}; the data order restarts from the beginning.")
  eval_fn = compile_eval_step(config, mesh)
  if config.parallelism == "pmap":
    if config.batch_size % jax.local_device_count():
      raise errors.UserError(f"batch_size={config.batch_size} must split over the "
                             f"{jax.local_device_count()} local devices for pmap.")
    pmapped = compile_train_step_pmap(config)
    state = replicate(state)
    train_fn = lambda st, local, rng: pmapped(st, split_for_devices(local), rng)  # noqa: E731
    plain_state = unreplicate  # Checkpoints and evaluation see one copy.
  else:
    jitted = compile_train_step(config, mesh)
    train_fn = lambda st, local, rng: jitted(st, global_batch(local, mesh), rng)  # noqa: E731
    plain_state = lambda st: st  # noqa: E731
  writer = summaries.SummaryWriter(workdir, enabled=is_chief)
  progress = summaries.Progress(config.num_train_steps, start, enabled=is_chief)
  total = config.num_train_steps

  def save(step, force=False):
    checkpointing.save(manager, step, plain_state(state),
                       checkpointing.gather_process_states(train_iter.get_state()), force=force)

  def run_eval(step):
    metrics, rows = evaluate(plain_state(state), config, config.eval_split, eval_fn, mesh,
                             eval_rng, num_images=config.num_image_summaries)
    writer.scalars(step, "validation", metrics)
    if rows:
      from dofjax import visualize
      writer.image(step, "validation/input|pred|true|dof", visualize.grid(rows))
    progress.message(f"eval step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    progress.steps_per_second(step)  # Restart the steps/s clock: evaluation is not training.

  pending = None
  stopped_by = None
  with _StopRequest() as stop:
    for step in range(start, total):
      state, metrics = train_fn(state, next(train_iter), train_rng)
      if config.parallelism == "pmap":
        metrics = unreplicate(metrics)
      done = step + 1
      if pending is not None:  # The previous step's metrics: the host never waits on this one.
        _log_train(pending, config, writer, progress, manager, first=(pending[0] == start + 1))
      pending = (done, metrics)
      preempted = stop.signal_name is not None or manager.reached_preemption(done)
      if done % config.checkpoint_every_steps == 0 or done == total or preempted:
        _log_train(pending, config, writer, progress, manager, first=(done == start + 1))
        pending = None
        save(done, force=preempted)
      if done == total or (done % config.eval_every_steps == 0 and not preempted):
        run_eval(done)  # A preempted run leaves at once: its grace period is short.
      if preempted:
        stopped_by = stop.signal_name or "preemption notice"
        break
  if pending is not None:
    _log_train(pending, config, writer, progress, manager)
  state = plain_state(state)
  manager.wait_until_finished()
  writer.flush()
  skips = int(state.nonfinite_skips)
  if skips:
    progress.message(f"warning: {skips} update(s) with non-finite losses or gradients were "
                     "skipped in this training run so far (on_nonfinite='skip').")
  if stopped_by:
    progress.message(
        f"Stopped by {stopped_by} at step {int(state.step)}; checkpoint saved in "
        f"{workdir}/checkpoints/{int(state.step)}. Run the same command again to resume.")
  elif is_chief and start < total and config.num_samples > 0:
    paths = write_samples(state, config, workdir, mesh, eval_rng)
    if paths:
      progress.message(f"Depth-of-field samples written to {workdir}/samples/ ({len(paths)} "
                       "images: input | render from predicted depth | render from true depth | "
                       "predicted depth | true depth).")
  elif start >= total:
    progress.message(f"Already trained to step {start} (num_train_steps={total}); nothing to do. "
                     "Raise --config.num_train_steps to train longer.")
  writer.close()
  return state


def _log_train(pending, config, writer, progress, manager, first=False):
  step, metrics = pending
  host = _fetch(metrics)
  _check_finite(step, host, config, manager, progress)
  if step % config.log_every_steps == 0 or step == config.num_train_steps or first:
    # The first step includes compilation: its rate is not reported, the clock starts after it.
    rate = progress.steps_per_second(step)
    scalars = {k: v for k, v in host.items() if k != "nonfinite"}
    if first:
      rate = float("nan")
    else:
      scalars["steps_per_second"] = rate
    writer.scalars(step, "train", scalars)
    shown = {k: host[k] for k in ("g_loss", "g_l1", "g_gan", "d_loss") if k in host}
    progress.line(step, shown, rate)


def evaluate_checkpoint(config, workdir, split="test"):
  """Evaluates the latest checkpoint in W on `split` (all of it); writes W/eval_<split>.json."""
  import json
  from dofjax import input_pipeline
  validate_config(config)
  mesh = make_mesh()
  if checkpointing.latest_step(workdir) is None:
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints; train first with the same "
                           "--workdir.")
  manager = checkpointing.make_manager(workdir, config.keep_checkpoints, read_only=True)
  try:
    step, state, _ = checkpointing.restore_latest(manager, abstract_state(config, mesh))
  finally:
    manager.close()
  if state is None:
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints could be restored.")
  input_pipeline.prepare(config, input_pipeline.eval_dataset(config))
  eval_rng = jax.random.split(jax.random.key(config.seed), 3)[2]
  metrics, _ = evaluate(state, config, split, compile_eval_step(config, mesh), mesh, eval_rng,
                        num_batches=-1)
  result = {"step": int(step), "split": split, "dataset": input_pipeline.eval_dataset(config),
            "test_time": config.test_time, "metrics": metrics}
  if jax.process_index() == 0:
    checkpointing.atomic_write_text(epath.Path(workdir) / f"eval_{split}.json",
                                    json.dumps(result, indent=2, sort_keys=True))
  return result
