"""Tap to focus: the pure functions of the local web app (`python -m dofjax.app`).

Photo + depth + a click + settings -> image, with no web code, so they are unit-testable. Every
step is dofjax.render's (reading, depth checks, tap-to-focus, `render.render_photo`), so a
full-size render is the image `python -m dofjax.render` makes with the same settings, bit for bit:
`cli_args` gives that command. The HTTP glue is in `dofjax.app.server`.
"""

import dataclasses
import math
import os
import tempfile

import numpy as np

from dofjax import depth as depth_lib
from dofjax import depth_completion
from dofjax import dof
from dofjax import errors
from dofjax import photo_io
from dofjax import render
from dofjax import render_plan

# px: the preview rendered while a slider is dragged: small enough to follow the hand (~0.08 MP:
# tens of ms per render on a 2-core CPU; docs/speed.md), the full size follows on release.
PREVIEW_LONG_SIDE = 320
DEPTH_VIEW_LONG_SIDE = 640   # px: the depth map shown beside the photo.
APERTURES = (0, 5, 6, 8)     # Blades; 0 = a round aperture.
F_NUMBER_RANGE = (0.5, 22.0)
FOCAL_LENGTH_RANGE_MM = (10.0, 400.0)


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the page sends: the focus click (photo pixels) and the lens.

  x, y: clicked pixel (column, row) of the full-size photo.
  f_number, focal_length_mm: the lens (full-frame sensor, 36 mm wide, as the CLI's default).
  highlights: highlight recovery on (dof.PHOTO_HIGHLIGHT_GAIN / THRESHOLD) or off.
  blades: 0 (round) or 5, 6, 8; rotation_deg: the polygon's rotation in degrees.
  """
  x: int
  y: int
  f_number: float = 1.8
  focal_length_mm: float = 50.0
  highlights: bool = True
  blades: int = 0
  rotation_deg: float = 0.0


def parse_settings(fields):
  """Dict of the page's fields (JSON numbers/booleans) -> Settings; UserError names a bad one."""
  def number(name, default, lo=-math.inf, hi=math.inf):
    value = fields.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
      raise errors.UserError(f"{name} must be a number in [{lo:g}, {hi:g}]; got {value!r}.")
    return value

  if "x" not in fields or "y" not in fields:
    raise errors.UserError("click on the photo to choose what is in focus.")
  blades = fields.get("blades", 0)
  if blades not in APERTURES:
    raise errors.UserError(f"blades must be one of {APERTURES} (0 = round); got {blades!r}.")
  return Settings(
      x=int(round(number("x", 0))), y=int(round(number("y", 0))),
      f_number=float(number("f_number", 1.8, *F_NUMBER_RANGE)),
      focal_length_mm=float(number("focal_length_mm", 50.0, *FOCAL_LENGTH_RANGE_MM)),
      highlights=bool(fields.get("highlights", True)), blades=int(blades),
      rotation_deg=float(number("rotation_deg", 0.0, -360.0, 360.0)))


def read_photo_bytes(data, name="photo"):
  """Uploaded photo bytes -> (float32 HxWx3 sRGB in [0, 1], bits 8 or 16) via render.read_image;
  `name` is the uploaded file's name, for messages."""
  return _read_upload(data, name, "photo", render.read_image)


def read_photo_upload(data, name="photo"):
  """Uploaded photo bytes -> (image float32 HxWx3 sRGB in [0, 1], bits, own depth (H, W) metres
  or None, lens (focal_length_mm on full frame, source text) or None): a HEIC's own depth image
  (photo_io.read_heic) and the EXIF lens (photo_io.exif_lens), as the CLI takes them."""
  def read(path):
    if photo_io.is_heic(path):
      image, bits, depth = photo_io.read_heic(path)
    else:
      (image, bits), depth = render.read_image(path), None
    return image, bits, depth, photo_io.exif_lens(path)
  return _read_upload(data, name, "photo", read)


def complete(image, depth_m):
  """(completed depth (H, W) metres, filled (H, W) bool): the CLI's depth completion
  (depth_completion.complete_depth), done once per uploaded depth."""
  return depth_completion.complete_depth(image, check_depth(depth_m))


def focus_note(depth_m, filled, settings):
  """One line saying that the focus distance was inferred when the click falls on a filled
  pixel (render.tap_focus), else None."""
  return render.tap_focus(depth_m, filled, settings.x, settings.y)[1]


def read_depth_bytes(data, photo_hw, resample=False, name="depth.png"):
  """Uploaded 16-bit depth PNG (mm) -> (H, W) float32 metres at the photo's size, 0 = invalid.

  UserError if unreadable, without any valid pixel, or of another size than photo_hw (H, W)
  unless `resample` (then resampled in disparity, as the CLI's --resize_depth).
  """
  depth_m = _read_upload(data, name, "depth map", photo_io.read_depth_file)
  h, w = photo_hw
  if depth_m.shape != (h, w):
    if not resample:
      raise errors.UserError(
          f"the depth map is {depth_m.shape[1]}x{depth_m.shape[0]} but the photo is {w}x{h}; "
          "upload the depth map of this photo, or tick 'Resample depth of another size'.")
    depth_m = depth_lib.resize_in_disparity(depth_m, h, w)
  return check_depth(depth_m)


def depth_from_model(workdir, image):
  """(H, W) metres predicted for the photo by the latest checkpoint in workdir (UserError if
  there is none): render.predict_depth."""
  if not workdir:
    raise errors.UserError("this photo has no depth of its own: upload its depth map (a 16-bit "
                           "PNG in millimetres or a .npy in metres), or start the app with "
                           "--workdir=W (a training run) to predict depth.")
  return check_depth(render.predict_depth(workdir, image))


def check_depth(depth_m):
  """UserError unless the (H, W) depth in metres has a valid (> 0) pixel; returns depth_m."""
  if not (depth_m > 0).any():
    raise errors.UserError("the depth map has no valid pixels (all 0 or >= 65.5 m); it must be "
                           "a 16-bit PNG in millimetres.")
  return depth_m


def _read_upload(data, name, what, reader):
  """reader(path) of the uploaded bytes, saved under their own file name in a temporary folder
  (render's readers take paths; their messages then name the user's file, not the folder)."""
  if not data:
    raise errors.UserError(f"the uploaded {what} {name!r} is empty.")
  with tempfile.TemporaryDirectory(prefix="dofjax-app-") as folder:
    path = os.path.join(folder, os.path.basename(name) or "upload")
    with open(path, "wb") as f:
      f.write(data)
    try:
      return reader(path)
    except errors.UserError as e:
      raise type(e)(str(e).replace(path, os.path.basename(name))) from None


def render_kwargs(settings):
  """Settings -> the keywords of render.render_photo (the CLI's render path) for the lens."""
  return dict(f_number=settings.f_number, focal_length_mm=settings.focal_length_mm,
              highlights=settings.highlights, aperture_blades=settings.blades,
              aperture_rotation_deg=settings.rotation_deg)


def render_full(image, depth_m, settings, programs=None):
  """Full-size render: (HxWx3 float32 sRGB in [0, 1], info dict), the CLI's image bit for bit.
  programs: None, or the folder of stored compiled programs (`compile_cache.program_folder`):
  the render's program is loaded from there, or compiled and stored for the next start."""
  focus = render.focus_from_pixel(depth_m, settings.x, settings.y)
  out, info = render.render_photo(image, depth_m, focus_m=focus, programs=programs,
                                  **render_kwargs(settings))
  return out, dict(info, focus_m=focus, width=image.shape[1], height=image.shape[0])


def preview_inputs(image, depth_m, long_side=PREVIEW_LONG_SIDE):
  """(image, depth) shrunk so the long side is <= long_side px (area-averaged photo, depth
  resampled in disparity by depth.resize_in_disparity); unchanged if already small."""
  import cv2
  h, w = depth_m.shape
  scale = long_side / max(h, w)
  if scale >= 1.0:
    return image, depth_m
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
  return small, depth_lib.resize_in_disparity(depth_m, size[1], size[0])


def render_preview(image_small, depth_small, depth_m, settings, programs=None):
  """Reduced-size render while a slider moves. Focus comes from the click on the full-size
  depth_m (as render_full); the lens is the same, so the blur scales with the width. The largest
  blur radius is rounded up to a plan bucket (`render_plan.plan_max_radius`), so that dragging a
  slider compiles a handful of renderers rather than one per pixel of radius (each compile takes
  seconds). programs: as `render_full`.

  Returns (h x w x 3 float32 sRGB in [0, 1], info dict).
  """
  focus = render.focus_from_pixel(depth_m, settings.x, settings.y)
  width = image_small.shape[1]
  largest = float(np.max(dof.coc_radius_px(
      depth_completion.fill_farther(depth_small), focus_distance_m=focus, f_number=settings.f_number,
      focal_length_mm=settings.focal_length_mm, image_width_px=width)))
  max_radius = render_plan.plan_max_radius(largest)
  out, info = render.render_photo(image_small, depth_small, focus_m=focus, max_radius=max_radius,
                                  programs=programs, **render_kwargs(settings))
  return out, dict(info, focus_m=focus, width=width, height=image_small.shape[0])


def plan_key(depth_m, settings, focus_depth_m=None):
  """(height, width, plan radius px, blades, highlights): what selects the compiled render for
  these settings of render_full (depth_m: the photo's depth, m) or of render_preview (depth_m:
  the preview's, focus_depth_m: the full-size depth clicked on); equal keys share one program.
  The radius is the plan bucket of the largest blur over depth_m's valid pixels."""
  focus_depth_m = depth_m if focus_depth_m is None else focus_depth_m
  focus = render.focus_from_pixel(focus_depth_m, settings.x, settings.y)
  largest = dof.largest_coc_radius_px(depth_m, focus_distance_m=focus,
                                      f_number=settings.f_number,
                                      focal_length_mm=settings.focal_length_mm)
  return depth_m.shape + (render_plan.plan_max_radius(largest), settings.blades,
                          settings.highlights)


def warm_up_keys(depth_m, depth_small, settings, apertures=APERTURES):
  """The programs worth compiling ahead when a photo's depth arrives (plan keys, most useful
  first): the preview (depth_small) and the full size (depth_m) at the settings' plan for every
  aperture in `apertures`, then the plans one bucket narrower and wider (about a stop up or
  down) for the settings' aperture, preview first."""
  blades = [settings.blades] + [b for b in apertures if b != settings.blades]
  plans = [plan_key(depth_small, settings, depth_m), plan_key(depth_m, settings)]
  keys = [(h, w, radius, b, highlights) for h, w, radius, _, highlights in plans for b in blades]
  for h, w, radius, b, highlights in plans:
    for other in (radius * 0.666, radius * 1.01):   # The buckets below and above.
      keys.append((h, w, render_plan.plan_max_radius(other), b, highlights))
  return list(dict.fromkeys(keys))   # Unique, in order.


def warm_up(key, programs=None):
  """Compiles, without rendering, the program of plan key `key` (see `plan_key`): the one
  render.render_photo (render_full's and render_preview's path) then uses, with its defaults.
  programs: as `render_full` (loaded from there when stored, else compiled and stored)."""
  h, w, radius, blades, highlights = key
  dof.compile_render(h, w, max_radius=radius, aperture_blades=blades, highlights=highlights,
                     programs=programs)


def cli_args(settings, photo="photo.jpg", depth_flags=("--depth=depth_mm.png",),
             output="bokeh.png"):
  """The `python -m dofjax.render` arguments (list of str) that make render_full's image;
  depth_flags say where depth came from (e.g. ['--depth=d.png', '--resize_depth'] or
  ['--workdir=W'])."""
  args = [photo, *depth_flags, f"--focus_px={settings.x},{settings.y}",
          f"--f_number={settings.f_number!r}", f"--focal_length_mm={settings.focal_length_mm!r}"]
  if not settings.highlights:
    args.append("--nohighlights")
  if settings.blades:
    args += [f"--aperture_blades={settings.blades}",
             f"--aperture_rotation_deg={settings.rotation_deg!r}"]
  return args + [f"--output={output}"]


def result_png(out, bits):
  """The full-size render as PNG bytes: the file `render.write_image` (the CLI's writer) makes."""
  fd, path = tempfile.mkstemp(prefix="dofjax-app-", suffix=".png")
  os.close(fd)
  try:
    render.write_image(path, out, bits)
    with open(path, "rb") as f:
      return f.read()
  finally:
    os.remove(path)


def jpeg(rgb):
  """HxWx3 RGB (uint8, or float in [0, 1]) -> JPEG bytes (quality 90) for the page."""
  import cv2
  bgr = np.ascontiguousarray(rgb[..., ::-1]) if rgb.dtype == np.uint8 else render.to_stored(rgb)
  ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
  if not ok:
    raise RuntimeError(f"cv2.imencode failed for an image of shape {rgb.shape}.")
  return data.tobytes()


def depth_preview(depth_m, long_side=DEPTH_VIEW_LONG_SIDE, filled=None):
  """Depth shown beside the photo: render.depth_visualisation (filled pixels striped), shrunk for
  the page (JPEG bytes)."""
  return jpeg(_shrink(render.depth_visualisation(depth_m, filled), long_side))


def photo_preview(image, long_side=DEPTH_VIEW_LONG_SIDE):
  """The uploaded photo shown on the page, as the server decoded it (HEIC too, which browsers do
  not show), shrunk (JPEG bytes)."""
  return jpeg(_shrink(image, long_side))


def _shrink(rgb, long_side):
  """HxWx3 image area-averaged so that its long side is <= long_side px."""
  import cv2
  h, w = rgb.shape[:2]
  scale = long_side / max(h, w)
  if scale < 1.0:
    rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                     interpolation=cv2.INTER_AREA)
  return rgb
