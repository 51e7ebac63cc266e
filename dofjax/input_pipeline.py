"""Input pipeline: TFDS array_record data sources -> grain -> per-process numpy batches.

No TensorFlow anywhere: the builders in `tfds_diml` store PNG bytes, `tfds.data_source` reads
array_record files and decodes PNGs with OpenCV, and grain shuffles, transforms and batches.

Per example (training, the Pix2Pix reference jitter):
  1. decode: image uint8 (H, W, 3), depth uint16 millimetres (H, W, 1);
  2. depth -> metres (`tfds_diml.storage.millimetres_to_metres`: 0 and >= 65500 mm -> 0 =
     invalid);
  3. resize both to load_size x load_size: the image with area (down) / bilinear (up)
     interpolation, the depth with nearest neighbour so no fake depths appear at edges. The frame
     is squashed to a square, as in the reference, *not* cropped to keep its aspect: DIML's 16:9
     frames become 1.78x narrower, but evaluation resizes the whole frame to image_size x
     image_size the same way, so training and evaluation see the same geometry, and the whole
     field of view is kept;
  4. random crop image_size x image_size and random horizontal flip (config.random_flip), the
     same for image and depth; then, if config.augment enables it, photometric augmentation of
     the image alone (`dofjax.augment`);
  5. image -> float32 in [-1, 1]; target = depth.encode_depth(depth, depth_near_m, depth_far_m)
     (inverse-depth code, brighter = nearer); mask = depth.valid_mask(depth, far=depth_far_m).

Batches are dicts of numpy arrays for *this* process (global batch / process count); turn them
into global arrays with `to_global_batch` (jax.make_array_from_process_local_data).
"""

import argparse
import dataclasses
import functools
import logging
import math
import os
import sys
from typing import Any, Dict, Iterator, Optional

import cv2
import grain
import numpy as np
import tensorflow_datasets as tfds

from dofjax import augment as augment_lib
from dofjax import depth as depth_lib
from dofjax import errors
from dofjax import real_frames
from dofjax.errors import DataError, UserError
from tfds_diml import builders  # Registers the builders with TFDS.
from tfds_diml import capture_layouts
from tfds_diml import diml
from tfds_diml import rgbd_captures
from tfds_diml import scenes

# 'builder/config' of every TFDS dataset dofjax reads: diml/lr, diml/hr, synthetic_rgbd/tiny, ...
TFDS_DATASETS = builders.DATASETS
# Read straight from a folder (config.rgbd_dir), for evaluation only: `dofjax.real_frames`.
EVAL_ONLY_DATASETS = (real_frames.DATASET,)
KNOWN_DATASETS = TFDS_DATASETS + EVAL_ONLY_DATASETS
TRAIN_KEYS = ("image", "depth", "target", "mask")
EVAL_KEYS = TRAIN_KEYS + ("image_full", "depth_full", "example_mask")
# Eval keys of datasets with thin-lens ground truth (synthetic_rgbd/dof*), see `thin_lens_arrays`.
THIN_LENS_KEYS = ("dof_full", "dof_focus_disparity", "dof_blur_scale_px")


# ----------------------------------------------------------------------------------------------
# Builders and data sources.


def eval_dataset(config) -> str:
  """The dataset evaluation reads: config.eval_dataset, or config.dataset when that is empty."""
  return config.get("eval_dataset") or config.dataset


def check_dataset(name, field: str = "dataset") -> str:
  """Returns `name` if config.`field` may name it: any of KNOWN_DATASETS for 'eval_dataset', a
  TFDS one (not an EVAL_ONLY_DATASETS) otherwise; else UserError naming the field and choices."""
  if name not in KNOWN_DATASETS:
    raise UserError(f"{field}={name!r} is unknown; use one of {', '.join(KNOWN_DATASETS)}.")
  if name in EVAL_ONLY_DATASETS and field != "eval_dataset":
    raise UserError(f"{field}={name!r}: {name} is for evaluation only; train on one of "
                    f"{', '.join(TFDS_DATASETS)} and pass --config.eval_dataset={name} "
                    "--config.rgbd_dir=DIR.")
  return name


def get_builder(config, dataset: Optional[str] = None):
  """The TFDS builder of `dataset` (default config.dataset) in config.data_dir (array_record).

  UserError if the name is not one of KNOWN_DATASETS; anything TFDS raises for a known name is
  not the user's doing and propagates.
  """
  dataset = check_dataset(dataset or config.dataset)
  if dataset == rgbd_captures.NAME:
    return rgbd_captures.builder(captures_dir(config), int(config.get("captures_frame_stride", 1)),
                                 data_dir=config.data_dir, file_format="array_record")
  return tfds.builder(dataset, data_dir=config.data_dir, file_format="array_record")


def captures_dir(config) -> str:
  """config.manual_dir, the folder of your own frames for dataset=rgbd_captures; DataError
  with the layouts if it is unset or not a folder."""
  folder = config.get("manual_dir")
  if not folder or not os.path.isdir(folder):
    raise DataError(f"dataset={rgbd_captures.NAME} reads your frames from --config.manual_dir, "
                    f"which is {'unset' if not folder else 'not a folder: ' + repr(folder)}.\n"
                    + rgbd_captures.MANUAL_DOWNLOAD_INSTRUCTIONS)
  return folder


def prepare(config, dataset: Optional[str] = None) -> None:
  """Makes sure `dataset` (default config.dataset) is prepared (array_record) in config.data_dir.

  Synthetic datasets are generated on the spot; DIML and rgbd_captures are built from
  config.manual_dir (DataError with the instructions if that is unset, missing or empty, or
  listing every bad file).
  TFDS writes into a temporary folder and renames it when done, so an interrupted or failed
  preparation leaves nothing half-written. The builders print one progress line (where the data
  comes from) and TFDS's progress bars. Idempotent and cheap once prepared. Multi-host: with a
  process-local data_dir every process prepares its own copy; with a shared data_dir, prepare on
  one process first (two processes preparing the same folder at once would race).
  """
  dataset = dataset or config.dataset
  if dataset == real_frames.DATASET:  # Read from its folder on every use: only checked here.
    folder_source(config)
    return
  builder = get_builder(config, dataset)
  if builder.is_prepared():
    return
  download_config = None
  try:
    if builder.name == diml.Diml.name:
      download_config = tfds.download.DownloadConfig(
          manual_dir=diml.check_manual_dir(config.manual_dir))
    elif builder.name == rgbd_captures.NAME:
      download_config = tfds.download.DownloadConfig(manual_dir=captures_dir(config))
    builder.download_and_prepare(download_config=download_config, file_format="array_record")
  # The one place the builders' bad-input errors become ours.
  except (diml.ManualDataError, capture_layouts.CaptureError) as e:
    raise DataError(str(e)) from e


def folder_source(config):
  """The `real_frames.FolderSource` of config.rgbd_dir (every frame read once and checked).
  UserError (DataError) if rgbd_dir is unset or its frames are not usable."""
  if not config.get("rgbd_dir"):
    raise UserError(f"eval_dataset={real_frames.DATASET} reads the frames of config.rgbd_dir; set "
                    f"--config.rgbd_dir=DIR (a folder of <name>{real_frames.RGB_SUFFIX} + "
                    f"<name>{real_frames.DEPTH_SUFFIX} pairs).")
  return real_frames.FolderSource(config.rgbd_dir)


def check_split(builder, split: str, dataset: str) -> None:
  """UserError unless `split` names data of the prepared `builder`: 'train', 'validation',
  'test', or a TFDS split expression over them ('train[:10%]', 'train+validation')."""
  try:
    tfds.core.ReadInstruction.from_spec(split).to_absolute(builder.info.splits)
  except ValueError as e:  # The parser's error for a spec that names no slice of these splits.
    raise UserError(f"split {split!r} of {dataset} is not usable ({e}); use train, validation or "
                    "test (TFDS slices such as 'train[:10%]' work too).") from e


def data_source(config, split: str, dataset: Optional[str] = None):
  """Random-access source of decoded examples of `split` of `dataset` (default config.dataset;
  prepared first if needed).

  Each example: image uint8 (H, W, 3), depth uint16 (H, W, 1) millimetres, scene/stem bytes;
  synthetic_rgbd/dof* also image_dof uint8 (H, W, 3) and the lens scalars (`thin_lens_arrays`).
  rgbd_folder reads every frame of config.rgbd_dir whatever the split
  (`real_frames.FolderSource`).
  """
  dataset = dataset or config.dataset
  if dataset == real_frames.DATASET:
    return folder_source(config)
  prepare(config, dataset)
  builder = get_builder(config, dataset)
  check_split(builder, split, dataset)
  source = builder.as_data_source(split=split)
  if len(source) == 0:  # pylint: disable=g-explicit-length-test
    raise DataError(f"{builder.data_dir}: split {split!r} of {dataset} is empty.")
  return source


# ----------------------------------------------------------------------------------------------
# Per-example transforms (pure numpy).


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """uint8 (H, W, 3) -> uint8 (height, width, 3); area filter when shrinking, else bilinear."""
  if image.shape[:2] == (height, width):
    return image
  shrink = height <= image.shape[0] and width <= image.shape[1]
  return cv2.resize(image, (width, height),
                    interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
  """(H, W, 1) depth of any dtype -> (height, width, 1), nearest neighbour (pixel centres), so
  every output value is one of the input values (no fake depths between surfaces)."""
  if depth.shape[:2] == (height, width):
    return depth
  return cv2.resize(depth[..., 0], (width, height),
                    interpolation=cv2.INTER_NEAREST_EXACT)[..., None]


def random_jitter(image: np.ndarray, depth: np.ndarray, rng: np.random.Generator, *,
                  load_size: int, crop_size: int, flip: bool):
  """The reference jitter, identical for image and depth.

  Args:
    image: (H, W, 3) any dtype; depth: (H, W, 1) any dtype (same H, W).
    rng: draws the crop offsets and the flip.
    load_size: both are resized to load_size x load_size first (aspect not kept).
    crop_size: then a random crop_size x crop_size window is cut (crop_size <= load_size).
    flip: whether to flip left-right with probability 1/2.

  Returns:
    (image (crop, crop, 3), depth (crop, crop, 1)), dtypes unchanged.
  """
  image = resize_image(image, load_size, load_size)
  depth = resize_depth(depth, load_size, load_size)
  top = int(rng.integers(0, load_size - crop_size + 1))
  left = int(rng.integers(0, load_size - crop_size + 1))
  image = image[top:top + crop_size, left:left + crop_size]
  depth = depth[top:top + crop_size, left:left + crop_size]
  if flip and rng.random() < 0.5:
    image, depth = image[:, ::-1], depth[:, ::-1]
  return np.ascontiguousarray(image), np.ascontiguousarray(depth)


def network_arrays(image_u8: np.ndarray, depth_m: np.ndarray, near: float,
                   far: float) -> Dict[str, np.ndarray]:
  """uint8 (S, S, 3) image and float32 (S, S, 1) metres -> the network's float32 arrays:
  image in [-1, 1], depth metres, target (inverse-depth code), mask (1 = valid depth)."""
  depth_m = depth_m.astype(np.float32)
  return {
      "image": image_u8.astype(np.float32) / np.float32(127.5) - np.float32(1.0),
      "depth": depth_m,
      "target": depth_lib.encode_depth(depth_m, near, far).astype(np.float32),
      "mask": depth_lib.valid_mask(depth_m, far=far).astype(np.float32),
  }


def _checked(example):
  """Returns (image, depth mm) of a decoded example after checking their shapes agree."""
  image, depth = example["image"], example["depth"]
  if image.shape[:2] != depth.shape[:2]:
    raise DataError(f"Example {_name(example)}: image {image.shape} and depth {depth.shape} "
                    "differ in size; re-prepare the dataset.")
  return image, depth


def _name(example):
  def text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
  return f"{text(example.get('scene', '?'))}/{text(example.get('stem', '?'))}"


def train_example(example, rng, *, load_size, crop_size, flip, near, far, augment=None):
  """One decoded example -> jittered network arrays (see the module docstring); `augment` (an
  `augment.Settings`, None = off) then alters the photo (`augment.apply`), never the depth."""
  image, depth_mm = _checked(example)
  image, depth_mm = random_jitter(image, depth_mm, rng, load_size=load_size,
                                  crop_size=crop_size, flip=flip)
  image = augment_lib.apply(image, rng, augment)
  return network_arrays(image, depth_lib.millimetres_to_metres(depth_mm), near, far)


def thin_lens_arrays(example):
  """The thin-lens ground truth of a synthetic_rgbd/dof* example, for the bokeh error.

  Returns {'dof_full': (H, W, 3) float32 sRGB in [0, 1], the view through the lens at native
  resolution; 'dof_focus_disparity': float32 1/m, 1 / focus distance; 'dof_blur_scale_px':
  float32 K such that the CoC radius in pixels is K |1/z - 1/z_f| (`scenes.thin_lens_blur_scale_px`,
  at the frame's width)}.
  """
  image_dof = example["image_dof"]
  if image_dof.shape != example["image"].shape:
    raise DataError(f"Example {_name(example)}: image_dof {image_dof.shape} and image "
                    f"{example['image'].shape} differ in size; re-prepare the dataset.")
  k = scenes.thin_lens_blur_scale_px(
      focal_length_mm=float(example["focal_length_mm"]),
      sensor_width_mm=float(example["sensor_width_mm"]), f_number=float(example["f_number"]),
      width=image_dof.shape[1])
  return {"dof_full": image_dof.astype(np.float32) / np.float32(255.0),
          "dof_focus_disparity": np.float32(1.0 / float(example["focus_distance_m"])),
          "dof_blur_scale_px": np.float32(k)}


def eval_example(example, *, size, near, far):
  """One decoded example -> the whole frame resized to size x size (no crop, no flip), plus the
  native-resolution image_full in [0, 1] and depth_full in metres, example_mask = 1, and the
  `thin_lens_arrays` when the example has thin-lens ground truth."""
  image, depth_mm = _checked(example)
  out = network_arrays(resize_image(image, size, size),
                       depth_lib.millimetres_to_metres(resize_depth(depth_mm, size, size)),
                       near, far)
  out["image_full"] = image.astype(np.float32) / np.float32(255.0)
  out["depth_full"] = depth_lib.millimetres_to_metres(depth_mm)
  out["example_mask"] = np.float32(1.0)
  if "image_dof" in example:
    out.update(thin_lens_arrays(example))
  return out


# ----------------------------------------------------------------------------------------------
# Iterators.


def _process(process_index, process_count):
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise UserError(f"process_index {process_index} is not in [0, {process_count}).")
  return int(process_index), int(process_count)


def check_crop(image_size: int, load_size: int) -> None:
  """UserError unless 0 < image_size <= load_size (the random crop is cut from the resized
  frame)."""
  if image_size <= 0:
    raise UserError(f"image_size={image_size} must be positive; set --config.image_size=...")
  if load_size < image_size:
    raise UserError(f"load_size={load_size} must be >= image_size={image_size} (the random crop "
                    f"is taken from it); set --config.load_size={image_size * 286 // 256}.")


def _local_batch_size(global_batch, process_count, name):
  if global_batch < process_count or global_batch % process_count:
    raise UserError(f"config.{name}={global_batch} must be a positive multiple of the number of "
                    f"processes ({process_count}).")
  return global_batch // process_count


def _read_options(local_batch):
  threads = max(1, min(4, os.cpu_count() or 1))
  return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=min(64, 2 * local_batch + 8))


class TrainIterator:
  """Infinite iterator of train batches; get_state()/set_state() for exact resumption.

  The state is a small JSON-serialisable dict: grain's position in the example stream plus a
  fingerprint of what defines the stream (dataset, split, seed, batch, process layout).
  """

  def __init__(self, grain_iterator, fingerprint):
    self._it = grain_iterator
    self._fingerprint = fingerprint

  def __iter__(self):
    return self

  def __next__(self) -> Dict[str, np.ndarray]:
    return next(self._it)

  def get_state(self) -> Dict[str, Any]:
    """JSON-serialisable state; pass it to set_state of a fresh iterator to resume."""
    return {"grain": self._it.get_state(), "fingerprint": dict(self._fingerprint)}

  def set_state(self, state: Dict[str, Any]) -> None:
    """Continues exactly after the batch that was last yielded when `state` was taken."""
    saved = state.get("fingerprint", {})
    if saved and saved != self._fingerprint:
      changed = sorted(k for k in set(saved) | set(self._fingerprint)
                       if saved.get(k) != self._fingerprint.get(k))
      logging.warning(
          "Restoring a data iterator saved with different settings (%s): the batches after the "
          "resume will not be those the original run would have seen.",
          ", ".join(f"{k}: {saved.get(k)!r} -> {self._fingerprint.get(k)!r}" for k in changed))
    self._it.set_state(state["grain"])


def create_train_iterator(config, *, process_index: Optional[int] = None,
                          process_count: Optional[int] = None) -> TrainIterator:
  """Infinite, deterministic iterator of this process's train batches.

  Each process reads its own interleaved shard of config.train_split (examples
  process_index, process_index + process_count, ...), reshuffled every epoch, seeded from
  (config.seed, process_index). Yields dicts with
    'image'  (b, S, S, 3) float32 in [-1, 1];
    'depth'  (b, S, S, 1) float32 metres, 0 = invalid;
    'target' (b, S, S, 1) float32 inverse-depth code (dofjax.depth.encode_depth);
    'mask'   (b, S, S, 1) float32, 1 where depth is valid;
  with b = config.batch_size // process_count and S = config.image_size.
  """
  pi, pc = _process(process_index, process_count)
  local_batch = _local_batch_size(config.batch_size, pc, "batch_size")
  check_crop(config.image_size, config.load_size)
  augment = augment_lib.from_config(config)
  source = data_source(config, config.train_split)
  if len(source) < pc:
    raise DataError(f"{config.dataset} split {config.train_split!r} has {len(source)} examples, "
                    f"fewer than the {pc} processes.")
  seed = int(np.random.SeedSequence([int(config.seed), pi]).generate_state(1)[0])
  transform = functools.partial(
      train_example, load_size=int(config.load_size), crop_size=int(config.image_size),
      flip=bool(config.random_flip), near=float(config.depth_near_m),
      far=float(config.depth_far_m), augment=augment)
  ds = grain.MapDataset.source(source)[pi::pc]
  ds = ds.seed(seed).shuffle().repeat(None).random_map(transform)
  ds = ds.to_iter_dataset(_read_options(local_batch)).batch(local_batch, drop_remainder=True)
  if config.num_data_workers > 0:
    from absl import flags  # pylint: disable=g-import-not-at-top
    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; use their defaults.
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(config.num_data_workers)))
  fingerprint = {
      "dataset": str(config.dataset), "split": str(config.train_split), "seed": int(config.seed),
      "local_batch": local_batch, "process_index": pi, "process_count": pc,
      "num_examples": len(source), "image_size": int(config.image_size),
      "load_size": int(config.load_size), "random_flip": bool(config.random_flip),
  }
  if augment is not None:  # Absent when off, so runs saved before augmentation existed match.
    fingerprint["augment"] = dataclasses.asdict(augment)
  return TrainIterator(iter(ds), fingerprint)


def _padding(layout):
  """An all-zero eval example of `layout` ({key: (shape, dtype)}): example_mask 0, a padding
  slot."""
  return {k: np.zeros(shape, dtype) for k, (shape, dtype) in layout.items()}


class EvalIterable:
  """A finite, fixed-order eval split; iterate it as often as you like (fresh each time).

  len() is the number of batches. A batch that is not full is padded (example_mask 0, all other
  arrays zero, shaped like the batch's first example) so every process holds the same shapes.
  """

  def __init__(self, source, *, indices, pad_like, local_batch, size, near, far, name):
    self._source = source
    # This process's slots, -1 = padding; len = batches * local_batch. pad_like[i]: the example
    # whose shapes slot i takes when it is padding (the first of its global batch).
    self._slots = list(zip(indices, pad_like))
    self._local_batch = local_batch
    self._transform = functools.partial(eval_example, size=size, near=near, far=far)
    self._name = name
    self._reference = None
    self._layouts = {}  # {example index: {key: (shape, dtype)}} of the batches' first examples.
    self._thin_lens_max_radius = None

  def __len__(self):
    return len(self._slots) // self._local_batch

  def _reference_example(self):
    """The first example of the split, transformed: defines the (static) shapes."""
    if self._reference is None:
      self._reference = self._transform(self._source[0])
    return self._reference

  def thin_lens_max_radius_px(self) -> Optional[int]:
    """The largest CoC radius (px, rounded up, >= 1) of the thin-lens ground truth over the whole
    split, or None when the split has none. The same on every process (all examples are read),
    so it can size the compiled DoF render of the bokeh error."""
    if "dof_full" not in self._reference_example():
      return None
    if self._thin_lens_max_radius is None:
      largest = 1.0
      for i in range(len(self._source)):
        example = self._source[i]
        lens = thin_lens_arrays(example)
        depth_m = depth_lib.millimetres_to_metres(example["depth"])
        disparity = 1.0 / depth_m[depth_m > 0]
        if disparity.size:
          largest = max(largest, float(lens["dof_blur_scale_px"]) * float(
              np.abs(disparity - lens["dof_focus_disparity"]).max()))
      self._thin_lens_max_radius = int(math.ceil(largest))
    return self._thin_lens_max_radius

  def _layout(self, index):
    """{key: (shape, dtype)} of example `index` transformed: the shapes of its batch."""
    if index not in self._layouts:
      example = (self._reference_example() if index == 0
                 else self._transform(self._source[int(index)]))
      self._layouts[index] = {k: (np.shape(v), np.asarray(v).dtype) for k, v in example.items()}
    return self._layouts[index]

  def _load(self, slot):
    index, like = slot
    layout = self._layout(like)
    if index < 0:
      return _padding(layout)
    example = self._source[int(index)]
    out = self._transform(example)
    if out["image_full"].shape != layout["image_full"][0]:
      raise DataError(
          f"{self._name}: example {_name(example)} is {out['image_full'].shape[:2]} but the "
          f"first frame of its batch is {layout['image_full'][0][:2]}; evaluation batches "
          "native-resolution frames, so the frames of one batch must share one size: use "
          "--config.eval_batch_size=1.")
    return out

  def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
    ds = grain.MapDataset.source(self._slots).map(self._load)
    ds = ds.to_iter_dataset(_read_options(self._local_batch))
    return iter(ds.batch(self._local_batch, drop_remainder=True))


def eval_batches(num_examples: int, global_batch: int, sizes=None):
  """The examples of each global eval batch: a list of lists of global_batch indices, -1 =
  padding. In order (batch k holds k*B .. k*B + B - 1) or, given `sizes` (each example's (H, W)),
  one size per batch: the sizes in order of first appearance, each padded to full batches."""
  if sizes is None:
    groups = [list(range(num_examples))]
  else:
    by_size = {}
    for i, size in enumerate(sizes):
      by_size.setdefault(tuple(size), []).append(i)
    groups = list(by_size.values())
  batches = []
  for group in groups:
    for k in range(0, len(group), global_batch):
      chunk = group[k:k + global_batch]
      batches.append(chunk + [-1] * (global_batch - len(chunk)))
  return batches


def create_eval_iterator(config, split: str, *, process_index: Optional[int] = None,
                         process_count: Optional[int] = None) -> EvalIterable:
  """Finite iterable over `split` in a fixed order, for this process.

  Global batch k holds examples k*B .. k*B + B - 1 (B = config.eval_batch_size) or, for a
  folder of frames of several sizes (rgbd_folder), the next B frames of one size
  (`eval_batches`); this process gets its b = B // process_count consecutive slots of it. Stops
  after config.num_eval_batches batches (-1 = the whole split; short batches are padded). Batches
  of different sizes have different shapes (the eval step compiles once per size). Keys: 'image',
  'depth', 'target',
  'mask' (as in training, from the whole frame resized to S x S, no crop, no flip), plus
    'image_full'   (b, H, W, 3) float32 in [0, 1], native resolution;
    'depth_full'   (b, H, W, 1) float32 metres, native resolution, 0 = invalid;
    'example_mask' (b,) float32, 1 = real example, 0 = padding;
  and, where the data has thin-lens ground truth, THIN_LENS_KEYS (see `thin_lens_arrays`).
  The split is read from `eval_dataset(config)`.
  """
  pi, pc = _process(process_index, process_count)
  global_batch = int(config.eval_batch_size)
  local_batch = _local_batch_size(global_batch, pc, "eval_batch_size")
  dataset = eval_dataset(config)
  source = data_source(config, split, dataset)
  batches = eval_batches(len(source), global_batch, getattr(source, "sizes", None))
  if config.num_eval_batches is not None and config.num_eval_batches >= 0:
    batches = batches[:int(config.num_eval_batches)]
  mine = [(batch[pi * local_batch + j], batch[0]) for batch in batches for j in range(local_batch)]
  return EvalIterable(source, indices=[i for i, _ in mine], pad_like=[p for _, p in mine],
                      local_batch=local_batch,
                      size=int(config.image_size), near=float(config.depth_near_m),
                      far=float(config.depth_far_m), name=f"{dataset}:{split}")


def to_global_batch(batch: Dict[str, np.ndarray], sharding) -> Dict[str, Any]:
  """Per-process numpy batch -> global jax.Arrays sharded along the batch axis (`sharding`, e.g.
  NamedSharding(mesh, P('data'))), via jax.make_array_from_process_local_data."""
  import jax  # pylint: disable=g-import-not-at-top
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


# ----------------------------------------------------------------------------------------------
# Command line: prepare a dataset.


def main(argv=None):
  """`python -m dofjax.input_pipeline --dataset=NAME [--data_dir=D] [--manual_dir=M]
  [--captures_frame_stride=K]`."""
  parser = argparse.ArgumentParser(prog="python -m dofjax.input_pipeline",
                                   description="Prepares a dataset (TFDS array_record).")
  parser.add_argument("--dataset", default="synthetic_rgbd/quickstart",
                      help=f"one of {', '.join(TFDS_DATASETS)}")
  parser.add_argument("--data_dir", default=None, help="TFDS data dir (default: TFDS's)")
  parser.add_argument("--manual_dir", default=None,
                      help="DIML download, or your frames for rgbd_captures (docs/own-data.md)")
  parser.add_argument("--captures_frame_stride", type=int, default=1,
                      help="rgbd_captures: keep every k-th frame of each recording")
  args = parser.parse_args((sys.argv if argv is None else argv)[1:])
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(vars(args))
  prepare(config)
  builder = get_builder(config)
  counts = {k: v.num_examples for k, v in builder.info.splits.items()}
  print(f"{config.dataset} ready in {builder.data_dir}: {counts}")


if __name__ == "__main__":
  errors.run_cli(main)
