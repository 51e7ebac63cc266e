"""Fine-tuning (config.init_from): a new run starts from another workdir's weights with a fresh
optimiser and step count; a model of other shapes is refused with one `error:` line; fine-tuning
a tiny model on a folder of frames lowers its error there."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tiny
from dofjax import checkpointing
from dofjax import evaluation
from dofjax import parallel
from dofjax import state as state_lib
from dofjax import train
from dofjax import workdir as workdir_lib
from dofjax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _save_source(workdir, config, step):
  """A source workdir: a TrainState unlike a fresh one (weights moved, Adam moments and count
  non-zero, step `step`) saved at `step`, with its config recorded. Returns that state."""
  fresh = state_lib.create_train_state(config, jax.random.key(1))
  leaves, treedef = jax.tree_util.tree_flatten(fresh)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  moved = [x + 0.01 * jax.random.normal(k, x.shape, x.dtype)
           if jax.numpy.issubdtype(x.dtype, jax.numpy.floating) else x + 7
           for x, k in zip(leaves, keys)]
  state = jax.tree_util.tree_unflatten(treedef, moved).replace(step=jax.numpy.int32(step))
  workdir_lib.prepare(workdir, config)
  workdir_lib.record_config(workdir, config)
  manager = checkpointing.make_manager(workdir, keep=2)
  checkpointing.save(manager, step, state, checkpointing.gather_process_states({}))
  manager.wait_until_finished()
  manager.close()
  return state


def _tiny(**overrides):
  c = tiny.get_config()
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("source"))
  return workdir, _save_source(workdir, _tiny(), step=123)


def _equal(a, b):
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
                         a, b)


@pytest.mark.slow  # The source checkpoint takes ~8 s to build per test process.
@pytest.mark.parametrize("discriminator", [True, False])
def test_start_state_has_the_source_weights_and_a_fresh_optimiser(source, discriminator):
  workdir, saved = source
  config = _tiny(init_from=workdir, init_discriminator=discriminator, learning_rate=1e-5)
  mesh = parallel.make_mesh()
  loaded = train.load_init_source(config, mesh)
  assert (loaded.workdir, loaded.step) == (workdir, 123)
  fresh = state_lib.create_train_state(config, jax.random.key(0))
  start = state_lib.start_from(fresh, loaded.state, discriminator)
  _equal(start.gen.weights(), saved.gen.weights())
  _equal(start.disc.weights(), (saved if discriminator else fresh).disc.weights())
  _equal(start.gen.opt_state, fresh.gen.opt_state)
  _equal(start.disc.opt_state, fresh.disc.opt_state)
  assert int(start.gen.opt_state.count) == 0 and int(saved.gen.opt_state.count) != 0
  assert int(start.step) == 0 and int(start.nonfinite_skips) == 0
  assert not jax.tree_util.tree_reduce(lambda acc, x: acc or bool(np.any(np.asarray(x))),
                                       start.gen.opt_state.mu, False)


@pytest.mark.slow  # The source checkpoint takes ~8 s to build per test process.
def test_named_step_and_missing_checkpoints(source, tmp_path):
  workdir, _ = source
  assert checkpointing.source_checkpoint(os.path.join(workdir, "checkpoints", "123")) == (
      workdir, 123)
  with pytest.raises(UserError, match=r"no checkpoint of step 7 .*\(it has: 123\)"):
    checkpointing.source_checkpoint(os.path.join(workdir, "checkpoints", "7"))
  with pytest.raises(UserError, match="no checkpoint in"):
    checkpointing.source_checkpoint(str(tmp_path / "nothing"))


@pytest.mark.slow  # The source checkpoint takes ~8 s to build per test process.
def test_ema_starts_at_the_source_generator(source):
  workdir, saved = source
  config = _tiny(init_from=workdir, ema_decay=0.99)
  loaded = train.load_init_source(config, parallel.make_mesh())
  start = state_lib.start_from(state_lib.create_train_state(config, jax.random.key(0)),
                               loaded.state, True)
  _equal(start.gen_ema, saved.gen.weights())


@pytest.mark.slow  # The source checkpoint takes ~8 s to build per test process.
def test_shape_mismatch_is_one_error_line_naming_the_field(source, tmp_path):
  workdir, _ = source
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  p = subprocess.run([sys.executable, "-m", "dofjax.main", "--config=configs/tiny.py",
                      f"--workdir={tmp_path / 'new'}", f"--config.init_from={workdir}",
                      "--config.model.ngf=16", f"--config.data_dir={tmp_path / 'tfds'}"],
                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert p.returncode == 2, p.stderr
  lines = [l for l in p.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: init_from="), p.stderr
  assert "generator does not fit" in lines[0] and "model.ngf: 8 -> 16" in lines[0]
  assert not (tmp_path / "new" / "checkpoints").exists() or not os.listdir(
      tmp_path / "new" / "checkpoints")


def _captures(root, rooms, views, seed):
  """A folder in the 7-Scenes layout whose depth follows the image: each room a tilted floor
  plane (nearer at the bottom) whose brightness falls with distance."""
  import cv2  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  h, w = 48, 64
  rows = np.linspace(0.0, 1.0, h)[:, None] * np.ones((1, w))
  for r in range(rooms):
    folder = os.path.join(root, f"room{r:02d}")
    os.makedirs(folder)
    for v in range(views):
      far, near = rng.uniform(4.0, 8.0), rng.uniform(0.8, 1.5)
      depth = far + (near - far) * rows ** rng.uniform(0.7, 1.3)
      tint = rng.uniform(0.5, 1.0, 3)
      grey = np.clip(1.2 / depth, 0, 1)[..., None] * tint + rng.normal(0, 0.02, (h, w, 3))
      rgb = np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)
      assert cv2.imwrite(os.path.join(folder, f"frame-{v:06d}.color.png"), rgb[..., ::-1])
      assert cv2.imwrite(os.path.join(folder, f"frame-{v:06d}.depth.png"),
                         np.round(depth * 1000).astype(np.uint16))


@pytest.mark.slow  # Trains a tiny model, then fine-tunes it, in process (about 5 minutes on 2
# loaded cores).
def test_finetuning_lowers_the_error_on_the_folder_and_restarts_the_count(
    synthetic_data_dir, tmp_path):
  pretrained = str(tmp_path / "pretrained")
  train.train_and_evaluate(_tiny(data_dir=synthetic_data_dir, num_samples=0), pretrained)
  folder = str(tmp_path / "mine")
  _captures(folder, rooms=10, views=6, seed=0)
  config = _tiny(dataset="rgbd_captures", manual_dir=folder, data_dir=str(tmp_path / "tfds"),
                 init_from=pretrained, num_train_steps=60, lr_constant_steps=40,
                 eval_every_steps=60, checkpoint_every_steps=30, num_eval_batches=-1,
                 num_samples=0, batch_size=4)
  before = evaluation.evaluate_checkpoint(config, pretrained, "validation")["metrics"]
  mine = str(tmp_path / "finetuned")
  state = train.train_and_evaluate(config, mine)
  after = evaluation.evaluate_checkpoint(config, mine, "validation")["metrics"]
  # The loss it trains (L1 on the depth code) and the depth error both fall.
  assert after["l1_code"] < 0.8 * before["l1_code"], (before, after)
  assert after["abs_rel"] < before["abs_rel"], (before, after)
  # A fresh count: 60 steps and 60 Adam updates, not the source's 6 + 60.
  assert int(state.step) == 60 and int(state.gen.opt_state.count) == 60
  assert checkpointing.all_steps(mine) == [30, 60]
  record = json.loads(open(os.path.join(mine, "init_from.json")).read())
  assert record["step"] == 6 and record["workdir"] == os.path.abspath(pretrained)
  assert "discriminator" in record["weights"]
