"""Adam, as the reference uses it (PyTorch defaults, eps 1e-8), with the update written for speed.

The same arithmetic as `optax.adam` (tested against it), but the step is one function that also
applies the non-finite guard, and the new moments are materialised before the parameters read
them (`jax.lax.optimization_barrier`). Without that barrier XLA:CPU fuses the moment updates into
the parameter update too, recomputing them from the old moments; since the old moment buffers
are donated and overwritten in place, it must first copy them. On the 54M-parameter generator
that recomputation and those copies cost about a fifth of a training step (docs/design.md,
"Performance notes").
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct


class AdamState(struct.PyTreeNode):
  """count: int32 scalar, the number of updates applied; mu, nu: first and second moments,
  pytrees shaped like the parameters (float32)."""
  count: jax.Array
  mu: Any
  nu: Any


def adam_init(params) -> AdamState:
  """Zero moments and count for `params` (any pytree of float arrays)."""
  zeros = lambda p: jnp.zeros_like(p)  # noqa: E731
  return AdamState(count=jnp.zeros((), jnp.int32), mu=jax.tree_util.tree_map(zeros, params),
                   nu=jax.tree_util.tree_map(zeros, params))


def adam_update(params, grads, state: AdamState, *, learning_rate: Callable[[jax.Array], Any],
                b1: float, b2: float, eps: float = 1e-8, apply=True):
  """One Adam step: returns (new params, new AdamState).

  mu <- b1 mu + (1 - b1) g;  nu <- b2 nu + (1 - b2) g^2;  t <- t + 1;
  params <- params - lr(t - 1) * (mu / (1 - b1^t)) / (sqrt(nu / (1 - b2^t)) + eps).

  Args:
    params, grads: pytrees of the same structure (float32).
    state: from `adam_init` or a previous update.
    learning_rate: schedule, step count (int32, before this update) -> learning rate.
    b1, b2, eps: Adam's constants.
    apply: bool scalar (traced is fine); False returns params and state unchanged (the
      non-finite guard of the train step), with no extra pass over memory.
  """
  apply = jnp.asarray(apply)
  lr = learning_rate(state.count)
  count = state.count + apply.astype(jnp.int32)
  keep = lambda new, old: jnp.where(apply, new, old)  # noqa: E731
  mu = jax.tree_util.tree_map(lambda m, g: keep(b1 * m + (1.0 - b1) * g, m), state.mu, grads)
  nu = jax.tree_util.tree_map(lambda v, g: keep(b2 * v + (1.0 - b2) * g * g, v), state.nu, grads)
  mu, nu = jax.lax.optimization_barrier((mu, nu))
  t = jnp.maximum(count, 1).astype(jnp.float32)
  bias1 = 1.0 - b1 ** t
  bias2 = 1.0 - b2 ** t

  def step(p, m, v):
    return keep(p - lr * (m / bias1) / (jnp.sqrt(v / bias2) + eps), p)

  new_params = jax.tree_util.tree_map(step, params, mu, nu)
  return new_params, AdamState(count=count, mu=mu, nu=nu)


def learning_rate_schedule(config):
  """The reference's schedule: constant config.learning_rate for config.lr_constant_steps, then
  linear decay to 0 at config.num_train_steps. Returns step (int) -> learning rate."""
  decay_steps = config.num_train_steps - config.lr_constant_steps
  if decay_steps <= 0:
    return optax.constant_schedule(config.learning_rate)
  return optax.join_schedules(
      [optax.constant_schedule(config.learning_rate),
       optax.linear_schedule(config.learning_rate, 0.0, decay_steps)],
      [config.lr_constant_steps])
