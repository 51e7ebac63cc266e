"""Photometric augmentation of training photos (config.augment), to make synthetic renders look
more like the photos of real cameras. It changes the image only, never the depth.

Applied by `input_pipeline.train_example` after the random crop and flip, to the uint8 crop,
drawing from the example's own random generator (so a run is reproducible from its seed). Each
effect happens with its probability (`*_prob`; all 0 in configs/base.py: off, and the pipeline
is then bit-identical to one without augmentation); its strength is drawn uniformly up to its
limit. In this order, as a camera would:

  colour   (color_prob): brightness x U(1 - brightness, 1 + brightness); contrast about the mean
           luma x U(1 - contrast, 1 + contrast); saturation about each pixel's luma
           x U(1 - saturation, 1 + saturation); hue rotated by U(-hue, hue) turns (YIQ); a
           per-channel gain (white balance) x U(1 - channel_gain, 1 + channel_gain) each;
  gamma    (gamma_prob): x -> x ** g, log g ~ U(-log(1 + gamma), log(1 + gamma));
  blur     (blur_prob): Gaussian, sigma ~ U(0, blur_sigma) pixels;
  noise    (noise_prob): additive Gaussian, std ~ U(0, noise_std) (image in [0, 1]);
  jpeg     (jpeg_prob): an OpenCV JPEG round trip at a quality ~ U{jpeg_quality_min..100}.
"""

import dataclasses
import math
from typing import Optional

import cv2
import numpy as np

from dofjax import errors

# field -> (lowest, highest, what it is): the valid range of every config.augment field.
FIELDS = {
    "color_prob": (0.0, 1.0, "the probability of the colour jitter"),
    "brightness": (0.0, 0.99, "the brightness factor's spread, e.g. 0.2"),
    "contrast": (0.0, 0.99, "the contrast factor's spread, e.g. 0.2"),
    "saturation": (0.0, 0.99, "the saturation factor's spread, e.g. 0.2"),
    "hue": (0.0, 0.5, "the largest hue rotation in turns, e.g. 0.03"),
    "channel_gain": (0.0, 0.99, "the per-channel gain's spread, e.g. 0.1"),
    "gamma_prob": (0.0, 1.0, "the probability of a gamma change"),
    "gamma": (0.0, 2.0, "gamma spans [1 / (1 + gamma), 1 + gamma], e.g. 0.25"),
    "blur_prob": (0.0, 1.0, "the probability of a Gaussian blur"),
    "blur_sigma": (0.0, 5.0, "the largest blur sigma in pixels, e.g. 0.8"),
    "noise_prob": (0.0, 1.0, "the probability of Gaussian noise"),
    "noise_std": (0.0, 0.5, "the largest noise std on [0, 1] pixels, e.g. 0.02"),
    "jpeg_prob": (0.0, 1.0, "the probability of a JPEG round trip"),
    "jpeg_quality_min": (1, 100, "the lowest JPEG quality, an integer, e.g. 60"),
}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Settings:
  """The config.augment fields (see the module docstring); picklable, for grain's workers."""
  color_prob: float = 0.0
  brightness: float = 0.0
  contrast: float = 0.0
  saturation: float = 0.0
  hue: float = 0.0
  channel_gain: float = 0.0
  gamma_prob: float = 0.0
  gamma: float = 0.0
  blur_prob: float = 0.0
  blur_sigma: float = 0.0
  noise_prob: float = 0.0
  noise_std: float = 0.0
  jpeg_prob: float = 0.0
  jpeg_quality_min: int = 100


def check_config(augment) -> None:
  """UserError naming --config.augment.<field> for an unknown field, a value out of its range
  (FIELDS), or a jpeg_quality_min that is not an integer. `augment`: the config.augment dict."""
  for field, value in augment.items():
    if field not in FIELDS:
      raise errors.UserError(f"augment.{field} is not an augmentation setting; the fields are "
                             f"{', '.join(FIELDS)} (set them with --config.augment.<field>=...).")
    lo, hi, what = FIELDS[field]
    integer = isinstance(lo, int)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
        or (integer and value != int(value)) or not lo <= value <= hi):
      raise errors.UserError(
          f"augment.{field}={value!r} must be {'an integer' if integer else 'a number'} in "
          f"[{lo}, {hi}] ({what}); set --config.augment.{field}=...")


def from_config(config) -> Optional[Settings]:
  """The Settings of config.augment (validated), or None when every probability is 0 (or the
  config has no augment field): augmentation off."""
  augment = config.get("augment")
  if not augment:
    return None
  check_config(augment)
  settings = Settings(**{k: (int(v) if isinstance(FIELDS[k][0], int) else float(v))
                         for k, v in augment.items()})
  if not any(getattr(settings, f) > 0 for f in FIELDS if f.endswith("_prob")):
    return None
  return settings


def _factor(rng, spread):
  return float(rng.uniform(1.0 - spread, 1.0 + spread))


def _colour(x, rng, s):
  """Colour jitter of x (H, W, 3) float32 in [0, 1] -> same, clipped to [0, 1]."""
  x = x * _factor(rng, s.brightness)
  mean_luma = float((x @ _LUMA).mean())
  x = (x - mean_luma) * _factor(rng, s.contrast) + mean_luma
  luma = (x @ _LUMA)[..., None]
  x = (x - luma) * _factor(rng, s.saturation) + luma
  angle = 2.0 * math.pi * float(rng.uniform(-s.hue, s.hue))
  c, n = math.cos(angle), math.sin(angle)
  rotate = np.array([[1, 0, 0], [0, c, -n], [0, n, c]], np.float32)
  x = x @ (_YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ).T
  x = x * rng.uniform(1.0 - s.channel_gain, 1.0 + s.channel_gain, 3).astype(np.float32)
  return np.clip(x, 0.0, 1.0)


def _jpeg(image_u8, quality):
  """uint8 (H, W, 3) RGB through an OpenCV JPEG encode/decode at `quality` (1-100)."""
  ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image_u8[..., ::-1]),
                         [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise RuntimeError(f"OpenCV failed to JPEG-encode a {image_u8.shape} image.")
  return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def apply(image_u8: np.ndarray, rng: np.random.Generator,
          settings: Optional[Settings]) -> np.ndarray:
  """Photometric augmentation of one training crop.

  image_u8: uint8 (H, W, 3) RGB; rng: the example's generator (draws are made only for the
  effects whose probability is > 0); settings: None = off (image returned unchanged, nothing
  drawn). Returns uint8 (H, W, 3) RGB, the same size.
  """
  s = settings
  if s is None:
    return image_u8
  happens = lambda p: p > 0 and rng.random() < p
  x = image_u8.astype(np.float32) / np.float32(255.0)
  if happens(s.color_prob):
    x = _colour(x, rng, s)
  if happens(s.gamma_prob):
    x = x ** np.float32(math.exp(rng.uniform(-math.log1p(s.gamma), math.log1p(s.gamma))))
  if happens(s.blur_prob):
    sigma = float(rng.uniform(0.0, s.blur_sigma))
    if sigma > 0:
      x = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
  if happens(s.noise_prob):
    std = np.float32(rng.uniform(0.0, s.noise_std))
    x = x + std * rng.standard_normal(x.shape, dtype=np.float32)
  out = np.round(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
  if happens(s.jpeg_prob):
    out = _jpeg(out, rng.integers(s.jpeg_quality_min, 101))
  return out
