"""The renderer's static plan: what each compiled render of `dofjax.dof` is specialised on.

A render's layers sit at fixed signed blur radii (`layer_radii`: `num_layers` of them, up to
`max_radius` px, spaced as |t|^LAYER_SPACING), and its kernels follow `method`. These are static
in the compiled program, so callers that follow each photo's own blur (the CLI, the app) round
its largest blur up to a bucket (`plan_max_radius`), and most setting changes reuse a program.
Plain Python and NumPy, no JAX: entry points name these defaults without waiting for JAX to load.
"""

import math

import numpy as np

DEFAULT_NUM_LAYERS = 17
DEFAULT_MAX_RADIUS = 32.0
DEFAULT_METHOD = "pyramid"
METHODS = ("pyramid", "fft", "direct")
LAYER_SPACING = 1.75        # Layer radii grow as |t|^1.75 away from focus (`layer_radii`).
PLAN_MIN_RADIUS = 8.0       # The smallest bucket of `plan_max_radius` (px).


def check_layers(num_layers, max_radius):
  """ValueError unless num_layers is an odd integer >= 3 and max_radius > 0 px."""
  if int(num_layers) != num_layers or num_layers < 3 or num_layers % 2 == 0:
    raise ValueError(f"num_layers must be an odd integer >= 3 (one layer on the focal plane and "
                     f"as many on each side); got {num_layers}.")
  if not float(max_radius) > 0:
    raise ValueError(f"max_radius must be > 0 pixels; got {max_radius}.")


def layer_radii(num_layers=DEFAULT_NUM_LAYERS, max_radius=DEFAULT_MAX_RADIUS):
  """Signed blur radii (px) of the layers, far to near: max_radius sign(t) |t|^LAYER_SPACING,
  t = k / M, k = -M..M (M = (num_layers - 1) // 2). One layer sits on the focal plane, and the
  layers are spaced finer near it, where a layer step is most visible."""
  check_layers(num_layers, max_radius)
  m = (num_layers - 1) // 2
  t = np.arange(-m, m + 1, dtype=np.float64) / m
  return np.sign(t) * np.abs(t) ** LAYER_SPACING * float(max_radius)


def plan_max_radius(largest_px):
  """The layer plan's largest radius (px) for a photo whose largest blur is `largest_px`: the
  smallest of 8, 12, 16, 24, 32, 48, ... (2^k and 1.5 * 2^k from PLAN_MIN_RADIUS on) that is >=
  it.

  The plan (`layer_radii`) is static in the compiled render, so callers that follow each photo's
  own blur (the CLI, the app) bucket it: a photo size then has one program for all blurs up to
  8 px and at most two more per octave beyond, per aperture shape and highlight setting, instead
  of one per pixel of radius. Above 8 px the layers reach up to 1.5x farther than needed (their
  steps up to 1.5x larger); below, the steps near focus stay under a pixel and the layers that no
  pixel falls on are skipped.
  """
  largest = max(float(largest_px), PLAN_MIN_RADIUS)
  octave = 2.0 ** math.floor(math.log2(largest))
  for bucket in (octave, 1.5 * octave, 2.0 * octave):
    if bucket >= largest:
      return bucket
  raise AssertionError(largest)   # 2 * octave > largest always.
