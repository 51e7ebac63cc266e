"""Your own RGB-D captures on disk: the folder layouts dofjax reads, how frames pair up, how raw
depth values become metres, the splits and the frame striding, and every check before anything
is written. Used by the `rgbd_captures` builder (`tfds_diml.rgbd_captures`).

A *sequence* is one folder of frames in one of these layouts (`LAYOUTS`, detected per folder):
  rgb_depth_mm  <name>_rgb.png + <name>_depth_mm.png                  (depth: millimetres)
  tum           rgb/ + depth/ (TUM RGB-D, ORB-SLAM): pairs from associations.txt (or any
                associations*.txt), else rgb.txt + depth.txt matched by timestamp (within
                MAX_TIMESTAMP_GAP_S), else files of the same name in rgb/ and depth/
                                                                       (depth: value / 5000 m)
  7scenes       frame-XXXXXX.color.png|jpg + frame-XXXXXX.depth.png   (7-Scenes, 3DMatch; mm)
Raw depth 0 and 65535 are invalid in every layout. When a folder's depth unit is not its
layout's default, put a file DEPTH_SCALE_FILE in it (or in any folder above it, up to the
manual folder; the nearest wins) holding one number: the stored depth units per metre (1000 for
millimetres, 5000 for TUM, 4000 for 0.25 mm ...).

Splits keep whole folders apart, never frames of one sequence on two sides:
  - with train/ (and optionally validation/, test/) folders under the manual folder, each is
    its split;
  - otherwise everything is train; `validation` is a fixed pseudo-random ~10% of the top-level
    folders (the scenes; at least one, never all) chosen by a hash of their names, and without a
    test/ folder the `test` split holds the same held-out frames as `validation`.
A top-level folder (a scene) is held out whole, with every sequence below it.
`frame_stride` k keeps every k-th frame of each sequence (consecutive video frames are near
duplicates).

Every frame is decoded and checked before anything is written, and every problem is listed at
once in one CaptureError: a colour file without depth partner (or the reverse), an unreadable
file, colour that is not 8-bit, depth that is not 16-bit single-channel (an 8-bit depth image
has lost its range), colour and depth of different sizes, a bad DEPTH_SCALE_FILE, and a
sequence whose median valid depth is outside PLAUSIBLE_MEDIAN_M (a wrong depth scale).

Needs neither TFDS nor dofjax; OpenCV decodes.
"""

import bisect
import hashlib
import math
import os
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from tfds_diml import storage

LAYOUTS = ("rgb_depth_mm", "tum", "7scenes")
UNITS_PER_METRE = {"rgb_depth_mm": 1000.0, "tum": 5000.0, "7scenes": 1000.0}
DEPTH_SCALE_FILE = "depth_units_per_metre.txt"
SPLIT_FOLDERS = ("train", "validation", "test")
VALIDATION_FRACTION = 0.1   # Of the scenes (at least one scene when there are two).
PLAUSIBLE_MEDIAN_M = (0.1, 20.0)
MAX_TIMESTAMP_GAP_S = 0.02   # TUM's associate.py default.
INVALID_RAW = (0, 65535)
MAX_PROBLEMS_LISTED = 20

RGB_SUFFIX, DEPTH_MM_SUFFIX = "_rgb.png", "_depth_mm.png"
_SEVEN_COLOR = re.compile(r"^(frame-\d+)\.color\.(png|jpg|jpeg)$", re.IGNORECASE)
_SEVEN_DEPTH = re.compile(r"^(frame-\d+)\.depth\.png$", re.IGNORECASE)
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class CaptureError(Exception):
  """The captures folder is missing, empty or has bad files; the message lists every problem
  (one line per path) and the fix. (dofjax's input pipeline reports it as a user error.)"""


class Frame(NamedTuple):
  """One colour/depth pair. `sequence` is its folder relative to the manual folder ('.' for
  the manual folder itself); depth metres = stored value / units_per_metre."""
  sequence: str
  stem: str
  color_path: str
  depth_path: str
  units_per_metre: float


# ----------------------------------------------------------------------------------------------
# Layouts: which folder is a sequence, and its pairs.


def _files(folder: str) -> List[str]:
  return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))


def detect_layout(folder: str) -> Optional[str]:
  """The layout of the frames directly in `folder` (one of LAYOUTS), or None if it holds none."""
  if os.path.isdir(os.path.join(folder, "rgb")) and os.path.isdir(os.path.join(folder, "depth")):
    return "tum"
  names = _files(folder)
  if any(n.endswith(RGB_SUFFIX) or n.endswith(DEPTH_MM_SUFFIX) for n in names):
    return "rgb_depth_mm"
  if any(_SEVEN_COLOR.match(n) or _SEVEN_DEPTH.match(n) for n in names):
    return "7scenes"
  return None


def _pair_by_key(colors: Dict[str, str], depths: Dict[str, str], problems: List[str]):
  """[(stem, colour, depth)] for the stems in both dicts; a stem in one only is a problem."""
  pairs = []
  for stem in sorted(set(colors) | set(depths)):
    if stem not in depths:
      problems.append(f"{colors[stem]}: colour image has no depth partner; add it or move the "
                      "file out of the folder.")
    elif stem not in colors:
      problems.append(f"{depths[stem]}: depth map has no colour partner; add it or move the "
                      "file out of the folder.")
    else:
      pairs.append((stem, colors[stem], depths[stem]))
  return pairs


def _rgb_depth_mm_pairs(folder, problems):
  names = _files(folder)
  colors = {n[:-len(RGB_SUFFIX)]: os.path.join(folder, n) for n in names if n.endswith(RGB_SUFFIX)}
  depths = {n[:-len(DEPTH_MM_SUFFIX)]: os.path.join(folder, n) for n in names
            if n.endswith(DEPTH_MM_SUFFIX)}
  return _pair_by_key(colors, depths, problems)


def _seven_scenes_pairs(folder, problems):
  colors, depths = {}, {}
  for n in _files(folder):
    c, d = _SEVEN_COLOR.match(n), _SEVEN_DEPTH.match(n)
    if c:
      if c.group(1) in colors:
        problems.append(f"{os.path.join(folder, n)}: a second colour image of {c.group(1)}; keep "
                        "one of .color.png / .color.jpg.")
      colors[c.group(1)] = os.path.join(folder, n)
    elif d:
      depths[d.group(1)] = os.path.join(folder, n)
  return _pair_by_key(colors, depths, problems)


def _read_list(path, problems) -> List[Tuple[float, str]]:
  """[(timestamp, relative file)] of a TUM rgb.txt / depth.txt ('#' lines are comments)."""
  entries = []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      parts = line.split()
      try:
        entries.append((float(parts[0]), parts[1]))
      except (ValueError, IndexError):
        problems.append(f"{path}:{number}: expected 'timestamp filename', got {line!r}.")
  return entries


def match_timestamps(rgb, depth, max_gap=MAX_TIMESTAMP_GAP_S):
  """Pairs two [(timestamp s, file)] lists as TUM's associate.py does: closest timestamps
  first, each entry used once, gaps above max_gap dropped. Returns [(rgb entry, depth entry)]
  sorted by the colour timestamp."""
  order = sorted(range(len(depth)), key=lambda j: depth[j][0])
  times = [depth[j][0] for j in order]
  candidates = []
  for i, (t, _) in enumerate(rgb):
    for k in range(bisect.bisect_left(times, t - max_gap), bisect.bisect_right(times, t + max_gap)):
      candidates.append((abs(t - times[k]), i, order[k]))
  candidates.sort()
  used_rgb, used_depth, pairs = set(), set(), []
  for _, i, j in candidates:
    if i not in used_rgb and j not in used_depth:
      used_rgb.add(i)
      used_depth.add(j)
      pairs.append((rgb[i], depth[j]))
  return sorted(pairs)


def _tum_pairs(folder, problems):
  lists = [n for n in _files(folder) if n.startswith("associations") and n.endswith(".txt")]
  pairs = []
  if lists:
    path = os.path.join(folder, lists[0])
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
          continue
        files = parts[1::2]
        if len(parts) != 4 or not any(p.startswith("rgb") for p in files) or not any(
            p.startswith("depth") for p in files):
          problems.append(f"{path}:{number}: expected 'time rgb/<file> time depth/<file>', got "
                          f"{line.strip()!r}.")
          continue
        color = files[0] if files[0].startswith("rgb") else files[1]
        depth = files[1] if color is files[0] else files[0]
        pairs.append((color, depth))
  elif os.path.isfile(os.path.join(folder, "rgb.txt")) and os.path.isfile(
      os.path.join(folder, "depth.txt")):
    rgb = _read_list(os.path.join(folder, "rgb.txt"), problems)
    depth = _read_list(os.path.join(folder, "depth.txt"), problems)
    pairs = [(a[1], b[1]) for a, b in match_timestamps(rgb, depth)]
    if not pairs and rgb and depth:
      problems.append(f"{folder}: no rgb.txt timestamp is within {MAX_TIMESTAMP_GAP_S} s of a "
                      "depth.txt one; make an associations.txt (TUM's associate.py).")
  else:
    def by_stem(sub):
      return {os.path.splitext(n)[0]: os.path.join(sub, n)
              for n in _files(os.path.join(folder, sub)) if n.lower().endswith(_IMAGE_EXTENSIONS)}
    return _pair_by_key({k: os.path.join(folder, v) for k, v in by_stem("rgb").items()},
                        {k: os.path.join(folder, v) for k, v in by_stem("depth").items()},
                        problems)
  out = []
  for color, depth in pairs:
    color_path, depth_path = os.path.join(folder, color), os.path.join(folder, depth)
    missing = [p for p in (color_path, depth_path) if not os.path.isfile(p)]
    for p in missing:
      problems.append(f"{p}: listed in {folder}'s frame lists but missing; restore it or remove "
                      "its line.")
    if not missing:
      out.append((os.path.splitext(os.path.basename(color))[0], color_path, depth_path))
  return out


_PAIRS = {"rgb_depth_mm": _rgb_depth_mm_pairs, "tum": _tum_pairs, "7scenes": _seven_scenes_pairs}


def units_per_metre(folder: str, root: str, layout: str, problems: List[str]) -> float:
  """The depth units per metre of `folder`: the nearest DEPTH_SCALE_FILE in it or above it (up
  to `root`), else the layout's default (UNITS_PER_METRE). A bad file is a problem."""
  here = os.path.abspath(folder)
  top = os.path.abspath(root)
  while True:
    path = os.path.join(here, DEPTH_SCALE_FILE)
    if os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        text = f.read().strip()
      try:
        value = float(text)
      except ValueError:
        value = float("nan")
      if not (math.isfinite(value) and value > 0):
        problems.append(f"{path}: holds {text[:40]!r}; it must hold one positive number, the "
                        "stored depth units per metre (1000 for millimetres, 5000 for TUM).")
        return UNITS_PER_METRE[layout]
      return value
    if here == top or os.path.dirname(here) == here:
      return UNITS_PER_METRE[layout]
    here = os.path.dirname(here)


def find_sequences(root: str) -> List[Tuple[str, str]]:
  """[(folder, layout)] of every sequence at or below `root`, sorted; a sequence's own
  subfolders (e.g. TUM's rgb/, depth/) are not searched further."""
  found = []
  for here, dirs, _ in os.walk(root):
    dirs.sort()
    layout = detect_layout(here)
    if layout is not None:
      found.append((here, layout))
      dirs[:] = []
  return found


# ----------------------------------------------------------------------------------------------
# Checks and decoding.


def read_color(path: str) -> np.ndarray:
  """uint8 (H, W, 3) RGB of an 8-bit colour PNG/JPEG (alpha dropped); CaptureError naming the
  file if it cannot be read or is not 8-bit colour."""
  raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
  if raw is None:
    raise CaptureError(f"{path}: unreadable or corrupt image; re-export or remove this frame.")
  if raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[-1] not in (3, 4):
    raise CaptureError(f"{path}: colour image is {raw.dtype} with shape {raw.shape}; expected "
                       "8-bit RGB.")
  return np.ascontiguousarray(raw[..., 2::-1])


def read_depth_metres(path: str, units: float) -> np.ndarray:
  """float32 (H, W) metres (0 = invalid: raw 0 or 65535) of a 16-bit single-channel depth PNG
  with `units` per metre; CaptureError naming the file otherwise (an 8-bit depth image has lost
  its range and is refused)."""
  raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
  if raw is None:
    raise CaptureError(f"{path}: unreadable or corrupt depth PNG; re-export or remove this "
                       "frame.")
  if raw.dtype != np.uint16 or raw.ndim != 2:
    raise CaptureError(f"{path}: depth is {raw.dtype} with shape {raw.shape}; expected a 16-bit "
                       "single-channel PNG (8-bit depth has lost its range: export the raw "
                       "16-bit depth).")
  metres = raw.astype(np.float64) / units
  return np.where(np.isin(raw, INVALID_RAW), 0.0, metres).astype(np.float32)


def read_frame(frame: Frame) -> Tuple[np.ndarray, np.ndarray]:
  """(uint8 (H, W, 3) RGB, uint16 (H, W, 1) millimetres as stored by the builders, 0 =
  invalid) of one frame; CaptureError if a file is bad or the two sizes differ."""
  color = read_color(frame.color_path)
  depth = read_depth_metres(frame.depth_path, frame.units_per_metre)
  if color.shape[:2] != depth.shape:
    raise CaptureError(f"{frame.depth_path}: depth is {depth.shape[1]}x{depth.shape[0]} but its "
                       f"colour image {frame.color_path} is {color.shape[1]}x{color.shape[0]}; "
                       "depth must be registered to the colour image at the same size.")
  return color, storage.metres_to_millimetres(depth)[..., None]


def _sequence_frames(folder, layout, root, stride, problems) -> List[Frame]:
  """The kept frames of one sequence (every `stride`-th), each decoded and checked; problems
  (also an implausible median depth) are appended to `problems`."""
  units = units_per_metre(folder, root, layout, problems)
  relative = os.path.relpath(folder, root).replace(os.sep, "/")
  pairs = _PAIRS[layout](folder, problems)[::stride]
  frames, medians = [], []
  for stem, color_path, depth_path in pairs:
    frame = Frame(relative, stem, color_path, depth_path, units)
    try:
      _, depth_mm = read_frame(frame)
    except CaptureError as e:
      problems.append(str(e))
      continue
    valid = depth_mm[depth_mm > 0]
    if valid.size:
      medians.append(float(np.median(valid)) / 1000.0)
    frames.append(frame)
  if medians:
    median = float(np.median(medians))
    low, high = PLAUSIBLE_MEDIAN_M
    if not low <= median <= high:
      fix = units * median / 2.0
      problems.append(
          f"{folder}: median depth {median:.3g} m at {units:g} units per metre is implausible "
          f"for RGB-D frames (expected {low}-{high} m); the depth unit is wrong: put the right "
          f"units per metre in {os.path.join(folder, DEPTH_SCALE_FILE)} (e.g. {fix:.4g} would "
          "put the median at 2 m).")
  return frames


def held_out_scenes(scenes) -> List[str]:
  """The scenes held out as validation (here the top-level folders; DIML's train scenes too): a
  fixed pseudo-random ~10% (md5 of the name), at least one when there are two or more, never
  all; independent of order."""
  scenes = sorted(set(scenes))
  if len(scenes) < 2:
    return []
  count = min(len(scenes) - 1, max(1, round(VALIDATION_FRACTION * len(scenes))))
  return sorted(sorted(scenes, key=lambda s: hashlib.md5(s.encode("utf-8")).hexdigest())[:count])


def _scene(frame: Frame) -> str:
  """The scene of a frame: the first folder of its sequence below its split's folder."""
  return frame.sequence.split("/")[0]


def problem_report(what: str, problems: List[str], fix: str, footer: str) -> str:
  """The one message of a preparation that found `problems` (one line each, the first
  MAX_PROBLEMS_LISTED shown): '<what>: N bad input(s); preparation aborted, nothing written.
  <fix>:' then the lines, then `footer`. Shared by the manual-folder builders."""
  shown = problems[:MAX_PROBLEMS_LISTED]
  more = len(problems) - len(shown)
  return (f"{what}: {len(problems)} bad input(s); preparation aborted, nothing written. {fix}:"
          "\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more." if more else "")
          + "\n" + footer)


def _report(root: str, problems: List[str]) -> CaptureError:
  return CaptureError(problem_report(f"RGB-D captures under {root}", problems,
                                     "Fix or remove these", "(Layouts and options: "
                                     "docs/own-data.md.)"))


def scan(root: str, frame_stride: int = 1) -> Dict[str, List[Frame]]:
  """{'train': [...], 'validation': [...], 'test': [...]} Frames of the captures under `root`
  (see the module docstring), every frame checked; CaptureError listing every problem at once."""
  if not root or not os.path.isdir(root) or not os.listdir(root):
    raise CaptureError(f"{root!r}: the captures folder is missing or empty; pass a folder of "
                       "RGB-D frames with --config.manual_dir (layouts: docs/own-data.md).")
  if not isinstance(frame_stride, int) or frame_stride < 1:
    raise CaptureError(f"frame_stride={frame_stride!r} must be a positive integer (1 keeps every "
                       "frame); set --config.captures_frame_stride=...")
  explicit = [s for s in SPLIT_FOLDERS if os.path.isdir(os.path.join(root, s))]
  problems, found = [], {}
  if explicit and "train" not in explicit:
    problems.append(f"{os.path.join(root, 'train')}: folder missing; with "
                    f"{'/, '.join(explicit)}/ present, the training frames go in train/.")
  for split in explicit or ["train"]:
    split_root = os.path.join(root, split) if explicit else root
    sequences = find_sequences(split_root)
    if not sequences:
      problems.append(f"{split_root}: no RGB-D frames found in any layout (<name>{RGB_SUFFIX} + "
                      f"<name>{DEPTH_MM_SUFFIX}; rgb/ + depth/ (TUM); frame-XXXXXX.color.png + "
                      "frame-XXXXXX.depth.png (7-Scenes)).")
    found[split] = [f for folder, layout in sequences
                    for f in _sequence_frames(folder, layout, split_root, frame_stride, problems)]
  if problems:
    raise _report(root, problems)
  if "validation" not in found:
    held = set(held_out_scenes(_scene(f) for f in found["train"]))
    if not held:
      raise CaptureError(
          f"{os.path.join(root, 'train') if explicit else root}: all frames are in one folder, "
          "so no whole folder can be held out for validation; put each recording (or room) in "
          "its own subfolder (at least two), or add a validation/ folder beside train/.")
    found["validation"] = [f for f in found["train"] if _scene(f) in held]
    found["train"] = [f for f in found["train"] if _scene(f) not in held]
  found.setdefault("test", found["validation"])
  if explicit:  # Name each sequence by its path from the manual folder.
    found = {split: [f._replace(sequence=f"{split}/{f.sequence}") for f in frames]
             for split, frames in found.items()}
  return found


def fingerprint(root: str) -> str:
  """A short hash of every file's path, size and modification time under `root`: it changes
  when frames are added, removed or replaced (the builder's cache key)."""
  h = hashlib.sha256()
  for here, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(here, name)
      st = os.stat(path)
      h.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
  return h.hexdigest()[:12]
