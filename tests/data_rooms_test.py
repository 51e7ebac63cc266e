"""Tests of the furnished synthetic rooms (tfds_diml.rooms, textures, sensor) and their
synthetic_rgbd configs (rooms_tiny)."""

import dataclasses
import math

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from tfds_diml import rooms
from tfds_diml import scenes
from tfds_diml import sensor
from tfds_diml import storage
from tfds_diml import synthetic_rgbd
from tfds_diml import textures

_SEEDS = range(8)  # Covers every room type (living, bedroom, office, dining).
_TOL = 1e-3  # Metres.


def _tiny():
  return next(c for c in synthetic_rgbd.SyntheticRgbd.BUILDER_CONFIGS if c.name == "rooms_tiny")


def _piece_bounds(piece):
  bounds = [scenes.object_bounds(p) for p in piece.parts]
  return np.min([b[0] for b in bounds], axis=0), np.max([b[1] for b in bounds], axis=0)


def test_room_types_and_sizes():
  kinds = {rooms.random_room(s).kind for s in _SEEDS}
  assert kinds == set(rooms.ROOM_TYPES)
  for seed in _SEEDS:
    w, h, d = rooms.random_room(seed).room.hi
    assert 3.0 <= w <= 7.0 and 2.4 <= h <= 3.0 and 3.0 <= d <= 8.0


def test_every_piece_stands_on_the_floor_or_on_another_piece():
  for seed in _SEEDS:
    furnished = rooms.random_room(seed)
    names = {p.name for p in furnished.pieces}
    assert {"door", "window", "picture", "ceiling_light"} <= names, names
    for k, piece in enumerate(furnished.pieces):
      lo, hi = _piece_bounds(piece)
      assert np.all(lo >= -_TOL) and np.all(hi <= furnished.room.hi + _TOL), (seed, piece.name)
      if piece.mounted or lo[1] < _TOL:
        continue
      # Its lowest primitive rests on the top of a primitive of another piece, under it.
      low = min(piece.parts, key=lambda p: scenes.object_bounds(p)[0][1])
      foot = low.center[[0, 2]]
      supports = [q.name for j, q in enumerate(furnished.pieces) if j != k for p in q.parts
                  if abs(scenes.object_bounds(p)[1][1] - lo[1]) < _TOL
                  and np.all(foot >= scenes.object_bounds(p)[0][[0, 2]] - _TOL)
                  and np.all(foot <= scenes.object_bounds(p)[1][[0, 2]] + _TOL)]
      assert supports, f"room {seed}: {piece.name} floats at {lo[1]:.3f} m"


def test_standing_furniture_does_not_interpenetrate():
  for seed in _SEEDS:
    furnished = rooms.random_room(seed)
    # Clutter rests on furniture, rugs lie under it: the rest must occupy disjoint boxes.
    resting = {k for g in furnished.groups for k in g[1:]}
    solid = [_piece_bounds(p) for k, p in enumerate(furnished.pieces)
             if k not in resting and p.name not in ("rug", "ceiling_light")]
    for i, (alo, ahi) in enumerate(solid):
      for blo, bhi in solid[i + 1:]:
        overlap = np.minimum(ahi, bhi) - np.maximum(alo, blo)
        assert np.any(overlap <= _TOL), (seed, alo, ahi, blo, bhi)


def test_camera_pose_is_handheld_and_inside_the_room():
  for seed in _SEEDS:
    furnished = rooms.random_room(seed)
    for view in range(3):
      cam = rooms.random_camera(furnished, seed, view)
      right, down, forward = cam.rotation.T
      np.testing.assert_allclose(cam.rotation.T @ cam.rotation, np.eye(3), atol=1e-9)
      pitch = math.degrees(math.asin(forward[1]))
      roll = math.degrees(math.asin(abs(right[1])))
      hfov = math.degrees(2 * math.atan(0.5 * cam.sensor_width_mm / cam.focal_length_mm))
      assert rooms.PITCH_DEG[0] - 1e-6 <= pitch <= rooms.PITCH_DEG[1] + 1e-6
      assert roll <= rooms.ROLL_DEG + 1e-6 and down[1] < 0  # Upright, slightly rolled.
      assert rooms.HFOV_DEG[0] <= hfov <= rooms.HFOV_DEG[1]
      assert rooms.HEIGHT_M[0] <= cam.position[1] <= rooms.HEIGHT_M[1]
      assert np.all(cam.position >= 0.3) and np.all(cam.position[[0, 2]] <=
                                                    furnished.room.hi[[0, 2]] - 0.3)


def test_views_share_the_room_and_depth_is_valid_inside_it():
  for seed in range(3):
    a, b = rooms.room_scene(seed, 0), rooms.room_scene(seed, 1)
    assert len(a.objects) == len(b.objects) and a.room is b.room
    assert not np.array_equal(a.camera.position, b.camera.position)
    _, depth = scenes.render_pinhole_linear(a, 24, 32, clip=False)
    np.testing.assert_array_equal(scenes.depth_map(a, 24, 32), depth)  # The cameras' probe.
    diagonal = float(np.linalg.norm(a.room.hi))
    assert np.all(depth > 0.05) and np.all(depth < diagonal), (depth.min(), depth.max())


def test_photo_textures_are_the_photos():
  brick = textures.photo("brick")[0][..., 0]  # Linear grey, 256 x 256.
  expected = scenes.srgb_to_linear(cv2.resize(skdata.brick(), brick.shape[::-1],
                                              interpolation=cv2.INTER_AREA) / 255.0)
  assert np.corrcoef(brick.ravel(), expected.ravel())[0, 1] > 0.99


def test_a_picture_on_the_wall_shows_its_photo_upright_and_unmirrored():
  # A camera 2 m in front of a 1 m poster on the back wall; the light is exactly the albedo.
  wall = scenes.Material(kind="solid", color_a=np.zeros(3, np.float32),
                         color_b=np.zeros(3, np.float32), scale=1.0, angle=0.0, seed=0)
  picture = rooms._picture(np.random.default_rng(0), 0.5, 0.5, "astronaut")  # pylint: disable=protected-access
  poster = scenes.Box(center=np.array([3.0, 1.5, 3.99]), half_size=np.array([0.5, 0.5, 0.005]),
                      yaw=0.0, material=picture)
  camera = scenes.Camera(position=np.array([3.0, 1.5, 2.0]), rotation=np.diag([-1.0, -1.0, 1.0]),
                         focal_length_mm=72.0, sensor_width_mm=36.0)
  scene = scenes.Scene(room=scenes.Room(np.zeros(3), np.array([6.0, 3.0, 4.0]), (wall,) * 6),
                       objects=(poster,), lights=(), ambient=1.0, camera=camera)
  rgb, _ = scenes.render_pinhole_linear(scene, 64, 64, clip=False)
  # fx = 128 px: the poster (+-0.5 m at 1.985 m) spans +-32 px, the whole frame.
  photo = scenes.srgb_to_linear(cv2.resize(skdata.astronaut(), (64, 64),
                                           interpolation=cv2.INTER_AREA) / 255.0)
  inner = (slice(4, 60), slice(4, 60))
  corr = lambda x, y: np.corrcoef(x[inner].ravel(), y[inner].ravel())[0, 1]
  assert corr(rgb, photo) > 0.9
  assert corr(rgb, photo[:, ::-1]) < 0.6 and corr(rgb, photo[::-1]) < 0.6


def test_sensor_changes_the_photo_but_never_the_depth():
  config = _tiny()
  with_sensor = synthetic_rgbd.render_example(config, 5, 1)
  clean = synthetic_rgbd.render_example(dataclasses.replace(config, sensor=False), 5, 1)
  assert with_sensor["depth"] == clean["depth"]
  a = cv2.imdecode(np.frombuffer(with_sensor["image"], np.uint8), cv2.IMREAD_COLOR)
  b = cv2.imdecode(np.frombuffer(clean["image"], np.uint8), cv2.IMREAD_COLOR)
  assert np.abs(a.astype(float) - b).mean() > 2.0  # Exposure, noise, blur, JPEG...
  assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.7  # ... of the same view.
  # Same seed, same photo; another seed, another photo.
  linear = np.random.default_rng(0).uniform(0, 1, (24, 32, 3)).astype(np.float32)
  np.testing.assert_array_equal(sensor.photo(linear, 3), sensor.photo(linear, 3))
  assert not np.array_equal(sensor.photo(linear, 3), sensor.photo(linear, 4))


def test_examples_are_the_same_for_any_number_of_workers():
  config = _tiny()
  keys = synthetic_rgbd._room_seeds(config, "validation", 4)  # pylint: disable=protected-access
  alone = list(synthetic_rgbd._render_all(config, keys, 1))  # pylint: disable=protected-access
  pooled = list(synthetic_rgbd._render_all(config, keys, 2))  # pylint: disable=protected-access
  assert alone == pooled
  assert len({ex["image"] for ex in alone}) == 4


def test_rooms_tiny_prepares_and_stores_exact_depth(tmp_path):
  builder = synthetic_rgbd.SyntheticRgbd(config="rooms_tiny", data_dir=str(tmp_path),
                                         file_format="array_record", num_workers=1)
  builder.download_and_prepare()
  source = builder.as_data_source(split="test")
  assert len(source) == 4
  ex = source[1]
  assert ex["image"].shape == (48, 64, 3) and ex["depth"].shape == (48, 64, 1)
  room, view = int(ex["scene"].split(b"_")[1]), int(ex["stem"].split(b"_")[1])
  _, depth_m = scenes.render_pinhole_linear(rooms.room_scene(room, view), 48, 64)
  np.testing.assert_array_equal(ex["depth"][..., 0], storage.metres_to_millimetres(depth_m))
  with pytest.raises(ValueError, match="num_workers must be >= 1"):
    synthetic_rgbd.SyntheticRgbd(config="rooms_tiny", data_dir=str(tmp_path), num_workers=0)


def test_thin_lens_pair_shares_exposure_and_reused_lighting_is_close():
  lens = synthetic_rgbd.ThinLens(f_number=1e6, num_samples=2, hdr=True)
  config = dataclasses.replace(_tiny(), sensor=False, thin_lens=lens)
  ex = synthetic_rgbd.render_example(config, 6, 0)
  decode = lambda key: cv2.imdecode(np.frombuffer(ex[key], np.uint8), cv2.IMREAD_COLOR)
  # A pinhole-sized aperture: the thin-lens render is the photo (same exposure, same light).
  assert np.abs(decode("image").astype(int) - decode("image_dof")).max() <= 1
  scene = rooms.room_scene(6, 0)
  kwargs = dict(focus_distance_m=0.5, f_number=0.25, num_samples=4, clip_each_view=False)
  full = scenes.render_thin_lens(scene, 48, 64, **kwargs)
  reused = scenes.render_thin_lens(scene, 48, 64, reuse_lighting=True, **kwargs)
  assert np.abs(full - scenes.render_pinhole(scene, 48, 64)[0]).mean() > 0.02  # It blurs.
  # Reusing the pinhole's lighting changes the soft shadows' per-pixel grain, nothing more:
  # no bias overall, and under 0.006 (1.5/255) on average once the grain is averaged out.
  difference = full - reused
  assert abs(difference.mean()) < 0.002
  assert np.abs(cv2.blur(difference, (5, 5))).mean() < 0.006
