"""Training-step benchmark: `python -m dofjax.benchmark train --config=configs/base.py [flags]`.

Builds synthetic in-memory batches (no dataset), compiles once, warms up, then times `--steps`
calls with the device synchronised after each (`block_until_ready`). `--part` picks what is
timed: the full D+G `steps.train_step` ('step', the default), or the generator alone in training
mode, forward ('generator_fwd') or forward+backward to its parameters ('generator_fwdbwd').

Prints the median and spread of seconds per call, images/s, the compiled computation's GFLOP
(XLA cost analysis), the achieved GFLOP/s, and peak memory (device memory stats where the backend
has them, else the process's maximum resident set), and as the last line one JSON object
(`seconds_per_step_median`, `images_per_second`, `gflop_per_step`, ...).

Examples:
  python -m dofjax.benchmark train --config=configs/base.py --steps=10
  python -m dofjax.benchmark train --config=configs/base.py --config.batch_size=8 --steps=5
  python -m dofjax.benchmark train --config=configs/base.py --part=generator_fwdbwd
  python -m dofjax.benchmark train --config=configs/base.py --config.compute_dtype=bfloat16 \
      --config.batch_size=64 --steps=20      # on a GPU: also the fraction of the bf16 peak
"""

import json
import resource
import sys
import time

from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from dofjax import errors

PARTS = ("step", "generator_fwd", "generator_fwdbwd")
# Dense bfloat16 matrix rate per chip (TFLOP/s, vendor data sheets), by device_kind substring;
# the first match counts, so more specific names come first.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
                    ("L4", 121.0), ("TPU v4", 275.0), ("TPU v5 lite", 197.0),
                    ("TPU v5e", 197.0), ("TPU v5p", 459.0), ("TPU v5", 459.0),
                    ("TPU v6 lite", 918.0), ("TPU v6e", 918.0))


def peak_bf16_tflops(device_kind: str):
  """The chip's dense bfloat16 matrix rate in TFLOP/s from PEAK_BF16_TFLOPS, or None (CPUs and
  chips not listed: pass --peak_tflops)."""
  for name, tflops in PEAK_BF16_TFLOPS:
    if name.lower() in device_kind.lower():
      return tflops
  return None


def _parse(argv):
  """Parses argv into (config, steps, warmup, part) on a private FlagValues (re-entrant)."""
  fv = flags.FlagValues()
  config = config_flags.DEFINE_config_file(
      "config", "configs/base.py", "Config file; override fields with --config.x=y.",
      flag_values=fv, sys_argv=list(argv))
  flags.DEFINE_integer("steps", 10, "Timed calls.", flag_values=fv)
  flags.DEFINE_integer("warmup", 2, "Untimed calls after compilation.", flag_values=fv)
  flags.DEFINE_enum("part", "step", PARTS, "What to time.", flag_values=fv)
  flags.DEFINE_float("peak_tflops", 0.0, "The chip's dense bf16 matrix rate (TFLOP/s) for "
                     "'fraction_of_peak'; 0 = look it up by device kind (GPUs/TPUs listed in "
                     "PEAK_BF16_TFLOPS).", flag_values=fv)
  if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
    print(f"usage: {argv[0]} [--config=FILE] [--config.<field>=VALUE ...] [flags]\n\n"
          + fv.get_help())
    raise SystemExit(0)
  try:
    fv(list(argv))
  except flags.Error as e:
    raise errors.UserError(str(e)) from e
  if fv.steps <= 0 or fv.warmup < 0 or fv.peak_tflops < 0:
    raise errors.UserError(f"--steps={fv.steps} must be > 0, --warmup={fv.warmup} >= 0 and "
                           f"--peak_tflops={fv.peak_tflops} >= 0.")
  return config.value, fv.steps, fv.warmup, fv.part, fv.peak_tflops


def synthetic_batch(batch_size: int, size: int, seed: int = 0) -> dict:
  """A batch as the input pipeline makes it: float32 NHWC 'image' and 'target' in [-1, 1],
  'mask' of ones, 'depth' in metres (1-8 m), each (batch_size, size, size, C)."""
  rng = np.random.default_rng(seed)
  image = rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32)
  ramp = np.linspace(-0.9, 0.9, size, dtype=np.float32)[None, :, None, None]
  target = np.broadcast_to(ramp, (batch_size, size, size, 1)).copy()
  depth = (1.0 + 3.5 * (target + 1.0)).astype(np.float32)
  return {"image": image, "target": target, "mask": np.ones_like(target), "depth": depth}


def _time_calls(call, steps: int, warmup: int):
  """Runs call() warmup + steps times, synchronising each; returns the timed durations (s)."""
  for _ in range(warmup):
    jax.block_until_ready(call())
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    times.append(time.perf_counter() - t0)
  return np.asarray(times)


def _flops(compiled) -> float:
  """FLOPs of one call of a compiled computation (XLA cost analysis); nan where the backend has
  none (jax documents NotImplementedError for that)."""
  try:
    cost = compiled.cost_analysis()
  except NotImplementedError:
    return float("nan")
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", float("nan")))


def _peak_memory():
  """(bytes, source): device peak where the backend reports it, else this process's max RSS.

  `Device.memory_stats()` returns None where the platform has no statistics (CPUs).
  """
  stats = jax.local_devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
  rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux.
  return int(rss_kib) * 1024, "process max RSS"


def _build_step(config, batch, rng):
  """(compiled step, call) for the full D+G train step; `call` advances the donated state."""
  from dofjax import parallel
  mesh = parallel.make_mesh()
  state = parallel.init_state_on_mesh(config, jax.random.key(config.seed), mesh)  # Replicated.
  batch = jax.device_put(batch, jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(parallel.DATA_AXIS)))
  compiled = parallel.compile_train_step(config, mesh).lower(state, batch, rng).compile()
  holder = {"state": state}

  def call():
    holder["state"], metrics = compiled(holder["state"], batch, rng)
    return metrics

  return compiled, call


def _build_generator(config, batch, rng, backward: bool):
  """(compiled, call) for the generator in training mode: forward, or gradient of mean(output)."""
  from dofjax import state as state_lib
  gen, _ = state_lib.make_models(config)
  image = jnp.asarray(batch["image"])
  # The weights' values do not change the timing, and with the non-partitionable threefry the
  # initialisers compile ~10x faster on CPU (tens of seconds of CPU even at the tiny size).
  with jax.threefry_partitionable(False):
    init = jax.jit(lambda rngs, x: gen.init(rngs, x, train=False))
    variables = init({"params": rng, "dropout": rng}, image[:1])

  def forward(params, x):
    out, _ = gen.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                       train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    return out

  fn = jax.grad(lambda p, x: jnp.mean(forward(p, x))) if backward else forward
  compiled = jax.jit(fn).lower(variables["params"], image).compile()
  return compiled, lambda: compiled(variables["params"], image)


def run(config, steps: int, warmup: int, part: str, peak_tflops: float = 0.0) -> dict:
  """Compiles and times `part` for `config`; returns the figures (also printed).

  fraction_of_peak = achieved FLOP/s per device / the chip's dense bf16 rate (`peak_tflops`, or
  looked up by device kind; None when unknown, e.g. on CPUs).
  """
  from dofjax import layers
  impl = layers.resolve_impl(config.model.conv_impl)
  batch = synthetic_batch(config.batch_size, config.image_size, config.seed)
  rng = jax.random.key(config.seed + 1)
  t0 = time.perf_counter()
  if part == "step":
    compiled, call = _build_step(config, batch, rng)
  else:
    compiled, call = _build_generator(config, batch, rng, part == "generator_fwdbwd")
  compile_s = time.perf_counter() - t0
  times = _time_calls(call, steps, warmup)
  flops = _flops(compiled)
  peak, peak_source = _peak_memory()
  median = float(np.median(times))
  peak_tflops = peak_tflops or peak_bf16_tflops(jax.devices()[0].device_kind)
  # Cost analysis counts one device's program; the mesh runs one such program per device.
  fraction = flops / median / (peak_tflops * 1e12) if peak_tflops else None
  result = {
      "part": part,
      "backend": jax.default_backend(),
      "device": jax.devices()[0].device_kind,
      "conv_impl": impl,
      "compute_dtype": config.compute_dtype,
      "batch_size": int(config.batch_size),
      "image_size": int(config.image_size),
      "steps": int(steps),
      "seconds_per_step_median": median,
      "seconds_per_step_min": float(times.min()),
      "seconds_per_step_max": float(times.max()),
      "seconds_per_step_iqr": float(np.percentile(times, 75) - np.percentile(times, 25)),
      "images_per_second": config.batch_size / median,
      "gflop_per_step": flops / 1e9,
      "gflop_per_second": flops / 1e9 / median,
      "num_devices": jax.device_count(),
      "peak_bf16_tflops": peak_tflops,
      "fraction_of_peak": fraction,
      "compile_seconds": compile_s,
      "peak_memory_bytes": peak,
      "peak_memory_source": peak_source,
  }
  print(f"train benchmark: part={part}, {result['backend']} ({result['device']}), "
        f"conv_impl={impl}, compute_dtype={config.compute_dtype}, batch {config.batch_size} x "
        f"{config.image_size}px, {steps} timed calls after {warmup} warm-up, "
        f"compile {compile_s:.1f} s")
  print(f"  seconds/step: median {median:.4f}, min {times.min():.4f}, max {times.max():.4f}, "
        f"IQR {result['seconds_per_step_iqr']:.4f}")
  print(f"  images/s: {result['images_per_second']:.2f}")
  print(f"  GFLOP/step (XLA cost analysis): {result['gflop_per_step']:.2f}; achieved "
        f"{result['gflop_per_second']:.1f} GFLOP/s")
  if fraction is not None:
    print(f"  fraction of the chip's dense bf16 rate ({peak_tflops:g} TFLOP/s): "
          f"{100 * fraction:.1f} %")
  print(f"  peak memory: {peak / 2**20:.0f} MiB ({peak_source})")
  return result


def main(argv=None):
  """Entry point for `python -m dofjax.benchmark train`; prints a JSON line last."""
  argv = list(sys.argv if argv is None else argv)
  config, steps, warmup, part, peak_tflops = _parse(argv)
  result = run(config, steps, warmup, part, peak_tflops)
  print(json.dumps(result))
  return result


if __name__ == "__main__":
  errors.run_cli(main)
