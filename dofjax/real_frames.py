"""Real RGB-D frames from a folder, for evaluation: the `rgbd_folder` eval dataset.

This is the quick way to score a model on a few frames, read as they are with no preparation.
To train or fine-tune on your frames (and for TUM / 7-Scenes layouts, splits, striding), use
dataset `rgbd_captures` (`tfds_diml.rgbd_captures`, docs/own-data.md).

A folder of pairs
  <name>_rgb.png       8-bit RGB (or RGBA, the alpha is dropped);
  <name>_depth_mm.png  16-bit single-channel, z distance in millimetres, 0 = invalid
is read directly, not through a prepared TFDS cache: the files are decoded when they are read, so
adding, removing or replacing a frame needs no re-preparation and no cache can go stale. The
folder is the whole eval split (any split name reads all of it), in the order of the names.
Frames of different sizes may share a folder: `input_pipeline.create_eval_iterator` batches each
size on its own (`FolderSource.sizes`).

  python -m dofjax.real_frames OUT_DIR

writes scikit-image's Middlebury 2014 "Motorcycle" (a real photo with dense stereo ground truth)
into OUT_DIR as such a pair (scikit-image is a test and tooling dependency: pip install
scikit-image).
"""

import argparse
import os
import sys

import cv2
import numpy as np

from dofjax import depth as depth_lib
from dofjax import errors
from dofjax.errors import DataError
from tfds_diml import capture_layouts

DATASET = "rgbd_folder"
# The file names of this layout; `tfds_diml.capture_layouts` (the `rgbd_captures` builder, which
# trains on such folders and others) defines them.
RGB_SUFFIX = capture_layouts.RGB_SUFFIX
DEPTH_SUFFIX = capture_layouts.DEPTH_MM_SUFFIX

# Middlebury 2014 Motorcycle calibration (cam0 focal 3979.911 px, doffs 124.343 px, baseline
# 193.001 mm at 2964 px wide), divided by 4 for the 741-px-wide images scikit-image bundles.
MOTORCYCLE_FOCAL_PX = 3979.911 / 4
MOTORCYCLE_DOFFS_PX = 124.343 / 4
MOTORCYCLE_BASELINE_M = 0.193001
MOTORCYCLE_NAME = "motorcycle"


def find_pairs(folder):
  """[(name, rgb path, depth path)] of the frames in `folder`, sorted by name.

  DataError if the folder does not exist, holds no pair, or holds an rgb file without its depth
  file (or the reverse): the message names the file and the one it lacks.
  """
  if not folder or not os.path.isdir(folder):
    raise DataError(f"rgbd_dir={folder!r} is not a folder; set --config.rgbd_dir to a folder of "
                    f"<name>{RGB_SUFFIX} + <name>{DEPTH_SUFFIX} pairs.")
  files = set(os.listdir(folder))
  rgb = {f[:-len(RGB_SUFFIX)] for f in files if f.endswith(RGB_SUFFIX)}
  depth = {f[:-len(DEPTH_SUFFIX)] for f in files if f.endswith(DEPTH_SUFFIX)}
  for name in sorted(rgb ^ depth):
    have, lack = ((RGB_SUFFIX, DEPTH_SUFFIX) if name in rgb else (DEPTH_SUFFIX, RGB_SUFFIX))
    raise DataError(f"{os.path.join(folder, name + have)} has no {name + lack} beside it; add "
                    "it or move the file out of the folder.")
  if not rgb:
    raise DataError(f"{folder} holds no <name>{RGB_SUFFIX} + <name>{DEPTH_SUFFIX} pair.")
  return [(n, os.path.join(folder, n + RGB_SUFFIX), os.path.join(folder, n + DEPTH_SUFFIX))
          for n in sorted(rgb)]


def _read_png(path):
  """The file's pixels as OpenCV decodes them (no conversion); DataError if it cannot."""
  raw = cv2.imread(path, cv2.IMREAD_UNCHANGED) if os.path.isfile(path) else None
  if raw is None:
    raise DataError(f"cannot read {path}: missing, unreadable, or not a valid PNG image.")
  return raw


def read_rgb_png(path):
  """8-bit RGB(A) PNG -> uint8 (H, W, 3) RGB. DataError if unreadable or not 8-bit colour."""
  raw = _read_png(path)
  if raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[-1] not in (3, 4):
    raise DataError(f"{path} must be an 8-bit RGB image; it is {raw.dtype} with shape "
                    f"{raw.shape}.")
  return np.ascontiguousarray(raw[..., 2::-1])  # OpenCV's BGR(A) -> RGB.


def read_depth_png(path):
  """16-bit single-channel depth PNG -> uint16 (H, W) millimetres as stored (0 = invalid).
  DataError if unreadable or of another format."""
  raw = _read_png(path)
  if raw.dtype != np.uint16 or raw.ndim != 2:
    raise DataError(f"{path} must be a single-channel 16-bit PNG in millimetres; it is "
                    f"{raw.dtype} with shape {raw.shape}.")
  return raw


def read_pair(name, rgb_path, depth_path):
  """One frame -> an example as the TFDS data sources give them: {'image': uint8 (H, W, 3),
  'depth': uint16 (H, W, 1) millimetres, 'scene': folder name bytes, 'stem': name bytes}.
  DataError if a file is bad or the two differ in size."""
  image, depth = read_rgb_png(rgb_path), read_depth_png(depth_path)
  if image.shape[:2] != depth.shape:
    raise DataError(f"{rgb_path} is {image.shape[1]}x{image.shape[0]} but {depth_path} is "
                    f"{depth.shape[1]}x{depth.shape[0]}; a frame's depth must be registered to "
                    "its image at the same size.")
  scene = os.path.basename(os.path.normpath(os.path.dirname(rgb_path)))
  return {"image": image, "depth": depth[..., None], "scene": scene.encode(),
          "stem": name.encode()}


class FolderSource:
  """Random-access source of the frames of a folder (see the module docstring), like
  `tfds.data_source`: len(), source[i] -> `read_pair` example.

  Every frame is read once on construction, so a bad file is reported before any model runs;
  `sizes[i]` is frame i's (H, W).
  """

  def __init__(self, folder):
    self.folder = folder
    self._pairs = find_pairs(folder)
    self.sizes = [read_pair(*p)["depth"].shape[:2] for p in self._pairs]

  def __len__(self):
    return len(self._pairs)

  def __getitem__(self, index):
    return read_pair(*self._pairs[index])


# ----------------------------------------------------------------------------------------------
# scikit-image's Motorcycle (tooling: scikit-image is not a run-time dependency).


def depth_from_stereo_disparity(disparity_px, *, focal_px, baseline_m, doffs_px=0.0):
  """Metric depth of a rectified stereo pair: z = focal_px * baseline_m / (d + doffs_px).

  Args:
    disparity_px: (H, W) disparity in pixels; non-finite values (e.g. inf = unmatched) are invalid.
    focal_px: focal length in pixels; baseline_m: camera baseline in metres; doffs_px: the
      x-offset of the two principal points (Middlebury's `doffs`), in pixels.
  Returns:
    (H, W) float32 depth in metres, 0 where invalid.
  """
  d = np.asarray(disparity_px, np.float64) + doffs_px
  ok = np.isfinite(d) & (d > 0)
  return np.where(ok, focal_px * baseline_m / np.where(ok, d, 1.0), 0.0).astype(np.float32)


def check_motorcycle_available(fix="") -> None:
  """UserError (saying how to install it, then `fix`) unless scikit-image, which ships the
  Motorcycle photo, is installed."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec("skimage") is None:
    raise errors.UserError("the Motorcycle photo comes with scikit-image; install it with "
                           f"pip install scikit-image{fix}.")


def load_motorcycle(scale=1):
  """Middlebury 2014 "Motorcycle" (left view, 741x500, as bundled by scikit-image) downscaled by
  an integer `scale`: (sRGB (H, W, 3) float32 in [0, 1], depth (H, W) float32 metres from the
  left disparity with the dataset's calibration, 0 where the stereo match is unknown).
  UserError if scikit-image is not installed."""
  check_motorcycle_available()
  from skimage import data  # pylint: disable=g-import-not-at-top
  left, _, disparity = data.stereo_motorcycle()
  depth = depth_from_stereo_disparity(disparity, focal_px=MOTORCYCLE_FOCAL_PX,
                                             baseline_m=MOTORCYCLE_BASELINE_M,
                                             doffs_px=MOTORCYCLE_DOFFS_PX)
  image = left.astype(np.float32) / 255.0
  if scale > 1:
    h, w = depth.shape[0] // scale, depth.shape[1] // scale
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    depth = depth_lib.resize_in_disparity(depth, h, w)
  return image, depth


def write_pair(folder, name, image01, depth_m):
  """Writes <name>_rgb.png (8-bit) and <name>_depth_mm.png (16-bit mm, 0 = invalid) into
  `folder` from image01 (H, W, 3) in [0, 1] and depth_m (H, W) metres (0 = invalid).
  Returns the two paths."""
  from dofjax import depth as depth_lib  # pylint: disable=g-import-not-at-top
  rgb = os.path.join(folder, name + RGB_SUFFIX)
  depth = os.path.join(folder, name + DEPTH_SUFFIX)
  pixels = np.round(np.clip(image01, 0.0, 1.0) * 255.0).astype(np.uint8)
  for path, array in ((rgb, pixels[..., ::-1]), (depth, depth_lib.metres_to_millimetres(depth_m))):
    if not cv2.imwrite(path, np.ascontiguousarray(array)):
      raise DataError(f"cannot write {path}; is the folder writable?")
  return rgb, depth


def main(argv=None):
  """`python -m dofjax.real_frames OUT_DIR`: writes the Motorcycle pair into OUT_DIR (created
  if needed) and prints the eval command."""
  parser = argparse.ArgumentParser(
      prog="python -m dofjax.real_frames",
      description="Writes scikit-image's Middlebury 2014 Motorcycle as a real-frame pair "
                  f"(<name>{RGB_SUFFIX} + <name>{DEPTH_SUFFIX}) for --config.eval_dataset="
                  f"{DATASET}.")
  parser.add_argument("out_dir", help="folder to write motorcycle_rgb.png and "
                                      "motorcycle_depth_mm.png into")
  args = parser.parse_args((sys.argv if argv is None else argv)[1:])
  if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
    raise errors.UserError(f"{args.out_dir} is a file; pass a folder.")
  os.makedirs(args.out_dir, exist_ok=True)
  image, depth = load_motorcycle()
  for path in write_pair(args.out_dir, MOTORCYCLE_NAME, image, depth):
    print(f"wrote {path}")
  valid = depth[depth > 0]
  print(f"{image.shape[1]}x{image.shape[0]}, depth {valid.min():.2f}-{valid.max():.2f} m on "
        f"{100.0 * valid.size / depth.size:.0f}% of the pixels. Score a model on it with\n"
        f"  python -m dofjax.main --config=... --workdir=W --mode=eval "
        f"--config.eval_dataset={DATASET} --config.rgbd_dir={args.out_dir}")
  return 0


if __name__ == "__main__":
  errors.run_cli(main)
