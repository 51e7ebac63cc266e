"""Depth from a trained workdir: load the latest checkpoint and predict metres for any photo."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dofjax import checkpointing
from dofjax import depth as depth_lib
from dofjax import errors
from dofjax import parallel
from dofjax import state as state_lib
from dofjax import steps
from dofjax import workdir as workdir_lib


def load_generator(workdir):
  """(config, the generator's prediction weights (state.prediction_weights), step) from the
  newest restorable checkpoint in W; UserError if W is not a training workdir or holds no
  restorable checkpoint."""
  config = workdir_lib.load_config(workdir)
  step, state = checkpointing.restore_for_inference(
      workdir, lambda: parallel.abstract_state(config, parallel.make_mesh()))
  return config, state_lib.prediction_weights(state), step


def load_depth_predictor(workdir):
  """Returns predict(image01) -> depth_m for the model trained in `workdir`.

  predict takes one photo, (H, W, 3) float in [0, 1] of any size, resizes it to the network's
  square input (config.image_size, as in evaluation), and returns (H, W) float32 metres, the
  prediction upsampled bilinearly in inverse depth. Test-time behaviour follows config.test_time.
  """
  config, gen_state, _ = load_generator(workdir)
  size = config.image_size
  rng = jax.random.key(config.seed)

  @functools.partial(jax.jit, static_argnums=1)
  def _predict(image01, out_hw):
    x = jax.image.resize(image01, (size, size, 3), "linear", antialias=True) * 2.0 - 1.0
    code = steps.predict_code(gen_state, x[None], rng, config=config)[0]
    code = jax.image.resize(code, out_hw + (1,), "linear")[..., 0]
    return depth_lib.decode_depth(code, config.depth_near_m, config.depth_far_m)

  def predict(image01) -> np.ndarray:
    image01 = np.asarray(image01, np.float32)
    if image01.ndim != 3 or image01.shape[-1] != 3:
      raise errors.UserError(f"Expected an (H, W, 3) RGB image; got shape {image01.shape}.")
    return np.asarray(_predict(jnp.asarray(image01), tuple(image01.shape[:2])))

  return predict
