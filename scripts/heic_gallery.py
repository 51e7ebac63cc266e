"""Gallery pictures of a HEIC portrait rendered from its own depth, at a reduced size.

  python scripts/heic_gallery.py pug.heic OUT_PREFIX [--long_side=1008] [--focus_px=x,y]

Reads the photo and its depth image (`photo_io.read_heic`), shrinks both to --long_side px,
renders at f/2 with the photo's EXIF lens (`render.lens_for`) focused at --focus_px (full-size
pixels), and writes OUT_PREFIX_input.jpg, _depth.jpg and _f2.jpg. pug.heic is pillow-heif's test
image: `pip download pillow-heif --no-binary :all: --no-deps`, then
tests/images/heif_other/pug.heic in the archive.
"""

import argparse

import cv2

from dofjax import depth as depth_lib
from dofjax import photo_io
from dofjax import render


def main():
  p = argparse.ArgumentParser()
  p.add_argument("heic")
  p.add_argument("prefix")
  p.add_argument("--long_side", type=int, default=1008)
  p.add_argument("--focus_px", default="2000,1900")
  args = p.parse_args()
  image, _, depth = photo_io.read_heic(args.heic)
  h, w = depth.shape
  scale = args.long_side / max(h, w)
  sw, sh = round(w * scale), round(h * scale)
  small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
  small_depth = depth_lib.resize_in_disparity(depth, sh, sw)
  x, y = (int(v) for v in args.focus_px.split(","))
  focal, sensor, source = render.lens_for(args.heic)
  focus = render.focus_from_pixel(depth, x, y)
  out, _ = render.render_photo(small, small_depth, focus_m=focus, f_number=2.0,
                               focal_length_mm=focal, sensor_width_mm=sensor)
  render.write_image(args.prefix + "_input.jpg", small)
  render.write_image(args.prefix + "_depth.jpg", render.depth_visualisation(small_depth) / 255.0)
  render.write_image(args.prefix + "_f2.jpg", out)
  print(f"focus {focus:.2f} m, lens {focal:g} mm on {sensor:g} mm ({source})")


if __name__ == "__main__":
  main()
