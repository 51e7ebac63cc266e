"""Depth-of-field benchmark: `python -m dofjax.benchmark dof [flags]`.

Speed (default): megapixels/s of the layered renderer (jit-compiled, compile time excluded) on a
`--height` x `--width` photo (50 mm f/1.8 focused at 2 m, `--max_radius` layer plan), and on a
`--large_mp`-megapixel 4:3 photo whose largest circle of confusion is `--large_max_radius` px,
with the process's peak resident memory.

Quality (`--quality`): against the exact thin-lens ground truth of the synthetic scenes
(`tfds_diml.scenes.render_thin_lens`), three renderers from the pinhole photo and its true depth:
the layered renderer (`dof.render_disparity`, max radius = the scene's largest CoC rounded up,
or with `--plan_buckets` its `render_plan.plan_max_radius` bucket as the CLI and the app use), a
classical scatter renderer (`scatter_render`, the classical stage of BokehMe) and a naive Gaussian
baseline. Columns: PSNR / SSIM over the whole frame (`dofjax.metrics`, as evaluation computes them),
PSNR in the depth-edge band (`depth_edge_band`) and, on rooms with lights brighter than white
(`scenes.random_hdr_scene`, truth clipped once after the aperture average), PSNR on the highlight
pixels (`highlight_band`), with the layered render with and without highlight recovery. On the
rooms without lights, the "holes" columns render the layered renderer from the true depth with
Kinect-like holes punched in (`sensor_holes`: occlusion shadows, a missing top band, an invalid
border, dropouts straddling object edges), filled by the farther-neighbour rule alone
(`depth_completion.fill_farther`) or completed guided by the photo
(`depth_completion.complete_depth`, what `dofjax.render` does): PSNR over the frame and over the
hole pixels, against the same thin-lens truth.

User-felt timings (`--user`): `dofjax.bench_user` (CLI calls with a cold and a warm compilation
cache, app preview latency, the programs of a scripted app session).

The last printed line is one JSON object with the headline numbers (`megapixels_per_second`).
"""

import argparse
import json
import math
import resource
import time

import cv2
import numpy as np

from dofjax import depth_completion
from dofjax import dof
from dofjax import errors
from dofjax import metrics
from dofjax import render_plan


def _parse(argv):
  p = argparse.ArgumentParser(prog=argv[0] if argv else "dof", description=__doc__.split("\n")[0])
  p.add_argument("--height", type=int, default=768)
  p.add_argument("--width", type=int, default=1024)
  p.add_argument("--large_mp", type=float, default=12.0,
                 help="Also time a photo of this many megapixels (4:3); 0 skips it.")
  p.add_argument("--large_max_radius", type=float, default=128.0,
                 help="Largest blur radius (px) of the large photo; its layer plan spans it.")
  p.add_argument("--num_layers", type=int, default=render_plan.DEFAULT_NUM_LAYERS)
  p.add_argument("--max_radius", type=float, default=render_plan.DEFAULT_MAX_RADIUS)
  p.add_argument("--method", default=render_plan.DEFAULT_METHOD, choices=render_plan.METHODS)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--quality", action="store_true",
                 help="Measure PSNR/SSIM against thin-lens ground truth instead of speed.")
  p.add_argument("--seeds", default="2,3", help="Synthetic scene seeds for --quality.")
  p.add_argument("--quality_height", type=int, default=192)
  p.add_argument("--quality_width", type=int, default=256)
  p.add_argument("--num_samples", type=int, default=64, help="Thin-lens aperture samples.")
  p.add_argument("--plan_buckets", action="store_true",
                 help="--quality: the layered render's plan spans "
                 "render_plan.plan_max_radius of the largest blur (as the CLI and the app) instead "
                 "of that blur rounded up.")
  p.add_argument("--user", action="store_true",
                 help="Time what users feel instead (dofjax.bench_user): CLI calls with a cold "
                 "and a warm compilation cache, app previews, programs in an app session.")
  p.add_argument("--user_mp", type=float, default=12.0,
                 help="--user: megapixels of the large synthetic photo.")
  args = p.parse_args(argv[1:])
  for name in ("height", "width", "repeats", "quality_height", "quality_width", "num_samples"):
    if getattr(args, name) < 1:
      raise errors.UserError(f"--{name} must be >= 1; got {getattr(args, name)}.")
  if not args.user_mp > 0:
    raise errors.UserError(f"--user_mp must be > 0 megapixels; got {args.user_mp}.")
  if not args.max_radius > 0 or not args.large_max_radius > 0:
    raise errors.UserError("--max_radius and --large_max_radius must be > 0 pixels.")
  try:
    args.seeds = [int(v) for v in args.seeds.split(",")]
  except ValueError:
    raise errors.UserError(f"--seeds must be comma-separated integers; got {args.seeds!r}.") from None
  return args


# ----------------------------------------------------------------------------- speed

def synthetic_photo(height, width, seed=0):
  """A textured (H, W, 3) sRGB photo in [0, 1] and a depth map (H, W) in metres (0.8-8 m)."""
  rng = np.random.default_rng(seed)
  noise = cv2.resize(rng.random((max(height // 16, 2), max(width // 16, 2), 3), np.float32),
                     (width, height), interpolation=cv2.INTER_CUBIC)
  image = np.clip(0.6 * noise + 0.4 * rng.random((height, width, 3), np.float32), 0, 1)
  yy, xx = np.mgrid[:height, :width].astype(np.float32)
  depth = 1.0 + 7.0 * yy / height                         # A floor receding upwards.
  box = (np.abs(xx / width - 0.5) < 0.15) & (np.abs(yy / height - 0.6) < 0.2)
  depth = np.where(box, 0.8, depth).astype(np.float32)
  return image.astype(np.float32), depth


FOCUS_M = 2.0


def time_render(height, width, *, num_layers, max_radius, method, repeats, largest_coc=None):
  """(compile_s, median_s, min_s, cpu_s) of the jitted layered renderer on a height x width photo.

  The blur is that of a 50 mm f/1.8 lens focused at 2 m on a full-frame sensor, or, given
  `largest_coc` (px), scaled so that the photo's largest CoC radius is that. cpu_s is the process
  CPU time per frame (all threads): less sensitive to other jobs' load than wall time.
  """
  import jax
  image, depth = synthetic_photo(height, width)
  disparity = 1.0 / depth
  if largest_coc is None:
    k = float(dof.blur_scale_px(focus_distance_m=FOCUS_M, f_number=1.8, focal_length_mm=50.0,
                                image_width_px=width))
  else:
    k = largest_coc / float(np.abs(disparity - 1.0 / FOCUS_M).max())
  fn = jax.jit(lambda img, disp: dof.render_disparity(
      img, disp, focus_disparity=1.0 / FOCUS_M, blur_scale_px=k, num_layers=num_layers,
      max_radius=max_radius, method=method))
  image, disparity = jax.device_put(image), jax.device_put(disparity)
  t0 = time.perf_counter()
  fn(image, disparity).block_until_ready()
  compile_s = time.perf_counter() - t0
  times = []
  cpu0 = time.process_time()
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn(image, disparity).block_until_ready()
    times.append(time.perf_counter() - t0)
  cpu_s = (time.process_time() - cpu0) / repeats
  return compile_s, float(np.median(times)), float(np.min(times)), cpu_s


def peak_rss_gib():
  """Peak resident memory of this process so far, GiB (Linux reports ru_maxrss in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2.0**20


def run_speed(args):
  """Times the layered renderer at --height x --width and on a --large_mp photo; returns a dict."""
  import jax
  cases = [(args.height, args.width, args.max_radius, None)]
  if args.large_mp > 0:
    w = int(round(math.sqrt(args.large_mp * 1e6 * 4 / 3)))
    cases.append((int(round(w * 3 / 4)), w, args.large_max_radius, args.large_max_radius))
  device = jax.devices()[0].platform
  print(f"layered renderer: {args.num_layers} layers, method {args.method}, device {device}")
  result = {"device": device, "num_layers": args.num_layers, "method": args.method}
  for i, (h, w, max_radius, largest) in enumerate(cases):
    compile_s, med, best, cpu_s = time_render(
        h, w, num_layers=args.num_layers, max_radius=max_radius, method=args.method,
        repeats=args.repeats if i == 0 else max(args.repeats // 2, 1), largest_coc=largest)
    mp = h * w / 1e6
    rss = peak_rss_gib()
    blur = "50 mm f/1.8 at 2 m" if largest is None else f"largest CoC {largest:g} px"
    print(f"  {w}x{h} ({mp:.1f} MP), max radius {max_radius:g} px ({blur}): {med:.3f} s/frame "
          f"median ({best:.3f} min), {mp / med:.2f} MP/s; {cpu_s:.3f} CPU s/frame; compile "
          f"{compile_s:.1f} s; peak RSS of the process so far {rss:.2f} GiB")
    key = "" if i == 0 else "_large"
    result.update({f"width{key}": w, f"height{key}": h, f"max_radius{key}": max_radius,
                   f"seconds_per_frame{key}": round(med, 4),
                   f"megapixels_per_second{key}": round(mp / med, 3),
                   f"cpu_seconds_per_frame{key}": round(cpu_s, 4),
                   f"peak_rss_gib{key}": round(rss, 3)})
  return result


# ----------------------------------------------------------------------------- reference renderers

def _srgb_to_linear(x):
  return np.asarray(dof.srgb_to_linear(np.asarray(x, np.float32)))


def _linear_to_srgb(x):
  return np.clip(np.asarray(dof.linear_to_srgb(np.maximum(np.asarray(x, np.float32), 0.0))), 0, 1)


def scatter_render(image, radius_px):
  """Classical scatter depth of field: the classical stage of BokehMe (Peng et al., CVPR 2022).

  Every pixel spreads its linear radiance over its own circle of confusion with the weight
  (0.5 + 0.5 tanh(4 (r - d))) / (r^2 + 0.2) at distance d from it (a disc of radius r with a
  soft edge, divided by its area); each output pixel is the weighted sum divided by the summed
  weight (no depth ordering). Plain numpy, one pass per offset: slow, for reference only.

  Args:
    image: (H, W, 3) sRGB in [0, 1].
    radius_px: (H, W) CoC radius in pixels (>= 0) of each source pixel.
  Returns:
    (H, W, 3) float32 sRGB in [0, 1].
  """
  lin = _srgb_to_linear(image).astype(np.float64)
  r = np.asarray(radius_px, np.float64)
  h, w = r.shape
  inv_area = 1.0 / (r * r + 0.2)
  pad = int(math.ceil(r.max())) + 2           # Beyond r + 1.5 px a weight is < 1e-5 of the peak.
  num = np.zeros((h + 2 * pad, w + 2 * pad, 3))
  den = np.zeros((h + 2 * pad, w + 2 * pad))
  for dy in range(-pad, pad + 1):
    for dx in range(-pad, pad + 1):
      dist = math.hypot(dy, dx)
      if dist > r.max() + 1.5:
        continue
      weight = (0.5 + 0.5 * np.tanh(4.0 * (r - dist))) * inv_area
      num[pad + dy: pad + dy + h, pad + dx: pad + dx + w] += weight[..., None] * lin
      den[pad + dy: pad + dy + h, pad + dx: pad + dx + w] += weight
  out = num[pad:pad + h, pad:pad + w] / den[pad:pad + h, pad:pad + w, None]
  return _linear_to_srgb(out).astype(np.float32)


def gaussian_baseline(image, radius_px):
  """Naive DoF: per-pixel Gaussian blur (sigma = radius / 2) of the gamma-encoded image.

  image: (H, W, 3) sRGB [0, 1]; radius_px: (H, W) CoC radius. Blurs at sigma steps of 0.25 px
  and interpolates per pixel between the two nearest levels.
  """
  sigma = np.asarray(radius_px, np.float64) / 2.0
  levels = np.arange(0.0, sigma.max() + 0.5, 0.25)
  stack = np.stack([image if s == 0 else
                    cv2.GaussianBlur(image, (0, 0), s, borderType=cv2.BORDER_REFLECT)
                    for s in levels])
  pos = np.clip(sigma / 0.25, 0, len(levels) - 1)
  lo = np.floor(pos).astype(int)
  hi = np.minimum(lo + 1, len(levels) - 1)
  t = (pos - lo)[..., None]
  rows, cols = np.indices(sigma.shape)
  return ((1 - t) * stack[lo, rows, cols] + t * stack[hi, rows, cols]).astype(np.float32)


# ----------------------------------------------------------------------------- scoring regions

def within_radius(seeds, radius_px):
  """(H, W) bool: pixels within radius_px[p] (at least 1 px) of some seed pixel p (union of
  discs). seeds: (H, W) bool; radius_px: (H, W) float pixels."""
  out = np.zeros(seeds.shape, bool)
  reach = np.ceil(np.maximum(np.where(seeds, radius_px, 0.0), 1.0)).astype(int)
  for r in np.unique(reach[seeds]):
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    out |= cv2.dilate((seeds & (reach == r)).astype(np.uint8), disc).astype(bool)
  return out


def depth_edge_band(depth_m, radius_px, rel_jump=0.05):
  """(H, W) bool: the pixels within one local CoC radius of a depth discontinuity.

  A discontinuity lies between 4-neighbours whose depths differ by more than rel_jump of the
  nearer one; its local radius is the larger CoC radius (px) of the two (a blurred foreground
  spreads over the background by its own radius). depth_m, radius_px: (H, W).
  """
  z, r = np.asarray(depth_m, np.float64), np.asarray(radius_px, np.float64)
  edge_r = np.full(z.shape, -1.0)
  for axis in (0, 1):
    a = [slice(None)] * 2
    b = [slice(None)] * 2
    a[axis], b[axis] = slice(None, -1), slice(1, None)
    a, b = tuple(a), tuple(b)
    jump = np.abs(z[a] - z[b]) > rel_jump * np.minimum(z[a], z[b])
    local = np.where(jump, np.maximum(r[a], r[b]), -1.0)
    edge_r[a] = np.maximum(edge_r[a], local)
    edge_r[b] = np.maximum(edge_r[b], local)
  return within_radius(edge_r >= 0, edge_r)


def highlight_band(photo, radius_px):
  """(H, W) bool: the pixels within one CoC radius of a pixel clipped (>= 254.5/255 in some
  channel) in the sRGB photo (H, W, 3) in [0, 1]: where light brighter than white spreads."""
  clipped = np.max(photo, axis=-1) >= 254.5 / 255.0
  return within_radius(clipped, radius_px)


def psnr_on(a, b, mask=None):
  """`metrics.psnr` of (H, W, 3) images in [0, 1] over the pixels where mask (H, W) is true
  (all by default); None if the mask is empty."""
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  if mask is None:
    return float(metrics.psnr(a[None], b[None]))
  if not mask.any():
    return None
  # The frame's MSE with the error kept on the mask only is the mask's MSE times its share (one
  # image shape: no recompilation per mask).
  full = float(metrics.psnr(np.where(mask[..., None], a, b)[None], b[None]))
  return full + 10.0 * math.log10(float(mask.mean()))


# ----------------------------------------------------------------------------- sensor holes

def sensor_holes(depth_m, seed=0, *, baseline_px_m=None):
  """(H, W) bool: Kinect-like holes for an exact depth map (H, W) in metres.

  - Occlusion shadows: a structured-light projector `baseline_px_m` (px * m; default 0.06 W, a
    7.5 cm baseline at a focal length of 0.8 W px) to the camera's left sees pixel x at column
    x + B / z; a pixel is a hole where a nearer surface to its left covers it in the projector.
  - A missing top band (4 % of the rows), an invalid border (left 5 % of the columns, right 1 %,
    bottom 2 % of the rows).
  - Four elliptical dropouts (radii 3-7 % of the width) centred on depth edges, so that they
    straddle an object's outline.
  """
  z = np.asarray(depth_m, np.float64)
  h, w = z.shape
  rng = np.random.default_rng(seed)
  b = 0.06 * w if baseline_px_m is None else baseline_px_m
  proj = np.arange(w)[None, :] + b / z
  before = np.maximum.accumulate(np.concatenate([np.full((h, 1), -np.inf), proj[:, :-1]], 1), 1)
  holes = before > proj + 0.5
  holes[: max(1, round(0.04 * h))] = True
  holes[:, : max(1, round(0.05 * w))] = True
  holes[:, w - max(1, round(0.01 * w)):] = True
  holes[h - max(1, round(0.02 * h)):] = True
  disp = 1.0 / z
  edge = np.zeros((h, w), bool)
  edge[:, 1:] |= np.abs(np.diff(disp, axis=1)) > 0.05 * disp[:, 1:]
  edge[1:] |= np.abs(np.diff(disp, axis=0)) > 0.05 * disp[1:]
  ys, xs = np.nonzero(edge)
  mask = np.zeros((h, w), np.uint8)
  for i in rng.choice(len(ys), size=min(4, len(ys)), replace=False):
    axes = tuple(int(rng.uniform(0.03, 0.07) * w) for _ in range(2))
    cv2.ellipse(mask, (int(xs[i]), int(ys[i])), axes, rng.uniform(0, 180), 0, 360, 1, -1)
  return holes | mask.astype(bool)


# ----------------------------------------------------------------------------- quality

# (f-number, focus at this percentile of the scene's depth). The scenes' lenses are wide (24-38 mm)
# and the images small, so the apertures are exaggerated to give blur radii of ~3 to ~13 px.
QUALITY_SETTINGS = ((0.5, 10), (0.125, 10), (0.5, 60), (0.125, 60))


def _renders(rgb, depth, focus, k, args, hdr):
  """{name: (H, W, 3) render} of the compared renderers for one view."""
  disparity = 1.0 / depth
  radius = dof.coc_radius_from_disparity(disparity, 1.0 / focus, k)
  layered = lambda **kw: np.asarray(dof.render_disparity(
      rgb, disparity, focus_disparity=1.0 / focus, blur_scale_px=k, num_layers=args.num_layers,
      max_radius=(render_plan.plan_max_radius(radius.max()) if args.plan_buckets
                  else float(max(math.ceil(radius.max()), 1))), method=args.method, **kw))
  out = {"layered": layered()}
  if hdr:
    out["layered+recovery"] = layered(highlight_gain=dof.PHOTO_HIGHLIGHT_GAIN,
                                      highlight_threshold=dof.PHOTO_HIGHLIGHT_THRESHOLD)
  out["scatter"] = scatter_render(rgb, radius)
  out["gaussian"] = gaussian_baseline(rgb, radius)
  return out, radius


def _hole_renders(rgb, depth, holes, focus, k, radius, args):
  """{name: render} of the layered renderer from the depth with `holes` filled by each rule
  (the layer plan of the exact depth's render)."""
  holey = np.where(holes, 0.0, depth).astype(np.float32)
  filled = {"holes farther-fill": depth_completion.fill_farther(holey),
            "holes completed": depth_completion.complete_depth(rgb, holey)[0]}
  return {name: np.asarray(dof.render_disparity(
      rgb, 1.0 / d, focus_disparity=1.0 / focus, blur_scale_px=k, num_layers=args.num_layers,
      max_radius=float(max(math.ceil(radius.max()), 1)), method=args.method))
          for name, d in filled.items()}


def score_view(scene, f_number, pct, args, hdr, seed=0):
  """Scores of every renderer on one scene and lens setting against its thin-lens truth:
  ({name: {psnr, ssim, psnr_edge, psnr_highlight}}, largest CoC px)."""
  from tfds_diml import scenes
  h, w = args.quality_height, args.quality_width
  rgb, depth = scenes.render_pinhole(scene, h, w)
  focus = float(np.percentile(depth, pct))
  truth = scenes.render_thin_lens(scene, h, w, focus_distance_m=focus, f_number=f_number,
                                  num_samples=args.num_samples, clip_each_view=not hdr)
  k = scenes.thin_lens_blur_scale_px(focal_length_mm=scene.camera.focal_length_mm,
                                     sensor_width_mm=scene.camera.sensor_width_mm,
                                     f_number=f_number, width=w)
  renders, radius = _renders(rgb, depth, focus, k, args, hdr)
  edge = depth_edge_band(depth, radius)
  lights = highlight_band(rgb, radius) if hdr else None
  holes = None if hdr else sensor_holes(depth, seed=seed)
  if holes is not None:
    renders.update(_hole_renders(rgb, depth, holes, focus, k, radius, args))
  scores = {name: {"psnr": psnr_on(out, truth), "ssim": float(metrics.ssim(out[None], truth[None])),
                   "psnr_edge": psnr_on(out, truth, edge),
                   "psnr_highlight": psnr_on(out, truth, lights) if hdr else None,
                   "psnr_holes": None if holes is None else psnr_on(out, truth, holes)}
            for name, out in renders.items()}
  return (scores, float(radius.max()), float(edge.mean()),
          None if lights is None else float(lights.mean()),
          None if holes is None else float(holes.mean()))


def _mean(values):
  values = [v for v in values if v is not None]
  return round(float(np.mean(values)), 4) if values else None


def run_quality(args):
  """Prints markdown tables of every renderer's scores against thin-lens ground truth, for the
  rooms of --seeds with and without lights brighter than white; returns them as a dict."""
  from tfds_diml import scenes
  rows = []
  for hdr in (False, True):
    make = scenes.random_hdr_scene if hdr else scenes.random_scene
    for f_number, pct in QUALITY_SETTINGS:
      per_seed = [score_view(make(seed), f_number, pct, args, hdr, seed)
                  for seed in args.seeds]
      row = {"hdr": hdr, "f_number": f_number, "focus_percentile": pct,
             "max_coc_radius_px": round(float(np.mean([p[1] for p in per_seed])), 1),
             "edge_fraction": _mean([p[2] for p in per_seed]),
             "highlight_fraction": _mean([p[3] for p in per_seed]),
             "holes_fraction": _mean([p[4] for p in per_seed])}
      for name in per_seed[0][0]:
        for col in ("psnr", "ssim", "psnr_edge", "psnr_highlight", "psnr_holes"):
          row[f"{name}_{col}"] = _mean([p[0][name][col] for p in per_seed])
      rows.append(row)
      print(row, flush=True)
  _print_tables(rows, args)
  return {"quality": rows, "megapixels_per_second": None}


HOLE_NAMES = ["holes farther-fill", "holes completed"]


def _fmt(value, digits=2):
  return "-" if value is None else f"{value:.{digits}f}"


def _print_tables(rows, args):
  """Markdown tables of `run_quality`'s rows (one for plain rooms, one with highlights)."""
  print(f"\n{args.quality_width}x{args.quality_height}, rooms {args.seeds}, {args.num_samples} "
        f"aperture samples; layered: {args.num_layers} layers, method {args.method}, max radius = "
        f"the scene's largest CoC. Cells: PSNR / SSIM (whole frame) / PSNR (depth-edge band)"
        f" / PSNR (hole pixels, rooms without highlights; highlight pixels, with).\n")
  for hdr in (False, True):
    names = ["layered"] + (["layered+recovery"] if hdr else HOLE_NAMES) + ["scatter", "gaussian"]
    cols = ["f-number", "focus (depth pct)", "max CoC px", "edge band %"]
    cols += ["highlight px %"] if hdr else ["hole px %"]
    print(("Rooms with lights brighter than white (truth clipped once after the aperture "
           "average)" if hdr else "Rooms without highlights (every view clipped)") + ":\n")
    print("| " + " | ".join(cols + names) + " |")
    print("|" + "---|" * (len(cols) + len(names)))
    for r in (r for r in rows if r["hdr"] == hdr):
      cells = [f"{r['f_number']:g}", str(r["focus_percentile"]), str(r["max_coc_radius_px"]),
               _fmt(100 * r["edge_fraction"], 0)]
      cells.append(_fmt(100 * r["highlight_fraction" if hdr else "holes_fraction"], 1))
      for n in names:
        cell = (f"{_fmt(r[n + '_psnr'])} / {_fmt(r[n + '_ssim'], 3)} / "
                f"{_fmt(r[n + '_psnr_edge'])}")
        last = r[n + "_psnr_highlight"] if hdr else r[n + "_psnr_holes"]
        cells.append(cell + ("" if last is None else f" / {_fmt(last)}"))
      print("| " + " | ".join(cells) + " |")
    print()


def main(argv):
  """Entry point for `python -m dofjax.benchmark dof`; prints a JSON line last."""
  args = _parse(argv)
  if args.user:
    from dofjax import bench_user  # pylint: disable=g-import-not-at-top
    result = bench_user.run_user(args)
  else:
    result = run_quality(args) if args.quality else run_speed(args)
  print(json.dumps(result))
  return 0
