"""How RGB-D frames are stored on disk, and the one home of the millimetre <-> metre conversion.

Every dofjax builder stores (`local_builder.rgbd_features`):
  image  uint8 (H, W, 3)   the colour photo, 8-bit RGB PNG bytes;
  depth  uint16 (H, W, 1)  z distance in millimetres as 16-bit greyscale PNG bytes, with 0 and
                           values >= 65500 (INVALID_MM_AT_OR_ABOVE) marking invalid pixels, as in
                           DIML's depth_filled files;
  scene  string            the scene (or room) the frame belongs to;
  stem   string            the frame's name within the scene.
Code outside the files works in float32 metres with 0 = invalid (`millimetres_to_metres`).

The conversions accept numpy arrays of any shape. This module needs neither TFDS nor dofjax, so
dofjax can use it without loading TFDS.
"""

import cv2
import numpy as np

INVALID_MM_AT_OR_ABOVE = 65500


def millimetres_to_metres(depth_mm):
  """uint16 millimetres (any shape) -> float32 metres, invalid pixels (0 or >= 65500) -> 0."""
  depth_mm = np.asarray(depth_mm)
  metres = depth_mm.astype(np.float32) / 1000.0
  return np.where(depth_mm >= INVALID_MM_AT_OR_ABOVE, np.float32(0.0), metres).astype(np.float32)


def metres_to_millimetres(depth_m):
  """float metres -> uint16 millimetres, rounded; values <= 0 or beyond 65.499 m become 0."""
  depth_m = np.asarray(depth_m, dtype=np.float64)
  mm = np.round(depth_m * 1000.0)
  mm = np.where((mm <= 0) | (mm >= INVALID_MM_AT_OR_ABOVE), 0, mm)
  return mm.astype(np.uint16)


def encode_png(array: np.ndarray) -> bytes:
  """uint8 (H, W, 3) RGB, or uint8/uint16 (H, W[, 1]) grey -> PNG bytes (OpenCV, which wants
  BGR: the channel order is swapped here). RuntimeError if OpenCV cannot encode it."""
  if array.ndim == 3 and array.shape[-1] == 3:
    array = array[..., ::-1]
  ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
  if not ok:
    raise RuntimeError(f"OpenCV failed to encode a {array.dtype} {array.shape} array as PNG.")
  return buf.tobytes()
