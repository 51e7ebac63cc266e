"""Pictures of a model's predictions: the TensorBoard grid at each evaluation and the
end-of-training samples W/samples/sample_<i>.png (photo, depth-of-field renders, depth maps)."""

import jax
import jax.numpy as jnp
import numpy as np

from dofjax import depth as depth_lib
from dofjax import dof
from dofjax import state as state_lib
from dofjax import steps
from dofjax import visualize
from dofjax import workdir as workdir_lib

GRID_LABELS = ("input", "predicted depth", "true depth", "DoF, pred. depth")
SAMPLE_LABELS = ("photo", "DoF, pred. depth", "DoF, true depth", "predicted depth",
                 "true depth")


def focus_distance_m(true_depth_m) -> float:
  """Where the samples focus: the median valid true depth (dof.focus_disparity_from_depth)."""
  return float(1.0 / dof.focus_disparity_from_depth(np.asarray(true_depth_m, np.float32)))


def preview_render(image01, depth_m, focus_m):
  """A shallow-DoF preview (H,W,3 float [0,1]) of an image (H,W,3 in [0,1]) and its depth
  (H,W metres), focused at `focus_m` metres (dof.render_for_preview)."""
  return np.asarray(dof.render_for_preview(np.asarray(image01, np.float32),
                                           np.asarray(depth_m, np.float32),
                                           focus=np.float32(focus_m)))


def grid_rows(local, code, n, config):
  """Up to n rows of [input | predicted depth | true depth | DoF from predicted depth] (uint8)
  for a local eval batch and its predicted code (N,S,S,1); padding examples are skipped."""
  rows = []
  for j in range(min(n, code.shape[0])):
    if float(local["example_mask"][j]) == 0:
      continue
    true_m = local["depth"][j][..., 0] * local["mask"][j][..., 0]
    pred_m = np.asarray(depth_lib.decode_depth(code[j][..., 0], config.depth_near_m,
                                               config.depth_far_m))
    render = preview_render((local["image"][j] + 1.0) * 0.5, pred_m, focus_distance_m(true_m))
    rows.append([visualize.to_uint8(local["image"][j], -1.0, 1.0),
                 visualize.colorize(code[j]),
                 visualize.colorize(np.where(local["mask"][j] > 0, local["target"][j], -1.0)),
                 visualize.to_uint8(render)])
  return rows


def labelled_grid(rows, labels=GRID_LABELS):
  """visualize.grid of the rows with a label strip naming the columns."""
  return visualize.label_columns(visualize.grid(rows), labels, rows[0][0].shape[1])


def sample_tiles(image01, pred_m, gt_m):
  """The five tiles of one sample (uint8): photo, renders from predicted and from true depth
  (same focus: the median true depth), and both depth maps coloured over the true depth range."""
  true_for_render = np.where(gt_m > 0, gt_m, pred_m)
  focus = focus_distance_m(gt_m)
  near, far = np.percentile(true_for_render, [1, 99])
  far = max(far, near * 1.01)
  return [visualize.to_uint8(image01),
          visualize.to_uint8(preview_render(image01, pred_m, focus)),
          visualize.to_uint8(preview_render(image01, true_for_render, focus)),
          visualize.colorize_depth_m(pred_m, near, far),
          visualize.colorize_depth_m(gt_m, near, far)]


def _sample_picture(code, image_full, depth_full, config):
  """The labelled sample picture (uint8) of one example: its predicted code (S, S, 1), its photo
  (H, W, 3) in [0, 1] and true depth (H, W) metres (0 = invalid)."""
  code_full = jax.image.resize(code, depth_full.shape + (1,), "bilinear")[..., 0]
  pred = np.asarray(depth_lib.decode_depth(code_full, config.depth_near_m, config.depth_far_m))
  tiles = sample_tiles(image_full, pred, depth_full)
  return visualize.label_columns(visualize.grid([tiles]), SAMPLE_LABELS, tiles[0].shape[1])


def real_photo_picture(predict, config):
  """The sample picture of a real photo with measured depth: scikit-image's Middlebury
  Motorcycle (half size, 370x250), fed to the network as evaluation feeds its frames (the whole
  photo resized to image_size square). predict: (1, S, S, 3) in [-1, 1] -> code (1, S, S, 1)."""
  from dofjax import input_pipeline
  from dofjax import real_frames
  image01, depth_m = real_frames.load_motorcycle(scale=2)
  image_u8 = np.round(image01 * 255.0).astype(np.uint8)
  size = config.image_size
  x = input_pipeline.network_arrays(input_pipeline.resize_image(image_u8, size, size),
                                    np.zeros((size, size, 1), np.float32),
                                    config.depth_near_m, config.depth_far_m)["image"]
  code = np.asarray(predict(jnp.asarray(x[None])))[0]
  return _sample_picture(code, image01, depth_m, config)


def write_samples(state, config, workdir, rng, stop=None) -> list:
  """Writes W/samples/sample_<i>.png (labelled: photo | DoF from predicted depth | DoF from true
  depth | predicted depth | true depth) for the first config.num_samples examples of the eval
  split, and with config.samples_real_photo also W/samples/real_photo.png (the same for a real
  photo, `real_photo_picture`), then marks the folder complete. Process 0 only.

  `stop` (an interrupts.StopRequest) is checked between pictures: when set, writing stops
  and the folder stays unmarked, so the next run writes the samples again. Returns the paths.
  """
  import cv2
  from dofjax import input_pipeline
  out_dir = workdir_lib.samples_dir(workdir)
  out_dir.mkdir(parents=True, exist_ok=True)
  workdir_lib.mark_samples_complete(workdir, False)  # Until the last picture is written.
  predict = jax.jit(lambda g, x, r: steps.predict_code(g, x, r, config=config))
  # A host copy: process 0 runs this alone.
  gen_state = jax.device_get(state_lib.prediction_weights(state))
  written = []
  for local in input_pipeline.create_eval_iterator(config, config.eval_split):
    code = np.asarray(predict(gen_state, jnp.asarray(local["image"]), rng))
    for j in range(code.shape[0]):
      if len(written) >= config.num_samples or (stop is not None and stop.signal_name):
        break
      if float(local["example_mask"][j]) == 0:
        continue
      picture = _sample_picture(code[j], local["image_full"][j], local["depth_full"][j][..., 0],
                                config)
      path = out_dir / f"sample_{len(written)}.png"
      cv2.imwrite(str(path), picture[..., ::-1])
      written.append(path)
    if len(written) >= config.num_samples or (stop is not None and stop.signal_name):
      break
  if config.get("samples_real_photo") and (stop is None or not stop.signal_name):
    picture = real_photo_picture(lambda x: predict(gen_state, x, rng), config)
    path = out_dir / "real_photo.png"
    cv2.imwrite(str(path), picture[..., ::-1])
    written.append(path)
  if stop is None or not stop.signal_name:
    workdir_lib.mark_samples_complete(workdir, True)
  return written
