"""Photo (+ depth or a trained model) -> shallow depth-of-field photo.

  python -m dofjax.render photo.jpg --depth=depth_mm.png --focus_px=640,360 --f_number=1.8 \\
      --focal_length_mm=50 --output=bokeh.png [--depth_vis=depth.png]
  python -m dofjax.render photo.jpg --workdir=W --focus_m=2.0 --blur_scale_px=25 --output=out.jpg

Depth comes from a 16-bit PNG (millimetres) or a .npy array (metres), of depth or, with
--disparity, of inverse depth (`--depth_scale` sets another unit; `photo_io`), or is predicted by
the latest checkpoint in --workdir (at the model's resolution, then upsampled). Holes are filled
guided by the photo (`depth_completion.complete_depth`), and focus is taken from that completed
depth (a tap on a filled pixel says that its distance was inferred). The lens defaults to the
photo's EXIF focal length (35 mm equivalent), else 50 mm on full frame; the lens used is printed
with its source. The render is made at the photo's full resolution with
`dofjax.dof.render_disparity`, up to the photo's largest circle of confusion, with clipped lights
recovered as bright discs (`--nohighlights` turns that off) and a round or `--aperture_blades`-gon
aperture.
"""

import argparse
import importlib
import os
import sys
import threading

import numpy as np

from dofjax import depth as depth_lib
from dofjax import depth_completion
from dofjax import errors
from dofjax import photo_io
from dofjax import render_plan

DEFAULT_FOCAL_LENGTH_MM = 50.0
DEFAULT_SENSOR_WIDTH_MM = 36.0


def _parse(argv):
  p = argparse.ArgumentParser(prog="python -m dofjax.render",
                              description=__doc__.split("\n")[0])
  p.add_argument("image", help="Input photo (JPEG or PNG, 8 or 16 bit; HEIC with its own depth "
                 "image, as phone portraits, with the heif extra).")
  src = p.add_mutually_exclusive_group()
  src.add_argument("--depth", help="Depth map: a 16-bit PNG in millimetres or a .npy array in "
                   "metres (0 = invalid); see --depth_scale and --disparity.")
  src.add_argument("--workdir", help="Training workdir: predict depth with its latest checkpoint.")
  p.add_argument("--depth_scale", type=float,
                 help="Metres per stored unit of --depth (default 0.001 for PNG, 1 for .npy); "
                 "with --disparity, 1/m per stored unit (default 1).")
  p.add_argument("--disparity", action="store_true",
                 help="--depth holds inverse depth (disparity), as phones and monocular models "
                 "write it: depth = 1 / (value x --depth_scale).")
  p.add_argument("--resize_depth", action="store_true",
                 help="Resample a depth map whose size differs from the photo's.")
  focus = p.add_mutually_exclusive_group()
  focus.add_argument("--focus_px", help="Tap to focus: pixel 'x,y' (column, row). Default: centre.")
  focus.add_argument("--focus_m", type=float, help="Focus distance in metres.")
  p.add_argument("--f_number", type=float, default=1.8)
  p.add_argument("--focal_length_mm", type=float,
                 help="Default: the photo's EXIF focal length in 35 mm terms, else 50.")
  p.add_argument("--sensor_width_mm", type=float, help="36 = full frame (default).")
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
  p.add_argument("--num_layers", type=int, default=render_plan.DEFAULT_NUM_LAYERS)
  p.add_argument("--method", default=render_plan.DEFAULT_METHOD, choices=render_plan.METHODS)
  p.add_argument("--output", required=True, help="Output photo (.png or .jpg).")
  p.add_argument("--depth_vis", help="Also write the completed depth map as a colour image "
                 "(near = bright; filled pixels striped).")
  return p.parse_args(argv[1:])


def import_in_background(module):
  """Starts importing `module` (a name) on a daemon thread and returns at once: the CLIs read
  their inputs meanwhile (JAX takes over a second to import), and their own `import` of it
  later waits for this one to finish. An import error surfaces there."""
  threading.Thread(target=importlib.import_module, args=(module,), daemon=True,
                   name=f"import {module}").start()


def read_image(path):
  """Photo -> (float32 HxWx3 sRGB in [0, 1], bits per channel 8 or 16). UserError if unreadable."""
  import cv2
  if photo_io.is_heic(path):
    return photo_io.read_heic(path)[:2]
  if not os.path.isfile(path):
    raise errors.UserError(f"cannot read the photo {path!r}: no such file.")
  img = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
  if img is None or img.ndim != 3:
    raise errors.UserError(f"cannot read the photo {path!r}: not a JPEG or PNG image.")
  bits = 16 if img.dtype == np.uint16 else 8
  # One pass (BGR -> RGB, to float, scaled) into one new array: at 12 MP every extra full-size
  # array costs a tenth of a second in a fresh process, most of it the memory's first touch.
  out = np.empty(img.shape, np.float32)
  np.divide(img[..., ::-1], np.float32(65535.0 if bits == 16 else 255.0), out=out)
  return out, bits


def read_depth_mm(path):
  """16-bit depth PNG in mm -> float32 metres (0 = invalid). UserError if unreadable, not a
  single-channel 16-bit PNG, or implausible in millimetres (`photo_io.read_depth_file`)."""
  return photo_io.read_depth_file(path)


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


def tap_focus(depth_m, filled, x, y):
  """Tap to focus on the completed depth: (focus_m, note). depth_m (H, W) metres, all > 0;
  filled (H, W) bool (pixels inferred by `depth_completion`); note is None, or one line saying
  that the distance was inferred when the tap falls on a filled pixel."""
  focus_m = focus_from_pixel(depth_m, x, y)
  note = None
  if filled[y, x]:
    note = (f"note: the depth map has a hole at {x},{y}; focus {focus_m:.2f} m is inferred there "
            "from the photo (depth completed from the surrounding surface).")
  return focus_m, note


def depth_visualisation(depth_m, filled=None):
  """Colour image (HxWx3 uint8 RGB) of disparity, near = bright/warm (inferno), invalid = black;
  filled: None or (H, W) bool, pixels whose depth was inferred, shown with dark diagonal stripes."""
  import matplotlib
  valid = depth_m > 0
  disp = np.where(valid, 1.0 / np.maximum(depth_m, 1e-6), 0.0)
  lo, hi = (np.percentile(disp[valid], [1, 99]) if valid.any() else (0.0, 1.0))
  t = np.clip((disp - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
  rgb = np.where(valid[..., None], matplotlib.colormaps["inferno"](t)[..., :3], 0.0)
  if filled is not None:
    yy, xx = np.indices(depth_m.shape)
    stripe = filled & ((xx + yy) // 4 % 2 == 0)
    rgb = np.where(stripe[..., None], 0.45 * rgb, rgb)
  return (rgb * 255.0 + 0.5).astype(np.uint8)


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


def to_stored(rgb01, bits=8, rows=256):
  """HxWx3 float RGB (clipped to [0, 1]) -> HxWx3 BGR uint8 (bits 8) or uint16 (bits 16), as
  OpenCV writes it: round(v * (2^bits - 1)). Converted `rows` rows at a time, so no full-size
  float copy is made (at 12 MP one would be 144 MB)."""
  rgb01 = np.asarray(rgb01)
  top = 65535.0 if bits == 16 else 255.0
  out = np.empty(rgb01.shape, np.uint16 if bits == 16 else np.uint8)
  for r in range(0, rgb01.shape[0], rows):
    block = np.clip(rgb01[r:r + rows, :, ::-1], 0.0, 1.0)
    block *= top
    block += 0.5
    out[r:r + rows] = block
  return out


def write_image(path, rgb01, bits=8):
  """Writes HxWx3 float [0, 1] RGB as PNG (8 or 16 bit) or JPEG (8 bit, quality 95)."""
  import cv2
  ext = check_output(path, "output")
  data = to_stored(rgb01, 16 if bits == 16 and ext == ".png" else 8)
  params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
  if not cv2.imwrite(path, data, params):
    raise errors.UserError(f"cannot write {path!r}.")


def complete_depth_stored(image01, depth_m, programs=None):
  """`depth_completion.complete_depth` (image01 (H, W, 3) sRGB in [0, 1], depth_m (H, W) metres,
  0 = invalid -> (depth (H, W) float32 metres, all > 0; filled (H, W) bool)), read back from the
  folder `programs` (`compile_cache.program_folder`) when an earlier process completed the same
  photo and depth (keyed on their content and the completion's source), else computed and stored
  there. programs None: always computed."""
  depth_m = np.asarray(depth_m, np.float32)
  if programs is None or (depth_m > 0).all():
    return depth_completion.complete_depth(image01, depth_m)
  from dofjax import compile_cache  # pylint: disable=g-import-not-at-top
  code = " ".join(compile_cache.source_digest(m.__file__) for m in (depth_completion, depth_lib))
  key = (f"depth_completion.complete_depth {code} "
         f"{compile_cache.array_digest(np.asarray(image01, np.float32), depth_m)}")
  return compile_cache.stored_arrays(programs, "depth", key,
                                     lambda: depth_completion.complete_depth(image01, depth_m))


def predict_depth(workdir, image01):
  """Depth (HxW metres) of the photo from the latest checkpoint in workdir, at full size."""
  from dofjax import inference  # Lazy: pulls in the model and checkpointing.
  predict = inference.load_depth_predictor(workdir)
  depth_m = np.asarray(predict(image01), np.float32)
  h, w = image01.shape[:2]
  if depth_m.shape != (h, w):
    depth_m = depth_lib.resize_in_disparity(depth_m, h, w)
  return depth_m


def render_photo(image, depth_m, *, focus_m, f_number=1.8, focal_length_mm=DEFAULT_FOCAL_LENGTH_MM,
                 sensor_width_mm=DEFAULT_SENSOR_WIDTH_MM, blur_scale_px=None, max_radius=None,
                 num_layers=render_plan.DEFAULT_NUM_LAYERS, method=render_plan.DEFAULT_METHOD,
                 aperture_blades=0, aperture_rotation_deg=0.0, highlights=True, programs=None):
  """Photo + depth + focus + lens -> shallow depth of field.

  NOTE: the one render path of the CLI (`main`) and of the tap-to-focus app (`dofjax.app`,
  issue 14), so both give the same image bit for bit: change how photos are rendered here, not
  in a caller.

  Args:
    image: (H, W, 3) float32 sRGB in [0, 1].
    depth_m: (H, W) float32 metres, 0 = invalid (completed by `depth_completion.complete_depth`;
      pass depth completed once when rendering the same photo again).
    focus_m: focus distance in metres.
    f_number, focal_length_mm, sensor_width_mm: the lens; ignored when blur_scale_px is given.
    blur_scale_px: K, blur radius in px per 1/m of disparity off focus (None: from the lens).
    max_radius: largest blur radius in px (None: the photo's largest circle of confusion).
    num_layers, method, aperture_blades, aperture_rotation_deg: as `dof.render_disparity`.
    highlights: recover clipped highlights (dof.PHOTO_HIGHLIGHT_GAIN / _THRESHOLD) or not.
    programs: None, or the folder of stored compiled programs (`compile_cache.program_folder`;
      the CLI's), so a later process loads the render's program instead of tracing it.
  Returns:
    (render (H, W, 3) float32 numpy sRGB in [0, 1], info): info = dict(blur_scale_px=K in px*m,
    max_radius=px, note=None or one line saying that max_radius clips the blur).
  """
  from dofjax import dof  # pylint: disable=g-import-not-at-top  (JAX: the CLI reads inputs first)
  w = image.shape[1]
  dense = depth_completion.complete_depth(image, depth_m)[0]
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
      highlight_threshold=dof.PHOTO_HIGHLIGHT_THRESHOLD, programs=programs)
  return np.asarray(out), dict(blur_scale_px=k, max_radius=max_radius, note=note)


def _validate(args):
  """One clear UserError for the first bad flag value."""
  if not args.f_number > 0:
    raise errors.UserError(f"--f_number must be > 0; got {args.f_number}.")
  for name in ("focal_length_mm", "sensor_width_mm"):
    if getattr(args, name) is not None and not getattr(args, name) > 0:
      raise errors.UserError(f"--{name} must be > 0; got {getattr(args, name)}.")
  if args.depth_scale is not None and not (args.depth_scale > 0 and np.isfinite(args.depth_scale)):
    raise errors.UserError(f"--depth_scale must be > 0 (metres per stored unit); got "
                           f"{args.depth_scale}.")
  if args.blur_scale_px is not None and not args.blur_scale_px >= 0:
    raise errors.UserError(f"--blur_scale_px must be >= 0; got {args.blur_scale_px}.")
  if args.focus_m is not None and not args.focus_m > (args.focal_length_mm or 0.0) / 1000.0:
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
  bucket (`render_plan.plan_max_radius`: 8, 12, 16, 24, 32, ... px, so other settings mostly reuse a
  compiled program), or `requested`; returns (radius, note): the note is one line when
  `requested` clips the blur, else None."""
  largest = render_plan.plan_max_radius(largest_px)
  if requested is None:
    return largest, None
  note = None
  if requested < largest_px:
    note = (f"note: --max_radius={requested:g} caps the blur: the photo's largest circle of "
            f"confusion is {largest_px:.0f} px, and blur beyond {requested:g} px is clipped to it.")
  return float(requested), note


def lens_for(path, focal_length_mm=None, sensor_width_mm=None):
  """The lens to render a photo with: (focal_length_mm, sensor_width_mm, source text). Flags
  win; else the photo's EXIF 35 mm equivalent on a full-frame sensor; else 50 mm full frame."""
  if focal_length_mm is not None:
    return focal_length_mm, sensor_width_mm or DEFAULT_SENSOR_WIDTH_MM, "from --focal_length_mm"
  exif = photo_io.exif_lens(path)
  if exif is not None and sensor_width_mm is None:
    return exif[0], photo_io.FULL_FRAME_WIDTH_MM, f"from the photo's {exif[1]}"
  return (DEFAULT_FOCAL_LENGTH_MM, sensor_width_mm or DEFAULT_SENSOR_WIDTH_MM,
          "assumed: the photo has no EXIF focal length; set --focal_length_mm")


def main(argv=None):
  """CLI entry point; see the module docstring. Returns 0."""
  args = _parse(list(sys.argv if argv is None else argv))
  _validate(args)
  check_output(args.output)
  if args.depth_vis:
    check_output(args.depth_vis, "--depth_vis")
  focal_length_mm, sensor_width_mm, lens_source = lens_for(
      args.image, args.focal_length_mm, args.sensor_width_mm)
  # JAX loads while the photo and the depth are decoded (the first use of it below waits for it).
  # Its import holds the GIL for long stretches, so only work that releases it (OpenCV's decoding,
  # NumPy's loops) runs meanwhile: the EXIF lens is read before.
  import_in_background("dofjax.inference" if args.workdir else "dofjax.dof")
  own_depth = None
  if photo_io.is_heic(args.image):
    image, bits, own_depth = photo_io.read_heic(args.image)
  else:
    image, bits = read_image(args.image)
  h, w = image.shape[:2]
  if args.blur_scale_px is None:
    print(f"lens: {focal_length_mm:g} mm on a {sensor_width_mm:g} mm wide sensor ({lens_source})")

  if args.depth:
    depth_m = photo_io.read_depth_file(args.depth, scale=args.depth_scale,
                                       disparity=args.disparity)
    if depth_m.shape != (h, w):
      if not args.resize_depth:
        raise errors.UserError(
            f"the depth map is {depth_m.shape[1]}x{depth_m.shape[0]} but the photo is {w}x{h}; "
            "pass --resize_depth to resample it.")
      depth_m = depth_lib.resize_in_disparity(depth_m, h, w)

  from dofjax import compile_cache  # Before the first compile: reuses other runs' programs.
  # The render is kept whole in the program folder; JAX's cache is for the predictor (--workdir).
  folder = compile_cache.enable(xla_cache=args.workdir is not None)
  programs = None if args.workdir else compile_cache.program_folder(folder)
  if args.workdir:
    depth_m = predict_depth(args.workdir, image)
  elif not args.depth:
    if own_depth is None:
      raise errors.UserError(f"{os.path.basename(args.image)} has no depth image of its own: pass "
                             "--depth=D (a depth map) or --workdir=W (a trained model).")
    depth_m = own_depth
    print(f"depth: the photo's own depth image, upsampled to {w}x{h} guided by the photo")
  depth_m, filled = complete_depth_stored(image, depth_m, programs)

  if args.focus_m is not None:
    focus_m = args.focus_m
  else:
    x, y = (w // 2, h // 2)
    if args.focus_px:
      try:
        x, y = (int(round(float(v))) for v in args.focus_px.split(","))
      except ValueError:
        raise errors.UserError(f"--focus_px must be 'x,y' pixels; got {args.focus_px!r}.") from None
    focus_m, note = tap_focus(depth_m, filled, x, y)
    if note:
      print(note)

  if args.depth_vis:
    write_image(args.depth_vis, depth_visualisation(depth_m, filled) / 255.0)
  out, info = render_photo(
      image, depth_m, focus_m=focus_m, f_number=args.f_number,
      focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm,
      blur_scale_px=args.blur_scale_px, max_radius=args.max_radius, num_layers=args.num_layers,
      method=args.method, aperture_blades=args.aperture_blades,
      aperture_rotation_deg=args.aperture_rotation_deg, highlights=args.highlights,
      programs=programs)
  k, max_radius = info["blur_scale_px"], info["max_radius"]
  if info["note"]:
    print(info["note"])
  write_image(args.output, out, bits)
  print(f"wrote {args.output}: {w}x{h}, focus {focus_m:.2f} m, blur scale {k:.1f} px*m, "
        f"max blur radius {max_radius:g} px")
  return 0


if __name__ == "__main__":
  errors.run_cli(main)
