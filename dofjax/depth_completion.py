"""Filling the holes of a photo's depth map, guided by the photo (numpy, scipy, OpenCV).

Depth sensors and stereo leave holes: occlusion shadows beside depth edges (the background seen
by one view only), bands and borders the sensor does not cover, dropouts on dark, shiny or
distant surfaces. Before the renderer layers the depth, every hole gets a depth:

- Thin holes beside a depth edge (every pixel within `SHADOW_WIDTH_FRACTION` of the image width
  of a valid pixel, and valid depths around the hole differing by more than `EDGE_RATIO` in
  disparity) are occlusion shadows: they take the farther of their nearest valid neighbours along
  rows and columns (`fill_farther`), a depth present in the map, never an in-between one.
- Every other hole is filled by colourisation (Levin, Lischinski and Weiss, SIGGRAPH 2004, as the
  NYU Depth v2 toolbox fills its raw frames): each hole pixel's disparity is the weighted mean of
  its 8 neighbours', weights exp(-(Y_r - Y_s)^2 / sigma_r^2) on the photo's grey level Y, sigma_r^2
  from the local variance, so a hole takes the depth of the surface it looks like and depth edges
  follow the photo's edges. One sparse linear solve over the hole pixels, at a working size of at
  most `WORK_PIXELS` (larger photos: solved at that size, then upsampled into the holes).
- A depth map smaller than its photo (a phone's depth image) is upsampled guided by the photo
  (`upsample_guided`).
  Chosen over the farther-neighbour fill everywhere (blocks and hard seams across large holes)
  by the hole columns of `python -m dofjax.benchmark dof --quality` (docs/render.md).

Depth is in metres, 0 = invalid (docs/design.md); the fill works in disparity (1/m).
"""

import cv2
import numpy as np

from dofjax import depth as depth_lib
from dofjax import errors

WORK_PIXELS = 640 * 480       # Largest size of the colourisation solve (more: solved smaller).
SHADOW_WIDTH_FRACTION = 0.01  # Thin hole: no pixel farther than this x width (>= 2 px) from valid.
EDGE_RATIO = 1.1              # Beside a depth edge: valid disparities around it differ by > 10%.


def complete_depth(image01, depth_m, *, work_pixels=WORK_PIXELS):
  """Fills the invalid pixels of a depth map, guided by the photo.

  Args:
    image01: (H, W, 3) sRGB in [0, 1], the photo the depth belongs to.
    depth_m: (H, W) metres, 0 = invalid.
    work_pixels: largest number of pixels of the colourisation solve.
  Returns:
    (depth (H, W) float32 metres, all > 0; filled (H, W) bool, True where the depth was
    inferred). UserError if no pixel is valid.
  """
  depth_m = np.asarray(depth_m, np.float32)
  valid = depth_m > 0
  if valid.all():
    return depth_m, ~valid
  if not valid.any():
    raise errors.UserError("the depth map has no valid pixels (all 0 or >= 65.5 m).")
  h, w = depth_m.shape
  disp = np.where(valid, 1.0 / np.maximum(depth_m, 1e-6), 0.0).astype(np.float32)
  if h * w > work_pixels:
    scale = (work_pixels / (h * w)) ** 0.5
    sh, sw = max(1, int(h * scale)), max(1, int(w * scale))
    small = depth_lib.resize_in_disparity(depth_m, sh, sw)
    if not (small > 0).any():
      small = cv2.resize(depth_m, (sw, sh), interpolation=cv2.INTER_NEAREST)
    small_image = cv2.resize(np.asarray(image01, np.float32), (sw, sh),
                             interpolation=cv2.INTER_AREA)
    guided = 1.0 / complete_depth(small_image, small, work_pixels=work_pixels)[0]
    guided = cv2.resize(guided, (w, h), interpolation=cv2.INTER_LINEAR)
  else:
    guided = colourise(_grey(image01), disp, valid)
  filled = np.where(valid, disp, guided)
  shadows = occlusion_shadows(disp, valid)
  if shadows.any():
    filled = np.where(shadows, 1.0 / fill_farther(depth_m), filled)
  return (1.0 / np.maximum(filled, 1e-6)).astype(np.float32), ~valid


def upsample_guided(image01, values, height, width, eps=1e-4):
  """A low-resolution map (disparity, say) brought to the photo's size with edges where the
  photo has them: bilinear upsampling, then a guided filter (He, Sun and Tang, ECCV 2010) with
  the photo's grey level as guide, over windows as wide as two low-resolution pixels.

  image01: (height, width, 3) sRGB in [0, 1]; values: (h, w) float, all valid. Returns
  (height, width) float32 (clipped to the range of `values`).
  """
  values = np.asarray(values, np.float32)
  up = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
  if values.shape == (height, width):
    return up
  radius = max(1, int(round(2 * width / values.shape[1])))
  grey = _grey(image01).astype(np.float32)
  box = lambda x: cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1))
  mean_g, mean_v = box(grey), box(up)
  cov = box(grey * up) - mean_g * mean_v
  var = box(grey * grey) - mean_g * mean_g
  scale = cov / (var + eps)
  offset = mean_v - scale * mean_g
  out = box(scale) * grey + box(offset)
  return np.clip(out, values.min(), values.max()).astype(np.float32)


def _grey(image01):
  """(H, W) grey level in [0, 1] of an (H, W, 3) sRGB photo (Rec. 601 luma, as NYU's rgb2gray)."""
  img = np.clip(np.asarray(image01, np.float64), 0.0, 1.0)
  return img @ np.array([0.299, 0.587, 0.114])


def colourise(grey, values, known):
  """Levin et al.'s colourisation of `values` into the unknown pixels, guided by `grey`.

  Args:
    grey: (H, W) guide in [0, 1]; values: (H, W) float, used where `known`; known: (H, W) bool.
  Returns:
    (H, W) float32: `values` where known; elsewhere the solution of v_r = sum_s w_rs v_s over the 8
    neighbours s of each unknown pixel r (weights normalised to 1, exp(-(g_r - g_s)^2 / c_r),
    c_r = max(0.6 var(3x3 window), 2e-6, min_s (g_r - g_s)^2 / ln 100): the NYU toolbox's choice).
  """
  from scipy import sparse  # pylint: disable=g-import-not-at-top
  from scipy.sparse import linalg  # pylint: disable=g-import-not-at-top
  h, w = grey.shape
  unknown = ~known
  n = int(unknown.sum())
  index = np.full((h, w), -1, np.int64)
  index[unknown] = np.arange(n)
  ys, xs = np.nonzero(unknown)
  offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
  ny = np.stack([np.clip(ys + dy, 0, h - 1) for dy, _ in offsets], 1)
  nx = np.stack([np.clip(xs + dx, 0, w - 1) for _, dx in offsets], 1)
  inside = np.stack([(ys + dy >= 0) & (ys + dy < h) & (xs + dx >= 0) & (xs + dx < w)
                     for dy, dx in offsets], 1)
  centre = grey[ys, xs][:, None]
  near = grey[ny, nx]
  window = np.concatenate([centre, np.where(inside, near, centre)], 1)
  c = np.maximum(0.6 * window.var(axis=1), 2e-6)
  diff2 = np.where(inside, (near - centre) ** 2, np.inf)
  c = np.maximum(c, diff2.min(axis=1) / np.log(100.0))[:, None]
  weight = np.where(inside, np.exp(-(near - centre) ** 2 / c), 0.0)
  weight /= weight.sum(axis=1, keepdims=True)
  neighbour = index[ny, nx]
  is_unknown = inside & (neighbour >= 0)
  rows = np.repeat(np.arange(n)[:, None], len(offsets), 1)
  a = sparse.csr_matrix(
      (np.concatenate([np.ones(n), -weight[is_unknown]]),
       (np.concatenate([np.arange(n), rows[is_unknown]]),
        np.concatenate([np.arange(n), neighbour[is_unknown]]))), shape=(n, n))
  known_part = np.where(inside & ~is_unknown, weight * values[ny, nx], 0.0).sum(axis=1)
  solution = linalg.spsolve(a.tocsc(), known_part)
  out = np.asarray(values, np.float64).copy()
  out[unknown] = solution
  return out.astype(np.float32)


def occlusion_shadows(disparity, valid):
  """(H, W) bool: the hole pixels of thin holes beside a depth edge (see the module docstring).

  disparity: (H, W) 1/m where valid; valid: (H, W) bool. A hole (8-connected component of
  invalid pixels) is thin when no pixel of it is farther than SHADOW_WIDTH_FRACTION of the width
  (at least 2 px) from a valid pixel, and beside a depth edge when the valid pixels bordering it
  span a disparity ratio above EDGE_RATIO.
  """
  h, w = valid.shape
  holes = (~valid).astype(np.uint8)
  count, labels = cv2.connectedComponents(holes, connectivity=8)
  dist = cv2.distanceTransform(holes, cv2.DIST_L2, 3)
  thick = np.zeros(count, np.float32)
  np.maximum.at(thick, labels.ravel(), dist.ravel())
  ring = cv2.dilate(holes, np.ones((3, 3), np.uint8)).astype(bool) & valid
  # Each ring pixel borders the holes of its 3x3 neighbourhood: spread labels outwards by one.
  near_label = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int64)
  lo = np.full(count, np.inf)
  hi = np.zeros(count)
  np.minimum.at(lo, near_label[ring], disparity[ring])
  np.maximum.at(hi, near_label[ring], disparity[ring])
  limit = max(2.0, SHADOW_WIDTH_FRACTION * w)
  shadow = (thick <= limit) & (hi > EDGE_RATIO * lo)
  shadow[0] = False
  return shadow[labels]


def fill_farther(depth_m):
  """Fills invalid (0) depth with the farther of its nearest valid neighbours.

  Occlusion shadows beside depth edges are the background seen by one view only. So each invalid
  pixel takes the smallest disparity (the farthest depth) among the nearest valid pixels to its
  left, right, above and below; pixels with none in their row and column take the farthest valid
  depth. Every filled value is a depth present in the map, never an in-between one (which would
  float on a layer of its own as a dotted outline).

  Args:
    depth_m: (H, W) metres, 0 = invalid.
  Returns:
    (H, W) float32 metres, all > 0. UserError if no pixel is valid.
  """
  valid = depth_m > 0
  if valid.all():
    return depth_m
  if not valid.any():
    raise errors.UserError("the depth map has no valid pixels (all 0 or >= 65.5 m).")
  disp = np.where(valid, 1.0 / np.maximum(depth_m, 1e-6), np.inf).astype(np.float32)
  farthest = np.full(disp.shape, np.inf, np.float32)
  for axis in (0, 1):
    for flip in (False, True):
      farthest = np.minimum(farthest, _nearest_valid(disp, valid, axis, flip))
  filled = np.where(valid, disp, farthest)
  filled = np.where(np.isfinite(filled), filled, disp[valid].min())
  return (1.0 / filled).astype(np.float32)


def _nearest_valid(values, valid, axis, reverse):
  """(H, W): the value of the nearest valid pixel before each pixel along `axis` (after it if
  `reverse`), the pixel's own where valid; inf where there is none."""
  if reverse:
    return np.flip(_nearest_valid(np.flip(values, axis), np.flip(valid, axis), axis, False), axis)
  shape = [1, 1]
  shape[axis] = values.shape[axis]
  index = np.where(valid, np.arange(values.shape[axis]).reshape(shape), -1)
  index = np.maximum.accumulate(index, axis=axis)
  found = np.take_along_axis(values, np.maximum(index, 0), axis=axis)
  return np.where(index >= 0, found, np.inf)
