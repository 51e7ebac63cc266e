"""Procedural indoor RGB-D scenes with exact depth, rendered by vectorised numpy ray casting.

A `Scene` is a room (floor, four walls, ceiling) holding boxes and spheres with procedural
textures, lit by an ambient term and point lights with hard shadows, seen by a pinhole camera.

World frame: metres, y up; the room spans `Room.lo`..`Room.hi` with the floor at y = 0.
Camera frame (OpenCV): x right, y down, z forward. `Camera.rotation` is world_from_camera (its
columns are the camera's right, down and forward axes in world coordinates).

Intrinsics (square pixels, principal point at the image centre):
    fx = fy = focal_length_mm / sensor_width_mm * width      [pixels]
    pixel (row i, column j) is sampled at its centre (j + 0.5, i + 0.5).

Depth is the z distance along the optical axis (not the ray length). Every ray direction is
scaled so its camera-z component is 1, so the ray parameter t *is* the z depth.

Thin lens (`render_thin_lens`): the aperture is a disc of diameter A = focal_length / f_number in
the lens plane (camera z = 0); every sample ray leaves a point of that disc and passes through the
point where the pixel's pinhole ray meets the focal plane z = focus_distance_m. The field of view
is kept that of the pinhole camera, so a point at depth z is spread into a disc of diameter

    c_px = A * fx * |1 / focus_distance_m - 1 / z|                         (`coc_diameter_px`)

pixels: the thin-lens formula of docs/design.md with (z_f - f) replaced by z_f (sensor at
distance f, no focus breathing). Renders are averaged in linear light; pinhole renders are clipped to [0, 1]
before averaging (a sensor that saturates per view), so the thin-lens render is exactly the
aperture average of what `render_pinhole` returns, and an infinitely small aperture gives back
the pinhole image exactly. No sub-pixel jitter is used, for the same reason.

Highlights (`random_hdr_scene`): materials may emit (`Material.emission`), so lamps, windows and
glints exceed white. `render_thin_lens(..., clip_each_view=False)` then averages the unclipped
radiance and clips once, as a sensor behind a real lens does: a clipped glint blurs into a disc
that is still white, not a dim smudge.

Shading is view independent (Lambertian), so all aperture samples see the same radiance for a
surface point.
"""

import dataclasses
import functools
import math
from typing import Optional, Tuple, Union

import numpy as np

_EPS = 1e-4
_MAX_CAMERA_Z = 0.9  # Cameras stand within 0.9 m of the room's z = 0 wall, looking along +z.
_NUM_ROOM_FACES = 6  # Surface ids 0..5: x-, x+, y- (floor), y+ (ceiling), z-, z+.
TEXTURE_KINDS = ("solid", "checker", "stripes", "noise", "marble", "tiles")


@dataclasses.dataclass(frozen=True, eq=False)
class Material:
  """A procedural texture: `kind` in TEXTURE_KINDS mixing two linear-RGB albedos."""
  kind: str
  color_a: np.ndarray  # (3,) linear RGB albedo in [0, 1].
  color_b: np.ndarray  # (3,) linear RGB albedo in [0, 1].
  scale: float         # Pattern period in metres.
  angle: float         # Pattern orientation in radians (stripes, marble).
  seed: int            # Noise seed.
  emission: float = 0.0  # Emitted linear radiance, as a multiple of the albedo (lamps, windows).
  # Optional image texture (`texture_albedo`): a mip pyramid of linear-RGB (h, w, 3) float32
  # images, finest first, tinted by color_a (kind, color_b, scale, angle are then unused). One
  # repeat spans texture_size_m metres of the surface's (u, v) coordinates, starting at
  # texture_origin_m; a negative size mirrors that axis.
  texture: Optional[Tuple[np.ndarray, ...]] = None
  texture_size_m: Tuple[float, float] = (1.0, 1.0)
  texture_origin_m: Tuple[float, float] = (0.0, 0.0)


@dataclasses.dataclass(frozen=True, eq=False)
class Room:
  """The inside of the box lo..hi (metres); materials for x-, x+, floor, ceiling, z-, z+."""
  lo: np.ndarray
  hi: np.ndarray
  materials: Tuple[Material, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class Box:
  """A box of half extents `half_size` (metres) centred at `center`, turned by `yaw` about y."""
  center: np.ndarray
  half_size: np.ndarray
  yaw: float
  material: Material


@dataclasses.dataclass(frozen=True, eq=False)
class Sphere:
  """A sphere (metres)."""
  center: np.ndarray
  radius: float
  material: Material


@dataclasses.dataclass(frozen=True, eq=False)
class Cylinder:
  """An upright cylinder (axis along world y) of `radius` and `half_height` metres."""
  center: np.ndarray
  radius: float
  half_height: float
  material: Material


@dataclasses.dataclass(frozen=True, eq=False)
class Light:
  """A point light; `intensity` is linear RGB irradiance at 1 m, facing the light.

  Area light (soft shadows) when `extent` is set: the light is spread over the box
  position +- extent (half extents, metres; zero along the normal of a flat panel), sampled by
  `samples` shadow rays per shaded point, each carrying intensity / samples. `normal`, if set,
  makes it a one-sided emitter (a ceiling panel, a window) radiating with a cosine falloff.
  """
  position: np.ndarray
  intensity: np.ndarray
  extent: Optional[np.ndarray] = None
  normal: Optional[np.ndarray] = None
  samples: int = 1


@dataclasses.dataclass(frozen=True, eq=False)
class Indirect:
  """A cheap stand-in for light bounced around the room, replacing the constant ambient.

  A surface facing up receives `from_above` (linear RGB, the ceiling's and walls' bounce), one
  facing down `from_below` (the floor's bounce), others a blend by the normal's y. It is darkened
  by ambient occlusion estimated from distances to the scene's surfaces (`_ambient_occlusion`),
  by up to `occlusion` (0 = none, 1 = full).
  """
  from_above: np.ndarray
  from_below: np.ndarray
  occlusion: float = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class Camera:
  """Pinhole pose and optics. fx_px = focal_length_mm / sensor_width_mm * image width."""
  position: np.ndarray   # (3,) world metres.
  rotation: np.ndarray   # (3, 3) world_from_camera; columns: right, down, forward.
  focal_length_mm: float
  sensor_width_mm: float

  def intrinsics(self, height: int, width: int) -> Tuple[float, float, float, float]:
    """(fx, fy, cx, cy) in pixels for an image of height x width pixels."""
    fx = self.focal_length_mm / self.sensor_width_mm * width
    return fx, fx, width / 2.0, height / 2.0


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
  """Everything `render_pinhole` needs. Change parts with `dataclasses.replace`."""
  room: Room
  objects: Tuple[Union[Box, Sphere, Cylinder], ...]
  lights: Tuple[Light, ...]
  ambient: float
  camera: Camera
  indirect: Optional[Indirect] = None  # Replaces `ambient` when set.
  # Index tuples of objects tested as one group against their joint bounding box first (a
  # one-level hierarchy that lets rays skip whole pieces of furniture); objects in no group are
  # tested on their own. Grouping never changes what a ray hits, only the time it takes.
  groups: Tuple[Tuple[int, ...], ...] = ()


# ----------------------------------------------------------------------------------------------
# Colour helpers.


def srgb_to_linear(x):
  """sRGB in [0, 1] -> linear light in [0, 1] (any shape)."""
  x = np.asarray(x, np.float32)
  return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x):
  """Linear light -> sRGB in [0, 1] (any shape; input clipped to [0, 1] first)."""
  x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
  return np.where(x <= 0.0031308, x * 12.92,
                  1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Random scenes.


def random_colour(rng, saturation_range, value_range):
  """A random linear-RGB albedo from an HSV draw (saturation/value ranges in sRGB terms)."""
  h = rng.uniform(0.0, 1.0)
  s = rng.uniform(*saturation_range)
  v = rng.uniform(*value_range)
  k = np.array([5.0, 3.0, 1.0])
  rgb = v - v * s * np.clip(np.minimum((k + h * 6.0) % 6.0, 4.0 - (k + h * 6.0) % 6.0), 0.0, 1.0)
  return srgb_to_linear(rgb)


def _random_material(rng, kinds, saturation_range, value_range, scale_range):
  """A Material with a kind drawn from `kinds` and two related colours."""
  kind = str(rng.choice(kinds))
  a = random_colour(rng, saturation_range, value_range)
  if rng.uniform() < 0.5:  # A darker/lighter shade of the same colour, or a second colour.
    b = np.clip(a * rng.uniform(0.3, 0.7), 0.0, 1.0).astype(np.float32)
  else:
    b = random_colour(rng, saturation_range, value_range)
  return Material(kind=kind, color_a=a, color_b=b, scale=float(rng.uniform(*scale_range)),
                  angle=float(rng.uniform(0.0, math.pi)), seed=int(rng.integers(0, 2**31 - 1)))


def camera_rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
  """world_from_camera (3, 3), columns right, down, forward, for a camera turned by yaw about
  world y (0 = looking along +z), pitched by `pitch` radians (negative = looking down) and
  rolled by `roll` radians about its forward axis."""
  forward = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch),
                      math.cos(yaw) * math.cos(pitch)])
  right = np.cross(forward, [0.0, 1.0, 0.0])
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  if roll:
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, c * down - s * right
  return np.stack([right, down, forward], axis=1)


def random_scene(seed: int, *, view: int = 0) -> Scene:
  """A random furnished room and camera pose, deterministic in (seed, view).

  Args:
    seed: chooses the room: size, textures, objects, lights.
    view: chooses the camera pose inside that room (several views of one room share everything
      but the camera).

  Returns:
    A Scene. Rooms are 3.5-7 m wide, 4-8 m deep, 2.4-3.2 m high; the camera stands 1-1.7 m high
    near one end, looking into the room; the horizontal field of view is 50-75 degrees
    (focal_length_mm 24-38 on a 36 mm-wide sensor).
  """
  rng = np.random.default_rng([int(seed), 7919])
  size = np.array([rng.uniform(3.5, 7.0), rng.uniform(2.4, 3.2), rng.uniform(4.0, 8.0)])
  wall = _random_material(rng, ["solid", "noise", "stripes", "tiles"], (0.05, 0.35),
                          (0.55, 0.95), (0.3, 1.5))
  back_wall = _random_material(rng, ["solid", "noise", "stripes", "checker", "tiles"],
                               (0.05, 0.5), (0.4, 0.95), (0.2, 1.2))
  floor = _random_material(rng, ["checker", "tiles", "marble", "noise", "stripes"], (0.1, 0.6),
                           (0.25, 0.8), (0.3, 1.2))
  ceiling = _random_material(rng, ["solid", "noise"], (0.0, 0.1), (0.8, 0.98), (0.5, 2.0))
  room = Room(lo=np.zeros(3), hi=size,
              materials=(wall, wall, floor, ceiling, back_wall, back_wall))

  # Camera pose for this view (drawn before the objects so objects can avoid it).
  vrng = np.random.default_rng([int(seed), int(view), 104729])
  cam_pos = np.array([vrng.uniform(0.3, 0.7) * size[0], vrng.uniform(1.0, 1.7),
                      vrng.uniform(0.3, _MAX_CAMERA_Z)])
  yaw = vrng.uniform(-0.45, 0.45)
  pitch = vrng.uniform(-0.35, 0.02)
  focal = float(vrng.uniform(24.0, 38.0))
  camera = Camera(position=cam_pos, rotation=camera_rotation(yaw, pitch),
                  focal_length_mm=focal, sensor_width_mm=36.0)

  objects = []
  obj_kinds = list(TEXTURE_KINDS)
  for _ in range(int(rng.integers(3, 9))):
    mat = _random_material(rng, obj_kinds, (0.2, 0.9), (0.2, 0.95), (0.08, 0.6))
    x = rng.uniform(0.1, 0.9) * size[0]
    z01 = rng.uniform()
    if rng.uniform() < 0.6:
      half = np.array([rng.uniform(0.15, 0.8), rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.8)])
      if rng.uniform() < 0.15:  # A shelf or picture on the wall, off the floor.
        y = rng.uniform(0.8, size[1] - 0.5)
        half[1] = min(half[1], 0.4)
      else:
        y = half[1]
      extent = float(np.hypot(half[0], half[2]))
      obj = Box(center=np.array([x, y, 0.0]), half_size=half,
                yaw=float(rng.uniform(-0.8, 0.8)), material=mat)
    else:
      r = rng.uniform(0.12, 0.55)
      extent = r
      obj = Sphere(center=np.array([x, r, 0.0]), radius=float(r), material=mat)
    # At least 0.6 m in front of the furthest camera position (z = 0.9 m), inside the room.
    z_lo, z_hi = _MAX_CAMERA_Z + 0.6 + extent, size[2] - 0.05 - extent
    if z_lo < z_hi:
      obj.center[2] = z_lo + z01 * (z_hi - z_lo)
      objects.append(obj)
  kept = [o for o in objects if not _near_point(o, cam_pos, 0.3)]  # Belt and braces.

  lights = []
  for _ in range(int(rng.integers(1, 3))):
    pos = np.array([rng.uniform(0.2, 0.8) * size[0], size[1] - 0.15,
                    rng.uniform(0.2, 0.8) * size[2]])
    warm = np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.65, 0.95)])
    lights.append(Light(position=pos, intensity=(warm * rng.uniform(1.5, 3.0)).astype(np.float32)))
  return Scene(room=room, objects=tuple(kept), lights=tuple(lights),
               ambient=float(rng.uniform(0.12, 0.25)), camera=camera)


def random_hdr_scene(seed: int, *, view: int = 0) -> Scene:
  """`random_scene(seed, view=view)` plus emitters brighter than white, in view of the camera.

  Adds, deterministic in seed (placed in view of the room's view-0 camera, so every view shares
  them): 1-2 bright windows on the back wall (linear radiance ~1.5-4), 2-3 lamps (spheres of
  4-12 cm, radiance ~3-12) and 2-4 specular glints (spheres of 1-2.5 cm, radiance ~10-40) at
  1.2 m to the far wall. Render with `render_thin_lens(..., clip_each_view=False)` for the
  ground truth of a lens blurring them; `render_pinhole` gives the clipped photo.
  """
  scene = random_scene(seed, view=view)
  cam = random_scene(seed, view=0).camera
  rng = np.random.default_rng([int(seed), 52711])
  lo, hi = scene.room.lo, scene.room.hi
  tan_x = 0.5 * cam.sensor_width_mm / cam.focal_length_mm  # Half field of view (tan), 4:3.
  white = lambda: np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 1.0)], np.float32)
  emitters = []
  for _ in range(int(rng.integers(1, 3))):  # Windows: thin glowing boxes on the back wall.
    half = np.array([rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.45), 0.01])
    centre = np.array([rng.uniform(lo[0] + half[0] + 0.1, hi[0] - half[0] - 0.1),
                       rng.uniform(1.0, hi[1] - half[1] - 0.1), hi[2] - 0.01])
    emitters.append(Box(center=centre, half_size=half, yaw=0.0,
                        material=_emitter(rng, white(), rng.uniform(1.5, 4.0))))
  for radius_range, gain_range, count in (((0.04, 0.12), (3.0, 12.0), rng.integers(2, 4)),
                                          ((0.01, 0.025), (10.0, 40.0), rng.integers(2, 5))):
    for _ in range(int(count)):
      r = float(rng.uniform(*radius_range))
      z = rng.uniform(1.2, hi[2] - cam.position[2] - 0.3)
      ray = np.array([rng.uniform(-0.8, 0.8) * tan_x, rng.uniform(-0.6, 0.6) * tan_x, 1.0])
      centre = np.clip(cam.rotation @ (ray * z) + cam.position, lo + r + 0.02, hi - r - 0.02)
      emitters.append(Sphere(center=centre, radius=r,
                             material=_emitter(rng, white(), rng.uniform(*gain_range))))
  return dataclasses.replace(scene, objects=scene.objects + tuple(emitters))


def _emitter(rng, colour, gain):
  """A solid material of linear albedo `colour` (3,) glowing with radiance ~ gain * colour."""
  return Material(kind="solid", color_a=colour, color_b=colour, scale=1.0, angle=0.0,
                  seed=int(rng.integers(0, 2**31 - 1)), emission=float(gain))


def _near_point(obj, p, margin):
  """True if point p (3,) lies within `margin` metres of the object's bounding volume."""
  if isinstance(obj, Sphere):
    return float(np.linalg.norm(p - obj.center)) < obj.radius + margin
  local = _to_box_frame(obj, (p - obj.center)[None])[0]
  return bool(np.all(np.abs(local) < obj.half_size + margin))


# ----------------------------------------------------------------------------------------------
# Ray casting. Rays: origins (N, 3), directions (N, 3), both float32 world coordinates.


def _to_box_frame(box, v):
  """Rotates world vectors v (N, 3) into the box's local frame (inverse yaw about y)."""
  c, s = math.cos(box.yaw), math.sin(box.yaw)
  x, y, z = v[:, 0], v[:, 1], v[:, 2]
  return np.stack([c * x - s * z, y, s * x + c * z], axis=1)


def _from_box_frame(box, v):
  """Rotates local box vectors v (N, 3) back to world coordinates."""
  c, s = math.cos(box.yaw), math.sin(box.yaw)
  x, y, z = v[:, 0], v[:, 1], v[:, 2]
  return np.stack([c * x + s * z, y, -s * x + c * z], axis=1)


def _safe_inverse(d):
  """1/d, finite: exact zeros (axis-parallel rays) are replaced by 1e-30."""
  return np.float32(1.0) / np.where(d == 0, np.float32(1e-30), d)


# The intersection routines take component-major rays, O and D of shape (3, N), so every
# operation runs on contiguous (N,) arrays (much faster than reducing over a trailing axis of 3).


def _intersect_box(box, O, D, inv_d=None):
  """Ray parameter (N,) of the first hit with the box, +inf where missed or behind.

  inv_d: optional `_safe_inverse` of D's three rows, reused for unturned boxes (yaw 0, where
  the local directions equal D exactly, so the result is the same bit for bit)."""
  c, s = np.float32(math.cos(box.yaw)), np.float32(math.sin(box.yaw))
  px, py, pz = (O[i] - np.float32(box.center[i]) for i in range(3))
  if box.yaw == 0 and inv_d is not None:
    local_o, local_d = (px, py, pz), inv_d
  else:
    local_o = (c * px - s * pz, py, s * px + c * pz)
    local_d = [_safe_inverse(x) for x in (c * D[0] - s * D[2], D[1], s * D[0] + c * D[2])]
  tmin = tmax = None
  for lo, inv, h in zip(local_o, local_d, box.half_size.astype(np.float32)):
    t1 = (-h - lo) * inv
    t2 = (h - lo) * inv
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    tmin = near if tmin is None else np.maximum(tmin, near)
    tmax = far if tmax is None else np.minimum(tmax, far)
  hit = (tmax >= tmin) & (tmin > _EPS)
  return np.where(hit, tmin, np.float32(np.inf)).astype(np.float32)


def _intersect_sphere(sphere, O, D):
  """Ray parameter (N,) of the first hit with the sphere, +inf where missed or behind."""
  oc = [O[i] - np.float32(sphere.center[i]) for i in range(3)]
  a = D[0] * D[0] + D[1] * D[1] + D[2] * D[2]
  b = oc[0] * D[0] + oc[1] * D[1] + oc[2] * D[2]
  c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - np.float32(sphere.radius) ** 2
  disc = b * b - a * c
  t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
  return np.where((disc >= 0) & (t > _EPS), t, np.float32(np.inf)).astype(np.float32)


def _intersect_cylinder(cyl, O, D):
  """Ray parameter (N,) of the first hit with an upright cylinder (side or the cap facing the
  ray), +inf where missed or behind."""
  ox, oy, oz = (O[i] - np.float32(cyl.center[i]) for i in range(3))
  h, r2 = np.float32(cyl.half_height), np.float32(cyl.radius) ** 2
  a = D[0] * D[0] + D[2] * D[2]
  b = ox * D[0] + oz * D[2]
  disc = b * b - a * (ox * ox + oz * oz - r2)
  side = (-b - np.sqrt(np.maximum(disc, 0.0))) * _safe_inverse(a)
  side_ok = (disc >= 0) & (a > 0) & (side > _EPS) & (np.abs(oy + side * D[1]) <= h)
  cap = (np.where(D[1] < 0, h, -h) - oy) * _safe_inverse(D[1])
  with np.errstate(over="ignore"):  # Rays parallel to the caps: cap ~ 1e30 and cx * cx = inf.
    cx, cz = ox + cap * D[0], oz + cap * D[2]
    cap_ok = (cap > _EPS) & (cx * cx + cz * cz <= r2)
  t = np.minimum(np.where(side_ok, side, np.inf), np.where(cap_ok, cap, np.inf))
  return t.astype(np.float32)


def _intersect_object(obj, O, D, inv_d=None):
  if isinstance(obj, Box):
    return _intersect_box(obj, O, D, inv_d)
  if isinstance(obj, Cylinder):
    return _intersect_cylinder(obj, O, D)
  return _intersect_sphere(obj, O, D)


def object_bounds(obj) -> Tuple[np.ndarray, np.ndarray]:
  """Axis-aligned bounding box (lo (3,), hi (3,), metres) of a Box, Sphere or Cylinder."""
  if isinstance(obj, Box):
    c, s = abs(math.cos(obj.yaw)), abs(math.sin(obj.yaw))
    hx, hy, hz = obj.half_size
    half = np.array([c * hx + s * hz, hy, s * hx + c * hz])
  elif isinstance(obj, Cylinder):
    half = np.array([obj.radius, obj.half_height, obj.radius])
  else:
    half = np.full(3, obj.radius)
  return obj.center - half, obj.center + half


@functools.lru_cache(maxsize=4)  # Scenes hash by identity (eq=False): one entry per Scene.
def _group_bounds(scene):
  """[(lo, hi)] float32 bounding boxes of scene.groups, in order."""
  out = []
  for group in scene.groups:
    bounds = [object_bounds(scene.objects[k]) for k in group]
    out.append((np.min([b[0] for b in bounds], axis=0).astype(np.float32),
                np.max([b[1] for b in bounds], axis=0).astype(np.float32)))
  return out


def _enter_aabb(lo, hi, O, inv_d):
  """Ray parameter (N,) where rays O (3, N or 1) with inverse directions inv_d (3 rows of (N,))
  enter the box lo..hi (0 if they start inside), +inf if they miss it or it lies behind them."""
  tmin, tmax = np.float32(0.0), np.float32(np.inf)
  for axis in range(3):
    inv = inv_d[axis]
    t1, t2 = (lo[axis] - O[axis]) * inv, (hi[axis] - O[axis]) * inv
    tmin, tmax = np.maximum(tmin, np.minimum(t1, t2)), np.minimum(tmax, np.maximum(t1, t2))
  return np.where(tmax >= tmin, tmin, np.float32(np.inf))


def _ungrouped(scene):
  """Indices of the objects that belong to no group."""
  grouped = {k for group in scene.groups for k in group}
  return [k for k in range(len(scene.objects)) if k not in grouped]


def _intersect_room(room, O, D):
  """(t, face) of rays leaving the room from inside: t (N,), face (N,) int in 0..5."""
  t = surface = None
  for axis in range(3):
    positive = D[axis] > 0
    bound = np.where(positive, np.float32(room.hi[axis]), np.float32(room.lo[axis]))
    t_axis = (bound - O[axis]) * _safe_inverse(D[axis])
    face = (2 * axis + positive).astype(np.int32)
    if t is None:
      t, surface = t_axis, face
    else:
      closer = t_axis < t
      t = np.where(closer, t_axis, t)
      surface = np.where(closer, face, surface)
  return t.astype(np.float32), surface


def _cast(scene, O, D):
  """Closest hit of component-major rays O (3, N or 1), D (3, N): t (N,) float32 and surface
  id (N,) int32 (0..5 room faces, 6+k object k)."""
  t, surface = _intersect_room(scene.room, O, D)
  inv_d = [_safe_inverse(x) for x in D]
  t, surface = _closest(scene, _ungrouped(scene), O, D, t, surface, inv_d)
  for group, (lo, hi) in zip(scene.groups, _group_bounds(scene)):
    idx = np.nonzero(_enter_aabb(lo, hi, O, inv_d) < t)[0]
    if idx.size:
      sub_o = O[:, idx] if O.shape[1] > 1 else O
      t[idx], surface[idx] = _closest(scene, group, sub_o, D[:, idx], t[idx], surface[idx],
                                      [x[idx] for x in inv_d])
  return t, surface


def _closest(scene, indices, O, D, t, surface, inv_d=None):
  """(t, surface) updated with the hits of objects `indices` that are closer than t."""
  for k in indices:
    tk = _intersect_object(scene.objects[k], O, D, inv_d)
    closer = tk < t
    t = np.where(closer, tk, t)
    surface = np.where(closer, np.int32(_NUM_ROOM_FACES + k), surface)
  return t, surface


def _occluded(scene, o, d):
  """True (N,) where an object blocks the segment o .. o + d (N, 3) (parameter in (eps, 1))."""
  O, D = np.ascontiguousarray(o.T), np.ascontiguousarray(d.T)
  inv_d = [_safe_inverse(x) for x in D]
  blocked = np.zeros(o.shape[0], bool)
  for k in _ungrouped(scene):
    blocked |= _intersect_object(scene.objects[k], O, D, inv_d) < 1.0
  for group, (lo, hi) in zip(scene.groups, _group_bounds(scene)):
    idx = np.nonzero(~blocked & (_enter_aabb(lo, hi, O, inv_d) < 1.0))[0]
    if idx.size:
      sub_o, sub_d, sub_inv = O[:, idx], D[:, idx], [x[idx] for x in inv_d]
      hit = np.zeros(idx.size, bool)
      for k in group:
        hit |= _intersect_object(scene.objects[k], sub_o, sub_d, sub_inv) < 1.0
      blocked[idx[hit]] = True
  return blocked


# ----------------------------------------------------------------------------------------------
# Surfaces: normals, texture coordinates, albedo.


def _room_normal_uv(face, p):
  """Inward normals (N, 3) and texture coordinates (N, 2) on room face `face`."""
  axis, positive = face // 2, face % 2
  n = np.zeros_like(p)
  n[:, axis] = -1.0 if positive else 1.0
  others = [a for a in range(3) if a != axis]
  return n, p[:, others]


def _box_normal_uv(box, p):
  """Outward normals and per-face texture coordinates of hit points p (N, 3) on a box."""
  local = _to_box_frame(box, p - box.center.astype(np.float32))
  rel = np.abs(local) / box.half_size.astype(np.float32)
  axis = np.argmax(rel, axis=1)
  sign = np.sign(np.take_along_axis(local, axis[:, None], axis=1)[:, 0])
  n_local = np.zeros_like(local)
  n_local[np.arange(len(p)), axis] = sign
  # Texture coordinates: the two local coordinates other than the face axis.
  first = np.where(axis == 0, local[:, 2], local[:, 0])
  second = np.where(axis == 1, local[:, 2], local[:, 1])
  uv = np.stack([first + 3.0 * axis, second], axis=1)
  return _from_box_frame(box, n_local), uv


def _sphere_normal_uv(sphere, p):
  """Outward normals and (azimuth, height) texture coordinates on a sphere, in metres."""
  n = (p - sphere.center.astype(np.float32)) / np.float32(sphere.radius)
  azimuth = np.arctan2(n[:, 0], n[:, 2]) * sphere.radius
  return n, np.stack([azimuth, n[:, 1] * sphere.radius * 1.5], axis=1)


def _cylinder_normal_uv(cyl, p):
  """Outward normals and texture coordinates (side: arc length, height; caps: x, z) on an
  upright cylinder."""
  rel = p - cyl.center.astype(np.float32)
  radial = np.sqrt(rel[:, 0] ** 2 + rel[:, 2] ** 2)
  on_cap = np.abs(np.abs(rel[:, 1]) - cyl.half_height) < np.abs(radial - cyl.radius)
  n = np.where(on_cap[:, None], np.stack([0 * radial, np.sign(rel[:, 1]), 0 * radial], 1),
               np.stack([rel[:, 0], 0 * radial, rel[:, 2]], 1) / np.maximum(radial, 1e-6)[:, None])
  arc = np.arctan2(rel[:, 0], rel[:, 2]) * cyl.radius
  uv = np.where(on_cap[:, None], rel[:, [0, 2]], np.stack([arc, rel[:, 1]], 1))
  return n, uv


def _hash01(ix, iy, seed):
  """Deterministic pseudo-random values in [0, 1) for integer lattice points (any shape)."""
  h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (seed * 83492791)
  h = (h & 0xFFFFFFFF).astype(np.uint32)
  h ^= h >> np.uint32(16)
  h *= np.uint32(0x7FEB352D)
  h ^= h >> np.uint32(15)
  h *= np.uint32(0x846CA68B)
  h ^= h >> np.uint32(16)
  return (h.astype(np.float32) / np.float32(2**32)).astype(np.float32)


def _value_noise(u, v, seed):
  """Smooth value noise in [0, 1) at points (u, v) (lattice spacing 1)."""
  iu, iv = np.floor(u), np.floor(v)
  fu, fv = u - iu, v - iv
  fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
  a, b = _hash01(iu, iv, seed), _hash01(iu + 1, iv, seed)
  c, d = _hash01(iu, iv + 1, seed), _hash01(iu + 1, iv + 1, seed)
  return (a + (b - a) * fu) * (1 - fv) + (c + (d - c) * fu) * fv


def _fbm(u, v, seed, octaves=3):
  """Fractal value noise in [0, 1): `octaves` octaves, each half as strong and twice as fine."""
  total, amp, norm = 0.0, 1.0, 0.0
  for k in range(octaves):
    total = total + amp * _value_noise(u * 2**k, v * 2**k, seed + 101 * k)
    norm += amp
    amp *= 0.5
  return total / norm


def _albedo(material, uv):
  """Linear-RGB albedo (N, 3) of a material at texture coordinates uv (N, 2) metres."""
  u = uv[:, 0] / material.scale
  v = uv[:, 1] / material.scale
  ca, sa = math.cos(material.angle), math.sin(material.angle)
  ru = ca * u + sa * v
  kind = material.kind
  if kind == "solid":
    mix = 0.15 * _fbm(u * 2.0, v * 2.0, material.seed)
  elif kind == "checker":
    mix = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
  elif kind == "stripes":
    mix = (np.floor(2.0 * ru) % 2).astype(np.float32) * 0.8 + 0.2 * _fbm(u, v, material.seed)
  elif kind == "noise":
    mix = _fbm(3.0 * u, 3.0 * v, material.seed, octaves=4)
  elif kind == "marble":
    mix = 0.5 + 0.5 * np.sin(2 * math.pi * ru + 6.0 * _fbm(u, v, material.seed, octaves=4))
  elif kind == "tiles":
    fu, fv = u - np.floor(u), v - np.floor(v)
    grout = (np.minimum(np.minimum(fu, 1 - fu), np.minimum(fv, 1 - fv)) < 0.04)
    shade = 0.2 * _hash01(np.floor(u), np.floor(v), material.seed)
    mix = np.where(grout, 1.0, shade)
  else:
    raise ValueError(f"Unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}.")
  mix = np.clip(mix, 0.0, 1.0).astype(np.float32)[:, None]
  return (material.color_a * (1 - mix) + material.color_b * mix).astype(np.float32)


def texture_albedo(material, uv, footprint_m=None):
  """Linear-RGB albedo (N, 3) of a textured material at surface coordinates uv (N, 2) metres.

  Bilinear lookup, wrapping around (the texture tiles), in the mip level whose texel matches
  footprint_m (N,), the metres one pixel covers there (None: the finest level); tinted by
  color_a.
  """
  pyramid = material.texture
  size_u, size_v = material.texture_size_m
  fu = (uv[:, 0] - material.texture_origin_m[0]) / size_u
  fv = (uv[:, 1] - material.texture_origin_m[1]) / size_v
  level = np.zeros(len(uv), np.int64)
  if footprint_m is not None:
    texels = footprint_m * pyramid[0].shape[1] / abs(size_u)
    level = np.clip(np.round(np.log2(np.maximum(texels, 1e-6))), 0, len(pyramid) - 1)
    level = level.astype(np.int64)
  out = np.empty((len(uv), 3), np.float32)
  for lv in np.unique(level):
    idx = np.nonzero(level == lv)[0]
    img = pyramid[lv]
    h, w = img.shape[:2]
    x = (fu[idx] % 1.0) * w - 0.5
    y = ((1.0 - fv[idx]) % 1.0) * h - 0.5  # v points up the surface, image rows down.
    x0, y0 = np.floor(x), np.floor(y)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64) % w, y0.astype(np.int64) % h
    x1, y1 = (x0 + 1) % w, (y0 + 1) % h
    top = img[y0, x0] * (1 - ax) + img[y0, x1] * ax
    bottom = img[y1, x0] * (1 - ax) + img[y1, x1] * ax
    out[idx] = top * (1 - ay) + bottom * ay
  return (out * material.color_a).astype(np.float32)


def _material(scene, surface_id):
  """The Material of surface `surface_id` (0..5 room faces, 6+k object k)."""
  if surface_id < _NUM_ROOM_FACES:
    return scene.room.materials[surface_id]
  return scene.objects[surface_id - _NUM_ROOM_FACES].material


def _surface(scene, surface_id, points, footprint=None):
  """(normals, albedo) for hit points (N, 3) that all lie on surface `surface_id`.

  footprint: None, or a function of the normals giving the metres each point's pixel covers
  (N,), for choosing texture mip levels.
  """
  if surface_id < _NUM_ROOM_FACES:
    n, uv = _room_normal_uv(surface_id, points)
  else:
    obj = scene.objects[surface_id - _NUM_ROOM_FACES]
    if isinstance(obj, Box):
      n, uv = _box_normal_uv(obj, points)
    elif isinstance(obj, Cylinder):
      n, uv = _cylinder_normal_uv(obj, points)
    else:
      n, uv = _sphere_normal_uv(obj, points)
  material = _material(scene, surface_id)
  n = n.astype(np.float32)
  if material.texture is not None:
    return n, texture_albedo(material, uv.astype(np.float32),
                             None if footprint is None else footprint(n))
  return n, _albedo(material, uv.astype(np.float32))


def _footprint_fn(dirs, t, pixel_angle, idx):
  """The `footprint` argument of `_surface` for rays dirs (N, 3) (world, any length) that hit
  at ray parameter t (N,), restricted to rows idx: metres per pixel, across the surface."""
  if dirs is None:
    return None
  d, tt = dirs[idx], t[idx]
  length = np.sqrt(np.einsum("ij,ij->i", d, d))

  def footprint(normals):
    cos = np.abs(np.einsum("ij,ij->i", d, normals)) / length
    return tt * length * pixel_angle / np.maximum(cos, 0.1)
  return footprint


def _shade(scene, points, surface, dirs=None, t=None, pixel_angle=None, lighting=None):
  """Linear radiance (N, 3), unclipped: albedo * (ambient + sum of lights with shadows
  + the material's emission). dirs (N, 3), t (N,), pixel_angle (radians): the rays that found
  the points, for texture filtering (optional). lighting: None, or a function (points, normals,
  surface) -> irradiance (N, 3) replacing `_irradiance` (see `render_thin_lens`)."""
  normals = np.zeros_like(points)
  albedo = np.zeros_like(points)
  glow = np.zeros(points.shape[0], np.float32)
  for sid in np.unique(surface):
    idx = np.nonzero(surface == sid)[0]
    normals[idx], albedo[idx] = _surface(scene, int(sid), points[idx],
                                         _footprint_fn(dirs, t, pixel_angle, idx))
    glow[idx] = _material(scene, int(sid)).emission
  if lighting is None:
    light = _irradiance(scene, points, normals)
  else:
    light = lighting(points, normals, surface)
  return albedo * (light + glow[:, None])


def _irradiance(scene, points, normals, pixel_ids=None):
  """Light (N, 3) arriving at points (N, 3) with normals (N, 3): ambient (or the bounce term)
  plus every light, shadowed. pixel_ids (N,): the rays' indices, which seed the area lights'
  sample patterns (default 0..N-1)."""
  if scene.indirect is None:
    light = np.full(points.shape, scene.ambient, np.float32)
  else:
    light = _indirect_light(scene, points, normals)
  origins = points + normals * np.float32(1e-3)
  for lamp in scene.lights:
    if lamp.extent is not None:
      light += _area_light(scene, lamp, origins, normals, pixel_ids)[:, None] * lamp.intensity
      continue
    to_light = lamp.position.astype(np.float32) - origins
    dist2 = np.einsum("ij,ij->i", to_light, to_light)
    cos = np.einsum("ij,ij->i", to_light, normals) / np.sqrt(dist2)
    lit = (cos > 0) & ~_occluded(scene, origins, to_light)
    # Irradiance falls off as 1/d^2, softened near the lamp (a small spherical lamp).
    power = np.where(lit, cos / np.maximum(dist2, 0.25), 0.0).astype(np.float32)
    light += power[:, None] * lamp.intensity.astype(np.float32)
  return light


# Low-discrepancy points in [0, 1)^3 (the R3 sequence, from the plastic-number generalisation
# of the golden ratio): the shadow-ray pattern of area lights, shifted per pixel.
_R3 = 1.0 / np.array([1.2207440846, 1.2207440846 ** 2, 1.2207440846 ** 3])


def _area_light(scene, lamp, origins, normals, pixel_ids=None):
  """Irradiance factor (N,) of an area light at points origins (N, 3) with normals (N, 3):
  the mean over `lamp.samples` points of its box of cos / max(d^2, 0.25), times the emitter's
  cosine if it is one-sided, zero where shadowed. Each pixel shifts the sample pattern by its
  own hashed offset (Cranley-Patterson rotation), so penumbrae are smooth on average, with a
  fine deterministic grain instead of banding."""
  n = origins.shape[0]
  ids = np.arange(n) if pixel_ids is None else pixel_ids
  shift = np.stack([_hash01(ids, np.full(n, k), 7) for k in range(3)], axis=1)
  extent = lamp.extent.astype(np.float32)
  total = np.zeros(n, np.float32)
  for k in range(lamp.samples):
    u = (shift + np.float32(0.5) + np.float32(k) * _R3.astype(np.float32)) % 1.0
    to_light = lamp.position.astype(np.float32) + (2.0 * u - 1.0) * extent - origins
    dist2 = np.einsum("ij,ij->i", to_light, to_light)
    dist = np.sqrt(dist2)
    cos = np.einsum("ij,ij->i", to_light, normals) / dist
    if lamp.normal is not None:
      cos = cos * np.maximum(-(to_light @ lamp.normal.astype(np.float32)) / dist, 0.0)
    idx = np.nonzero(cos > 0)[0]
    lit = ~_occluded(scene, origins[idx], to_light[idx])
    total[idx[lit]] += (cos[idx] / np.maximum(dist2[idx], 0.25))[lit]
  return total / np.float32(lamp.samples)


def _interior_distance(room, q):
  """Distance (N,) from points q (3, N) inside the room to its nearest face."""
  return np.min([np.minimum(q[a] - room.lo[a], room.hi[a] - q[a]) for a in range(3)], axis=0)


def _object_sdf(obj, q):
  """Signed distance (N,) from points q (3, N) to a Box, Sphere or Cylinder (< 0 inside)."""
  rel = [q[i] - np.float32(obj.center[i]) for i in range(3)]
  if isinstance(obj, Sphere):
    return np.sqrt(rel[0] ** 2 + rel[1] ** 2 + rel[2] ** 2) - np.float32(obj.radius)
  if isinstance(obj, Cylinder):
    d = [np.sqrt(rel[0] ** 2 + rel[2] ** 2) - np.float32(obj.radius),
         np.abs(rel[1]) - np.float32(obj.half_height)]
  else:
    c, s = np.float32(math.cos(obj.yaw)), np.float32(math.sin(obj.yaw))
    local = (c * rel[0] - s * rel[2], rel[1], s * rel[0] + c * rel[2])
    d = [np.abs(x) - np.float32(h) for x, h in zip(local, obj.half_size)]
  outside = np.sqrt(sum(np.maximum(x, 0.0) ** 2 for x in d))
  return outside + np.minimum(np.max(d, axis=0), 0.0)


def _aabb_distance(lo, hi, q):
  """Distance (N,) from points q (3, N) to the box lo..hi (0 inside)."""
  gap = [np.maximum(np.maximum(lo[a] - q[a], q[a] - hi[a]), 0.0) for a in range(3)]
  return np.sqrt(gap[0] ** 2 + gap[1] ** 2 + gap[2] ** 2)


# Distances (metres) along the normal at which `_ambient_occlusion` probes for nearby surfaces.
_AO_STEPS = (0.05, 0.15, 0.35)


def _ambient_occlusion(scene, points, normals):
  """Visibility (N,) in [0, 1] of the hemisphere above points (N, 3) with normals (N, 3): at
  each probe distance d along the normal, a surface closer than d (distance fields of the room
  and objects) occludes by (d - distance) / d; the mean over the probes is subtracted from 1."""
  occlusion = np.zeros(points.shape[0], np.float32)
  bounds = _group_bounds(scene)
  for d in _AO_STEPS:
    q = np.ascontiguousarray((points + normals * np.float32(d)).T)
    dist = _interior_distance(scene.room, q)
    for k in _ungrouped(scene):
      dist = np.minimum(dist, _object_sdf(scene.objects[k], q))
    for group, (lo, hi) in zip(scene.groups, bounds):
      idx = np.nonzero(_aabb_distance(lo, hi, q) < d)[0]
      for k in group if idx.size else ():
        dist[idx] = np.minimum(dist[idx], _object_sdf(scene.objects[k], q[:, idx]))
    occlusion += np.clip((d - dist) / d, 0.0, 1.0)
  return 1.0 - occlusion / len(_AO_STEPS)


def _indirect_light(scene, points, normals):
  """Irradiance (N, 3) of `scene.indirect`: the up/down blend by normal, times occlusion."""
  ind = scene.indirect
  up = (normals[:, 1:2] + 1.0) * 0.5
  light = ind.from_below * (1.0 - up) + ind.from_above * up
  visible = 1.0 - ind.occlusion * (1.0 - _ambient_occlusion(scene, points, normals))
  return (light * visible[:, None]).astype(np.float32)


def _camera_rays(scene, height, width):
  """Pinhole ray directions (H*W, 3) in camera coordinates with z component 1."""
  fx, fy, cx, cy = scene.camera.intrinsics(height, width)
  jj, ii = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
  x = (jj + 0.5 - cx) / fx
  y = (ii + 0.5 - cy) / fy
  return np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3)


def _render_rays(scene, origin_cam, dirs_cam, height, width, clip=True, lighting=None):
  """Casts rays from one camera-frame point origin_cam (3,) along dirs_cam (H*W, 3); returns
  (linear rgb (H, W, 3), clipped to [0, 1] if `clip`, ray parameter t (H, W)). lighting: see
  `_shade`."""
  rot = scene.camera.rotation
  O = (rot @ origin_cam + scene.camera.position).astype(np.float32)[:, None]  # (3, 1).
  D = (rot @ dirs_cam.T).astype(np.float32)                                   # (3, N).
  t, surface = _cast(scene, O, D)
  points = np.ascontiguousarray((O + D * t).T)                                # (N, 3).
  if any(_material(scene, k).texture is not None
         for k in range(_NUM_ROOM_FACES + len(scene.objects))):
    pixel_angle = 1.0 / scene.camera.intrinsics(height, width)[0]
    radiance = _shade(scene, points, surface, np.ascontiguousarray(D.T), t, pixel_angle,
                      lighting)
  else:
    radiance = _shade(scene, points, surface, lighting=lighting)
  if clip:
    radiance = np.clip(radiance, 0.0, 1.0)
  return radiance.reshape(height, width, 3), t.reshape(height, width)


def depth_map(scene: Scene, height: int, width: int) -> np.ndarray:
  """float32 (height, width) z depth in metres of `render_pinhole`, without shading (fast)."""
  rot = scene.camera.rotation
  O = scene.camera.position.astype(np.float32)[:, None]
  D = (rot @ _camera_rays(scene, height, width).T).astype(np.float32)
  t, _ = _cast(scene, O, D)
  return t.reshape(height, width)


def render_pinhole_linear(scene: Scene, height: int, width: int, clip: bool = True):
  """Like `render_pinhole` but the colour stays in linear light (clipped to [0, 1] if `clip`;
  unclipped, lights and emitters may exceed 1)."""
  dirs = _camera_rays(scene, height, width)
  rgb_lin, t = _render_rays(scene, np.zeros(3), dirs, height, width, clip=clip)
  # The z component of every direction is exactly 1 in camera space, so t is the z depth.
  return rgb_lin.astype(np.float32), t.astype(np.float32)


def render_pinhole(scene: Scene, height: int, width: int):
  """Renders the scene through its pinhole camera.

  Returns:
    rgb: float32 (height, width, 3), sRGB in [0, 1].
    depth_m: float32 (height, width), exact z distance (along the optical axis) in metres.
  """
  rgb_lin, depth_m = render_pinhole_linear(scene, height, width)
  return linear_to_srgb(rgb_lin), depth_m


def aperture_samples(num_samples: int, diameter: float) -> np.ndarray:
  """(num_samples, 2) points evenly covering a disc of `diameter` (Vogel's golden-angle spiral),
  deterministic; their mean is close to the disc centre."""
  k = np.arange(num_samples, dtype=np.float64)
  r = 0.5 * diameter * np.sqrt((k + 0.5) / num_samples)
  theta = k * math.pi * (3.0 - math.sqrt(5.0))
  return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def render_thin_lens(scene: Scene, height: int, width: int, *, focus_distance_m: float,
                     f_number: float, num_samples: int = 64,
                     clip_each_view: bool = True, exposure: float = 1.0,
                     reuse_lighting: bool = False) -> np.ndarray:
  """Renders the view through a thin lens: exact depth-of-field ground truth.

  Averages, in linear light, `num_samples` pinhole renders from points on the aperture disc
  (diameter focal_length_mm / f_number, in the lens plane), each focused on the plane
  z = focus_distance_m (camera frame). See the module docstring and `coc_diameter_px`.
  clip_each_view: True clips every view to [0, 1] before averaging (the thin-lens render is the
  aperture average of `render_pinhole`'s photos); False averages the unclipped radiance and
  clips once, as a real sensor records a lens's blur of lights brighter than white (use with
  `random_hdr_scene`).
  exposure: the averaged linear radiance is multiplied by it before the final clip (a camera's
  exposure, e.g. `sensor.exposure_gain` of the pinhole render; use with clip_each_view=False).
  reuse_lighting: computes the light arriving at each surface point (shadows, occlusion) once,
  for the pinhole view, and reuses it for every aperture sample whose ray meets, within one
  pinhole pixel, the same side of the same primitive as that pixel's ray; other points are lit
  afresh. Shading is view independent, so this only shifts lighting by under a pixel and keeps
  the pinhole's soft-shadow grain (not averaged over the aperture), for a several-fold speed-up
  with area lights (the furnished rooms).

  Returns:
    rgb: float32 (height, width, 3), sRGB in [0, 1].
  """
  if focus_distance_m <= 0 or f_number <= 0 or num_samples < 1:
    raise ValueError("focus_distance_m and f_number must be > 0 and num_samples >= 1; got "
                     f"{focus_distance_m}, {f_number}, {num_samples}.")
  aperture_m = scene.camera.focal_length_mm / 1000.0 / f_number
  pinhole = _camera_rays(scene, height, width)           # z = 1.
  total = np.zeros((height, width, 3), np.float64)
  lighting = _pinhole_lighting(scene, height, width) if reuse_lighting else None
  for lx, ly in aperture_samples(num_samples, aperture_m):
    lens = np.array([lx, ly, 0.0])
    # Through the lens point and the pinhole ray's point on the focal plane; z component 1.
    dirs = pinhole - lens / focus_distance_m
    rgb_lin, _ = _render_rays(scene, lens, dirs, height, width, clip=clip_each_view,
                              lighting=lighting)
    total += rgb_lin
  mean = total / num_samples
  return linear_to_srgb(mean if exposure == 1.0 else mean * exposure)


def _pinhole_lighting(scene, height, width):
  """The `lighting` function of `render_thin_lens(..., reuse_lighting=True)`: irradiance
  computed for the pinhole view, looked up for points it sees, computed for the others."""
  seen = {}

  def capture(points, normals, surface):
    seen.update(light=_irradiance(scene, points, normals), surface=surface, normals=normals)
    return seen["light"]
  _render_rays(scene, np.zeros(3), _camera_rays(scene, height, width), height, width,
               lighting=capture)
  fx, fy, cx, cy = scene.camera.intrinsics(height, width)

  def lighting(points, normals, surface):
    cam = (points - scene.camera.position.astype(np.float32)) @ scene.camera.rotation
    z = np.maximum(cam[:, 2], 1e-6)
    # The pixel whose ray passes nearest; no depth test needed, see below.
    j = np.floor(cam[:, 0] / z * fx + cx).astype(np.int64)
    i = np.floor(cam[:, 1] / z * fy + cy).astype(np.int64)
    ok = (cam[:, 2] > 0) & (i >= 0) & (i < height) & (j >= 0) & (j < width)
    pix = np.where(ok, i * width + j, 0)
    # Same primitive, same side (every primitive is convex): the point the pinhole sees there.
    ok &= (seen["surface"][pix] == surface) & (
        np.einsum("ij,ij->i", seen["normals"][pix], normals) > 0.9)
    light = np.empty_like(points)
    light[ok] = seen["light"][pix[ok]]
    miss = np.nonzero(~ok)[0]
    light[miss] = _irradiance(scene, points[miss], normals[miss], pixel_ids=miss)
    return light
  return lighting


def thin_lens_blur_scale_px(*, focal_length_mm: float, sensor_width_mm: float, f_number: float,
                            width: int) -> float:
  """Blur scale K of `render_thin_lens`: CoC radius in pixels per 1/m of disparity from focus.

  K = A * fx_px / 2 with A = focal_length / f_number (metres) and
  fx_px = focal_length_mm / sensor_width_mm * width, so radius_px = K |1/z_f - 1/z|: the form
  `dofjax.dof.render_disparity` takes (without dofjax.dof.blur_scale_px's z_f / (z_f - f)
  factor, which this camera omits; see the module docstring).
  """
  aperture_m = focal_length_mm / 1000.0 / f_number
  return 0.5 * aperture_m * (focal_length_mm / sensor_width_mm * width)


def coc_diameter_px(scene: Scene, depth_m, width: int, *, focus_distance_m: float,
                    f_number: float):
  """Circle-of-confusion diameter in pixels that `render_thin_lens` produces at depth_m.

  c_px = (focal_length / f_number) * fx_px * |1/focus_distance_m - 1/depth_m|, with
  fx_px = focal_length_mm / sensor_width_mm * width. depth_m: metres, any shape (> 0).
  """
  k = thin_lens_blur_scale_px(focal_length_mm=scene.camera.focal_length_mm,
                              sensor_width_mm=scene.camera.sensor_width_mm, f_number=f_number,
                              width=width)
  return 2.0 * k * np.abs(1.0 / focus_distance_m - 1.0 / np.asarray(depth_m))
