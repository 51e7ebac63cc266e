"""Devices and compilation: the mesh, the jit and pmap compilations of the steps, and moving
batches and states onto devices.

Two compilations of the one `steps.train_step`, chosen by config.parallelism:
- 'jit': a 1-D mesh over every device of every process (axis 'data'); the batch is sharded on
  it, the state replicated; XLA inserts the gradient all-reduce. The default.
- 'pmap': one replica per local device (axis 'batch'); the step averages gradients, losses and
  BatchNorm statistics over it with pmean.
`compile_training` hides the difference behind one interface, so the training loop has no
branch on it.
"""

import dataclasses
import functools
from typing import Callable

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from dofjax import state as state_lib
from dofjax import steps

DATA_AXIS = "data"
PMAP_AXIS = "batch"


def make_mesh():
  """1-D mesh over every device (all processes) on the 'data' axis.

  Auto axis types: shardings are given at jit boundaries and XLA propagates them (newer jax
  defaults make_mesh to Explicit axes, which would put shardings into every array type).
  """
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def _replicated(mesh):
  return NamedSharding(mesh, P())


def _data(mesh):
  return NamedSharding(mesh, P(DATA_AXIS))


def compile_train_step(config, mesh=None):
  """train_step compiled with jax.jit over `mesh`: batch split on 'data', state replicated,
  state buffers donated. Returns fn(state, global batch, rng) -> (state, metrics)."""
  mesh = mesh or make_mesh()
  return jax.jit(functools.partial(steps.train_step, config=config),
                 in_shardings=(_replicated(mesh), _data(mesh), _replicated(mesh)),
                 out_shardings=(_replicated(mesh), _replicated(mesh)), donate_argnums=(0,))


def compile_train_step_pmap(config):
  """The same train_step compiled with jax.pmap over the local devices (axis 'batch').

  Takes a state replicated with `replicate`, a batch with a leading local-device axis
  (`split_for_devices`) and a rng; returns the replicated new state and metrics.
  """
  return jax.pmap(functools.partial(steps.train_step, config=config, axis_name=PMAP_AXIS),
                  axis_name=PMAP_AXIS, in_axes=(0, 0, None), donate_argnums=(0,))


def compile_eval_step(config, mesh=None):
  """eval_step compiled with jax.jit over `mesh` (batch on 'data')."""
  mesh = mesh or make_mesh()
  return jax.jit(functools.partial(steps.eval_step, config=config),
                 in_shardings=(_replicated(mesh), _data(mesh), _replicated(mesh)),
                 out_shardings=(_replicated(mesh), _data(mesh), _data(mesh)))


def replicate(tree):
  """Copies a pytree onto every local device (leading axis = local device count) for pmap."""
  devices = jax.local_devices()
  sharding = NamedSharding(jax.sharding.Mesh(np.array(devices), (PMAP_AXIS,)), P(PMAP_AXIS))

  def put(x):
    x = np.asarray(x)  # One host copy; each device then receives its slice of the broadcast.
    return jax.device_put(np.broadcast_to(x[None], (len(devices),) + x.shape), sharding)

  return jax.tree_util.tree_map(put, tree)


@jax.jit
def _first_rows(leaves):
  return [x[0] for x in leaves]


def unreplicate(tree):
  """The first local replica of a pmap-replicated pytree (leading axis = local devices).

  Each leaf's first local shard is taken as it is (no computation) and its leading axis of one
  dropped by a single jitted call for the whole tree. Indexing every leaf eagerly queues one
  computation per leaf on that device, each waiting for the pmap's output; XLA:CPU admits 32 at
  a time per device, and when they fill up before the pmap's own launch on that device (a race
  under load), the pmap's collectives wait forever: the 8-fake-device tests hung that way.
  """
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  shards = [x.addressable_shards[0].data if isinstance(x, jax.Array) else x for x in leaves]
  return jax.tree_util.tree_unflatten(treedef, _first_rows(shards))


def split_for_devices(local_batch: dict) -> dict:
  """(B, ...) numpy arrays -> (local devices, B / local devices, ...) for pmap."""
  n = jax.local_device_count()
  return {k: np.asarray(v).reshape((n, -1) + np.shape(v)[1:]) for k, v in local_batch.items()}


def global_batch(local_batch: dict, mesh) -> dict:
  """Per-process numpy batch -> global jax arrays sharded on the mesh's 'data' axis."""
  from dofjax import input_pipeline
  return input_pipeline.to_global_batch(local_batch, _data(mesh))


def init_state_on_mesh(config, rng, mesh):
  """create_train_state run under jit with replicated output sharding (no host copy)."""
  return jax.jit(functools.partial(state_lib.create_train_state, config),
                 out_shardings=_replicated(mesh))(rng)


def abstract_state(config, mesh):
  """ShapeDtypeStructs (with shardings) of the TrainState, for restoring checkpoints."""
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=_replicated(mesh)),
      state_lib.state_shapes(config))


def to_host(tree):
  """A pytree of (fully addressable) jax arrays as numpy arrays (waits for them)."""
  return jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x)), tree)


def gather_rows(x, n: int):
  """First n rows of a (possibly multi-process) sharded array as numpy."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)[:n]


@dataclasses.dataclass(frozen=True)
class Training:
  """A compiled training step and how states move in and out of it (see compile_training).

  step(device_state, local numpy batch, rng) -> (device_state, metrics as one copy);
  to_device(state) places a plain TrainState for `step`; to_plain(device_state) gives back one
  copy (for checkpoints, evaluation, samples).
  """
  step: Callable
  to_device: Callable
  to_plain: Callable


def compile_training(config, mesh) -> Training:
  """The train step compiled as config.parallelism says ('jit' over `mesh`, or 'pmap')."""
  if config.parallelism == "pmap":
    pmapped = compile_train_step_pmap(config)

    def pmap_step(st, local, rng):
      st, metrics = pmapped(st, split_for_devices(local), rng)
      return st, unreplicate(metrics)

    return Training(step=pmap_step, to_device=replicate, to_plain=unreplicate)
  jitted = compile_train_step(config, mesh)
  return Training(step=lambda st, local, rng: jitted(st, global_batch(local, mesh), rng),
                  to_device=lambda st: st, to_plain=lambda st: st)
