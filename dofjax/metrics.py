"""Evaluation metrics in jax.numpy: depth (Eigen/BTS), depth boundaries (iBims-1), images (bokeh).

Everything here is jit-able and works on static shapes: invalid pixels are handled with masks,
never boolean indexing. Functions named `*_per_image` take a batch and return a dict of (N,)
arrays; the plain names return the mean over images (dict of scalars).

Depth metrics (docs/design.md, "Reference facts"; the BTS / ZoeDepth evaluation code): per
image, over the valid pixels `min_depth < gt < max_depth`, with the prediction clipped to [min_depth, max_depth]:

  abs_rel  = mean(|pred - gt| / gt)           sq_rel   = mean((pred - gt)^2 / gt)
  rmse     = sqrt(mean((pred - gt)^2))        rmse_log = sqrt(mean((log pred - log gt)^2))
  log10    = mean(|log10 pred - log10 gt|)    silog    = 100 sqrt(max(var(d), 0)),
                                                         d = log pred - log gt
  d1, d2, d3 = fraction of pixels with max(pred/gt, gt/pred) < 1.25, 1.25^2, 1.25^3

then the unweighted mean over images. `var(d)` is computed as mean((d - mean d)^2), which equals
the usual mean(d^2) - mean(d)^2 but does not cancel catastrophically in float32.

Images with no valid pixel get every metric 0 and `valid` = 0 in the per-image dict; the means
weight images by `valid`, so such images simply do not count (no NaN ever appears). To average
over several batches, sum `value * valid` and `valid` per key and divide at the end
(`sum_per_image` / `finalize_sums` do exactly that).

Boundary metrics (iBims-1, Koch et al. 2018): see `boundary_metrics_per_image`.
Image metrics for the bokeh error: `psnr_per_image`, `ssim_per_image`, `bokeh_metrics`.
"""

import functools
import math

import jax
import jax.numpy as jnp

DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog", "d1", "d2", "d3")
# The depth metrics after per-image median scaling (align='median'): the honest comparison when
# the camera, and so the scale, differs from the training data's (real photos).
MEDIAN_SCALED_SUFFIX = "_median"
MEDIAN_SCALED_KEYS = tuple(k + MEDIAN_SCALED_SUFFIX for k in DEPTH_KEYS)
# The constant-depth baseline: every pixel the median true depth, i.e. any constant depth map
# median-scaled. A model that does not beat it in the median-scaled metrics has learnt no
# relative depth. The same for every model evaluated on the same frames.
CONSTANT_SUFFIX = "_const"
CONSTANT_KEYS = tuple(k + CONSTANT_SUFFIX for k in DEPTH_KEYS)
BOUNDARY_KEYS = ("dbe_acc", "dbe_comp")
BOKEH_KEYS = ("bokeh_psnr", "bokeh_ssim")
# The order metrics are listed in (eval results, reports); any other key follows by name.
KEY_ORDER = DEPTH_KEYS + MEDIAN_SCALED_KEYS + CONSTANT_KEYS + BOUNDARY_KEYS + BOKEH_KEYS
# Metrics where larger is better; every other metric in this module is an error (lower = better).
HIGHER_IS_BETTER = frozenset({"d1", "d2", "d3", "bokeh_psnr", "bokeh_ssim", "psnr", "ssim"})
ALIGN_MODES = (None, "median", "scale_shift", "scale_shift_disparity")


# ----------------------------------------------------------------------------------------------
# Small helpers.


def _squeeze_channel(x):
  """(N, H, W, 1) -> (N, H, W); (N, H, W) unchanged."""
  x = jnp.asarray(x)
  if x.ndim == 4 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim != 3:
    raise ValueError(f"Expected depth of shape (N, H, W) or (N, H, W, 1), got {x.shape}.")
  return x


def _masked_mean(x, mask, count):
  """Mean of x over mask along (H, W): (N, H, W) x2, (N,) -> (N,). count 0 gives 0."""
  return jnp.sum(x * mask, axis=(1, 2)) / jnp.maximum(count, 1.0)


def masked_median(x, mask):
  """Per-image median of x over mask: x, mask (N, H, W) -> (N,); 0 where the mask is empty.

  Like numpy's median: the mean of the two middle values for an even count. Sorts each image with
  invalid pixels set to +inf and indexes the valid count, so it keeps static shapes.
  """
  n = x.shape[0]
  flat = jnp.where(mask > 0, x, jnp.inf).reshape(n, -1)
  flat = jnp.sort(flat, axis=1)
  count = jnp.sum(mask > 0, axis=(1, 2)).astype(jnp.int32)
  lo = jnp.clip((count - 1) // 2, 0, flat.shape[1] - 1)
  hi = jnp.clip(count // 2, 0, flat.shape[1] - 1)
  take = lambda idx: jnp.take_along_axis(flat, idx[:, None], axis=1)[:, 0]
  median = 0.5 * (take(lo) + take(hi))
  return jnp.where(count > 0, median, 0.0)


def _least_squares_scale_shift(x, y, mask):
  """Per-image (s, t) minimising sum_mask (s x + t - y)^2: (N, H, W) x3 -> ((N,), (N,)).

  Degenerate cases (fewer than two distinct x values) fall back to s = 1 and t = mean(y - x).
  """
  n = jnp.sum(mask, axis=(1, 2))
  sx = jnp.sum(mask * x, axis=(1, 2))
  sy = jnp.sum(mask * y, axis=(1, 2))
  mx = sx / jnp.maximum(n, 1.0)
  my = sy / jnp.maximum(n, 1.0)
  xc = (x - mx[:, None, None]) * mask
  yc = (y - my[:, None, None]) * mask
  sxx = jnp.sum(xc * xc, axis=(1, 2))
  sxy = jnp.sum(xc * yc, axis=(1, 2))
  ok = sxx > 1e-12 * jnp.maximum(n, 1.0)
  s = jnp.where(ok, sxy / jnp.where(ok, sxx, 1.0), 1.0)
  t = my - s * mx
  return s, t


def align_prediction(pred, gt, valid, align, *, min_depth=1e-3, max_depth=10.0):
  """Aligns predicted depth to gt per image, before clipping; (N, H, W) x3 -> (N, H, W) metres.

  align: None (unchanged); 'median' (pred * median(gt) / median(pred) over valid pixels);
  'scale_shift' (least-squares s * pred + t against gt, in depth); 'scale_shift_disparity'
  (least squares in inverse depth: s / pred + t against 1 / gt, then inverted; the fitted
  disparity is floored at 1 / max_depth so the result stays finite).
  """
  if align is None:
    return pred
  if align == "median":
    med_gt = masked_median(gt, valid)
    med_pred = masked_median(pred, valid)
    scale = jnp.where(med_pred > 0, med_gt / jnp.where(med_pred > 0, med_pred, 1.0), 1.0)
    return pred * scale[:, None, None]
  if align == "scale_shift":
    s, t = _least_squares_scale_shift(pred, gt, valid)
    return s[:, None, None] * pred + t[:, None, None]
  if align == "scale_shift_disparity":
    disp_pred = 1.0 / jnp.maximum(pred, min_depth)
    disp_gt = 1.0 / jnp.where(valid > 0, gt, 1.0)
    s, t = _least_squares_scale_shift(disp_pred, disp_gt, valid)
    disp = s[:, None, None] * disp_pred + t[:, None, None]
    return 1.0 / jnp.maximum(disp, 1.0 / max_depth)
  raise ValueError(f"align must be one of {ALIGN_MODES}, got {align!r}.")


# ----------------------------------------------------------------------------------------------
# Depth metrics (Eigen / BTS protocol).


@functools.partial(jax.jit, static_argnames=("min_depth", "max_depth", "align"))
def depth_metrics_per_image(pred, gt, *, min_depth=1e-3, max_depth=10.0, align=None, mask=None):
  """Eigen/BTS depth metrics for each image of a batch.

  Args:
    pred: predicted depth in metres, (N, H, W) or (N, H, W, 1), already at gt's resolution.
    gt: ground-truth depth in metres, same shape; 0 (or anything outside the range) = invalid.
    min_depth, max_depth: valid pixels are min_depth < gt < max_depth (metres); the prediction
      is clipped to [min_depth, max_depth] (after alignment).
    align: None, 'median', 'scale_shift' or 'scale_shift_disparity' (see `align_prediction`).
    mask: optional extra validity mask, same shape as gt (e.g. an evaluation crop), 1 = use.

  Returns:
    dict of (N,) float32 arrays: DEPTH_KEYS, plus 'valid' (1.0 if the image has at least one
    valid pixel, else 0.0 and every metric 0) and 'num_pixels' (valid pixel count).
  """
  pred = _squeeze_channel(pred).astype(jnp.float32)
  gt = _squeeze_channel(gt).astype(jnp.float32)
  if pred.shape != gt.shape:
    raise ValueError(f"pred {pred.shape} and gt {gt.shape} must have the same shape; resize the "
                     "prediction to the ground truth's resolution first.")
  valid = ((gt > min_depth) & (gt < max_depth)).astype(jnp.float32)
  if mask is not None:
    valid = valid * (_squeeze_channel(mask) > 0).astype(jnp.float32)
  count = jnp.sum(valid, axis=(1, 2))

  pred = align_prediction(pred, gt, valid, align, min_depth=min_depth, max_depth=max_depth)
  pred = jnp.clip(pred, min_depth, max_depth)
  # Invalid gt pixels get a harmless value so that no log(0) or x/0 can leak NaN through masks.
  gt = jnp.where(valid > 0, gt, 1.0)

  diff = pred - gt
  log_diff = jnp.log(pred) - jnp.log(gt)
  ratio = jnp.maximum(pred / gt, gt / pred)
  mean = lambda x: _masked_mean(x, valid, count)

  mean_log_diff = mean(log_diff)
  centred = log_diff - mean_log_diff[:, None, None]
  out = {
      "abs_rel": mean(jnp.abs(diff) / gt),
      "sq_rel": mean(diff * diff / gt),
      "rmse": jnp.sqrt(mean(diff * diff)),
      "rmse_log": jnp.sqrt(mean(log_diff * log_diff)),
      "log10": mean(jnp.abs(log_diff)) / math.log(10.0),
      "silog": 100.0 * jnp.sqrt(jnp.maximum(mean(centred * centred), 0.0)),
      "d1": mean((ratio < 1.25).astype(jnp.float32)),
      "d2": mean((ratio < 1.25**2).astype(jnp.float32)),
      "d3": mean((ratio < 1.25**3).astype(jnp.float32)),
  }
  has_valid = (count > 0).astype(jnp.float32)
  out = {k: v * has_valid for k, v in out.items()}
  out["valid"] = has_valid
  out["num_pixels"] = count
  return out


def mean_over_images(per_image, weights=None):
  """Dict of (N,) per-image values -> dict of scalars, the mean over images with valid = 1.

  weights: optional (N,) extra weights, e.g. a batch's 'example_mask' (0 = padding example).
  Images with weight 0 are ignored; if no image counts, every mean is 0. The 'valid' and
  'num_pixels' entries are returned as sums (the number of images / pixels that counted).
  """
  w = per_image.get("valid", None)
  first = next(iter(per_image.values()))
  w = jnp.ones_like(first) if w is None else w
  if weights is not None:
    w = w * jnp.asarray(weights, jnp.float32)
  total = jnp.sum(w)
  out = {}
  for k, v in per_image.items():
    if k == "valid":
      out[k] = total
    elif k == "num_pixels":
      out[k] = jnp.sum(v * w)
    else:
      out[k] = jnp.sum(v * w) / jnp.maximum(total, 1.0)
  return out


def sum_per_image(per_image, weights=None):
  """Dict of (N,) per-image values -> dict of weighted sums plus 'count', to accumulate batches.

  Add the dicts of several batches key by key, then call `finalize_sums` for the means.
  """
  w = per_image.get("valid", None)
  if w is None:
    w = jnp.ones_like(next(iter(per_image.values())))
  if weights is not None:
    w = w * jnp.asarray(weights, jnp.float32)
  # Images that do not count may hold NaN (no valid pixel): where() keeps them out of the sums.
  out = {k: jnp.sum(jnp.where(w > 0, v * w, 0.0)) for k, v in per_image.items()
         if k not in ("valid", "num_pixels")}
  out["count"] = jnp.sum(w)
  return out


def finalize_sums(sums):
  """Accumulated `sum_per_image` dicts -> means (dict of scalars; 'count' = number of images)."""
  count = sums["count"]
  out = {k: v / jnp.maximum(count, 1.0) for k, v in sums.items() if k != "count"}
  out["count"] = count
  return out


def _suffixed(per_image, suffix):
  """Depth metrics dict with `suffix` added to every DEPTH_KEYS entry ('valid', 'num_pixels'
  unchanged)."""
  return {k + suffix if k in DEPTH_KEYS else k: v for k, v in per_image.items()}


def median_scaled_metrics_per_image(pred, gt, *, min_depth=1e-3, max_depth=10.0):
  """`depth_metrics_per_image` with align='median', keys MEDIAN_SCALED_KEYS (+ 'valid',
  'num_pixels'): pred, gt (N, H, W[, 1]) metres, gt 0 = invalid."""
  return _suffixed(depth_metrics_per_image(pred, gt, min_depth=min_depth, max_depth=max_depth,
                                           align="median"), MEDIAN_SCALED_SUFFIX)


def constant_baseline_metrics_per_image(gt, *, min_depth=1e-3, max_depth=10.0):
  """The depth metrics of the constant-depth baseline (every pixel the median valid true depth
  of its image), keys CONSTANT_KEYS (+ 'valid', 'num_pixels'): gt (N, H, W[, 1]) metres,
  0 = invalid."""
  constant = jnp.ones_like(jnp.asarray(gt, jnp.float32))
  return _suffixed(depth_metrics_per_image(constant, gt, min_depth=min_depth, max_depth=max_depth,
                                           align="median"), CONSTANT_SUFFIX)


def depth_metrics(pred, gt, *, min_depth=1e-3, max_depth=10.0, align=None, mask=None):
  """Mean over images of `depth_metrics_per_image` (dict of scalars; images with no valid pixel
  do not count; 'valid' = the number of images that counted)."""
  per_image = depth_metrics_per_image(pred, gt, min_depth=min_depth, max_depth=max_depth,
                                      align=align, mask=mask)
  return mean_over_images(per_image)


# ----------------------------------------------------------------------------------------------
# Depth boundary errors (iBims-1).


def _shift(x, dy, dx, fill):
  """x (N, H, W) shifted so out[y, x] = x[y + dy, x + dx], `fill` outside. Static dy, dx."""
  n, h, w = x.shape
  p = max(abs(dy), abs(dx))
  if p == 0:
    return x
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p)), constant_values=fill)
  return jax.lax.slice(xp, (0, p + dy, p + dx), (n, p + dy + h, p + dx + w))


def _shift_edge(x, dy, dx):
  """Like `_shift` but replicating the border pixels (edge padding)."""
  n, h, w = x.shape
  p = max(abs(dy), abs(dx))
  if p == 0:
    return x
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p)), mode="edge")
  return jax.lax.slice(xp, (0, p + dy, p + dx), (n, p + dy + h, p + dx + w))


def _window_reduce(x, radius, axis, pad_mode, fill, step_fn, init):
  """Folds the 2r+1 shifted copies of x (N, H, W) along axis 1 or 2 with a fori_loop.

  step_fn(acc, shifted, offset) -> acc, offset in [-radius, radius] (a traced int32). One compiled
  loop body instead of 2r+1 unrolled slices keeps compile time and memory small.
  """
  pad = [(0, 0)] * 3
  pad[axis] = (radius, radius)
  if pad_mode == "edge":
    xp = jnp.pad(x, pad, mode="edge")
  else:
    xp = jnp.pad(x, pad, constant_values=fill)

  def body(k, acc):
    start = [0, 0, 0]
    start[axis] = k
    shifted = jax.lax.dynamic_slice(xp, start, x.shape)
    return step_fn(acc, shifted, k - radius)

  return jax.lax.fori_loop(0, 2 * radius + 1, body, init)


@functools.partial(jax.jit, static_argnames=("max_dist",))
def truncated_distance_transform(edges, max_dist=10.0):
  """Euclidean distance (pixels) from each pixel to the nearest edge pixel, truncated at max_dist.

  Args:
    edges: (N, H, W), nonzero = edge pixel.
    max_dist: truncation distance in pixels.

  Returns:
    (N, H, W) float32: min(distance to the nearest edge, max_dist); max_dist where an image has
    no edge within reach.

  Exact, not approximate, for every distance below max_dist: a nearer edge lies inside the
  (2R+1)^2 window, R = ceil(max_dist), and the window is searched separably (a column pass of
  squared vertical offsets, then a row pass adding squared horizontal offsets). It costs
  2 (2R+1) shifted (N, H, W) minima, with memory O(N H W) (no (2R+1)^2 stack).
  """
  edges = jnp.asarray(edges) > 0
  r = int(math.ceil(max_dist))
  big = jnp.float32(2.0 * (r + 1) ** 2 + 1.0)
  col = jnp.where(edges, 0.0, big).astype(jnp.float32)
  step = lambda acc, shifted, off: jnp.minimum(acc, shifted + (off * off).astype(jnp.float32))
  g = _window_reduce(col, r, 1, "constant", big, step, col)
  d2 = _window_reduce(g, r, 2, "constant", big, step, g)
  return jnp.minimum(jnp.sqrt(d2), jnp.float32(max_dist))


def _gaussian_kernel_1d(sigma, radius):
  """Normalised 1-D Gaussian taps, length 2 * radius + 1 (python floats)."""
  taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
  total = sum(taps)
  return [t / total for t in taps]


def _gaussian_blur_edge(x, sigma):
  """Separable Gaussian blur of x (N, H, W), std sigma px, radius round(4 sigma), edge padding."""
  radius = max(1, int(4.0 * sigma + 0.5))
  taps = jnp.asarray(_gaussian_kernel_1d(sigma, radius), jnp.float32)
  step = lambda acc, shifted, off: acc + taps[off + radius] * shifted
  y = _window_reduce(x, radius, 1, "edge", 0.0, step, jnp.zeros_like(x))
  return _window_reduce(y, radius, 2, "edge", 0.0, step, jnp.zeros_like(x))


def _erode(mask, radius):
  """Binary erosion of mask (N, H, W) in {0, 1} by a (2r+1)^2 square; beyond the image counts
  as 1 (only invalid pixels erode)."""
  size = 2 * radius + 1
  return jax.lax.reduce_window(mask, jnp.inf, jax.lax.min, (1, size, size), (1, 1, 1), "SAME")


def _interior(shape):
  """(N, H, W) float32: 1 except on the outermost pixel ring."""
  _, h, w = shape
  y = jax.lax.broadcasted_iota(jnp.int32, shape, 1)
  x = jax.lax.broadcasted_iota(jnp.int32, shape, 2)
  return ((y > 0) & (y < h - 1) & (x > 0) & (x < w - 1)).astype(jnp.float32)


def _dilate3(x):
  """Binary 8-neighbourhood dilation of x (N, H, W) in {0, 1}."""
  y = jnp.maximum(jnp.maximum(x, _shift(x, 1, 0, 0.0)), _shift(x, -1, 0, 0.0))
  return jnp.maximum(jnp.maximum(y, _shift(y, 0, 1, 0.0)), _shift(y, 0, -1, 0.0))


@functools.partial(jax.jit, static_argnames=("sigma", "low", "high"))
def depth_edges(depth, valid, *, sigma=math.sqrt(2.0), low=0.15, high=0.3):
  """Canny edges of depth normalised to [0, 1] per image, as in iBims-1 (jnp, jit-able).

  Args:
    depth: (N, H, W) metres (or any positive scale; each image is min-max normalised over its
      valid pixels, so the edges are scale- and shift-invariant).
    valid: (N, H, W) in {0, 1}; invalid pixels are filled with the valid mean before smoothing,
      and no edge is reported within the filters' reach (4 sigma + 2 px) of an invalid pixel, nor
      on the outermost pixel ring; image borders are edge-padded.
    sigma: Gaussian smoothing in pixels (iBims-1: sqrt(2)).
    low, high: hysteresis thresholds on the (unnormalised, 3x3) Sobel gradient magnitude of the
      smoothed normalised depth, the scale used by iBims-1's Canny (0.15 / 0.3 in its script).

  Returns:
    (N, H, W) float32 in {0, 1}: one-pixel-wide edges after non-maximum suppression (4 quantised
    directions) and hysteresis (weak edges kept when 8-connected to a strong one).
  """
  valid = (valid > 0).astype(jnp.float32)
  count = jnp.maximum(jnp.sum(valid, axis=(1, 2)), 1.0)
  lo = jnp.min(jnp.where(valid > 0, depth, jnp.inf), axis=(1, 2))
  hi = jnp.max(jnp.where(valid > 0, depth, -jnp.inf), axis=(1, 2))
  lo = jnp.where(jnp.isfinite(lo), lo, 0.0)
  span = jnp.where(jnp.isfinite(hi), hi, 1.0) - lo
  span = jnp.where(span > 1e-12, span, 1.0)
  norm = (depth - lo[:, None, None]) / span[:, None, None]
  fill = jnp.sum(norm * valid, axis=(1, 2)) / count
  norm = jnp.where(valid > 0, norm, fill[:, None, None])

  radius = max(1, int(4.0 * sigma + 0.5))
  smooth = _gaussian_blur_edge(norm, sigma)
  s = lambda dy, dx: _shift_edge(smooth, dy, dx)
  # 3x3 Sobel, unnormalised (weights 1, 2, 1), as scipy.ndimage.sobel.
  gx = (s(-1, 1) + 2 * s(0, 1) + s(1, 1)) - (s(-1, -1) + 2 * s(0, -1) + s(1, -1))
  gy = (s(1, -1) + 2 * s(1, 0) + s(1, 1)) - (s(-1, -1) + 2 * s(-1, 0) + s(-1, 1))
  mag = jnp.sqrt(gx * gx + gy * gy)

  # Non-maximum suppression along the gradient, quantised to 0, 45, 90, 135 degrees. A pixel is
  # kept if it is >= its neighbour behind and > its neighbour ahead (one pixel wide on plateaus).
  ax, ay = jnp.abs(gx), jnp.abs(gy)
  tan22 = math.tan(math.pi / 8)
  horiz = ay <= tan22 * ax
  vert = ax <= tan22 * ay
  diag_main = (~horiz) & (~vert) & (gx * gy > 0)   # gradient along (+x, +y) in array coords.
  m = lambda dy, dx: _shift(mag, dy, dx, 0.0)
  keep = jnp.where(horiz, (mag >= m(0, -1)) & (mag > m(0, 1)),
                   jnp.where(vert, (mag >= m(-1, 0)) & (mag > m(1, 0)),
                             jnp.where(diag_main, (mag >= m(-1, -1)) & (mag > m(1, 1)),
                                       (mag >= m(-1, 1)) & (mag > m(1, -1)))))
  # No edges within the filters' reach of an invalid pixel (filled values are not depth), nor on
  # the outermost pixel ring (borders are edge-padded, so they create no edges of their own).
  allowed = _erode(valid, radius + 2) * _interior(valid.shape)
  thin = keep & (allowed > 0)
  strong = (thin & (mag >= high)).astype(jnp.float32)
  weak = (thin & (mag >= low)).astype(jnp.float32)

  def cond(state):
    prev, cur = state
    return jnp.any(prev != cur)

  def body(state):
    _, cur = state
    return cur, jnp.maximum(cur, weak * _dilate3(cur))

  _, edges = jax.lax.while_loop(cond, body, (jnp.zeros_like(strong), strong))
  return edges


@functools.partial(jax.jit,
                   static_argnames=("min_depth", "max_depth", "max_dist", "low", "high"))
def boundary_metrics_per_image(pred, gt, *, min_depth=1e-3, max_depth=10.0, max_dist=10.0,
                               low=0.15, high=0.3, gt_edges=None):
  """iBims-1 depth boundary errors (DBE) of each image: how sharp and how well placed predicted
  depth edges are.

  Edges: Canny on min-max normalised depth (`depth_edges`); the ground truth's edges come from
  the same detector on gt depth unless `gt_edges` (annotated edges) is given. With D_gt / D_pred
  the distance transforms of the gt / predicted edges, truncated at max_dist pixels (iBims-1: 10):

    dbe_acc  = mean of D_gt over predicted edges with D_gt < max_dist (how far predicted edges lie
               from true ones; predicted edges with no true edge nearby are ignored).
    dbe_comp = (sum of D_gt over predicted edges + sum of D_pred over gt edges)
               / (#predicted edges + #gt edges), the symmetric truncated chamfer distance (how
               many true edges the prediction misses, and vice versa).

  If no predicted edge lies within max_dist of a gt edge, both are max_dist (iBims-1's rule).
  Both in pixels, lower = better, 0 for identical edge maps.

  Args:
    pred, gt: (N, H, W) or (N, H, W, 1) metres; valid = min_depth < gt < max_depth, the
      prediction is clipped to [min_depth, max_depth].
    max_dist: truncation in pixels. low, high: Canny thresholds (see `depth_edges`).
    gt_edges: optional (N, H, W[, 1]) annotated gt edges in {0, 1}.

  Returns:
    dict of (N,) arrays: 'dbe_acc', 'dbe_comp', and 'valid' (1 when the gt has at least one edge;
    images without gt edges get 0 metrics and valid 0, as iBims-1 skips them).
  """
  pred = _squeeze_channel(pred).astype(jnp.float32)
  gt = _squeeze_channel(gt).astype(jnp.float32)
  valid = ((gt > min_depth) & (gt < max_depth)).astype(jnp.float32)
  pred = jnp.clip(pred, min_depth, max_depth)
  if gt_edges is None:
    e_gt = depth_edges(gt, valid, low=low, high=high)
  else:
    e_gt = (_squeeze_channel(gt_edges) > 0).astype(jnp.float32)
  e_pred = depth_edges(pred, valid, low=low, high=high)
  d_gt = truncated_distance_transform(e_gt, max_dist)
  d_pred = truncated_distance_transform(e_pred, max_dist)

  n_gt = jnp.sum(e_gt, axis=(1, 2))
  n_pred = jnp.sum(e_pred, axis=(1, 2))
  near = e_pred * (d_gt < max_dist)
  n_near = jnp.sum(near, axis=(1, 2))
  acc = jnp.sum(d_gt * near, axis=(1, 2)) / jnp.maximum(n_near, 1.0)
  comp = ((jnp.sum(d_gt * e_pred, axis=(1, 2)) + jnp.sum(d_pred * e_gt, axis=(1, 2)))
          / jnp.maximum(n_pred + n_gt, 1.0))
  acc = jnp.where(n_near > 0, acc, max_dist)
  comp = jnp.where(n_near > 0, comp, max_dist)
  has_gt = (n_gt > 0).astype(jnp.float32)
  return {"dbe_acc": acc * has_gt, "dbe_comp": comp * has_gt, "valid": has_gt}


def boundary_metrics(pred, gt, **kwargs):
  """Mean over images (with at least one gt edge) of `boundary_metrics_per_image`."""
  return mean_over_images(boundary_metrics_per_image(pred, gt, **kwargs))


# ----------------------------------------------------------------------------------------------
# Image metrics (bokeh error).


def _as_nhwc(x):
  """(N, H, W) -> (N, H, W, 1); (N, H, W, C) unchanged."""
  x = jnp.asarray(x, jnp.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4:
    raise ValueError(f"Expected images of shape (N, H, W[, C]), got {x.shape}.")
  return x


PSNR_CAP_DB = 100.0


@functools.partial(jax.jit, static_argnames=("max_val",))
def psnr_per_image(a, b, max_val=1.0):
  """PSNR in dB of each image pair: a, b (N, H, W[, C]) in [0, max_val] -> (N,).

  10 log10(max_val^2 / MSE), MSE over all pixels and channels; identical images give
  PSNR_CAP_DB (100 dB) instead of infinity so that means stay finite.
  """
  a, b = _as_nhwc(a), _as_nhwc(b)
  mse = jnp.mean((a - b) ** 2, axis=(1, 2, 3))
  floor = max_val**2 * 10.0 ** (-PSNR_CAP_DB / 10.0)
  return 10.0 * jnp.log10(max_val**2 / jnp.maximum(mse, floor))


@functools.partial(jax.jit,
                   static_argnames=("max_val", "filter_size", "sigma", "k1", "k2"))
def ssim_per_image(a, b, max_val=1.0, *, filter_size=11, sigma=1.5, k1=0.01, k2=0.03):
  """SSIM (Wang et al. 2004) of each image pair: a, b (N, H, W[, C]) in [0, max_val] -> (N,).

  Gaussian window filter_size x filter_size, std sigma (11, 1.5), C1 = (k1 L)^2, C2 = (k2 L)^2,
  computed per channel over 'valid' window positions (no padding, as Wang's reference code and
  tf.image.ssim), then averaged over positions and channels. Images must be >= filter_size.
  """
  a, b = _as_nhwc(a), _as_nhwc(b)
  n, h, w, c = a.shape
  if h < filter_size or w < filter_size:
    raise ValueError(f"SSIM needs images of at least {filter_size}x{filter_size}, got {h}x{w}.")
  taps = jnp.asarray(_gaussian_kernel_1d(sigma, filter_size // 2), jnp.float32)

  def blur(x):  # (N, H, W, C) -> (N, H - f + 1, W - f + 1, C), separable, valid positions.
    hv, wv = h - filter_size + 1, w - filter_size + 1
    y = sum(taps[i] * x[:, i:i + hv] for i in range(filter_size))
    return sum(taps[i] * y[:, :, i:i + wv] for i in range(filter_size))

  c1 = (k1 * max_val) ** 2
  c2 = (k2 * max_val) ** 2
  mu_a, mu_b = blur(a), blur(b)
  var_a = blur(a * a) - mu_a * mu_a
  var_b = blur(b * b) - mu_b * mu_b
  cov = blur(a * b) - mu_a * mu_b
  num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
  den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
  return jnp.mean(num / den, axis=(1, 2, 3))


def psnr(a, b, max_val=1.0):
  """Mean PSNR (dB) over the batch; see `psnr_per_image`."""
  return jnp.mean(psnr_per_image(a, b, max_val))


def ssim(a, b, max_val=1.0):
  """Mean SSIM over the batch; see `ssim_per_image`."""
  return jnp.mean(ssim_per_image(a, b, max_val))


def bokeh_metrics_per_image(render, reference, max_val=1.0):
  """Bokeh error of each image: DoF render from predicted depth vs a reference render (from gt
  depth, or the thin-lens ground truth), both (N, H, W, 3) in [0, 1] ->
  {'bokeh_psnr': (N,), 'bokeh_ssim': (N,), 'valid': (N,) ones}."""
  p = psnr_per_image(render, reference, max_val)
  return {"bokeh_psnr": p, "bokeh_ssim": ssim_per_image(render, reference, max_val),
          "valid": jnp.ones_like(p)}
