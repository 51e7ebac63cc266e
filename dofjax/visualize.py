"""Pictures for people: colour-mapped depth and image grids (numpy, uint8 out)."""

import numpy as np

_CMAP_CACHE = {}


def _colormap_table(name: str) -> np.ndarray:
  """(256, 3) uint8 lookup table of a matplotlib colormap."""
  if name not in _CMAP_CACHE:
    from matplotlib import colormaps
    _CMAP_CACHE[name] = (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
  return _CMAP_CACHE[name]


def colorize(values, vmin: float = -1.0, vmax: float = 1.0, cmap: str = "magma"):
  """Any-shape (..., H, W) or (..., H, W, 1) float -> (..., H, W, 3) uint8, vmax = brightest.

  For the network's inverse-depth code in [-1, 1] the defaults give bright = near.
  """
  values = np.asarray(values, dtype=np.float32)
  if values.shape[-1] == 1:
    values = values[..., 0]
  t = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
  t = np.nan_to_num(t, nan=0.0)
  return _colormap_table(cmap)[np.round(t * 255).astype(np.int32)]


def colorize_depth_m(depth_m, near: float = 0.5, far: float = 10.0, cmap: str = "magma"):
  """Depth in metres (..., H, W[, 1]) -> uint8 RGB, bright = near (inverse-depth scale); 0 -> black."""
  depth_m = np.asarray(depth_m, dtype=np.float32)
  if depth_m.shape[-1] == 1:
    depth_m = depth_m[..., 0]
  inv = np.where(depth_m > 0, 1.0 / np.maximum(depth_m, 1e-6), 0.0)
  rgb = colorize(inv, vmin=1.0 / far, vmax=1.0 / near, cmap=cmap)
  return np.where((depth_m > 0)[..., None], rgb, 0).astype(np.uint8)


def to_uint8(image, low: float = 0.0, high: float = 1.0):
  """Float image in [low, high] (..., H, W, 3) -> uint8, clipped."""
  image = (np.asarray(image, dtype=np.float32) - low) / (high - low)
  return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def grid(rows, pad: int = 2):
  """List of rows, each a list of (H, W, 3) uint8 tiles of one size -> one (H', W', 3) uint8."""
  h, w = rows[0][0].shape[:2]
  ncols = max(len(r) for r in rows)
  out = np.full((len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
  for i, row in enumerate(rows):
    for j, tile in enumerate(row):
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      out[y:y + h, x:x + w] = tile
  return out


def label_columns(image_uint8, labels, tile_width: int, pad: int = 2, height: int = 18):
  """A `grid` picture with a white strip on top naming each column (black text, one label per
  tile of `tile_width` px). Grids of tiles narrower than 128 px are first enlarged by an integer
  factor (nearest neighbour) so that the labels fit and the pictures can be seen."""
  import cv2
  image = np.asarray(image_uint8)
  factor = -(-128 // tile_width) if tile_width < 128 else 1
  if factor > 1:
    image = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    tile_width, pad = tile_width * factor, pad * factor
  strip = np.full((height, image.shape[1], 3), 255, np.uint8)
  font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
  for j, text in enumerate(labels):
    while text and cv2.getTextSize(text, font, scale, 1)[0][0] > tile_width - 2:
      text = text[:-1]
    x = pad + j * (tile_width + pad) + 1
    cv2.putText(strip, text, (x, height - 5), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
  return np.concatenate([strip, image], axis=0)
