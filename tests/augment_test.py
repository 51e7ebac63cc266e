"""Photometric augmentation (config.augment): off by default and then a no-op, on it changes the
photo only, deterministically from the example's generator; bad settings are one clear error."""

import numpy as np
import pytest

from configs import base
from configs import tiny
from dofjax import augment
from dofjax import config as config_lib
from dofjax import errors
from dofjax import input_pipeline

# Every effect at full probability and a clearly visible strength.
ALL_ON = dict(color_prob=1.0, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05,
              channel_gain=0.2, gamma_prob=1.0, gamma=0.5, blur_prob=1.0, blur_sigma=1.5,
              noise_prob=1.0, noise_std=0.05, jpeg_prob=1.0, jpeg_quality_min=20)
ONE_EFFECT = {"colour": dict(color_prob=1.0, hue=0.1), "gamma": dict(gamma_prob=1.0, gamma=0.5),
              "blur": dict(blur_prob=1.0, blur_sigma=2.0),
              "noise": dict(noise_prob=1.0, noise_std=0.05),
              "jpeg": dict(jpeg_prob=1.0, jpeg_quality_min=10)}


def _example():
  """A decoded 40x48 example: a smooth colourful image and a depth ramp with a hole."""
  y, x = np.mgrid[0:40, 0:48]
  image = np.stack([x * 5, y * 6, (x + y) * 3], -1).astype(np.uint8)
  depth = (1000 + 50 * x + 20 * y).astype(np.uint16)[..., None]
  depth[5:9, 5:9] = 0
  return {"image": image, "depth": depth, "scene": b"s", "stem": b"0"}


def _settings(**fields):
  config = base.get_config()
  config.augment.update(fields)
  return augment.from_config(config)


def _train_example(settings, seed=3):
  return input_pipeline.train_example(
      _example(), np.random.default_rng(seed), load_size=36, crop_size=32, flip=True, near=0.5,
      far=10.0, augment=settings)


def test_off_in_every_shipped_default_and_then_a_no_op_that_draws_nothing():
  assert augment.from_config(base.get_config()) is None
  assert augment.from_config(tiny.get_config()) is None
  assert _settings(brightness=0.5, noise_std=0.1) is None  # Strengths without probabilities.
  rng = np.random.default_rng(0)
  image = _example()["image"]
  assert augment.apply(image, rng, None) is image
  assert rng.random() == np.random.default_rng(0).random()  # Nothing was drawn.


def test_on_changes_the_photo_only_deterministically_and_within_range():
  off, on = _train_example(None), _train_example(_settings(**ALL_ON))
  again = _train_example(_settings(**ALL_ON))
  assert np.abs(on["image"] - off["image"]).mean() > 0.02
  for key in ("depth", "target", "mask"):
    np.testing.assert_array_equal(on[key], off[key])
  for key in on:
    np.testing.assert_array_equal(on[key], again[key])
  assert on["image"].dtype == np.float32 and -1.0 <= on["image"].min() <= on["image"].max() <= 1.0
  assert not np.array_equal(on["image"], _train_example(_settings(**ALL_ON), seed=4)["image"])


@pytest.mark.parametrize("effect", sorted(ONE_EFFECT))
def test_each_effect_alone_changes_the_photo(effect):
  image = _example()["image"]
  out = augment.apply(image, np.random.default_rng(1), _settings(**ONE_EFFECT[effect]))
  assert out.shape == image.shape and out.dtype == np.uint8
  assert np.abs(out.astype(int) - image).mean() > 0.3, effect


@pytest.mark.parametrize("field, value, message", [
    ("brightness", 1.5, r"augment.brightness=1.5 must be a number in \[0.0, 0.99\]"),
    ("hue", 0.7, r"augment.hue=0.7 must be a number in \[0.0, 0.5\]"),
    ("noise_prob", -0.1, r"augment.noise_prob=-0.1 must be a number in \[0.0, 1.0\]"),
    ("jpeg_quality_min", 0, r"augment.jpeg_quality_min=0 must be an integer in \[1, 100\]"),
])
def test_bad_setting_is_one_clear_error_naming_the_flag(field, value, message):
  config = tiny.get_config()
  config.augment[field] = value
  with pytest.raises(errors.UserError, match=message) as info:
    config_lib.validate(config)
  assert f"--config.augment.{field}=" in str(info.value)


def test_train_iterator_applies_the_config_to_photos_only(synthetic_data_dir):
  def first_batch(**fields):
    config = tiny.get_config()
    config.data_dir = synthetic_data_dir
    config.augment.update(fields)
    iterator = input_pipeline.create_train_iterator(config, process_index=0, process_count=1)
    return next(iterator), iterator.get_state()["fingerprint"]

  (off, off_print), (on, on_print) = first_batch(), first_batch(**ALL_ON)
  assert np.abs(on["image"] - off["image"]).mean() > 0.02
  for key in ("depth", "target", "mask"):
    np.testing.assert_array_equal(on[key], off[key])
  assert "augment" not in off_print and on_print["augment"]["jpeg_quality_min"] == 20
