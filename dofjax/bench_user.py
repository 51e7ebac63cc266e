"""What a photographer feels: `python -m dofjax.benchmark dof --user [--user_mp=12]`.

Three measurements (docs/speed.md shows and explains the figures):
- The photo CLI as separate processes, interpreter start and imports included: the first call
  with an empty persistent compilation cache (cold), then calls with other settings (warm: the
  cache the first one filled; three of each, the median counts), on the Motorcycle (741x500, its
  true depth) and on a synthetic `--user_mp`-megapixel photo; then each setting's steady render
  time in this process, so what a call adds to its render is shown.
- The app's preview requests while the f-number is dragged on the `--user_mp` photo: server
  side, per request (`app.server.render`: render, JPEG, data URL), after the preview's program
  is compiled.
- A scripted app session of 20 setting changes on the Motorcycle (each a preview, then the full
  size, as the page does on release), after the first render and the warm-up the app starts
  with it: the distinct programs compiled, and how many changes waited on a compile. Then a
  restarted app's first render, its programs read back from the folder the session stored them
  in. The app's measurements store programs as `python -m dofjax.app` does.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from dofjax import compile_cache
from dofjax import dof
from dofjax import real_frames
from dofjax import render

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F_NUMBER_DRAG = (2.0, 2.2, 2.5, 2.8, 3.2, 3.5, 4.0, 3.5, 3.2, 2.8)
# (what changes, the page's fields) of the scripted session: focus clicks, both sliders, the
# aperture menu, rotation and the highlight box, as a user might try them.
SESSION = (
    ("focus on the shelves", dict(x=600, y=80)), ("focus on the tank", dict(x=420, y=200)),
    ("f/2.8", dict(f_number=2.8)), ("f/4", dict(f_number=4.0)), ("f/1.4", dict(f_number=1.4)),
    ("f/1.8", dict(f_number=1.8)), ("85 mm", dict(focal_length_mm=85.0)),
    ("50 mm", dict(focal_length_mm=50.0)), ("6 blades", dict(blades=6)),
    ("rotate 20", dict(rotation_deg=20.0)), ("rotate 45", dict(rotation_deg=45.0)),
    ("8 blades", dict(blades=8)), ("5 blades", dict(blades=5)), ("round", dict(blades=0)),
    ("highlights off", dict(highlights=False)), ("highlights on", dict(highlights=True)),
    ("focus on the wheel", dict(x=250, y=400)), ("f/2.2", dict(f_number=2.2)),
    ("f/1.6", dict(f_number=1.6)), ("focus on the tank", dict(x=420, y=200)))


def cli_seconds(photo, depth, flags, cache_dir, output):
  """(wall seconds, stdout) of one `python -m dofjax.render` process with the given extra flags
  and persistent compilation cache folder."""
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir,
             PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop(compile_cache.OFF_VARIABLE, None)
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "dofjax.render", photo, f"--depth={depth}",
                         *flags, f"--output={output}"], env=env, capture_output=True, text=True,
                        check=False)
  seconds = time.perf_counter() - t0
  if proc.returncode != 0:
    raise RuntimeError(f"the render CLI failed:\n{proc.stderr}")
  return seconds, proc.stdout.strip()


def steady_render_seconds(image, depth_m, focus_px, repeats=3, **settings):
  """Median seconds of render.render_photo (the CLI's render) after its first call, focused on
  pixel focus_px, with render_photo's keyword `settings` (f_number, aperture_blades)."""
  focus = render.focus_from_pixel(depth_m, *focus_px)
  render.render_photo(image, depth_m, focus_m=focus, **settings)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    render.render_photo(image, depth_m, focus_m=focus, **settings)
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def cli_setting(flags):
  """The CLI flags of a call (--focus_px=x,y and optionally --f_number, --aperture_blades) ->
  (focus pixel (x, y), render_photo keywords), to time the same render in process."""
  values = dict(flag.lstrip("-").split("=", 1) for flag in flags)
  settings = {}
  if "f_number" in values:
    settings["f_number"] = float(values["f_number"])
  if "aperture_blades" in values:
    settings["aperture_blades"] = int(values["aperture_blades"])
  return tuple(int(v) for v in values["focus_px"].split(",")), settings


def run_cli(name, image, depth_m, focus_px, other_flags, folder, repeats=3):
  """Cold and warm CLI calls on one photo (written to `folder`), then each call's render timed in
  this process (`steady_render_seconds`), so what a call adds to its render is shown; prints
  them; returns a dict. other_flags: (label, flags, times) of the later calls, each made `times`
  times (in rounds, so that a slower spell of the machine spreads over all of them; the median
  counts): 1 for a call that compiles a new program, `repeats` for the others."""
  photo, depth = real_frames.write_pair(folder, name, image, depth_m)
  cache = os.path.join(folder, name + "_xla")
  out = os.path.join(folder, name + "_out.png")
  first = [f"--focus_px={focus_px[0]},{focus_px[1]}"]
  cold, text = cli_seconds(photo, depth, first, cache, out)
  h, w = depth_m.shape
  print(f"  {name} {w}x{h}: first call, empty cache: {cold:.1f} s wall ({text.split(', ')[-1]})")
  result = {f"cli_{name}_cold_s": round(cold, 2)}
  calls = {label: [] for label, _, _ in other_flags}
  for round_ in range(max(times for _, _, times in other_flags)):
    for label, flags, times in other_flags:
      if round_ < times:
        seconds, text = cli_seconds(photo, depth, flags, cache, out)
        calls[label].append(seconds)
        print(f"  {name}: later call, {label}: {seconds:.1f} s wall ({text.split(', ')[-1]})")
  warm = {label: statistics.median(seconds) for label, seconds in calls.items()}
  steady = steady_render_seconds(image, depth_m, focus_px)
  print(f"  {name}: steady render of the first call's setting (render.render_photo, in process): "
        f"{steady:.2f} s")
  result[f"render_{name}_steady_s"] = round(steady, 3)
  for label, flags, _ in other_flags:
    key = f"cli_{name}_warm_{label.replace(' ', '_')}"
    focus, settings = cli_setting(flags)
    later = steady_render_seconds(image, depth_m, focus, **settings)
    print(f"  {name}: later call, {label}: {warm[label]:.1f} s (median of "
          f"{len(calls[label])}) = its steady render {later:.2f} s + {warm[label] - later:.1f} s")
    result.update({f"{key}_s": round(warm[label], 2), f"{key}_steady_s": round(later, 3),
                   f"{key}_added_s": round(warm[label] - later, 2)})
  return result


def _app_session(image, depth_m, **state_options):
  """(server.AppState(**state_options), a server.Session holding the photo `image` and its
  depth `depth_m` in metres, as after the page's uploads)."""
  from dofjax.app import server  # pylint: disable=g-import-not-at-top
  session = server.Session(image=image)
  server.set_depth(session, depth_m, ["--depth=depth.png"])
  return server.AppState(**state_options), session


def preview_latency(image, depth_m, focus_px, f_numbers=F_NUMBER_DRAG, programs=None):
  """Seconds per app preview request (server side) while the f-number is dragged, after the
  first preview (which may compile); also whether any of them compiled. programs: the app's
  folder of stored programs (`server.AppState`)."""
  from dofjax.app import server  # pylint: disable=g-import-not-at-top
  state, session = _app_session(image, depth_m, warm_up=False, programs=programs)
  x, y = focus_px
  server.render(state, session, dict(x=x, y=y, f_number=1.8))
  times, traces = [], dof.render_trace_count()
  for seq, f_number in enumerate(f_numbers):
    t0 = time.perf_counter()
    answer = server.render(state, session, dict(x=x, y=y, f_number=f_number, seq=seq))
    times.append(time.perf_counter() - t0)
    assert not answer.get("stale")
  return times, dof.render_trace_count() - traces


def scripted_session(image, depth_m, changes=SESSION, focus_px=(420, 200), programs=None):
  """The app's state through a first render (focused on pixel focus_px), its warm-up, then
  `changes` (each a preview and the full size): dict of the figures. programs: the app's folder
  of stored programs (`server.AppState`)."""
  from dofjax.app import server  # pylint: disable=g-import-not-at-top
  state, session = _app_session(image, depth_m, programs=programs)
  fields = dict(x=focus_px[0], y=focus_px[1], f_number=1.8, focal_length_mm=50.0, highlights=True, blades=0,
                rotation_deg=0.0)
  traces0, seq = dof.render_trace_count(), 0
  t0 = time.perf_counter()
  for full in (False, True):
    seq += 1
    server.render(state, session, dict(fields, full=full, seq=seq))
  first_s = time.perf_counter() - t0
  while session.warm_left:                  # The user looks at the first render meanwhile.
    time.sleep(0.1)
  warm_s = time.perf_counter() - t0 - first_s
  traces1 = dof.render_trace_count()
  waits, slow = [], []
  for label, change in changes:
    fields.update(change)
    compiled, seconds = False, 0.0
    for full in (False, True):
      seq += 1
      t = time.perf_counter()
      answer = server.render(state, session, dict(fields, full=full, seq=seq))
      seconds += time.perf_counter() - t
      compiled |= answer["compiled"]
    if compiled:
      waits.append(label)
    slow.append(seconds)
  return dict(first_render_s=first_s, warm_up_s=warm_s,
              programs_first=traces1 - traces0, programs_session=dof.render_trace_count() - traces1,
              changes=len(changes), compile_waits=waits, change_s=slow)


def restarted_first_render(image, depth_m, programs, focus_px=(420, 200)):
  """Seconds of an app's first render (preview, then full size) when an earlier app stored its
  programs in `programs`: a fresh `server.AppState` with nothing compiled in memory (the
  process's imports already done)."""
  from dofjax.app import server  # pylint: disable=g-import-not-at-top
  dof._STORED_RENDERS.clear()  # pylint: disable=protected-access
  state, session = _app_session(image, depth_m, warm_up=False, programs=programs)
  t0 = time.perf_counter()
  for seq, full in enumerate((False, True)):
    server.render(state, session, dict(x=focus_px[0], y=focus_px[1], f_number=1.8, full=full,
                                       seq=seq))
  return time.perf_counter() - t0


def run_user(args):
  """All three measurements; prints them; returns a dict of the figures (JSON-able)."""
  from dofjax import bench_dof  # pylint: disable=g-import-not-at-top
  result = {}
  bike, bike_depth = real_frames.load_motorcycle()
  w = int(round((args.user_mp * 1e6 * 4 / 3) ** 0.5))
  h = int(round(w * 3 / 4))
  big, big_depth = bench_dof.synthetic_photo(h, w)
  with tempfile.TemporaryDirectory(prefix="dofjax-bench-user-") as folder:
    print("photo CLI, separate processes (wall time incl. interpreter start and imports):")
    result.update(run_cli("motorcycle", bike, bike_depth, (420, 200),
                          [("focus elsewhere", ["--focus_px=600,80"], 3),
                           ("f-2.0", ["--focus_px=420,200", "--f_number=2.0"], 3),
                           ("6 blades", ["--focus_px=420,200", "--aperture_blades=6"], 1)],
                          folder))
    big_focus = (w // 2, int(h * 0.6))
    result.update(run_cli(f"synthetic_{args.user_mp:g}mp", big, big_depth, big_focus,
                          [("focus elsewhere", [f"--focus_px={w // 2},{h // 5}"], 3),
                           ("f-2.0", [f"--focus_px={w // 2},{int(h * 0.6)}", "--f_number=2.0"],
                            3)], folder))
    # The app as `python -m dofjax.app` runs it: its programs stored in a folder of its own.
    programs = os.path.join(folder, "app_programs")
    result.update(run_app(bike, bike_depth, big, big_depth, programs))
  result["megapixels_per_second"] = None
  return result


def run_app(bike, bike_depth, big, big_depth, programs):
  """The app's measurements (previews on `big`, the scripted session and a restart on `bike`),
  with stored programs in the folder `programs`; prints them; returns a dict of the figures."""
  result = {}
  h, w = big_depth.shape
  times, compiled = preview_latency(big, big_depth, (w // 2, int(h * 0.6)), programs=programs)
  ms = [1000 * t for t in times]
  print(f"app previews while dragging the f-number, {w}x{h} photo, server side: median "
        f"{statistics.median(ms):.0f} ms, max {max(ms):.0f} ms over {len(ms)} requests "
        f"({compiled} compiled): " + ", ".join(f"{t:.0f}" for t in ms))
  result.update(preview_ms_median=round(statistics.median(ms), 1), preview_ms_max=round(max(ms), 1),
                preview_compiled=compiled)
  session = scripted_session(bike, bike_depth, programs=programs)
  print(f"app session on the Motorcycle: first render (preview + full) "
        f"{session['first_render_s']:.1f} s, then the warm-up {session['warm_up_s']:.1f} s "
        f"({session['programs_first']} programs); {session['changes']} setting changes: "
        f"{session['programs_session']} more programs, {len(session['compile_waits'])} changes "
        f"waited on a compile ({', '.join(session['compile_waits']) or 'none'}); preview + full "
        f"per change median {statistics.median(session['change_s']):.2f} s, max "
        f"{max(session['change_s']):.2f} s")
  result.update({f"session_{k}": v for k, v in session.items() if k != "change_s"})
  restart = restarted_first_render(bike, bike_depth, programs)
  print(f"app restarted (its programs stored by the session above, none in memory): first render "
        f"(preview + full) {restart:.2f} s")
  result["restarted_first_render_s"] = round(restart, 2)
  return result
