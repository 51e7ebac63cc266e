"""dofjax.optim.adam_update against optax.adam (the reference's Adam), and its skip switch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dofjax import optim


def _params(rng):
  return {"conv": {"kernel": rng.normal(size=(4, 4, 3, 8)).astype(np.float32),
                   "bias": rng.normal(size=(8,)).astype(np.float32)},
          "scale": rng.normal(size=(5,)).astype(np.float32)}


def test_matches_optax_adam_with_a_schedule_over_several_steps():
  rng = np.random.default_rng(0)
  schedule = optax.join_schedules([optax.constant_schedule(2e-3),
                                   optax.linear_schedule(2e-3, 0.0, 4)], [3])
  reference = optax.adam(schedule, b1=0.5, b2=0.999, eps=1e-8)
  params = jax.tree_util.tree_map(jnp.asarray, _params(rng))
  ours_params, ours_state = params, optim.adam_init(params)
  ref_params, ref_state = params, reference.init(params)
  update = jax.jit(lambda p, g, s: optim.adam_update(p, g, s, learning_rate=schedule, b1=0.5,
                                                       b2=0.999, eps=1e-8))
  for _ in range(7):
    grads = jax.tree_util.tree_map(
        lambda p: jnp.asarray(rng.normal(size=p.shape).astype(np.float32)), params)
    ours_params, ours_state = update(ours_params, grads, ours_state)
    updates, ref_state = reference.update(grads, ref_state, ref_params)
    ref_params = optax.apply_updates(ref_params, updates)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7), ours_params,
        ref_params)
  assert int(ours_state.count) == 7
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                         ours_state.mu, ref_state[0].mu)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                         ours_state.nu, ref_state[0].nu)
  assert not np.allclose(ours_params["scale"], params["scale"])  # It did move.


def test_apply_false_leaves_everything_bit_identical_even_with_nan_gradients():
  rng = np.random.default_rng(1)
  params = jax.tree_util.tree_map(jnp.asarray, _params(rng))
  state = optim.adam_init(params)
  grads = jax.tree_util.tree_map(lambda p: jnp.ones_like(p), params)
  params, state = optim.adam_update(params, grads, state, learning_rate=lambda _: 1e-3,
                                    b1=0.5, b2=0.999)
  nan_grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, jnp.nan), params)
  skipped = jax.jit(lambda p, g, s, ok: optim.adam_update(
      p, g, s, learning_rate=lambda _: 1e-3, b1=0.5, b2=0.999, apply=ok))
  new_params, new_state = skipped(params, nan_grads, state, jnp.array(False))
  for a, b in zip(jax.tree_util.tree_leaves((new_params, new_state)),
                  jax.tree_util.tree_leaves((params, state))):
    np.testing.assert_array_equal(a, b)
  assert int(new_state.count) == 1
  stepped, _ = skipped(params, grads, state, jnp.array(True))
  assert not np.array_equal(stepped["scale"], params["scale"])
