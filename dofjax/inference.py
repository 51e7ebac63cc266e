"""Depth from a trained workdir: load the latest checkpoint and predict metres for any photo."""

import functools
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from dofjax import checkpointing
from dofjax import depth as depth_lib
from dofjax import errors


def load_config(workdir) -> ml_collections.ConfigDict:
  """The resolved config recorded in W/config.json; UserError if W has none."""
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise errors.UserError(f"{workdir} is not a dofjax workdir (no config.json); pass the "
                           "--workdir of a training run.")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def load_generator(workdir):
  """(config, generator NetState, step) from the newest restorable checkpoint in W."""
  from dofjax import train
  config = load_config(workdir)
  if checkpointing.latest_step(workdir) is None:
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints; train first, e.g. "
                           f"python -m dofjax.main --config=configs/quickstart.py --workdir={workdir}")
  mesh = train.make_mesh()
  manager = checkpointing.make_manager(workdir, keep=config.keep_checkpoints, read_only=True)
  try:
    step, state, _ = checkpointing.restore_latest(manager, train.abstract_state(config, mesh))
  finally:
    manager.close()
  if state is None:
    raise errors.UserError(f"No checkpoint in {workdir}/checkpoints could be restored.")
  return config, state.gen, step


def load_depth_predictor(workdir):
  """Returns predict(image01) -> depth_m for the model trained in `workdir`.

  predict takes one photo, (H, W, 3) float in [0, 1] of any size, resizes it to the network's
  square input (config.image_size, as in evaluation), and returns (H, W) float32 metres, the
  prediction upsampled bilinearly in inverse depth. Test-time behaviour follows config.test_time.
  """
  from dofjax import train
  config, gen_state, _ = load_generator(workdir)
  size = config.image_size
  rng = jax.random.key(config.seed)

  @functools.partial(jax.jit, static_argnums=1)
  def _predict(image01, out_hw):
    x = jax.image.resize(image01, (size, size, 3), "linear", antialias=True) * 2.0 - 1.0
    code = train.predict_code(gen_state, x[None], rng, config=config)[0]
    code = jax.image.resize(code, out_hw + (1,), "linear")[..., 0]
    return depth_lib.decode_depth(code, config.depth_near_m, config.depth_far_m)

  def predict(image01) -> np.ndarray:
    image01 = np.asarray(image01, np.float32)
    if image01.ndim != 3 or image01.shape[-1] != 3:
      raise errors.UserError(f"Expected an (H, W, 3) RGB image; got shape {image01.shape}.")
    return np.asarray(_predict(jnp.asarray(image01), tuple(image01.shape[:2])))

  return predict
