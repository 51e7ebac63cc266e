"""Pix2Pix losses: GAN losses on discriminator logits, the masked L1, and the ablation arms.

Arms (config.loss.arm):
  'l1'      -- lambda * L1 only; no discriminator is built or stepped.
  'cgan'    -- the conditional GAN loss only.
  'cgan_l1' -- cGAN + lambda * L1, the paper's default (lambda = 100).
Any arm may add a scale-invariant term on log depth (loss.si_log_weight > 0,
`scale_invariant_log_l1`), gradient matching on log depth (loss.log_gradient_weight > 0,
`log_gradient_l1`), and the bokeh term (loss.bokeh_weight > 0: L1 between depth-of-field
renders from predicted and true depth, through the differentiable renderer); an ablation report
counts a run with the bokeh term as its own arm, '<arm>_bokeh' (`ablation_arm`).
"""

import jax
import jax.numpy as jnp
import optax

from dofjax import errors

ARMS = ("l1", "cgan", "cgan_l1")
BOKEH_SUFFIX = "_bokeh"
# The arms of an ablation report, in report order, and their names in reports and figures.
REPORT_ARMS = ARMS + tuple(a + BOKEH_SUFFIX for a in ARMS)
ARM_LABELS = {"l1": "L1", "cgan": "cGAN", "cgan_l1": "cGAN+L1"}
ARM_LABELS.update({a + BOKEH_SUFFIX: ARM_LABELS[a] + "+bokeh" for a in ARMS})
GAN_MODES = ("vanilla", "lsgan")


def check_loss_config(loss_config) -> None:
  """Raises UserError for an unknown arm or GAN mode, or a negative weight."""
  if loss_config.arm not in ARMS:
    raise errors.UserError(
        f"loss.arm={loss_config.arm!r} is not one of {', '.join(map(repr, ARMS))}.")
  if loss_config.gan_mode not in GAN_MODES:
    raise errors.UserError(
        f"loss.gan_mode={loss_config.gan_mode!r} is not one of "
        f"{', '.join(map(repr, GAN_MODES))}.")
  for name in ("lambda_l1", "bokeh_weight", "si_log_weight", "log_gradient_weight"):
    if loss_config[name] < 0:
      raise errors.UserError(f"loss.{name}={loss_config[name]} must be >= 0; set "
                             f"--config.loss.{name}=0 to turn the term off.")


def ablation_arm(loss_config) -> str:
  """The arm a run counts as in an ablation report: loss.arm, plus '_bokeh' when
  loss.bokeh_weight > 0. loss_config: the config's `loss` (a ConfigDict or its JSON dict)."""
  bokeh = float(loss_config.get("bokeh_weight", 0.0) or 0.0) > 0
  return loss_config["arm"] + (BOKEH_SUFFIX if bokeh else "")


def uses_discriminator(arm: str) -> bool:
  """True for the arms with a GAN term ('cgan', 'cgan_l1')."""
  return arm in ("cgan", "cgan_l1")


def uses_l1(arm: str) -> bool:
  """True for the arms with an L1 term ('l1', 'cgan_l1')."""
  return arm in ("l1", "cgan_l1")


def gan_loss(logits, target_is_real: bool, mode: str = "vanilla"):
  """Mean GAN loss of discriminator logits (any shape) against an all-real or all-fake label.

  'vanilla': binary cross-entropy on logits (the reference's BCEWithLogitsLoss);
  'lsgan': mean squared error to 1 (real) or 0 (fake). Returns a float32 scalar.
  """
  logits = logits.astype(jnp.float32)
  label = jnp.full_like(logits, 1.0 if target_is_real else 0.0)
  if mode == "vanilla":
    return optax.sigmoid_binary_cross_entropy(logits, label).mean()
  if mode == "lsgan":
    return jnp.mean((logits - label) ** 2)
  raise errors.UserError(f"Unknown GAN mode {mode!r}; use one of {GAN_MODES}.")


def masked_l1(pred, target, mask, axis_name=None):
  """Mean |pred - target| over pixels where mask is 1; all (N,H,W,C) float. Scalar float32.

  With an all-ones mask this is the reference's L1Loss (a mean over all pixels). An all-zero
  mask gives 0 (not NaN). Under pmap pass `axis_name`: the denominator is then the valid-pixel
  count over all replicas divided by their number, so that the replicas' mean of this loss (and
  of its gradients) is the global masked mean, whatever each replica's share of valid pixels.
  """
  diff = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)) * mask
  count = mask.sum()
  if axis_name is not None:
    count = jax.lax.stop_gradient(jax.lax.pmean(count, axis_name))
  return diff.sum() / jnp.maximum(count, 1.0)


def scale_invariant_log_l1(pred_depth, true_depth, mask, axis_name=None):
  """Scale-invariant L1 on log depth: per image, the masked mean of |g - mean(g)| with
  g = log(pred) - log(true) over the valid pixels, averaged over the images that have any.

  pred_depth, true_depth: (N,H,W,C) metres (> 0 where mask is 1); mask (N,H,W,C) 1 = valid.
  Multiplying one image's prediction by any constant leaves its term unchanged: it scores the
  relative depth that median-scaled metrics reward, not the absolute scale. Scalar float32
  (0 for an all-zero mask). Under pmap (`axis_name`) the count of images is averaged over the
  replicas, as in `masked_l1`, so the replicas' mean is the term of the whole global batch.
  """
  mask = mask.astype(jnp.float32)
  safe = lambda d: jnp.log(jnp.maximum(jnp.where(mask > 0, d.astype(jnp.float32), 1.0), 1e-3))
  g = (safe(pred_depth) - safe(true_depth)) * mask
  axes = tuple(range(1, g.ndim))
  count = mask.sum(axes)
  mean = g.sum(axes) / jnp.maximum(count, 1.0)
  centred = jnp.abs(g - mean.reshape((-1,) + (1,) * (g.ndim - 1))) * mask
  per_image = centred.sum(axes) / jnp.maximum(count, 1.0)
  return _mean_over_images(per_image, count > 0, axis_name)


def _mean_over_images(per_image, has, axis_name):
  """Mean of per_image (N,) over the images where `has` (N,) is true. Under pmap the count of
  such images is averaged over the replicas, so that the replicas' mean is the global batch's."""
  has = has.astype(jnp.float32)
  num_images = has.sum()
  if axis_name is not None:
    num_images = jax.lax.stop_gradient(jax.lax.pmean(num_images, axis_name))
  # Not max(num_images, 1): under pmap the replicas' mean count can be a fraction of one image.
  return (per_image * has).sum() / jnp.where(num_images > 0, num_images, 1.0)


def log_gradient_l1(pred_depth, true_depth, mask, num_scales: int = 4, axis_name=None):
  """Multi-scale gradient matching on log depth (MegaDepth's scale-invariant gradient term).

  With r = log(pred) - log(true), each scale s = 0..num_scales-1 keeps every 2^s-th pixel and
  scores |r[y, x+1] - r[y, x]| and |r[y+1, x] - r[y, x]| over the neighbour pairs whose two
  pixels are valid; per image, the sum over scales of the mean over that scale's pairs, averaged
  over the images that have any pair (under pmap as in `scale_invariant_log_l1`). Like
  `scale_invariant_log_l1` it ignores one constant factor per image; it rewards depth edges and
  slopes in the right places. pred_depth, true_depth (N,H,W,C) metres; mask (N,H,W,C) 1 = valid.
  Scalar float32 (0 when no image has a valid pair).
  """
  mask = mask.astype(jnp.float32)
  safe = lambda d: jnp.log(jnp.maximum(jnp.where(mask > 0, d.astype(jnp.float32), 1.0), 1e-3))
  r = safe(pred_depth) - safe(true_depth)
  per_image = jnp.zeros(r.shape[:1], jnp.float32)
  has = jnp.zeros(r.shape[:1], bool)
  for scale in range(num_scales):
    step = 2 ** scale
    rs, ms = r[:, ::step, ::step], mask[:, ::step, ::step]
    mx, my = ms[:, :, 1:] * ms[:, :, :-1], ms[:, 1:] * ms[:, :-1]
    total = ((jnp.abs(rs[:, :, 1:] - rs[:, :, :-1]) * mx).sum((1, 2, 3))
             + (jnp.abs(rs[:, 1:] - rs[:, :-1]) * my).sum((1, 2, 3)))
    pairs = mx.sum((1, 2, 3)) + my.sum((1, 2, 3))
    per_image = per_image + total / jnp.maximum(pairs, 1.0)
    has = has | (pairs > 0)
  return _mean_over_images(per_image, has, axis_name)
