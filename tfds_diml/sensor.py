"""What a real camera does to a scene's light: exposure, white balance, vignetting, lens blur,
noise and JPEG compression, applied to a rendered linear-radiance image.

`photo` turns unclipped linear radiance (H, W, 3) into the uint8 sRGB photo a phone or compact
camera would store; `exposure_gain` is its auto-exposure alone (for pairs of renders that must
share one exposure, e.g. a pinhole photo and its thin-lens ground truth). Everything is
deterministic in the seed. Depth maps are never touched: only the stored photo changes.

Ranges (uniform draws per photo):
  exposure    auto-exposure to a log-average luminance of 0.18, then -0.5..+0.5 EV of error
  white bal.  red and blue gains 0.9..1.1 relative to green (an imperfect illuminant estimate)
  vignetting  brightness falling by 0..35% at the corners (quadratic in the radius)
  blur        Gaussian, sigma 0.3..0.8 px (lens and demosaicing softness)
  noise       shot noise (variance 2e-4..3e-3 x signal) plus read noise (sigma 0.002..0.01)
  JPEG        quality 70..95, through OpenCV's encoder and decoder
"""

import cv2
import numpy as np

from tfds_diml import scenes

_KEY = 0.18  # Mid-grey: the log-average luminance auto-exposure aims for.
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Linear sRGB -> luminance.


def _rng(seed: int):
  return np.random.default_rng([int(seed), 60_013])


def exposure_gain(linear: np.ndarray, seed: int) -> float:
  """Auto-exposure: the factor that brings linear radiance (H, W, 3) to a log-average luminance
  of 0.18, times 2^e with e uniform in -0.5..0.5 (deterministic in seed)."""
  lum = np.asarray(linear, np.float32) @ _LUMA
  log_mean = float(np.exp(np.mean(np.log(np.maximum(lum, 0.0) + 1e-4))))
  return _KEY / max(log_mean, 1e-4) * 2.0 ** _rng(seed).uniform(-0.5, 0.5)


def photo(linear: np.ndarray, seed: int) -> np.ndarray:
  """The uint8 (H, W, 3) sRGB photo of unclipped linear radiance (H, W, 3) >= 0 (see module
  docstring for the effects and their ranges), deterministic in seed."""
  rng = _rng(seed + 1)
  h, w = linear.shape[:2]
  x = np.asarray(linear, np.float32) * np.float32(exposure_gain(linear, seed))
  x = x * np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)], np.float32)
  yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
  radius2 = (xx ** 2 + yy ** 2) / 2.0  # 1 in the corners.
  x = x * (1.0 - rng.uniform(0.0, 0.35) * radius2).astype(np.float32)[..., None]
  x = cv2.GaussianBlur(x, (0, 0), sigmaX=rng.uniform(0.3, 0.8), borderType=cv2.BORDER_REFLECT)
  shot, read = rng.uniform(2e-4, 3e-3), rng.uniform(0.002, 0.01)
  sigma = np.sqrt(shot * np.clip(x, 0.0, 1.0) + read ** 2)
  x = x + sigma * rng.standard_normal(x.shape).astype(np.float32)
  srgb = np.round(scenes.linear_to_srgb(x) * 255.0).astype(np.uint8)
  quality = int(rng.integers(70, 96))
  ok, jpeg = cv2.imencode(".jpg", srgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
  if not ok:
    raise RuntimeError(f"OpenCV failed to encode a {srgb.shape} photo as JPEG.")
  return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1].copy()
