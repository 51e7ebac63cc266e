"""Furnished rooms for the realistic synthetic configs: furniture at real sizes where it stands.

`random_room(seed)` lays out a room (living room, bedroom, office or dining room) of realistic
size: furniture built from boxes, cylinders and spheres stands on the floor against the walls or
around a table (sofas, beds, tables, desks, chairs, shelves, cabinets, floor lamps, plants,
doors, curtains), small objects rest on table tops, desks and shelf boards (books, mugs,
bottles, bowls, vases, monitors, lamps), pictures and windows hang on the walls, rugs lie on the
floor. Surfaces carry photographic and procedural textures (`textures`). Light comes from
ceiling panels, windows and lamps, all area lights with soft shadows, plus a bounce term with
ambient occlusion (`scenes.Indirect`).

`random_camera(room, seed, view)` places a handheld-like camera inside the room, looking at a
piece of furniture, and `room_scene(seed, view)` puts both together into a `scenes.Scene`, so
`scenes.render_pinhole` and `scenes.render_thin_lens` render it.

Furniture frame: each piece is built in its own frame (metres, y up, origin on the floor at the
centre of its footprint, front towards -z, back towards +z) and turned by a yaw (the same
convention as `scenes.Box.yaw`); a piece against a wall has its back (+z) to the wall.
"""

import dataclasses
import functools
import math
from typing import Tuple

import numpy as np

from tfds_diml import scenes
from tfds_diml import textures

# Camera ranges (`random_camera`).
HFOV_DEG = (55.0, 75.0)
HEIGHT_M = (1.0, 1.8)
PITCH_DEG = (-35.0, 10.0)
ROLL_DEG = 4.0  # |roll| at most this.
SENSOR_WIDTH_MM = 36.0

ROOM_TYPES = ("living", "bedroom", "office", "dining")


@dataclasses.dataclass(frozen=True)
class Piece:
  """One piece of furniture, fixture or object: its primitives (world frame) and how it is held.

  mounted: hangs on a wall or the ceiling (pictures, windows, ceiling lights); otherwise it
  stands, its lowest point on the floor or on the top of another piece (clutter on a table).
  """
  name: str
  parts: Tuple[object, ...]
  mounted: bool = False


@dataclasses.dataclass(frozen=True)
class FurnishedRoom:
  """Everything of a room but the camera. `groups`: piece indices rendered as one group each
  (a piece of furniture with what rests on it)."""
  room: scenes.Room
  pieces: Tuple[Piece, ...]
  lights: Tuple[scenes.Light, ...]
  indirect: scenes.Indirect
  groups: Tuple[Tuple[int, ...], ...]
  kind: str


# ----------------------------------------------------------------------------------------------
# Materials.


def _hsv(rng, saturation, value):
  return scenes.random_colour(rng, saturation, value)


_WOODS = ((0.50, 0.33, 0.17), (0.28, 0.15, 0.07), (0.62, 0.45, 0.28), (0.16, 0.08, 0.04),
          (0.70, 0.58, 0.42))


def _wood(rng, size=(0.6, 0.6)):
  """A wood material: procedural planks/grain tinted with a random wood colour."""
  tint = np.array(_WOODS[rng.integers(len(_WOODS))]) * rng.uniform(0.8, 1.15)
  return textures.textured(textures.procedural("wood", int(rng.integers(4))), tint, size)


def _fabric(rng, colour=None):
  """Upholstery, bedding or curtain: woven texture with a muted random colour."""
  colour = _hsv(rng, (0.1, 0.6), (0.25, 0.85)) if colour is None else colour
  return textures.textured(textures.procedural("fabric", int(rng.integers(4))), colour, (0.3, 0.3))


def _paint(rng, value=(0.1, 0.95), saturation=(0.0, 0.5)):
  """A painted or plastic surface: plaster texture (subtle) with a random colour."""
  colour = _hsv(rng, saturation, value)
  return textures.textured(textures.procedural("plaster", int(rng.integers(4))), colour, (0.5, 0.5))


def _solid(colour, emission=0.0):
  colour = np.asarray(colour, np.float32)
  return scenes.Material(kind="solid", color_a=colour, color_b=colour, scale=1.0, angle=0.0,
                         seed=0, emission=emission)


def _picture(rng, half_w, half_h, name=None):
  """A photo (scikit-image sample) spread over a box face of half size (half_w, half_h); the
  image fills the local -z face, upright and unmirrored seen from the front (see Piece frame)."""
  name = name or textures.PICTURE_PHOTOS[rng.integers(len(textures.PICTURE_PHOTOS))]
  # Box texture coordinates on a z face: (local x + 6, local y) (`scenes._box_normal_uv`);
  # seen from the front, image right is local -x, hence the negative width.
  return textures.textured(textures.photo(name), np.ones(3), (-2 * half_w, 2 * half_h),
                           (6.0 + half_w, -half_h))


# ----------------------------------------------------------------------------------------------
# Building pieces in their own frame.


class _Builder:
  """Collects the primitives of one piece, given in the piece frame, as world primitives."""

  def __init__(self, origin, yaw):
    self.origin = np.array([origin[0], 0.0, origin[1]], np.float64)
    self.yaw = float(yaw)
    self.parts = []

  def _world(self, p):
    c, s = math.cos(self.yaw), math.sin(self.yaw)
    x, y, z = p
    return self.origin + np.array([c * x + s * z, y, -s * x + c * z])

  def box(self, centre, half, material, yaw=0.0):
    """Adds a Box: centre and half sizes (3,) in the piece frame, turned by yaw in it."""
    half, yaw = np.array(half, float), self.yaw + yaw
    quarter = round(yaw / (math.pi / 2))
    picture = material.texture is not None and material.texture_size_m[0] < 0
    if abs(yaw - quarter * math.pi / 2) < 1e-9 and not picture:
      # Square to the walls: stored unturned (faster to intersect), with x and z swapped for
      # an odd number of quarter turns. Pictures keep their yaw, which orients the photo.
      half, yaw = (half[[2, 1, 0]] if quarter % 2 else half), 0.0
    self.parts.append(scenes.Box(center=self._world(centre), half_size=half, yaw=yaw,
                                 material=material))

  def cylinder(self, centre, radius, half_height, material):
    """Adds an upright Cylinder centred at `centre` (piece frame)."""
    self.parts.append(scenes.Cylinder(center=self._world(centre), radius=float(radius),
                                      half_height=float(half_height), material=material))

  def sphere(self, centre, radius, material):
    """Adds a Sphere centred at `centre` (piece frame)."""
    self.parts.append(scenes.Sphere(center=self._world(centre), radius=float(radius),
                                    material=material))

  def surface(self, centre_xz, half_xz, top):
    """A world rectangle (centre (x, z), half (x, z), top y) that clutter can rest on."""
    c = self._world((centre_xz[0], 0.0, centre_xz[1]))
    turned = abs(math.sin(self.yaw)) > 0.5
    half = (half_xz[1], half_xz[0]) if turned else tuple(half_xz)
    return (np.array([c[0], c[2]]), np.array(half), float(top))


def _legs(b, half_w, half_d, height, thick, material, inset=0.03):
  """Four square legs under a top at `height`, inset from the corners."""
  for sx in (-1, 1):
    for sz in (-1, 1):
      b.box((sx * (half_w - inset - thick), height / 2, sz * (half_d - inset - thick)),
            (thick, height / 2, thick), material)


def _table(b, rng, w, d, h, material=None):
  """A table or desk: top + four legs; returns its top surface."""
  material = material or _wood(rng)
  top = rng.uniform(0.025, 0.045)
  b.box((0, h - top / 2, 0), (w / 2, top / 2, d / 2), material)
  _legs(b, w / 2, d / 2, h - top, rng.uniform(0.02, 0.035), material)
  return [b.surface((0, 0), (w / 2 - 0.05, d / 2 - 0.05), h)]


def _chair(b, rng, material=None):
  """A dining/desk chair facing -z: legs, seat at ~0.45 m, back."""
  material = material or _wood(rng)
  seat_h, half = rng.uniform(0.43, 0.48), rng.uniform(0.2, 0.24)
  _legs(b, half, half, seat_h - 0.03, 0.018, material, inset=0.01)
  seat = _fabric(rng) if rng.uniform() < 0.5 else material
  b.box((0, seat_h - 0.015, 0), (half, 0.015, half), seat)
  back_h = rng.uniform(0.35, 0.5)
  b.box((0, seat_h + back_h / 2, half - 0.015), (half, back_h / 2, 0.015), material)
  return []


def _sofa(b, rng, w):
  """A sofa against the wall: base, seat cushion, back and two arms."""
  fabric, d = _fabric(rng), rng.uniform(0.85, 1.0)
  b.box((0, 0.2, 0), (w / 2, 0.2, d / 2), fabric)
  b.box((0, 0.5, 0.25), (w / 2 - 0.18, 0.3, d / 2 - 0.25), fabric)  # Back: on the base.
  for sx in (-1, 1):
    b.box((sx * (w / 2 - 0.09), 0.5, 0), (0.09, 0.1, d / 2), fabric)  # Arms: on the base.
  b.box((0, 0.45, -0.12), (w / 2 - 0.18, 0.05, d / 2 - 0.15), _fabric(rng))  # Cushion.
  return []


def _bed(b, rng, w, length):
  """A bed, head against the wall: frame, mattress, duvet, pillows, headboard."""
  wood = _wood(rng)
  b.box((0, 0.15, 0), (w / 2, 0.15, length / 2), wood)
  b.box((0, 0.41, 0), (w / 2 - 0.03, 0.11, length / 2 - 0.03), _solid((0.8, 0.8, 0.78)))
  b.box((0, 0.54, -0.25), (w / 2 - 0.02, 0.02, length / 2 - 0.3), _fabric(rng))  # Duvet.
  pillow = _fabric(rng, colour=_hsv(rng, (0.0, 0.3), (0.7, 0.95)))
  for x in ((-w / 4, w / 4) if w > 1.2 else (0.0,)):
    b.box((x, 0.58, length / 2 - 0.3), (min(0.3, w / 4 - 0.03), 0.06, 0.2), pillow)
  b.box((0, 0.55, length / 2 - 0.03), (w / 2, 0.55, 0.03), wood)  # Headboard on the floor.
  return []


def _cabinet(b, rng, w, d, h):
  """A cabinet, dresser, sideboard or wardrobe: body, door/drawer fronts, handles; returns its
  top surface."""
  body = _wood(rng) if rng.uniform() < 0.6 else _paint(rng, (0.3, 0.95), (0.0, 0.25))
  b.box((0, h / 2, 0), (w / 2, h / 2, d / 2), body)
  rows = int(rng.integers(1, 4))
  cols = max(1, int(round(w / 0.5)))
  front, knob = _paint(rng, (0.2, 0.95), (0.0, 0.3)), _solid((0.6, 0.6, 0.62))
  fh, fw = (h - 0.08) / rows, (w - 0.04) / cols
  for r in range(rows):
    for c in range(cols):
      x, y = -w / 2 + 0.02 + fw * (c + 0.5), 0.06 + fh * (r + 0.5)
      b.box((x, y, -d / 2 - 0.01), (fw / 2 - 0.01, fh / 2 - 0.01, 0.01), front)
      b.sphere((x, y + fh / 4, -d / 2 - 0.035), 0.015, knob)
  return [b.surface((0, 0), (w / 2 - 0.04, d / 2 - 0.04), h)]


def _bookshelf(b, rng, w, d, h):
  """Open shelves: sides, boards, back panel; returns every board as a surface (with the
  clearance above it as a fourth element)."""
  wood = _wood(rng)
  t = 0.018
  for sx in (-1, 1):
    b.box((sx * (w / 2 - t), h / 2, 0), (t, h / 2, d / 2), wood)
  b.box((0, h / 2, d / 2 - 0.005), (w / 2 - 2 * t, h / 2, 0.005), wood)
  boards = int(rng.integers(3, 6))
  gap = (h - t) / boards
  surfaces = []
  for k in range(boards + 1):
    y = min(k * gap, h - t)
    b.box((0, y + t / 2, 0), (w / 2 - 2 * t, t / 2, d / 2 - 0.01), wood)
    top = b.surface((0, -0.01), (w / 2 - 2 * t - 0.01, d / 2 - 0.03), y + t)
    surfaces.append(top + ((gap - t - 0.03) if k < boards else 0.5,))
  return surfaces


def _floor_lamp(b, rng):
  """A floor lamp: base, pole and a glowing shade; returns the light's centre (world)."""
  metal = _solid(_hsv(rng, (0.0, 0.2), (0.1, 0.6)))
  height = rng.uniform(1.4, 1.7)
  b.cylinder((0, 0.015, 0), 0.15, 0.015, metal)
  b.cylinder((0, 0.03 + (height - 0.03) / 2, 0), 0.012, (height - 0.03) / 2, metal)
  shade = _solid(np.array([1.0, 0.85, 0.6]) * 0.8, emission=rng.uniform(1.5, 3.0))
  b.cylinder((0, height + 0.12, 0), rng.uniform(0.15, 0.22), 0.12, shade)
  return b._world((0, height + 0.12, 0))  # pylint: disable=protected-access


def _plant(b, rng, scale=1.0):
  """A potted plant: pot and a foliage sphere; returns (footprint radius, height)."""
  pot = _paint(rng, (0.2, 0.8), (0.2, 0.7))
  r, ph = 0.12 * scale, 0.25 * scale
  b.cylinder((0, ph / 2, 0), r, ph / 2, pot)
  leaves = textures.textured(textures.photo("grass"), _hsv(rng, (0.5, 0.8), (0.25, 0.5)) * 2.0,
                             (0.3 * scale, 0.3 * scale))
  fr = rng.uniform(0.15, 0.22) * scale
  b.sphere((0, ph + fr, 0), fr, leaves)
  top = ph + 2 * fr
  for k in range(4):  # Smaller clumps around and above, sunk into the first one.
    angle = rng.uniform(0, 2 * math.pi)
    small = fr * rng.uniform(0.45, 0.65)
    y = ph + fr * rng.uniform(0.8, 1.9)
    b.sphere((0.75 * fr * math.cos(angle), y, 0.75 * fr * math.sin(angle)), small, leaves)
    top = max(top, y + small)
  return fr * 1.4, top


# ----------------------------------------------------------------------------------------------
# Clutter: small objects resting on a surface, each built standing at the origin.


def _book(b, rng, lying):
  cover = _paint(rng, (0.15, 0.8), (0.3, 0.8))
  w, h, t = rng.uniform(0.13, 0.22), rng.uniform(0.18, 0.3), rng.uniform(0.015, 0.05)
  if lying:
    b.box((0, t / 2, 0), (h / 2, t / 2, w / 2), cover, yaw=rng.uniform(-0.4, 0.4))
    return max(h, w) / 2, t
  b.box((0, h / 2, 0), (t / 2, h / 2, w / 2), cover)
  return w / 2, h


def _mug(b, rng):
  r, h = rng.uniform(0.035, 0.05), rng.uniform(0.08, 0.11)
  b.cylinder((0, h / 2, 0), r, h / 2, _paint(rng, (0.3, 0.95), (0.0, 0.7)))
  return r, h


def _bottle(b, rng):
  r, h = rng.uniform(0.03, 0.045), rng.uniform(0.18, 0.3)
  glass = _solid(_hsv(rng, (0.3, 0.9), (0.2, 0.7)))
  b.cylinder((0, h * 0.35, 0), r, h * 0.35, glass)
  b.cylinder((0, h * 0.85, 0), r * 0.4, h * 0.15, glass)
  return r, h


def _bowl(b, rng):
  r = rng.uniform(0.05, 0.1)
  b.sphere((0, r, 0), r, _paint(rng, (0.3, 0.9), (0.2, 0.8)))
  return r, 2 * r


def _vase(b, rng):
  r, h = rng.uniform(0.05, 0.08), rng.uniform(0.15, 0.35)
  b.cylinder((0, h / 2, 0), r, h / 2, _paint(rng, (0.2, 0.9), (0.1, 0.8)))
  return r, h


def _box_item(b, rng):
  half = np.array([rng.uniform(0.05, 0.15), rng.uniform(0.03, 0.1), rng.uniform(0.05, 0.12)])
  b.box((0, half[1], 0), half, _paint(rng, (0.2, 0.9), (0.1, 0.7)), yaw=rng.uniform(-0.5, 0.5))
  return float(np.hypot(half[0], half[2])), 2 * half[1]


def _monitor(b, rng):
  """A monitor or TV on a stand, its screen showing a photo (faintly glowing)."""
  dark = _solid((0.03, 0.03, 0.035))
  w = rng.uniform(0.45, 0.75)
  h = w * 0.6
  b.box((0, 0.01, 0.05), (0.12, 0.01, 0.09), dark)
  b.box((0, 0.02 + 0.07, 0.05), (0.025, 0.07, 0.015), dark)
  b.box((0, 0.16 + h / 2, 0.05), (w / 2, h / 2, 0.02), dark)
  screen = _picture(rng, w / 2 - 0.02, h / 2 - 0.02)
  screen = dataclasses.replace(screen, emission=0.6, color_a=np.full(3, 0.5, np.float32))
  b.box((0, 0.16 + h / 2, 0.025), (w / 2 - 0.02, h / 2 - 0.02, 0.004), screen)
  return w / 2, 0.16 + h


def _keyboard(b, rng):
  """A keyboard and a mouse in front of a monitor (built by `_monitor` in the same frame)."""
  colour = _solid(np.full(3, rng.choice([0.03, 0.5, 0.8])))
  b.box((0, 0.012, -0.2), (0.22, 0.012, 0.07), colour)
  b.box((0.32, 0.015, -0.2), (0.03, 0.015, 0.05), colour)
  return 0.3, 0.03


def _table_lamp(b, rng):
  """A small lamp (its light is added by the caller at the returned height)."""
  metal = _solid(_hsv(rng, (0.0, 0.3), (0.2, 0.8)))
  b.cylinder((0, 0.01, 0), 0.07, 0.01, metal)
  b.cylinder((0, 0.02 + 0.13, 0), 0.01, 0.13, metal)
  shade = _solid(np.array([1.0, 0.9, 0.7]) * 0.8, emission=rng.uniform(1.5, 3.0))
  b.cylinder((0, 0.28 + 0.08, 0), 0.1, 0.08, shade)
  return 0.1, 0.44


_CLUTTER = (("book", lambda b, rng: _book(b, rng, True)),
            ("book", lambda b, rng: _book(b, rng, False)),
            ("mug", _mug), ("bottle", _bottle), ("bowl", _bowl), ("vase", _vase),
            ("box", _box_item), ("plant", lambda b, rng: _plant(b, rng, 0.5)))


def _clutter_on(rng, surface, count, allow_large=True):
  """Up to `count` small pieces resting on `surface` (centre xz, half xz, top y[, clearance])
  without overlapping each other or its edge; returns [Piece]."""
  centre, half, top = surface[:3]
  clearance = surface[3] if len(surface) > 3 else 1.0
  placed, pieces = [], []
  for _ in range(count * 3):
    if len(pieces) >= count:
      break
    name, make = _CLUTTER[rng.integers(len(_CLUTTER))]
    if name == "plant" and not allow_large:
      continue
    xz = centre + rng.uniform(-1, 1, 2) * half
    b = _Builder((0.0, 0.0), 0.0)
    radius, height = make(b, rng)
    inside = np.all(np.abs(xz - centre) + radius <= half)
    free = all(np.hypot(*(xz - p)) > radius + r for p, r in placed)
    if inside and free and height < clearance:
      offset = np.array([xz[0], top, xz[1]])
      parts = tuple(dataclasses.replace(p, center=p.center + offset) for p in b.parts)
      pieces.append(Piece(name, parts))
      placed.append((xz, radius))
  return pieces


def _book_row(rng, surface):
  """Books standing side by side along a shelf board (x), filling part of it: [Piece]."""
  centre, half, top, clearance = surface
  along = 0 if half[0] >= half[1] else 1
  x = centre[along] - half[along] + rng.uniform(0.0, half[along])
  end = centre[along] + half[along] * rng.uniform(0.0, 1.0)
  pieces = []
  while True:
    b = _Builder((0.0, 0.0), 0.0 if along == 0 else math.pi / 2)
    w_half, h = _book(b, rng, lying=False)
    thick = b.parts[0].half_size[0]
    if x + 2 * thick > end or h > clearance:
      break
    pos = np.array(centre, float)
    pos[along] = x + thick
    pos[1 - along] = centre[1 - along] + half[1 - along] - w_half
    offset = np.array([pos[0], top, pos[1]])
    pieces.append(Piece("book", tuple(dataclasses.replace(p, center=p.center + offset)
                                      for p in b.parts)))
    x += 2 * thick + 0.002
  return pieces


# ----------------------------------------------------------------------------------------------
# Layout.


def _walls(size):
  """[(yaw, (x, z) of the wall's middle at the floor, length)]: back (z = depth), left (x = 0),
  right (x = width), front (z = 0) walls; a piece with that yaw has its back to the wall."""
  w, _, d = size
  return [(0.0, (w / 2, d), w), (-math.pi / 2, (0.0, d / 2), d),
          (math.pi / 2, (w, d / 2), d), (math.pi, (w / 2, 0.0), w)]


def _along(wall, s, depth):
  """World (x, z) of the point `s` metres along the wall (the piece frame's x) and `depth`
  metres out from it into the room."""
  yaw, (cx, cz), _ = wall
  c, sn = math.cos(yaw), math.sin(yaw)
  return (cx + s * c - depth * sn, cz - s * sn - depth * c)


def _bounds(parts):
  """3D bounding box (lo, hi) of primitives."""
  b = [scenes.object_bounds(p) for p in parts]
  return np.min([x[0] for x in b], axis=0), np.max([x[1] for x in b], axis=0)


class _Layout:
  """The room being furnished: its pieces, their supports, lights, and the boxes they fill."""

  def __init__(self, rng, size):
    self.rng, self.size, self.walls = rng, size, _walls(size)
    self.pieces, self.support, self.lights = [], [], []
    self.obstacles = []  # 3D boxes (lo, hi) that no new piece may overlap.

  def inside(self, lo, hi):
    """Whether the box lo..hi lies inside the room."""
    return bool(np.all(lo >= 0.0) and np.all(hi <= self.size))

  def free(self, lo, hi, margin=0.03):
    """Whether the box lo..hi lies inside the room and overlaps no obstacle (xz margin)."""
    if not self.inside(lo, hi):
      return False
    m = np.array([margin, 0.0, margin])
    return all(np.any(lo - m >= ohi) or np.any(hi + m <= olo) for olo, ohi in self.obstacles)

  def add(self, piece, support=None, obstacle=True):
    """Adds a piece (resting on piece index `support`, if any); returns its index."""
    self.pieces.append(piece)
    self.support.append(support)
    if obstacle:
      self.obstacles.append(_bounds(piece.parts))
    return len(self.pieces) - 1

  def on_wall(self, name, width, depth, build, walls=None, tries=12, gap=0.02):
    """Builds `build(builder)` with its back to a random wall (of `walls` indices) at a free
    spot; returns (index, surfaces, wall, s) or None if no spot was free."""
    for _ in range(tries):
      wall = self.walls[int(self.rng.choice(walls if walls is not None else 4))]
      length = wall[2]
      if width + 0.1 > length:
        continue
      s = self.rng.uniform(-length / 2 + width / 2 + 0.05, length / 2 - width / 2 - 0.05)
      b = _Builder(_along(wall, s, depth / 2 + gap), wall[0])
      surfaces = build(b)
      if self.free(*_bounds(b.parts)):
        return self.add(Piece(name, tuple(b.parts))), surfaces, wall, s
    return None

  def at(self, name, origin, yaw, build, support=None):
    """Builds `build(builder)` at origin (x, z) turned by yaw if free; returns its index or
    None."""
    b = _Builder(origin, yaw)
    surfaces = build(b)
    if not self.free(*_bounds(b.parts)):
      return None
    return self.add(Piece(name, tuple(b.parts)), support), surfaces

  def light(self, position, intensity, extent, normal=None, samples=2):
    """Adds an area light (`scenes.Light`) of half extents `extent` at `position` (world)."""
    self.lights.append(scenes.Light(position=np.asarray(position, float),
                                    intensity=np.asarray(intensity, np.float32),
                                    extent=np.asarray(extent, float),
                                    normal=None if normal is None else np.asarray(normal, float),
                                    samples=samples))


def _warm_white(rng):
  return np.array([1.0, rng.uniform(0.85, 0.97), rng.uniform(0.7, 0.92)])


def _door(lay):
  """A door standing on the floor against a wall, with a handle; its swing space stays free."""
  rng = lay.rng
  w, h = rng.uniform(0.8, 0.95), rng.uniform(2.0, 2.1)
  wall = lay.walls[int(rng.integers(4))]
  s = rng.uniform(-wall[2] / 2 + w / 2 + 0.1, wall[2] / 2 - w / 2 - 0.1)
  b = _Builder(_along(wall, s, 0.02), wall[0])
  frame = _paint(rng, (0.7, 0.95), (0.0, 0.1))
  b.box((0, h / 2 + 0.03, 0), (w / 2 + 0.05, h / 2 + 0.03, 0.02), frame)
  b.box((0, h / 2, -0.02), (w / 2, h / 2, 0.02), _wood(rng) if rng.uniform() < 0.6 else frame)
  b.sphere((w / 2 - 0.08, 1.0, -0.07), 0.025, _solid((0.7, 0.7, 0.7)))
  lay.add(Piece("door", tuple(b.parts)))
  clearance = _Builder(_along(wall, s, 0.5), wall[0])
  clearance.box((0, h / 2, 0), (w / 2 + 0.1, h / 2, 0.45), frame)
  lay.obstacles.append(_bounds(clearance.parts))


def _window(lay):
  """A bright window on a wall (sky panel, frame, sill), its daylight as an area light, and
  sometimes curtains standing on the floor beside it. Returns whether it found a free spot."""
  rng = lay.rng
  w, h = rng.uniform(0.8, 1.8), rng.uniform(1.0, 1.5)
  sill = rng.uniform(0.75, 1.0)
  h = min(h, lay.size[1] - sill - 0.2)
  wall = lay.walls[int(rng.integers(4))]
  if w + 0.8 > wall[2]:
    return False
  s = rng.uniform(-wall[2] / 2 + w / 2 + 0.4, wall[2] / 2 - w / 2 - 0.4)
  b = _Builder(_along(wall, s, 0.0), wall[0])
  sky = _solid(np.array([0.8, 0.9, 1.0]) * rng.uniform(0.9, 1.0), emission=rng.uniform(3.0, 8.0))
  frame = _solid(np.full(3, rng.uniform(0.6, 0.9)))
  yc = sill + h / 2
  b.box((0, yc, -0.005), (w / 2, h / 2, 0.005), sky)
  for sx in (-1, 0, 1):
    b.box((sx * w / 2, yc, -0.02), (0.03, h / 2 + 0.03, 0.02), frame)
  for sy in (-1, 1):
    b.box((0, yc + sy * h / 2, -0.02), (w / 2 + 0.03, 0.03, 0.02), frame)
  b.box((0, sill - 0.02, -0.08), (w / 2 + 0.08, 0.02, 0.08), frame)
  if not lay.free(*_bounds(b.parts)):
    return False
  lay.add(Piece("window", tuple(b.parts), mounted=True))
  centre = b._world((0, yc, -0.05))  # pylint: disable=protected-access
  inward = b._world((0, 0, -1.0)) - b._world((0, 0, 0))  # pylint: disable=protected-access
  along = np.abs(b._world((1.0, 0, 0)) - b._world((0, 0, 0)))  # pylint: disable=protected-access
  lay.light(centre, np.array([0.9, 0.95, 1.0]) * w * h * rng.uniform(2.0, 4.0),
            along * w / 2 + np.array([0, h / 2, 0]), normal=inward, samples=2)
  if rng.uniform() < 0.6:
    cloth = _fabric(rng)
    for sx in (-1, 1):
      lay.at("curtain", _along(wall, s + sx * (w / 2 + 0.3), 0.08), wall[0],
             lambda c: c.box((0, (lay.size[1] - 0.1) / 2, 0),
                             (0.18, (lay.size[1] - 0.1) / 2, 0.04), cloth))
  return True


def _pictures(lay, count):
  """`count` framed photos and posters hung on free wall spots (fewer if 5 * count attempts do
  not find them room)."""
  rng, placed = lay.rng, 0
  for _ in range(5 * count):
    if placed == count:
      break
    w = rng.uniform(0.3, 1.0)
    h = w * rng.uniform(0.6, 1.4)
    wall = lay.walls[int(rng.integers(4))]
    if w + 0.3 > wall[2]:
      continue
    s = rng.uniform(-wall[2] / 2 + w / 2 + 0.1, wall[2] / 2 - w / 2 - 0.1)
    y = rng.uniform(1.2, max(1.3, lay.size[1] - h / 2 - 0.25))
    b = _Builder(_along(wall, s, 0.02), wall[0])
    border = rng.uniform(0.0, 0.05)
    b.box((0, y, 0), (w / 2 + border, h / 2 + border, 0.015), _wood(rng) if border > 0.02
          else _solid(np.full(3, 0.02)))
    b.box((0, y, -0.016), (w / 2, h / 2, 0.002), _picture(rng, w / 2, h / 2))
    if lay.free(*_bounds(b.parts), margin=0.05):
      lay.add(Piece("picture", tuple(b.parts), mounted=True))
      placed += 1


def _ceiling_lights(lay):
  """1-2 glowing panels on the ceiling, each an area light shining down."""
  rng = lay.rng
  for _ in range(int(rng.integers(1, 3))):
    half = rng.uniform(0.2, 0.4)
    x, z = rng.uniform(0.3, 0.7) * lay.size[0], rng.uniform(0.3, 0.7) * lay.size[2]
    y = lay.size[1] - 0.02
    warm = _warm_white(rng)
    b = _Builder((x, z), 0.0)
    b.box((0, y, 0), (half, 0.02, half), _solid(warm * 0.9, emission=rng.uniform(3.0, 6.0)))
    lay.add(Piece("ceiling_light", tuple(b.parts), mounted=True), obstacle=False)
    lay.light((x, y - 0.03, z), warm * rng.uniform(3.0, 6.0) * half / 0.3,
              (half, 0.0, half), normal=(0.0, -1.0, 0.0), samples=3)


def _lamp_light(lay, position, samples=1):
  """The small warm area light inside a lamp shade at `position` (3,)."""
  lay.light(position, _warm_white(lay.rng) * lay.rng.uniform(0.4, 0.8), (0.06, 0.04, 0.06),
            samples=samples)


def _with_clutter(lay, placed, count):
  """Puts up to `count` objects on each surface of a placed piece ((index, surfaces, ...) or
  None)."""
  if placed is None:
    return
  for surface in placed[1]:
    for piece in _clutter_on(lay.rng, surface, count):
      lay.add(piece, support=placed[0], obstacle=False)


def _shelves(lay, walls=None):
  """A bookshelf against a wall, its boards holding rows of books and a few objects."""
  rng = lay.rng
  w, d, h = rng.uniform(0.6, 1.4), rng.uniform(0.28, 0.4), rng.uniform(1.0, 2.1)
  placed = lay.on_wall("bookshelf", w, d, lambda b: _bookshelf(b, rng, w, d, h), walls)
  if placed is None:
    return
  for surface in placed[1]:
    if surface[3] < 0.4 and rng.uniform() < 0.7:
      for piece in _book_row(rng, surface):
        lay.add(piece, support=placed[0], obstacle=False)
    else:
      for piece in _clutter_on(rng, surface, int(rng.integers(1, 4)), allow_large=False):
        lay.add(piece, support=placed[0], obstacle=False)


def _cabinet_with(lay, w, d, h, top=None, name="cabinet"):
  """A cabinet against a wall with top = (name, build(builder)) standing in the middle of it
  (a TV, a lamp), or else clutter; returns on_wall's result."""
  rng = lay.rng
  placed = lay.on_wall(name, w, d, lambda b: _cabinet(b, rng, w, d, h))
  if placed is None:
    return None
  if top is None:
    _with_clutter(lay, placed, int(rng.integers(1, 5)))
  else:
    (cx, cz), _, y = placed[1][0]
    b = _Builder((cx, cz), placed[2][0])
    top[1](b)
    offset = np.array([0.0, y, 0.0])
    lay.add(Piece(top[0], tuple(dataclasses.replace(p, center=p.center + offset)
                                for p in b.parts)), support=placed[0], obstacle=False)
  return placed


def _rug(lay, centre, half, yaw=0.0):
  """A thin rug on the floor (photo, fabric or a tinted sample image)."""
  rng = lay.rng
  pick = rng.uniform()
  if pick < 0.4:
    mat = textures.textured(textures.photo(str(rng.choice(["immunohistochemistry",
                                                             "hubble_deep_field", "gravel"]))),
                            _hsv(rng, (0.0, 0.5), (0.6, 1.0)), (2 * half[0], 2 * half[1]))
  else:
    mat = _fabric(rng)
  b = _Builder(centre, yaw)
  b.box((0, 0.005, 0), (half[0], 0.005, half[1]), mat)
  if lay.inside(*_bounds(b.parts)):
    lay.add(Piece("rug", tuple(b.parts)), obstacle=False)


def _living(lay):
  """A sofa facing a coffee table on a rug, a floor lamp, a TV on a cabinet, shelves, a plant."""
  rng = lay.rng
  w = rng.uniform(1.6, 2.4)
  sofa = lay.on_wall("sofa", w, 1.0, lambda b: _sofa(b, rng, w))
  if sofa is not None:
    _, _, wall, s = sofa
    tw, td = rng.uniform(0.8, 1.3), rng.uniform(0.5, 0.7)
    origin = _along(wall, s, 1.0 + 0.45 + td / 2)
    _rug(lay, origin, (w / 2 + 0.3, td / 2 + 0.6), wall[0])
    _with_clutter(lay, lay.at("coffee_table", origin, wall[0],
                              lambda b: _table(b, rng, tw, td, rng.uniform(0.35, 0.48))),
                  int(rng.integers(2, 6)))
    lamp = lay.at("floor_lamp", _along(wall, s + w / 2 + 0.35, 0.3), 0.0,
                  lambda b: _floor_lamp(b, rng))
    if lamp is not None:
      _lamp_light(lay, lamp[1])
  _cabinet_with(lay, rng.uniform(1.2, 1.8), 0.45, rng.uniform(0.45, 0.6),
                ("tv", lambda b: _monitor(b, rng)))
  _shelves(lay)
  lay.at("plant", (rng.uniform(0.3, lay.size[0] - 0.3), rng.uniform(0.3, lay.size[2] - 0.3)),
         0.0, lambda b: _plant(b, rng, rng.uniform(1.2, 1.8)))


def _bedroom(lay):
  """A bed with nightstands and table lamps, a rug, a wardrobe, a dresser, shelves."""
  rng = lay.rng
  w, length = rng.uniform(1.0, 1.9), rng.uniform(1.95, 2.15)
  bed = lay.on_wall("bed", w, length, lambda b: _bed(b, rng, w, length))
  if bed is not None:
    _, _, wall, s = bed
    for sx in (-1, 1):
      stand = lay.at("nightstand", _along(wall, s + sx * (w / 2 + 0.3), 0.25), wall[0],
                     lambda b: _cabinet(b, rng, 0.45, 0.4, rng.uniform(0.45, 0.6)))
      if stand is not None and rng.uniform() < 0.7:
        (cx, cz), _, y = stand[1][0]
        b = _Builder((cx, cz), 0.0)
        _table_lamp(b, rng)
        offset = np.array([0.0, y, 0.0])
        lay.add(Piece("table_lamp", tuple(dataclasses.replace(p, center=p.center + offset)
                                          for p in b.parts)), support=stand[0], obstacle=False)
        _lamp_light(lay, (cx, y + 0.36, cz))
    _rug(lay, _along(wall, s, length * 0.6), (w / 2 + 0.5, 0.6), wall[0])
  _cabinet_with(lay, rng.uniform(0.8, 1.6), 0.6, rng.uniform(1.8, 2.2), name="wardrobe")
  _cabinet_with(lay, rng.uniform(0.8, 1.4), 0.45, rng.uniform(0.7, 1.0), name="dresser")
  _shelves(lay)


def _dress_desk(lay, desk, yaw):
  """A monitor and keyboard in the middle of a placed desk ((index, [surface], ...)), facing
  -z of `yaw`, and clutter at both ends."""
  rng = lay.rng
  centre, half, top = desk[1][0]
  offset = np.array([0.0, top, 0.0])
  for name, build in (("monitor", _monitor), ("keyboard", _keyboard)):
    b = _Builder((centre[0], centre[1]), yaw)
    build(b, rng)
    lay.add(Piece(name, tuple(dataclasses.replace(p, center=p.center + offset)
                              for p in b.parts)), support=desk[0], obstacle=False)
  along = int(np.argmax(half))  # The desk's long side.
  for sx in (-1, 1):  # Clutter left and right of the screen and keyboard (0.4 m each way).
    side_centre, side_half = centre.copy(), half.copy()
    side_centre[along] += sx * (half[along] + 0.4) / 2
    side_half[along] = (half[along] - 0.4) / 2
    if side_half[along] > 0.05:
      for piece in _clutter_on(rng, (side_centre, side_half, top), int(rng.integers(1, 5)),
                               allow_large=False):
        lay.add(piece, support=desk[0], obstacle=False)


def _desk_with_screen(b, rng, w, d):
  """A desk with a partition board standing behind it (open-plan offices); its top surface."""
  surfaces = _table(b, rng, w, d, rng.uniform(0.72, 0.76))
  height = rng.uniform(1.2, 1.5)
  b.box((0, height / 2, d / 2 + 0.02), (w / 2, height / 2, 0.02), _paint(rng, (0.4, 0.9)))
  return surfaces


def _office(lay):
  """Desks against the walls (and perhaps one in the room) with screens, chairs, shelves."""
  rng = lay.rng
  for _ in range(int(rng.integers(1, 3))):
    w, d = rng.uniform(1.1, 1.8), rng.uniform(0.6, 0.8)
    desk = lay.on_wall("desk", w, d, lambda b: _table(b, rng, w, d, rng.uniform(0.72, 0.76)))
    if desk is None:
      continue
    _dress_desk(lay, desk, desk[2][0])
    _, _, wall, s = desk
    lay.at("chair", _along(wall, s + rng.uniform(-0.2, 0.2), d + 0.35),
           wall[0] + math.pi + rng.uniform(-0.4, 0.4), lambda c: _chair(c, rng))
  if rng.uniform() < 0.6:  # A desk out in the room, a partition behind it.
    w, d = rng.uniform(1.2, 1.8), rng.uniform(0.7, 0.8)
    yaw = float(rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2]))
    origin = (rng.uniform(0.35, 0.65) * lay.size[0], rng.uniform(0.35, 0.65) * lay.size[2])
    desk = lay.at("desk", origin, yaw, lambda b: _desk_with_screen(b, rng, w, d))
    if desk is not None:
      _dress_desk(lay, desk, yaw)
      c, sn = math.cos(yaw), math.sin(yaw)
      front = (origin[0] - sn * (d / 2 + 0.35), origin[1] - c * (d / 2 + 0.35))
      lay.at("chair", front, yaw + math.pi + rng.uniform(-0.4, 0.4), lambda b: _chair(b, rng))
  for _ in range(int(rng.integers(1, 3))):
    _shelves(lay)
  _cabinet_with(lay, rng.uniform(0.8, 1.2), 0.45, rng.uniform(0.7, 1.1))


def _dining(lay):
  """A table with chairs around it on a rug, a sideboard, shelves."""
  rng = lay.rng
  w, d = rng.uniform(1.2, 2.0), rng.uniform(0.8, 1.0)
  x = rng.uniform(0.4, 0.6) * lay.size[0]
  z = rng.uniform(0.4, 0.6) * lay.size[2]
  yaw = float(rng.choice([0.0, math.pi / 2]))
  _rug(lay, (x, z), (w / 2 + 0.7, d / 2 + 0.7), yaw)
  table = lay.at("dining_table", (x, z), yaw, lambda b: _table(b, rng, w, d, 0.75))
  if table is not None:
    _with_clutter(lay, table, int(rng.integers(3, 9)))
    mat = _wood(rng)
    seats = [(sx * (w / 2 + 0.3), 0.0, sx * math.pi / 2) for sx in (-1, 1)]
    seats += [(px, sz * (d / 2 + 0.3), 0.0 if sz > 0 else math.pi)
              for px in (-w / 4, w / 4) for sz in (-1, 1)]
    c, sn = math.cos(yaw), math.sin(yaw)
    for px, pz, face in seats:
      if rng.uniform() < 0.8:
        origin = (x + c * px + sn * pz, z - sn * px + c * pz)
        lay.at("chair", origin, yaw + face + rng.uniform(-0.25, 0.25),
               lambda b: _chair(b, rng, mat))
  _cabinet_with(lay, rng.uniform(1.2, 2.0), 0.5, rng.uniform(0.8, 0.95), name="sideboard")
  _shelves(lay)


_FURNISH = {"living": _living, "bedroom": _bedroom, "office": _office, "dining": _dining}


def _room_surfaces(rng):
  """(materials for x-, x+, floor, ceiling, z-, z+; mean wall albedo; floor albedo)."""
  wall_colour = _hsv(rng, (0.0, 0.3), (0.6, 0.95))
  plaster = textures.textured(textures.procedural("plaster", int(rng.integers(4))), wall_colour,
                              (1.2, 1.2))
  walls = [plaster] * 4
  if rng.uniform() < 0.35:  # An accent wall of brick, painted or bare.
    tint = wall_colour * 1.2 if rng.uniform() < 0.5 else np.array([0.75, 0.45, 0.35])
    # Only a z wall: the room's texture coordinates on x walls run (height, depth), which
    # would stand the courses on end.
    walls[int(rng.choice([0, 3]))] = textures.textured(textures.photo("brick", turned=True),
                                                       tint, (1.2, 1.2))
  pick = rng.uniform()
  if pick < 0.5:
    floor = _wood(rng, (rng.uniform(1.0, 1.6),) * 2)
  elif pick < 0.7:  # Concrete or terrazzo.
    floor = textures.textured(textures.photo("gravel"), _hsv(rng, (0.0, 0.2), (0.5, 0.9)),
                              (1.0, 1.0))
  elif pick < 0.85:  # Carpet.
    floor = textures.textured(textures.photo("grass"), _hsv(rng, (0.1, 0.5), (0.3, 0.8)),
                              (0.8, 0.8))
  else:
    floor = scenes.Material(kind="tiles", color_a=_hsv(rng, (0.0, 0.2), (0.6, 0.95)),
                            color_b=_hsv(rng, (0.0, 0.2), (0.3, 0.6)),
                            scale=float(rng.uniform(0.3, 0.6)), angle=0.0,
                            seed=int(rng.integers(2**31 - 1)))
  ceiling = textures.textured(textures.procedural("plaster", 0), np.full(3, 0.85), (2.0, 2.0))
  materials = (walls[1], walls[2], floor, ceiling, walls[3], walls[0])
  return materials, wall_colour, floor.color_a


@functools.lru_cache(maxsize=8)  # Views of one room are rendered one after the other.
def random_room(seed: int) -> FurnishedRoom:
  """A furnished room, deterministic in seed: 3-7 m wide (x), 2.4-3 m high (y), 3-8 m deep (z),
  floor at y = 0; of type ROOM_TYPES[seed % 4]; door, windows, furniture, clutter, pictures,
  lights.
  Cached: callers must not modify the arrays it holds."""
  rng = np.random.default_rng([int(seed), 1_300_001])
  size = np.array([rng.uniform(3.0, 7.0), rng.uniform(2.4, 3.0), rng.uniform(3.0, 8.0)])
  materials, wall_colour, floor_colour = _room_surfaces(rng)
  room = scenes.Room(lo=np.zeros(3), hi=size, materials=materials)
  lay = _Layout(rng, size)
  kind = ROOM_TYPES[int(seed) % len(ROOM_TYPES)]  # Consecutive rooms cycle through the types.
  _door(lay)
  windows = int(rng.integers(1, 3))
  for _ in range(10):  # Attempts at free spots.
    windows -= _window(lay)
    if windows == 0:
      break
  _FURNISH[kind](lay)
  if rng.uniform() < 0.6:
    _shelves(lay)
  _cabinet_with(lay, rng.uniform(0.5, 1.0), 0.4, rng.uniform(0.6, 1.0))
  lay.at("plant", (rng.uniform(0.3, size[0] - 0.3), rng.uniform(0.3, size[2] - 0.3)), 0.0,
         lambda b: _plant(b, rng, rng.uniform(1.0, 1.6)))
  _pictures(lay, int(rng.integers(2, 6)))
  _ceiling_lights(lay)
  level = rng.uniform(0.15, 0.3)
  indirect = scenes.Indirect(from_above=(level * (0.5 + 0.5 * wall_colour)).astype(np.float32),
                             from_below=(level * 0.6 * (0.5 + 0.5 * floor_colour)).astype(
                                 np.float32), occlusion=0.9)
  return FurnishedRoom(room=room, pieces=tuple(lay.pieces), lights=tuple(lay.lights),
                       indirect=indirect, groups=_groups(lay.support), kind=kind)


def _groups(support):
  """Piece indices grouped by the standing piece at the bottom of each support chain."""
  def root(k):
    while support[k] is not None:
      k = support[k]
    return k
  groups = {}
  for k in range(len(support)):
    groups.setdefault(root(k), []).append(k)
  return tuple(tuple(g) for g in groups.values())


# ----------------------------------------------------------------------------------------------
# Camera.


def _standing(furnished, exclude=("rug",)):
  """Bounding boxes (lo, hi) of the standing pieces (but `exclude`d names)."""
  return [_bounds(p.parts) for p in furnished.pieces if not p.mounted and p.name not in exclude]


def _aimed_camera(rng, size, boxes, targets, clearance):
  """A candidate camera: a free spot (`clearance` metres from furniture, 0.3 m from walls),
  anywhere or 1-2.2 m from a random target box, aiming at it from 1 m away or more; None if
  the draw failed."""
  lo, hi = targets[int(rng.integers(len(targets)))]
  aim = np.array([(lo[0] + hi[0]) / 2, rng.uniform(lo[1], hi[1]), (lo[2] + hi[2]) / 2])
  if rng.uniform() < 0.5:  # Anywhere in the room.
    pos = np.array([rng.uniform(0.3, size[0] - 0.3), rng.uniform(*HEIGHT_M),
                    rng.uniform(0.3, size[2] - 0.3)])
  else:  # Close up: 1-2.2 m from the target, as one photographs a desk or a shelf.
    angle, reach = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 2.2)
    pos = np.array([aim[0] + reach * math.sin(angle), rng.uniform(*HEIGHT_M),
                    aim[2] + reach * math.cos(angle)])
    if np.any(pos[[0, 2]] < 0.3) or np.any(pos[[0, 2]] > size[[0, 2]] - 0.3):
      return None
  delta = aim - pos
  flat = float(np.hypot(delta[0], delta[2]))
  yaw = math.atan2(delta[0], delta[2]) + rng.uniform(-0.25, 0.25)
  pitch = float(np.clip(math.atan2(delta[1], flat) + rng.uniform(-0.1, 0.1),
                        *np.radians(PITCH_DEG)))
  roll = math.radians(rng.uniform(-ROLL_DEG, ROLL_DEG))
  hfov = math.radians(rng.uniform(*HFOV_DEG))
  blocked = any(np.all(pos[[0, 2]] > lo[[0, 2]] - clearance)
                and np.all(pos[[0, 2]] < hi[[0, 2]] + clearance) for lo, hi in boxes)
  if blocked or flat < 1.0:
    return None
  return scenes.Camera(position=pos, rotation=scenes.camera_rotation(yaw, pitch, roll),
                       focal_length_mm=0.5 * SENSOR_WIDTH_MM / math.tan(hfov / 2),
                       sensor_width_mm=SENSOR_WIDTH_MM)


def random_camera(furnished: FurnishedRoom, seed: int, view: int) -> scenes.Camera:
  """A handheld camera in the room, deterministic in (seed, view).

  It stands at least 0.5 m (horizontally; 0.3 m in crowded rooms) from any furniture and
  0.3 m from the walls, at
  HEIGHT_M above the floor, and looks at a piece of furniture 1 m away or more: yaw towards it
  (+-0.25 rad), pitch towards it +-0.1 rad clipped to PITCH_DEG, roll within +-ROLL_DEG,
  horizontal field of view in HFOV_DEG (36 mm wide sensor). Views whose median depth is under
  1.2 m, or with more than 15% of the frame nearer than 0.7 m, are drawn again (a camera
  pressed against a wardrobe is not a photo anyone takes).
  """
  rng = np.random.default_rng([int(seed), int(view), 2_600_003])
  boxes = _standing(furnished)
  targets = [b for b in _standing(furnished, ("rug", "door", "curtain"))
             if np.prod((b[1] - b[0])[[0, 2]]) > 0.05] or boxes
  fallback = None
  for attempt in range(300):
    camera = _aimed_camera(rng, furnished.room.hi, boxes, targets, 0.5 if attempt < 150 else 0.3)
    if camera is None:
      continue
    fallback = camera
    depth = scenes.depth_map(scene_of(furnished, camera), 12, 16)
    if np.median(depth) >= 1.2 and np.mean(depth < 0.7) <= 0.15:
      return camera
  if fallback is None:
    raise RuntimeError(f"Room {seed} has no free spot for a camera (view {view}).")
  return fallback


def scene_of(furnished: FurnishedRoom, camera: scenes.Camera) -> scenes.Scene:
  """The renderable Scene: every piece's primitives, grouped per `furnished.groups`."""
  objects, index = [], []
  for piece in furnished.pieces:
    index.append(list(range(len(objects), len(objects) + len(piece.parts))))
    objects.extend(piece.parts)
  groups = tuple(tuple(k for p in group for k in index[p]) for group in furnished.groups)
  return scenes.Scene(room=furnished.room, objects=tuple(objects), lights=furnished.lights,
                      ambient=0.0, camera=camera, indirect=furnished.indirect,
                      groups=tuple(g for g in groups if len(g) > 1))


def room_scene(seed: int, view: int = 0) -> scenes.Scene:
  """`random_room(seed)` seen by `random_camera(..., seed, view)`; views share the room."""
  furnished = random_room(seed)
  return scene_of(furnished, random_camera(furnished, seed, view))
