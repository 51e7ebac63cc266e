"""Evaluation on real frames: the rgbd_folder reader, its bad inputs, the constant-depth baseline
and `--mode=eval` on a folder end to end (tiny frames written to tmp_path)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dofjax import input_pipeline
from dofjax import metrics
from dofjax import real_frames
from dofjax.errors import DataError, UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_frame(folder, name, height, width, seed):
  """Writes a random <name>_rgb.png and <name>_depth_mm.png (0.6-4 m, a few 0 holes) into
  folder; returns (rgb uint8 (H, W, 3), depth uint16 mm (H, W))."""
  rng = np.random.default_rng(seed)
  rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
  depth = rng.integers(600, 4000, (height, width)).astype(np.uint16)
  depth[rng.random((height, width)) < 0.2] = 0
  cv2.imwrite(os.path.join(folder, name + "_rgb.png"), rgb[..., ::-1])
  cv2.imwrite(os.path.join(folder, name + "_depth_mm.png"), depth)
  return rgb, depth


def tiny_config(folder, **overrides):
  from configs import tiny  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.eval_dataset = real_frames.DATASET
  config.rgbd_dir = None if folder is None else str(folder)
  config.num_eval_batches = -1
  for k, v in overrides.items():
    config[k] = v
  return config


def test_folder_examples_are_the_files_in_metres_batched_one_size_at_a_time(tmp_path):
  frames = {"a": write_frame(tmp_path, "a", 12, 16, 0), "b": write_frame(tmp_path, "b", 10, 14, 1),
            "c": write_frame(tmp_path, "c", 12, 16, 2)}
  source = real_frames.FolderSource(str(tmp_path))
  assert len(source) == 3 and source.sizes == [(12, 16), (10, 14), (12, 16)]
  example = source[1]
  np.testing.assert_array_equal(example["image"], frames["b"][0])
  np.testing.assert_array_equal(example["depth"][..., 0], frames["b"][1])

  batches = input_pipeline.create_eval_iterator(tiny_config(tmp_path), "test", process_index=0,
                                                process_count=1)
  got = list(batches)
  assert len(batches) == len(got) == 2  # a + c (one size), then b alone, padded.
  np.testing.assert_array_equal(got[0]["example_mask"], [1, 1])
  np.testing.assert_array_equal(got[1]["example_mask"], [1, 0])
  for batch, names in ((got[0], "ac"), (got[1], "b")):
    for j, name in enumerate(names):
      rgb, depth_mm = frames[name]
      np.testing.assert_allclose(batch["image_full"][j], rgb / 255.0, atol=1e-6)
      np.testing.assert_allclose(batch["depth_full"][j][..., 0], depth_mm / 1000.0, rtol=1e-6)
      assert (batch["depth_full"][j][..., 0][depth_mm == 0] == 0).all()  # 0 mm stays invalid.
      assert batch["image"][j].shape == (32, 32, 3)
  assert got[1]["depth_full"].shape == (2, 10, 14, 1) and not got[1]["depth_full"][1].any()


def _bad(folder, case):
  """Makes `folder` hold the bad input `case`; returns the folder to read."""
  if case == "missing":
    return os.path.join(folder, "nope")
  if case == "no pairs":
    open(os.path.join(folder, "notes.txt"), "w").close()
    return folder
  write_frame(folder, "good", 6, 8, 0)
  rgb, depth = (os.path.join(folder, "bad" + s) for s in (real_frames.RGB_SUFFIX,
                                                           real_frames.DEPTH_SUFFIX))
  if case == "rgb without depth":
    cv2.imwrite(rgb, np.zeros((6, 8, 3), np.uint8))
  elif case == "depth without rgb":
    cv2.imwrite(depth, np.zeros((6, 8), np.uint16))
  elif case == "corrupt png":
    with open(rgb, "wb") as f:
      f.write(b"\x89PNG\r\n\x1a\n not really")
    cv2.imwrite(depth, np.zeros((6, 8), np.uint16))
  elif case == "8-bit depth":
    cv2.imwrite(rgb, np.zeros((6, 8, 3), np.uint8))
    cv2.imwrite(depth, np.zeros((6, 8), np.uint8))
  elif case == "size mismatch":
    cv2.imwrite(rgb, np.zeros((6, 8, 3), np.uint8))
    cv2.imwrite(depth, np.zeros((6, 9), np.uint16))
  return folder


@pytest.mark.parametrize("case, message", [
    ("missing", r"rgbd_dir='.*nope' is not a folder; set --config.rgbd_dir"),
    ("no pairs", r"holds no <name>_rgb.png \+ <name>_depth_mm.png pair"),
    ("rgb without depth", r"bad_rgb.png has no bad_depth_mm.png beside it"),
    ("depth without rgb", r"bad_depth_mm.png has no bad_rgb.png beside it"),
    ("corrupt png", r"cannot read .*bad_rgb.png: .*not a valid PNG"),
    ("8-bit depth", r"bad_depth_mm.png must be a single-channel 16-bit PNG .*uint8"),
    ("size mismatch", r"bad_rgb.png is 8x6 but .*bad_depth_mm.png is 9x6"),
])
def test_bad_folders_are_one_clear_data_error(tmp_path, case, message):
  folder = _bad(str(tmp_path), case)
  with pytest.raises(DataError, match=message) as info:
    input_pipeline.data_source(tiny_config(folder), "test", real_frames.DATASET)
  assert "\n" not in str(info.value)


def test_rgbd_folder_needs_its_folder_and_is_for_evaluation_only():
  with pytest.raises(UserError, match="set --config.rgbd_dir=DIR"):
    input_pipeline.prepare(tiny_config(None), real_frames.DATASET)
  with pytest.raises(UserError, match="rgbd_folder is for evaluation only"):
    input_pipeline.check_dataset(real_frames.DATASET, "dataset")
  assert input_pipeline.check_dataset(real_frames.DATASET, "eval_dataset")


def _constant_d1_by_hand(depth_m):
  valid = depth_m[(depth_m > 1e-3) & (depth_m < 10.0)]
  median = np.median(valid)
  return float(np.mean(np.maximum(median / valid, valid / median) < 1.25))


def test_constant_baseline_is_the_median_true_depth_everywhere():
  gt = np.array([[[1.0, 1.1, 0.0, 2.0, 3.0],
                  [1.2, 0.9, 1.4, 0.0, 5.0],
                  [1.0, 1.3, 0.8, 1.05, 12.0]]], np.float32)  # 0 and 12 m: invalid.
  got = metrics.constant_baseline_metrics_per_image(gt, max_depth=10.0)
  assert set(metrics.CONSTANT_KEYS) <= set(got)
  np.testing.assert_allclose(float(got["d1_const"][0]), _constant_d1_by_hand(gt), rtol=1e-6)
  assert 0 < float(got["d1_const"][0]) < 1
  # Any constant prediction, median-scaled, scores the same.
  scaled = metrics.median_scaled_metrics_per_image(np.full_like(gt, 7.0), gt, max_depth=10.0)
  np.testing.assert_allclose(float(scaled["d1_median"][0]), _constant_d1_by_hand(gt), rtol=1e-6)


@pytest.fixture()
def untrained_workdir(tmp_path):
  """A workdir holding a checkpoint (step 0) of configs/tiny.py's freshly initialised model."""
  import jax  # pylint: disable=g-import-not-at-top
  from dofjax import checkpointing, state  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "w"
  manager = checkpointing.make_manager(workdir, keep=1)
  checkpointing.save(manager, 0, state.create_train_state(tiny.get_config(),
                                                          jax.random.PRNGKey(0)), {})
  manager.wait_until_finished()
  manager.close()
  return workdir


def test_mode_eval_on_a_folder_scores_model_and_constant(tmp_path, untrained_workdir):
  """One size of frame only (the eval step compiles once per size; mixed sizes are checked on
  the iterator above)."""
  folder = tmp_path / "frames"
  folder.mkdir()
  depths = [write_frame(folder, name, 36, 44, seed)[1] for seed, name in enumerate("abc")]
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("JAX_NUM_CPU_DEVICES", None)
  proc = subprocess.run(
      [sys.executable, "-m", "dofjax.main", "--config=configs/tiny.py",
       f"--workdir={untrained_workdir}", "--mode=eval",
       f"--config.eval_dataset={real_frames.DATASET}", f"--config.rgbd_dir={folder}"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((untrained_workdir / "eval_test.json").read_text())
  assert result["dataset"] == real_frames.DATASET
  m = result["metrics"]
  assert {"d1", "abs_rel", "d1_median", "abs_rel_median", "d1_const", "abs_rel_const"} <= set(m)
  # The baseline over native-resolution frames is what numpy computes from the files.
  want = np.mean([_constant_d1_by_hand(d / 1000.0) for d in depths])
  assert abs(m["d1_const"] - want) < 1e-5, (m["d1_const"], want)
  assert "constant depth" in proc.stdout and "median-scaled" in proc.stdout, proc.stdout
  row = next(l for l in proc.stdout.splitlines() if l.startswith("delta1"))
  assert row.split()[1:4] == [f"{m[k]:.4f}" for k in ("d1", "d1_median", "d1_const")], row


def test_motorcycle_export_is_a_pair_with_middlebury_depth(tmp_path, capsys):
  from skimage import data  # pylint: disable=g-import-not-at-top
  assert real_frames.main(["real_frames", str(tmp_path / "moto")]) == 0
  assert "--config.eval_dataset=rgbd_folder" in capsys.readouterr().out
  source = real_frames.FolderSource(str(tmp_path / "moto"))
  assert len(source) == 1 and source.sizes == [(500, 741)]
  example = source[0]
  left, _, disparity = data.stereo_motorcycle()
  np.testing.assert_array_equal(example["image"], left)
  depth_mm = example["depth"][..., 0].astype(np.float64)
  known = np.isfinite(disparity)
  want = 193.001 * 994.978 / (disparity[known] + 31.086)   # Middlebury 2014 calibration.
  np.testing.assert_allclose(depth_mm[known], want, atol=0.6)
  assert (depth_mm[~known] == 0).all() and (~known).any()
