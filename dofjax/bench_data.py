"""`python -m dofjax.benchmark data`: examples/s of the train input pipeline on this machine.

Writes DIML-layout trees of synthetic frames into a temporary folder (no download), prepares
them with the real `diml` builder, and times `input_pipeline.create_train_iterator` (decode,
mm -> metres, resize to load_size, random crop, flip, target code, mask, batching) for
  * DIML-HR-sized frames (1344x756 by default), and
  * 256 px frames (256x256 by default),
both cropped to config.image_size = 256 after resizing to load_size = 286. The last line printed
is one JSON object with the figures.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import ml_collections

from dofjax import errors
from dofjax import input_pipeline


def _config(data_dir, manual_dir, dataset, args):
  c = ml_collections.ConfigDict()
  c.dataset = dataset
  c.data_dir = data_dir
  c.manual_dir = manual_dir
  c.train_split = "train"
  c.image_size = args.image_size
  c.load_size = args.load_size
  c.random_flip = True
  c.depth_near_m = 0.5
  c.depth_far_m = 10.0
  c.num_data_workers = args.workers
  c.batch_size = args.batch_size
  c.seed = 0
  return c


def _frame_size(text: str, flag: str):
  """'WIDTHxHEIGHT' -> (width, height) positive ints; UserError naming `flag` otherwise."""
  parts = text.lower().split("x")
  if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
    raise errors.UserError(f"{flag} must be WIDTHxHEIGHT in pixels, e.g. 1344x756; got {text!r}.")
  return int(parts[0]), int(parts[1])


def _time_pipeline(config, num_batches, warmup):
  """Seconds per example of the train iterator, after `warmup` batches."""
  it = input_pipeline.create_train_iterator(config, process_index=0, process_count=1)
  for _ in range(warmup):
    next(it)
  start = time.perf_counter()
  for _ in range(num_batches):
    next(it)
  elapsed = time.perf_counter() - start
  return num_batches * config.batch_size / elapsed


def main(argv=None):
  """Runs the benchmark; prints human-readable lines, then one JSON line."""
  parser = argparse.ArgumentParser(prog="python -m dofjax.benchmark data")
  parser.add_argument("--hr_size", default="1344x756", help="WIDTHxHEIGHT of the large frames")
  parser.add_argument("--small_size", default="256x256", help="WIDTHxHEIGHT of the small ones")
  parser.add_argument("--num_files", type=int, default=16, help="distinct frames per case")
  parser.add_argument("--num_batches", type=int, default=40, help="timed batches per case")
  parser.add_argument("--warmup", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=4)
  parser.add_argument("--image_size", type=int, default=256)
  parser.add_argument("--load_size", type=int, default=286)
  parser.add_argument("--workers", type=int, default=0, help="grain worker processes")
  args = parser.parse_args((sys.argv if argv is None else argv)[1:])
  from tfds_diml import make_dummy_data  # pylint: disable=g-import-not-at-top

  results = {}
  cases = (("hr", "diml/hr", "HR", args.hr_size), ("px256", "diml/lr", "LR", args.small_size))
  with tempfile.TemporaryDirectory(prefix="dofjax_bench_data_") as tmp:
    for key, dataset, folder, size in cases:
      width, height = _frame_size(size, f"--{key}_size")
      manual = os.path.join(tmp, f"manual_{key}")
      half = max(1, args.num_files // 2)
      layout = {"train": {"1. Bench room": half, "2. Bench hall": args.num_files - half},
                "test": {"3. Bench test": 1}}
      t0 = time.perf_counter()
      make_dummy_data.write_tree(manual, layout, {folder: (height, width)},
                                 render_height=min(height, 144), extras=False)
      config = _config(os.path.join(tmp, "data"), manual, dataset, args)
      input_pipeline.prepare(config)
      setup_s = time.perf_counter() - t0
      rate = _time_pipeline(config, args.num_batches, args.warmup)
      print(f"{key}: {width}x{height} frames -> {args.image_size} px crops, batch "
            f"{args.batch_size}, {args.workers} workers: {rate:.1f} examples/s "
            f"(setup {setup_s:.1f} s)")
      results[f"{key}_examples_per_s"] = round(rate, 2)
      results[f"{key}_frame"] = f"{width}x{height}"
  results.update(batch_size=args.batch_size, image_size=args.image_size,
                 load_size=args.load_size, workers=args.workers, cpu_count=os.cpu_count())
  print(json.dumps(results))
  return results


if __name__ == "__main__":
  errors.run_cli(main)
