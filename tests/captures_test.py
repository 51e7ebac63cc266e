"""The rgbd_captures builder: your own RGB-D frames in each layout, read back exactly, split by
whole folders, strided, and every bad input reported at once with nothing written. Tiny folders
written here with OpenCV; no TensorFlow."""

import os

import cv2
import numpy as np
import pytest

from configs import tiny
from dofjax import input_pipeline as ip
from dofjax.errors import DataError
from tfds_diml import capture_layouts
from tfds_diml import storage

H, W = 12, 16


def _config(tmp_path, manual_dir, **overrides):
  c = tiny.get_config()
  c.dataset = "rgbd_captures"
  c.data_dir = str(tmp_path / "tfds")
  c.manual_dir = str(manual_dir)
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def _frame(seed):
  """(uint8 (H, W, 3) RGB, float metres (H, W) on whole millimetres, a few invalid pixels)."""
  rng = np.random.default_rng(seed)
  rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
  depth_mm = rng.integers(500, 6000, (H, W))
  depth_mm[0, :3] = 0
  return rgb, depth_mm / 1000.0


def _write(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if array.ndim == 3:
    array = array[..., ::-1]  # RGB -> OpenCV's BGR.
  assert cv2.imwrite(str(path), np.ascontiguousarray(array))


def write_sequence(folder, layout, frames, *, units=None, tum_lists="associations"):
  """Writes frames [(stem, rgb, metres)] into `folder` in `layout`; depth stored as
  round(metres * units) in 16 bits (units = the layout's default), 0 stays 0."""
  units = units or capture_layouts.UNITS_PER_METRE[layout]
  os.makedirs(folder, exist_ok=True)
  lines = []
  for i, (stem, rgb, metres) in enumerate(frames):
    raw = np.round(metres * units).astype(np.uint16)
    if layout == "rgb_depth_mm":
      _write(os.path.join(folder, f"{stem}_rgb.png"), rgb)
      _write(os.path.join(folder, f"{stem}_depth_mm.png"), raw)
    elif layout == "7scenes":
      _write(os.path.join(folder, f"frame-{stem}.color.png"), rgb)
      _write(os.path.join(folder, f"frame-{stem}.depth.png"), raw)
    else:
      t = 1305031102.0 + i / 30
      t_depth = t if tum_lists == "same_names" else t + 0.004  # Else paired by the lists.
      _write(os.path.join(folder, "rgb", f"{t:.6f}.png"), rgb)
      _write(os.path.join(folder, "depth", f"{t_depth:.6f}.png"), raw)
      lines.append((f"{t:.6f}", f"{t_depth:.6f}"))
  if layout == "tum" and tum_lists == "associations":
    with open(os.path.join(folder, "associations.txt"), "w") as f:
      f.writelines(f"{a} rgb/{a}.png {b} depth/{b}.png\n" for a, b in lines)
  elif layout == "tum" and tum_lists == "timestamps":
    with open(os.path.join(folder, "rgb.txt"), "w") as f:
      f.write("# color images\n")
      f.writelines(f"{a} rgb/{a}.png\n" for a, _ in lines)
    with open(os.path.join(folder, "depth.txt"), "w") as f:
      f.writelines(f"{b} depth/{b}.png\n" for _, b in lines)


def _frames(prefix, n, seed=0):
  return [(f"{prefix}{i:06d}" if prefix else f"{i:06d}",) + _frame(seed + i) for i in range(n)]


def _read_split(c, split):
  src = ip.data_source(c, split)
  out = {}
  for i in range(len(src)):
    ex = src[i]
    key = (ex["scene"].decode() if isinstance(ex["scene"], bytes) else ex["scene"],
           ex["stem"].decode() if isinstance(ex["stem"], bytes) else ex["stem"])
    out[key] = ex
  return out


@pytest.mark.parametrize("layout,tum_lists", [("rgb_depth_mm", None), ("tum", "associations"),
                                              ("tum", "timestamps"), ("tum", "same_names"),
                                              ("7scenes", None)])
def test_each_layout_round_trips_colour_and_metres_exactly(tmp_path, layout, tum_lists):
  root = tmp_path / "captures"
  written = {}
  for scene in ("kitchen", "office"):
    frames = _frames("", 3, seed=len(written))
    write_sequence(str(root / scene), layout, frames, tum_lists=tum_lists)
    written.update({(scene, i): (rgb, metres) for i, (_, rgb, metres) in enumerate(frames)})
  c = _config(tmp_path, root)
  splits = {s: _read_split(c, s) for s in ("train", "validation", "test")}
  assert len(splits["train"]) == 3 and len(splits["validation"]) == 3
  assert splits["test"].keys() == splits["validation"].keys()  # No test/ folder: the held-out.
  read = {**splits["train"], **splits["validation"]}
  for scene in ("kitchen", "office"):
    examples = sorted((k, v) for k, v in read.items() if k[0] == scene)
    assert len(examples) == 3
    for i, (_, ex) in enumerate(examples):
      rgb, metres = written[(scene, i)]
      np.testing.assert_array_equal(ex["image"], rgb)
      np.testing.assert_array_equal(storage.millimetres_to_metres(ex["depth"][..., 0]),
                                    metres.astype(np.float32))


def test_jpeg_colour_and_a_depth_scale_file(tmp_path):
  root = tmp_path / "captures"
  for scene in ("a", "b"):
    folder = root / scene
    for stem, rgb, metres in _frames("", 2):
      _write(folder / f"frame-{stem}.color.jpg", rgb)
      _write(folder / f"frame-{stem}.depth.png", np.round(metres * 4000).astype(np.uint16))
  (root / capture_layouts.DEPTH_SCALE_FILE).write_text("4000\n")  # Above both: applies to both.
  c = _config(tmp_path, root)
  read = {**_read_split(c, "train"), **_read_split(c, "validation")}
  _, rgb, metres = _frames("", 2)[1]
  ex = read[("a", "frame-000001")]
  np.testing.assert_array_equal(ex["image"], cv2.imread(str(root / "a" / "frame-000001.color.jpg"))[..., ::-1])
  np.testing.assert_array_equal(storage.millimetres_to_metres(ex["depth"][..., 0]),
                                metres.astype(np.float32))


def test_splits_keep_whole_scenes_apart(tmp_path):
  root = tmp_path / "captures"
  scenes = [f"room{i:02d}" for i in range(12)]
  for k, scene in enumerate(scenes):
    for seq in ("seq-01", "seq-02"):  # 3DMatch: scene/seq-XX/frame-*.
      write_sequence(str(root / scene / seq), "7scenes", _frames("", 2, seed=k))
  c = _config(tmp_path, root)
  train, val = _read_split(c, "train"), _read_split(c, "validation")
  train_scenes = {k[0].split("/")[0] for k in train}
  val_scenes = {k[0].split("/")[0] for k in val}
  assert not train_scenes & val_scenes and train_scenes | val_scenes == set(scenes)
  assert val_scenes == set(capture_layouts.held_out_scenes(scenes))
  assert len(val_scenes) == 1  # ~10% of 12.
  assert {k[0] for k in val} == {f"{s}/{q}" for s in val_scenes for q in ("seq-01", "seq-02")}
  # Independent of anything but the names.
  assert capture_layouts.held_out_scenes(reversed(scenes)) == capture_layouts.held_out_scenes(scenes)


def test_explicit_split_folders(tmp_path):
  root = tmp_path / "captures"
  write_sequence(str(root / "train" / "desk"), "tum", _frames("", 4))
  write_sequence(str(root / "validation" / "desk_later"), "tum", _frames("", 2, seed=9))
  write_sequence(str(root / "test"), "rgb_depth_mm", _frames("f", 3, seed=20))
  c = _config(tmp_path, root)
  assert {k[0] for k in _read_split(c, "train")} == {"train/desk"}
  assert {k[0] for k in _read_split(c, "validation")} == {"validation/desk_later"}
  assert set(_read_split(c, "test")) == {("test/.", f"f{i:06d}") for i in range(3)}


def test_frame_stride_keeps_every_kth_frame_and_is_its_own_copy(tmp_path):
  root = tmp_path / "captures"
  for scene in ("a", "b"):
    write_sequence(str(root / scene), "rgb_depth_mm", _frames("", 10))
  every = _read_split(_config(tmp_path, root), "train")
  strided_config = _config(tmp_path, root, captures_frame_stride=3)
  strided = _read_split(strided_config, "train")
  scene = next(iter(every))[0]
  assert sorted(k[1] for k in strided) == [f"{i:06d}" for i in (0, 3, 6, 9)]
  assert len(every) == 10 and all(k[0] == scene for k in strided)
  assert ip.get_builder(strided_config).builder_config.name.startswith("stride3_")


def test_changed_folder_is_prepared_again(tmp_path):
  root = tmp_path / "captures"
  for scene in ("a", "b"):
    write_sequence(str(root / scene), "rgb_depth_mm", _frames("", 2))
  c = _config(tmp_path, root)
  assert len(ip.data_source(c, "train")) == 2
  write_sequence(str(root / "c"), "rgb_depth_mm", _frames("", 2))
  sizes = [len(ip.data_source(c, s)) for s in ("train", "validation")]
  assert sum(sizes) == 6


def test_every_bad_input_is_reported_at_once_and_nothing_is_written(tmp_path):
  root = tmp_path / "captures"
  good = _frames("", 2)
  write_sequence(str(root / "ok"), "rgb_depth_mm", good)
  bad = root / "bad"
  write_sequence(str(bad), "rgb_depth_mm", _frames("", 5))
  os.remove(bad / "000000_depth_mm.png")                                      # Missing partner.
  _write(bad / "000001_depth_mm.png", np.full((H, W), 200, np.uint8))         # 8-bit depth.
  _write(bad / "000002_depth_mm.png", np.full((H + 2, W), 2000, np.uint16))   # Other size.
  (bad / "000003_rgb.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")             # Unreadable.
  metres = root / "metres"  # Depth written in metres (values 1-6): an implausible median.
  write_sequence(str(metres), "7scenes", _frames("", 2), units=1)
  sidecar = root / "scaled"
  write_sequence(str(sidecar), "tum", _frames("", 2))
  (sidecar / capture_layouts.DEPTH_SCALE_FILE).write_text("five thousand")
  c = _config(tmp_path, root)
  with pytest.raises(DataError) as e:
    ip.prepare(c)
  message = str(e.value)
  assert "6 bad input(s)" in message and "nothing written" in message
  for needle in (f"{bad / '000000_rgb.png'}: colour image has no depth partner",
                 f"{bad / '000001_depth_mm.png'}: depth is uint8",
                 f"{bad / '000002_depth_mm.png'}: depth is 16x14",
                 f"{bad / '000003_rgb.png'}: unreadable",
                 f"{metres}: median depth", str(metres / capture_layouts.DEPTH_SCALE_FILE),
                 f"{sidecar / capture_layouts.DEPTH_SCALE_FILE}: holds 'five thousand'"):
    assert needle in message
  assert not ip.get_builder(c).is_prepared()
  version_root = tmp_path / "tfds" / "rgbd_captures"
  leftovers = [p for p in version_root.rglob("*") if p.is_file()] if version_root.exists() else []
  assert not leftovers


@pytest.mark.parametrize("make,needle", [
    (lambda root: None, "not a folder"),
    (lambda root: root.mkdir(), "missing or empty"),
    (lambda root: write_sequence(str(root), "rgb_depth_mm", _frames("", 3)), "one folder"),
    (lambda root: (root / "notes").mkdir(parents=True) or (root / "notes" / "x.txt").write_text(""),
     "no RGB-D frames found"),
])
def test_unusable_folders_say_how_to_fix_them(tmp_path, make, needle):
  root = tmp_path / "captures"
  make(root)
  with pytest.raises(DataError, match=needle):
    ip.prepare(_config(tmp_path, root))


def test_unset_manual_dir_shows_the_layouts(tmp_path):
  c = _config(tmp_path, "x")
  c.manual_dir = None
  with pytest.raises(DataError, match="frame-XXXXXX.color.png"):
    ip.prepare(c)


def test_timestamps_pair_closest_first_and_drop_far_ones():
  rgb = [(1.00, "r1"), (1.033, "r2"), (2.0, "r3")]
  depth = [(1.004, "d1"), (1.030, "d2"), (1.5, "d3")]
  assert capture_layouts.match_timestamps(rgb, depth) == [((1.00, "r1"), (1.004, "d1")),
                                                          ((1.033, "r2"), (1.030, "d2"))]


def test_eval_iterator_reads_held_out_frames(tmp_path):
  root = tmp_path / "captures"
  for scene in ("a", "b"):
    write_sequence(str(root / scene), "tum", _frames("", 3))
  c = _config(tmp_path, root, eval_batch_size=2, num_eval_batches=-1)
  batches = list(ip.create_eval_iterator(c, "validation", process_index=0, process_count=1))
  assert sum(int(b["example_mask"].sum()) for b in batches) == 3
  assert batches[0]["depth_full"].shape == (2, H, W, 1)
