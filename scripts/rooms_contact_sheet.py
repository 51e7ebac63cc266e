"""Contact sheet of the furnished synthetic rooms (synthetic_rgbd/rooms): docs/rooms_examples.jpg.

  python scripts/rooms_contact_sheet.py [--out=docs/rooms_examples.jpg]

Eight views (two of each room type, at the `rooms` config's 144x192 px), each photo as stored
(through `tfds_diml.sensor`) above its exact depth map (turbo colours, 0.5 m blue .. 7 m red).
"""

import argparse

import cv2
import numpy as np

from tfds_diml import rooms
from tfds_diml import scenes
from tfds_diml import sensor

_VIEWS = ((0, 0), (1, 0), (2, 1), (3, 0), (4, 2), (5, 1), (6, 0), (7, 3))  # (room seed, view).
_HEIGHT, _WIDTH = 144, 192


def _tile(seed, view):
  """uint8 BGR (2 H, W, 3): the photo above its depth map."""
  linear, depth = scenes.render_pinhole_linear(rooms.room_scene(seed, view), _HEIGHT, _WIDTH,
                                               clip=False)
  photo = sensor.photo(linear, seed * 1000 + view)[..., ::-1]
  scaled = np.clip((depth - 0.5) / 6.5, 0.0, 1.0)
  return np.concatenate([photo, cv2.applyColorMap((scaled * 255).astype(np.uint8),
                                                  cv2.COLORMAP_TURBO)], axis=0)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="docs/rooms_examples.jpg")
  args = parser.parse_args()
  tiles = [_tile(seed, view) for seed, view in _VIEWS]
  sheet = np.concatenate([np.concatenate(tiles[:4], axis=1), np.concatenate(tiles[4:], axis=1)],
                         axis=0)
  cv2.imwrite(args.out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
  print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]} px)")


if __name__ == "__main__":
  main()
