"""The pure train step: changes both networks, deterministic, reduces L1; arms; bad configs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from dofjax import depth as depth_lib
from dofjax import steps as steps_lib
from dofjax import state as state_lib
from dofjax import optim
from dofjax import config as config_lib
from dofjax import errors


def fixed_batch(config, seed=0):
  """A deterministic batch with a learnable image -> depth relation (depth from brightness)."""
  rng = np.random.default_rng(seed)
  s, n = config.image_size, config.batch_size
  image = rng.uniform(-1, 1, (n, s, s, 3)).astype(np.float32)
  depth_m = (1.0 + 3.0 * (image.mean(-1, keepdims=True) + 1.0)).astype(np.float32)
  depth_m[:, :2, :2] = 0.0  # a few invalid pixels
  target = depth_lib.encode_depth(depth_m, config.depth_near_m, config.depth_far_m)
  mask = depth_lib.valid_mask(depth_m, far=config.depth_far_m)
  return {"image": image, "depth": depth_m, "target": target.astype(np.float32), "mask": mask}


def _config(arm="cgan_l1"):
  c = tiny.get_config()
  c.loss.arm = arm
  return c


_COMPILED = {}


def _step(config):
  """The jitted train step of `config`, traced once per distinct config in this process."""
  key = config.to_json()
  if key not in _COMPILED:
    _COMPILED[key] = jax.jit(functools.partial(steps_lib.train_step, config=config))
  return _COMPILED[key]


_INITIAL = {}


def _initial_state(config):
  """create_train_state(config, key(config.seed)), computed once per distinct config (the step
  is not donating, so runs may share it)."""
  key = config.to_json()
  if key not in _INITIAL:
    _INITIAL[key] = state_lib.create_train_state(config, jax.random.key(config.seed))
  return _INITIAL[key]


def _run(config, steps, seed=0):
  state = _initial_state(config)
  step = _step(config)
  batch = fixed_batch(config, seed)
  history = []
  for _ in range(steps):
    state, metrics = step(state, batch, jax.random.key(7))
    history.append(jax.device_get(metrics))
  return state, history


def _max_abs_diff(a, b):
  return max(float(jnp.abs(x - y).max())
             for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_one_step_changes_both_networks_and_is_deterministic():
  config = _config("cgan_l1")
  state0 = _initial_state(config)
  s1, m1 = _run(config, 1)
  s2, m2 = _run(config, 1)
  assert _max_abs_diff(state0.gen.params, s1.gen.params) > 0
  assert _max_abs_diff(state0.disc.params, s1.disc.params) > 0
  assert _max_abs_diff(state0.gen.batch_stats, s1.gen.batch_stats) > 0
  assert _max_abs_diff(s1.gen.params, s2.gen.params) == 0
  assert _max_abs_diff(s1.disc.params, s2.disc.params) == 0
  assert int(s1.step) == 1
  for key in ("g_loss", "g_l1", "g_gan", "d_loss", "d_real", "d_fake", "learning_rate"):
    assert np.isfinite(m1[0][key]), key
  # G loss = GAN + lambda * L1, as in the reference.
  assert m1[0]["g_loss"] == pytest.approx(m1[0]["g_gan"] + 100.0 * m1[0]["g_l1"], rel=1e-5)


def test_l1_arm_builds_no_discriminator_takes_the_bokeh_term_and_reduces_the_l1():
  """The l1 arm (no discriminator) with a bokeh term (training through the renderer): the term
  enters the generator loss with its weight, and a few steps reduce the L1."""
  config = _config("l1")
  config.loss.bokeh_weight = 2.0
  config.model.dropout_rate = 0.0
  config.num_train_steps = config.lr_constant_steps = 100
  config.learning_rate = 1e-3
  state, history = _run(config, 15)
  assert state.disc is None
  assert "d_loss" not in history[0] and "g_gan" not in history[0]
  m = history[0]
  assert np.isfinite(m["g_bokeh"]) and m["g_bokeh"] > 0
  assert m["g_loss"] == pytest.approx(100.0 * m["g_l1"] + 2.0 * m["g_bokeh"], rel=1e-5)
  assert history[-1]["g_l1"] < 0.7 * history[0]["g_l1"]


def test_cgan_arm_has_no_l1_in_its_loss():
  _, history = _run(_config("cgan"), 1)
  assert history[0]["g_loss"] == pytest.approx(history[0]["g_gan"], rel=1e-6)


def test_nonfinite_step_leaves_state_unchanged_and_reports_it():
  config = _config("cgan_l1")
  state = _initial_state(config)
  batch = fixed_batch(config)
  batch["target"] = batch["target"].copy()
  batch["target"][0, 5, 5, 0] = np.nan
  new_state, metrics = _step(config)(state, batch, jax.random.key(1))
  assert int(metrics["nonfinite"]) == 1
  assert _max_abs_diff(state.gen.params, new_state.gen.params) == 0
  assert int(new_state.nonfinite_skips) == 1


def test_weight_average_follows_its_recurrence_and_predicts():
  """ema_decay > 0: the state carries an average of the generator's weights that follows
  ema <- d * ema + (1 - d) * new, d = min(decay, (1 + t) / (10 + t)), parameters and BatchNorm
  statistics alike; the networks train as without it; evaluation predicts with it."""
  plain = _config("cgan_l1")
  config = _config("cgan_l1")
  config.ema_decay = 0.6
  state = _initial_state(config)
  assert _initial_state(plain).gen_ema is None
  assert _max_abs_diff(state.gen_ema.params, state.gen.params) == 0
  step, batch = _step(config), fixed_batch(config)
  expected = state.gen_ema
  for t in range(3):
    state, _ = step(state, batch, jax.random.key(7))
    d = min(0.6, (1 + t) / (10 + t))
    expected = jax.tree_util.tree_map(lambda e, n: d * e + (1 - d) * n, expected,
                                      state.gen.weights())
  assert _max_abs_diff(state.gen_ema, expected) < 1e-6
  assert _max_abs_diff(state.gen_ema.params, state.gen.params) > 1e-5  # It lags the weights.
  plain_state, _ = _run(plain, 3)
  # The same training (another compiled program, so equal to float32 rounding).
  assert _max_abs_diff(plain_state.gen.params, state.gen.params) < 1e-6
  assert state_lib.prediction_weights(state) is state.gen_ema
  plain_weights = state_lib.prediction_weights(plain_state)
  assert plain_weights.params is plain_state.gen.params     # The trained weights, and no Adam
  assert plain_weights.batch_stats is plain_state.gen.batch_stats   # state (samples copy them).
  assert not hasattr(plain_weights, "opt_state")
  image = jnp.asarray(batch["image"])
  ema_code = steps_lib.predict_code(state.gen_ema, image, jax.random.key(0), config=config)
  raw_code = steps_lib.predict_code(state.gen, image, jax.random.key(0), config=config)
  assert float(jnp.abs(ema_code - raw_code).max()) > 0
  eval_batch = {**batch, "depth_full": batch["depth"], "image_full": (batch["image"] + 1) / 2,
                "example_mask": np.ones(config.batch_size, np.float32)}
  _, code, _ = jax.jit(functools.partial(steps_lib.eval_step, config=config))(
      state, eval_batch, jax.random.key(0))
  np.testing.assert_allclose(code, ema_code, atol=1e-5)


def test_schedule_is_constant_then_linear_to_zero():
  config = _config()
  config.num_train_steps, config.lr_constant_steps = 100, 60
  sched = optim.learning_rate_schedule(config)
  assert float(sched(0)) == pytest.approx(2e-4)
  assert float(sched(59)) == pytest.approx(2e-4)
  assert float(sched(80)) == pytest.approx(1e-4)
  assert float(sched(100)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("field, value, message", [
    ("loss.arm", "wgan", "loss.arm='wgan'"),
    ("model.norm", "group", "model.norm='group'"),
    ("image_size", 48, "48x48 is not divisible by 2\\*\\*model.num_downs = 32"),
    ("parallelism", "dp", "parallelism='dp'"),
    ("batch_size", 0, "batch_size=0 must be a positive integer"),
    ("model.conv_impl", "cudnn", "model.conv_impl='cudnn'"),
    ("ema_decay", 1.0, "ema_decay=1.0 must be in \\[0, 1\\)"),
])
def test_invalid_config_values_are_clear_errors(field, value, message):
  config = _config()
  node = config
  *parents, leaf = field.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(errors.UserError, match=message):
    config_lib.validate(config)
