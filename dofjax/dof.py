"""Circle of confusion and a differentiable depth-layered depth-of-field renderer (jax.numpy).

Physics. A thin lens of focal length f and f-number N focused at z_f spreads a point at depth z
into a disc of radius (in pixels, for an image W_px wide on a sensor s_w wide)

    r_px = K |1/z - 1/z_f|,      K = f^2 z_f W_px / (2 N (z_f - f) s_w)   [px per 1/m]

so blur is linear in disparity d = 1/z. `render` takes lens settings and depth in metres;
`render_disparity` takes disparity and the blur scale K directly. The aperture is a disc, or a
regular polygon with `aperture_blades` corners on the disc's circle (a bladed iris), rotated by
`aperture_rotation_deg`. Blurring happens in linear light (sRGB decoded first, re-encoded after),
so bright points bloom into discs. An 8-bit photo clips lamps and glints at white; highlight
recovery (`recover_highlights`, off unless highlight_gain > 0) multiplies a pixel's linear
radiance by 1 + gain * level * defocus * isolation before blurring, so that clipped lights become
bright discs again. The rule: boost only what a lens renders as a bright disc, a clipped light
small against its own blur.
- level = smoothstep((v - threshold) / (1 - threshold)), v the pixel's largest sRGB channel:
  PHOTO_HIGHLIGHT_THRESHOLD = 0.97 (247/255) keeps the boost to clipped pixels (JPEG ringing
  leaves a clipped area a few levels under 255), not to bright but unclipped white surfaces.
- defocus = smoothstep((|r| - 0.5) / 1.5), r the pixel's own blur radius in px: pixels within
  0.5 px of focus keep their value (nothing spreads them; a boost would only clip them brighter).
- isolation = 1 - smoothstep((share - 0.1) / 0.2), share the mean level over the
  (2R + 1)^2 window around the pixel, R = max(|r|, 2) px (`clipped_share`): a lamp, a
  window or a glint fills little of its disc (share < 0.1: full boost), while a clipped white
  wall, bowl or over-exposed sky fills it (share >= 0.3: no boost). A large clipped area is white
  in the render either way; boosting it would only make it bleed glow over its neighbours. The
  radiance factor stays in [1, 1 + gain] (energy-bounded) and differentiable in the image.
PHOTO_HIGHLIGHT_GAIN and PHOTO_HIGHLIGHT_THRESHOLD for real photos; renders compared with renders
keep it off.

Renderer. The signed blur radius s = K (d - d_f) (> 0 in front of the focal plane) is clipped to
[-max_radius, max_radius] (`render` defaults max_radius to the photo's own largest circle of
confusion, so no blur is clipped and no layer is wasted); `num_layers` layers sit at radii
max_radius sign(t) |t|^LAYER_SPACING, t = k / M, k = -M..M (M = (num_layers - 1) // 2), so one
layer is exactly the focal plane and the layers are spaced finer near it (with 17 layers up to
32 px, the first step is 0.84 px and the last 6.7 px: near focus a layer step is a visible change
of sharpness; the README's quality section measures it against uniform spacing). Each pixel is
split between its two neighbouring layers by a tent (a defocus of t steps takes the fraction t
of the next layer's blur, smooth and differentiable in depth). Per layer, in linear
light: premultiplied colour and coverage, extended under the layers at least two steps nearer by
a hidden-background fill (seen through blurred foreground edges; only next to depth jumps of
several layer steps, since on a continuous surface the normalisation already mixes neighbouring
layers correctly; its colour continues the layer's visible colour into the hole by push-pull, so
the background goes on behind a blurred foreground with no flat patch and no outline), blurred
with the anti-aliased aperture, composited near to far with additive transmittance (a layer is
seen through clip(1 - summed coverage of the nearer layers), so the two halves (1 - w, w) of a
surface split between neighbouring layers hide everything behind it; multiplicative "over" would
leave a gap of w (1 - w) for the fill behind to show through), each layer at the coarsest
resolution the layers nearer than it allow, and finally divided by the accumulated coverage. A
layer that no pixel falls on is skipped (built, filled and blurred only under a lax.cond on its
occupancy), so a layer plan wider than the photo's own blurs costs little. The plan
(layer count, radii, buckets) is `dofjax.render_plan`.

Kernel methods: 'fft' (every layer at full resolution; cost independent of the radius),
'pyramid' (the default: a layer of radius r >= 16 px is blurred with an FFT at 1/f resolution,
f = 2 up to 63 px, then 4 or 8 with f <= r / 16, the aperture shrunk to keep the blur's second
moment, then upsampled with a Catmull-Rom cubic; box-down and cubic-up leave a disc's rim a
10%-90% rise of 2.9 px at f = 2, 5.9 px at f = 4 (64 px) and 9 px at f = 8 (128 px), under ~9% of
the radius, so discs keep crisp edges; smaller radii are blurred at full resolution, up to
_SHIFT_RADIUS = 7 px as a fused sum of shifted copies, one per kernel tap, 4-8x faster than the
FFT on CPU, and the same convolution to float32 rounding), 'direct' (a
depthwise convolution per layer; only sensible for radii of a few pixels, e.g. on accelerators
in the training graph).

Everything is shape-static jax.numpy, so it runs under jax.jit, jax.vmap and jax.grad.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from dofjax import render_plan

COVERAGE_EPS = 1e-3
_MIN_LOWRES_RADIUS = 4.0    # The fill's downsampled disc keeps at least this radius.
_HALF_RES_RADIUS = 16.0     # 'pyramid': blur at 1/2 resolution from this radius on ...
_CRISP_RATIO = 16.0         # ... and at 1/f, f > 2, only where radius >= 16 f px.
_MAX_FACTOR = 8             # Coarsest resolution used: 1/8.
_RGBA_LOW = np.array([-np.inf] * 3 + [0.0], np.float32)[:, None, None]    # Colour unbounded,
_RGBA_HIGH = np.array([np.inf] * 3 + [1.0], np.float32)[:, None, None]    # coverage in [0, 1].
_SHIFT_RADIUS = 7.0         # 'pyramid': radii up to this blurred by shifted sums, not an FFT.
_FILL_RADIUS_SCALE = 2.0    # Fill reaches this many times the largest blur radius.
_FILL_GAIN = 4.0            # Fill is full where >= 1/_FILL_GAIN of its disc is this layer.
_EDGE_STEPS = 1.0           # Fill only behind depth jumps of > 1 mean layer step (fully at >= 2).
_PUSH_TRUST_FLOOR = 0.05    # Push-pull: weight of a coarse colour that was itself filled.
_FILL_COLOUR_FACTOR = 1      # Fill colour pushed-pulled from this factor on (2 shows outlines).
_TRANSMITTANCE_EPS = 1e-2   # Floor of the reduced-resolution transmittance in `_add_behind`.
# Highlight recovery for real (8-bit, clipped) photos: see `recover_highlights`. Renders compared
# with renders (evaluation, `bokeh_loss`) keep the gain at 0 unless asked.
PHOTO_HIGHLIGHT_GAIN = 3.0          # A fully clipped pixel carries up to 1 + 3 = 4x its radiance.
PHOTO_HIGHLIGHT_THRESHOLD = 0.97    # sRGB value (247/255) where the boost starts: clipped only.
HIGHLIGHT_SHARE_LOW = 0.1           # Full boost while clipped pixels fill at most this share ...
HIGHLIGHT_SHARE_HIGH = 0.3          # ... of the blur's window, none from this share on.
HIGHLIGHT_MIN_WINDOW_PX = 2         # The window's half-size is at least this (px) ...
HIGHLIGHT_WINDOW_SCALE = 1.0        # ... and this many blur radii.
HIGHLIGHT_SHARP_PX = 0.5            # No boost for a pixel blurred by at most this radius ...
HIGHLIGHT_BLURRED_PX = 2.0          # ... the full boost from this radius on (smooth between).


# ----------------------------------------------------------------------------- circle of confusion

def blur_scale_px(*, focus_distance_m, f_number, focal_length_mm, sensor_width_mm=36.0,
                  image_width_px):
  """Thin-lens blur scale K: CoC radius in pixels per 1/m of disparity away from focus.

  Args:
    focus_distance_m: focus distance z_f in metres, > focal length.
    f_number: N > 0.
    focal_length_mm: f in millimetres.
    sensor_width_mm: sensor width in millimetres (36 = full frame).
    image_width_px: image width in pixels.
  Returns:
    K = f^2 z_f W_px / (2 N (z_f - f) s_w), in px * m (numpy or jax scalar, like the inputs).
    Example: 50 mm f/1.8, full frame, 1024 px, focused at 2 m: K ~= 20.
  """
  f_m = focal_length_mm / 1000.0
  return (f_m * f_m * focus_distance_m * image_width_px
          / (2.0 * f_number * (focus_distance_m - f_m) * (sensor_width_mm / 1000.0)))


def coc_radius_px(depth_m, *, focus_distance_m, f_number, focal_length_mm, sensor_width_mm=36.0,
                  image_width_px):
  """Thin-lens circle-of-confusion radius in pixels at depth_m (metres, > 0, any shape).

  r = f^2 |z - z_f| / (2 N z (z_f - f)) * W_px / s_w; equal to K |1/z - 1/z_f| with K from
  `blur_scale_px`.
  """
  k = blur_scale_px(focus_distance_m=focus_distance_m, f_number=f_number,
                    focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm,
                    image_width_px=image_width_px)
  return coc_radius_from_disparity(1.0 / depth_m, 1.0 / focus_distance_m, k)


def coc_radius_from_disparity(disparity, focus_disparity, blur_scale):
  """Disparity form: radius_px = K |d - d_f| (d, d_f in 1/m; K in px per 1/m)."""
  return blur_scale * abs(disparity - focus_disparity)


def signed_coc_radius(disparity, focus_disparity, blur_scale):
  """K (d - d_f) in pixels: > 0 in front of the focal plane, < 0 behind it."""
  return blur_scale * (disparity - focus_disparity)


# ----------------------------------------------------------------------------- colour

def srgb_to_linear(x):
  """sRGB-encoded values in [0, 1] -> linear light (same shape); gradient-safe at 0."""
  # exp(2.4 log(.)) rather than ** 2.4: the same curve to float32 rounding, ~3x cheaper on CPU.
  return jnp.where(x <= 0.04045, x / 12.92,
                   jnp.exp(2.4 * jnp.log((jnp.maximum(x, 0.04045) + 0.055) / 1.055)))


def linear_to_srgb(x):
  """Linear light (>= 0) -> sRGB encoding (same shape); gradient-safe at 0; not clipped."""
  return jnp.where(x <= 0.0031308, x * 12.92,
                   1.055 * jnp.exp(jnp.log(jnp.maximum(x, 0.0031308)) / 2.4) - 0.055)


def _smoothstep(t):
  """t^2 (3 - 2t) of t clipped to [0, 1]: 0 -> 1 with zero slope at both ends (C1)."""
  t = jnp.clip(t, 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def highlight_boost(image01, *, gain, threshold=PHOTO_HIGHLIGHT_THRESHOLD, coc_radius_px=None,
                    max_radius=None):
  """Per-pixel radiance factor of highlight recovery: 1 + gain * level * defocus * isolation, in
  [1, 1 + gain] (the rule is in the module docstring).

  image01: (..., 3) sRGB in [0, 1] (values outside are clipped). level = smoothstep((v -
  threshold) / (1 - threshold)), v = the pixel's largest channel; smoothstep(t) = t^2 (3 - 2t) on
  t clipped to [0, 1] (C1: no kink where the boost starts or saturates). One factor for all three
  channels, so the hue of a clipped light is kept. coc_radius_px: (...) the pixel's own blur
  radius in px (signed or not), or None (every pixel treated as defocused); defocus =
  smoothstep((|r| - HIGHLIGHT_SHARP_PX) / (HIGHLIGHT_BLURRED_PX - HIGHLIGHT_SHARP_PX)), 0 up to
  0.5 px and 1 from 2 px: a pixel that nothing blurs keeps its value (a boosted in-focus pixel
  would only clip brighter), a defocused clipped light becomes a bright disc. max_radius: None
  (no isolation term), or the largest |coc_radius_px| (static px) for an (H, W, 3) image with
  (H, W) radii: then isolation = 1 - smoothstep((share - HIGHLIGHT_SHARE_LOW) /
  (HIGHLIGHT_SHARE_HIGH - HIGHLIGHT_SHARE_LOW)) with share = `clipped_share`, so clipped areas
  large against their blur (a white wall, an over-exposed sky) keep their value. Returns (...,)
  float; differentiable in image01, gain and coc_radius_px.
  """
  v = jnp.max(jnp.clip(image01, 0.0, 1.0), axis=-1)
  level = _smoothstep((v - threshold) / (1.0 - threshold))
  factor = level
  if coc_radius_px is not None:
    factor = factor * _smoothstep((jnp.abs(coc_radius_px) - HIGHLIGHT_SHARP_PX)
                                  / (HIGHLIGHT_BLURRED_PX - HIGHLIGHT_SHARP_PX))
    if max_radius is not None:
      share = clipped_share(level, coc_radius_px, max_radius)
      factor = factor * (1.0 - _smoothstep((share - HIGHLIGHT_SHARE_LOW)
                                           / (HIGHLIGHT_SHARE_HIGH - HIGHLIGHT_SHARE_LOW)))
  return 1.0 + gain * factor


def clipped_share(level, coc_radius_px, max_radius):
  """Share of the blur's window that is clipped, per pixel: how large a clipped area is against
  the pixel's own blur.

  level: (H, W) clipped level in [0, 1]; coc_radius_px: (H, W) blur radius r in px (signed or
  not); max_radius: static bound of |r| in px. The window around a pixel is (2R + 1)^2 px, R =
  max(HIGHLIGHT_WINDOW_SCALE |r|, HIGHLIGHT_MIN_WINDOW_PX), clipped to the image: box means of
  `level` at R = 2, 4, 8, ... (each an exact box sum from prefix sums) interpolated linearly in
  log2 R, so the share is smooth in r and differentiable in level. Returns (H, W) float in [0, 1].
  """
  h, w = level.shape
  lo = float(HIGHLIGHT_MIN_WINDOW_PX)
  scales = [lo]
  while scales[-1] < min(HIGHLIGHT_WINDOW_SCALE * float(max_radius), max(h, w)):
    scales.append(2.0 * scales[-1])
  t = jnp.log2(jnp.maximum(HIGHLIGHT_WINDOW_SCALE * jnp.abs(coc_radius_px), lo) / lo)
  share = jnp.zeros_like(level)
  for j, radius in enumerate(scales):
    mean = _box_sum(level, int(radius)) / _box_area(h, w, int(radius), level.dtype)
    weight = jnp.maximum(1.0 - jnp.abs(t - j), 0.0)
    if j == len(scales) - 1:
      weight = jnp.where(t >= j, 1.0, weight)
    share = share + weight * mean
  return share


def _box_sum(x, radius):
  """Sum of (H, W) x over the (2 radius + 1)^2 window around each pixel, clipped to the image."""
  def along(x, axis):
    n = x.shape[axis]
    c = jnp.cumsum(x, axis=axis)
    # q[m] = (sum of the first m - radius values), m - radius clipped to [0, n]: the window of
    # pixel i, from max(i - radius, 0) to min(i + radius, n - 1), sums to q[i + 2 radius + 1] -
    # q[i]. Slices of the prefix sums rather than an index gather, which XLA:CPU runs slower.
    widths = [(0, 0)] * x.ndim
    widths[axis] = (radius + 1, 0)
    q = jnp.pad(c, widths)
    widths[axis] = (0, radius)
    q = jnp.pad(q, widths, mode="edge")
    return (jax.lax.slice_in_dim(q, 2 * radius + 1, 2 * radius + 1 + n, axis=axis)
            - jax.lax.slice_in_dim(q, 0, n, axis=axis))
  return along(along(x, 1), 0)


def _box_area(h, w, radius, dtype):
  """(H, W) number of pixels in each pixel's (2 radius + 1)^2 window clipped to the image: the
  outer product of the clipped window lengths along each axis (exact integers)."""
  def lengths(n):
    i = np.arange(n)
    return jnp.asarray(np.minimum(i + radius + 1, n) - np.maximum(i - radius, 0), dtype)
  return lengths(h)[:, None] * lengths(w)[None, :]


def recover_highlights(image01, *, gain, threshold=PHOTO_HIGHLIGHT_THRESHOLD,
                       coc_radius_px=None, max_radius=None):
  """Linear radiance with clipped highlights raised: srgb_to_linear(image01) * highlight_boost.

  image01: (..., 3) sRGB in [0, 1] ((H, W, 3) with max_radius); coc_radius_px: (...) the pixels'
  blur radii in px, or None (all treated as defocused); max_radius: as `highlight_boost`. Returns
  (..., 3) linear light >= 0; a pixel's radiance is raised by a factor in [1, 1 + gain] (1 below
  `threshold`, within 0.5 px of focus, or in a clipped area that fills its blur's window; 1 + gain
  at an isolated white light blurred by >= 2 px), so a clipped light's energy is recovered up to
  1 + gain times its clipped value. gain 0 returns the plain linearised image.
  """
  lin = srgb_to_linear(jnp.clip(image01, 0.0, 1.0))
  boost = highlight_boost(image01, gain=gain, threshold=threshold, coc_radius_px=coc_radius_px,
                          max_radius=max_radius)
  return lin * boost[..., None]


def render_trace_count():
  """How many times the compiled render has been traced in this process: one per distinct
  program (photo size, layer plan, method, aperture blades, highlights on/off), each a compile
  unless the persistent cache (`dofjax.compile_cache`) holds it."""
  return _RENDER_TRACES[0]


_RENDER_TRACES = [0]


def _layer_factor(radius, method):
  """Downsampling factor (1, 2, 4 or 8) at which a layer of this |radius| is blurred: 'pyramid'
  halves the resolution from _HALF_RES_RADIUS px on and keeps f <= |radius| / _CRISP_RATIO
  beyond; with Catmull-Rom upsampling a disc's rim keeps a 10%-90% rise of 2.9 px at f = 2
  (16-63 px), ~5.9 px at f = 4, ~9 px at f = 8: under ~9% of the radius (crisp bokeh)."""
  f = 1
  if method == "pyramid" and abs(radius) >= _HALF_RES_RADIUS:
    f = 2
    while f < _MAX_FACTOR and abs(radius) / (2 * f) >= _CRISP_RATIO:
      f *= 2
  return f


def _fill_plan(radii):
  """(fill radius in px, fill factor, pull factor): the fill reaches twice the largest blur
  radius; its push-pull goes down to the coarsest factor whose blocks are at most half of that."""
  reach = _FILL_RADIUS_SCALE * float(np.max(np.abs(radii)))
  f = 1
  while f < _MAX_FACTOR and reach / (2 * f) >= 2 * _MIN_LOWRES_RADIUS:
    f *= 2
  pull = 1
  while pull < _MAX_FACTOR and 2 * pull <= reach / 2:
    pull *= 2
  return reach, f, pull


def _layer_weight(u, knots, k):
  """Tent weight of layer k (in [0, 1]) for blur radii u already clipped to the knots' range;
  the weights of all layers sum to 1."""
  up = (u - knots[k - 1]) / (knots[k] - knots[k - 1]) if k > 0 else None
  down = (knots[k + 1] - u) / (knots[k + 1] - knots[k]) if k + 1 < len(knots) else None
  if up is None:
    w = down
  elif down is None:
    w = up
  else:
    w = jnp.minimum(up, down)
  return jnp.clip(w, 0.0, 1.0)


def _nearer_share(u, knots, k):
  """Share of each pixel that belongs to layers nearer than layer k (closed form, in [0, 1])."""
  if k + 1 >= len(knots):
    return jnp.zeros_like(u)
  return jnp.clip((u - knots[k]) / (knots[k + 1] - knots[k]), 0.0, 1.0)


# ----------------------------------------------------------------------------- resampling

def _downsample(x, f):
  """Box average of (C, H, W) by an integer factor f dividing H and W."""
  if f == 1:
    return x
  # Strided slices fuse into one pass on XLA:CPU; a reshape + mean is ~8x slower there.
  rows = sum(x[:, i::f, :] for i in range(f))
  return sum(rows[:, :, j::f] for j in range(f)) * (1.0 / (f * f))


def _upsample_axis(x, f, axis):
  """Bilinear upsampling by integer f along `axis` (half-pixel centres, edges clamped)."""
  n = x.shape[axis]
  xp = jnp.concatenate([jax.lax.slice_in_dim(x, 0, 1, axis=axis), x,
                        jax.lax.slice_in_dim(x, n - 1, n, axis=axis)], axis=axis)
  phases = []
  for p in range(f):
    t = (p + 0.5) / f - 0.5           # Source offset in (-0.5, 0.5) from input pixel j.
    lo = 0 if t < 0 else 1            # Index in xp of the left neighbour (xp[j + lo]).
    a = t + 1.0 - lo                  # Weight of the right neighbour.
    left = jax.lax.slice_in_dim(xp, lo, lo + n, axis=axis)
    right = jax.lax.slice_in_dim(xp, lo + 1, lo + 1 + n, axis=axis)
    phases.append((1.0 - a) * left + a * right)
  y = jnp.stack(phases, axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = n * f
  return y.reshape(shape)


def _upsample(x, f):
  """Bilinear upsampling of (C, h, w) by an integer factor f."""
  if f == 1:
    return x
  return _upsample_axis(_upsample_axis(x, f, 1), f, 2)


def _catmull_rom(t):
  """Weights of the taps at -1, 0, 1, 2 for a sample at offset t in [0, 1) (Keys cubic, a = -0.5:
  sums to 1 and reproduces quadratics, so it adds no variance)."""
  t2, t3 = t * t, t * t * t
  return (-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0, -1.5 * t3 + 2.0 * t2 + 0.5 * t,
          0.5 * t3 - 0.5 * t2)


def _upsample_axis_cubic(x, f, axis):
  """Catmull-Rom upsampling by integer f along `axis` (half-pixel centres, edges clamped)."""
  n = x.shape[axis]
  first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
  last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
  xp = jnp.concatenate([first, first, x, last, last], axis=axis)   # x[j] is xp[j + 2].
  phases = []
  for p in range(f):
    t = (p + 0.5) / f - 0.5
    base = math.floor(t)               # Taps at j + base - 1 .. j + base + 2.
    taps = [jax.lax.slice_in_dim(xp, base + 1 + m, base + 1 + m + n, axis=axis)
            for m in range(4)]
    phases.append(sum(wt * tap for wt, tap in zip(_catmull_rom(t - base), taps)))
  y = jnp.stack(phases, axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = n * f
  return y.reshape(shape)


def _upsample_sharp(x, f):
  """Catmull-Rom upsampling of (C, h, w) by an integer factor f (for blurred layers: a disc's rim
  stays crisper than bilinear's ~1.65 f px rise; it may ring by a few % next to the rim)."""
  if f == 1:
    return x
  return _upsample_axis_cubic(_upsample_axis_cubic(x, f, 1), f, 2)


# ----------------------------------------------------------------------------- kernels

def _disc(dy, dx, radius, ramp=1.0):
  """Anti-aliased disc of `radius` px on offset grids: coverage clip(r + 0.5 - dist, 0, 1), or
  with a rim `ramp` px wide, clip((r - dist) / ramp + 0.5, 0, 1)."""
  if ramp == 1.0:
    return jnp.clip(radius + 0.5 - jnp.sqrt(dy * dy + dx * dx), 0.0, 1.0)
  return jnp.clip((radius - jnp.sqrt(dy * dy + dx * dx)) / ramp + 0.5, 0.0, 1.0)


def _polygon(dy, dx, radius, blades, rotation, ramp=1.0):
  """Anti-aliased regular `blades`-gon inscribed in the circle of `radius` px (corners on it).

  dy, dx: offset grids (dy down the image). rotation: radians, counterclockwise as seen; at 0 a
  corner points up. Coverage clip(0.5 - signed distance to the polygon, 0, 1), the signed distance
  being the largest over the edges of (offset . edge normal - apothem); `ramp` as in `_disc`.
  """
  apothem = radius * math.cos(math.pi / blades)
  dist = None
  for k in range(blades):
    # Edge normals sit halfway between corners; corners at 90 deg + rotation + k * 360 / blades.
    angle = 0.5 * math.pi + rotation + (2 * k + 1) * math.pi / blades
    d = dx * jnp.cos(angle) - dy * jnp.sin(angle)
    dist = d if dist is None else jnp.maximum(dist, d)
  return jnp.clip((apothem - dist) / ramp + 0.5, 0.0, 1.0)


def _aperture(dy, dx, radius, aperture, ramp=1.0):
  """Unnormalised anti-aliased aperture of `radius` px; aperture = (blades, rotation in radians),
  blades 0 for a disc; its rim is `ramp` px wide."""
  blades, rotation = aperture
  if blades == 0:
    return _disc(dy, dx, radius, ramp)
  return _polygon(dy, dx, radius, blades, rotation, ramp)


def aperture_kernel(radius, *, aperture_blades=0, aperture_rotation_deg=0.0):
  """The normalised blur kernel of one layer: an anti-aliased disc or regular polygon.

  Args:
    radius: blur radius in px (> 0); a polygon is inscribed in the circle of this radius.
    aperture_blades: 0 for a round disc, N >= 3 for a regular N-gon.
    aperture_rotation_deg: polygon rotation, degrees counterclockwise; at 0 a corner points up.
  Returns:
    numpy float32 (2n + 1, 2n + 1), n = ceil(radius) + 1, centred, summing to 1.
  """
  _check_aperture(aperture_blades)
  n = int(math.ceil(radius)) + 1
  d = np.arange(-n, n + 1, dtype=np.float32)
  kernel = _aperture(jnp.asarray(d)[:, None], jnp.asarray(d)[None, :], float(radius),
                     (int(aperture_blades), math.radians(aperture_rotation_deg)))
  return np.asarray(kernel / jnp.sum(kernel), np.float32)


def _check_aperture(blades):
  if int(blades) != blades or blades < 0 or blades in (1, 2):
    raise ValueError(f"aperture_blades must be 0 (a round aperture) or an integer >= 3 (a "
                     f"regular polygon with that many blades); got {blades}.")


def _smooth_size(n):
  """Smallest integer >= n whose only prime factors are 2, 3 and 5 (fast FFT sizes)."""
  while True:
    m = n
    for p in (2, 3, 5):
      while m % p == 0:
        m //= p
    if m == 1:
      return n
    n += 1


def _blur_fft(x, radius, aperture=(0, 0.0), ramp=1.0):
  """Zero-padded (not circular) convolution of (C, h, w) with a normalised aperture (a disc, or a
  polygon: see `_aperture`), via rFFT."""
  _, h, w = x.shape
  pad = int(math.ceil(radius)) + 1
  hc, wc = _smooth_size(h + pad), _smooth_size(w + pad)
  iy = jnp.arange(hc, dtype=jnp.float32)
  ix = jnp.arange(wc, dtype=jnp.float32)
  dy = jnp.where(iy <= hc // 2, iy, iy - hc)[:, None]   # Kernel centred at (0, 0), wrapped.
  dx = jnp.where(ix <= wc // 2, ix, ix - wc)[None, :]
  kernel = _aperture(dy, dx, radius, aperture, ramp)
  kernel = kernel / jnp.sum(kernel)
  spectrum = jnp.fft.rfft2(kernel)
  y = jnp.fft.irfft2(jnp.fft.rfft2(x, s=(hc, wc)) * spectrum, s=(hc, wc))
  return y[:, :h, :w]


def _small_kernel(radius, aperture, ramp):
  """(n, kernel): the normalised aperture of `radius` px on its (2n + 1, 2n + 1) grid of offsets
  -n..n, n = ceil(radius), centred (for the spatial-domain blurs)."""
  n = int(math.ceil(radius))
  d = jnp.asarray(np.arange(-n, n + 1, dtype=np.float32))
  kernel = _aperture(d[:, None], d[None, :], radius, aperture, ramp)
  return n, kernel / jnp.sum(kernel)


def _blur_direct(x, radius, aperture=(0, 0.0), ramp=1.0):
  """Same as `_blur_fft` as a depthwise 2-D convolution (cost grows with radius^2)."""
  c = x.shape[0]
  n, kernel = _small_kernel(radius, aperture, ramp)
  kernel = jnp.broadcast_to(kernel[None, None], (c, 1, 2 * n + 1, 2 * n + 1))
  y = jax.lax.conv_general_dilated(x[None], kernel, (1, 1), [(n, n), (n, n)],
                                   feature_group_count=c)
  return y[0]


def _blur_shifts(x, radius, aperture=(0, 0.0), ramp=1.0):
  """Same as `_blur_fft` as a sum of shifted copies of (C, h, w), one per kernel tap inside the
  aperture's circle: XLA fuses it into one pass, 4-8x faster than the FFT on CPU up to
  _SHIFT_RADIUS px (beyond, the fusion splits and it becomes far slower)."""
  _, h, w = x.shape
  n, kernel = _small_kernel(radius, aperture, ramp)
  xp = jnp.pad(x, ((0, 0), (n, n), (n, n)))
  reach = radius + 0.5 * ramp          # Taps beyond this distance are outside every aperture.
  out = None
  for i in range(2 * n + 1):
    for j in range(2 * n + 1):
      if math.hypot(i - n, j - n) >= reach:
        continue
      # Convolution: output (y, x) takes input (y - dy, x - dx) with weight kernel(dy, dx).
      tap = kernel[i, j] * xp[:, 2 * n - i: 2 * n - i + h, 2 * n - j: 2 * n - j + w]
      out = tap if out is None else out + tap
  return out


def _blur(x, radius, method, aperture=(0, 0.0), ramp=1.0):
  """Blurs (C, h, w) with the normalised aperture of `radius` px (rim `ramp` px wide)."""
  if radius <= 0.0:
    return x
  if method == "direct":
    return _blur_direct(x, radius, aperture, ramp)
  if method == "pyramid" and radius <= _SHIFT_RADIUS:
    return _blur_shifts(x, radius, aperture, ramp)
  return _blur_fft(x, radius, aperture, ramp)


# ----------------------------------------------------------------------------- the renderer

def _render_one(image, s, *, radii, method, highlight=None, aperture=(0, 0.0)):
  """image (H, W, 3) sRGB [0, 1]; s (H, W) signed radius px; highlight None (off) or (gain,
  threshold) of `recover_highlights`; aperture (blades, rotation in radians). Returns (H, W, 3)
  sRGB."""
  h, w = s.shape
  factors = [_layer_factor(r, method) for r in radii]
  fill_reach, fill_factor, pull_factor = _fill_plan(radii)
  big = max(factors + [fill_factor, pull_factor])
  hp, wp = -(-h // big) * big, -(-w // big) * big
  pad = ((0, hp - h), (0, wp - w))

  if highlight is None:
    lin = srgb_to_linear(jnp.clip(image, 0.0, 1.0))
  else:
    lin = recover_highlights(image, gain=highlight[0], threshold=highlight[1], coc_radius_px=s,
                             max_radius=float(np.max(np.abs(radii))))
  lin = jnp.pad(jnp.moveaxis(lin, -1, 0), ((0, 0),) + pad)
  inside = jnp.pad(jnp.ones((h, w), s.dtype), pad)
  s = jnp.pad(s, pad)
  knots = np.asarray(radii, np.float64)
  u = jnp.clip(s, knots[0], knots[-1])
  # Premultiplied colour and coverage of layer k at full resolution (each use fuses it).
  def full(k, lin, u, inside):
    wk = _layer_weight(u, knots, k) * inside
    return jnp.concatenate([lin * wk, wk[None]])

  # The fill's inputs at its coarse resolution, split into layers from colour and blur radii
  # box-averaged to half that resolution first (the fill is smooth; 1/4 of the cost or less).
  g = max(fill_factor // 2, 1)
  lin_g, ui_g = _downsample(lin, g), _downsample(jnp.stack([u, inside]), g)
  coarse = jnp.stack([_downsample(full(k, lin_g, ui_g[0], ui_g[1]), fill_factor // g)
                      for k in range(len(radii))])
  alpha, base = _hidden_fill(coarse, s, inside, radii, fill_reach, fill_factor, method)

  blurred_layers = []
  for k, radius in enumerate(radii):
    f = factors[k]
    # A disc adds a variance of r^2 / 4 per axis; box-down (f^2 - 1) / 12, Catmull-Rom-up none.
    shrink = (f * f - 1) / 3.0
    r_low = math.sqrt(max(radius * radius - shrink, 0.25 * radius * radius)) / f

    def blur_layer(lin, u, inside, alpha_k, base_k, k=k, f=f, r_low=r_low):
      layer = _downsample(full(k, lin, u, inside), f)
      # The fill goes where the layers at least two steps nearer are (one step nearer, a surface
      # may be split between the two layers, which must not show this layer's fill through its
      # halves).
      nearer = _downsample((_nearer_share(u, knots, k + 1) * inside)[None], f)
      fill = _layer_fill(layer, f, alpha_k, base_k, fill_factor, pull_factor)
      # At 1/f resolution the rim stays one full-resolution pixel wide (1/f px here): the
      # resampling softens it enough.
      layer = _blur(layer + nearer * fill, r_low, method, aperture, ramp=1.0 / f)
      # Coverage clipped to [0, 1] without a concatenation, which XLA:CPU would fuse into the
      # blur's shifted sums and evaluate there element by element (~10x slower).
      return jnp.clip(layer, _RGBA_LOW, _RGBA_HIGH)

    # A layer no pixel falls on has no fill either (its fill continues its own colour): skip it
    # (XLA runs one branch; under vmap both run, with the same result).
    blurred = jax.lax.cond(_occupied(u, inside, knots, k), blur_layer,
                           lambda *_, f=f: jnp.zeros((4, hp // f, wp // f), lin.dtype),
                           lin, u, inside, alpha[k], base[k])
    blurred_layers.append((blurred, f))

  rgba = _composite(blurred_layers)
  rgb = rgba[:3] / jnp.maximum(rgba[3:], COVERAGE_EPS)
  rgb = linear_to_srgb(jnp.maximum(rgb, 0.0))[:, :h, :w]
  return jnp.clip(jnp.moveaxis(rgb, 0, -1), 0.0, 1.0)


def _occupied(u, inside, knots, k):
  """Whether layer k has any weight: some pixel inside the image with clipped radius u strictly
  between the neighbouring knots (scalar bool)."""
  hit = inside > 0
  if k > 0:
    hit = hit & (u > knots[k - 1])
  if k + 1 < len(knots):
    hit = hit & (u < knots[k + 1])
  return jnp.any(hit)


def _hidden_fill(coarse, s, inside, radii, fill_reach, fill_factor, method):
  """Where and with what base colour each layer's hidden background is filled, at the fill
  resolution: (alpha (L, 1, H/F, W/F) in [0, 1], base colour (L, 3, H/F, W/F)), F = fill_factor;
  coarse: the layers' premultiplied (colour, coverage) (L, 4, H/F, W/F).

  Where: a layer's fill is full within ~fill_reach / 2 of its pixels (a normalised convolution of
  its coverage) and only near an occlusion edge (a jump of more than _EDGE_STEPS mean layer steps,
  max_radius / M px; the steps themselves grow away from focus): on
  a continuous surface split into bands, the coverage normalisation already mixes the bands
  correctly and a fill would smear far colours under near ones. The colour (`_layer_fill`) is the
  layer's own colour continued into its holes by push-pull; `base`, the normalised convolution's
  colour, only where even the coarsest push-pull level is empty.
  """
  step = max(abs(r) for r in radii) / (len(radii) // 2)
  s_far, s_near = _block_extremes(s, inside, fill_factor)
  edge = jnp.clip((s_near - s_far) / (_EDGE_STEPS * max(step, 1.0)) - 1.0, 0.0, 1.0)
  fill_radius = fill_reach / fill_factor
  blurred = jax.vmap(lambda x: _blur(x, fill_radius, method))(
      jnp.concatenate([coarse, jnp.broadcast_to(edge[None], coarse[:1].shape)], axis=0))
  norm = jnp.maximum(_blur(jnp.ones((1,) + coarse.shape[2:], s.dtype), fill_radius, method),
                     COVERAGE_EPS)
  # Edges are lines, covering ~1 / fill_radius of a disc they cross: hence the larger gain.
  near_edge = jnp.clip(2.0 * fill_radius * blurred[-1:, 3:] / norm, 0.0, 1.0)
  blurred = blurred[:-1]
  base = blurred[:, :3] / jnp.maximum(blurred[:, 3:], COVERAGE_EPS)
  alpha = jnp.clip(_FILL_GAIN * blurred[:, 3:] / norm, 0.0, 1.0) * near_edge
  return alpha, base


def _layer_fill(layer, f, alpha, base, fill_factor, pull_factor):
  """A layer's hidden-background fill, premultiplied (colour, coverage) (4, h, w) at the layer's
  factor f, from the layer (4, h, w) and its fill alpha (1, ..) and base colour (3, ..) at
  fill_factor. The colour is pushed-pulled from factor g = max(f, _FILL_COLOUR_FACTOR) on (it only
  shows inside holes, where it is smooth) and upsampled with the alpha to factor f."""
  g = min(max(f, _FILL_COLOUR_FACTOR), fill_factor)
  colour = _push_pull(_downsample(layer, g // f), g, base, fill_factor, pull_factor)
  a = _upsample(alpha, fill_factor // g)
  return _upsample(jnp.concatenate([colour * a, a]), g // f)


def _push_pull(premult, f, base, f_base, f_top):
  """Colour (3, h, w) of a layer given at factor f as premultiplied (colour, coverage) (4, h, w),
  continued into where it has no coverage: pull (box-average colour and coverage down to factor
  f_top), then push (coarse to fine, each level keeps its own colour where its coverage is high
  and takes the coarser level's elsewhere). `base` (3, .., ..) at factor f_base: the colour where
  even the coarsest level is empty."""
  pyramid = [premult]
  g = f
  while g < f_top:
    pyramid.append(_downsample(pyramid[-1], 2))
    g *= 2
  colour = (_downsample(base, g // f_base) if g >= f_base else _upsample(base, f_base // g))
  trust = jnp.ones_like(colour[:1])
  for level in pyramid[::-1]:
    if colour.shape[1:] != level.shape[1:]:
      # Interpolate the coarser colour weighted by how much of it was seen at its own level, so
      # that just inside a hole the colour seen nearest outweighs a coarser average.
      up = _upsample(jnp.concatenate([colour * trust, trust]), 2)
      colour = up[:3] / jnp.maximum(up[3:], COVERAGE_EPS)
    own = jnp.clip(_FILL_GAIN * level[3:], 0.0, 1.0)
    colour = own * level[:3] / jnp.maximum(level[3:], COVERAGE_EPS) + (1.0 - own) * colour
    trust = own + _PUSH_TRUST_FLOOR
  return colour


def _block_extremes(s, inside, f):
  """Min and max of s over each f x f block and its 8 neighbours (padding ignored): (1, H/f, W/f)."""
  lo = jnp.where(inside > 0, s, jnp.inf)[None]
  hi = jnp.where(inside > 0, s, -jnp.inf)[None]
  if f > 1:
    lo = functools.reduce(jnp.minimum, [lo[:, i::f, j::f] for i in range(f) for j in range(f)])
    hi = functools.reduce(jnp.maximum, [hi[:, i::f, j::f] for i in range(f) for j in range(f)])
  lo = _neighbourhood(lo, jnp.minimum, jnp.inf)
  hi = _neighbourhood(hi, jnp.maximum, -jnp.inf)
  both = jnp.isfinite(lo) & jnp.isfinite(hi)
  return jnp.where(both, lo, 0.0), jnp.where(both, hi, 0.0)


def _neighbourhood(x, op, pad_value):
  """op over each pixel's 3x3 neighbourhood of (1, h, w)."""
  _, h, w = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=pad_value)
  return functools.reduce(op, [xp[:, i:i + h, j:j + w] for i in range(3) for j in range(3)])


def _composite(layers):
  """Composites premultiplied (4, H/f, W/f) layers, given far to near, into full-res (4, H, W).

  Near to far, each layer is added through the transmittance clip(1 - summed coverage of the
  nearer layers). In front of the focal plane the layers get finer towards it, so the running
  sums are kept at the current layer's resolution and upsampled as they go; the layers blurred at
  full resolution follow; behind them, the layers blurred at reduced resolution (`_add_behind`).
  """
  focal = len(layers) // 2
  split = sum(1 for j in range(focal) if layers[j][1] > 1)  # These are layers[:split].
  acc, f_acc = layers[-1]
  near = acc[3:]
  for layer, f in layers[split:-1][::-1]:
    if f < f_acc:   # Never coarser: within layers[split:], factors only shrink towards focus.
      state = _upsample_sharp(jnp.concatenate([acc, near]), f_acc // f)
      acc, near, f_acc = state[:4], state[4:], f
    acc = acc + jnp.maximum(1.0 - near, 0.0) * layer
    near = near + layer[3:]
  acc, near = _upsample_sharp(acc, f_acc), _upsample_sharp(near, f_acc)
  return acc if split == 0 else acc + _add_behind(layers[:split], near)


def _add_behind(layers, near):
  """The reduced-resolution layers behind the focal plane (far to near, factors > 1 shrinking
  towards focus), composited under full-resolution coverage `near` (1, H, W): (4, H, W).

  Layer j is seen through u - b_j, where u = clip(1 - near, 0, 1) is sharp (edges in focus) and
  b_j, the summed coverage of the layers in `layers` nearer than j, is smooth. So each layer is
  weighted at its own resolution by clip(1 - b_j / u_f) (u_f: u box-averaged to that resolution),
  the sums are upsampled coarse to fine, and only then multiplied by the sharp u: exact where u
  is 0, 1 or smooth; within a few pixels of an edge in focus, b_j is scaled by about 1 / u_f.
  """
  u = jnp.clip(1.0 - near, 0.0, 1.0)
  u_f, f_u = u, 1
  b = f_b = None
  sums = []     # (sum of weighted layers, factor), finest first.
  for layer, f in layers[::-1]:
    u_f, f_u = _downsample(u_f, f // f_u), f
    if b is None:
      part, b = layer, layer[3:]
    else:
      b = _downsample(b, f // f_b)
      part = jnp.maximum(1.0 - b / jnp.maximum(u_f, _TRANSMITTANCE_EPS), 0.0) * layer
      b = b + layer[3:]
    f_b = f
    if sums and sums[-1][1] == f:
      sums[-1] = (sums[-1][0] + part, f)
    else:
      sums.append((part, f))
  total, f_t = sums[-1]
  for part, f in sums[-2::-1]:
    total, f_t = _upsample_sharp(total, f_t // f) + part, f
  return u * _upsample_sharp(total, f_t)


def render_disparity(image, disparity, *, focus_disparity, blur_scale_px,
                     num_layers=render_plan.DEFAULT_NUM_LAYERS,
                     max_radius=render_plan.DEFAULT_MAX_RADIUS, method=render_plan.DEFAULT_METHOD,
                     aperture_blades=0, aperture_rotation_deg=0.0,
                     highlight_gain=0.0, highlight_threshold=PHOTO_HIGHLIGHT_THRESHOLD,
                     programs=None):
  """Shallow depth of field from disparity and a blur scale (the disparity form).

  Args:
    image: float (H, W, 3) or (N, H, W, 3), sRGB in [0, 1].
    disparity: float (H, W) or (N, H, W), 1/depth in 1/m (any consistent inverse-depth unit).
    focus_disparity: scalar (or (N,)) disparity of the focal plane, same unit.
    blur_scale_px: scalar (or (N,)) K: blur radius in px per unit of disparity away from focus.
    num_layers: odd number of depth layers (static), one on the focal plane.
    max_radius: largest blur radius in pixels (static); larger blurs are clipped to it. None: the
      image's own largest |K (d - d_f)| (inputs must then be concrete, not traced).
    method: 'pyramid' (default), 'fft' or 'direct' (static); see the module docstring.
    aperture_blades: 0 (default) for a round aperture, N >= 3 for a regular N-gon (static).
    aperture_rotation_deg: polygon rotation in degrees, counterclockwise; at 0 a corner points up.
    highlight_gain, highlight_threshold: highlight recovery before blurring (`recover_highlights`);
      gain 0 (default) turns it off and gives exactly the render without it. Real photos:
      PHOTO_HIGHLIGHT_GAIN, PHOTO_HIGHLIGHT_THRESHOLD.
    programs: None (default), or a folder of stored compiled programs
      (`compile_cache.program_folder`): the render's program is loaded from there when a process
      has stored it, else compiled and stored, so a later process neither traces nor compiles
      it (`_stored_render`). Ignored under an outer jit/grad/vmap. The image is the same.
  Returns:
    float32, same shape as `image`, sRGB in [0, 1].
  """
  if max_radius is None:
    max_radius = _concrete_max(
        "max_radius=None (the image's own largest blur)",
        lambda: np.abs(np.asarray(blur_scale_px, np.float64)[..., None, None]
                       * (np.asarray(disparity, np.float64)
                          - np.asarray(focus_disparity, np.float64)[..., None, None])))
  render_plan.check_layers(num_layers, max_radius)
  _check_aperture(aperture_blades)
  if method not in render_plan.METHODS:
    raise ValueError(f"method must be one of {render_plan.METHODS}; got {method!r}.")
  highlights = _highlights_on(highlight_gain, highlight_threshold)
  image = jnp.asarray(image, jnp.float32)
  disparity = jnp.asarray(disparity, jnp.float32)
  if image.shape[-1] != 3 or image.shape[:-1] != disparity.shape or image.ndim not in (3, 4):
    raise ValueError(f"image must be (H, W, 3) or (N, H, W, 3) and disparity (H, W) or "
                     f"(N, H, W) of the same size; got {image.shape} and {disparity.shape}.")
  if image.ndim == 3:
    d_f = jnp.asarray(focus_disparity, jnp.float32)
    k = jnp.asarray(blur_scale_px, jnp.float32)
  else:
    n = image.shape[0]
    d_f = jnp.broadcast_to(jnp.asarray(focus_disparity, jnp.float32), (n,))
    k = jnp.broadcast_to(jnp.asarray(blur_scale_px, jnp.float32), (n,))
  args = (image, disparity, d_f, k)
  kwargs = dict(rotation_deg=jnp.asarray(aperture_rotation_deg, jnp.float32),
                highlight_gain=jnp.asarray(highlight_gain, jnp.float32),
                highlight_threshold=jnp.asarray(highlight_threshold, jnp.float32))
  static = _render_static(num_layers, max_radius, method, aperture_blades, highlights)
  if programs is None or any(isinstance(x, jax.core.Tracer)
                             for x in jax.tree_util.tree_leaves((args, kwargs))):
    return _render_jit(*args, **kwargs, **static)
  return _stored_render(programs, args, kwargs, static)(*args, **kwargs)


def _render_static(num_layers, max_radius, method, blades, highlights):
  """`_render_jit`'s static keywords for a layer plan, kernel method, aperture blade count and
  highlight recovery on/off: one place, so `compile_render` and `render_disparity` name (and
  store) the same program."""
  return dict(radii=tuple(float(r) for r in render_plan.layer_radii(num_layers, max_radius)),
              method=method, blades=int(blades), highlights=bool(highlights))


def _highlights_on(gain, threshold):
  """False when the gain is a concrete 0 (recovery off, compiled out); checks concrete values."""
  if isinstance(gain, jax.core.Tracer):
    return True
  if not isinstance(threshold, jax.core.Tracer) and not 0.0 <= float(threshold) < 1.0:
    raise ValueError(f"highlight_threshold must be in [0, 1) (an sRGB value); got {threshold}.")
  gain = np.asarray(gain, np.float64)
  if gain.ndim != 0 or not gain >= 0:
    raise ValueError(f"highlight_gain must be a scalar >= 0 (0 turns recovery off); got {gain}.")
  return bool(gain != 0)


def _concrete_max(what, values):
  """max(values()) as a Python float >= 1 px; a clear error when the inputs are traced."""
  try:
    largest = float(np.max(values()))
  except jax.errors.TracerArrayConversionError:
    raise ValueError(f"{what} needs concrete inputs, but they are traced (under jax.jit, grad or "
                     f"vmap): pass an explicit max_radius in pixels, e.g. from "
                     f"dof.largest_coc_radius_px on the concrete depth map.") from None
  if not math.isfinite(largest):
    raise ValueError(f"{what}: the blur radii are not finite (check depth/disparity); pass an "
                     f"explicit max_radius.")
  return max(largest, 1.0)


@functools.partial(jax.jit, static_argnames=("radii", "method", "blades", "highlights"))
def _render_jit(image, disparity, focus_disparity, blur_scale_px, *, radii, method, blades=0,
                highlights=False, rotation_deg=0.0, highlight_gain=0.0,
                highlight_threshold=PHOTO_HIGHLIGHT_THRESHOLD):
  """Compiled once per (shapes, radii, method, blades, highlights on/off) and shared by every
  caller: eager callers (the CLI, tests) get one XLA compilation instead of hundreds of op-by-op
  ones; under an outer jit/grad/vmap it is simply inlined. Rotation and the highlight gain and
  threshold are traced (changing them does not recompile)."""
  _RENDER_TRACES[0] += 1   # Runs once per trace, i.e. once per distinct program.
  aperture = (blades, jnp.deg2rad(rotation_deg))
  highlight = (highlight_gain, highlight_threshold) if highlights else None

  def render_single(img, disp, d_f, k):
    return _render_one(img, signed_coc_radius(disp, d_f, k), radii=radii, method=method,
                       highlight=highlight, aperture=aperture)

  if image.ndim == 3:
    return render_single(image, disparity, focus_disparity, blur_scale_px)
  return jax.vmap(render_single)(image, disparity, focus_disparity, blur_scale_px)


_STORED_RENDERS = {}   # (folder, key) -> jax.stages.Compiled, loaded or compiled in this process.


def _stored_render(folder, args, kwargs, static):
  """The compiled `_render_jit` for these concrete arguments (args: image, disparity, focus
  disparity, blur scale; kwargs: its traced keywords; static: its static ones), from this
  process's memory, else from the stored programs in `folder` (`compile_cache.stored_program`),
  else traced and compiled (counted by `render_trace_count`) and stored there. Returns a
  jax.stages.Compiled called as `_render_jit` without the static keywords."""
  from dofjax import compile_cache  # pylint: disable=g-import-not-at-top
  specs = jax.tree_util.tree_map(lambda x: (tuple(x.shape), str(x.dtype)), (args, kwargs))
  key = f"dof._render_jit {compile_cache.source_digest(__file__)} {specs} {sorted(static.items())}"
  if (folder, key) not in _STORED_RENDERS:
    compiled = compile_cache.stored_program(
        folder, "render", key, lambda: _render_jit.lower(*args, **kwargs, **static).compile(),
        in_tree=jax.tree_util.tree_structure((args, kwargs)),
        out_tree=jax.tree_util.tree_structure(args[0]))
    _STORED_RENDERS[(folder, key)] = compiled
  return _STORED_RENDERS[(folder, key)]


def compile_render(height, width, *, num_layers=render_plan.DEFAULT_NUM_LAYERS,
                   max_radius=render_plan.DEFAULT_MAX_RADIUS, method=render_plan.DEFAULT_METHOD,
                   aperture_blades=0, highlights=False, programs=None):
  """Compiles, without running it, the program `render_disparity` uses for one (height, width)
  image with these static settings (highlights: a gain > 0 or not), so a later render with them
  finds it compiled (and the persistent cache holds it, when on). programs: None, or the folder of
  stored programs that the later renders pass to `render_disparity`: the program is loaded from
  there or compiled and stored, and those renders then neither trace nor compile it. Safe to call
  from a background thread while other renders run. Returns None."""
  render_plan.check_layers(num_layers, max_radius)
  _check_aperture(aperture_blades)
  scalar = jax.ShapeDtypeStruct((), jnp.float32)
  args = (jax.ShapeDtypeStruct((height, width, 3), jnp.float32),
          jax.ShapeDtypeStruct((height, width), jnp.float32), scalar, scalar)
  kwargs = dict(rotation_deg=scalar, highlight_gain=scalar, highlight_threshold=scalar)
  static = _render_static(num_layers, max_radius, method, aperture_blades, highlights)
  if programs is None:
    _render_jit.lower(*args, **kwargs, **static).compile()
  else:
    _stored_render(programs, args, kwargs, static)


def largest_coc_radius_px(depth_m, *, focus_distance_m, f_number, focal_length_mm,
                          sensor_width_mm=36.0):
  """The largest thin-lens CoC radius in a depth map, to size `max_radius` to the photo.

  Args:
    depth_m: (H, W) or (N, H, W) depth in metres, concrete (numpy or a non-traced array); pixels
      <= 0 or non-finite (invalid) are ignored. The image width is W.
    focus_distance_m, f_number: scalars, or (N,) for a batch.
    focal_length_mm, sensor_width_mm: lens and sensor in millimetres.
  Returns:
    Python float, px (0.0 when no pixel is valid or all are in focus).
  """
  depth = np.asarray(depth_m, np.float64)
  if depth.ndim not in (2, 3):
    raise ValueError(f"depth_m must be (H, W) or (N, H, W); got shape {depth.shape}.")
  lead = (...,) + (None,) * 2
  radius = coc_radius_px(
      np.where(depth > 0, depth, np.nan), focus_distance_m=np.asarray(focus_distance_m)[lead],
      f_number=np.asarray(f_number)[lead], focal_length_mm=focal_length_mm,
      sensor_width_mm=sensor_width_mm, image_width_px=depth.shape[-1])
  radius = radius[np.isfinite(radius)]
  return float(radius.max()) if radius.size else 0.0


def render(image, depth, *, focus_distance, f_number, focal_length_mm=50.0,
           sensor_width_mm=36.0, num_layers=render_plan.DEFAULT_NUM_LAYERS, max_radius=None,
           method=render_plan.DEFAULT_METHOD, aperture_blades=0, aperture_rotation_deg=0.0,
           highlight_gain=0.0, highlight_threshold=PHOTO_HIGHLIGHT_THRESHOLD):
  """Shallow depth of field from depth in metres and thin-lens settings.

  Args:
    image: float (H, W, 3) or (N, H, W, 3), sRGB in [0, 1].
    depth: float (H, W) or (N, H, W), depth in metres, > 0 (fill invalid pixels first).
    focus_distance: focus distance in metres (> focal length), scalar or (N,).
    f_number: f-number (> 0), scalar or (N,).
    focal_length_mm, sensor_width_mm: lens focal length and sensor width in millimetres.
    max_radius: largest blur radius in px (static). None (default): the photo's own largest circle
      of confusion (`largest_coc_radius_px`), so the layers cover exactly the blurs that occur;
      needs concrete inputs (under jax.jit pass it explicitly).
    num_layers, method, aperture_blades, aperture_rotation_deg, highlight_gain,
      highlight_threshold: as in `render_disparity`.
  Returns:
    float32, same shape as `image`, sRGB in [0, 1].
  """
  for name, value in (("focus_distance", focus_distance), ("f_number", f_number)):
    if isinstance(value, (int, float)) and not value > 0:
      raise ValueError(f"{name} must be > 0; got {value}.")
  if max_radius is None:
    max_radius = _concrete_max(
        "render(max_radius=None) (the photo's largest circle of confusion)",
        lambda: largest_coc_radius_px(
            np.maximum(np.asarray(depth, np.float32), 1e-3), focus_distance_m=focus_distance,
            f_number=f_number, focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm))
  k = blur_scale_px(focus_distance_m=focus_distance, f_number=f_number,
                    focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm,
                    image_width_px=jnp.shape(image)[-2])
  disparity = 1.0 / jnp.maximum(jnp.asarray(depth, jnp.float32), 1e-3)
  return render_disparity(image, disparity, focus_disparity=1.0 / jnp.asarray(focus_distance),
                          blur_scale_px=k, num_layers=num_layers, max_radius=max_radius,
                          method=method, aperture_blades=aperture_blades,
                          aperture_rotation_deg=aperture_rotation_deg,
                          highlight_gain=highlight_gain, highlight_threshold=highlight_threshold)


# ----------------------------------------------------------------------------- training helpers

def preview_settings(width):
  """Blur scale K (px per 1/m) and max radius (px) that give a visible effect at `width` px.

  K = width / 8: at 128 px, a wall at 10 m behind a subject at 2 m gets a 6-px blur radius.
  """
  return width / 8.0, max(2.0, round(width / 16.0))


def focus_disparity_from_depth(depth_m, focus="median"):
  """Focal-plane disparity (1/m) from a depth map (H, W) or (N, H, W) in metres (0 = invalid).

  focus: 'median' (median valid depth), 'center' (median valid depth of the central ninth), or a
  distance in metres. Returns a scalar or (N,) array; jit-able.
  """
  depth_m = jnp.asarray(depth_m, jnp.float32)
  if not isinstance(focus, str):
    return jnp.broadcast_to(1.0 / jnp.asarray(focus, jnp.float32), depth_m.shape[:-2])
  if focus == "center":
    h, w = depth_m.shape[-2:]
    depth_m = depth_m[..., h // 3: h - h // 3, w // 3: w - w // 3]
  elif focus != "median":
    raise ValueError(f"focus must be 'median', 'center' or metres; got {focus!r}.")
  flat = depth_m.reshape(depth_m.shape[:-2] + (-1,))
  median = jnp.nanmedian(jnp.where(flat > 0, flat, jnp.nan), axis=-1)
  return 1.0 / jnp.where(jnp.isfinite(median) & (median > 0), median, 2.0)


def render_for_preview(image01, depth_m, *, focus="median", blur_scale_px=None, max_radius=None,
                       num_layers=9, method=render_plan.DEFAULT_METHOD, aperture_blades=0,
                       aperture_rotation_deg=0.0, highlight_gain=0.0,
                       highlight_threshold=PHOTO_HIGHLIGHT_THRESHOLD):
  """Sample renders for small images, e.g. the end-of-training renders in W/samples/.

  Args:
    image01: (H, W, 3) or (N, H, W, 3) sRGB in [0, 1].
    depth_m: (H, W) or (N, H, W) metres; pixels <= 0 (invalid) are rendered sharp.
    focus: 'median', 'center' or metres (see `focus_disparity_from_depth`); pass the same float
      for renders from predicted and from true depth so they are comparable.
    blur_scale_px, max_radius: default `preview_settings(W)`.
    aperture_blades, aperture_rotation_deg, highlight_gain, highlight_threshold: as in
      `render_disparity` (recovery off by default; samples of photos pass PHOTO_HIGHLIGHT_GAIN).
  Returns:
    jax array shaped like image01, sRGB in [0, 1].
  """
  k_default, r_default = preview_settings(jnp.shape(image01)[-2])
  k = k_default if blur_scale_px is None else blur_scale_px
  max_radius = r_default if max_radius is None else max_radius
  depth_m = jnp.asarray(depth_m, jnp.float32)
  d_f = focus_disparity_from_depth(depth_m, focus)
  disparity = jnp.where(depth_m > 0, 1.0 / jnp.maximum(depth_m, 1e-3),
                        jnp.asarray(d_f)[..., None, None])
  return render_disparity(image01, disparity, focus_disparity=d_f, blur_scale_px=k,
                          num_layers=num_layers, max_radius=max_radius, method=method,
                          aperture_blades=aperture_blades,
                          aperture_rotation_deg=aperture_rotation_deg,
                          highlight_gain=highlight_gain, highlight_threshold=highlight_threshold)


# The bokeh loss blurs with the FFT: the same convolution as the default 'pyramid' method's
# shifted sums up to float rounding, but XLA:CPU runs its gradient about 12x faster (0.16 s
# instead of about 2 s for four 64x64 previews, measured 2026-12-07).
BOKEH_LOSS_METHOD = "fft"


def bokeh_loss(image01, depth_pred_m, depth_true_m, *, blur_scale_px=None, max_radius=None,
               num_layers=9, method=BOKEH_LOSS_METHOD, highlight_gain=0.0,
               highlight_threshold=PHOTO_HIGHLIGHT_THRESHOLD):
  """Mean L1 between DoF renders from predicted and from true depth (the bokeh loss term).

  Args:
    image01: (N, H, W, 3) sRGB in [0, 1] (the network input mapped from [-1, 1]).
    depth_pred_m: (N, H, W) predicted depth in metres (> 0), e.g. `depth.decode_depth(code)`.
    depth_true_m: (N, H, W) true depth in metres, 0 = invalid (there the prediction is used,
      so invalid pixels cost nothing).
    blur_scale_px, max_radius, num_layers, method: as `render_for_preview` (static except K;
      method defaults to BOKEH_LOSS_METHOD).
    highlight_gain, highlight_threshold: highlight recovery, off (0) unless asked.
  Returns:
    Scalar float32; differentiable w.r.t. depth_pred_m (the true render is a constant). Focus is
    the median valid true depth of each image.
  """
  depth_pred_m = jnp.asarray(depth_pred_m, jnp.float32)
  depth_true_m = jnp.asarray(depth_true_m, jnp.float32)
  true_filled = jnp.where(depth_true_m > 0, depth_true_m, jax.lax.stop_gradient(depth_pred_m))
  d_f = focus_disparity_from_depth(depth_true_m, "median")
  kw = dict(focus=1.0 / d_f, blur_scale_px=blur_scale_px, max_radius=max_radius,
            num_layers=num_layers, method=method, highlight_gain=highlight_gain,
            highlight_threshold=highlight_threshold)
  pred = render_for_preview(image01, depth_pred_m, **kw)
  true = jax.lax.stop_gradient(render_for_preview(image01, true_filled, **kw))
  return jnp.mean(jnp.abs(pred - true))
