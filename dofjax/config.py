"""Checks of a training config (an ml_collections.ConfigDict from configs/*.py), in one place.

`validate` runs before anything is loaded or compiled, so a bad value costs one `error:` line.
Each check names the flag that fixes it (`--config.<field>=...`). Checks that belong to a
component (the loss arms, the network's norms and depth, the convolution implementation) live
in that component's module and are called from here.
"""

import jax
import jax.numpy as jnp
import ml_collections

from dofjax import augment
from dofjax import errors
from dofjax import layers
from dofjax import losses
from dofjax import models

PARALLELISMS = ("jit", "pmap")
TEST_TIMES = ("standard", "paper")
ON_NONFINITE = ("stop", "skip")
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
POSITIVE_INT_FIELDS = ("batch_size", "eval_batch_size", "num_train_steps", "log_every_steps",
                       "eval_every_steps", "checkpoint_every_steps", "keep_checkpoints",
                       "captures_frame_stride")


def compute_dtype(config: ml_collections.ConfigDict):
  """The jnp dtype the networks compute in (config.compute_dtype)."""
  return COMPUTE_DTYPES[config.compute_dtype]


def _check_choice(config, field: str, allowed) -> None:
  if config[field] not in allowed:
    raise errors.UserError(f"{field}={config[field]!r} is not one of "
                           f"{', '.join(map(repr, allowed))}; set --config.{field}=...")


def _check_datasets(config) -> None:
  from dofjax import input_pipeline  # Heavy (TFDS); imported only when a config is checked.
  input_pipeline.check_dataset(config.dataset)
  if config.get("eval_dataset"):
    input_pipeline.check_dataset(config.eval_dataset, "eval_dataset")


def _check_model(config) -> None:
  for field in ("norm", "disc_norm"):
    models.check_norm(config.model[field], field=f"model.{field}")
  layers.resolve_impl(config.model.conv_impl)
  models.check_num_downs(config.model.num_downs)
  models.check_n_layers(config.model.n_layers)
  models.check_image_size(config.image_size, config.image_size, config.model.num_downs)
  if not 0 <= config.model.dropout_rate < 1:
    raise errors.UserError(f"model.dropout_rate={config.model.dropout_rate} must be in [0, 1); "
                           "set --config.model.dropout_rate=0.5 (the paper's).")


def _check_schedule(config) -> None:
  for field in POSITIVE_INT_FIELDS:
    if field in config and int(config[field]) <= 0:
      raise errors.UserError(f"{field}={config[field]} must be a positive integer; set "
                             f"--config.{field}=...")
  if config.learning_rate <= 0:
    raise errors.UserError(f"learning_rate={config.learning_rate} must be > 0; set "
                           "--config.learning_rate=2e-4 (the paper's).")
  if not 0 <= config.get("ema_decay", 0.0) < 1:
    raise errors.UserError(f"ema_decay={config.ema_decay} must be in [0, 1); set "
                           "--config.ema_decay=0 (no weight average) or e.g. 0.999.")
  if not 0 <= config.lr_constant_steps <= config.num_train_steps:
    fix = min(max(config.lr_constant_steps, 0), config.num_train_steps)
    if config.lr_constant_steps > config.num_train_steps:
      fix = config.num_train_steps * 2 // 3
    raise errors.UserError(
        f"lr_constant_steps={config.lr_constant_steps} must be between 0 and "
        f"num_train_steps={config.num_train_steps}; add --config.lr_constant_steps={fix} "
        "(the learning rate is constant for that many steps, then decays linearly to 0).")


def _check_batches(config) -> None:
  n = jax.device_count()
  for field in ("batch_size", "eval_batch_size"):
    if config[field] % n:
      raise errors.UserError(
          f"{field}={config[field]} is not divisible by the {n} devices; use a multiple of {n} "
          f"(e.g. --config.{field}={n * max(1, config[field] // n)}).")
  if config.parallelism == "pmap" and config.batch_size % jax.local_device_count():
    raise errors.UserError(
        f"batch_size={config.batch_size} must split over the {jax.local_device_count()} local "
        "devices for pmap; use a multiple of it, or --config.parallelism=jit.")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first invalid config value and the flag that fixes it."""
  _check_datasets(config)
  if config.get("augment") is not None:
    augment.check_config(config.augment)
  losses.check_loss_config(config.loss)
  for field, allowed in (("parallelism", PARALLELISMS), ("test_time", TEST_TIMES),
                         ("on_nonfinite", ON_NONFINITE), ("compute_dtype", tuple(COMPUTE_DTYPES))):
    _check_choice(config, field, allowed)
  _check_model(config)
  from dofjax import input_pipeline
  input_pipeline.check_crop(config.image_size, config.load_size)
  _check_schedule(config)
  _check_batches(config)
  if config.get("samples_real_photo") and config.num_samples > 0:
    from dofjax import real_frames  # pylint: disable=g-import-not-at-top
    real_frames.check_motorcycle_available(
        ", or set --config.samples_real_photo=False (the samples then show synthetic frames only)")
  if not 0 < config.depth_near_m < config.depth_far_m:
    raise errors.UserError("Need 0 < depth_near_m < depth_far_m; got "
                           f"{config.depth_near_m}, {config.depth_far_m}.")
