"""Depth units and the network's depth encoding.

Depth is stored on disk as uint16 millimetres (0 = invalid, >= 65500 invalid too) and handled in
the code as float32 metres (0 = invalid); the conversions live with the storage format in
`tfds_diml.storage` and are re-exported here. The generator predicts an *inverse-depth code* in
[-1, 1] (its tanh output):

    code = 2 * (1/z - 1/far) / (1/near - 1/far) - 1,     z clipped to [near, far]

so code = +1 at `near` metres (bright = near) and -1 at `far` metres. Inverse depth is what the
circle of confusion is linear in (docs/design.md, "Units and conventions"), so an L1 loss on
this code is an L1 loss on defocus blur, and a colour map of it reads like the depth maps photographers expect.

Every function here accepts numpy or jax arrays (it only uses arithmetic and `.clip`), except
`resize_in_disparity` (numpy, OpenCV).
"""

import numpy as np

from tfds_diml.storage import INVALID_MM_AT_OR_ABOVE  # pylint: disable=unused-import
from tfds_diml.storage import metres_to_millimetres  # pylint: disable=unused-import
from tfds_diml.storage import millimetres_to_metres  # pylint: disable=unused-import

DEFAULT_NEAR_M = 0.5
DEFAULT_FAR_M = 10.0


def valid_mask(depth_m, near=1e-3, far=DEFAULT_FAR_M):
  """1.0 where near < depth_m < far (metres), else 0.0; same shape and array type as depth_m."""
  return ((depth_m > near) & (depth_m < far)).astype(depth_m.dtype)


def encode_depth(depth_m, near=DEFAULT_NEAR_M, far=DEFAULT_FAR_M):
  """Metres -> inverse-depth code in [-1, 1] (+1 = `near`, -1 = `far`). Invalid (0) maps to -1."""
  inv_near, inv_far = 1.0 / near, 1.0 / far
  z = depth_m.clip(near, far)
  code = 2.0 * (1.0 / z - inv_far) / (inv_near - inv_far) - 1.0
  valid = depth_m > 0
  return code * valid - (1.0 - valid)  # invalid -> -1 without np/jnp-specific `where`.


def decode_depth(code, near=DEFAULT_NEAR_M, far=DEFAULT_FAR_M):
  """Inverse-depth code in [-1, 1] -> metres in [near, far]; exact inverse of `encode_depth`."""
  inv_near, inv_far = 1.0 / near, 1.0 / far
  inv_z = (code.clip(-1.0, 1.0) + 1.0) * 0.5 * (inv_near - inv_far) + inv_far
  return 1.0 / inv_z


def resize_in_disparity(depth_m, height, width):
  """Resamples a photo's depth map (H, W) metres, 0 = invalid, to (height, width) float32 metres,
  interpolating disparity (bilinear) over the valid pixels; numpy only."""
  import cv2
  valid = (depth_m > 0).astype(np.float32)
  disp = np.where(depth_m > 0, 1.0 / np.maximum(depth_m, 1e-6), 0.0).astype(np.float32)
  num = cv2.resize(disp, (width, height), interpolation=cv2.INTER_LINEAR)
  den = cv2.resize(valid, (width, height), interpolation=cv2.INTER_LINEAR)
  out = np.where(den > 0.5, num / np.maximum(den, 1e-6), 0.0)
  return np.where(out > 0, 1.0 / np.maximum(out, 1e-6), 0.0).astype(np.float32)
