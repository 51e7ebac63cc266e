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
