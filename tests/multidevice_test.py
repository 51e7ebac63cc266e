"""Data parallelism on 8 fake CPU devices: jit over a 1-D mesh and pmap match one device.

Run with `JAX_NUM_CPU_DEVICES=8 python -m pytest -q -m multidevice tests` (the variable must be
set before jax is imported, hence its own pytest process); conftest.py skips these tests when
jax sees fewer than 8 devices.
"""

import functools

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from configs import tiny
from dofjax import train
from dofjax import steps as steps_lib
from dofjax import state as state_lib
from dofjax import parallel
from train_step_test import fixed_batch  # tests/ is on sys.path under pytest.

pytestmark = pytest.mark.multidevice

NUM_DEVICES = 8


def _config(**overrides):
  c = tiny.get_config()
  c.batch_size = NUM_DEVICES
  c.eval_batch_size = NUM_DEVICES
  c.model.dropout_rate = 0.0  # Dropout masks are drawn per replica under pmap.
  c.model.conv_impl = "xla"  # Compiles about twice as fast on CPU as 'matmul'.
  # A shallower PatchGAN than tiny.py's compiles faster; what is checked here (shardings,
  # reductions, BatchNorm statistics across devices) does not depend on its depth.
  c.model.n_layers = 1
  # Their means over images must be the global batch's under pmap too.
  c.loss.si_log_weight = 1.0
  c.loss.log_gradient_weight = 1.0
  for key, value in overrides.items():
    c[key] = value
  return c


def _host_state(config):
  """A fresh TrainState as numpy (so donation on device never touches it)."""
  init = jax.jit(functools.partial(state_lib.create_train_state, config))
  return jax.device_get(init(jax.random.key(config.seed)))


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(tree))]


def _relative_error(a, b):
  """How far pytree a is from pytree b: the root mean square, over leaves, of each leaf's
  ||a - b|| / ||b|| (per leaf, so that no layer's scale hides another's error)."""
  la, lb = _leaves(a), _leaves(b)
  assert len(la) == len(lb)
  errors = [np.linalg.norm(x.astype(np.float64) - y) / np.linalg.norm(y.astype(np.float64))
            for x, y in zip(la, lb)]
  return float(np.sqrt(np.mean(np.square(errors))))


def _assert_gradients_close(net, ref_net, host_net):
  """The network's gradients (Adam's first moment, a running mean of them) and its parameter
  updates match the reference's to GRAD_RTOL (_relative_error).

  Elementwise tolerances cannot work here: the tiny batch always has pre-activations within
  ~1e-6 of their std of a ReLU's kink, so another reduction order can put one on the other side.
  That moves a layer's gradient by a few percent (6% on an AMD EPYC; the same code had passed
  elementwise checks on another CPU), and Adam turns small gradient elements into full steps of
  the learning rate. A sharding error moves them by their whole size (see the per-replica
  BatchNorm test below).
  """
  assert _relative_error(net.opt_state.mu, ref_net.opt_state.mu) <= GRAD_RTOL
  update = jax.tree_util.tree_map(lambda p, p0: np.asarray(p) - p0, net.params, host_net.params)
  ref_update = jax.tree_util.tree_map(lambda p, p0: np.asarray(p) - p0, ref_net.params,
                                      host_net.params)
  assert _relative_error(update, ref_update) <= GRAD_RTOL


def _single_device(config, host_state, batch, steps):
  """The reference: plain jit on device 0, no shardings. States after each step, last metrics."""
  step = jax.jit(lambda s, b, r: steps_lib.train_step(s, b, r, config=config))
  state = jax.device_put(host_state, jax.devices()[0])
  states = []
  for _ in range(steps):
    state, metrics = step(state, batch, jax.random.key(7))
    states.append(jax.device_get(state))
  return states, jax.device_get(metrics)


STEPS = 2
# Losses differ by float32 rounding only; gradients can also differ by a ReLU flipped at its kink
# (_assert_gradients_close).
GRAD_RTOL = 0.25
# The BatchNorm running statistics after the second step see the first step's parameters, so
# they inherit that flip too, damped (5e-4 where it happened; per-replica statistics: 0.1).
STATS_RTOL = 5e-3


@pytest.fixture(scope="module")
def reference():
  assert jax.device_count() == NUM_DEVICES
  config = _config()
  host_state = _host_state(config)
  batch = fixed_batch(config)
  states, metrics = _single_device(config, host_state, batch, STEPS)
  return config, host_state, batch, states, metrics


def test_jit_over_mesh_matches_one_device_and_shards_as_intended(reference):
  config, host_state, batch, ref_states, ref_metrics = reference
  ref_state = ref_states[-1]
  mesh = parallel.make_mesh()
  assert mesh.shape == {parallel.DATA_AXIS: NUM_DEVICES}
  step = parallel.compile_train_step(config, mesh)
  state = jax.device_put(host_state, jax.sharding.NamedSharding(mesh, P()))
  gbatch = parallel.global_batch(batch, mesh)
  # The batch is split over 'data': 8 shards of one example each, one per device.
  for x in gbatch.values():
    assert x.sharding.spec == P(parallel.DATA_AXIS)
    assert len(x.addressable_shards) == NUM_DEVICES
    assert {s.data.shape[0] for s in x.addressable_shards} == {1}
    assert {s.device for s in x.addressable_shards} == set(jax.devices())
  for _ in range(STEPS):
    state, metrics = step(state, gbatch, jax.random.key(7))
  # The state stays replicated: every device holds the whole, identical state.
  for x in jax.tree_util.tree_leaves(state):
    assert x.sharding.is_fully_replicated
    assert len(x.sharding.device_set) == NUM_DEVICES
    first = np.asarray(x.addressable_shards[0].data)
    for shard in x.addressable_shards[1:]:
      np.testing.assert_array_equal(np.asarray(shard.data), first)
  # BatchNorm statistics under a sharded jit are global over the whole batch.
  _assert_matches_reference(state, metrics, ref_state, ref_metrics, host_state)


def _assert_matches_reference(state, metrics, ref_state, ref_metrics, host_state):
  """Step count, both networks' gradients, updates and BN statistics, and the losses match the
  single-device reference run (from host_state) to float32 tolerance."""
  assert int(state.step) == STEPS
  _assert_gradients_close(state.gen, ref_state.gen, host_state.gen)
  _assert_gradients_close(state.disc, ref_state.disc, host_state.disc)
  assert _relative_error(state.gen.batch_stats, ref_state.gen.batch_stats) <= STATS_RTOL
  assert _relative_error(state.disc.batch_stats, ref_state.disc.batch_stats) <= STATS_RTOL
  for key in ("g_loss", "g_l1", "g_si_log", "g_log_grad", "d_loss"):
    np.testing.assert_allclose(float(metrics[key]), float(ref_metrics[key]), rtol=1e-4)


def _pmap_run(config, host_state, batch, steps):
  step = parallel.compile_train_step_pmap(config)
  state = parallel.replicate(host_state)
  for _ in range(steps):
    state, metrics = step(state, parallel.split_for_devices(batch), jax.random.key(7))
  return state, metrics


def test_pmap_matches_one_device_with_global_batch_norm(reference):
  config, host_state, batch, ref_states, ref_metrics = reference
  ref_state = ref_states[-1]
  state, metrics = _pmap_run(config, host_state, batch, STEPS)
  # One replica per device, all identical.
  for x in jax.tree_util.tree_leaves(state):
    assert x.shape[0] == NUM_DEVICES
    assert len(x.sharding.device_set) == NUM_DEVICES
    host = np.asarray(x)
    for i in range(1, NUM_DEVICES):
      np.testing.assert_array_equal(host[i], host[0])
  state, metrics = parallel.unreplicate(state), parallel.unreplicate(metrics)
  _assert_matches_reference(state, metrics, ref_state, ref_metrics, host_state)


def test_pmap_per_replica_batch_norm_uses_each_replicas_own_statistics(reference):
  _, host_state, batch, ref_states, _ = reference
  ref_state1 = ref_states[0]  # One step with BatchNorm over the whole batch.
  config = _config(per_replica_batch_norm=True)
  state, _ = _pmap_run(config, host_state, batch, 1)
  state = jax.device_get(parallel.unreplicate(state))
  old = host_state.gen.batch_stats["down_norm_1"]["BatchNorm_0"]
  per = state.gen.batch_stats["down_norm_1"]["BatchNorm_0"]
  glob = ref_state1.gen.batch_stats["down_norm_1"]["BatchNorm_0"]
  # The first BatchNorm's input does not depend on any normalisation: the replicas' batch means
  # average to the global one, and (law of total variance, equal replica sizes) their variances
  # average to the global variance minus the variance of the replica means, so less.
  np.testing.assert_allclose(per["mean"], glob["mean"], atol=1e-5)
  gain_per = per["var"] - 0.9 * old["var"]
  gain_glob = glob["var"] - 0.9 * old["var"]
  assert np.all(gain_per <= gain_glob + 1e-6)
  assert np.mean(gain_glob - gain_per) > 1e-3 * np.mean(gain_glob)
  # Normalising with other statistics gives other gradients, far outside the tolerance that
  # _assert_gradients_close allows for rounding.
  assert _relative_error(state.gen.opt_state.mu, ref_state1.gen.opt_state.mu) > 2 * GRAD_RTOL


@pytest.mark.slow
def test_train_and_evaluate_with_pmap(synthetic_data_dir, tmp_path):
  """The real loop's pmap branch on 8 devices: replicate, unreplicate, checkpoint, evaluate."""
  config = _config(parallelism="pmap")
  config.loss.arm = "l1"  # The loop is the same for every arm; this one compiles fastest.
  config.data_dir = synthetic_data_dir
  config.num_train_steps = config.lr_constant_steps = 2
  config.checkpoint_every_steps = config.eval_every_steps = 2
  config.num_eval_batches = 1
  config.num_samples = config.num_image_summaries = 0
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  assert state.gen.params["down_0"]["kernel"].ndim == 4  # One copy, not one per device.
  assert (tmp_path / "checkpoints" / "2").is_dir()
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert any("validation" in line for line in lines)


def test_logged_l1_is_the_global_masked_mean_under_pmap_for_every_arm(reference):
  """g_l1 is reported the same way whatever the arm: under pmap, with replicas holding
  different numbers of valid pixels, cgan's logged value (not part of its loss) is still the
  single-device masked mean, as cgan_l1's is (checked in the tests above). The scale-invariant
  term is the mean over the global batch's images that have valid pixels, also when a replica
  has none."""
  _, host_state, batch, _, _ = reference  # cgan has the same networks as cgan_l1.
  batch = dict(batch)
  mask = np.array(batch["mask"])
  mask[: NUM_DEVICES // 2, : mask.shape[1] // 4] = 0.0  # Fewer valid pixels on half the replicas.
  mask[NUM_DEVICES - 1] = 0.0  # One replica without any valid pixel.
  batch["mask"] = mask
  config = _config()
  config.loss.arm = "cgan"  # cgan_l1's logged g_l1 is checked in the tests above.
  _, ref_metrics = _single_device(config, host_state, batch, 1)
  _, metrics = _pmap_run(config, host_state, batch, 1)
  for key in ("g_l1", "g_si_log", "g_log_grad"):
    np.testing.assert_allclose(float(parallel.unreplicate(metrics)[key]),
                               float(ref_metrics[key]), rtol=1e-5, err_msg=key)
