"""A trained workdir's depth network (and the renderer) -> ONNX files for on-device runtimes.

  python -m dofjax.export --workdir=W --output=depth.onnx [--size=HxW]
      [--precision=float32|float16|int8] [--renderer_output=render.onnx]

The depth file takes a uint8 RGB photo (1, H, W, 3) at a fixed size (the config's image size by
default) and returns depth in metres (1, H, W): the [-1, 1] input scaling and the inverse-depth
decoding (`dofjax.depth`) are inside it. It holds the weights that predict in evaluation
(`state.prediction_weights`: the moving average when the run keeps one), BatchNorm in inference
mode (config.test_time='standard'), the convolutions in their plain form (ONNX Conv).
precision: float32; float16 (weights stored as float16, computed in float32); int8 (dynamic-range
quantisation: int8 convolution weights, activations quantised per call; `int8_weights`).

The optional renderer file is `dof.render_disparity` for the same photo size and a fixed layer
plan: photo (1, H, W, 3) uint8, depth (1, H, W) metres, focus distance (1,) metres, blur scale
(1,) px per 1/m -> shallow depth of field (1, H, W, 3) sRGB in [0, 1].

Every file is run in ONNX Runtime after it is written, on synthetic validation rooms and on
scikit-image's Motorcycle (when installed), and compared with the JAX model; the table is printed
and the file is kept only if float32 parity holds (PARITY_CODE_TOL in the inverse-depth code,
RENDER_PSNR_MIN_DB for the renderer). The converter and runtime are the `export` extra.
"""

import argparse
import dataclasses
import functools
import os
import sys
import tempfile

import numpy as np

from dofjax import depth as depth_lib
from dofjax import errors

EXTRA = "pip install -e '.[export]'"
PRECISIONS = ("float32", "float16", "int8")
PARITY_CODE_TOL = 1e-3        # float32 export vs JAX: max |difference| of the inverse-depth code.
RENDER_PSNR_MIN_DB = 50.0     # float32 renderer export vs the JAX render.
RENDER_NUM_LAYERS = 9         # The exported renderer's fixed layer plan (see docs/phone.md).
RENDER_MAX_RADIUS = 12.0      # px; larger blur is clipped to it.
RENDER_METHOD = "direct"
ONNX_OPSET = 23              # jax2onnx's default; ONNX Runtime 1.22 and newer run it.
DEPTH_INPUTS, DEPTH_OUTPUT = ("photo",), "depth_m"
RENDER_INPUTS, RENDER_OUTPUT = ("photo", "depth_m", "focus_m", "blur_scale_px"), "bokeh"
_SYNTHETIC_FRAMES = 3         # Validation rooms in each parity table.
_VALIDATION_ROOM_SEED = 1_000_000   # synthetic_rgbd's first validation room (seed 0).


def require_extra():
  """(jax2onnx.to_onnx, onnx, onnxruntime); UserError naming the extra when one is missing."""
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    import onnxruntime  # pylint: disable=g-import-not-at-top
    from jax2onnx import to_onnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.UserError(f"exporting needs the ONNX converter and runtime ({e.name} is not "
                           f"installed); install them with {EXTRA}.") from None
  return to_onnx, onnx, onnxruntime


def parse_size(text, multiple):
  """'HxW' (or 'S' for S x S) -> (H, W) ints; UserError unless both are positive multiples of
  `multiple` (the U-Net's 2**num_downs)."""
  parts = text.lower().split("x") if text else []
  try:
    hw = tuple(int(p) for p in parts) if len(parts) in (1, 2) else None
  except ValueError:
    hw = None
  if hw is None:
    raise errors.UserError(f"--size must be HxW pixels, e.g. 128x128; got {text!r}.")
  h, w = hw * 2 if len(hw) == 1 else hw
  if h <= 0 or w <= 0 or h % multiple or w % multiple:
    raise errors.UserError(f"--size={h}x{w}: both sides must be positive multiples of "
                           f"2**model.num_downs = {multiple}, e.g. --size={multiple}x{multiple}.")
  return h, w


def check_output(path, flag="--output"):
  """UserError unless `path` ends in .onnx and its folder exists."""
  ext = os.path.splitext(path)[1].lower()
  if ext == ".tflite":
    raise errors.UserError(f"{flag}={path!r}: .tflite is not built (docs/phone.md says what it "
                           "would take); export to .onnx and run it with ONNX Runtime.")
  if ext != ".onnx":
    raise errors.UserError(f"{flag}={path!r} must end in .onnx (ONNX Runtime, mobile and web).")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise errors.UserError(f"cannot write {path!r}: the folder {folder!r} does not exist.")


def check_exportable(config):
  """UserError for test_time='paper' (dropout at test time is random, which a fixed graph
  cannot repeat); the export needs 'standard', BatchNorm's running statistics."""
  if config.test_time != "standard":
    raise errors.UserError(f"the workdir's config has test_time={config.test_time!r} (dropout "
                           "and batch statistics at test time); export needs 'standard', "
                           "BatchNorm's running statistics.")


def float32_config(config, conv_impl=None):
  """A copy of `config` computing in float32, with model.conv_impl = `conv_impl` when given
  ('xla' for the export: ONNX Conv and ConvTranspose, not the CPU matmul form of fast_conv.py;
  the parameters are the same)."""
  config = config.copy_and_resolve_references()
  config.compute_dtype = "float32"
  if conv_impl:
    config.model.conv_impl = conv_impl
  return config


def depth_function(config):
  """f(weights, photo uint8 (N, H, W, 3)) -> depth (N, H, W) float32 metres: the network of
  `config` with `weights` (state.Weights) at test time ('standard'), input scaled to [-1, 1],
  output decoded from the inverse-depth code. The export closes over the weights (they become
  the file's constants); JAX takes them as an argument (closed over, XLA would fold them)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from dofjax import steps  # pylint: disable=g-import-not-at-top

  def f(weights, photo):
    x = photo.astype(jnp.float32) * (2.0 / 255.0) - 1.0
    code = steps.predict_code(weights, x, None, config=config)[..., 0]
    return depth_lib.decode_depth(code, config.depth_near_m, config.depth_far_m)

  return f


def jax_depth_model(config, weights):
  """photo uint8 (N, H, W, 3) -> depth (N, H, W) metres: the JAX model as the project runs it
  (the config's own convolutions, in float32), jitted."""
  import jax  # pylint: disable=g-import-not-at-top
  fn = jax.jit(depth_function(float32_config(config)))
  return lambda photo: fn(weights, photo)


def render_function(*, num_layers=RENDER_NUM_LAYERS, max_radius=RENDER_MAX_RADIUS,
                    method=RENDER_METHOD):
  """f(photo uint8 (1, H, W, 3), depth (1, H, W) m, focus (1,) m, blur scale (1,) px*m) ->
  (1, H, W, 3) float32 sRGB in [0, 1]: `dof.render_disparity` with a fixed layer plan (the
  'direct' kernels: the FFT of the others does not convert; docs/phone.md)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from dofjax import dof  # pylint: disable=g-import-not-at-top

  def f(photo, depth_m, focus_m, blur_scale_px):
    image = photo[0].astype(jnp.float32) / 255.0
    out = dof.render_disparity(image, 1.0 / jnp.maximum(depth_m[0], 1e-3),
                               focus_disparity=1.0 / focus_m[0], blur_scale_px=blur_scale_px[0],
                               num_layers=num_layers, max_radius=max_radius, method=method)
    return out[None]

  return f


# ----------------------------------------------------------------------------- writing files

def _convert(fn, specs, path, input_names, output_name):
  """Traces fn on `specs` (jax.ShapeDtypeStructs) and writes the ONNX model (opset ONNX_OPSET)
  with these input and output names to `path`."""
  import jax  # pylint: disable=g-import-not-at-top
  to_onnx, _, _ = require_extra()
  try:
    to_onnx(fn, list(specs), opset=ONNX_OPSET, return_mode="file", output_path=path,
            input_names=list(input_names), output_names=[output_name])
  finally:
    # The converter traces with its own primitives (e.g. for jnp.clip); drop the traces it left
    # in jit caches (dof's compiled render) so that JAX itself runs the function afterwards.
    jax.clear_caches()


def fold_constants(src, dst):
  """ONNX Runtime's basic (portable) graph optimisations of `src` written to `dst`: constants
  folded (the weights' layout transposes and the transposed convolutions' kernel flips become
  plain initializers), BatchNorm fused into the convolutions, layout transposes cancelled."""
  _, _, ort = require_extra()
  options = ort.SessionOptions()
  options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
  options.optimized_model_filepath = dst
  options.log_severity_level = 3
  ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])


def _store_weights(src, dst, dtype):
  """Copies the ONNX model `src` to `dst` with every float32 initializer of 16 or more values
  stored as `dtype` and turned back into float32 on load: float16 by a Cast, int8 (symmetric,
  one scale per tensor) by a DequantizeLinear. The arithmetic stays float32."""
  _, onnx, _ = require_extra()
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  model = onnx.load(src)
  graph = model.graph
  kept, decode = [], []
  for init in graph.initializer:
    if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < 16:
      kept.append(init)
      continue
    values = numpy_helper.to_array(init)
    name = f"{init.name}__{dtype}"
    if dtype == "float16":
      kept.append(numpy_helper.from_array(values.astype(np.float16), name))
      decode.append(onnx.helper.make_node("Cast", [name], [init.name], to=onnx.TensorProto.FLOAT))
    else:
      scale = np.float32(max(float(np.abs(values).max()), 1e-12) / 127.0)
      kept.append(numpy_helper.from_array(np.round(values / scale).astype(np.int8), name))
      kept.append(numpy_helper.from_array(np.array(scale, np.float32), name + "_scale"))
      decode.append(onnx.helper.make_node("DequantizeLinear", [name, name + "_scale"],
                                          [init.name]))
  del graph.initializer[:]
  graph.initializer.extend(kept)
  nodes = decode + list(graph.node)
  del graph.node[:]
  graph.node.extend(nodes)
  onnx.save(model, dst)


def float16_weights(src, dst):
  """`src` with its weights stored as float16 (half the file; float32 arithmetic) -> `dst`."""
  _store_weights(src, dst, "float16")


def int8_weights(src, dst):
  """Dynamic-range int8 quantisation of `src` written to `dst`: the convolutions become
  ConvInteger on int8 weights with activations quantised per call (ONNX Runtime's
  quantize_dynamic); the weights of ops it has no integer kernel for (ConvTranspose) are stored
  as int8 and dequantised on load, as LiteRT's dynamic-range quantisation does."""
  require_extra()
  from onnxruntime.quantization import QuantType, quantize_dynamic  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    quantized = os.path.join(tmp, "quantized.onnx")
    quantize_dynamic(src, quantized, weight_type=QuantType.QInt8)
    _store_weights(quantized, dst, "int8")


def session(path, threads=None):
  """An ONNX Runtime CPU session on `path`; `threads` fixes the intra-op thread count."""
  _, _, ort = require_extra()
  options = ort.SessionOptions()
  options.log_severity_level = 3   # The converter's layout hints log shape warnings at load.
  if threads:
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
  return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_session(sess, *arrays):
  """Runs an ONNX Runtime session on positional numpy inputs; returns its first output."""
  feed = {i.name: a for i, a in zip(sess.get_inputs(), arrays)}
  return sess.run(None, feed)[0]


# ----------------------------------------------------------------------------- parity

def parity_frames(height, width, *, motorcycle=True):
  """[(name, photo uint8 (H, W, 3), depth (H, W) metres)]: synthetic validation rooms rendered
  at H x W, then scikit-image's Motorcycle resized to H x W (when `motorcycle` and installed)."""
  import cv2  # pylint: disable=g-import-not-at-top
  import importlib.util  # pylint: disable=g-import-not-at-top
  from tfds_diml import scenes  # pylint: disable=g-import-not-at-top
  frames = []
  for k in range(_SYNTHETIC_FRAMES):
    scene = scenes.random_scene(_VALIDATION_ROOM_SEED + k // 2, view=k % 2)
    rgb, depth_m = scenes.render_pinhole(scene, height, width)
    frames.append((f"synthetic room {k}", _to_uint8(rgb), depth_m.astype(np.float32)))
  if motorcycle and importlib.util.find_spec("skimage") is not None:
    from dofjax import real_frames  # pylint: disable=g-import-not-at-top
    image, depth_m = real_frames.load_motorcycle()
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    depth_m = depth_lib.resize_in_disparity(depth_m, height, width)
    from dofjax import depth_completion  # pylint: disable=g-import-not-at-top
    frames.append(("Motorcycle", _to_uint8(image), depth_completion.fill_farther(depth_m)))
  return frames


def _to_uint8(rgb01):
  return np.round(np.clip(rgb01, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclasses.dataclass
class DepthParity:
  """One frame's agreement of an exported depth model with JAX (depth in metres)."""
  name: str
  max_abs_m: float
  mean_abs_m: float
  max_abs_code: float     # In the network's inverse-depth code ([-1, 1]).
  delta1: float           # Fraction of pixels with max(a/b, b/a) < 1.25.


def depth_parity(name, ours, reference, near, far):
  """DepthParity of depth maps `ours` vs `reference` (same shape, metres in [near, far])."""
  ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
  diff = np.abs(ours - reference)
  code = np.abs(depth_lib.encode_depth(ours, near, far) - depth_lib.encode_depth(reference, near,
                                                                                 far))
  ratio = np.maximum(ours / reference, reference / ours)
  return DepthParity(name, float(diff.max()), float(diff.mean()), float(code.max()),
                     float(np.mean(ratio < 1.25)))


def random_photos(height, width, count=2, seed=0):
  """[(name, uint8 noise photo (H, W, 3))]: inputs far from any training photo."""
  rng = np.random.default_rng(seed)
  return [(f"random {i}", rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
          for i in range(count)]


def check_depth_file(path, reference_fn, config, photos):
  """[DepthParity] of the ONNX depth model at `path` against reference_fn (photo uint8 (1, H, W,
  3) -> depth (1, H, W) m, the JAX model) on `photos` [(name, uint8 (H, W, 3))]."""
  sess = session(path)
  rows = []
  for name, photo in photos:
    ours = run_session(sess, photo[None])[0]
    rows.append(depth_parity(name, ours, np.asarray(reference_fn(photo[None]))[0],
                             config.depth_near_m, config.depth_far_m))
  return rows


def format_depth_table(rows_by_precision):
  """Markdown table of {precision: [DepthParity]}."""
  lines = ["| precision | frame | max abs (m) | mean abs (m) | max abs (code) | delta1 agreement |",
           "|---|---|---|---|---|---|"]
  for precision, rows in rows_by_precision.items():
    for r in rows:
      lines.append(f"| {precision} | {r.name} | {r.max_abs_m:.2e} | {r.mean_abs_m:.2e} | "
                   f"{r.max_abs_code:.2e} | {r.delta1:.4f} |")
  return "\n".join(lines)


# ----------------------------------------------------------------------------- the exports

def load_export_model(workdir, size=None):
  """(config, prediction weights, step, (H, W)) for the newest checkpoint in `workdir`; `size`
  'HxW' or None (the config's image size). UserError if the config cannot be exported."""
  from dofjax import inference  # pylint: disable=g-import-not-at-top
  from dofjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = workdir_lib.load_config(workdir)   # Flags are checked before the weights load.
  check_exportable(config)
  hw = (parse_size(size, 2**config.model.num_downs) if size
        else (config.image_size, config.image_size))
  config, weights, step = inference.load_generator(workdir)
  return config, weights, step, hw


def write_depth_model(config, weights, hw, output, precision="float32", photos=None):
  """Writes the depth model of `config` (the workdir's) for photos of size hw = (H, W) to
  `output` (.onnx) at `precision`, checked against the float32 JAX model as the project runs it
  (the config's own convolutions, in float32); returns (parity rows, file size in bytes).

  The file is written under a temporary name and renamed only when the check passes; a float32
  export off by more than PARITY_CODE_TOL in the code is a converter bug: ExportParityError."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  if precision not in PRECISIONS:
    raise errors.UserError(f"--precision={precision!r} is not one of {', '.join(PRECISIONS)}.")
  h, w = hw
  fn = functools.partial(depth_function(float32_config(config, "xla")), weights)
  reference = jax_depth_model(config, weights)
  if photos is None:
    photos = [(n, p) for n, p, _ in parity_frames(h, w)] + random_photos(h, w)
  folder = os.path.dirname(os.path.abspath(output))
  with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
    traced = os.path.join(tmp, "traced.onnx")
    _convert(fn, [jax.ShapeDtypeStruct((1, h, w, 3), jnp.uint8)], traced, DEPTH_INPUTS,
             DEPTH_OUTPUT)
    path = f32 = os.path.join(tmp, "float32.onnx")
    fold_constants(traced, f32)
    if precision != "float32":
      path = os.path.join(tmp, f"{precision}.onnx")
      (float16_weights if precision == "float16" else int8_weights)(f32, path)
    rows = check_depth_file(path, reference, config, photos)
    worst = max(r.max_abs_code for r in rows)
    if precision == "float32" and not worst <= PARITY_CODE_TOL:
      raise ExportParityError(f"the float32 export differs from the JAX model by {worst:.2e} in "
                              f"the inverse-depth code (tolerance {PARITY_CODE_TOL:g}); "
                              f"{output} was not written.", rows)
    nbytes = os.path.getsize(path)
    os.replace(path, output)
  return rows, nbytes


class ExportParityError(Exception):
  """A float32 export disagrees with JAX beyond tolerance (a converter bug, exit status 1)."""

  def __init__(self, message, rows):
    super().__init__(message)
    self.rows = rows


def write_renderer(hw, output, frames=None):
  """Writes `dof.render_disparity` for photos hw = (H, W) with the fixed layer plan to `output`
  and checks it against the JAX render on `frames` [(name, photo uint8, depth m)] focused on
  the middle of each (blur scale half the width in px*m); returns ([(name, PSNR dB, capped at
  metrics.PSNR_CAP_DB)], bytes). ExportParityError below RENDER_PSNR_MIN_DB."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from dofjax import metrics  # pylint: disable=g-import-not-at-top
  from dofjax import render  # pylint: disable=g-import-not-at-top
  h, w = hw
  fn = render_function()
  frames = parity_frames(h, w) if frames is None else frames
  specs = [jax.ShapeDtypeStruct((1, h, w, 3), jnp.uint8), jax.ShapeDtypeStruct((1, h, w),
                                                                               jnp.float32),
           jax.ShapeDtypeStruct((1,), jnp.float32), jax.ShapeDtypeStruct((1,), jnp.float32)]
  folder = os.path.dirname(os.path.abspath(output))
  with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
    traced, path = os.path.join(tmp, "traced.onnx"), os.path.join(tmp, "render.onnx")
    _convert(fn, specs, traced, RENDER_INPUTS, RENDER_OUTPUT)
    fold_constants(traced, path)
    sess = session(path)
    rows = []
    for name, photo, depth_m in frames:
      focus = np.float32([render.focus_from_pixel(depth_m, w // 2, h // 2)])
      args = (photo[None], depth_m[None].astype(np.float32), focus, np.float32([0.5 * w]))
      rows.append((name, float(metrics.psnr(run_session(sess, *args), fn(*args)))))
    worst = min(p for _, p in rows)
    if not worst >= RENDER_PSNR_MIN_DB:
      raise ExportParityError(f"the renderer export is {worst:.1f} dB from the JAX render "
                              f"(needs {RENDER_PSNR_MIN_DB:g}); {output} was not written.", rows)
    nbytes = os.path.getsize(path)
    os.replace(path, output)
  return rows, nbytes


def _parse(argv):
  p = argparse.ArgumentParser(prog="python -m dofjax.export", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="Training workdir (its newest checkpoint).")
  p.add_argument("--output", required=True, help="The depth model, FILE.onnx.")
  p.add_argument("--size", help="HxW photo size of the file (default: the config's image size).")
  p.add_argument("--precision", default="float32", choices=PRECISIONS)
  p.add_argument("--renderer_output",
                 help="Also export the renderer for the same size, FILE.onnx.")
  return p.parse_args(argv[1:])


def main(argv=None):
  """CLI entry point; see the module docstring. Returns 0, or 1 when a check fails."""
  args = _parse(list(sys.argv if argv is None else argv))
  check_output(args.output)
  if args.renderer_output:
    check_output(args.renderer_output, "--renderer_output")
  require_extra()
  config, weights, step, hw = load_export_model(args.workdir, args.size)
  try:
    rows, nbytes = write_depth_model(config, weights, hw, args.output, args.precision)
  except ExportParityError as e:
    print(format_depth_table({args.precision: e.rows}))
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(format_depth_table({args.precision: rows}))
  print(f"wrote {args.output}: depth model of step {step}, {hw[0]}x{hw[1]} uint8 RGB -> metres, "
        f"{args.precision}, {nbytes / 1e6:.2f} MB")
  if args.renderer_output:
    try:
      rows, nbytes = write_renderer(hw, args.renderer_output)
    except ExportParityError as e:
      print("\n".join(f"renderer {n}: {p:.1f} dB" for n, p in e.rows))
      print(f"error: {e}", file=sys.stderr)
      return 1
    print("\n".join(f"renderer {n}: PSNR {p:.1f} dB against JAX" for n, p in rows))
    print(f"wrote {args.renderer_output}: renderer {hw[0]}x{hw[1]}, {RENDER_NUM_LAYERS} layers "
          f"up to {RENDER_MAX_RADIUS:g} px, {nbytes / 1e6:.2f} MB")
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_cli(main))
