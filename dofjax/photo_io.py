"""Reading what photographers bring: depth files in their units and formats, and the photo's lens.

- Depth files: a 16-bit PNG (default unit millimetres) or a `.npy` array (default unit metres),
  holding depth, or inverse depth (disparity) with `disparity=True`, as phones and monocular
  models write it. `scale` is the file's unit in metres (or, for disparity, in 1/m). Pixels <= 0
  or not finite are invalid. A map whose valid median is under MIN_MEDIAN_M or over MAX_MEDIAN_M
  is rejected with a message saying what the file seems to hold.
- The lens: EXIF FocalLengthIn35mmFilm (or FocalLength with it) gives the focal length on a
  36 mm wide sensor (`exif_lens`).
- Phone photos with their own depth (HEIC/HEIF, as iPhone portraits): read with pillow-heif (the
  optional `heif` extra), the depth image decoded by its representation type (uniform inverse
  depth, uniform disparity in 1/m, or uniform depth, normalised between the metadata's d_min and
  d_max; `heic_depth_to_metres`), oriented like the photo and upsampled to the photo's size
  guided by it (`depth_completion.upsample_guided`).

Depth is in metres, 0 = invalid (docs/design.md).
"""

import os

import numpy as np
from PIL import Image

from dofjax import depth_completion
from dofjax import errors
from dofjax import real_frames

MIN_MEDIAN_M = 0.05           # A depth map whose valid median is outside [0.05 m, 1000 m] is ...
MAX_MEDIAN_M = 1000.0         # ... in another unit than the one stated.
DEFAULT_SCALE = {".png": 0.001, ".npy": 1.0}    # Metres per stored unit, by file type.
FULL_FRAME_WIDTH_MM = 36.0


def read_depth_file(path, *, scale=None, disparity=False, option="--depth_scale"):
  """A depth (or disparity) file -> (H, W) float32 metres, 0 = invalid.

  Args:
    path: a 16-bit single-channel PNG or a 2-D `.npy` array.
    scale: metres per stored unit (disparity: 1/m per stored unit); None: DEFAULT_SCALE of the
      file type (PNG millimetres, .npy metres; disparity: 1).
    disparity: the file holds inverse depth; depth = 1 / (value * scale).
    option: the flag or field that sets `scale`, named in messages.
  Returns:
    (H, W) float32 metres. UserError if unreadable, of another format, or implausible in the
    stated unit (`check_depth_units`).
  """
  ext = os.path.splitext(path)[1].lower()
  if ext not in DEFAULT_SCALE:
    raise errors.UserError(f"the depth map {path!r} must be a 16-bit PNG or a .npy array.")
  if scale is None:
    scale = 1.0 if disparity else DEFAULT_SCALE[ext]
  if ext == ".npy":
    raw = _read_npy(path)
    depth, raw_valid = _to_metres(raw, scale, disparity), raw[np.isfinite(raw) & (raw > 0)]
  else:
    raw = real_frames.read_depth_png(path)
    # Every uint16 value converted once, then looked up: the same numbers, one pass at 12 MP.
    depth = _to_metres(np.arange(1 << 16, dtype=np.float64), scale, disparity)[raw]
    raw_valid = raw[raw > 0]
  check_depth_units(depth, raw_valid, path=path, scale=scale, disparity=disparity, option=option)
  return depth


def _to_metres(raw, scale, disparity):
  """Stored values (float64 array) -> float32 metres, 0 where a value is invalid (not finite or
  <= 0): value * scale, or with `disparity` 1 / (value * scale)."""
  valid = np.isfinite(raw) & (raw > 0)
  values = np.where(valid, raw, 0.0) * scale
  if disparity:
    values = np.where(valid, 1.0 / np.where(valid, values, 1.0), 0.0)
  return values.astype(np.float32)


def _read_npy(path):
  """A 2-D numeric .npy array (H, W) or (H, W, 1) as float64; UserError otherwise."""
  if not os.path.isfile(path):
    raise errors.UserError(f"cannot read the depth map {path!r}: no such file.")
  try:
    raw = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise errors.UserError(f"cannot read the depth map {path!r}: not a .npy array ({e}).") from None
  if raw.ndim == 3 and raw.shape[-1] == 1:
    raw = raw[..., 0]
  if raw.ndim != 2 or not np.issubdtype(raw.dtype, np.number):
    raise errors.UserError(f"the depth map {path!r} must be a 2-D numeric array (H, W); got "
                           f"shape {raw.shape} of {raw.dtype}.")
  return raw.astype(np.float64)


def check_depth_units(depth_m, raw_valid, *, path, scale, disparity, option):
  """UserError unless some pixel is valid and the valid median depth is within [MIN_MEDIAN_M,
  MAX_MEDIAN_M]; the message says what the file seems to hold and which `option` value fits.

  depth_m: (H, W) metres; raw_valid: the file's valid stored values (1-D)."""
  what = "disparity" if disparity else "depth"
  if raw_valid.size == 0:
    raise errors.UserError(f"the depth map {path!r} has no valid pixels (all 0, negative or not "
                           "finite).")
  median = float(np.median(depth_m[depth_m > 0]))
  if MIN_MEDIAN_M <= median <= MAX_MEDIAN_M:
    return
  raw_median = float(np.median(raw_valid))
  lo, hi = np.percentile(raw_valid, [1, 99])
  guess = ""
  for unit, s in (("metres", 1.0), ("centimetres", 0.01), ("millimetres", 0.001)):
    z = 1.0 / (raw_median * s) if disparity else raw_median * s
    if not disparity and MIN_MEDIAN_M <= z <= 20.0:
      guess = f"; it seems to hold {unit}: pass {option}={s:g}"
      break
  if disparity and not guess:
    guess = ("; relative disparity (as monocular models write it) has no metric scale: pass "
             f"{option}=S with depth = 1 / (value x S) in metres")
  raise errors.UserError(
      f"the depth map {path!r} gives a median depth of {median:.3g} m with {option}={scale:g} "
      f"(its valid {what} values run {lo:.3g}-{hi:.3g}), which is not a plausible photo's "
      f"depth{guess}.")


def exif_lens(path):
  """The lens of a photo from its EXIF: (focal_length_mm on a FULL_FRAME_WIDTH_MM sensor, source
  text) from FocalLengthIn35mmFilm, or None when the photo has none (or no EXIF). A HEIC photo
  needs pillow-heif (UserError without it, as `read_heic`)."""
  try:
    with (_open_heic(path) if is_heic(path) else Image.open(path)) as im:
      if im.format == "PNG" and "exif" not in im.info and not _png_has_exif(path):
        return None     # Else PIL would decode the whole image looking for an eXIf chunk.
      exif = im.getexif()
  except (OSError, ValueError):
    return None
  ifd = exif.get_ifd(0x8769) if exif else {}
  f35 = ifd.get(0xA405)           # FocalLengthIn35mmFilm (mm).
  real = ifd.get(0x920A)          # FocalLength (mm, the real one).
  if f35:
    source = "EXIF FocalLengthIn35mmFilm"
    if real:
      source += f" (real focal length {float(real):.3g} mm)"
    return float(f35), source
  return None


def _png_has_exif(path):
  """Whether the PNG file `path` holds an eXIf chunk anywhere: walks the chunk headers, seeking
  past their data, without decoding the image. OSError if unreadable."""
  with open(path, "rb") as f:
    f.seek(8)                              # The PNG signature.
    while True:
      head = f.read(8)
      if len(head) < 8 or head[4:] == b"IEND":
        return False
      if head[4:] == b"eXIf":
        return True
      f.seek(int.from_bytes(head[:4], "big") + 4, os.SEEK_CUR)   # Data and CRC.


HEIC_EXTENSIONS = (".heic", ".heif", ".hif")
# HEIF depth representation types (ISO/IEC 23002-3, as libheif numbers them).
_INVERSE_Z, _DISPARITY, _Z = 0, 1, 2


def is_heic(path):
  """Whether `path` names a HEIC/HEIF photo (by its extension)."""
  return os.path.splitext(path)[1].lower() in HEIC_EXTENSIONS


def _open_heic(path):
  """PIL image of a HEIC/HEIF file (pillow-heif registered); UserError if pillow-heif is missing
  or the file is unreadable."""
  try:
    import pillow_heif  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.UserError(f"{os.path.basename(path)} is a HEIC photo; reading it needs "
                           "pillow-heif: pip install 'dofjax[heif]' (or pip install pillow-heif)."
                           ) from None
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pillow_heif.register_heif_opener()
  if not os.path.isfile(path):
    raise errors.UserError(f"cannot read the photo {path!r}: no such file.")
  try:
    return Image.open(path)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"cannot read the photo {path!r}: not a readable HEIC ({e}).") from None


def read_heic(path):
  """A HEIC/HEIF photo -> (float32 (H, W, 3) sRGB in [0, 1], bits 8, depth (H, W) float32 metres
  from its own depth image at the photo's size, or None when it has none)."""
  with _open_heic(path) as im:
    image = np.asarray(im.convert("RGB"), np.float32) / 255.0
    depth_images = im.info.get("depth_images") or []
    orientation = int(im.info.get("original_orientation") or 1)
    if not depth_images:
      return image, 8, None
    d = depth_images[0]
    meta = dict(d.info.get("metadata") or {})
    values = np.asarray(d.to_pillow(), np.float64)
  h, w = image.shape[:2]
  if values.ndim == 3:
    values = values[..., 0]
  values /= 65535.0 if values.max() > 255 else 255.0
  depth = heic_depth_to_metres(values, meta, path)
  oriented = _orient(depth, orientation)
  if (oriented.shape[0] > oriented.shape[1]) == (h > w) or depth.shape[0] == depth.shape[1]:
    depth = oriented
  disparity = depth_completion.upsample_guided(image, 1.0 / depth, h, w)
  return image, 8, (1.0 / disparity).astype(np.float32)


def heic_depth_to_metres(t, meta, path="photo"):
  """A HEIF depth image normalised to t in [0, 1] (H, W) -> metres (H, W), by the metadata's
  representation_type (0 uniform inverse depth, 1 uniform disparity in 1/m, 2 uniform depth) and
  its d_min / d_max. UserError for other types or missing metadata."""
  kind, lo, hi = meta.get("representation_type"), meta.get("d_min"), meta.get("d_max")
  if kind not in (_INVERSE_Z, _DISPARITY, _Z) or not lo or not hi or lo <= 0 or hi <= 0:
    raise errors.UserError(
        f"{os.path.basename(path)}: its depth image has a representation this reader does not "
        f"know (type {kind}, d_min {lo}, d_max {hi}); pass --depth=D with a depth map instead.")
  if kind == _INVERSE_Z:        # d_min = nearest z, d_max = farthest z; bright = near.
    return 1.0 / (1.0 / hi + t * (1.0 / lo - 1.0 / hi))
  if kind == _DISPARITY:        # Disparity (1/m) from d_min to d_max; bright = near.
    return 1.0 / (lo + t * (hi - lo))
  return lo + t * (hi - lo)


def _orient(a, orientation):
  """(H, W) array turned as EXIF orientation 1-8 says the picture must be to stand upright."""
  ops = {1: lambda x: x, 2: np.fliplr, 3: lambda x: np.rot90(x, 2), 4: np.flipud,
         5: lambda x: x.T, 6: lambda x: np.rot90(x, -1), 7: lambda x: np.rot90(x, 2).T,
         8: lambda x: np.rot90(x, 1)}
  return np.ascontiguousarray(ops.get(orientation, ops[1])(a))
