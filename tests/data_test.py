"""Tests of the TFDS builders (DIML, synthetic) and the input pipeline. CPU, no TensorFlow."""

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from configs import tiny
from dofjax import depth as depth_lib
from dofjax import input_pipeline as ip
from dofjax import errors
from dofjax.errors import DataError, UserError
from tfds_diml import diml
from tfds_diml import make_dummy_data
from tfds_diml import scenes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMMY = os.path.join(ROOT, "tfds_diml", "dummy_data")


def _config(data_dir, dataset="synthetic_rgbd/tiny", **overrides):
  c = tiny.get_config()
  c.dataset = dataset
  c.data_dir = str(data_dir)
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def _text(v):
  return v.decode() if isinstance(v, bytes) else v


@pytest.fixture(scope="module")
def diml_config(tmp_path_factory):
  """diml/lr prepared from the checked-in dummy tree."""
  c = _config(tmp_path_factory.mktemp("tfds_diml"), "diml/lr", manual_dir=DUMMY,
              image_size=16, load_size=20, eval_batch_size=2, num_eval_batches=-1)
  ip.prepare(c)
  return c


@pytest.fixture
def manual_copy(tmp_path):
  """A writable copy of the dummy DIML tree (LR only), to break."""
  dst = tmp_path / "manual"
  shutil.copytree(DUMMY, dst, ignore=lambda d, names: [n for n in names if n == "HR"])
  return dst


# ----------------------------------------------------------------------------------------------
# Builders.


def test_synthetic_prepared_and_read_without_tensorflow(synthetic_data_dir):
  c = _config(synthetic_data_dir)
  counts = {"train": 16, "validation": 4, "test": 4}
  for split, n in counts.items():
    src = ip.data_source(c, split)
    assert len(src) == n
    ex = src[0]
    assert ex["image"].dtype == np.uint8 and ex["image"].shape == (48, 64, 3)
    assert ex["depth"].dtype == np.uint16 and ex["depth"].shape == (48, 64, 1)
    assert _text(ex["scene"]).startswith("room_") and _text(ex["stem"]).startswith("view_")
  files = os.listdir(os.path.join(synthetic_data_dir, "synthetic_rgbd", "tiny", "1.0.0"))
  assert any("array_record" in f for f in files)
  assert "tensorflow" not in sys.modules


def test_diml_splits_and_validation_scenes(diml_config):
  scenes_of = {}
  for split in ("train", "validation", "test"):
    src = ip.data_source(diml_config, split)
    scenes_of[split] = {_text(src[i]["scene"]) for i in range(len(src))}
  expected_train = set(make_dummy_data.DUMMY_LAYOUT["train"])
  held_out = set(diml.validation_scenes(expected_train))
  assert scenes_of["validation"] == held_out and len(held_out) == 1
  assert scenes_of["train"] == expected_train - held_out
  assert not scenes_of["train"] & scenes_of["validation"]
  assert scenes_of["test"] == set(make_dummy_data.DUMMY_LAYOUT["test"])  # Spaces and dots kept.
  assert "tensorflow" not in sys.modules


def test_validation_scenes_deterministic():
  names = [f"{i}. Room {i}.5" for i in range(30)]
  held = diml.validation_scenes(names)
  assert held == diml.validation_scenes(list(reversed(names)))
  assert len(held) == 3 and set(held) <= set(names)
  assert diml.validation_scenes(["a"]) == []
  assert len(diml.validation_scenes(["a", "b"])) == 1


def test_synthetic_splits_share_no_scene(synthetic_data_dir):
  c = _config(synthetic_data_dir)
  seen = {}
  for split in ("train", "validation", "test"):
    src = ip.data_source(c, split)
    seen[split] = {_text(src[i]["scene"]) for i in range(len(src))}
  assert not seen["train"] & seen["validation"]
  assert not seen["train"] & seen["test"]
  assert not seen["validation"] & seen["test"]


# ----------------------------------------------------------------------------------------------
# Depth: exact round trip from the PNG to the batch.


def test_diml_depth_round_trip_exact(diml_config):
  src = ip.data_source(diml_config, "test")
  batches = list(ip.create_eval_iterator(diml_config, "test", process_index=0, process_count=1))
  full_depths = np.concatenate([b["depth_full"] for b in batches])
  full_images = np.concatenate([b["image_full"] for b in batches])
  masks = np.concatenate([b["example_mask"] for b in batches])
  assert masks.tolist() == [1.0, 1.0, 1.0, 0.0]
  for i in range(len(src)):
    scene, stem = _text(src[i]["scene"]), _text(src[i]["stem"])
    folder = os.path.join(DUMMY, "test", "LR", scene)
    mm = cv2.imread(os.path.join(folder, "depth_filled", f"{stem}_depth_filled.png"),
                    cv2.IMREAD_UNCHANGED)
    assert mm.dtype == np.uint16
    expected = mm.astype(np.float32) / 1000.0
    expected[mm >= 65500] = 0.0
    np.testing.assert_array_equal(full_depths[i][..., 0], expected)
    assert full_depths[i][0, 0, 0] == 0.0 and full_depths[i][-1, -1, 0] == 0.0  # 0 and 65500.
    rgb = cv2.imread(os.path.join(folder, "color", f"{stem}_c.png"))[..., ::-1]
    np.testing.assert_array_equal(np.round(full_images[i] * 255).astype(np.uint8), rgb)


def test_train_batch_depths_are_file_depths(diml_config):
  src = ip.data_source(diml_config, "train")
  allowed = set()
  for i in range(len(src)):
    allowed |= set(depth_lib.millimetres_to_metres(src[i]["depth"]).ravel().tolist())
  batch = next(ip.create_train_iterator(diml_config, process_index=0, process_count=1))
  assert set(batch["depth"].ravel().tolist()) <= allowed  # Nearest neighbour: no new depths.
  np.testing.assert_array_equal(
      batch["target"], depth_lib.encode_depth(batch["depth"], diml_config.depth_near_m,
                                              diml_config.depth_far_m))
  np.testing.assert_array_equal(
      batch["mask"], depth_lib.valid_mask(batch["depth"], far=diml_config.depth_far_m))


def test_synthetic_depth_is_rendered_z_depth(synthetic_data_dir):
  c = _config(synthetic_data_dir, eval_batch_size=4, num_eval_batches=-1)
  src = ip.data_source(c, "test")
  batch = next(iter(ip.create_eval_iterator(c, "test", process_index=0, process_count=1)))
  for i in range(len(src)):
    room = int(_text(src[i]["scene"]).split("_")[1])
    view = int(_text(src[i]["stem"]).split("_")[1])
    _, true_m = scenes.render_pinhole(scenes.random_scene(room, view=view), 48, 64)
    expected = depth_lib.millimetres_to_metres(depth_lib.metres_to_millimetres(true_m))
    np.testing.assert_array_equal(batch["depth_full"][i, ..., 0], expected)
    assert np.abs(batch["depth_full"][i, ..., 0] - true_m).max() <= 0.0005 + 1e-6


# ----------------------------------------------------------------------------------------------
# Jitter.


def _coordinate_pair(height, width):
  """An image whose R, G encode (x, y) and a depth map encoding the same (x, y) exactly."""
  yy, xx = np.mgrid[0:height, 0:width]
  image = np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), np.zeros_like(xx)],
                   -1).astype(np.uint8)
  depth = (1000 + 100 * xx + yy).astype(np.uint16)[..., None]
  return image, depth


def test_jitter_exact_alignment_without_resize():
  image, depth = _coordinate_pair(40, 40)
  flips = set()
  for seed in range(20):
    img, dep = ip.random_jitter(image, depth, np.random.default_rng(seed), load_size=40,
                                crop_size=32, flip=True)
    assert img.shape == (32, 32, 3) and dep.shape == (32, 32, 1)
    x_from_depth = (dep[..., 0].astype(int) - 1000) // 100
    y_from_depth = (dep[..., 0].astype(int) - 1000) % 100
    np.testing.assert_array_equal(img[..., 0], x_from_depth * 255 // 39)
    np.testing.assert_array_equal(img[..., 1], y_from_depth * 255 // 39)
    flips.add(bool(x_from_depth[0, 0] > x_from_depth[0, -1]))
  assert flips == {True, False}  # Both flipped and unflipped crops were checked.


def test_jitter_alignment_with_resize():
  h, w = 48, 64
  image, depth = _coordinate_pair(h, w)
  for seed in range(10):
    img, dep = ip.random_jitter(image, depth, np.random.default_rng(seed), load_size=36,
                                crop_size=32, flip=True)
    x_img = img[..., 0].astype(float) * (w - 1) / 255
    y_img = img[..., 1].astype(float) * (h - 1) / 255
    x_dep = (dep[..., 0].astype(int) - 1000) // 100
    y_dep = (dep[..., 0].astype(int) - 1000) % 100
    # Both sample the same source position to within about one source pixel.
    assert np.abs(x_img - x_dep).max() <= 2.0 and np.abs(y_img - y_dep).max() <= 2.0
  assert ip.random_jitter(image, depth, np.random.default_rng(0), load_size=36, crop_size=32,
                          flip=False)[0].shape == (32, 32, 3)


# ----------------------------------------------------------------------------------------------
# Iterators.


def test_train_batches_shapes_and_ranges(synthetic_data_dir):
  c = _config(synthetic_data_dir)
  batch = next(ip.create_train_iterator(c, process_index=0, process_count=1))
  s, b = c.image_size, c.batch_size
  assert sorted(batch) == sorted(ip.TRAIN_KEYS)
  assert batch["image"].shape == (b, s, s, 3) and batch["image"].dtype == np.float32
  for k in ("depth", "target", "mask"):
    assert batch[k].shape == (b, s, s, 1) and batch[k].dtype == np.float32
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert -1.0 <= batch["target"].min() and batch["target"].max() <= 1.0
  assert set(np.unique(batch["mask"])) <= {0.0, 1.0}


def test_train_iterator_deterministic_and_resumable(synthetic_data_dir):
  c = _config(synthetic_data_dir)
  def take(it, n):
    return [next(it) for _ in range(n)]
  first = take(ip.create_train_iterator(c, process_index=0, process_count=1), 3)
  again = take(ip.create_train_iterator(c, process_index=0, process_count=1), 3)
  for x, y in zip(first, again):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  c_other = _config(synthetic_data_dir, seed=1)
  other = next(ip.create_train_iterator(c_other, process_index=0, process_count=1))
  assert not np.array_equal(other["image"], first[0]["image"])

  # Save after 7 batches (16 examples / 2 per batch: the next ones cross an epoch boundary).
  it = ip.create_train_iterator(c, process_index=0, process_count=1)
  take(it, 7)
  state = json.loads(json.dumps(it.get_state()))
  expected = take(it, 4)
  resumed = ip.create_train_iterator(c, process_index=0, process_count=1)
  resumed.set_state(state)
  for x, y in zip(expected, take(resumed, 4)):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.slow  # Starts grain worker processes (about 5-15 s on 2 busy cores).
def test_train_iterator_with_worker_process_matches_and_resumes(synthetic_data_dir):
  c = _config(synthetic_data_dir)
  reference = ip.create_train_iterator(c, process_index=0, process_count=1)
  expected = [next(reference) for _ in range(5)]
  c_mp = _config(synthetic_data_dir, num_data_workers=1)
  it = ip.create_train_iterator(c_mp, process_index=0, process_count=1)
  got = [next(it) for _ in range(2)]
  state = json.loads(json.dumps(it.get_state()))
  del it  # Its worker process stops when the iterator is collected.
  resumed = ip.create_train_iterator(c_mp, process_index=0, process_count=1)
  resumed.set_state(state)
  got += [next(resumed) for _ in range(3)]
  for x, y in zip(expected, got):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_train_iterator_per_process_batch(synthetic_data_dir):
  c = _config(synthetic_data_dir, batch_size=4)
  b0 = next(ip.create_train_iterator(c, process_index=0, process_count=2))
  b1 = next(ip.create_train_iterator(c, process_index=1, process_count=2))
  assert b0["image"].shape[0] == 2 and b1["image"].shape[0] == 2
  assert not np.array_equal(b0["image"], b1["image"])
  with pytest.raises(Exception, match="multiple of the number of processes"):
    ip.create_train_iterator(_config(synthetic_data_dir, batch_size=3), process_index=0,
                             process_count=2)


def test_eval_iterator_order_padding_and_sharding(synthetic_data_dir):
  c = _config(synthetic_data_dir, eval_batch_size=4, num_eval_batches=-1)
  single = list(ip.create_eval_iterator(c, "validation", process_index=0, process_count=1))
  assert len(single) == 1 and sorted(single[0]) == sorted(ip.EVAL_KEYS)
  assert single[0]["image_full"].shape == (4, 48, 64, 3)
  assert single[0]["depth_full"].shape == (4, 48, 64, 1)
  assert single[0]["image"].shape == (4, 32, 32, 3)
  parts = [list(ip.create_eval_iterator(c, "validation", process_index=p, process_count=2))
           for p in range(2)]
  for k in ip.EVAL_KEYS:
    np.testing.assert_array_equal(np.concatenate([parts[0][0][k], parts[1][0][k]]),
                                  single[0][k])
  # 4 examples in batches of 3: the second batch is padded; iterating again gives the same.
  c3 = _config(synthetic_data_dir, eval_batch_size=3, num_eval_batches=-1)
  ev = ip.create_eval_iterator(c3, "validation", process_index=0, process_count=1)
  batches = list(ev)
  assert len(ev) == 2 and [b["example_mask"].tolist() for b in batches] == [[1, 1, 1], [1, 0, 0]]
  assert batches[1]["image_full"].shape == (3, 48, 64, 3)
  assert not batches[1]["image_full"][1:].any() and not batches[1]["mask"][1:].any()
  np.testing.assert_array_equal(list(ev)[1]["image"], batches[1]["image"])
  c1 = _config(synthetic_data_dir, eval_batch_size=2, num_eval_batches=1)
  assert len(list(ip.create_eval_iterator(c1, "test", process_index=0, process_count=1))) == 1


# ----------------------------------------------------------------------------------------------
# Bad input: one DataError naming the offending path; nothing half-written.


def _prepare_fails(tmp_path, manual_dir, *needles):
  c = _config(tmp_path / "data", "diml/lr", manual_dir=None if manual_dir is None
              else str(manual_dir))
  with pytest.raises(DataError) as e:
    ip.prepare(c)
  for needle in needles:
    assert str(needle) in str(e.value)
  assert not ip.get_builder(c).is_prepared()
  version_dir = tmp_path / "data" / "diml" / "lr"
  if version_dir.exists():  # No (half-written) version folder may remain.
    assert not [p for p in version_dir.iterdir() if p.name == "1.0.0" or "incomplete" in p.name]
  return str(e.value)


def test_bad_manual_dir_unset_missing_or_empty(tmp_path):
  assert "dimlrgbd.github.io" in _prepare_fails(tmp_path, None, "manual_dir")
  missing = tmp_path / "nowhere"
  assert "color/<stem>_c.png" in _prepare_fails(tmp_path, missing, missing)
  empty = tmp_path / "empty"
  empty.mkdir()
  _prepare_fails(tmp_path, empty, empty, "depth_filled")


def test_bad_colour_without_depth_and_reverse(tmp_path, manual_copy):
  scene = manual_copy / "train" / "LR" / "3. Office room"
  depth = sorted((scene / "depth_filled").iterdir())[0]
  colour = scene / "color" / depth.name.replace("_depth_filled.png", "_c.png")
  depth.unlink()
  _prepare_fails(tmp_path, manual_copy, colour, "no depth partner")
  other = manual_copy / "test" / "LR" / "30. Lab"
  lone_colour = sorted((other / "color").iterdir())[0]
  lone_colour.unlink()
  message = _prepare_fails(tmp_path, manual_copy, colour,
                           other / "depth_filled" / lone_colour.name.replace(
                               "_c.png", "_depth_filled.png"), "no colour partner")
  assert "2 bad input(s)" in message


def test_bad_truncated_and_unreadable_png(tmp_path, manual_copy):
  colour = sorted((manual_copy / "train" / "LR" / "5. Bedroom" / "color").iterdir())[0]
  data = colour.read_bytes()
  colour.write_bytes(data[:len(data) // 2])
  _prepare_fails(tmp_path, manual_copy, colour, "truncated")
  colour.write_bytes(b"this is not a png" * 10)
  _prepare_fails(tmp_path, manual_copy, colour, "not a readable PNG")


def test_bad_png_corrupt_inside_aborts_while_writing(tmp_path, manual_copy):
  depth = sorted((manual_copy / "test" / "LR" / "30. Lab" / "depth_filled").iterdir())[0]
  data = bytearray(depth.read_bytes())
  idat = data.index(b"IDAT")
  data[idat + 8:idat + 40] = b"\xff" * 32  # Header and IEND intact, compressed data broken.
  depth.write_bytes(bytes(data))
  _prepare_fails(tmp_path, manual_copy, depth, "corrupt")


def test_bad_depth_not_16_bit(tmp_path, manual_copy):
  depth = sorted((manual_copy / "train" / "LR" / "12. Livingroom" / "depth_filled").iterdir())[0]
  eight_bit = (cv2.imread(str(depth), cv2.IMREAD_UNCHANGED) // 256).astype(np.uint8)
  cv2.imwrite(str(depth), eight_bit)
  _prepare_fails(tmp_path, manual_copy, depth, "16-bit")


def test_bad_size_mismatch(tmp_path, manual_copy):
  depth = sorted((manual_copy / "train" / "LR" / "27. Kitchen 2.1" / "depth_filled").iterdir())[0]
  cv2.imwrite(str(depth), np.full((9, 16), 1500, np.uint16))
  _prepare_fails(tmp_path, manual_copy, depth, "16x9", "32x18")


def test_bad_single_train_scene(tmp_path):
  manual = tmp_path / "one_scene"
  make_dummy_data.write_tree(str(manual), {"train": {"1. A": 2}, "test": {"2. B": 1}},
                             {"LR": (18, 32)}, extras=False)
  _prepare_fails(tmp_path, manual, manual / "train" / "LR", "at least two")


def test_depth_vi_and_depth_raw_never_read(tmp_path, manual_copy):
  for folder in ("depth_vi", "depth_raw"):
    for path in manual_copy.glob(f"*/LR/*/{folder}/*.png"):
      path.write_bytes(b"garbage")
  stray = manual_copy / "train" / "LR" / "5. Bedroom" / "depth_vi" / "extra_depth_vi.png"
  stray.write_bytes(b"x")  # No colour partner, but depth_vi/ is never looked at.
  c = _config(tmp_path / "data", "diml/lr", manual_dir=str(manual_copy))
  ip.prepare(c)
  assert len(ip.data_source(c, "test")) == 3


# ----------------------------------------------------------------------------------------------
# A user's mistake is one clear message; anything else surfaces as itself.


def test_unknown_dataset_or_split_is_a_user_error(synthetic_data_dir):
  with pytest.raises(UserError, match="dataset='synthetic_rgbd/tiyn' is unknown; use one of "
                                      "diml/lr, diml/hr, synthetic_rgbd/tiny"):
    ip.prepare(_config(synthetic_data_dir, "synthetic_rgbd/tiyn"))
  with pytest.raises(UserError, match="'mnist' is unknown"):  # A TFDS dataset, but not ours.
    ip.get_builder(_config(synthetic_data_dir, "mnist"))
  with pytest.raises(UserError, match="split 'trian' of synthetic_rgbd/tiny .*use train"):
    ip.data_source(_config(synthetic_data_dir), "trian")
  with pytest.raises(UserError, match=r"split 'train\[:200%\]'"):
    ip.data_source(_config(synthetic_data_dir), "train[:200%]")
  assert len(ip.data_source(_config(synthetic_data_dir), "train[:50%]")) == 8  # TFDS slices work.


def test_errors_inside_tfds_are_not_relabelled(synthetic_data_dir, monkeypatch):
  """A ValueError/KeyError raised by TFDS for a known dataset and split is a bug, not a typo."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  c = _config(synthetic_data_dir)
  builder = ip.get_builder(c)

  def broken_source(**unused):
    raise KeyError("feature 'depth' missing: a bug, whatever the message says about the split")

  monkeypatch.setattr(type(builder), "as_data_source", lambda self, **kw: broken_source(**kw))
  with pytest.raises(KeyError, match="a bug"):
    ip.data_source(c, "train")

  def broken_builder(*unused, **unused_kw):
    raise ValueError("an internal TFDS failure")

  monkeypatch.setattr(tfds, "builder", broken_builder)
  with pytest.raises(ValueError, match="internal TFDS failure"):
    ip.get_builder(c)


def test_bad_manual_data_is_one_error_line_and_exit_2(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    errors.run_cli(ip.main, ["prepare", "--dataset=diml/lr", f"--data_dir={tmp_path}",
                             f"--manual_dir={tmp_path / 'nowhere'}"])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith(f"error: {tmp_path / 'nowhere'}: DIML manual directory is missing")
  assert "Traceback" not in err


def test_tfds_diml_imports_nothing_from_dofjax():
  """tfds_diml stands alone: dofjax may import it, never the reverse."""
  folder = os.path.join(ROOT, "tfds_diml")
  offenders = []
  for name in sorted(os.listdir(folder)):
    if not name.endswith(".py"):
      continue
    with open(os.path.join(folder, name), encoding="utf-8") as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        modules = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        modules = [node.module or ""]
      else:
        continue
      offenders += [f"{name}:{node.lineno} {m}" for m in modules
                    if m == "dofjax" or m.startswith("dofjax.")]
  assert not offenders, offenders


def test_depth_units_load_without_tfds():
  """dofjax.depth (used by the photo CLI) gets the mm <-> m conversion without loading TFDS."""
  script = ("import sys; import dofjax.depth as d; "
            "assert d.millimetres_to_metres([1500, 0, 65500]).tolist() == [1.5, 0.0, 0.0]; "
            "assert 'tensorflow_datasets' not in sys.modules, 'TFDS was imported'")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                       timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]


# ----------------------------------------------------------------------------------------------
# A fresh interpreter prepares and reads both builders: TensorFlow is never imported (where it is
# not installed, as in the project's venv, this also shows it is not needed), and the output says
# honestly where the data comes from (TFDS's own lines claim a download).


def test_fresh_preparation_without_tensorflow_and_without_download_claims(tmp_path):
  script = textwrap.dedent(f"""
      import importlib.util, sys
      sys.path.insert(0, {ROOT!r})
      from configs import tiny
      from dofjax import input_pipeline as ip
      for dataset in ("synthetic_rgbd/tiny", "diml/lr"):
        c = tiny.get_config()
        c.dataset, c.data_dir, c.manual_dir = dataset, {str(tmp_path)!r}, {DUMMY!r}
        c.image_size, c.load_size, c.eval_batch_size = 16, 20, 2
        ip.prepare(c)
        next(ip.create_train_iterator(c, process_index=0, process_count=1))
        next(iter(ip.create_eval_iterator(c, "validation", process_index=0, process_count=1)))
      assert "tensorflow" not in sys.modules, "tensorflow was imported"
      print("NO-TF OK", "installed" if importlib.util.find_spec("tensorflow") else "absent")
  """)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300, env=env, check=False)
  assert "NO-TF OK" in out.stdout, out.stdout[-2000:] + out.stderr[-4000:]
  printed = out.stdout + out.stderr
  assert "download" not in printed.lower().replace("nothing is downloaded", "").replace(
      "manual download", ""), printed[-3000:]
  assert "dataset_info.json" not in printed, printed[-3000:]
  lines = out.stdout.splitlines()
  assert (f"Preparing synthetic_rgbd/tiny (generated locally, nothing is downloaded) in "
          f"{tmp_path / 'synthetic_rgbd' / 'tiny' / '1.0.0'} ...") in lines
  assert any(line.startswith("Preparing diml/lr (read from your manual download, nothing is "
                             "downloaded)") for line in lines), lines


def test_bench_data_smoke(capsys):
  from dofjax import bench_data  # pylint: disable=g-import-not-at-top
  results = bench_data.main(["bench data", "--hr_size=48x27", "--small_size=16x16",
                             "--num_files=2", "--num_batches=2", "--warmup=1", "--batch_size=1",
                             "--image_size=16", "--load_size=18"])
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert json.loads(last) == results
  assert results["hr_examples_per_s"] > 0 and results["px256_examples_per_s"] > 0
