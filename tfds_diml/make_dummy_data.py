"""Writes DIML-layout trees of real PNGs (8-bit RGB colour, 16-bit millimetre depth).

    python -m tfds_diml.make_dummy_data [--out=tfds_diml/dummy_data]

regenerates the checked-in `dummy_data/` tree that drives the DIML tests (tiny 16:9 frames,
LR 32x18 and HR 48x27, content rendered by `tfds_diml.scenes`). `write_tree` is also used by the
tests (to build broken copies) and by the data benchmark (DIML-HR-sized frames). Output is
deterministic.

Layout written (as the real download): <root>/{train,test}/{LR,HR}/<scene>/
  color/<stem>_c.png, depth_filled/<stem>_depth_filled.png, depth_raw/<stem>_depth_raw.png,
  depth_vi/<stem>_depth_vi.png (an 8-bit visualisation, which the builder must never read).
"""

import argparse
import os
import sys
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from tfds_diml import scenes
from tfds_diml import storage

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dummy_data")
# Scene folder names with spaces and dots, as in DIML. (split -> scene -> number of frames)
DUMMY_LAYOUT = {
    "train": {"12. Livingroom": 2, "3. Office room": 2, "27. Kitchen 2.1": 2, "5. Bedroom": 2},
    "test": {"1. Study room": 2, "30. Lab": 1},
}
DUMMY_SIZES = {"LR": (18, 32), "HR": (27, 48)}  # (height, width): 16:9 like 288x512, 756x1344.


def write_png(path: str, array: np.ndarray) -> None:
  """Writes uint8 RGB (H, W, 3) or uint16/uint8 grey (H, W) as PNG (creates folders)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(storage.encode_png(array))


def render_frame(seed: int, height: int, width: int, render_height: int = 0):
  """(colour uint8 (H, W, 3), depth_filled uint16 mm (H, W), depth_raw uint16 mm (H, W)).

  Rendered at render_height rows (0 = height) and resized up, so large frames stay cheap.
  depth_filled has one 0 (top-left) and one 65500 (bottom-right) pixel, both invalid codes;
  depth_raw has holes (0) and a few saturated (65535) pixels, as a Kinect's raw depth does.
  """
  rh = render_height or height
  rw = max(1, round(rh * width / height))
  scene = scenes.random_scene(seed)
  rgb, depth_m = scenes.render_pinhole(scene, rh, rw)
  rgb = np.round(rgb * 255).astype(np.uint8)
  depth_mm = storage.metres_to_millimetres(depth_m)
  if (rh, rw) != (height, width):
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    depth_mm = cv2.resize(depth_mm, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    noise = np.random.default_rng(seed).normal(0, 2.0, rgb.shape)  # Sensor-like texture.
    rgb = np.clip(rgb + noise, 0, 255).astype(np.uint8)
  # Exercise the invalid codes in depth_filled too: one 0 and one >= 65500 pixel.
  depth_mm[0, 0] = 0
  depth_mm[-1, -1] = 65500
  rng = np.random.default_rng([seed, 5])
  raw = depth_mm.copy()
  raw[rng.random(raw.shape) < 0.1] = 0
  raw[rng.random(raw.shape) < 0.01] = 65535
  return rgb, depth_mm, raw


def stem_for(split: str, scene_index: int, frame: int) -> str:
  """A DIML-like file stem, e.g. 'in_0_160224_154630'."""
  return f"in_{scene_index}_1602{24 + frame:02d}_15{scene_index:02d}{30 + frame:02d}" + (
      "" if split == "train" else "_t")


def write_tree(root: str, layout: Dict[str, Dict[str, int]] = None,
               sizes: Dict[str, Tuple[int, int]] = None, *, render_height: int = 0,
               extras: bool = True, seed: int = 0) -> Sequence[str]:
  """Writes a DIML-layout tree under root; returns the colour file paths written.

  Args:
    root: the manual dir to create.
    layout: split -> scene folder name -> number of frames (default DUMMY_LAYOUT).
    sizes: resolution folder ('LR'/'HR') -> (height, width) (default DUMMY_SIZES).
    render_height: render at this many rows and resize (0 = at full size).
    extras: also write depth_raw/ and depth_vi/ (never read by the builder).
    seed: offsets the scene seeds.
  """
  layout = DUMMY_LAYOUT if layout is None else layout
  sizes = DUMMY_SIZES if sizes is None else sizes
  written = []
  for split, scene_frames in layout.items():
    for scene_index, (scene, frames) in enumerate(sorted(scene_frames.items())):
      for frame in range(frames):
        stem = stem_for(split, scene_index, frame)
        frame_seed = seed * 100_000 + (0 if split == "train" else 50_000) + scene_index * 100
        for resolution, (h, w) in sorted(sizes.items()):
          rgb, filled, raw = render_frame(frame_seed + frame, h, w, render_height)
          base = os.path.join(root, split, resolution, scene)
          color_path = os.path.join(base, "color", f"{stem}_c.png")
          write_png(color_path, rgb)
          write_png(os.path.join(base, "depth_filled", f"{stem}_depth_filled.png"), filled)
          if extras:
            write_png(os.path.join(base, "depth_raw", f"{stem}_depth_raw.png"), raw)
            vis = cv2.applyColorMap((255 - np.minimum(filled // 40, 255)).astype(np.uint8),
                                    cv2.COLORMAP_JET)
            write_png(os.path.join(base, "depth_vi", f"{stem}_depth_vi.png"), vis[..., ::-1])
          written.append(color_path)
  return written


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m tfds_diml.make_dummy_data")
  parser.add_argument("--out", default=DEFAULT_OUT, help="root of the tree to (re)write")
  args = parser.parse_args((sys.argv if argv is None else argv)[1:])
  paths = write_tree(args.out)
  print(f"wrote {len(paths)} colour images (and their depth maps) under {args.out}")


if __name__ == "__main__":
  main()
