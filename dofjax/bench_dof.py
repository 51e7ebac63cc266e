"""Depth-of-field benchmark: `python -m dofjax.benchmark dof [flags]`.

Speed (default): megapixels/s of `dof.render` (jit-compiled, compile time excluded) on a
`--height` x `--width` photo and on a `--large_mp`-megapixel 4:3 photo, with the default layers and
a 32-px maximum radius.

Quality (`--quality`): PSNR and SSIM against the exact thin-lens ground truth of the synthetic
scenes (`tfds_diml.scenes.render_thin_lens`), for the layered renderer and for a naive baseline
(one per-pixel Gaussian blur of the gamma-encoded image), over several apertures and focus
distances.

The last printed line is one JSON object with the headline numbers (`megapixels_per_second`).
"""

import argparse
import json
import math
import time

import cv2
import numpy as np

from dofjax import dof


def _parse(argv):
  p = argparse.ArgumentParser(prog=argv[0] if argv else "dof", description=__doc__.split("\n")[0])
  p.add_argument("--height", type=int, default=768)
  p.add_argument("--width", type=int, default=1024)
  p.add_argument("--large_mp", type=float, default=12.0,
                 help="Also time a photo of this many megapixels (4:3); 0 skips it.")
  p.add_argument("--num_layers", type=int, default=dof.DEFAULT_NUM_LAYERS)
  p.add_argument("--max_radius", type=float, default=dof.DEFAULT_MAX_RADIUS)
  p.add_argument("--method", default=dof.DEFAULT_METHOD, choices=dof.METHODS)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--quality", action="store_true",
                 help="Measure PSNR/SSIM against thin-lens ground truth instead of speed.")
  p.add_argument("--seeds", default="2,3,5,7", help="Synthetic scene seeds for --quality.")
  p.add_argument("--quality_height", type=int, default=240)
  p.add_argument("--quality_width", type=int, default=320)
  p.add_argument("--num_samples", type=int, default=64, help="Thin-lens aperture samples.")
  return p.parse_args(argv[1:])


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


def time_render(height, width, *, num_layers, max_radius, method, repeats):
  """(compile_s, median_s, min_s, cpu_s) of a jitted `dof.render` on a height x width photo.

  cpu_s is the process CPU time per frame (all threads): less sensitive to other jobs' load than
  wall time; on an otherwise idle machine, wall time is about cpu_s / cores used.
  """
  import jax
  image, depth = synthetic_photo(height, width)
  fn = jax.jit(lambda img, d: dof.render(
      img, d, focus_distance=2.0, f_number=1.8, focal_length_mm=50.0, num_layers=num_layers,
      max_radius=max_radius, method=method))
  image, depth = jax.device_put(image), jax.device_put(depth)
  t0 = time.perf_counter()
  fn(image, depth).block_until_ready()
  compile_s = time.perf_counter() - t0
  times = []
  cpu0 = time.process_time()
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn(image, depth).block_until_ready()
    times.append(time.perf_counter() - t0)
  cpu_s = (time.process_time() - cpu0) / repeats
  return compile_s, float(np.median(times)), float(np.min(times)), cpu_s


def run_speed(args):
  import jax
  sizes = [(args.height, args.width)]
  if args.large_mp > 0:
    w = int(round(math.sqrt(args.large_mp * 1e6 * 4 / 3)))
    sizes.append((int(round(w * 3 / 4)), w))
  print(f"dof.render: {args.num_layers} layers, max radius {args.max_radius:g} px, "
        f"method {args.method}, device {jax.devices()[0].platform}")
  result = {"device": jax.devices()[0].platform, "num_layers": args.num_layers,
            "max_radius": args.max_radius, "method": args.method}
  for i, (h, w) in enumerate(sizes):
    compile_s, med, best, cpu_s = time_render(h, w, num_layers=args.num_layers,
                                       max_radius=args.max_radius, method=args.method,
                                       repeats=args.repeats if i == 0 else max(args.repeats // 2, 1))
    mp = h * w / 1e6
    print(f"  {w}x{h} ({mp:.1f} MP): {med:.3f} s/frame median ({best:.3f} min), "
          f"{mp / med:.2f} MP/s; {cpu_s:.3f} CPU s/frame; compile {compile_s:.1f} s")
    key = "" if i == 0 else "_large"
    result.update({f"width{key}": w, f"height{key}": h, f"seconds_per_frame{key}": round(med, 4),
                   f"megapixels_per_second{key}": round(mp / med, 3),
                   f"cpu_seconds_per_frame{key}": round(cpu_s, 4)})
  return result


# ----------------------------------------------------------------------------- quality

def psnr(a, b, mask=None):
  """PSNR in dB of two float (H, W, 3) images in [0, 1], over the pixels where `mask` (H, W) is
  true (all pixels by default)."""
  err = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=-1)
  mse = float(np.mean(err if mask is None else err[mask]))
  return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def ssim(a, b):
  """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) over channels, data in [0, 1]."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)
  mu_a, mu_b = blur(a), blur(b)
  var_a = blur(a * a) - mu_a ** 2
  var_b = blur(b * b) - mu_b ** 2
  cov = blur(a * b) - mu_a * mu_b
  s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
  return float(s[5:-5, 5:-5].mean())


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


# (f-number, focus at this percentile of the scene's depth). The scenes' lenses are wide (24-38 mm)
# and the images small, so the apertures are exaggerated to give blur radii of ~3 to ~25 px.
QUALITY_SETTINGS = ((0.5, 10), (0.25, 10), (0.125, 10), (0.5, 60), (0.25, 60), (0.125, 60))


def run_quality(args):
  """Prints a markdown table of PSNR / SSIM (layered vs baseline) vs thin-lens ground truth."""
  import jax
  from tfds_diml import scenes
  h, w = args.quality_height, args.quality_width
  seeds = [int(s) for s in args.seeds.split(",")]
  rows = []
  render = jax.jit(lambda img, disp, d_f, k, max_radius: dof.render_disparity(
      img, disp, focus_disparity=d_f, blur_scale_px=k, num_layers=args.num_layers,
      max_radius=max_radius, method=args.method), static_argnums=4)
  for f_number, pct in QUALITY_SETTINGS:
    scores = {"layered": [], "baseline": []}    # (PSNR, SSIM, PSNR over defocused pixels).
    max_r, frac = [], []
    for seed in seeds:
      scene = scenes.random_scene(seed)
      rgb, depth = scenes.render_pinhole(scene, h, w)
      focus = float(np.percentile(depth, pct))
      truth = scenes.render_thin_lens(scene, h, w, focus_distance_m=focus, f_number=f_number,
                                      num_samples=args.num_samples)
      k = scenes.thin_lens_blur_scale_px(focal_length_mm=scene.camera.focal_length_mm,
                                         sensor_width_mm=scene.camera.sensor_width_mm,
                                         f_number=f_number, width=w)
      radius = dof.coc_radius_from_disparity(1.0 / depth, 1.0 / focus, k)
      max_radius = float(max(math.ceil(radius.max()), 1))
      max_r.append(radius.max())
      layered = np.asarray(render(rgb, 1.0 / depth, 1.0 / focus, k, max_radius))
      baseline = gaussian_baseline(rgb, radius)
      # Both renderers reproduce in-focus pixels; they differ where the CoC radius is >= 1 px.
      defocused = radius >= 1.0
      for name, out in (("layered", layered), ("baseline", baseline)):
        scores[name].append((psnr(out, truth), ssim(out, truth), psnr(out, truth, defocused)))
      frac.append(float(defocused.mean()))
    row = {"f_number": f_number, "focus_percentile": pct,
           "max_coc_radius_px": round(float(np.mean(max_r)), 1),
           "defocused_fraction": round(float(np.mean(frac)), 3)}
    for name in scores:
      row[f"{name}_psnr"] = round(float(np.mean([s[0] for s in scores[name]])), 2)
      row[f"{name}_ssim"] = round(float(np.mean([s[1] for s in scores[name]])), 4)
      row[f"{name}_psnr_defocused"] = round(float(np.mean([s[2] for s in scores[name]])), 2)
    rows.append(row)
    print(row, flush=True)
  print(f"\n{w}x{h}, scenes {seeds}, {args.num_samples} aperture samples, {args.num_layers} "
        f"layers, method {args.method}, max radius = the scene's largest CoC\n")
  print("PSNR (defocused) is over the pixels whose CoC radius is >= 1 px (their share in %).\n")
  print("| f-number | focus (depth pct) | max CoC radius px | layered PSNR / SSIM "
        "| Gaussian baseline PSNR / SSIM | PSNR (defocused, %) layered / baseline |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['f_number']:g} | {r['focus_percentile']} | {r['max_coc_radius_px']} | "
          f"{r['layered_psnr']:.2f} / {r['layered_ssim']:.3f} | "
          f"{r['baseline_psnr']:.2f} / {r['baseline_ssim']:.3f} | "
          f"{r['layered_psnr_defocused']:.2f} / {r['baseline_psnr_defocused']:.2f} "
          f"({100 * r['defocused_fraction']:.0f} %) |")
  return {"quality": rows, "megapixels_per_second": None}


def main(argv):
  """Entry point for `python -m dofjax.benchmark dof`; prints a JSON line last."""
  args = _parse(argv)
  result = run_quality(args) if args.quality else run_speed(args)
  print(json.dumps(result))
  return 0
