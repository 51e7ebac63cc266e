"""Depth-of-field gallery on a real photo with measured depth: docs/gallery/.

  python scripts/gallery.py [--out=docs/gallery]

The photo is Middlebury 2014 "Motorcycle" (the left view at quarter resolution, 741x500, with its
ground-truth disparity) as bundled by scikit-image (`skimage.data.stereo_motorcycle()`; install
with `pip install -e .[test]`: scikit-image is a test and tooling dependency, not a run-time one).
Each picture is made by the photo CLI, `python -m dofjax.render`, from the photo and a 16-bit depth
PNG written here; the commands are printed.
"""

import argparse
import os
import sys
import tempfile

import cv2
import numpy as np

from dofjax import errors
from dofjax import render
from dofjax.real_frames import load_motorcycle  # pylint: disable=unused-import

BIKE_PX = (420, 200)       # The tank, ~2.3 m.
SHELVES_PX = (600, 80)     # Boxes on the shelf behind, ~3.6 m.

# (name, focus pixel, extra CLI flags). Blur scales are in px per 1/m of disparity off focus.
SHOTS = (
    ("bike_wide", BIKE_PX, ["--blur_scale_px=45"]),
    ("bike_narrow", BIKE_PX, ["--blur_scale_px=15"]),
    ("shelves_wide", SHELVES_PX, ["--blur_scale_px=45"]),
    ("bike_hexagon", BIKE_PX, ["--blur_scale_px=45", "--aperture_blades=6",
                               "--aperture_rotation_deg=15"]),
    ("bike_wide_nohighlights", BIKE_PX, ["--blur_scale_px=45", "--nohighlights"]),
)


def main(argv=None):
  """Writes the gallery's JPEGs (input, depth, one per shot) to --out; returns 0."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "gallery"))
  args = p.parse_args((sys.argv if argv is None else argv)[1:])
  if not os.path.isdir(args.out):
    raise errors.UserError(f"--out={args.out!r} is not a folder; create it first.")
  image, depth = load_motorcycle()
  with tempfile.TemporaryDirectory() as tmp:
    photo, depth_png = os.path.join(tmp, "motorcycle.png"), os.path.join(tmp, "depth_mm.png")
    render.write_image(photo, image)
    cv2.imwrite(depth_png, np.round(depth * 1000.0).astype(np.uint16))
    render.write_image(os.path.join(args.out, "input.jpg"), image)
    for name, (x, y), flags in SHOTS:
      argv = ["render", photo, f"--depth={depth_png}", f"--focus_px={x},{y}",
              f"--output={os.path.join(args.out, name + '.jpg')}", *flags]
      if name == "bike_wide":
        argv.append(f"--depth_vis={os.path.join(args.out, 'depth.jpg')}")
      print("python -m dofjax." + " ".join(argv), flush=True)
      render.main(argv)
  return 0


if __name__ == "__main__":
  errors.run_cli(main)
