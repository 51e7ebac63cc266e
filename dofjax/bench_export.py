"""`python -m dofjax.benchmark export`: latency of the exported depth model in ONNX Runtime with
1, 2 and 4 threads against the jitted JAX model, per photo size and precision.

  python -m dofjax.benchmark export [--workdir=W | --config=configs/quickstart.py]
      [--sizes=128,256] [--threads=1,2,4] [--precisions=float32,float16,int8] [--repeats=20]

The network is the workdir's (its prediction weights) or, without --workdir, a freshly
initialised one of --config (latency does not depend on the weights' values). Each size is
exported as `python -m dofjax.export` does (a square HxH photo, uint8 in, metres out) into a
temporary folder, checked for parity, and timed: the median of --repeats calls, batch 1, after
warm-up calls. JAX runs the same function jitted with the config's own convolutions (on CPU
'auto' = the matmul form) on all the cores XLA uses; ONNX Runtime with intra-op threads fixed.
CPU latency here is a proxy for a phone's big core (docs/phone.md). The last line printed is one
JSON object with the figures.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from dofjax import errors
from dofjax import export


def _ints(text, flag):
  try:
    values = [int(v) for v in text.split(",")]
  except ValueError:
    values = []
  if not values or min(values) <= 0:
    raise errors.UserError(f"{flag} must be a comma-separated list of positive integers; got "
                           f"{text!r}.")
  return values


def _median_ms(fn, repeats, warmup=3):
  """Median wall time of fn() in milliseconds over `repeats` calls, after `warmup` calls."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _model(args):
  """(config, prediction weights, source description)."""
  if args.workdir:
    from dofjax import inference  # pylint: disable=g-import-not-at-top
    config, weights, step = inference.load_generator(args.workdir)
    export.check_exportable(config)
    return config, weights, f"{args.workdir} step {step}"
  import importlib.util  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from dofjax import state as state_lib  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(args.config):
    raise errors.UserError(f"--config={args.config!r}: no such file.")
  spec = importlib.util.spec_from_file_location("bench_export_config", args.config)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  state = state_lib.create_train_state(config, jax.random.key(config.seed))
  return config, state_lib.prediction_weights(state), f"fresh {args.config}"


def main(argv=None):
  """Runs the benchmark; prints a table, then one JSON line."""
  parser = argparse.ArgumentParser(prog="python -m dofjax.benchmark export")
  parser.add_argument("--workdir", help="Trained workdir (default: fresh weights of --config).")
  parser.add_argument("--config", default="configs/quickstart.py")
  parser.add_argument("--sizes", default="128,256", help="Square photo sizes in px.")
  parser.add_argument("--threads", default="1,2,4", help="ONNX Runtime intra-op thread counts.")
  parser.add_argument("--precisions", default=",".join(export.PRECISIONS))
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args((sys.argv if argv is None else argv)[1:])
  sizes, threads = _ints(args.sizes, "--sizes"), _ints(args.threads, "--threads")
  precisions = args.precisions.split(",")
  for p in precisions:
    if p not in export.PRECISIONS:
      raise errors.UserError(f"--precisions: {p!r} is not one of {', '.join(export.PRECISIONS)}.")
  export.require_extra()
  import jax  # pylint: disable=g-import-not-at-top
  config, weights, source = _model(args)
  results = {"model": source, "cpu_count": os.cpu_count(), "cases": []}
  print(f"model: {source}; ONNX Runtime CPU vs jitted JAX ({jax.default_backend()}), batch 1, "
        f"median of {args.repeats}; {os.cpu_count()} CPUs")
  print("| size | runtime | precision | threads | ms | file MB |")
  print("|---|---|---|---|---|---|")
  for size in sizes:
    hw = export.parse_size(str(size), 2**config.model.num_downs)
    photo = export.random_photos(*hw, count=1)[0][1][None]
    jax_fn = export.jax_depth_model(config, weights)
    ms = _median_ms(lambda: jax_fn(photo).block_until_ready(), args.repeats)
    results["cases"].append(dict(size=size, runtime="jax", threads=None, ms=round(ms, 2)))
    print(f"| {size} | JAX jit | float32 | all | {ms:.1f} | |")
    with tempfile.TemporaryDirectory(prefix="dofjax_bench_export_") as tmp:
      for precision in precisions:
        path = os.path.join(tmp, f"{precision}.onnx")
        _, nbytes = export.write_depth_model(config, weights, hw, path, precision,
                                             photos=export.random_photos(*hw))
        for n in threads:
          sess = export.session(path, threads=n)
          ms = _median_ms(lambda: export.run_session(sess, photo), args.repeats)
          results["cases"].append(dict(size=size, runtime="onnxruntime", precision=precision,
                                       threads=n, ms=round(ms, 2), file_mb=round(nbytes / 1e6, 2)))
          print(f"| {size} | ONNX Runtime | {precision} | {n} | {ms:.1f} | {nbytes / 1e6:.2f} |")
  print(json.dumps(results))
  return 0
