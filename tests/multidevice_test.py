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
  c.loss.si_log_weight = 1.0  # Its mean over images must be the global batch's under pmap too.
  for key, value in overrides.items():
    c[key] = value
  return c


def _host_state(config):
  """A fresh TrainState as numpy (so donation on device never touches it)."""
  init = jax.jit(functools.partial(state_lib.create_train_state, config))
  return jax.device_get(init(jax.random.key(config.seed)))


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(tree))]


def _assert_trees_close(a, b, atol):
  la, lb = _leaves(a), _leaves(b)
  assert len(la) == len(lb)
  worst = max(float(np.abs(x - y).max()) for x, y in zip(la, lb))
  assert worst <= atol, worst


def _assert_params_close(a, b, learning_rate):
  """Parameters after STEPS Adam steps from one start, reduced in another order: float32
  rounding of a gradient that is itself rounding noise can move Adam's step by up to the
  learning rate either way, so nearly every element must agree to PARAM_ATOL and every element
  within two steps of the learning rate per step."""
  la, lb = _leaves(a), _leaves(b)
  assert len(la) == len(lb)
  diffs = np.concatenate([np.abs(x - y).ravel() for x, y in zip(la, lb)])
  assert (diffs > PARAM_ATOL).mean() <= 1e-3, (diffs > PARAM_ATOL).sum()
  assert diffs.max() <= 2 * STEPS * learning_rate, diffs.max()


def _max_diff(a, b):
  return max(float(np.abs(x - y).max()) for x, y in zip(_leaves(a), _leaves(b)))


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
# Two Adam steps of size ~lr (2e-4) from the same start; reductions in another order differ by
# float32 rounding only, far below one step.
PARAM_ATOL = 2e-5
STATS_ATOL = 1e-5


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
  _assert_matches_reference(state, metrics, ref_state, ref_metrics)


def _assert_matches_reference(state, metrics, ref_state, ref_metrics):
  """Step count, both networks' parameters and BN statistics, and the losses match the
  single-device reference run to float32 tolerance."""
  assert int(state.step) == STEPS
  lr = tiny.get_config().learning_rate
  _assert_params_close(state.gen.params, ref_state.gen.params, lr)
  _assert_params_close(state.disc.params, ref_state.disc.params, lr)
  _assert_trees_close(state.gen.batch_stats, ref_state.gen.batch_stats, STATS_ATOL)
  _assert_trees_close(state.disc.batch_stats, ref_state.disc.batch_stats, STATS_ATOL)
  for key in ("g_loss", "g_l1", "g_si_log", "d_loss"):
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
  _assert_matches_reference(state, metrics, ref_state, ref_metrics)


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
  # Normalising with other statistics gives other parameters.
  assert _max_diff(state.gen.params, ref_state1.gen.params) > 1e-5


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
  for key in ("g_l1", "g_si_log"):
    np.testing.assert_allclose(float(parallel.unreplicate(metrics)[key]),
                               float(ref_metrics[key]), rtol=1e-5, err_msg=key)
