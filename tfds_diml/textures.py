"""Image textures for the realistic synthetic rooms: real photos and procedural materials.

Photos come from scikit-image's bundled sample images (`skimage.data`: brick, grass, gravel,
astronaut, rocket, coffee, ...; real photographs shipped inside its wheel, nothing is
downloaded). The procedural ones (wood planks, woven fabric, plaster) are periodic noise images
made here. Every texture is a mip pyramid (`scenes.Material.texture`) of linear-RGB float32
images, finest first, at most `_SIZE` pixels on a side; `textured` wraps one into a Material.

Textures are made once per process (cached) and are deterministic. The Middlebury motorcycle
images scikit-image also bundles are never used: they are a real test photo for depth models.
"""

import functools
from typing import Tuple

import cv2
import numpy as np

from tfds_diml import scenes

_SIZE = 256  # Longest side of the finest mip level, pixels.

# Bundled grey photographs that tile (surfaces), and colour or grey photos for posters and rugs.
SURFACE_PHOTOS = ("brick", "grass", "gravel")
PICTURE_PHOTOS = ("astronaut", "rocket", "coffee", "chelsea", "hubble_deep_field",
                  "immunohistochemistry", "camera", "moon", "retina", "colorwheel", "page", "text",
                  "coins", "clock")
PROCEDURAL = ("wood", "fabric", "plaster")
NUM_VARIANTS = 4  # Procedural textures come in this many variants (the `variant` argument).


def mip_pyramid(image: np.ndarray) -> Tuple[np.ndarray, ...]:
  """(h, w, 3) float32 -> tuple of it and its successive 2x area-averaged reductions, down to
  4 pixels on the short side."""
  levels = [np.ascontiguousarray(image, np.float32)]
  while min(levels[-1].shape[:2]) >= 8:
    h, w = levels[-1].shape[:2]
    levels.append(cv2.resize(levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
  return tuple(levels)


def _fit(image: np.ndarray) -> np.ndarray:
  """Resizes (area average) so the longest side is at most _SIZE pixels."""
  h, w = image.shape[:2]
  scale = _SIZE / max(h, w)
  if scale >= 1.0:
    return image
  return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                    interpolation=cv2.INTER_AREA)


@functools.lru_cache(maxsize=None)
def photo(name: str, turned: bool = False) -> Tuple[np.ndarray, ...]:
  """Mip pyramid of scikit-image's bundled sample image `name` (e.g. 'brick', 'astronaut'),
  linear RGB in [0, 1]; grey photos are repeated over the three channels. turned: rotated a
  quarter turn (the 'brick' photo is a pavement whose courses run up the image)."""
  if name not in SURFACE_PHOTOS + PICTURE_PHOTOS:
    raise ValueError(f"Unknown photo {name!r}; use one of {SURFACE_PHOTOS + PICTURE_PHOTOS}.")
  # Imported here: scikit-image is needed only to generate the synthetic rooms.
  from skimage import data  # pylint: disable=g-import-not-at-top
  image = np.asarray(getattr(data, name)())
  if image.dtype == bool:
    image = image.astype(np.uint8) * 255
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=2)
  srgb = _fit(image[..., :3].astype(np.float32) / 255.0)
  if turned:
    srgb = np.ascontiguousarray(np.rot90(srgb))
  return mip_pyramid(scenes.srgb_to_linear(srgb))


def _periodic_noise(rng, size: int, sigma_u: float, sigma_v: float) -> np.ndarray:
  """(size, size) float32 noise that tiles, low-pass filtered in frequency (Gaussian of widths
  sigma_u, sigma_v cycles per tile: small = smooth, unequal = stretched), scaled to [0, 1]."""
  white = rng.standard_normal((size, size))
  fy, fx = np.meshgrid(np.fft.fftfreq(size) * size, np.fft.fftfreq(size) * size, indexing="ij")
  gain = np.exp(-0.5 * ((fx / sigma_u) ** 2 + (fy / sigma_v) ** 2))
  noise = np.real(np.fft.ifft2(np.fft.fft2(white) * gain))
  return ((noise - noise.min()) / (np.ptp(noise) + 1e-12)).astype(np.float32)


def _wood(rng, size):
  """Planks along u with grain: brightness in about [0.45, 1]."""
  planks = 6
  v = np.arange(size) / size
  plank = np.floor(v * planks).astype(int)  # Rows belong to planks.
  tone = rng.uniform(0.75, 1.0, planks)[plank][:, None]
  grain = _periodic_noise(rng, size, 2.0, 40.0)
  rings = 0.5 + 0.5 * np.sin(2 * np.pi * (v[:, None] * 30 + 6.0 * grain))
  joint = (np.abs((v * planks) % 1.0 - 0.5) > 0.47)[:, None]
  out = tone * (0.7 + 0.3 * rings) * (0.85 + 0.15 * _periodic_noise(rng, size, 30.0, 30.0))
  return np.where(joint, 0.45, out)


def _fabric(rng, size):
  """A woven cloth: over-under threads plus mottling, brightness in about [0.6, 1]."""
  threads = 64
  x = np.arange(size) / size * threads
  warp = np.sin(np.pi * (x % 1.0))[None, :] ** 0.5
  weft = np.sin(np.pi * (x % 1.0))[:, None] ** 0.5
  over = ((np.floor(x)[None, :] + np.floor(x)[:, None]) % 2).astype(bool)
  weave = np.where(over, warp * np.ones_like(weft), weft * np.ones_like(warp))
  return (0.75 + 0.15 * weave) * (0.8 + 0.2 * _periodic_noise(rng, size, 6.0, 6.0))


def _plaster(rng, size):
  """Painted plaster: gentle blotches and fine grain, brightness in about [0.85, 1]."""
  return (0.88 + 0.08 * _periodic_noise(rng, size, 4.0, 4.0)
          + 0.04 * _periodic_noise(rng, size, 60.0, 60.0))


@functools.lru_cache(maxsize=None)
def procedural(kind: str, variant: int) -> Tuple[np.ndarray, ...]:
  """Mip pyramid of procedural texture `kind` (in PROCEDURAL), variant 0..NUM_VARIANTS-1: a
  grey brightness image (linear, in [0, 1]) meant to be tinted by the material's colour."""
  makers = {"wood": _wood, "fabric": _fabric, "plaster": _plaster}
  if kind not in makers or not 0 <= variant < NUM_VARIANTS:
    raise ValueError(f"Unknown procedural texture {kind!r}/{variant}; use one of {PROCEDURAL} "
                     f"and a variant in 0..{NUM_VARIANTS - 1}.")
  rng = np.random.default_rng([PROCEDURAL.index(kind), variant, 4099])
  grey = np.clip(makers[kind](rng, _SIZE), 0.0, 1.0).astype(np.float32)
  return mip_pyramid(np.repeat(grey[..., None], 3, axis=2))


def textured(pyramid, tint, size_m, origin_m=(0.0, 0.0), emission=0.0) -> scenes.Material:
  """A Material showing `pyramid` tinted by `tint` (3,) (linear RGB multiplier), one repeat per
  size_m (u, v) metres from origin_m (see `scenes.Material`)."""
  tint = np.asarray(tint, np.float32)
  return scenes.Material(kind="solid", color_a=tint, color_b=tint, scale=1.0, angle=0.0, seed=0,
                         emission=float(emission), texture=pyramid,
                         texture_size_m=(float(size_m[0]), float(size_m[1])),
                         texture_origin_m=(float(origin_m[0]), float(origin_m[1])))
