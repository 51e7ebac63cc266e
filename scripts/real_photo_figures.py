"""Figures of the renderer on real RGB-D frames: the share of pixels >= 250 (sRGB, any channel)
in the input, in the render and in the `--nohighlights` render.

  python scripts/real_photo_figures.py FOLDER [FOLDER ...] [--motorcycle]

FOLDER holds <name>_rgb.png and <name>_depth_mm.png pairs (as `python -m dofjax.real_frames`
writes them); each pair is rendered with `python -m dofjax.render PHOTO --depth=D --f_number=1.4`
focused at the frame's centre (or at FOCUS[name]), once with and once without highlight
recovery. --motorcycle adds scikit-image's Middlebury Motorcycle.
"""

import argparse
import os
import tempfile

import cv2
import numpy as np

from dofjax import real_frames
from dofjax import render

FOCUS = {"tum_fr2_desk_1": (465, 325)}   # On its white desk (brightest input pixel 247).


def clipped_share(path):
  """Percentage of pixels with some channel >= 250 in an 8-bit image file."""
  img = cv2.imread(path, cv2.IMREAD_COLOR)
  return 100.0 * float((img.max(axis=-1) >= 250).mean())


def figures(name, rgb, depth, out_dir):
  """(input %, render %, --nohighlights render %) for one pair of files."""
  h, w = cv2.imread(rgb).shape[:2]
  x, y = FOCUS.get(name, (w // 2, h // 2))
  shares = [clipped_share(rgb)]
  for extra in ([], ["--nohighlights"]):
    out = os.path.join(out_dir, f"{name}{''.join(extra)}.png")
    render.main(["render", rgb, f"--depth={depth}", f"--focus_px={x},{y}", "--f_number=1.4",
                 f"--output={out}", *extra])
    shares.append(clipped_share(out))
  return shares


def main(argv=None):
  """Prints the table for the folders' pairs (and the Motorcycle with --motorcycle)."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("folders", nargs="*", help="folders of <name>_rgb.png + <name>_depth_mm.png")
  p.add_argument("--motorcycle", action="store_true",
                 help="also scikit-image's Middlebury Motorcycle")
  args = p.parse_args(argv)
  if not args.folders and not args.motorcycle:
    p.error("give at least one folder of RGB-D pairs, or --motorcycle")
  out_dir = tempfile.mkdtemp(prefix="dofjax-figures-")
  pairs = []
  if args.motorcycle:
    image, depth = real_frames.load_motorcycle()
    pairs.append(("motorcycle", *real_frames.write_pair(out_dir, "motorcycle", image, depth)))
  for folder in args.folders:
    pairs += [(n, r, d) for n, r, d in real_frames.find_pairs(folder)]
  print("| frame | input % >= 250 | render % | --nohighlights % |\n|---|---|---|---|")
  for name, rgb, depth in pairs:
    shares = figures(name, rgb, depth, out_dir)
    print(f"| {name} | " + " | ".join(f"{s:.1f}" for s in shares) + " |", flush=True)
  print(f"(renders in {out_dir})")


if __name__ == "__main__":
  main()
