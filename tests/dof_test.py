"""Physics and differentiability tests of the depth-layered DoF renderer (tiny images).

Compilation dominates the cost of these tests, so every render uses one image size (H x W, or a
batch of 2) and one layer plan (LAYERS layers up to MAX_RADIUS px; at these radii the 'pyramid'
method blurs every layer at full resolution: its reduced resolutions are tested on larger discs in
dof_bokeh_test.py): `dof.render_disparity` compiles once per (shapes, layer
plan, method) and every test below shares those compilations (render_test.py uses them too).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dofjax import dof
from dofjax import render_plan

H, W = 64, 96
LAYERS, MAX_RADIUS = 5, 16.0      # Layer radii -16, -4.76, 0, 4.76, 16 px.
STEP = MAX_RADIUS / (LAYERS // 2)  # The mean layer step, 8 px (the fill's edge threshold).
NEAR_LAYER = float(render_plan.layer_radii(LAYERS, MAX_RADIUS)[LAYERS // 2 + 1])  # 4.76 px.


def _render(image, s, *, method="fft"):
  """Renders with signed blur radius s (px) given directly: disparity = s, focus 0, K = 1."""
  return np.asarray(dof.render_disparity(image, s, focus_disparity=0.0, blur_scale_px=1.0,
                                         max_radius=MAX_RADIUS, num_layers=LAYERS,
                                         method=method))


def _to_linear(x):
  return np.asarray(dof.srgb_to_linear(jnp.asarray(x)))


def test_blur_scale_matches_thin_lens_example():
  k = dof.blur_scale_px(focus_distance_m=2.0, f_number=1.8, focal_length_mm=50.0,
                        sensor_width_mm=36.0, image_width_px=1024)
  assert k == pytest.approx(20.26, abs=0.05)  # docs/design.md: "about 20 px per 1/m".
  f, n, zf, z = 0.05, 1.8, 2.0, 5.0
  diameter_px = f * f * abs(z - zf) / (n * z * (zf - f)) * 1024 / 0.036
  r = dof.coc_radius_px(z, focus_distance_m=zf, f_number=n, focal_length_mm=50.0,
                        image_width_px=1024)
  assert r == pytest.approx(diameter_px / 2, rel=1e-6)


def test_layer_plan():
  np.testing.assert_allclose(render_plan.layer_radii(LAYERS, MAX_RADIUS),
                             [-16, -16 / 2 ** 1.75, 0, 16 / 2 ** 1.75, 16])
  # The default plan: one layer on the focal plane, the ends at +-max_radius, antisymmetric, and
  # steps that grow away from focus (the first one under 1 px at 32 px, the last one ~6.7 px).
  radii = render_plan.layer_radii()
  assert len(radii) == render_plan.DEFAULT_NUM_LAYERS and radii[len(radii) // 2] == 0
  np.testing.assert_allclose(radii[[0, -1]],
                             [-render_plan.DEFAULT_MAX_RADIUS, render_plan.DEFAULT_MAX_RADIUS])
  np.testing.assert_allclose(radii, -radii[::-1])
  steps = np.diff(radii[len(radii) // 2:])
  assert np.all(np.diff(steps) > 0) and steps[0] < 1.0 and 6.0 < steps[-1] < 7.0
  assert [dof._layer_factor(r, "pyramid") for r in (0, 15, 16, 63, 64, 127, 128, 400)] == [
      1, 1, 2, 2, 4, 4, 8, 8]
  assert [dof._layer_factor(r, m) for r in (8, 16) for m in ("fft", "direct")] == [1] * 4
  assert dof.preview_settings(W) == (W / 8, round(W / 16))
  with pytest.raises(ValueError, match="odd integer"):
    render_plan.layer_radii(4, 8.0)


@pytest.mark.parametrize("method", render_plan.METHODS)
def test_focal_plane_returns_input(method):
  image = np.random.default_rng(0).random((H, W, 3), np.float32)
  out = _render(image, np.zeros((H, W), np.float32), method=method)
  np.testing.assert_allclose(out, image, atol=1e-5)


@pytest.mark.parametrize("method", render_plan.METHODS)
def test_constant_image_stays_constant(method):
  rng = np.random.default_rng(1)
  image = np.full((H, W, 3), [0.2, 0.5, 0.9], np.float32)
  s = rng.uniform(-20, 20, (H, W)).astype(np.float32)  # Beyond MAX_RADIUS too (clipped).
  out = _render(image, s, method=method)
  np.testing.assert_allclose(out, image, atol=2e-4)


@pytest.mark.parametrize("radius,method,factor", [(NEAR_LAYER, "fft", 1), (16.0, "pyramid", 2)])
def test_point_light_becomes_flat_disc_with_energy_kept(radius, method, factor):
  cy, cx = H // 2, W // 2
  lin = np.zeros((H, W, 3), np.float32)
  lin[cy, cx] = 1.0
  image = np.asarray(dof.linear_to_srgb(jnp.asarray(lin)))
  s = np.full((H, W), -radius, np.float32)  # Behind the focal plane, exactly on a layer.
  assert dof._layer_factor(radius, method) == factor
  out = _to_linear(_render(image, s, method=method))[..., 1]
  assert out.sum() == pytest.approx(1.0, rel=0.02)
  yy, xx = np.mgrid[:H, :W]
  dist = np.hypot(yy - cy, xx - cx)
  inner = out[dist <= radius - 1.5 * factor]
  expected = 1.0 / (np.pi * radius ** 2)
  np.testing.assert_allclose(inner, expected, rtol=0.08)  # Flat top at the disc's height.
  assert out[dist >= radius + 1.0 + 2 * factor].max() < 0.02 * expected
  half = dist[out > 0.5 * expected].max()  # Where the disc falls to half height: its radius.
  assert abs(half - radius) <= 0.75 * factor + 0.25


@pytest.mark.parametrize("radius", [0.84, 2.83, 5.76, dof._SHIFT_RADIUS])
def test_shifted_sum_blur_is_the_fft_convolution(radius):
  """'pyramid' blurs radii up to _SHIFT_RADIUS px by summing shifted copies: the same
  zero-padded convolution as the FFT, for a disc and for a pentagon (not point-symmetric) whose
  rotation is traced."""
  x = jnp.asarray(np.random.default_rng(0).random((4, 40, 52), np.float32))
  disc = dof._blur_shifts(x, radius)
  np.testing.assert_allclose(disc, dof._blur_fft(x, radius), atol=2e-6)
  np.testing.assert_allclose(dof._blur(x, radius, "pyramid"), disc, atol=0)
  pentagon = jax.jit(lambda x, rot: dof._blur_shifts(x, radius, (5, rot), ramp=0.5))
  np.testing.assert_allclose(pentagon(x, 0.3), dof._blur_fft(x, radius, (5, 0.3), ramp=0.5),
                             atol=2e-6)
  point = jnp.zeros((1, 40, 52)).at[0, 20, 26].set(1.0)      # Energy kept: kernel sums to 1.
  assert float(dof._blur_shifts(point, radius).sum()) == pytest.approx(1.0, abs=1e-5)


def _edge_spread(out, sharp):
  return float(np.abs(out - sharp).sum())


def test_blur_grows_monotonically_with_defocus_and_small_defocus_stays_small():
  image = np.zeros((H, W, 3), np.float32)
  image[:, W // 2:] = 1.0
  image[H // 2:, :, 1] = 0.5
  defocus = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]  # In layer steps.
  spreads = [_edge_spread(_render(image, np.full((H, W), -t * STEP, np.float32)), image)
             for t in defocus]
  assert all(b > a for a, b in zip(spreads, spreads[1:])), spreads
  one_step = spreads[defocus.index(1.0)]
  assert spreads[1] <= 0.15 * one_step  # 0.1 of a step takes at most ~0.1 of the next layer.


def test_sharp_foreground_over_blurred_background_keeps_edge_and_leaks_no_colour():
  image = np.zeros((H, W, 3), np.float32)
  image[:, : W // 2, 0] = 1.0                        # Red subject on the left ...
  image[:, W // 2:, 2] = 0.8                         # ... in front of a blue wall.
  image[::6, W // 2:, 1] = 1.0                       # Texture on the wall so its blur shows.
  s = np.where(np.arange(W) < W // 2, 0.0, -STEP).astype(np.float32)
  out = _render(image, np.broadcast_to(s, (H, W)).copy())
  np.testing.assert_allclose(out[:, : W // 2], image[:, : W // 2], atol=1e-4)  # Edge kept.
  assert out[:, W // 2:, 0].max() < 1e-3            # No red on the wall.
  assert np.abs(out[:, W // 2 + 8:, 1] - out[:, W // 2 + 8:, 1].mean()).max() < 0.2  # Blurred.


def test_blurred_foreground_over_sharp_background_fades_without_fringe():
  image = np.zeros((H, W, 3), np.float32)
  image[:, : W // 2] = 0.9                           # Bright near subject on the left,
  image[:, W // 2:] = 0.3                            # in front of an in-focus grey wall.
  radius = 2 * STEP  # A jump of two layer steps (with one step, no fill is needed).
  s = np.where(np.arange(W) < W // 2, radius, 0.0).astype(np.float32)
  out = _render(image, np.broadcast_to(s, (H, W)).copy())
  row = _to_linear(out[H // 2, :, 1])
  lo, hi = float(_to_linear(0.3)), float(_to_linear(0.9))
  assert row.min() >= lo - 1e-3 and row.max() <= hi + 1e-3      # No dark (or bright) fringe.
  assert np.all(np.diff(row) <= 1e-4)                            # Fades monotonically.
  edge = W // 2
  # The fade spans both sides of the silhouette (the wall shows through the blurred edge) and
  # has no step: neighbouring pixels differ by less than a fifth of the contrast.
  assert row[edge - 3] < hi - 0.1 * (hi - lo) and row[edge + 2] > lo + 0.1 * (hi - lo)
  assert np.abs(np.diff(row)).max() < 0.2 * (hi - lo)
  np.testing.assert_allclose(row[: edge - int(radius) - 2], hi, atol=2e-3)
  np.testing.assert_allclose(row[edge + int(radius) + 2:], lo, atol=2e-3)


def test_jit_and_vmap_match_single_renders():
  rng = np.random.default_rng(2)
  images = rng.random((2, H, W, 3), np.float32)
  disparity = rng.uniform(0.2, 1.0, (2, H, W)).astype(np.float32)
  kw = dict(max_radius=MAX_RADIUS, num_layers=LAYERS)
  fn = jax.jit(lambda i, d, f, k: dof.render_disparity(i, d, focus_disparity=f,
                                                       blur_scale_px=k, **kw))
  settings = [(0.5, 30.0), (0.7, 12.0)]
  batched = np.asarray(fn(images, disparity, *map(jnp.array, zip(*settings))))
  for n, (f, k) in enumerate(settings):
    single = dof.render_disparity(images[n], disparity[n], focus_disparity=f, blur_scale_px=k,
                                  **kw)
    np.testing.assert_allclose(batched[n], np.asarray(single), atol=1e-5)


def test_render_with_lens_settings_matches_disparity_form():
  rng = np.random.default_rng(3)
  image = rng.random((H, W, 3), np.float32)
  depth = rng.uniform(1.0, 5.0, (H, W)).astype(np.float32)
  kw = dict(max_radius=MAX_RADIUS, num_layers=LAYERS)
  out = dof.render(image, depth, focus_distance=2.0, f_number=0.1, focal_length_mm=50.0, **kw)
  k = dof.blur_scale_px(focus_distance_m=2.0, f_number=0.1, focal_length_mm=50.0,
                        image_width_px=W)
  ref = dof.render_disparity(image, 1.0 / depth, focus_disparity=0.5, blur_scale_px=k, **kw)
  np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-5)
  assert np.abs(np.asarray(out) - image).max() > 0.1  # K ~ 30 px*m: visibly blurred.


def assert_slope_matches_differences(value, slope, eps, *, points=16, rel=0.05, abs_tol=1e-2):
  """Checks an analytic derivative along a line against a central difference: value(t) is the
  loss at offset t along the line, slope(t) its analytic derivative (both Python floats). The
  difference (value(eps) - value(-eps)) / (2 eps) must equal the mean slope over [-eps, eps]
  (midpoint rule, `points` points): exact for any differentiable loss, so the layer tents'
  kinks, which a plain comparison with slope(0) would have to avoid by a tiny eps that float32
  cannot resolve, do not matter."""
  fd = (value(eps) - value(-eps)) / (2 * eps)
  ts = (np.arange(points) + 0.5) / points * 2 * eps - eps
  mean_slope = float(np.mean([slope(t) for t in ts]))
  assert mean_slope == pytest.approx(fd, rel=rel, abs=abs_tol)


def test_gradients_are_finite_and_match_finite_differences():
  rng = np.random.default_rng(4)
  image = jnp.asarray(rng.random((H, W, 3), np.float32))
  disparity = jnp.asarray(rng.uniform(0.2, 1.0, (H, W)).astype(np.float32))
  weights = jnp.asarray(rng.standard_normal((H, W, 3)).astype(np.float32))

  def render(disp, k, image=image):
    return dof.render_disparity(image, disp, focus_disparity=0.6, blur_scale_px=k,
                                max_radius=MAX_RADIUS, num_layers=LAYERS)

  def loss(disp, k, image, weights):
    return jnp.sum(render(disp, k, image) * weights)

  k0 = 30.0  # Signed radii in [-12, 12] px: every layer, at every resolution, takes part.
  # Arrays are passed as arguments, not captured as constants, which XLA would fold at compile
  # time (seconds).
  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  g_disp, g_k = grad(disparity, k0, image, weights)
  assert np.all(np.isfinite(g_disp)) and np.isfinite(g_k)
  assert np.abs(g_disp).max() > 0 and abs(float(g_k)) > 0
  # Finite differences reuse the forward render's compilation (shared with the other tests).
  f = lambda disp, k: float(jnp.sum(render(disp, k) * weights))
  assert_slope_matches_differences(
      lambda t: f(disparity, k0 + t),
      lambda t: float(grad(disparity, k0 + t, image, weights)[1]), eps=1e-2)
  direction = jnp.asarray(rng.standard_normal((H, W)).astype(np.float32))
  assert_slope_matches_differences(
      lambda t: f(disparity + t * direction, k0),
      lambda t: float(jnp.sum(grad(disparity + t * direction, k0, image, weights)[0]
                              * direction)), eps=1e-2)


def test_bokeh_loss_and_preview():
  rng = np.random.default_rng(5)
  image = jnp.asarray(rng.random((2, H, W, 3), np.float32))
  true = jnp.asarray(rng.uniform(1.0, 6.0, (2, H, W)).astype(np.float32))
  true = true.at[0, :4].set(0.0)  # Invalid pixels.
  pred = true.at[:, :, : W // 2].set(3.0).at[0, :4].set(1.0)
  kw = dict(max_radius=MAX_RADIUS, num_layers=LAYERS)
  # Image and true depth are arguments, not captured constants: XLA would constant-fold the
  # median (a sort) of the true depth at compile time (~6 s).
  value_and_grad = jax.jit(jax.value_and_grad(
      lambda p, i, t: dof.bokeh_loss(i, p, t, **kw)))
  assert float(value_and_grad(jnp.where(true > 0, true, 2.0), image, true)[0]) < 1e-6
  value, grad = value_and_grad(pred, image, true)
  assert float(value) > 1e-3 and np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
  out = dof.render_for_preview(image[0], true[0], **kw)
  assert out.shape == (H, W, 3) and np.all(np.isfinite(out))
  # Invalid pixels (depth 0) are rendered at the focal plane: sharp where nothing is near.
  far = np.asarray(dof.render_for_preview(image[0], jnp.zeros((H, W)), **kw))
  np.testing.assert_allclose(far, np.asarray(image[0]), atol=1e-5)


def test_a_stored_program_renders_the_same_without_tracing_and_a_corrupt_one_is_rebuilt(tmp_path):
  rng = np.random.default_rng(7)
  image = rng.random((H, W, 3)).astype(np.float32)
  s = np.where(np.arange(W) < W // 2, 0.0, 12.0)[None].repeat(H, 0).astype(np.float32)
  kw = dict(focus_disparity=0.0, blur_scale_px=1.0, max_radius=MAX_RADIUS, num_layers=LAYERS,
            method="fft", aperture_rotation_deg=10.0)
  direct = np.asarray(dof.render_disparity(image, s, **kw))
  folder = str(tmp_path / "programs")
  np.testing.assert_allclose(np.asarray(dof.render_disparity(image, s, **kw, programs=folder)),
                             direct, atol=1e-6)   # Compiled and stored ...
  [stored] = os.listdir(folder)
  dof._STORED_RENDERS.clear()                      # ... then read back, as a later process does.
  traces = dof.render_trace_count()
  again = np.asarray(dof.render_disparity(image, s, **dict(kw, aperture_rotation_deg=30.0),
                                          programs=folder))
  assert dof.render_trace_count() == traces
  np.testing.assert_allclose(again, np.asarray(dof.render_disparity(
      image, s, **dict(kw, aperture_rotation_deg=30.0))), atol=1e-6)
  path = os.path.join(folder, stored)
  with open(path, "r+b") as f:                     # A damaged file is a miss, not an error ...
    f.seek(os.path.getsize(path) // 2)
    f.write(b"\0garbage\0")
  with open(path, "rb") as f:
    damaged = f.read()
  dof._STORED_RENDERS.clear()
  np.testing.assert_allclose(np.asarray(dof.render_disparity(image, s, **kw, programs=folder)),
                             direct, atol=1e-6)
  with open(path, "rb") as f:                      # ... and the program is stored again.
    assert f.read() != damaged and os.listdir(folder) == [stored]
  dof._STORED_RENDERS.clear()
  dof.render_disparity(image, s, **kw, programs=folder)
  assert dof.render_trace_count() == traces
