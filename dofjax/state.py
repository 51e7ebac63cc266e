"""What training carries from step to step: the two networks' parameters, BatchNorm statistics
and Adam moments (`TrainState`), and how a fresh one is made for a config.

Everything here is pure and device-agnostic; placing a state on devices (and the abstract state
used to restore checkpoints) is `dofjax.parallel`'s job.
"""

import functools
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np

from dofjax import config as config_lib
from dofjax import losses
from dofjax import models
from dofjax import optim


@flax.struct.dataclass
class Weights:
  """A network's weights for prediction: parameters and BatchNorm statistics."""
  params: Any
  batch_stats: Any


@flax.struct.dataclass
class NetState:
  """One network's trainable state: parameters, BatchNorm statistics and Adam state."""
  params: Any
  batch_stats: Any
  opt_state: Any

  def weights(self) -> Weights:
    """The parameters and BatchNorm statistics, without the optimiser state."""
    return Weights(params=self.params, batch_stats=self.batch_stats)


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint holds. `disc` is None for the 'l1' arm (no discriminator);
  `gen_ema` (the generator's weights averaged over steps) is None unless config.ema_decay > 0."""
  step: jax.Array
  gen: NetState
  disc: Optional[NetState]
  nonfinite_skips: jax.Array
  gen_ema: Optional[Weights]


def prediction_weights(state: TrainState) -> Weights:
  """The generator weights that predict depth: the moving average when the run keeps one
  (config.ema_decay > 0), else the trained ones, without the Adam state (so a host copy of them,
  as the samples make, is a third of the generator's training state)."""
  return state.gen.weights() if state.gen_ema is None else state.gen_ema


def ema_update(ema: Weights, net: NetState, step, decay: float) -> Weights:
  """The moving average after `step` (int32 scalar, 0-based) updates: each leaf becomes
  d * ema + (1 - d) * new, d = min(decay, (1 + step) / (10 + step)); the ramp keeps the
  initial weights from lingering in the average of a short run. Returns the new Weights."""
  step = jnp.asarray(step, jnp.float32)
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree_util.tree_map(lambda a, n: d * a + (1.0 - d) * n, ema, net.weights())


def make_models(config, axis_name=None):
  """(UNetGenerator, PatchDiscriminator or None) for the config; RGB in, 1-channel code out.

  `axis_name` (pmap) makes BatchNorm statistics global over replicas unless
  config.per_replica_batch_norm.
  """
  dtype = config_lib.compute_dtype(config)
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


def run_keys(config):
  """The run's three random streams from config.seed: (init, train, eval) keys. Training,
  evaluation and --mode=eval all derive theirs here, so a resumed run draws the same ones."""
  return jax.random.split(jax.random.key(config.seed), 3)


def _init_net(module, rng, x):
  variables = module.init({"params": rng, "dropout": rng}, x, train=False)
  params = variables["params"]
  return NetState(params=params, batch_stats=variables.get("batch_stats", {}),
                  opt_state=optim.adam_init(params))


def create_train_state(config, rng) -> TrainState:
  """Freshly initialised TrainState (reference init) for inputs of config.image_size px.

  The initial weights are drawn with jax's non-partitionable threefry: the state is replicated
  anyway, and on XLA:CPU it compiles the initialisers several times faster (about 8 s instead
  of 36 s of CPU for the tiny config). The initialisation is one compiled program, not hundreds
  of op-by-op dispatches: half the CPU time again, and the persistent compilation cache keeps it.
  """
  with jax.threefry_partitionable(False):
    return jax.jit(functools.partial(_create_train_state, config))(rng)


def _create_train_state(config, rng) -> TrainState:
  gen, disc = make_models(config)
  s = config.image_size
  g_rng, d_rng = jax.random.split(rng)
  gen_state = _init_net(gen, g_rng, jnp.zeros((1, s, s, 3), jnp.float32))
  disc_state = None
  if disc is not None:
    disc_state = _init_net(disc, d_rng, jnp.zeros((1, s, s, 4), jnp.float32))
  gen_ema = None
  if config.get("ema_decay", 0.0) > 0:
    gen_ema = gen_state.weights()
  return TrainState(step=jnp.zeros((), jnp.int32), gen=gen_state, disc=disc_state,
                    nonfinite_skips=jnp.zeros((), jnp.int32), gen_ema=gen_ema)


def state_shapes(config) -> TrainState:
  """The TrainState of `config` as jax.ShapeDtypeStructs (nothing is computed)."""
  return jax.eval_shape(lambda rng: create_train_state(config, rng), jax.random.key(0))


def state_bytes(config) -> int:
  """Size in bytes of one TrainState of `config` (about one checkpoint on disk)."""
  return sum(int(np.prod(x.shape)) * x.dtype.itemsize
             for x in jax.tree_util.tree_leaves(state_shapes(config)))


def start_from(fresh: TrainState, source: TrainState, discriminator: bool) -> TrainState:
  """The first state of a fine-tuning run: `fresh` (this config's new state: step 0, zero Adam
  moments, zero skip count) with the generator's parameters and BatchNorm statistics of
  `source` (another run's TrainState of the same shapes), and the discriminator's too when
  `discriminator` and both have one. The moving average, if kept, starts at the source's
  generator."""
  gen = fresh.gen.replace(params=source.gen.params, batch_stats=source.gen.batch_stats)
  disc = fresh.disc
  if discriminator and disc is not None and source.disc is not None:
    disc = disc.replace(params=source.disc.params, batch_stats=source.disc.batch_stats)
  gen_ema = None if fresh.gen_ema is None else gen.weights()
  return fresh.replace(gen=gen, disc=disc, gen_ema=gen_ema)
