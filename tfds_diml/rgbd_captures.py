"""`rgbd_captures`: your own RGB-D frames (RealSense, Kinect, Azure Kinect, ZED, a phone with
LiDAR, TUM RGB-D, 7-Scenes, 3DMatch ...) from a manual folder in any layout of
`tfds_diml.capture_layouts`, for training and evaluation.

Features: `local_builder.rgbd_features` (as DIML's: the colour re-encoded as 8-bit RGB PNG,
depth as 16-bit millimetre PNG whatever the source unit; scene = the sequence's folder path
from the manual folder, stem = the frame's name).
Splits: train, validation, test, whole folders apart (`capture_layouts.scan`).

The prepared data depends on the folder's contents and the options, so the builder config is
made for them (`make_config`): its name holds the frame stride and a hash of the folder's path
and of every file's name, size and modification time. Adding, removing or replacing a frame,
or changing the stride, prepares a new copy under another config name; nothing stale is read.
Everything is checked before anything is written (one CaptureError listing every problem), and
TFDS renames its temporary folder only on success.
"""

import dataclasses
import hashlib
import logging
import os

import tensorflow_datasets as tfds

from tfds_diml import capture_layouts
from tfds_diml import local_builder
from tfds_diml import storage

NAME = "rgbd_captures"

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Point --config.manual_dir at a folder of your RGB-D frames, in any of these layouts (one per
recording folder; the layout is detected):
  <name>_rgb.png + <name>_depth_mm.png          16-bit depth in millimetres
  rgb/ + depth/ (+ associations.txt, or rgb.txt + depth.txt)   TUM RGB-D / ORB-SLAM, depth / 5000
  frame-XXXXXX.color.png|jpg + frame-XXXXXX.depth.png          7-Scenes / 3DMatch, millimetres
Put each recording (or room) in its own subfolder, or use train/ validation/ test/ folders. A
depth unit other than the layout's goes in depth_units_per_metre.txt. See docs/own-data.md.
"""


@dataclasses.dataclass
class CapturesConfig(tfds.core.BuilderConfig):
  """One folder's frames with one stride (`make_config`)."""
  frame_stride: int = 1


def make_config(manual_dir: str, frame_stride: int = 1) -> CapturesConfig:
  """The builder config for the frames now in `manual_dir`, keeping every frame_stride-th:
  named 'stride<k>_<hash of the folder's path and contents>'."""
  manual_dir = os.path.abspath(manual_dir)
  key = hashlib.sha256(
      f"{manual_dir}\0{capture_layouts.fingerprint(manual_dir)}".encode()).hexdigest()[:12]
  return CapturesConfig(name=f"stride{frame_stride}_{key}", frame_stride=frame_stride,
                        description=f"{manual_dir}, every {frame_stride}. frame")


class _DropCustomConfigWarning(logging.Filter):
  """Drops TFDS's 'Using custom data configuration' warning: every config here is made."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str)
                and record.msg.startswith("Using custom data configuration"))


def builder(manual_dir: str, frame_stride: int = 1, **kwargs) -> "RgbdCaptures":
  """The builder of the frames now in `manual_dir` (`make_config`); kwargs go to TFDS (data_dir,
  file_format)."""
  logger = logging.getLogger("absl")
  drop = _DropCustomConfigWarning()
  logger.addFilter(drop)
  try:
    return RgbdCaptures(config=make_config(manual_dir, frame_stride), **kwargs)
  finally:
    logger.removeFilter(drop)


class RgbdCaptures(local_builder.LocalBuilder, skip_registration=False):
  """Your own RGB-D frames from a manual folder (see the module docstring)."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: three layouts, folder-disjoint splits, striding."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  DATA_ORIGIN = "read from your folder, nothing is downloaded"
  BUILDER_CONFIGS = []

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict(local_builder.rgbd_features()))

  def _split_generators(self, dl_manager):
    splits = capture_layouts.scan(getattr(dl_manager, "_manual_dir", None),
                                  self.builder_config.frame_stride)
    return {name: self._generate_examples(frames) for name, frames in splits.items()}

  def _generate_examples(self, frames):
    for frame in frames:
      color, depth_mm = capture_layouts.read_frame(frame)
      yield f"{frame.sequence}/{frame.stem}", {
          "image": storage.encode_png(color),
          "depth": storage.encode_png(depth_mm),
          "scene": frame.sequence,
          "stem": frame.stem,
      }
