"""Tests of the synthetic scene renderer (tfds_diml.scenes) and the thin-lens builder config."""

import dataclasses
import math

import numpy as np
import tensorflow_datasets as tfds

from tfds_diml import scenes
from tfds_diml import synthetic_rgbd


def _facing_back_wall(distance=3.0, objects=()):
  """A room-only scene whose camera looks straight at the back wall from `distance` metres."""
  base = scenes.random_scene(3)
  checker = scenes.Material(kind="checker", color_a=np.full(3, 0.05, np.float32),
                            color_b=np.full(3, 0.6, np.float32), scale=0.2, angle=0.0, seed=0)
  room = scenes.Room(lo=np.zeros(3), hi=np.array([6.0, 3.0, 1.0 + distance]),
                     materials=(checker,) * 6)
  rotation = np.diag([-1.0, -1.0, 1.0])  # Right = -x, down = -y, forward = +z (y is up).
  camera = scenes.Camera(position=np.array([3.0, 1.5, 1.0]), rotation=rotation,
                         focal_length_mm=24.0, sensor_width_mm=36.0)
  return dataclasses.replace(base, room=room, camera=camera, objects=tuple(objects))


def test_camera_rotation_convention():
  np.testing.assert_allclose(scenes.camera_rotation(0.0, 0.0),
                             np.diag([-1.0, -1.0, 1.0]), atol=1e-12)


def test_depth_is_z_distance_not_ray_length():
  scene = _facing_back_wall(3.0)
  _, depth = scenes.render_pinhole(scene, 30, 40)
  # Fx = 24/36*40 px: the central 20 columns/rows see the back wall (it fills +-3 m at 3 m).
  centre = depth[5:25, 10:30]
  np.testing.assert_allclose(centre, 3.0, atol=1e-5)  # Constant z, though rays differ in length.


def test_focal_length_defines_field_of_view():
  sphere = scenes.Sphere(center=np.array([3.0 + 0.8, 1.5, 3.0]), radius=0.05,
                         material=scenes.random_scene(0).room.materials[0])
  scene = _facing_back_wall(5.0, objects=[sphere])
  h, w = 60, 80
  _, depth = scenes.render_pinhole(scene, h, w)
  fx = 24.0 / 36.0 * w
  # The sphere centre is 0.8 m right of the axis at z = 2 m: column w/2 + fx * 0.8 / 2.
  cols = np.nonzero((depth < 2.1).any(axis=0))[0]
  # World +x is image left for a camera looking along +z with y up; so the sphere is left.
  expected = w / 2 - fx * 0.8 / 2.0
  assert abs(cols.mean() + 0.5 - expected) < 1.0


def test_random_scene_deterministic_and_views_share_the_room():
  a = scenes.render_pinhole(scenes.random_scene(11), 24, 32)
  b = scenes.render_pinhole(scenes.random_scene(11), 24, 32)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  v0, v1 = scenes.random_scene(11, view=0), scenes.random_scene(11, view=1)
  assert len(v0.objects) == len(v1.objects)
  np.testing.assert_array_equal(v0.room.hi, v1.room.hi)
  assert not np.array_equal(v0.camera.position, v1.camera.position)
  rgb, depth = a
  assert rgb.dtype == np.float32 and rgb.shape == (24, 32, 3) and 0 <= rgb.min() <= rgb.max() <= 1
  assert depth.dtype == np.float32 and depth.shape == (24, 32) and depth.min() > 0


def test_thin_lens_tiny_aperture_is_the_pinhole_image():
  scene = scenes.random_scene(5)
  pinhole, _ = scenes.render_pinhole(scene, 24, 32)
  lens = scenes.render_thin_lens(scene, 24, 32, focus_distance_m=2.0, f_number=1e6,
                                 num_samples=4)
  np.testing.assert_allclose(lens, pinhole, atol=1e-5)


def test_thin_lens_keeps_focal_plane_sharp_and_blurs_elsewhere():
  scene = _facing_back_wall(3.0)
  pinhole, _ = scenes.render_pinhole(scene, 30, 40)
  sharp = scenes.render_thin_lens(scene, 30, 40, focus_distance_m=3.0, f_number=0.5,
                                  num_samples=16)
  np.testing.assert_allclose(sharp[8:22, 12:28], pinhole[8:22, 12:28], atol=1e-4)
  blurred = scenes.render_thin_lens(scene, 30, 40, focus_distance_m=0.5, f_number=0.5,
                                    num_samples=16)
  assert np.abs(blurred[8:22, 12:28] - pinhole[8:22, 12:28]).max() > 0.1
  coc = scenes.coc_diameter_px(scene, 3.0, 40, focus_distance_m=0.5, f_number=0.5)
  fx = 24.0 / 36.0 * 40
  assert math.isclose(float(coc), 0.048 * fx * (2.0 - 1.0 / 3.0), rel_tol=1e-9)


def test_dof_builder_config_adds_thin_lens_image(tmp_path):
  builder = synthetic_rgbd.SyntheticRgbd(config="dof_tiny", data_dir=str(tmp_path),
                                         file_format="array_record")
  builder.download_and_prepare()
  source = builder.as_data_source(split="test")
  ex = source[0]
  assert ex["image_dof"].shape == ex["image"].shape == (48, 64, 3)
  assert ex["image_dof"].dtype == np.uint8
  assert ex["f_number"] == np.float32(0.25) and ex["focus_distance_m"] > 0
  assert ex["focal_length_mm"] > 0 and ex["sensor_width_mm"] == 36.0
  assert isinstance(builder, tfds.core.GeneratorBasedBuilder)
