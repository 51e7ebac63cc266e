"""Thin-lens ground truth with lights brighter than white (`synthetic_rgbd/dof_hdr`), and the
existing configs' outputs kept unchanged."""

import dataclasses

import cv2
import numpy as np
import pytest

from tfds_diml import scenes
from tfds_diml import synthetic_rgbd

CONFIGS = {c.name: c for c in synthetic_rgbd.SyntheticRgbd.BUILDER_CONFIGS}


def _decode(png):
  return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("feature,channel_sums", [
    ("image", [292214, 300114, 260510]),        # BGR channel sums, recorded before HDR existed.
    ("image_dof", [293880, 302010, 262337]),
])
def test_existing_thin_lens_config_is_unchanged(feature, channel_sums):
  example = synthetic_rgbd.render_example(CONFIGS["dof_tiny"], 2_000_000, 1)
  pixels = _decode(example[feature]).reshape(-1, 3).astype(np.int64)
  # Exact on this machine; a few 1-level roundings of float noise allowed elsewhere.
  np.testing.assert_allclose(pixels.sum(0), channel_sums, atol=8)
  assert int(_decode(example["depth"]).astype(np.int64).sum()) == 13568673


def test_hdr_rooms_have_lights_brighter_than_white():
  scene = scenes.random_hdr_scene(3)
  radiance, _ = scenes.render_pinhole_linear(scene, 48, 64, clip=False)
  assert radiance.max() > 5.0 and 0.002 < np.mean(radiance.max(-1) > 1.0) < 0.2
  # The room itself is the plain room's: only emitters are added.
  plain = scenes.random_scene(3)
  assert len(scene.objects) > len(plain.objects)
  for a, b in zip(scene.objects, plain.objects):
    np.testing.assert_array_equal(a.center, b.center)
  assert all(o.material.emission > 0 for o in scene.objects[len(plain.objects):])


def test_sensor_clipping_after_the_aperture_average_keeps_blurred_lights_bright():
  scene = scenes.random_hdr_scene(3)
  kw = dict(focus_distance_m=1.0, f_number=0.25, num_samples=16)
  photo, _ = scenes.render_pinhole(scene, 48, 64)
  hdr = scenes.render_thin_lens(scene, 48, 64, clip_each_view=False, **kw)
  per_view = scenes.render_thin_lens(scene, 48, 64, **kw)
  assert np.all(hdr >= per_view - 1e-6)             # Clipping once never removes light ...
  assert (hdr - per_view).max() > 0.2               # ... and around the lights it adds a lot.
  assert np.mean(hdr >= 254.5 / 255) > np.mean(per_view >= 254.5 / 255)
  # A pinhole-sized aperture gives the clipped photo back either way.
  tiny = scenes.render_thin_lens(scene, 48, 64, focus_distance_m=1.0, f_number=1e6,
                                 num_samples=4, clip_each_view=False)
  np.testing.assert_allclose(tiny, photo, atol=1e-5)


def test_dof_hdr_config_renders_a_clipped_photo_and_its_hdr_thin_lens_truth():
  config = dataclasses.replace(CONFIGS["dof_hdr"], height=24, width=32,
                               thin_lens=dataclasses.replace(CONFIGS["dof_hdr"].thin_lens,
                                                             num_samples=8))
  example = synthetic_rgbd.render_example(config, 2_000_000, 0)
  scene = scenes.random_hdr_scene(2_000_000)
  photo, _ = scenes.render_pinhole(scene, 24, 32)
  np.testing.assert_array_equal(_decode(example["image"])[..., ::-1],
                                np.round(photo * 255).astype(np.uint8))
  truth = scenes.render_thin_lens(scene, 24, 32, focus_distance_m=float(example["focus_distance_m"]),
                                  f_number=0.25, num_samples=8, clip_each_view=False)
  np.testing.assert_array_equal(_decode(example["image_dof"])[..., ::-1],
                                np.round(truth * 255).astype(np.uint8))
