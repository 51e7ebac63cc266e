"""Photo-guided depth completion (dofjax.depth_completion), on tiny photos."""

import numpy as np
import pytest

from dofjax import bench_dof
from dofjax import depth_completion
from dofjax import dof
from dofjax import errors


def _two_surfaces(h=40, w=60):
  """A dark near surface (1 m) left of column w / 2 and a bright far one (4 m) right of it, with
  mild texture; (photo (h, w, 3), depth (h, w))."""
  rng = np.random.default_rng(0)
  near = np.arange(w) < w // 2
  image = np.where(near[None, :, None], 0.2, 0.8) + rng.normal(0, 0.01, (h, w, 3))
  depth = np.where(near[None, :], 1.0, 4.0) * np.ones((h, 1))
  return np.clip(image, 0, 1).astype(np.float32), depth.astype(np.float32)


def test_a_hole_across_an_object_edge_follows_the_photo_edge():
  image, depth = _two_surfaces()
  holey = depth.copy()
  holey[5:35, 15:45] = 0.0            # A 30x30 dropout straddling the edge (too wide to be a shadow).
  completed, filled = depth_completion.complete_depth(image, holey)
  assert filled.sum() == 900 and np.all(completed > 0)
  np.testing.assert_allclose(completed[5:35, 15:29], 1.0, rtol=0.03)
  np.testing.assert_allclose(completed[5:35, 31:45], 4.0, rtol=0.03)
  # The farther-neighbour rule alone paints the near half far (the blocks of issue 28).
  assert np.median(depth_completion.fill_farther(holey)[5:35, 15:29]) == 4.0


def test_a_thin_occlusion_shadow_beside_a_depth_edge_takes_the_farther_depth():
  image = np.full((40, 60, 3), 0.5, np.float32)    # No colour edge to follow.
  _, depth = _two_surfaces()
  holey = depth.copy()
  holey[:, 30:33] = 0.0                            # A 3-px shadow on the far side of the edge.
  completed, _ = depth_completion.complete_depth(image, holey)
  np.testing.assert_array_equal(completed[:, 30:33], 4.0)
  assert set(np.unique(completed)) == {1.0, 4.0}   # No in-between depth floating on its own.


def test_a_large_hole_in_a_slanted_surface_is_smooth_without_seams():
  h, w = 48, 64
  yy, xx = np.mgrid[:h, :w]
  rng = np.random.default_rng(1)
  image = np.clip(0.5 + rng.normal(0, 0.05, (h, w, 3)), 0, 1).astype(np.float32)
  depth = (1.0 / (0.2 + 0.01 * xx + 0.005 * yy)).astype(np.float32)   # A slanted floor.
  holey = depth.copy()
  holey[10:40, 12:52] = 0.0
  completed, _ = depth_completion.complete_depth(image, holey)
  err = np.abs(1.0 / completed - 1.0 / depth)[10:40, 12:52]
  blocks = np.abs(1.0 / depth_completion.fill_farther(holey) - 1.0 / depth)[10:40, 12:52]
  assert err.mean() < 0.3 * blocks.mean()
  # No seam: averaged down the hole, neighbouring columns differ by about the surface's own slope
  # (0.01 1/m per column).
  assert np.abs(np.diff((1.0 / completed[10:40, 12:52]).mean(axis=0))).max() < 0.02


def test_large_photos_are_solved_smaller_and_keep_valid_depth():
  image, depth = _two_surfaces(120, 180)
  holey = depth.copy()
  holey[20:100, 60:120] = 0.0
  completed, filled = depth_completion.complete_depth(image, holey, work_pixels=60 * 90)
  np.testing.assert_array_equal(completed[~filled], depth[~filled])
  assert np.median(completed[20:100, 62:85]) == pytest.approx(1.0, rel=0.05)
  assert np.median(completed[20:100, 95:118]) == pytest.approx(4.0, rel=0.05)


def test_without_valid_depth_is_a_user_error():
  with pytest.raises(errors.UserError, match="no valid pixels"):
    depth_completion.complete_depth(np.zeros((4, 4, 3)), np.zeros((4, 4), np.float32))


@pytest.mark.slow  # Renders thin-lens truth and three depth maps (about 7 s).
def test_renders_from_holey_depth_stay_close_to_thin_lens_truth():
  """Issue 28's measurement, small: Kinect-like holes (shadows, bands, border, dropouts across
  object edges) cost at most 1.5 dB over the frame and 4 dB over the hole pixels against the
  exact thin-lens render, and beat the farther-neighbour fill on the hole pixels."""
  from tfds_diml import scenes
  h, w, f_number = 96, 128, 0.25
  scene = scenes.random_scene(2)
  rgb, depth = scenes.render_pinhole(scene, h, w)
  focus = float(np.percentile(depth, 10))
  truth = scenes.render_thin_lens(scene, h, w, focus_distance_m=focus, f_number=f_number,
                                  num_samples=24)
  k = scenes.thin_lens_blur_scale_px(focal_length_mm=scene.camera.focal_length_mm,
                                     sensor_width_mm=scene.camera.sensor_width_mm,
                                     f_number=f_number, width=w)
  holes = bench_dof.sensor_holes(depth, seed=2)
  assert 0.1 < holes.mean() < 0.4
  holey = np.where(holes, 0.0, depth).astype(np.float32)
  radius = float(np.ceil(np.abs(k * (1.0 / depth - 1.0 / focus)).max()))
  render = lambda d: np.asarray(dof.render_disparity(
      rgb, 1.0 / d, focus_disparity=1.0 / focus, blur_scale_px=k, max_radius=radius))
  exact = render(depth)
  completed = render(depth_completion.complete_depth(rgb, holey)[0])
  farther = render(depth_completion.fill_farther(holey))
  psnr = bench_dof.psnr_on
  assert psnr(exact, truth) - psnr(completed, truth) <= 1.5
  assert psnr(exact, truth, holes) - psnr(completed, truth, holes) <= 4.0
  assert psnr(completed, truth, holes) > psnr(farther, truth, holes)
