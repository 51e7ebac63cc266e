"""Tests for dofjax.metrics: hand-checkable values, a float64 numpy reference, invariances, jit."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from dofjax import metrics
from dofjax import steps as steps_lib

MIN_D, MAX_D = 1e-3, 10.0


# ------------------------------------------------------------------------------------------------
# float64 numpy reference of the Eigen / BTS protocol (boolean indexing, one image at a time).


def _ref_align(pred, gt, align):
  if align is None:
    return pred
  if align == "median":
    return pred * np.median(gt) / np.median(pred)
  if align == "scale_shift":
    a = np.stack([pred, np.ones_like(pred)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, gt, rcond=None)
    return s * pred + t
  if align == "scale_shift_disparity":
    a = np.stack([1.0 / pred, np.ones_like(pred)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, 1.0 / gt, rcond=None)
    return 1.0 / np.maximum(s / pred + t, 1.0 / MAX_D)
  raise ValueError(align)


def _ref_image(pred, gt, align=None):
  pred = np.asarray(pred, np.float64)
  gt = np.asarray(gt, np.float64)
  valid = (gt > MIN_D) & (gt < MAX_D)
  if not valid.any():
    return None
  p, g = pred[valid], gt[valid]
  p = np.clip(_ref_align(np.maximum(p, MIN_D) if align == "scale_shift_disparity" else p, g,
                         align), MIN_D, MAX_D)
  ratio = np.maximum(p / g, g / p)
  d = np.log(p) - np.log(g)
  return {
      "abs_rel": np.mean(np.abs(g - p) / g),
      "sq_rel": np.mean((g - p) ** 2 / g),
      "rmse": np.sqrt(np.mean((g - p) ** 2)),
      "rmse_log": np.sqrt(np.mean(d**2)),
      "log10": np.mean(np.abs(np.log10(p) - np.log10(g))),
      "silog": 100.0 * np.sqrt(max(np.mean(d**2) - np.mean(d) ** 2, 0.0)),
      "d1": np.mean(ratio < 1.25),
      "d2": np.mean(ratio < 1.25**2),
      "d3": np.mean(ratio < 1.25**3),
  }


def _ref_mean(pred, gt, align=None):
  per = [r for r in (_ref_image(p, g, align) for p, g in zip(pred, gt)) if r is not None]
  return {k: np.mean([r[k] for r in per]) for k in metrics.DEPTH_KEYS}


def _random_batch(seed, n=3, h=20, w=24):
  """Realistic-ish depth: gt in (0.3, 12) m with invalid zeros, noisy prediction."""
  rng = np.random.default_rng(seed)
  gt = rng.uniform(0.3, 12.0, (n, h, w))
  gt[rng.uniform(size=gt.shape) < 0.1] = 0.0
  pred = gt * np.exp(rng.normal(0.0, 0.3, gt.shape)) + rng.uniform(0.0, 0.5, gt.shape)
  pred[0, 0, 0] = 15.0  # Out of range: must be clipped.
  return pred.astype(np.float32), gt.astype(np.float32)


def _to_float(d):
  return {k: float(v) for k, v in d.items()}


# ------------------------------------------------------------------------------------------------
# Depth metrics.


def test_perfect_prediction():
  gt = np.random.default_rng(0).uniform(0.5, 9.0, (2, 8, 8)).astype(np.float32)
  m = _to_float(metrics.depth_metrics(gt, gt))
  for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog"):
    assert m[k] == pytest.approx(0.0, abs=1e-6), k
  assert m["d1"] == m["d2"] == m["d3"] == 1.0


def test_double_prediction_hand_values():
  gt = np.full((1, 4, 4), 2.0, np.float32)
  m = _to_float(metrics.depth_metrics(2.0 * gt, gt))
  assert m["abs_rel"] == pytest.approx(1.0)
  assert m["sq_rel"] == pytest.approx(2.0)      # (4 - 2)^2 / 2.
  assert m["rmse"] == pytest.approx(2.0)
  assert m["rmse_log"] == pytest.approx(math.log(2.0), rel=1e-6)
  assert m["log10"] == pytest.approx(math.log10(2.0), rel=1e-6)
  assert m["silog"] == pytest.approx(0.0, abs=1e-3)  # A pure scale error.
  assert m["d1"] == m["d2"] == m["d3"] == 0.0  # ratio 2 > 1.25^3 = 1.953.


def test_d3_threshold_and_clipping_hand_values():
  # ratio 2 is above 1.25^3 = 1.953, ratio 1.5 is between 1.25 and 1.25^2.
  gt = np.array([[[2.0, 2.0]]], np.float32)
  pred = np.array([[[3.0, 4.0]]], np.float32)
  m = _to_float(metrics.depth_metrics(pred, gt))
  assert (m["d1"], m["d2"], m["d3"]) == (0.0, 0.5, 0.5)
  # Prediction above max_depth is clipped to 10 m before the errors.
  m = _to_float(metrics.depth_metrics(np.array([[[50.0]]]), np.array([[[5.0]]])))
  assert m["abs_rel"] == pytest.approx(1.0)


def test_invalid_pixels_and_empty_images_are_ignored():
  gt = np.array([[[2.0, 0.0], [20.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
  pred = np.array([[[2.0, 7.0], [3.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]], np.float32)
  per = metrics.depth_metrics_per_image(pred, gt)
  np.testing.assert_array_equal(np.asarray(per["valid"]), [1.0, 0.0])
  np.testing.assert_array_equal(np.asarray(per["num_pixels"]), [2.0, 0.0])
  for k in metrics.DEPTH_KEYS:
    assert np.all(np.isfinite(np.asarray(per[k]))), k
  m = _to_float(metrics.depth_metrics(pred, gt))
  assert m["abs_rel"] == 0.0 and m["d1"] == 1.0 and m["valid"] == 1.0


@pytest.mark.parametrize("align", [None, "median", "scale_shift", "scale_shift_disparity"])
def test_matches_float64_reference(align):
  pred, gt = _random_batch(seed=1)
  got = _to_float(metrics.depth_metrics(pred, gt, align=align))
  want = _ref_mean(pred, gt, align)
  for k in metrics.DEPTH_KEYS:
    assert got[k] == pytest.approx(want[k], rel=2e-4, abs=2e-5), (k, got[k], want[k])


def test_channel_axis_and_mean_helpers():
  pred, gt = _random_batch(seed=2)
  a = _to_float(metrics.depth_metrics(pred[..., None], gt[..., None]))
  b = _to_float(metrics.depth_metrics(pred, gt))
  assert a == b
  # Accumulating two half batches gives the same mean as the whole batch.
  per = metrics.depth_metrics_per_image(pred, gt)
  halves = [{k: v[i:i + 2] for k, v in per.items()} for i in (0, 2)]
  sums = [metrics.sum_per_image(h) for h in halves]
  total = metrics.finalize_sums({k: sums[0][k] + sums[1][k] for k in sums[0]})
  for k in metrics.DEPTH_KEYS:
    assert float(total[k]) == pytest.approx(b[k], rel=1e-5)
  # example_mask weights drop padding examples.
  w = _to_float(metrics.mean_over_images(per, weights=np.array([1.0, 1.0, 0.0])))
  want = _ref_mean(pred[:2], gt[:2])
  assert w["rmse"] == pytest.approx(want["rmse"], rel=2e-4)


def test_silog_is_scale_invariant():
  pred, gt = _random_batch(seed=3)
  s1 = float(metrics.depth_metrics(pred * 0.5, gt, max_depth=1e9)["silog"])
  s2 = float(metrics.depth_metrics(pred * 0.25, gt, max_depth=1e9)["silog"])
  assert s1 == pytest.approx(s2, rel=1e-4)


@pytest.mark.parametrize("align", ["median", "scale_shift", "scale_shift_disparity"])
def test_alignment_makes_a_scaled_prediction_perfect(align):
  gt = np.random.default_rng(4).uniform(0.5, 8.0, (2, 9, 10)).astype(np.float32)
  m = _to_float(metrics.depth_metrics(gt * 0.37, gt, align=align))
  assert m["abs_rel"] == pytest.approx(0.0, abs=1e-5)
  assert m["d1"] == 1.0


def test_masked_median_matches_numpy():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(3, 5, 7)).astype(np.float32)
  mask = (rng.uniform(size=x.shape) < 0.6).astype(np.float32)
  mask[2] = 0.0
  got = np.asarray(metrics.masked_median(x, mask))
  np.testing.assert_allclose(got[:2], [np.median(x[i][mask[i] > 0]) for i in range(2)],
                             rtol=1e-6)
  assert got[2] == 0.0


def test_jit():
  pred, gt = _random_batch(seed=6)
  f = jax.jit(lambda p, g: metrics.depth_metrics(p, g, align="median"))
  got = _to_float(f(pred, gt))
  want = _to_float(metrics.depth_metrics(pred, gt, align="median"))
  for k in metrics.DEPTH_KEYS:
    assert got[k] == pytest.approx(want[k], rel=1e-5)


# ------------------------------------------------------------------------------------------------
# Boundary metrics.


def test_truncated_distance_transform_is_exact_below_the_truncation():
  rng = np.random.default_rng(7)
  edges = (rng.uniform(size=(2, 30, 40)) < 0.01).astype(np.float32)
  edges[1] = 0.0
  edges[1, 3, 5] = 1.0
  got = np.asarray(metrics.truncated_distance_transform(edges, max_dist=6.5))
  for i in range(2):
    want = np.minimum(ndimage.distance_transform_edt(edges[i] == 0), 6.5)
    np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-6)
  empty = np.asarray(metrics.truncated_distance_transform(np.zeros((1, 5, 5)), max_dist=3.0))
  np.testing.assert_array_equal(empty, 3.0)


def _step(shape, col, near=2.0, far=5.0):
  d = np.full(shape, far, np.float32)
  d[..., col:] = near
  return d


def test_depth_edges_of_a_step_are_one_pixel_wide():
  gt = _step((1, 40, 40), 20)
  e = np.asarray(metrics.depth_edges(jnp.asarray(gt), jnp.ones_like(gt)))[0]
  cols = np.nonzero(e.sum(axis=0))[0]
  assert len(cols) == 1 and abs(cols[0] - 20) <= 1
  assert e.sum() > 20  # Covers most of the rows.


def test_boundary_metrics_identical_and_shifted():
  gt = _step((2, 48, 48), 24)
  same = _to_float(metrics.boundary_metrics(gt, gt))
  assert same["dbe_acc"] == 0.0 and same["dbe_comp"] == 0.0 and same["valid"] == 2.0
  # A scaled prediction has the same normalised edges.
  assert float(metrics.boundary_metrics(gt * 1.5, gt)["dbe_acc"]) == 0.0
  shift2 = _to_float(metrics.boundary_metrics(_step((2, 48, 48), 26), gt))
  shift5 = _to_float(metrics.boundary_metrics(_step((2, 48, 48), 29), gt))
  assert shift2["dbe_acc"] == pytest.approx(2.0) and shift2["dbe_comp"] == pytest.approx(2.0)
  assert shift5["dbe_acc"] == pytest.approx(5.0)
  # A flat (blurry) prediction has no edge near the true one: iBims-1 gives max_dist.
  flat = _to_float(metrics.boundary_metrics(np.full_like(gt, 3.0), gt))
  assert flat["dbe_acc"] == 10.0 and flat["dbe_comp"] == 10.0


def test_boundary_metrics_blur_raises_completeness_error():
  gt = _step((1, 48, 48), 24) + _step((1, 48, 48), 10, near=1.0, far=0.0)  # Two steps.
  blurred = ndimage.uniform_filter(gt[0], size=9, mode="nearest")[None]
  sharp = _to_float(metrics.boundary_metrics(gt, gt))
  blurry = _to_float(metrics.boundary_metrics(blurred, gt))
  assert blurry["dbe_comp"] >= sharp["dbe_comp"]


def test_boundary_metrics_no_gt_edge_is_skipped_and_jit():
  flat = np.full((1, 32, 32), 3.0, np.float32)
  gt = np.concatenate([flat, _step((1, 32, 32), 16)])
  pred = np.concatenate([_step((1, 32, 32), 10), _step((1, 32, 32), 16)])
  per = jax.jit(metrics.boundary_metrics_per_image)(pred, gt)
  np.testing.assert_array_equal(np.asarray(per["valid"]), [0.0, 1.0])
  np.testing.assert_array_equal(np.asarray(per["dbe_acc"]), [0.0, 0.0])


# ------------------------------------------------------------------------------------------------
# Image metrics.


def _ref_ssim(a, b, max_val=1.0):
  """float64 SSIM with scipy, Gaussian 11x11 sigma 1.5, valid positions only."""
  x = np.arange(11) - 5
  g = np.exp(-0.5 * (x / 1.5) ** 2)
  g /= g.sum()
  k = np.outer(g, g)

  def blur(im):
    return ndimage.correlate(im, k, mode="constant")[5:-5, 5:-5]

  c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
  vals = []
  for ch in range(a.shape[-1]):
    x_, y_ = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
    ma, mb = blur(x_), blur(y_)
    va, vb, cov = blur(x_ * x_) - ma**2, blur(y_ * y_) - mb**2, blur(x_ * y_) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    vals.append(s.mean())
  return np.mean(vals)


def test_ssim_identity_and_reference():
  rng = np.random.default_rng(8)
  a = rng.uniform(size=(2, 24, 20, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
  np.testing.assert_allclose(np.asarray(metrics.ssim_per_image(a, a)), 1.0, atol=1e-5)
  got = np.asarray(metrics.ssim_per_image(a, b))
  want = [_ref_ssim(a[i], b[i]) for i in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  assert float(metrics.ssim(a, b)) < 1.0


def test_psnr_known_values():
  a = np.zeros((2, 16, 16, 3), np.float32)
  b = a + 0.1   # MSE 0.01 -> 20 dB.
  np.testing.assert_allclose(np.asarray(metrics.psnr_per_image(a, b)), 20.0, rtol=1e-5)
  assert float(metrics.psnr(a * 255, b * 255, max_val=255.0)) == pytest.approx(20.0, rel=1e-5)
  assert float(metrics.psnr(a, a)) == metrics.PSNR_CAP_DB
  bm = metrics.bokeh_metrics_per_image(a, b)
  assert set(bm) == {"bokeh_psnr", "bokeh_ssim", "valid"}


# ------------------------------------------------------------------------------------------------
# Bokeh error against the thin-lens ground truth of synthetic_rgbd/dof_tiny (the eval path).


def test_thin_lens_bokeh_error_on_dof_tiny(synthetic_data_dir):
  """eval batches of a dataset with thin-lens ground truth carry it; the render from true depth
  is closer to it than the sharp photo is (the renderer reproduces real defocus), a perfect
  prediction scores exactly that floor, and a wrong depth scores lower."""
  from configs import tiny
  from dofjax import input_pipeline
  config = tiny.get_config()
  config.data_dir = synthetic_data_dir
  config.eval_dataset = "synthetic_rgbd/dof_tiny"
  batches = input_pipeline.create_eval_iterator(config, "test")
  max_radius = batches.thin_lens_max_radius_px()
  batch = next(iter(batches))
  assert set(input_pipeline.THIN_LENS_KEYS) <= set(batch)
  assert batch["dof_full"].shape == batch["image_full"].shape
  assert max_radius >= 2  # dof_tiny's test frames have CoC radii of 2-3 px.
  gt = jnp.asarray(batch["depth_full"][..., 0])
  assert bool(jnp.all(gt > 0))
  jbatch = jax.tree_util.tree_map(jnp.asarray, batch)
  perfect = steps_lib.thin_lens_metrics(jbatch, gt, max_radius)
  np.testing.assert_allclose(perfect["bokeh_psnr_thin_lens"], perfect["thin_lens_floor_psnr"])
  sharp = metrics.psnr_per_image(jbatch["image_full"], jbatch["dof_full"])
  assert bool(jnp.all(perfect["thin_lens_floor_psnr"] > sharp + 0.5)), (
      perfect["thin_lens_floor_psnr"], sharp)
  assert bool(jnp.all(perfect["thin_lens_floor_ssim"] > 0.9))
  # Everything 0.6 m from the camera (the frames are focused at 5-6 m): far too much blur.
  wrong = steps_lib.thin_lens_metrics(jbatch, jnp.full_like(gt, 0.6), max_radius)
  assert bool(jnp.all(wrong["bokeh_psnr_thin_lens"] < perfect["bokeh_psnr_thin_lens"] - 1.0)), (
      wrong["bokeh_psnr_thin_lens"], perfect["bokeh_psnr_thin_lens"])
