"""`synthetic_rgbd`: procedurally rendered indoor RGB-D scenes with exact depth (no download).

Same features and splits as `diml`, so any config can swap one for the other:
  image  uint8 (H, W, 3)   sRGB, stored as PNG bytes;
  depth  uint16 (H, W, 1)  z distance in millimetres (0 = invalid), stored as 16-bit PNG bytes;
  scene  string            the room ('room_<seed>'); several views share one room;
  stem   string            the view ('view_<k>').
Configs with `thin_lens` set add `image_dof` (uint8 (H, W, 3), the same view through a thin lens,
`scenes.render_thin_lens`) and the scalars `focus_distance_m`, `f_number`, `focal_length_mm`,
`sensor_width_mm` (float32). `dof_hdr` adds lights brighter than white (see `ThinLens.hdr`).

Two kinds of rooms (`SyntheticConfig.scene_kind`): "boxes", empty rooms holding a few textured boxes
and spheres under point lights (`scenes.random_scene`: tiny, quickstart, diml_lr_like, dof*),
and "furnished", furnished rooms with photographic textures, soft light and handheld cameras
(`rooms.room_scene`: rooms, rooms_tiny, rooms_dof). With `sensor`, the stored photo goes through
`sensor.photo` (exposure, white balance, vignetting, blur, noise, JPEG); depth stays exact.
Thin-lens furnished rooms share one auto-exposure between `image` and `image_dof` and have no
other sensor effect, so the pair differs only by the lens.

Rooms are disjoint between splits (train, validation and test use different room seeds), so
no scene leaks from train into evaluation. Everything is deterministic in the config, however
many worker processes render it (`SyntheticRgbd(num_workers=...)`, default os.cpu_count()).

PNG bytes are encoded here with OpenCV and decoded by TFDS with OpenCV, so neither preparing nor
reading needs TensorFlow.
"""

import dataclasses
import os
import pickle
import subprocess
import sys
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds

from tfds_diml import local_builder
from tfds_diml import rooms
from tfds_diml import scenes
from tfds_diml import sensor
from tfds_diml import storage

# Room seeds of the three splits never overlap (see `_room_seeds`).
_SPLIT_SEED_OFFSET = {"train": 0, "validation": 1_000_000, "test": 2_000_000}


@dataclasses.dataclass(frozen=True)
class ThinLens:
  """Thin-lens rendering settings of the optional `image_dof` feature.

  hdr: rooms get emitters brighter than white (`scenes.random_hdr_scene`), and `image_dof`
  averages the aperture samples over the unclipped radiance, then clips (what a sensor behind a
  real lens records); `image` is the clipped pinhole photo. False: every view is clipped before
  averaging (the convention of the other configs).
  """
  f_number: float
  num_samples: int = 64
  hdr: bool = False


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
  """Image size (pixels) and example counts per split; views_per_scene views share a room."""
  height: int = 48
  width: int = 64
  num_train: int = 16
  num_validation: int = 4
  num_test: int = 4
  views_per_scene: int = 2
  seed: int = 0
  thin_lens: Optional[ThinLens] = None
  scene_kind: str = "boxes"  # "boxes" (scenes.random_scene) or "furnished" (rooms.room_scene).
  sensor: bool = False  # The stored photo goes through sensor.photo (furnished, pinhole only).


def _to_uint8(rgb01: np.ndarray) -> np.ndarray:
  """float sRGB in [0, 1] -> uint8, rounded."""
  return np.round(np.clip(rgb01, 0.0, 1.0) * 255.0).astype(np.uint8)


def _focus_distance(seed: int, depth_m: np.ndarray) -> float:
  """A focus distance (metres) on something in view: the depth at a random central pixel."""
  h, w = depth_m.shape
  rng = np.random.default_rng([seed, 31337])
  i = int(rng.integers(h // 4, 3 * h // 4 + 1))
  j = int(rng.integers(w // 4, 3 * w // 4 + 1))
  return float(depth_m[i, j])


def render_example(config: SyntheticConfig, room_seed: int, view: int) -> dict:
  """The feature dict of one view, deterministic in (config, room_seed, view)."""
  if config.scene_kind == "furnished":
    return _render_furnished(config, room_seed, view)
  hdr = config.thin_lens is not None and config.thin_lens.hdr
  scene = (scenes.random_hdr_scene if hdr else scenes.random_scene)(room_seed, view=view)
  rgb, depth_m = scenes.render_pinhole(scene, config.height, config.width)
  example = _features(room_seed, view, _to_uint8(rgb), depth_m)
  if config.thin_lens is not None:
    focus = _focus_distance(room_seed * 1000 + view, depth_m)
    dof = scenes.render_thin_lens(scene, config.height, config.width, focus_distance_m=focus,
                                  f_number=config.thin_lens.f_number,
                                  num_samples=config.thin_lens.num_samples,
                                  clip_each_view=not hdr)
    example.update(_dof_features(config, scene, dof, focus))
  return example


def _render_furnished(config: SyntheticConfig, room_seed: int, view: int) -> dict:
  """`render_example` for furnished rooms: pinhole radiance through the sensor (or, with a thin
  lens, one shared auto-exposure for the pinhole and thin-lens renders)."""
  scene = rooms.room_scene(room_seed, view)
  linear, depth_m = scenes.render_pinhole_linear(scene, config.height, config.width, clip=False)
  photo_seed = room_seed * 1000 + view
  if config.thin_lens is None:
    image = (sensor.photo(linear, photo_seed) if config.sensor
             else _to_uint8(scenes.linear_to_srgb(linear)))
    return _features(room_seed, view, image, depth_m)
  gain = sensor.exposure_gain(linear, photo_seed)
  example = _features(room_seed, view, _to_uint8(scenes.linear_to_srgb(linear * gain)), depth_m)
  focus = _focus_distance(photo_seed, depth_m)
  dof = scenes.render_thin_lens(scene, config.height, config.width, focus_distance_m=focus,
                                f_number=config.thin_lens.f_number,
                                num_samples=config.thin_lens.num_samples, clip_each_view=False,
                                exposure=gain, reuse_lighting=True)
  example.update(_dof_features(config, scene, dof, focus))
  return example


def _features(room_seed, view, image_uint8, depth_m):
  """The features every example has: PNG-encoded image and depth (mm), scene and stem names."""
  return {
      "image": storage.encode_png(image_uint8),
      "depth": storage.encode_png(storage.metres_to_millimetres(depth_m)[..., None]),
      "scene": f"room_{room_seed:07d}",
      "stem": f"view_{view}",
  }


def _dof_features(config, scene, dof_srgb, focus):
  """The thin-lens features: `image_dof` (PNG) and the lens and camera scalars."""
  return {
      "image_dof": storage.encode_png(_to_uint8(dof_srgb)),
      "focus_distance_m": np.float32(focus),
      "f_number": np.float32(config.thin_lens.f_number),
      "focal_length_mm": np.float32(scene.camera.focal_length_mm),
      "sensor_width_mm": np.float32(scene.camera.sensor_width_mm),
  }


def _room_seeds(config: SyntheticConfig, split: str, num_examples: int):
  """[(room_seed, view)] for a split: consecutive rooms, `views_per_scene` views each."""
  base = config.seed * 10_000_000 + _SPLIT_SEED_OFFSET[split]
  return [(base + k // config.views_per_scene, k % config.views_per_scene)
          for k in range(num_examples)]


class SyntheticRgbd(local_builder.LocalBuilder):
  """Procedural indoor RGB-D scenes with exact depth (and optional thin-lens renders)."""

  name = "synthetic_rgbd"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  DATA_ORIGIN = "generated locally, nothing is downloaded"
  BUILDER_CONFIGS = [
      # Tests: prepares in a few seconds.
      SyntheticConfig(name="tiny", description="48x64 px, 16/4/4 examples (tests).",
                      height=48, width=64, num_train=16, num_validation=4, num_test=4,
                      views_per_scene=2),
      # configs/quickstart.py: 4:3 frames, prepares in well under a minute on 2 cores.
      SyntheticConfig(name="quickstart", description="144x192 px, 384/32/32 examples.",
                      height=144, width=192, num_train=384, num_validation=32, num_test=32,
                      views_per_scene=4),
      # The size and 16:9 shape of DIML LR (512x288), for pipeline or model checks at scale.
      SyntheticConfig(name="diml_lr_like", description="288x512 px, 1500/100/500 examples.",
                      height=288, width=512, num_train=1500, num_validation=100, num_test=500,
                      views_per_scene=5),
      # Depth-of-field ground truth: adds `image_dof` rendered through a thin lens (a very
      # wide aperture, so the blur is visible at these small sizes).
      SyntheticConfig(name="dof_tiny", description="48x64 px thin-lens renders (tests).",
                      height=48, width=64, num_train=2, num_validation=2, num_test=2,
                      views_per_scene=2, thin_lens=ThinLens(f_number=0.25, num_samples=16)),
      # The eval data of the `:synthetic` ablation arms: CoC radii up to ~10 px, 128 aperture
      # samples (< 2 px apart on the widest discs).
      SyntheticConfig(name="dof", description="192x256 px thin-lens renders, f/0.25, 128 samples.",
                      height=192, width=256, num_train=8, num_validation=8, num_test=32,
                      views_per_scene=2, thin_lens=ThinLens(f_number=0.25, num_samples=128)),
      # Highlights: rooms with lamps, bright windows and glints brighter than white; `image_dof`
      # clips once after the aperture average (a sensor), `image` is the clipped pinhole photo.
      SyntheticConfig(name="dof_hdr", description="192x256 px HDR thin-lens renders, f/0.25.",
                      height=192, width=256, num_train=8, num_validation=8, num_test=16,
                      views_per_scene=2,
                      thin_lens=ThinLens(f_number=0.25, num_samples=128, hdr=True)),
      # Furnished rooms seen by handheld cameras, stored through a camera's sensor effects: the
      # realistic counterpart of `quickstart` (same size and counts). 230-310 frames per
      # CPU-minute; preparing took 99 s on 2 shared cores at load 3.3, 152 s at load 6.5.
      SyntheticConfig(name="rooms", description="144x192 px furnished rooms, 384/32/32.",
                      height=144, width=192, num_train=384, num_validation=32, num_test=32,
                      views_per_scene=4, scene_kind="furnished", sensor=True),
      # The same rooms, 8x more of them: configs/synthetic_long.py (about 11 minutes to prepare
      # on 2 idle cores at ~270 frames a minute).
      SyntheticConfig(name="rooms_large", description="144x192 px furnished rooms, 3000/64/64.",
                      height=144, width=192, num_train=3000, num_validation=64, num_test=64,
                      views_per_scene=4, scene_kind="furnished", sensor=True),
      SyntheticConfig(name="rooms_tiny", description="48x64 px furnished rooms (tests).",
                      height=48, width=64, num_train=8, num_validation=4, num_test=4,
                      views_per_scene=2, scene_kind="furnished", sensor=True),
      # Thin-lens ground truth in furnished rooms, like `dof` (no sensor effects but a shared
      # auto-exposure; highlights clip once, after the aperture average). 15-25 CPU-seconds
      # per example: 6-10 minutes on 2 idle cores.
      SyntheticConfig(name="rooms_dof", description="192x256 px furnished thin-lens renders.",
                      height=192, width=256, num_train=8, num_validation=8, num_test=32,
                      views_per_scene=2, scene_kind="furnished",
                      thin_lens=ThinLens(f_number=0.25, num_samples=128, hdr=True)),
  ]

  def __init__(self, *, num_workers: Optional[int] = None, **kwargs):
    """num_workers: processes rendering the examples (None: os.cpu_count(), fewer for small
    splits); the data is the same for any number."""
    if num_workers is not None and num_workers < 1:
      raise ValueError(f"num_workers must be >= 1 (or None for all CPUs); got {num_workers}.")
    self._num_workers = num_workers
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features = local_builder.rgbd_features()
    if self.builder_config.thin_lens is not None:
      features["image_dof"] = tfds.features.Image(shape=(None, None, 3), dtype=np.uint8,
                                                  encoding_format="png")
      for key in ("focus_distance_m", "f_number", "focal_length_mm", "sensor_width_mm"):
        features[key] = tfds.features.Scalar(dtype=np.float32)
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    c = self.builder_config
    return {
        "train": self._generate_examples("train", c.num_train),
        "validation": self._generate_examples("validation", c.num_validation),
        "test": self._generate_examples("test", c.num_test),
    }

  def _generate_examples(self, split, num_examples):
    keys = _room_seeds(self.builder_config, split, num_examples)
    for (room_seed, view), example in zip(keys, _render_all(self.builder_config, keys,
                                                            self._num_workers)):
      yield f"{room_seed}_{view}", example


# A worker process is worth its start-up (~2 s: it imports TFDS) only for this many examples.
_EXAMPLES_PER_WORKER = 16
# What a worker process runs (see `_serve`). A fresh interpreter started with -c, not
# multiprocessing: a fork would copy the caller's JAX/TFDS threads, and multiprocessing's spawn
# re-runs the caller's main script in every worker, which an unguarded script does not survive.
_WORKER_COMMAND = "from tfds_diml import synthetic_rgbd; synthetic_rgbd._serve()"


def _serve():
  """Worker process: reads [(config, [(room_seed, view)])] from stdin (pickle), writes one
  pickled list of `render_example` dicts per chunk to stdout, in order."""
  jobs = pickle.load(sys.stdin.buffer)
  for config, chunk in jobs:
    pickle.dump([render_example(config, *key) for key in chunk], sys.stdout.buffer)
    sys.stdout.buffer.flush()


def _render_all(config: SyntheticConfig, keys, num_workers: Optional[int]):
  """Yields `render_example(config, *key)` for keys [(room_seed, view)] in order, rendered by
  num_workers processes (None: os.cpu_count(), at most one per _EXAMPLES_PER_WORKER examples;
  1: in this process). Each room's views go to one worker (it lays the room out once); rooms
  are dealt out in turn, so the examples are the same for any number of workers."""
  if num_workers is None:
    num_workers = min(os.cpu_count() or 1, max(1, len(keys) // _EXAMPLES_PER_WORKER))
  if num_workers == 1:
    yield from (render_example(config, *key) for key in keys)
    return
  step = config.views_per_scene
  chunks = [keys[i:i + step] for i in range(0, len(keys), step)]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
  workers = [subprocess.Popen([sys.executable, "-c", _WORKER_COMMAND], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env) for _ in range(num_workers)]
  try:
    for w, worker in enumerate(workers):
      pickle.dump([(config, chunk) for chunk in chunks[w::num_workers]], worker.stdin)
      worker.stdin.close()
    for i in range(len(chunks)):
      worker = workers[i % num_workers]
      try:
        examples = pickle.load(worker.stdout)
      except EOFError:
        raise RuntimeError(f"A synthetic_rgbd worker process died (exit code {worker.wait()}); "
                           "its error is printed above.") from None
      yield from examples
  finally:
    for worker in workers:
      worker.kill()
      worker.wait()
      worker.stdout.close()
