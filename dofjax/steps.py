"""The pure steps: one Pix2Pix training iteration, a test-time prediction, one evaluation batch.

`train_step` does what the reference pix2pix does each iteration: one generator forward; a
discriminator update on (input, fake) and (input, real) as two separate passes, loss 0.5 * (fake
+ real); then the generator update against the *updated* discriminator, GAN + lambda * L1. The
generator forward is not repeated: its VJP is kept and pulled back with the gradient of the
generator loss with respect to its output.

The same function is compiled with jax.jit (batch sharded over a mesh) and with jax.pmap
(`axis_name` set: gradients, losses and BatchNorm statistics averaged over replicas); see
`dofjax.parallel`. Nothing here depends on which.

Batches are dicts of NHWC float32 arrays: 'image' (N,S,S,3) RGB in [-1, 1], 'target' (N,S,S,1)
inverse-depth code in [-1, 1] (dofjax.depth), 'mask' (N,S,S,1) 1 where depth is valid, 'depth'
(N,S,S,1) metres; evaluation batches add native-resolution 'image_full' ([0, 1]), 'depth_full'
(metres, 0 = invalid) and 'example_mask' (N,), 0 for padding examples.
"""

import jax
import jax.numpy as jnp

from dofjax import depth as depth_lib
from dofjax import dof
from dofjax import losses
from dofjax import metrics as metrics_lib
from dofjax import optim
from dofjax import state as state_lib

# The renderer's own error against thin-lens truth (fed the true depth): a reference, not a
# score of the model.
THIN_LENS_FLOOR_KEYS = ("thin_lens_floor_psnr", "thin_lens_floor_ssim")
# The losses a training step reports (those of the arm in use; 'g_l1' always).
LOSS_KEYS = ("g_loss", "g_l1", "g_gan", "g_si_log", "g_log_grad", "g_bokeh", "d_loss", "d_real",
             "d_fake")


def _all_finite(tree):
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
  return jnp.stack(leaves).all() if leaves else jnp.array(True)


def _keep_if(ok, new, old):
  return jax.tree_util.tree_map(lambda n, o: jnp.where(ok, n, o), new, old)


def _pmean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _apply_update(config, net, grads, new_batch_stats, ok):
  """Adam(schedule, b1, b2, eps 1e-8) as the reference; keeps the old state everywhere when `ok`
  is False (non-finite step)."""
  params, opt_state = optim.adam_update(net.params, grads, net.opt_state,
                                        learning_rate=optim.learning_rate_schedule(config),
                                        b1=config.b1, b2=config.b2, eps=1e-8, apply=ok)
  return state_lib.NetState(params=params, opt_state=opt_state,
                            batch_stats=_keep_if(ok, new_batch_stats, net.batch_stats))


def _disc_update(disc, net, image, target, fake, config, axis_name):
  """The discriminator step. Returns (new NetState, ok, {'d_loss', 'd_real', 'd_fake'})."""
  real_pair = jnp.concatenate([image, target], axis=-1)
  fake_pair = jnp.concatenate([image, jax.lax.stop_gradient(fake)], axis=-1)
  gan_mode = config.loss.gan_mode

  def loss_fn(params):
    logits_fake, m = disc.apply({"params": params, "batch_stats": net.batch_stats}, fake_pair,
                                train=True, mutable=["batch_stats"])
    logits_real, m = disc.apply({"params": params, "batch_stats": m["batch_stats"]}, real_pair,
                                train=True, mutable=["batch_stats"])
    loss_fake = losses.gan_loss(logits_fake, False, gan_mode)
    loss_real = losses.gan_loss(logits_real, True, gan_mode)
    return 0.5 * (loss_fake + loss_real), (m["batch_stats"], loss_fake, loss_real)

  (d_loss, (stats, d_fake, d_real)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      net.params)
  grads = _pmean(grads, axis_name)
  ok = jnp.isfinite(d_loss) & _all_finite(grads)
  new_net = _apply_update(config, net, grads, _pmean(stats, axis_name), ok)
  return new_net, ok, {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake}


def _generator_loss(fake_code, batch, disc, disc_net, config, axis_name):
  """Generator loss of the arm at its output code. Returns (total, (terms, disc BN stats))."""
  terms, total, stats = {}, jnp.zeros((), jnp.float32), None
  if disc is not None:
    pair = jnp.concatenate([batch["image"], fake_code], axis=-1)
    logits, m = disc.apply({"params": disc_net.params, "batch_stats": disc_net.batch_stats},
                           pair, train=True, mutable=["batch_stats"])
    stats = m["batch_stats"]
    terms["g_gan"] = losses.gan_loss(logits, True, config.loss.gan_mode)
    total = total + terms["g_gan"]
  l1 = losses.masked_l1(fake_code, batch["target"], batch["mask"], axis_name)
  if losses.uses_l1(config.loss.arm):
    total = total + config.loss.lambda_l1 * l1
  terms["g_l1"] = l1 if losses.uses_l1(config.loss.arm) else jax.lax.stop_gradient(l1)
  fake_depth = depth_lib.decode_depth(fake_code, config.depth_near_m, config.depth_far_m)
  if config.loss.si_log_weight > 0:
    terms["g_si_log"] = losses.scale_invariant_log_l1(fake_depth, batch["depth"], batch["mask"],
                                                      axis_name)
    total = total + config.loss.si_log_weight * terms["g_si_log"]
  if config.loss.log_gradient_weight > 0:
    terms["g_log_grad"] = losses.log_gradient_l1(fake_depth, batch["depth"], batch["mask"],
                                                 axis_name=axis_name)
    total = total + config.loss.log_gradient_weight * terms["g_log_grad"]
  if config.loss.bokeh_weight > 0:
    terms["g_bokeh"] = dof.bokeh_loss(
        (batch["image"] + 1.0) * 0.5, fake_depth[..., 0],
        batch["depth"][..., 0] * batch["mask"][..., 0])
    total = total + config.loss.bokeh_weight * terms["g_bokeh"]
  return total, (terms, stats)


def train_step(state, batch, rng, *, config, axis_name=None):
  """One Pix2Pix iteration. Pure: (TrainState, batch, rng) -> (new state, dict of scalars).

  `rng` is the run's base key; the step folds in state.step, so a resumed run draws the same
  dropout masks. With `axis_name` (pmap), gradients, losses and BatchNorm statistics are averaged
  over that axis. A step whose losses or gradients are not finite leaves the state unchanged and
  reports metrics['nonfinite'] = 1.
  """
  gen, disc = state_lib.make_models(config, axis_name)
  dropout_rng = jax.random.fold_in(rng, state.step)
  if axis_name is not None:
    dropout_rng = jax.random.fold_in(dropout_rng, jax.lax.axis_index(axis_name))

  def gen_forward(params):
    out, mutated = gen.apply({"params": params, "batch_stats": state.gen.batch_stats},
                             batch["image"], train=True, rngs={"dropout": dropout_rng},
                             mutable=["batch_stats"])
    return out, mutated["batch_stats"]

  fake, gen_vjp, gen_batch_stats = jax.vjp(gen_forward, state.gen.params, has_aux=True)
  metrics, ok, new_disc = {}, jnp.array(True), None
  if disc is not None:
    new_disc, ok, metrics = _disc_update(disc, state.disc, batch["image"], batch["target"], fake,
                                         config, axis_name)
  (g_loss, (g_terms, disc_stats)), d_fake_code = jax.value_and_grad(
      _generator_loss, has_aux=True)(fake, batch, disc, new_disc, config, axis_name)
  (g_grads,) = gen_vjp(d_fake_code)
  g_grads = _pmean(g_grads, axis_name)
  ok = ok & jnp.isfinite(g_loss) & _all_finite(g_grads)
  new_gen = _apply_update(config, state.gen, g_grads, _pmean(gen_batch_stats, axis_name), ok)
  if disc is not None:
    # The G step's D pass runs in train mode as in the reference, so its BN statistics move too.
    new_disc = new_disc.replace(batch_stats=_keep_if(ok, _pmean(disc_stats, axis_name),
                                                     new_disc.batch_stats))
  metrics = _pmean({**metrics, "g_loss": g_loss, **g_terms}, axis_name)
  metrics["learning_rate"] = optim.learning_rate_schedule(config)(state.step)
  metrics["nonfinite"] = 1 - ok.astype(jnp.int32)
  gen_ema = state.gen_ema
  if gen_ema is not None:
    gen_ema = _keep_if(ok, state_lib.ema_update(gen_ema, new_gen, state.step, config.ema_decay),
                       gen_ema)
  new_state = state_lib.TrainState(step=state.step + 1, gen=new_gen, disc=new_disc,
                                   nonfinite_skips=state.nonfinite_skips + metrics["nonfinite"],
                                   gen_ema=gen_ema)
  return new_state, metrics


def predict_code(gen_state, image, rng, *, config):
  """Generator output (N,S,S,1) code in [-1, 1] for images (N,S,S,3) in [-1, 1], at test time,
  with the weights `gen_state` (.params, .batch_stats; see state.prediction_weights).

  config.test_time decides how: 'standard' (BatchNorm running statistics, no dropout) or 'paper'
  (the reference's test mode: batch statistics and dropout, as pix2pix does at test time).
  """
  gen, _ = state_lib.make_models(config)
  variables = {"params": gen_state.params, "batch_stats": gen_state.batch_stats}
  if config.test_time == "paper":
    out, _ = gen.apply(variables, image, train=True, rngs={"dropout": rng},
                       mutable=["batch_stats"])
    return out
  return gen.apply(variables, image, train=False)


def thin_lens_metrics(batch, pred_full_m, max_radius):
  """Bokeh error against the exact thin-lens ground truth (synthetic_rgbd/dof*), per image.

  Renders the native-resolution photo ('image_full') with the lens and focus of its ground
  truth ('dof_full', 'dof_focus_disparity', 'dof_blur_scale_px') from the predicted depth
  pred_full_m (N, H, W) metres, and, for reference, from the true depth ('depth_full'; invalid
  pixels take the prediction), and compares each with the ground truth. max_radius: the layer
  plan's largest radius in px (static: one render program per value).
  Returns {'bokeh_psnr_thin_lens', 'bokeh_ssim_thin_lens' (render from predicted depth),
  'thin_lens_floor_psnr', 'thin_lens_floor_ssim' (from true depth: the renderer's own error),
  'valid'}, each (N,).

  Called outside jit, on concrete (possibly sharded) arrays: it runs three compiled programs, the
  disparities, the render (`dof.render_disparity`'s own program, once per depth) and the scores.
  Compiled as one program with the scores (or inside eval_step), XLA:CPU ran it about 40x
  slower (60 s instead of 1.5 s for eight 192x256 frames).
  """
  pred_disparity, floor_disparity = _thin_lens_disparities(batch["depth_full"], pred_full_m)

  def render(disparity):
    return dof.render_disparity(batch["image_full"], disparity,
                                focus_disparity=batch["dof_focus_disparity"],
                                blur_scale_px=batch["dof_blur_scale_px"],
                                max_radius=float(max_radius))

  return _thin_lens_scores(render(pred_disparity), render(floor_disparity), batch["dof_full"])


@jax.jit
def _thin_lens_disparities(depth_full, pred_full_m):
  """(N, H, W, 1) true depth (0 = invalid) and (N, H, W) predicted depth, metres -> disparities
  (1/m) of the prediction and of the true depth with its holes taking the prediction."""
  gt = depth_full[..., 0]
  floor = jnp.where(gt > 0, gt, pred_full_m)
  return 1.0 / jnp.maximum(pred_full_m, 1e-3), 1.0 / jnp.maximum(floor, 1e-3)


@jax.jit
def _thin_lens_scores(pred_render, floor_render, truth):
  """The renders from predicted and from true depth against the thin-lens truth, each
  (N, H, W, 3) in [0, 1] -> thin_lens_metrics' dict."""
  pred = metrics_lib.bokeh_metrics_per_image(pred_render, truth)
  floor = metrics_lib.bokeh_metrics_per_image(floor_render, truth)
  floor_psnr, floor_ssim = THIN_LENS_FLOOR_KEYS
  return {"bokeh_psnr_thin_lens": pred["bokeh_psnr"], "bokeh_ssim_thin_lens": pred["bokeh_ssim"],
          floor_psnr: floor["bokeh_psnr"], floor_ssim: floor["bokeh_ssim"],
          "valid": pred["valid"]}


def _code_l1(code, batch):
  mask = batch["mask"]
  valid_pixels = mask.sum((1, 2, 3))
  l1 = (jnp.abs(code - batch["target"]) * mask).sum((1, 2, 3))
  return {"l1_code": l1 / jnp.maximum(valid_pixels, 1.0),
          "valid": (valid_pixels > 0).astype(jnp.float32)}


def _preview_bokeh(code, batch, config):
  """Bokeh metrics of DoF previews at the network's resolution: predicted vs true depth, same
  lens and focus (the median true depth)."""
  mask = batch["mask"][..., 0]
  pred_m = depth_lib.decode_depth(code[..., 0], config.depth_near_m, config.depth_far_m)
  true_m = jnp.where(mask > 0, batch["depth"][..., 0], pred_m)
  focus_m = 1.0 / dof.focus_disparity_from_depth(batch["depth"][..., 0] * mask)
  image01 = (batch["image"] + 1.0) * 0.5
  return metrics_lib.bokeh_metrics_per_image(dof.render_for_preview(image01, pred_m, focus=focus_m),
                                             dof.render_for_preview(image01, true_m, focus=focus_m))


def eval_step(state, batch, rng, *, config):
  """Per-batch sums of per-image metrics, grouped, the predicted code and the predicted depth.

  Depth and boundary metrics compare the prediction, resized to the native ground truth
  ('depth_full'), with it; the depth metrics also median-scaled, and beside them the
  constant-depth baseline's (`metrics.constant_baseline_metrics_per_image`). The bokeh metrics
  compare DoF renders at the network's resolution made with predicted and with true depth (same
  lens, same focus). The bokeh error against thin-lens ground truth is `thin_lens_metrics`, run
  apart on the returned depth.
  Returns ({group: metrics.sum_per_image dict (weighted by batch['example_mask'])},
  predicted code (N,S,S,1), predicted depth at the ground truth's resolution (N,H,W) metres).
  Accumulate groups over batches and finish with metrics.finalize_sums.
  """
  near, far = config.depth_near_m, config.depth_far_m
  code = predict_code(state_lib.prediction_weights(state), batch["image"], rng, config=config)
  gt_full = batch["depth_full"][..., 0]
  code_full = jax.image.resize(code, gt_full.shape + (1,), "bilinear")[..., 0]
  pred_full = depth_lib.decode_depth(code_full, near, far)
  groups = {
      "code": _code_l1(code, batch),
      "depth": metrics_lib.depth_metrics_per_image(pred_full, gt_full, max_depth=far),
      "depth_median": metrics_lib.median_scaled_metrics_per_image(pred_full, gt_full,
                                                                  max_depth=far),
      "constant": metrics_lib.constant_baseline_metrics_per_image(gt_full, max_depth=far),
      "boundary": metrics_lib.boundary_metrics_per_image(pred_full, gt_full, max_depth=far),
      "bokeh": _preview_bokeh(code, batch, config),
  }
  weight = batch["example_mask"].astype(jnp.float32)
  return {k: metrics_lib.sum_per_image(v, weight) for k, v in groups.items()}, code, pred_full
