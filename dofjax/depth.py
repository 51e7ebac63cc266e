"""Depth units and the network's depth encoding.

Depth is stored on disk as uint16 millimetres (0 = invalid, >= 65500 invalid too) and handled in
the code as float32 metres (0 = invalid). The generator predicts an *inverse-depth code* in
[-1, 1] (its tanh output):

    code = 2 * (1/z - 1/far) / (1/near - 1/far) - 1,     z clipped to [near, far]

so code = +1 at `near` metres (bright = near) and -1 at `far` metres. Inverse depth is what the
circle of confusion is linear in (DESIGN.md section 7), so an L1 loss on this code is an L1 loss on
defocus blur, and a colour map of it reads like the depth maps photographers expect.

Every function here accepts numpy or jax arrays (it only uses arithmetic and `.clip`).
"""

DEFAULT_NEAR_M = 0.5
DEFAULT_FAR_M = 10.0
INVALID_MM_AT_OR_ABOVE = 65500


def millimetres_to_metres(depth_mm):
  """uint16 millimetres (any shape) -> float32 metres, invalid pixels (0 or >= 65500) -> 0."""
  import numpy as np
  depth_mm = np.asarray(depth_mm)
  metres = depth_mm.astype(np.float32) / 1000.0
  return np.where(depth_mm >= INVALID_MM_AT_OR_ABOVE, np.float32(0.0), metres).astype(np.float32)


def metres_to_millimetres(depth_m):
  """float metres -> uint16 millimetres, rounded; values <= 0 or beyond 65.499 m become 0."""
  import numpy as np
  depth_m = np.asarray(depth_m, dtype=np.float64)
  mm = np.round(depth_m * 1000.0)
  mm = np.where((mm <= 0) | (mm >= INVALID_MM_AT_OR_ABOVE), 0, mm)
  return mm.astype(np.uint16)


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
