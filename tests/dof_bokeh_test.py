"""Photographic bokeh of the DoF renderer: highlight recovery, polygonal apertures, the photo's own
maximum radius (tiny images; every render below shares one image size and layer plan, so the
compilations are shared)."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dofjax import dof
from dofjax import render_plan
from dof_test import assert_slope_matches_differences  # tests/ is on sys.path under pytest.

H, W = 48, 96
LAYERS, MAX_RADIUS = 5, 12.0          # Layer radii -12, -3.57, 0, 3.57, 12 px.
GAIN = dof.PHOTO_HIGHLIGHT_GAIN
REFERENCE = os.path.join(os.path.dirname(__file__), "data", "dof_recovery_off_reference.npz")


def _render(image, s, **kw):
  """Renders with the signed blur radius s (px) given directly: disparity = s, focus 0, K = 1."""
  kw = dict(dict(max_radius=MAX_RADIUS, num_layers=LAYERS, method="fft"), **kw)
  return dof.render_disparity(image, s, focus_disparity=0.0, blur_scale_px=1.0, **kw)


def _linear(x):
  return np.asarray(dof.srgb_to_linear(jnp.asarray(x)), np.float64)


def _lights(values, radius):
  """Black image with 3x3 lights of the given sRGB values, > 2 radii apart; their centres."""
  image = np.zeros((H, W, 3), np.float32)
  centres = [(H // 2, int((i + 0.5) * W / len(values))) for i in range(len(values))]
  for (cy, cx), v in zip(centres, values):
    image[cy - 1: cy + 2, cx - 1: cx + 2] = v
  assert W / len(values) > 2 * radius + 4
  return image, centres


def _energy_around(lin, centre, radius):
  yy, xx = np.mgrid[:H, :W]
  return float(lin[np.hypot(yy - centre[0], xx - centre[1]) <= radius + 2].sum())


# ----------------------------------------------------------------------------- highlights

def test_clipped_light_becomes_disc_with_at_least_its_true_energy():
  true_radiance = 3.0   # An HDR lamp, 3x white, clipped to 1.0 in the 8-bit photo.
  radius = MAX_RADIUS
  image, (lamp, grey) = _lights([1.0, 0.5], radius)   # Clipped lamp; mid-grey patch (no boost).
  s = np.full((H, W), -radius, np.float32)
  off = _linear(_render(image, s))[..., 1]
  on = _linear(_render(image, s, highlight_gain=GAIN))[..., 1]
  true_energy = 9 * true_radiance
  assert _energy_around(off, lamp, radius) == pytest.approx(9.0, rel=0.01)  # A dim smudge ...
  recovered = _energy_around(on, lamp, radius)
  # ... and with recovery at least the true energy, within the stated bound (1 + gain) x clipped.
  assert true_energy <= recovered <= (1 + GAIN) * 9.0 * 1.01
  assert recovered == pytest.approx((1 + GAIN) * 9.0, rel=0.01)   # White gets the full gain.
  # Below the threshold nothing changes.
  assert _energy_around(on, grey, radius) == pytest.approx(_energy_around(off, grey, radius),
                                                           rel=1e-4)
  # It is a flat disc: the recovered light fills its disc evenly.
  yy, xx = np.mgrid[:H, :W]
  inner = on[np.hypot(yy - lamp[0], xx - lamp[1]) <= radius - 3]
  assert inner.min() > 0.85 * inner.max()


def test_white_surfaces_do_not_glow_but_a_small_clipped_lamp_still_does():
  """Issue 28: a near-white diffuse surface (247, unclipped) and a clipped white wall large
  against its blur keep their value when defocused; a small clipped lamp beside them on the same
  layer still becomes a bright disc."""
  radius = MAX_RADIUS
  image = np.full((H, W, 3), 0.3, np.float32)
  image[8:40, 4:36] = 247 / 255                       # A white desk, bright but not clipped.
  image[:, 44:70] = 1.0                               # A clipped white wall, 26 px wide.
  image[23:26, 84:87] = 1.0                           # A clipped 3x3 lamp.
  s = np.full((H, W), -radius, np.float32)
  off = np.asarray(_render(image, s))
  on = np.asarray(_render(image, s, highlight_gain=GAIN))
  # Surfaces: nothing brighter than without recovery (within a level), no clipped glow.
  np.testing.assert_allclose(on[:, :70], off[:, :70], atol=1.5 / 255)
  assert (on[8:40, 4:36].max(axis=-1) >= 250 / 255).mean() == 0.0
  # The lamp: with recovery its disc carries (1 + gain) x the clipped energy, as before.
  added = _energy_around(_linear(on)[..., 1] - _linear(off)[..., 1], (24, 85), radius)
  assert added >= 0.97 * GAIN * 9.0


def test_boost_share_rule_keeps_lights_and_drops_large_clipped_areas():
  level = np.zeros((H, W), np.float32)
  level[20:23, 10:13] = 1.0                           # A lamp: 9 px in a 25x25 window.
  level[:, 60:] = 1.0                                 # A clipped area 36 px wide.
  share = np.asarray(dof.clipped_share(jnp.asarray(level), jnp.full((H, W), 12.0), 12.0))
  assert share[21, 11] < dof.HIGHLIGHT_SHARE_LOW      # Small against its blur: full boost.
  assert share[24, 78] > dof.HIGHLIGHT_SHARE_HIGH     # Large: no boost.
  image = jnp.asarray(np.repeat(level[..., None], 3, -1))
  boost = np.asarray(dof.highlight_boost(image, gain=GAIN, coc_radius_px=jnp.full((H, W), 12.0),
                                         max_radius=12.0))
  assert boost[21, 11] == pytest.approx(1 + GAIN) and boost[24, 78] == 1.0
  # The share of a uniform level is that level, at every window size (box sums are exact).
  r = jnp.asarray(np.random.default_rng(0).uniform(0, 40, (H, W)).astype(np.float32))
  np.testing.assert_allclose(dof.clipped_share(jnp.full((H, W), 0.25), r, 40.0), 0.25, atol=1e-5)


def test_clipped_share_is_the_mean_over_the_window_clipped_to_the_image():
  rng = np.random.default_rng(1)
  level = (rng.random((20, 30)) * (rng.random((20, 30)) > 0.7)).astype(np.float32)
  for radius, window in ((4.0, 4), (40.0, 32)):     # On a scale of the ladder: that window alone.
    share = np.asarray(dof.clipped_share(jnp.asarray(level), jnp.full((20, 30), radius), 40.0))
    for y, x in ((0, 0), (3, 29), (10, 15), (19, 7)):   # Corners, edges and the middle.
      box = level[max(y - window, 0):y + window + 1, max(x - window, 0):x + window + 1]
      assert share[y, x] == pytest.approx(box.mean(), abs=1e-6)


def test_recovery_leaves_pixels_on_the_focal_plane_alone():
  # Flat patches in focus (|CoC| < 0.5 px, so up to 8% of each pixel sits on a 6-px layer):
  # near-white 247, clipped white, grey; checked >= 7 px inside each, where that blur sees one
  # colour. (That defocused clipped lights still become bright discs is checked above.)
  image = np.zeros((H, W, 3), np.float32)
  for i, v in enumerate((247 / 255, 1.0, 0.4)):
    image[:, 32 * i: 32 * i + 32] = v
  s = np.random.default_rng(3).uniform(-0.49, 0.49, (H, W)).astype(np.float32)
  on = np.asarray(_render(image, s, highlight_gain=GAIN))
  inside = np.zeros((H, W), bool)
  for i in range(3):
    inside[7:-7, 32 * i + 7: 32 * i + 25] = True
  np.testing.assert_allclose(on[inside], image[inside], atol=1 / 255)
  # The boost ramps smoothly from 0 at 0.5 px of blur to the full gain at 2 px.
  r = jnp.linspace(-3.0, 3.0, 61)
  boost = np.asarray(dof.highlight_boost(jnp.ones(r.shape + (3,)), gain=GAIN, coc_radius_px=r))
  assert np.all(boost[np.abs(r) <= 0.5] == 1.0) and np.all(boost[np.abs(r) >= 2.0] == 1 + GAIN)


def test_boost_curve_is_smooth_and_bounded():
  v = jnp.linspace(0.0, 1.0, 101)
  image = jnp.stack([v, 0.5 * v, 0.1 * v], axis=-1)   # The largest channel drives the boost.
  boost = np.asarray(dof.highlight_boost(image, gain=2.0, threshold=0.8))
  assert np.all(boost[v < 0.8] == 1.0) and boost[-1] == pytest.approx(3.0)
  assert np.all(np.diff(boost) >= 0) and np.all(boost >= 1.0) and np.all(boost <= 3.0)
  slope = jax.vmap(jax.grad(lambda x: dof.highlight_boost(
      jnp.stack([x, 0.0, 0.0]), gain=2.0, threshold=0.8)))(v)
  assert abs(float(slope[80])) < 1e-3 and abs(float(slope[-1])) < 1e-3   # C1 at both ends.


def _assert_recovery_off_matches_reference():
  ref = np.load(REFERENCE)
  for method in ("fft", "direct"):
    for kw in ({}, dict(highlight_gain=0.0, highlight_threshold=0.5), dict(aperture_blades=0)):
      out = dof.render_disparity(ref["image"], ref["disparity"], focus_disparity=0.6,
                                 blur_scale_px=12.0, max_radius=8.0, num_layers=5, method=method,
                                 **kw)
      np.testing.assert_array_equal(np.asarray(out), ref[method])


def test_recovery_off_is_bit_identical_to_the_renderer_without_it():
  """Against a render stored from the renderer without highlight recovery (regenerated when the
  renderer itself changes: last for sRGB decoding through exp and log). Bits depend on
  XLA's optimisation level, which the test session lowers (conftest.py), so this runs in a child
  with the default flags, as users run it."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  script = ("import sys; sys.path.insert(0, 'tests'); import dof_bokeh_test as t; "
            "t._assert_recovery_off_matches_reference()")
  result = subprocess.run([sys.executable, "-c", script], cwd=env["PYTHONPATH"], env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]


# Slow (11-22 s of compiling the renderer's gradient); dof_test checks the round-aperture
# gradient against finite differences in the fast suite.
@pytest.mark.slow
def test_gradients_through_recovery_match_finite_differences():
  rng = np.random.default_rng(7)
  image = rng.uniform(0.1, 0.5, (H, W, 3)).astype(np.float32)
  lights = rng.random((H, W)) < 0.05    # Highlights inside the boost ramp, red the largest
  image[lights] = np.stack([rng.uniform(0.98, 0.995, lights.sum()),  # channel by a margin (the
                            np.full(lights.sum(), 0.6), np.full(lights.sum(), 0.4)], -1)  # max
  image = jnp.asarray(image)            # over channels is then smooth under the perturbation).
  s = jnp.asarray(rng.uniform(-10.0, 10.0, (H, W)).astype(np.float32))
  weights = jnp.asarray(rng.standard_normal((H, W, 3)).astype(np.float32))
  f = lambda img, s, weights=weights: jnp.sum(_render(img, s, highlight_gain=GAIN) * weights)
  # Weights passed as an argument, not captured as a constant (XLA would fold it when compiling).
  g_img, g_s = jax.jit(jax.grad(f, argnums=(0, 1)))(image, s, weights)
  assert np.all(np.isfinite(g_img)) and np.abs(g_img).max() > 0
  # Small steps: the boosted lights saturate a few output pixels (a kink the steps must not span).
  for grad, x, eps, arg in ((g_img, image, 3e-4, 0), (g_s, s, 1e-2, 1)):
    direction = jnp.asarray(rng.standard_normal(x.shape).astype(np.float32))
    args = lambda sign: [image, s][:arg] + [x + sign * eps * direction] + [image, s][arg + 1:]
    fd = (float(f(*args(1))) - float(f(*args(-1)))) / (2 * eps)
    assert float(jnp.sum(grad * direction)) == pytest.approx(fd, rel=0.05, abs=1e-2)


def test_bad_highlight_settings_are_rejected():
  image = np.zeros((H, W, 3), np.float32)
  s = np.zeros((H, W), np.float32)
  with pytest.raises(ValueError, match="highlight_threshold must be in"):
    _render(image, s, highlight_gain=1.0, highlight_threshold=1.0)
  with pytest.raises(ValueError, match="highlight_gain must be a scalar >= 0"):
    _render(image, s, highlight_gain=-1.0)


# ----------------------------------------------------------------------------- apertures

@pytest.mark.parametrize("blades,rotation", [(5, 0.0), (6, 10.0), (9, -25.0)])
def test_polygon_kernel_has_its_corners_at_the_stated_rotation(blades, rotation):
  radius = 20.0
  kernel = dof.aperture_kernel(radius, aperture_blades=blades, aperture_rotation_deg=rotation)
  assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
  n = kernel.shape[0] // 2
  dy, dx = np.mgrid[-n:n + 1, -n:n + 1]
  inside = kernel >= 0.5 * kernel.max()
  angle = np.degrees(np.arctan2(-dy, dx))[inside]   # Counterclockwise as seen, 0 = right.
  dist = np.hypot(dy, dx)[inside]

  def reach(direction, half_width=4.0):
    """Farthest support pixel within +-half_width degrees of `direction`."""
    off = (angle - direction + 180.0) % 360.0 - 180.0
    return dist[np.abs(off) <= half_width].max()

  corners = 90.0 + rotation + 360.0 * np.arange(blades) / blades
  apothem = radius * math.cos(math.pi / blades)
  for c in corners:
    assert reach(c) >= radius - 1.5                       # Out to the circle at each corner ...
    assert reach(c + 180.0 / blades, 1.0) <= apothem + 1.0  # ... only to the apothem between.
  # The area is the polygon's (energy-normalised kernel of an anti-aliased N-gon).
  area = 0.5 * blades * radius ** 2 * math.sin(2 * math.pi / blades)
  assert (kernel / kernel.max()).sum() == pytest.approx(area, rel=0.03)


@pytest.mark.parametrize("method", render_plan.METHODS)
def test_polygonal_bokeh_keeps_the_energy_of_a_point_light(method):
  radius = MAX_RADIUS
  image = np.zeros((H, W, 3), np.float32)
  cy, cx = H // 2, W // 2
  image[cy, cx] = 1.0
  s = np.full((H, W), -radius, np.float32)
  out = _linear(_render(image, s, method=method, aperture_blades=6,
                        aperture_rotation_deg=15.0))[..., 1]
  assert _energy_around(out, (cy, cx), radius) == pytest.approx(1.0, rel=0.005)
  # The render of a point is the kernel: the same hexagon, same rotation (rims may differ by a
  # pixel at reduced resolution).
  kernel = dof.aperture_kernel(radius, aperture_blades=6, aperture_rotation_deg=15.0)
  n = kernel.shape[0] // 2
  patch = out[cy - n: cy + n + 1, cx - n: cx + n + 1]
  a, b = patch > 0.5 * patch.max(), kernel > 0.5 * kernel.max()
  assert (a & b).sum() / (a | b).sum() >= 0.97


# Slow (11-22 s of compiling the renderer's gradient); dof_test checks the round-aperture
# gradient against finite differences in the fast suite.
@pytest.mark.slow
def test_gradients_through_polygon_kernels_match_finite_differences():
  rng = np.random.default_rng(8)
  image = jnp.asarray(rng.random((H, W, 3)).astype(np.float32))
  disparity = jnp.asarray(rng.uniform(0.2, 1.0, (H, W)).astype(np.float32))
  weights = jnp.asarray(rng.standard_normal((H, W, 3)).astype(np.float32))

  def f(disp, k, image=image, weights=weights):
    out = dof.render_disparity(image, disp, focus_disparity=0.6, blur_scale_px=k,
                               max_radius=MAX_RADIUS, num_layers=LAYERS, aperture_blades=6,
                               aperture_rotation_deg=20.0)
    return jnp.sum(out * weights)

  k0 = 25.0   # Radii in [-10, 10] px: every layer takes part.
  # Arrays passed as arguments, not captured as constants (XLA would fold them when compiling).
  grad = jax.jit(jax.grad(f, argnums=(0, 1)))
  g_d, g_k = grad(disparity, k0, image, weights)
  assert np.all(np.isfinite(g_d)) and np.abs(g_d).max() > 0
  assert_slope_matches_differences(
      lambda t: float(f(disparity, k0 + t)),
      lambda t: float(grad(disparity, k0 + t, image, weights)[1]), eps=1e-2)
  direction = jnp.asarray(rng.standard_normal((H, W)).astype(np.float32))
  assert_slope_matches_differences(
      lambda t: float(f(disparity + t * direction, k0)),
      lambda t: float(jnp.sum(grad(disparity + t * direction, k0, image, weights)[0]
                              * direction)), eps=1e-2)


def test_bad_aperture_is_rejected():
  with pytest.raises(ValueError, match="aperture_blades must be 0"):
    _render(np.zeros((H, W, 3), np.float32), np.zeros((H, W), np.float32), aperture_blades=2)


# ----------------------------------------------------------------------------- max radius

def test_default_max_radius_follows_the_photo():
  depth = np.full((H, W), 4.0, np.float32)
  depth[:, : W // 2] = 1.0                              # Subject at 1 m, wall at 4 m.
  lens = dict(focus_distance_m=1.0, f_number=2.0, focal_length_mm=50.0)
  largest = dof.largest_coc_radius_px(depth, **lens)
  expected = dof.coc_radius_px(4.0, image_width_px=W, **lens)
  assert isinstance(largest, float) and largest == pytest.approx(float(expected), rel=1e-6)
  depth_invalid = depth.copy()
  depth_invalid[0, 0] = 0.0                             # Invalid pixels are ignored.
  assert dof.largest_coc_radius_px(depth_invalid, **lens) == pytest.approx(largest, rel=1e-6)
  image = np.random.default_rng(9).random((H, W, 3)).astype(np.float32)
  kw = dict(focus_distance=1.0, f_number=2.0, focal_length_mm=50.0, num_layers=LAYERS)
  out = dof.render(image, depth, **kw)
  np.testing.assert_array_equal(np.asarray(out),
                                np.asarray(dof.render(image, depth, max_radius=largest, **kw)))
  with pytest.raises(ValueError, match="pass an explicit max_radius"):
    jax.jit(lambda d: dof.render(image, d, **kw))(depth)
  # The disparity form follows the image too when asked (max_radius=None).
  k = float(dof.blur_scale_px(image_width_px=W, **lens))
  disparity = (1.0 / depth).astype(np.float32)
  own = float(np.abs(k * (disparity.astype(np.float64) - 1.0)).max())
  kw = dict(focus_disparity=1.0, blur_scale_px=k, num_layers=LAYERS)
  np.testing.assert_array_equal(
      np.asarray(dof.render_disparity(image, disparity, max_radius=None, **kw)),
      np.asarray(dof.render_disparity(image, disparity, max_radius=own, **kw)))


# ----------------------------------------------------------------------------- hidden background

def _outline_step(x, top, bottom, left, right):
  """Mean |inside - outside| across the four sides of a rectangle's outline (corners left out)."""
  cols, rows = slice(left + 4, right - 4), slice(top + 4, bottom - 4)
  return float(np.mean(np.concatenate([
      np.abs(x[top, cols] - x[top - 1, cols]).ravel(),
      np.abs(x[bottom - 1, cols] - x[bottom, cols]).ravel(),
      np.abs(x[rows, left] - x[rows, left - 1]).ravel(),
      np.abs(x[rows, right - 1] - x[rows, right]).ravel()])))


@pytest.mark.parametrize("method", ["fft", "pyramid"])
def test_background_continues_behind_a_blurred_foreground_without_a_ghost_outline(method):
  # A red card (near, blurred by MAX_RADIUS) over a sharp checkerboard (on the focal plane).
  top, bottom, left, right = 14, 34, 30, 66
  yy, xx = np.mgrid[:H, :W]
  checks = ((yy // 8 + xx // 8) % 2).astype(bool)[..., None]
  background = np.where(checks, [0.9, 0.85, 0.2], [0.1, 0.3, 0.8]).astype(np.float32)
  card = (yy >= top) & (yy < bottom) & (xx >= left) & (xx < right)
  image = np.where(card[..., None], np.float32([0.9, 0.05, 0.05]), background)
  s = np.where(card, MAX_RADIUS, 0.0).astype(np.float32)
  out = np.asarray(_render(image, s, method=method), np.float64)
  # Reference with the background fully known: the checkerboard under the card's blurred
  # coverage A, plus the card's blurred colour (linear light).
  kernel = dof.aperture_kernel(MAX_RADIUS)
  n = kernel.shape[0] // 2
  padded = np.pad(card.astype(np.float64), n)
  cover = sum(kernel[i, j] * padded[i: i + H, j: j + W]
              for i in range(2 * n + 1) for j in range(2 * n + 1))[..., None]
  ref = np.asarray(dof.linear_to_srgb(jnp.asarray(
      _linear(background) * (1 - cover) + cover * _linear(image[top, left]), jnp.float32)))
  # No outline: the step across the card's original outline is close to the true one (a flat
  # fill of the hidden background's mean colour left a step of 0.2, 13x the true 0.015).
  step, true_step = _outline_step(out, top, bottom, left, right), _outline_step(
      ref, top, bottom, left, right)
  assert step <= 3.0 * true_step, (step, true_step)
  # Continuous with the visible background: just inside the outline, the render is close to
  # the fully-known reference.
  ring = card & ~((yy >= top + 1) & (yy < bottom - 1) & (xx >= left + 1) & (xx < right - 1))
  assert np.abs(out - ref)[ring].mean() <= 0.06


# ----------------------------------------------------------------------------- crisp large discs

def _rise_width(profile):
  """10%-90% rise (px) of the left rim of a flat-topped, centred profile (linear light)."""
  c = len(profile) // 2
  p = profile[: c + 1] / np.median(profile[c - 5: c + 6])

  def cross(level):
    i = int(np.argmax(p >= level))
    return i - 1 + (level - p[i - 1]) / (p[i] - p[i - 1])

  return cross(0.9) - cross(0.1)


@pytest.mark.parametrize("radius,factor,max_rise", [(32.0, 2, 3.0), (48.0, 2, 4.0)])
def test_large_discs_keep_crisp_rims_with_the_default_method(radius, factor, max_rise):
  # A 7-layer plan with a layer at the disc's radius (its layers at t = 2/3); the image is wide
  # enough that the disc's coverage is 1 everywhere on it (nearer to the border, normalising by
  # coverage rightly brightens the blur).
  size, plan = 192, dict(max_radius=radius / render_plan.layer_radii(7, 1.0)[-2], num_layers=7)
  assert render_plan.layer_radii(**plan)[-2] == pytest.approx(radius)
  assert dof._layer_factor(radius, render_plan.DEFAULT_METHOD) == factor
  image = np.zeros((size, size, 3), np.float32)
  c = size // 2
  image[c, c] = 1.0
  s = np.full((size, size), -radius, np.float32)
  out = _linear(dof.render_disparity(image, s, focus_disparity=0.0, blur_scale_px=1.0,
                                     **plan))[..., 1]
  assert _rise_width(out[c]) <= max_rise
  yy, xx = np.mgrid[:size, :size]
  assert out[np.hypot(yy - c, xx - c) <= radius + 2].sum() == pytest.approx(1.0, rel=0.005)
