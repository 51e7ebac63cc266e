"""Pix2Pix networks: reference parameter counts, shapes, receptive field, initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dofjax import errors
from dofjax import models


@pytest.fixture(autouse=True)
def _fast_random_init():
  """jax's non-partitionable threefry (what state.create_train_state uses) compiles weight
  initialisers several times faster on CPU."""
  with jax.threefry_partitionable(False):
    yield


def _init(module, rngs, x):
  """module.init(rngs, x, train=False) as one compiled program (op by op costs twice the CPU)."""
  return jax.jit(lambda r: module.init(r, x, train=False))(rngs)


def _param_count(module, shape):
  variables = jax.eval_shape(
      lambda: module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                          jnp.zeros(shape), train=False))
  return models.count_params(variables["params"])


def test_unet_256_parameter_count_matches_reference():
  assert _param_count(models.UNetGenerator(out_channels=1), (1, 256, 256, 3)) == 54_409_857
  assert _param_count(models.UNetGenerator(out_channels=3), (1, 256, 256, 3)) == 54_413_955


def test_patchgan_parameter_count_matches_reference():
  assert _param_count(models.PatchDiscriminator(), (1, 256, 256, 4)) == 2_766_657


def test_patchgan_output_is_30x30_for_256_input():
  d = models.PatchDiscriminator()
  out = jax.eval_shape(lambda: d.apply(d.init(jax.random.key(0), jnp.zeros((1, 256, 256, 4)),
                                              train=False), jnp.zeros((1, 256, 256, 4)),
                                       train=False))
  assert out.shape == (1, 30, 30, 1)


def _receptive_field(module, size, channels=4):
  """Width of the input region that influences the centre output logit (gradient support)."""
  x = jax.random.normal(jax.random.key(0), (1, size, size, channels))
  variables = _init(module, jax.random.key(1), x)
  out_shape = jax.eval_shape(lambda x: module.apply(variables, x, train=False), x).shape
  cy, cx = out_shape[1] // 2, out_shape[2] // 2
  grad = jax.jit(jax.grad(lambda x: module.apply(variables, x, train=False)[0, cy, cx, 0]))(x)
  support = np.nonzero(np.abs(np.asarray(grad[0])).sum(-1) > 0)
  return support[0].max() - support[0].min() + 1, support[1].max() - support[1].min() + 1


@pytest.mark.parametrize("n_layers, expected", [(3, 70), (1, 16), (0, 1)])
def test_patchgan_receptive_field_from_gradient_support(n_layers, expected):
  # Running-average BatchNorm is per-pixel affine, so the support is the true receptive field.
  d = models.PatchDiscriminator(ndf=4, n_layers=n_layers, norm="batch")
  assert _receptive_field(d, 128) == (expected, expected)


def test_generator_small_config_shapes_and_range():
  g = models.UNetGenerator(ngf=4, num_downs=5)
  x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3), minval=-1, maxval=1)
  v = _init(g, {"params": jax.random.key(1), "dropout": jax.random.key(2)}, x)
  y, _ = g.apply(v, x, train=True, rngs={"dropout": jax.random.key(3)}, mutable=["batch_stats"])
  assert y.shape == (2, 32, 32, 1)
  assert float(jnp.abs(y).max()) <= 1.0


def test_reference_initialisation_statistics():
  g = models.UNetGenerator(ngf=32, num_downs=5)
  v = _init(g, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  kernel = np.asarray(v["params"]["down_2"]["kernel"])
  assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
  scale = np.asarray(v["params"]["down_norm_2"]["BatchNorm_0"]["scale"])
  assert abs(scale.mean() - 1.0) < 0.01 and 0.01 < scale.std() < 0.03
  assert np.all(np.asarray(v["params"]["up_0"]["bias"]) == 0)
  assert "bias" not in v["params"]["down_2"]  # BatchNorm -> convs carry no bias.


def test_instance_norm_generator_has_biases_and_no_batch_stats():
  g = models.UNetGenerator(ngf=4, num_downs=5, norm="instance")
  v = _init(g, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  assert "bias" in v["params"]["down_2"]
  assert "batch_stats" not in v


def test_dropout_is_active_only_in_training():
  g = models.UNetGenerator(ngf=4, num_downs=6)
  x = jax.random.uniform(jax.random.key(0), (1, 64, 64, 3), minval=-1, maxval=1)
  v = _init(g, jax.random.key(1), x)
  evaluate = jax.jit(lambda v: g.apply(v, x, train=False))
  a = evaluate(v)
  b = evaluate(v)
  np.testing.assert_array_equal(a, b)
  train = jax.jit(lambda v, r: g.apply(v, x, train=True, rngs={"dropout": r},
                                       mutable=["batch_stats"])[0])
  t1 = train(v, jax.random.key(2))
  t2 = train(v, jax.random.key(3))
  assert float(jnp.abs(t1 - t2).max()) > 0


def test_bad_sizes_and_norms_raise_clear_errors():
  g = models.UNetGenerator(ngf=4, num_downs=5)
  with pytest.raises(errors.UserError, match="not divisible by 2\\*\\*model.num_downs = 32"):
    g.init(jax.random.key(0), jnp.zeros((1, 48, 48, 3)), train=False)
  with pytest.raises(errors.UserError, match="norm='group'"):
    models.UNetGenerator(norm="group").init(jax.random.key(0), jnp.zeros((1, 256, 256, 3)),
                                            train=False)
