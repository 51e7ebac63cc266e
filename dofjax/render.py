"""Photo (+ depth or a trained model) -> shallow depth-of-field photo.

  python -m dofjax.render photo.jpg --depth=depth_mm.png --focus_px=640,360 --f_number=1.8 \\
      --focal_length_mm=50 --output=bokeh.png [--depth_vis=depth.png]
  python -m dofjax.render photo.jpg --workdir=W --focus_m=2.0 --blur_scale_px=25 --output=out.jpg

Depth comes from a 16-bit PNG in millimetres (0 = invalid) or is predicted by the latest
checkpoint in --workdir (at the model's resolution, then upsampled); invalid pixels take the
farther neighbouring depth (`fill_invalid`). The render is made at the photo's full resolution
with `dofjax.dof.render_disparity`, up to the photo's largest circle of confusion, with clipped
highlights recovered (`--nohighlights` turns that off) and a round or `--aperture_blades`-gon
aperture.
"""

import argparse
import os
import sys

import numpy as np

from dofjax import depth as depth_lib
from dofjax import dof
from dofjax import errors


def _parse(argv):
  p = argparse.ArgumentParser(prog="python -m dofjax.render",
                              description=__doc__.split("\n")[0])
  p.add_argument("image", help="Input photo (JPEG or PNG, 8 or 16 bit).")
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--depth", help="Depth PNG, uint16 millimetres (0 = invalid).")
  src.add_argument("--workdir", help="Training workdir: predict depth with its latest checkpoint.")
  p.add_argument("--resize_depth", action="store_true",
                 help="Resample a depth map whose size differs from the photo's.")
  focus = p.add_mutually_exclusive_group()
  focus.add_argument("--focus_px", help="Tap to focus: pixel 'x,y' (column, row). Default: centre.")
  focus.add_argument("--focus_m", type=float, help="Focus distance in metres.")
  p.add_argument("--f_number", type=float, default=1.8)
  p.add_argument("--focal_length_mm", type=float, default=50.0)
  p.add_argument("--sensor_width_mm", type=float, default=36.0, help="36 = full frame.")
  p.add_argument("--blur_scale_px", type=float,
                 help="Blur radius in px per 1/m of disparity off focus; overrides the lens.")
  p.add_argument("--max_radius", type=float,
                 help="Largest blur radius in px (default: the photo's largest circle of "
                 "confusion, so nothing is clipped; a smaller value caps the blur and is said).")
  p.add_argument("--aperture_blades", type=int, default=0,
                 help="Aperture shape: 0 = a disc (default), N >= 3 = a regular N-gon.")
  p.add_argument("--aperture_rotation_deg", type=float, default=0.0,
                 help="Rotation of the polygonal aperture in degrees.")
  p.add_argument("--highlights", dest="highlights", action="store_true", default=True,
                 help="Recover clipped highlights before blurring, so lights become bright "
                 "discs (default).")
  p.add_argument("--nohighlights", dest="highlights", action="store_false",
                 help="Blur the photo's values as they are (clipped lights stay dim).")
  p.add_argument("--num_layers", type=int, default=dof.DEFAULT_NUM_LAYERS)
  p.add_argument("--method", default=dof.DEFAULT_METHOD, choices=dof.METHODS)
  p.add_argument("--output", required=True, help="Output photo (.png or .jpg).")
  p.add_argument("--depth_vis", help="Also write the depth map as a colour image (near = bright).")
  return p.parse_args(argv[1:])


def read_image(path):
  """Photo -> (float32 HxWx3 sRGB in [0, 1], bits per channel 8 or 16). UserError if unreadable."""
  import cv2
  if not os.path.isfile(path):
    raise errors.UserError(f"cannot read the photo {path!r}: no such file.")
  img = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
  if img is None or img.ndim != 3:
    raise errors.UserError(f"cannot read the photo {path!r}: not a JPEG or PNG image.")
  bits = 16 if img.dtype == np.uint16 else 8
  scale = 65535.0 if bits == 16 else 255.0
  return (img[..., ::-1].astype(np.float32) / scale), bits


def read_depth_mm(path):
  """16-bit depth PNG in mm -> float32 metres (0 = invalid). UserError if unreadable or not a
  single-channel 16-bit PNG (`real_frames.read_depth_png`)."""
  from dofjax import real_frames
  return depth_lib.millimetres_to_metres(real_frames.read_depth_png(path))


def fill_invalid(depth_m):
  """Fills invalid (0) depth with the farther of its nearest valid neighbours.

  Stereo and depth-sensor holes next to depth edges are occlusion shadows: the background seen
  by one view only. So each invalid pixel takes the smallest disparity (the farthest depth) among
  the nearest valid pixels to its left, right, above and below; pixels with none in their row and
  column take the farthest valid depth. Every filled value is a depth present in the map, never
  an in-between one (which would float on a layer of its own as a dotted outline).

  Args:
    depth_m: (H, W) metres, 0 = invalid.
  Returns:
    (H, W) float32 metres, all > 0. UserError if no pixel is valid.
  """
  valid = depth_m > 0
  if valid.all():
    return depth_m
  if not valid.any():
    raise errors.UserError("the depth map has no valid pixels (all 0 or >= 65.5 m).")
  disp = np.where(valid, 1.0 / np.maximum(depth_m, 1e-6), np.inf).astype(np.float32)
  farthest = np.full(disp.shape, np.inf, np.float32)
  for axis in (0, 1):
    for flip in (False, True):
      farthest = np.minimum(farthest, _nearest_valid(disp, valid, axis, flip))
  filled = np.where(valid, disp, farthest)
  filled = np.where(np.isfinite(filled), filled, disp[valid].min())
  return (1.0 / filled).astype(np.float32)


def _nearest_valid(values, valid, axis, reverse):
  """(H, W): the value of the nearest valid pixel before each pixel along `axis` (after it if
  `reverse`), the pixel's own where valid; inf where there is none."""
  if reverse:
    return np.flip(_nearest_valid(np.flip(values, axis), np.flip(valid, axis), axis, False), axis)
  shape = [1, 1]
  shape[axis] = values.shape[axis]
  index = np.where(valid, np.arange(values.shape[axis]).reshape(shape), -1)
  index = np.maximum.accumulate(index, axis=axis)
  found = np.take_along_axis(values, np.maximum(index, 0), axis=axis)
  return np.where(index >= 0, found, np.inf)


def focus_from_pixel(depth_m, x, y):
  """Median valid depth in a window around pixel (x, y): a robust tap-to-focus distance (m)."""
  h, w = depth_m.shape
  if not (0 <= x < w and 0 <= y < h):
    raise errors.UserError(f"--focus_px={x},{y} is outside the {w}x{h} photo (x in [0, {w - 1}], "
                           f"y in [0, {h - 1}]).")
  for half in (max(2, min(h, w) // 100), max(4, min(h, w) // 25), max(h, w)):
    win = depth_m[max(0, y - half): y + half + 1, max(0, x - half): x + half + 1]
    win = win[win > 0]
    if win.size:
      return float(np.median(win))
  raise errors.UserError("the depth map has no valid pixels to focus on.")


def depth_visualisation(depth_m):
  """Colour image (HxWx3 uint8 RGB) of disparity, near = bright/warm (inferno), invalid = black."""
  import matplotlib
  valid = depth_m > 0
  disp = np.where(valid, 1.0 / np.maximum(depth_m, 1e-6), 0.0)
  lo, hi = (np.percentile(disp[valid], [1, 99]) if valid.any() else (0.0, 1.0))
  t = np.clip((disp - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
  rgb = matplotlib.colormaps["inferno"](t)[..., :3]
  return (np.where(valid[..., None], rgb, 0.0) * 255.0 + 0.5).astype(np.uint8)


def check_output(path, flag="--output"):
  """UserError unless an image can be written to `path` (str): a .png, .jpg or .jpeg name in an
  existing, writable folder, and not a folder itself. Cheap: the CLI calls it before reading
  depth or compiling anything. Returns the lower-case extension."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in (".png", ".jpg", ".jpeg"):
    raise errors.UserError(f"{flag}={path}: the output must end in .png, .jpg or .jpeg.")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise errors.UserError(f"cannot write {path!r}: the folder {folder!r} does not exist.")
  if os.path.isdir(path):
    raise errors.UserError(f"cannot write {path!r}: it is a folder; name a file in it.")
  if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path)
                                                  and not os.access(path, os.W_OK)):
    raise errors.UserError(f"cannot write {path!r}: no permission to write there.")
  return ext


def write_image(path, rgb01, bits=8):
  """Writes HxWx3 float [0, 1] RGB as PNG (8 or 16 bit) or JPEG (8 bit, quality 95)."""
  import cv2
  ext = check_output(path, "output")
  if bits == 16 and ext == ".png":
    data = (np.clip(rgb01, 0, 1) * 65535.0 + 0.5).astype(np.uint16)
  else:
    data = (np.clip(rgb01, 0, 1) * 255.0 + 0.5).astype(np.uint8)
  params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
  if not cv2.imwrite(path, data[..., ::-1], params):
    raise errors.UserError(f"cannot write {path!r}.")


def predict_depth(workdir, image01):
  """Depth (HxW metres) of the photo from the latest checkpoint in workdir, at full size."""
  from dofjax import inference  # Lazy: pulls in the model and checkpointing.
  predict = inference.load_depth_predictor(workdir)
  depth_m = np.asarray(predict(image01), np.float32)
  h, w = image01.shape[:2]
  if depth_m.shape != (h, w):
    depth_m = depth_lib.resize_in_disparity(depth_m, h, w)
  return depth_m


def render_photo(image, depth_m, *, focus_m, f_number=1.8, focal_length_mm=50.0,
                 sensor_width_mm=36.0, blur_scale_px=None, max_radius=None,
                 num_layers=dof.DEFAULT_NUM_LAYERS, method=dof.DEFAULT_METHOD,
                 aperture_blades=0, aperture_rotation_deg=0.0, highlights=True):
  """Photo + depth + focus + lens -> shallow depth of field.

  NOTE: the one render path of the CLI (`main`) and of the tap-to-focus app (`dofjax.app`,
  issue 14), so both give the same image bit for bit: change how photos are rendered here, not
  in a caller.

  Args:
    image: (H, W, 3) float32 sRGB in [0, 1].
    depth_m: (H, W) float32 metres, 0 = invalid (filled by `fill_invalid`).
    focus_m: focus distance in metres.
    f_number, focal_length_mm, sensor_width_mm: the lens; ignored when blur_scale_px is given.
    blur_scale_px: K, blur radius in px per 1/m of disparity off focus (None: from the lens).
    max_radius: largest blur radius in px (None: the photo's largest circle of confusion).
    num_layers, method, aperture_blades, aperture_rotation_deg: as `dof.render_disparity`.
    highlights: recover clipped highlights (dof.PHOTO_HIGHLIGHT_GAIN / _THRESHOLD) or not.
  Returns:
    (render (H, W, 3) float32 numpy sRGB in [0, 1], info): info = dict(blur_scale_px=K in px*m,
    max_radius=px, note=None or one line saying that max_radius clips the blur).
  """
  w = image.shape[1]
  dense = fill_invalid(depth_m)
  if blur_scale_px is not None:
    k = blur_scale_px
  else:
    k = float(dof.blur_scale_px(focus_distance_m=focus_m, f_number=f_number,
                                focal_length_mm=focal_length_mm,
                                sensor_width_mm=sensor_width_mm, image_width_px=w))
  disparity = 1.0 / dense
  largest = k * float(np.abs(disparity - 1.0 / focus_m).max())
  max_radius, note = max_blur_radius(largest, max_radius)
  out = dof.render_disparity(
      image, disparity, focus_disparity=1.0 / focus_m, blur_scale_px=k,
      num_layers=num_layers, max_radius=max_radius, method=method,
      aperture_blades=aperture_blades, aperture_rotation_deg=aperture_rotation_deg,
      highlight_gain=dof.PHOTO_HIGHLIGHT_GAIN if highlights else 0.0,
      highlight_threshold=dof.PHOTO_HIGHLIGHT_THRESHOLD)
  return np.asarray(out), dict(blur_scale_px=k, max_radius=max_radius, note=note)


def _validate(args):
  """One clear UserError for the first bad flag value."""
  if not args.f_number > 0:
    raise errors.UserError(f"--f_number must be > 0; got {args.f_number}.")
  if not args.focal_length_mm > 0 or not args.sensor_width_mm > 0:
    raise errors.UserError("--focal_length_mm and --sensor_width_mm must be > 0.")
  if args.blur_scale_px is not None and not args.blur_scale_px >= 0:
    raise errors.UserError(f"--blur_scale_px must be >= 0; got {args.blur_scale_px}.")
  if args.focus_m is not None and not args.focus_m > args.focal_length_mm / 1000.0:
    raise errors.UserError(f"--focus_m must be farther than the focal length; got {args.focus_m}.")
  if args.num_layers < 3 or args.num_layers % 2 == 0:
    raise errors.UserError(f"--num_layers must be odd and >= 3; got {args.num_layers}.")
  if args.max_radius is not None and not (args.max_radius > 0 and np.isfinite(args.max_radius)):
    raise errors.UserError(f"--max_radius must be > 0 pixels (leave it out to follow the photo's "
                           f"largest blur); got {args.max_radius:g}.")
  if args.aperture_blades != 0 and args.aperture_blades < 3:
    raise errors.UserError(f"--aperture_blades must be 0 (a round aperture) or a number of "
                           f"blades >= 3; got {args.aperture_blades}.")
  if not np.isfinite(args.aperture_rotation_deg):
    raise errors.UserError(f"--aperture_rotation_deg must be a finite angle in degrees; got "
                           f"{args.aperture_rotation_deg}.")


def max_blur_radius(largest_px, requested=None):
  """Layer plan's largest radius (px): the photo's largest CoC `largest_px` rounded up to a plan
  bucket (`dof.plan_max_radius`: 8, 12, 16, 24, 32, ... px, so other settings mostly reuse a
  compiled program), or `requested`; returns (radius, note): the note is one line when
  `requested` clips the blur, else None."""
  largest = dof.plan_max_radius(largest_px)
  if requested is None:
    return largest, None
  note = None
  if requested < largest_px:
    note = (f"note: --max_radius={requested:g} caps the blur: the photo's largest circle of "
            f"confusion is {largest_px:.0f} px, and blur beyond {requested:g} px is clipped to it.")
  return float(requested), note


def main(argv=None):
  """CLI entry point; see the module docstring. Returns 0."""
  args = _parse(list(sys.argv if argv is None else argv))
  _validate(args)
  check_output(args.output)
  if args.depth_vis:
    check_output(args.depth_vis, "--depth_vis")
  from dofjax import compile_cache  # Before the first compile: reuses other runs' programs.
  compile_cache.enable()
  image, bits = read_image(args.image)
  h, w = image.shape[:2]

  if args.depth:
    depth_m = read_depth_mm(args.depth)
    if depth_m.shape != (h, w):
      if not args.resize_depth:
        raise errors.UserError(
            f"the depth map is {depth_m.shape[1]}x{depth_m.shape[0]} but the photo is {w}x{h}; "
            "pass --resize_depth to resample it.")
      depth_m = depth_lib.resize_in_disparity(depth_m, h, w)
  else:
    depth_m = predict_depth(args.workdir, image)

  if args.focus_m is not None:
    focus_m = args.focus_m
  else:
    x, y = (w // 2, h // 2)
    if args.focus_px:
      try:
        x, y = (int(round(float(v))) for v in args.focus_px.split(","))
      except ValueError:
        raise errors.UserError(f"--focus_px must be 'x,y' pixels; got {args.focus_px!r}.") from None
    focus_m = focus_from_pixel(depth_m, x, y)

  if args.depth_vis:
    write_image(args.depth_vis, depth_visualisation(depth_m) / 255.0)
  out, info = render_photo(
      image, depth_m, focus_m=focus_m, f_number=args.f_number,
      focal_length_mm=args.focal_length_mm, sensor_width_mm=args.sensor_width_mm,
      blur_scale_px=args.blur_scale_px, max_radius=args.max_radius, num_layers=args.num_layers,
      method=args.method, aperture_blades=args.aperture_blades,
      aperture_rotation_deg=args.aperture_rotation_deg, highlights=args.highlights)
  k, max_radius = info["blur_scale_px"], info["max_radius"]
  if info["note"]:
    print(info["note"])
  write_image(args.output, out, bits)
  print(f"wrote {args.output}: {w}x{h}, focus {focus_m:.2f} m, blur scale {k:.1f} px*m, "
        f"max blur radius {max_radius:g} px")
  return 0


if __name__ == "__main__":
  errors.run_cli(main)
