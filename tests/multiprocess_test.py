"""Two processes on localhost with jax.distributed (CPU collectives over gloo) train together.

One command starts both (`tests/multiprocess_worker.py`, which is `python -m dofjax.main` plus a
dump of each process's final state); they must end with identical states, equal to one process
training on the same global batches, and leave one checkpoint that a single process restores.
"""

import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import tiny
from dofjax import checkpointing
from dofjax import steps as steps_lib
from dofjax import state as state_lib
from dofjax import parallel
from dofjax import input_pipeline

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_PROCESSES = 2
STEPS = 2
# Overrides, as command-line flags, of configs/tiny.py for the run (and the reference below).
OVERRIDES = {
    "num_train_steps": STEPS, "lr_constant_steps": 1, "checkpoint_every_steps": STEPS,
    "eval_every_steps": STEPS, "log_every_steps": 1, "num_eval_batches": 1,
    "num_samples": 0, "num_image_summaries": 0,
    "model.dropout_rate": 0.0,  # Dropout masks are drawn per device.
    "model.conv_impl": "xla",   # Compiles about twice as fast on CPU as 'matmul'.
}


def _config(data_dir):
  config = tiny.get_config()
  config.data_dir = data_dir
  for dotted, value in OVERRIDES.items():
    node = config
    *parents, leaf = dotted.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(data_dir, workdir, dump_dir, timeout_s=900):
  """Starts all processes, waits; returns their outputs. Kills the rest if one fails."""
  port = _free_port()
  flags = [f"--config={_ROOT}/configs/tiny.py", f"--workdir={workdir}",
           f"--config.data_dir={data_dir}"]
  flags += [f"--config.{k}={v}" for k, v in OVERRIDES.items()]
  procs, logs = [], []
  for i in range(NUM_PROCESSES):
    env = dict(os.environ, DOFJAX_COORDINATOR=f"localhost:{port}",
               DOFJAX_NUM_PROCESSES=str(NUM_PROCESSES), DOFJAX_PROCESS_ID=str(i),
               DOFJAX_TEST_DUMP=str(dump_dir))
    env.pop("JAX_NUM_CPU_DEVICES", None)  # One CPU device per process.
    log = open(dump_dir / f"out_{i}.txt", "w+")  # pylint: disable=consider-using-with
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(_ROOT, "tests", "multiprocess_worker.py")] + flags,
        cwd=_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    logs.append(log)
  deadline = time.time() + timeout_s
  try:
    while any(p.poll() is None for p in procs):
      if any(p.poll() not in (None, 0) for p in procs) or time.time() > deadline:
        break  # A dead process would leave the other waiting on the coordinator.
      time.sleep(0.5)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  outputs = []
  for log in logs:
    log.seek(0)
    outputs.append(log.read())
    log.close()
  for i, p in enumerate(procs):
    assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n{outputs[i][-3000:]}"
  return outputs


def _reference_state(config):
  """One process, one device: the same init, rng and global batches (process 0's slice, then
  process 1's, as make_array_from_process_local_data assembles them)."""
  init_rng, train_rng, _ = jax.random.split(jax.random.key(config.seed), 3)
  state = jax.jit(lambda r: state_lib.create_train_state(config, r))(init_rng)
  iterators = [input_pipeline.create_train_iterator(config, process_index=i,
                                                    process_count=NUM_PROCESSES)
               for i in range(NUM_PROCESSES)]
  step = jax.jit(lambda s, b, r: steps_lib.train_step(s, b, r, config=config))
  for _ in range(STEPS):
    locals_ = [next(it) for it in iterators]
    batch = {k: np.concatenate([b[k] for b in locals_]) for k in locals_[0]}
    state, _ = step(state, batch, train_rng)
  return jax.device_get(state)


def _flat(state):
  return {jax.tree_util.keystr(p): np.asarray(x)
          for p, x in jax.tree_util.tree_leaves_with_path(jax.device_get(state))}


@pytest.mark.slow
def test_two_processes_train_like_one(synthetic_data_dir, tmp_path):
  workdir, dump = tmp_path / "workdir", tmp_path / "dump"
  dump.mkdir()
  outputs = _launch(synthetic_data_dir, workdir, dump)

  # Both processes hold the same final state.
  held = [dict(np.load(dump / f"state_{i}.npz")) for i in range(NUM_PROCESSES)]
  assert held[0].keys() == held[1].keys()
  for name in held[0]:
    np.testing.assert_array_equal(held[0][name], held[1][name], err_msg=name)
  assert int(held[0][".step"]) == STEPS

  # It is what one process computes on the same global batches: each process read its own slice.
  config = _config(synthetic_data_dir)
  reference = _flat(_reference_state(config))
  assert reference.keys() == held[0].keys()
  # Reductions in another order differ by float32 rounding. Adam turns a gradient that is
  # rounding noise into a step of up to the learning rate, either way: so nearly every element
  # must agree tightly, and every element within two full steps per step taken.
  bound = 2 * STEPS * config.learning_rate
  for name, value in reference.items():
    diff = np.abs(np.asarray(held[0][name], np.float64) - value)
    loose = diff > 2e-5 + 1e-5 * np.abs(value)
    assert loose.mean() <= 1e-3 and diff.max() <= bound, (name, loose.sum(), diff.max())

  # One checkpoint, written collectively, that a single process restores.
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == [str(STEPS)]
  manager = checkpointing.make_manager(workdir, config.keep_checkpoints)
  step, restored, _ = checkpointing.restore_latest(
      manager, parallel.abstract_state(config, parallel.make_mesh()))
  manager.close()
  assert step == STEPS
  for name, value in _flat(restored).items():
    np.testing.assert_array_equal(value, held[0][name], err_msg=name)

  # Only process 0 reports: console progress, one metrics line per report, one event file.
  assert f"step {STEPS}/{STEPS}" in outputs[0] and "eval step" in outputs[0]
  assert "step " not in outputs[1] and "eval" not in outputs[1], outputs[1]
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == STEPS + 1  # log_every_steps=1, and one validation line.
  assert len(list(workdir.glob("events.out.tfevents.*"))) == 1
