"""Loss values on hand-computed cases."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from dofjax import errors
from dofjax import losses


def test_vanilla_gan_loss_is_bce_on_logits():
  logits = jnp.array([0.0, 2.0, -1.0])
  real = float(losses.gan_loss(logits, True, "vanilla"))
  fake = float(losses.gan_loss(logits, False, "vanilla"))
  expected_real = np.mean([math.log(2), math.log1p(math.exp(-2)), math.log1p(math.exp(1))])
  expected_fake = np.mean([math.log(2), math.log1p(math.exp(2)), math.log1p(math.exp(-1))])
  assert real == pytest.approx(expected_real, rel=1e-6)
  assert fake == pytest.approx(expected_fake, rel=1e-6)


def test_lsgan_loss_is_mean_squared_error_to_label():
  logits = jnp.array([0.5, 1.0, 3.0])
  assert float(losses.gan_loss(logits, True, "lsgan")) == pytest.approx((0.25 + 0 + 4) / 3)
  assert float(losses.gan_loss(logits, False, "lsgan")) == pytest.approx((0.25 + 1 + 9) / 3)


def test_masked_l1_averages_over_valid_pixels_only():
  pred = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
  target = jnp.array([0.0, 0.0, 0.0, 100.0]).reshape(1, 2, 2, 1)
  mask = jnp.array([1.0, 1.0, 1.0, 0.0]).reshape(1, 2, 2, 1)
  assert float(losses.masked_l1(pred, target, mask)) == pytest.approx(2.0)
  assert float(losses.masked_l1(pred, target, jnp.ones_like(mask))) == pytest.approx(
      (1 + 2 + 3 + 96) / 4)
  assert float(losses.masked_l1(pred, target, jnp.zeros_like(mask))) == 0.0


def test_arms():
  assert not losses.uses_discriminator("l1") and losses.uses_l1("l1")
  assert losses.uses_discriminator("cgan") and not losses.uses_l1("cgan")
  assert losses.uses_discriminator("cgan_l1") and losses.uses_l1("cgan_l1")


def test_unknown_arm_is_a_clear_error():
  from configs import base
  c = base.get_config()
  c.loss.arm = "wgan"
  with pytest.raises(errors.UserError, match="loss.arm='wgan' is not one of 'l1', 'cgan'"):
    losses.check_loss_config(c.loss)


def test_scale_invariant_log_l1_ignores_each_images_scale():
  rng = np.random.default_rng(0)
  true = jnp.asarray(rng.uniform(0.8, 6.0, (2, 4, 4, 1)), jnp.float32)
  mask = jnp.ones_like(true).at[0, 0, 0, 0].set(0.0)
  scales = jnp.array([0.5, 3.0]).reshape(2, 1, 1, 1)
  assert float(losses.scale_invariant_log_l1(true * scales, true, mask)) == pytest.approx(
      0.0, abs=1e-6)
  # Not invariant to a shift: two pixels at 1 m and 2 m predicted at 2 m and 3 m.
  pred = jnp.array([2.0, 3.0]).reshape(1, 1, 2, 1)
  true2 = jnp.array([1.0, 2.0]).reshape(1, 1, 2, 1)
  g = np.log([2.0, 1.5])
  expected = np.abs(g - g.mean()).mean()
  assert float(losses.scale_invariant_log_l1(pred, true2, jnp.ones_like(pred))) == (
      pytest.approx(expected, rel=1e-5))
  # Invalid pixels (depth 0 under a 0 mask) add nothing and give no NaN; no valid pixel: 0.
  assert float(losses.scale_invariant_log_l1(pred, true2 * 0, jnp.zeros_like(pred))) == 0.0


def test_log_depth_terms_enter_the_generator_loss():
  from configs import tiny
  from dofjax import depth as depth_lib
  from dofjax import steps
  config = tiny.get_config()
  config.loss.arm = "l1"
  config.loss.si_log_weight = 3.0
  rng = np.random.default_rng(1)
  depth_m = rng.uniform(0.7, 5.0, (2, 8, 8, 1)).astype(np.float32)
  batch = {"image": np.zeros((2, 8, 8, 3), np.float32), "depth": depth_m,
           "target": depth_lib.encode_depth(depth_m, config.depth_near_m, config.depth_far_m),
           "mask": np.ones_like(depth_m)}
  fake = jnp.asarray(rng.uniform(-0.9, 0.9, depth_m.shape), jnp.float32)
  loss = steps._generator_loss  # pylint: disable=protected-access
  total, (terms, _) = loss(fake, batch, None, None, config, None)
  assert float(terms["g_si_log"]) > 0
  assert float(total) == pytest.approx(
      100.0 * float(terms["g_l1"]) + 3.0 * float(terms["g_si_log"]), rel=1e-5)
  config.loss.si_log_weight = 0.0
  total0, (terms0, _) = loss(fake, batch, None, None, config, None)
  assert "g_si_log" not in terms0 and float(total0) == pytest.approx(100.0 * float(terms0["g_l1"]))
  assert "g_log_grad" not in terms0
  config.loss.log_gradient_weight = 5.0
  total, (terms, _) = loss(fake, batch, None, None, config, None)
  assert float(terms["g_log_grad"]) > 0
  assert float(total) == pytest.approx(
      100.0 * float(terms["g_l1"]) + 5.0 * float(terms["g_log_grad"]), rel=1e-5)


@pytest.mark.parametrize("name", ["si_log_weight", "log_gradient_weight"])
def test_negative_depth_term_weight_is_a_clear_error(name):
  from configs import base
  c = base.get_config()
  c.loss[name] = -1.0
  with pytest.raises(errors.UserError, match=rf"loss.{name}=-1.0 must be >= 0.*"
                                             rf"--config.loss.{name}=0"):
    losses.check_loss_config(c.loss)


def test_log_gradient_l1_by_hand_and_invariant_to_each_images_scale():
  # One row of four pixels, two scales: scale 0 pairs (0,1) (1,2) (2,3), scale 1 pair (0,2).
  true = jnp.array([1.0, 2.0, 4.0, 2.0]).reshape(1, 1, 4, 1)
  pred = jnp.array([1.0, 4.0, 4.0, 1.0]).reshape(1, 1, 4, 1)
  r = np.log([1.0, 2.0, 1.0, 0.5])
  scale0 = np.abs(np.diff(r)).mean()
  scale1 = abs(r[2] - r[0])
  got = float(losses.log_gradient_l1(pred, true, jnp.ones_like(pred), num_scales=2))
  assert got == pytest.approx(scale0 + scale1, rel=1e-5)
  # An invalid pixel (depth 0 under a 0 mask) drops both of its pairs, and gives no NaN.
  mask = jnp.array([1.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4, 1)
  got = float(losses.log_gradient_l1(pred, true.at[0, 0, 3, 0].set(0.0), mask, num_scales=2))
  assert got == pytest.approx(np.abs(np.diff(r[:3])).mean() + scale1, rel=1e-5)
  assert float(losses.log_gradient_l1(pred, true, jnp.zeros_like(mask))) == 0.0
  # Each image's prediction times its own constant: no gradient error at any scale.
  rng = np.random.default_rng(0)
  true = jnp.asarray(rng.uniform(0.8, 6.0, (2, 16, 16, 1)), jnp.float32)
  scales = jnp.array([0.5, 3.0]).reshape(2, 1, 1, 1)
  assert float(losses.log_gradient_l1(true * scales, true, jnp.ones_like(true))) == (
      pytest.approx(0.0, abs=1e-6))
  # A tilted prediction of a flat wall is penalised.
  wall = jnp.full((1, 16, 16, 1), 3.0)
  tilted = wall * jnp.linspace(1.0, 2.0, 16).reshape(1, 1, 16, 1)
  assert float(losses.log_gradient_l1(tilted, wall, jnp.ones_like(wall))) > 0.1
