"""`diml`: the DIML/CVL RGB-D indoor dataset (Kinect v2), configs `lr` (512x288) and `hr`
(1344x756). Manual download only.

Features (`local_builder.rgbd_features`, shared with `synthetic_rgbd`):
  image  uint8 (H, W, 3)   the colour photo, stored as PNG bytes (the file's own bytes when it
                           already is 8-bit RGB, otherwise re-encoded as 8-bit RGB);
  depth  uint16 (H, W, 1)  `depth_filled`, millimetres, 0 = invalid, stored as the file's own
                           16-bit PNG bytes (declared uint16, so never truncated to 8 bits);
  scene  string            the scene folder name, e.g. '12. Livingroom';
  stem   string            the file stem shared by the colour and depth files.
Splits: `train`, `validation` (whole scenes held out of the download's train folder, chosen
deterministically: see `validation_scenes`), `test` (the download's test folder).

Bad input aborts the preparation: every pair is checked (pairing, PNG signature, header, bit
depth, size, truncation) before anything is written, and all problems are reported together in
one `ManualDataError`, one line per offending path. A PNG that still fails to decode while writing
aborts too. TFDS writes into a temporary `incomplete.*` folder and renames it only on success,
so a failed preparation never leaves half-written data behind. `depth_vi/` (an 8-bit
visualisation) and `depth_raw/` are never read.

Everything here runs without TensorFlow: PNG headers are parsed directly and OpenCV decodes.
"""

import dataclasses
import os
import struct
from typing import List, NamedTuple, Optional, Tuple

import cv2
import numpy as np
import tensorflow_datasets as tfds

from tfds_diml import capture_layouts
from tfds_diml import local_builder

HOMEPAGE = "https://dimlrgbd.github.io/"
SPLIT_FOLDERS = {"train": "train", "test": "test"}
COLOR_DIR, DEPTH_DIR = "color", "depth_filled"
COLOR_SUFFIX, DEPTH_SUFFIX = "_c.png", "_depth_filled.png"

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
DIML/CVL RGB-D indoor data must be downloaded by hand (no automatic download).
1. Go to the DIML/CVL RGB-D dataset site, https://dimlrgbd.github.io/ (the download links have
   moved several times: follow the site's current "Indoor" / sample-set links), and download the
   indoor data: the train and test archives, HR and/or LR.
2. Unpack them so that the manual directory (--config.manual_dir) looks exactly like this
   (scene folder names contain spaces and dots; keep them as they are):
     <manual_dir>/train/LR/<scene>/color/<stem>_c.png
     <manual_dir>/train/LR/<scene>/depth_filled/<stem>_depth_filled.png
     <manual_dir>/test/LR/<scene>/color/<stem>_c.png
     <manual_dir>/test/LR/<scene>/depth_filled/<stem>_depth_filled.png
   and the same under HR/ for the `diml/hr` config (1344x756; LR is 512x288).
   Other folders (depth_raw/, depth_vi/) may stay; they are never read.
3. Prepare: python -m dofjax.input_pipeline --dataset=diml/lr --manual_dir=<manual_dir>
   [--data_dir=<tfds data dir>]  (or just train: python -m dofjax.main with
   --config.manual_dir=<manual_dir>; it prepares on first use).
"""


class ManualDataError(Exception):
  """The manual download is missing, incomplete or has a bad file; the message names the path
  and the fix. (dofjax's input pipeline reports it as a user error.)"""


class Pair(NamedTuple):
  """One colour/depth pair found in the manual dir."""
  scene: str
  stem: str
  color_path: str
  depth_path: str
  color_is_rgb8: bool  # True if the colour file's bytes can be stored as they are.


@dataclasses.dataclass
class DimlConfig(tfds.core.BuilderConfig):
  """`resolution` is the folder name under train/ and test/: 'LR' or 'HR'."""
  resolution: str = "LR"


# ----------------------------------------------------------------------------------------------
# PNG checks without decoding.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_COLOUR_TYPE_NAMES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


class PngHeader(NamedTuple):
  width: int
  height: int
  bit_depth: int
  colour_type: int


def read_png_header(path: str) -> PngHeader:
  """Parses a PNG's IHDR and checks it ends with IEND. Raises ManualDataError naming `path`."""
  try:
    with open(path, "rb") as f:
      head = f.read(33)
      f.seek(0, os.SEEK_END)
      size = f.tell()
      f.seek(max(0, size - len(_PNG_IEND)))
      tail = f.read()
  except OSError as e:
    raise ManualDataError(f"{path}: cannot be read ({e.strerror}); check the file and its "
                          "permissions.") from e
  if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
    raise ManualDataError(f"{path}: not a readable PNG (bad signature or header); re-download or "
                          "re-extract this file.")
  width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
  if tail != _PNG_IEND:
    raise ManualDataError(f"{path}: truncated PNG (no IEND chunk at the end); re-download or "
                          "re-extract this file.")
  return PngHeader(width, height, bit_depth, colour_type)


def _describe(h: PngHeader) -> str:
  return f"{h.bit_depth}-bit {_COLOUR_TYPE_NAMES.get(h.colour_type, h.colour_type)}"


def check_pair(color_path: str, depth_path: str) -> bool:
  """Validates one pair from the PNG headers; returns whether the colour file is 8-bit RGB.

  Raises ManualDataError naming the offending path: unreadable/truncated PNG, colour not 8-bit,
  depth not 16-bit greyscale, or image and depth sizes that differ.
  """
  ch = read_png_header(color_path)
  dh = read_png_header(depth_path)
  if ch.bit_depth != 8 or ch.colour_type not in _COLOUR_TYPE_NAMES:
    raise ManualDataError(f"{color_path}: colour image is {_describe(ch)}; expected an 8-bit RGB "
                          "PNG.")
  if dh.bit_depth != 16 or dh.colour_type != 0:
    raise ManualDataError(
        f"{depth_path}: depth PNG is {_describe(dh)}; expected 16-bit greyscale millimetres "
        "(the depth_filled/ files; depth_vi/ is an 8-bit visualisation and cannot be used).")
  if (ch.width, ch.height) != (dh.width, dh.height):
    raise ManualDataError(f"{depth_path}: depth is {dh.width}x{dh.height} but its colour image "
                          f"{color_path} is {ch.width}x{ch.height}; the pair must have one size.")
  return ch.colour_type == 2


# ----------------------------------------------------------------------------------------------
# Scanning the manual dir.


def _listdir(path: str) -> List[str]:
  return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _pngs(folder: str) -> List[str]:
  return [n for n in _listdir(folder) if n.lower().endswith(".png")]



def _files_by_stem(folder, suffix, kind, problems):
  """{stem: path} of the PNGs in `folder` named <stem><suffix>; other PNG names are added to
  `problems` (a list of one-line messages)."""
  found = {}
  for name in _pngs(folder):
    if name.endswith(suffix):
      found[name[:-len(suffix)]] = os.path.join(folder, name)
    else:
      problems.append(f"{os.path.join(folder, name)}: unexpected name; {kind} files are named "
                      f"<stem>{suffix}. Remove or rename it.")
  return found

def scan_folder(root: str) -> Tuple[List[Pair], List[str]]:
  """Finds and checks every pair under root = <manual_dir>/<split>/<resolution>.

  Returns:
    (pairs sorted by scene then stem, problems): each problem is one line starting with the
    offending path. Only `color/` and `depth_filled/` are listed; nothing else is opened.
  """
  pairs, problems = [], []
  scenes = [s for s in _listdir(root) if os.path.isdir(os.path.join(root, s))]
  if not scenes:
    return [], [f"{root}: no scene folders found; expected "
                f"{root}/<scene>/{COLOR_DIR}/<stem>{COLOR_SUFFIX} (see the instructions)."]
  for scene in scenes:
    color_dir = os.path.join(root, scene, COLOR_DIR)
    depth_dir = os.path.join(root, scene, DEPTH_DIR)
    if not os.path.isdir(color_dir) or not os.path.isdir(depth_dir):
      missing = color_dir if not os.path.isdir(color_dir) else depth_dir
      problems.append(f"{missing}: folder missing; every scene needs {COLOR_DIR}/ and "
                      f"{DEPTH_DIR}/.")
      continue
    colors = _files_by_stem(color_dir, COLOR_SUFFIX, "colour", problems)
    depths = _files_by_stem(depth_dir, DEPTH_SUFFIX, "depth", problems)
    for stem in sorted(set(colors) | set(depths)):
      if stem not in depths:
        problems.append(f"{colors[stem]}: colour image has no depth partner; expected "
                        f"{os.path.join(depth_dir, stem + DEPTH_SUFFIX)}.")
        continue
      if stem not in colors:
        problems.append(f"{depths[stem]}: depth map has no colour partner; expected "
                        f"{os.path.join(color_dir, stem + COLOR_SUFFIX)}.")
        continue
      try:
        rgb8 = check_pair(colors[stem], depths[stem])
      except ManualDataError as e:
        problems.append(str(e))
        continue
      pairs.append(Pair(scene, stem, colors[stem], depths[stem], rgb8))
  if not pairs and not problems:
    problems.append(f"{root}: no colour/depth pairs found (see the instructions).")
  return pairs, problems


def validation_scenes(train_scenes) -> List[str]:
  """The train scenes held out as `validation`: a fixed pseudo-random ~10% (md5 of the name;
  `capture_layouts.held_out_scenes`). At least one scene when there are two or more, never all
  of them; independent of file order."""
  return capture_layouts.held_out_scenes(train_scenes)


def check_manual_dir(manual_dir: Optional[str]) -> str:
  """Returns manual_dir if it exists and is not empty; else ManualDataError with the
  instructions."""
  if not manual_dir:
    raise ManualDataError("DIML needs a manual download and --config.manual_dir pointing at it.\n"
                          + MANUAL_DOWNLOAD_INSTRUCTIONS)
  manual_dir = os.fspath(manual_dir)
  if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
    raise ManualDataError(f"{manual_dir}: DIML manual directory is missing or empty.\n"
                          + MANUAL_DOWNLOAD_INSTRUCTIONS)
  return manual_dir


def scan_manual_dir(manual_dir: str, resolution: str) -> dict:
  """{'train': [...], 'validation': [...], 'test': [...]} lists of Pair; ManualDataError on any
  problem (all problems listed, one line per path)."""
  manual_dir = check_manual_dir(manual_dir)
  found, problems = {}, []
  for split, folder in SPLIT_FOLDERS.items():
    root = os.path.join(manual_dir, folder, resolution)
    if not os.path.isdir(root):
      problems.append(f"{root}: folder missing (see the layout in the instructions).")
      continue
    found[split], split_problems = scan_folder(root)
    problems += split_problems
  if problems:
    raise ManualDataError(capture_layouts.problem_report(
        f"DIML under {manual_dir}", problems, "Fix or remove these files",
        "(Expected layout: see the README section 'Data: DIML indoor and the synthetic "
        "scenes'.)"))
  held_out = set(validation_scenes(p.scene for p in found["train"]))
  if not held_out:
    root = os.path.join(manual_dir, SPLIT_FOLDERS["train"], resolution)
    raise ManualDataError(f"{root}: only one train scene; the validation split is made of whole "
                          "train scenes held out, so at least two scene folders are needed (is the "
                          "download complete?).")
  return {
      "train": [p for p in found["train"] if p.scene not in held_out],
      "validation": [p for p in found["train"] if p.scene in held_out],
      "test": found["test"],
  }


# ----------------------------------------------------------------------------------------------
# Decoding (used while writing; the checks above already passed).


def read_color_png_bytes(pair: Pair) -> bytes:
  """PNG bytes of the colour image as 8-bit RGB; ManualDataError naming the file if undecodable."""
  with open(pair.color_path, "rb") as f:
    data = f.read()
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # BGR, 8-bit.
  if image is None:
    raise ManualDataError(f"{pair.color_path}: unreadable or corrupt PNG; re-download or "
                          "re-extract this file.")
  if pair.color_is_rgb8:
    return data
  ok, buf = cv2.imencode(".png", image)
  if not ok:
    raise ManualDataError(f"{pair.color_path}: could not be re-encoded as RGB PNG.")
  return buf.tobytes()


def read_depth_png_bytes(pair: Pair) -> bytes:
  """The depth file's bytes after checking they decode to uint16 (H, W); ManualDataError if not."""
  with open(pair.depth_path, "rb") as f:
    data = f.read()
  depth = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
  if depth is None or depth.dtype != np.uint16 or depth.ndim != 2:
    raise ManualDataError(f"{pair.depth_path}: unreadable, corrupt or not a 16-bit greyscale PNG; "
                          "re-download or re-extract this file.")
  return data


class Diml(local_builder.LocalBuilder):
  """DIML/CVL RGB-D indoor: colour + depth_filled (millimetres)."""

  name = "diml"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: color + depth_filled, scene-held-out validation."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  DATA_ORIGIN = "read from your manual download, nothing is downloaded"
  BUILDER_CONFIGS = [
      DimlConfig(name="lr", description="LR: 512x288 colour and depth.", resolution="LR"),
      DimlConfig(name="hr", description="HR: 1344x756 colour and depth.", resolution="HR"),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict(local_builder.rgbd_features()),
        homepage=HOMEPAGE,
    )

  def _split_generators(self, dl_manager):
    manual_dir = getattr(dl_manager, "_manual_dir", None)
    splits = scan_manual_dir(manual_dir, self.builder_config.resolution)
    return {name: self._generate_examples(pairs) for name, pairs in splits.items()}

  def _generate_examples(self, pairs):
    for pair in pairs:
      yield f"{pair.scene}/{pair.stem}", {
          "image": read_color_png_bytes(pair),
          "depth": read_depth_png_bytes(pair),
          "scene": pair.scene,
          "stem": pair.stem,
      }
