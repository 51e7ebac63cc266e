"""Writes a prepared dofjax dataset out as a folder of "your own captures", for trying the
fine-tuning recipe without a sensor (docs/own-data.md, "What we measured").

  python scripts/export_captures.py OUT [--dataset=synthetic_rgbd/quickstart] [--data_dir=D]

Layout written (TUM RGB-D: rgb/ + depth/ + rgb.txt + depth.txt, depth = value / 5000 m):
  OUT/train/<room>/       the first views of each room of the dataset's train split
  OUT/test/<room>/        the last view of each of those rooms (later frames of the same rooms)
  OUT/validation/<room>/  every view of the rooms of the dataset's validation split
It is synthetic, not real data: it stands in for a recording of a few rooms from a sensor the
model was not trained on.
"""

import argparse
import os
import sys

import cv2
import ml_collections
import numpy as np

from dofjax import errors
from dofjax import input_pipeline
from tfds_diml import capture_layouts
from tfds_diml import storage

TUM_UNITS = capture_layouts.UNITS_PER_METRE["tum"]


def _text(v):
  return v.decode() if isinstance(v, bytes) else str(v)


def write_tum_frame(folder, index, image, depth_mm):
  """Writes one frame into a TUM-layout folder (rgb/<t>.png, depth/<t>.png, appends to
  rgb.txt and depth.txt); t = index / 30 s."""
  t = f"{index / 30:.6f}"
  for sub in ("rgb", "depth"):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
  metres = storage.millimetres_to_metres(depth_mm[..., 0])
  raw = np.round(metres * TUM_UNITS).astype(np.uint16)
  assert cv2.imwrite(os.path.join(folder, "rgb", t + ".png"), image[..., ::-1])
  assert cv2.imwrite(os.path.join(folder, "depth", t + ".png"), raw)
  for name, sub in (("rgb.txt", "rgb"), ("depth.txt", "depth")):
    with open(os.path.join(folder, name), "a", encoding="utf-8") as f:
      f.write(f"{t} {sub}/{t}.png\n")


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python scripts/export_captures.py")
  parser.add_argument("out")
  parser.add_argument("--dataset", default="synthetic_rgbd/quickstart")
  parser.add_argument("--data_dir", default=None)
  args = parser.parse_args((sys.argv if argv is None else argv)[1:])
  if os.path.exists(args.out):
    raise errors.UserError(f"{args.out} exists; pass a new folder.")
  config = ml_collections.ConfigDict({"dataset": args.dataset, "data_dir": args.data_dir,
                                      "manual_dir": None})
  counts = {}
  for split in ("train", "validation"):
    source = input_pipeline.data_source(config, split)
    rooms = {}
    for i in range(len(source)):
      rooms.setdefault(_text(source[i]["scene"]), []).append(i)
    for room, indices in rooms.items():
      for k, i in enumerate(indices):
        target = split if split == "validation" or k < len(indices) - 1 else "test"
        ex = source[i]
        write_tum_frame(os.path.join(args.out, target, room), k, ex["image"], ex["depth"])
        counts[target] = counts.get(target, 0) + 1
  print(f"wrote {args.out}: {counts} frames (TUM layout)")


if __name__ == "__main__":
  errors.run_cli(main)
