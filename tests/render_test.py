"""Tests of the `python -m dofjax.render` CLI on tiny photos.

The photos have dof_test.py's size and the renders its layer plan (SMALL), so in one pytest session
they reuse its compiled renderer instead of compiling their own.
"""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dofjax import compile_cache
from dofjax import depth_completion
from dofjax import dof
from dofjax import errors
from dofjax import render
from dofjax import render_plan

H, W = 64, 96
SMALL = ["--num_layers=5", "--max_radius=16"]   # dof_test.LAYERS, dof_test.MAX_RADIUS.


@pytest.fixture()
def files(tmp_path):
  rng = np.random.default_rng(0)
  photo = (rng.random((H, W, 3)) * 255).astype(np.uint8)
  depth_mm = np.full((H, W), 4000, np.uint16)
  depth_mm[16:48, 16:48] = 1200                     # A near square ...
  depth_mm[0:3, 0:3] = 0                            # ... and a few invalid pixels.
  paths = {"photo": str(tmp_path / "photo.png"), "depth": str(tmp_path / "depth.png"),
           "out": str(tmp_path / "out.png"), "vis": str(tmp_path / "vis.png"),
           "dir": tmp_path}
  cv2.imwrite(paths["photo"], photo)
  cv2.imwrite(paths["depth"], depth_mm)
  return paths


def test_render_with_depth_focus_pixel_and_depth_vis(files):
  assert render.main(["render", files["photo"], f"--depth={files['depth']}", "--focus_px=32,32",
                      "--f_number=1.4", f"--output={files['out']}",
                      f"--depth_vis={files['vis']}", "--blur_scale_px=20", *SMALL]) == 0
  out = cv2.imread(files["out"], cv2.IMREAD_UNCHANGED)
  photo = cv2.imread(files["photo"], cv2.IMREAD_UNCHANGED)
  assert out.shape == (H, W, 3) and out.dtype == np.uint8
  # The focused square stays sharp, the far background is blurred (less variance).
  assert np.abs(out[24:40, 24:40].astype(int) - photo[24:40, 24:40]).max() <= 2
  assert out[:, 64:].std() < 0.7 * photo[:, 64:].std()
  vis = cv2.imread(files["vis"])[..., ::-1]
  assert vis.shape == (H, W, 3) and vis[32, 32].sum() > vis[56, 80].sum()  # Near is brighter.


def test_sixteen_bit_photo_and_resize_depth(files):
  photo16 = (np.random.default_rng(1).random((H, W, 3)) * 65535).astype(np.uint16)
  cv2.imwrite(files["photo"], photo16)
  small = str(files["dir"] / "small.png")
  cv2.imwrite(small, np.full((H // 2, W // 2), 3000, np.uint16))
  assert render.main(["render", files["photo"], f"--depth={small}", "--resize_depth",
                      "--focus_m=1.5", f"--output={files['out']}", *SMALL]) == 0
  out = cv2.imread(files["out"], cv2.IMREAD_UNCHANGED)
  assert out.shape == (H, W, 3) and out.dtype == np.uint16


@pytest.mark.parametrize("extra,message", [
    (["--focus_px=100,5"], "outside the 96x64 photo"),
    (["--f_number=0"], "--f_number must be > 0"),
    (["--focus_px=a,b"], "--focus_px must be"),
    (["--max_radius=-5"], "--max_radius must be > 0 pixels"),
    (["--max_radius=0"], "--max_radius must be > 0 pixels"),
    (["--aperture_blades=2"], "--aperture_blades must be 0"),
    (["--aperture_blades=-6"], "--aperture_blades must be 0"),
    (["--aperture_rotation_deg=nan"], "--aperture_rotation_deg must be a finite angle"),
])
def test_bad_flags_raise_user_error(files, extra, message):
  with pytest.raises(errors.UserError, match=message):
    render.main(["render", files["photo"], f"--depth={files['depth']}",
                 f"--output={files['out']}"] + extra)


def test_bad_max_radius_exits_2_with_one_line(files):
  proc = _run("dofjax.render", files["photo"], f"--depth={files['depth']}",
              f"--output={files['out']}", "--max_radius=-5")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert proc.stderr.strip().splitlines() == [
      "error: --max_radius must be > 0 pixels (leave it out to follow the photo's largest blur); "
      "got -5."]


def test_holes_at_a_depth_edge_take_the_far_depth():
  depth = np.full((20, 30), 4.0, np.float32)
  depth[:, :14] = 1.0                               # Near on the left, far on the right ...
  depth[5:15, 12:18] = 0.0                          # ... and an occlusion hole across the edge.
  depth[0, 0] = 0.0                                 # A hole inside the near surface.
  depth[:, 29] = 0.0                                # A hole along the far border.
  filled = depth_completion.fill_farther(depth)
  np.testing.assert_array_equal(filled[5:15, 12:18], 4.0)
  assert filled[0, 0] == 1.0 and np.all(filled[:, 29] == 4.0)
  assert set(np.unique(filled)) == {1.0, 4.0}       # No in-between depths anywhere.


def test_fill_farther_without_valid_pixels_is_a_user_error():
  with pytest.raises(errors.UserError, match="no valid pixels"):
    depth_completion.fill_farther(np.zeros((4, 4), np.float32))


def test_default_max_radius_is_the_largest_coc_bucketed_and_a_cap_is_said():
  assert render.max_blur_radius(84.2) == (96.0, None)
  assert render.max_blur_radius(0.3) == (8.0, None)
  radius, note = render.max_blur_radius(84.2, 32.0)
  assert radius == 32.0 and note.startswith("note: --max_radius=32 caps the blur")
  assert "84 px" in note
  assert render.max_blur_radius(20.0, 32.0) == (32.0, None)


def test_cli_follows_the_largest_coc_and_says_when_capped(files, capsys):
  # Focused on the square (1.2 m); the wall at 4 m is |1/4 - 1/1.2| = 0.583 1/m off focus.
  base = ["render", files["photo"], f"--depth={files['depth']}", "--focus_px=32,32",
          f"--output={files['out']}", "--num_layers=5"]
  assert render.main(base + ["--blur_scale_px=27"]) == 0          # Largest CoC 15.75 px.
  out = capsys.readouterr().out
  assert "max blur radius 16 px" in out and "note" not in out
  assert render.main(base + ["--blur_scale_px=400", "--max_radius=16"]) == 0   # Needs 233 px.
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].startswith("note: --max_radius=16 caps the blur") and "233 px" in lines[0]


def test_plan_buckets_bound_the_programs_and_waste_at_most_half():
  buckets = sorted({render_plan.plan_max_radius(r) for r in np.linspace(0.1, 256.0, 5000)})
  assert buckets == [8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0, 192.0, 256.0]
  for r in np.linspace(8.0, 300.0, 997):
    assert r <= render_plan.plan_max_radius(r) <= 1.5 * r


@pytest.mark.parametrize("output,message", [
    ("out.tif", "must end in .png, .jpg or .jpeg"),
    ("missing/out.png", "the folder .*missing.* does not exist"),
    (".", "must end in"),
])
def test_bad_output_fails_before_anything_is_read_or_compiled(files, output, message):
  output = os.path.join(files["dir"], output)
  traces = dof.render_trace_count()
  # The photo and depth do not exist either: the output is what is checked first.
  with pytest.raises(errors.UserError, match=message):
    render.main(["render", "no_photo.jpg", "--depth=no_depth.png", f"--output={output}"])
  with pytest.raises(errors.UserError, match=message):
    render.main(["render", files["photo"], f"--depth={files['depth']}", f"--output={output}"])
  with pytest.raises(errors.UserError, match="--depth_vis=.*vis.bmp.*must end in"):
    render.main(["render", files["photo"], f"--depth={files['depth']}",
                 f"--output={files['out']}", f"--depth_vis={files['dir'] / 'vis.bmp'}"])
  assert dof.render_trace_count() == traces and not os.path.exists(files["out"])


@pytest.mark.slow  # Three CLI processes, each importing JAX.
def test_a_second_cli_process_finds_the_compiled_render(files, tmp_path):
  # The default place: the user's cache folder ($XDG_CACHE_HOME), dofjax/xla.
  cache = tmp_path / "cache" / "dofjax" / "xla"
  programs = cache / compile_cache.PROGRAMS_SUBFOLDER
  env = {"JAX_COMPILATION_CACHE_DIR": None, "XDG_CACHE_HOME": str(tmp_path / "cache")}
  args = [files["photo"], f"--depth={files['depth']}", "--num_layers=5"]
  first = _run("dofjax.render", *args, "--focus_px=32,32", "--blur_scale_px=27",
               f"--output={files['out']}", env=env)
  assert first.returncode == 0, first.stderr
  # The compiled render and the completed depth (the depth has holes) are stored whole ...
  stored = sorted(os.listdir(programs))
  assert [n.split("-")[0] for n in stored] == ["depth", "render"]
  # ... so a later process with another focus, blur and rotation in the same plan (16 px) loads
  # both: it traces nothing, fills no hole and stores nothing new.
  second = _run_python(
      "import sys; from dofjax import depth_completion, dof, render\n"
      "depth_completion.colourise = None  # The stored completion must be read back.\n"
      "render.main(sys.argv)\nprint('traces', dof.render_trace_count())",
      *args, "--focus_px=70,40", "--blur_scale_px=24", "--aperture_rotation_deg=10",
      f"--output={tmp_path / 'b.png'}", env=env)
  assert second.returncode == 0, second.stderr
  assert "max blur radius 16 px" in first.stdout and "max blur radius 16 px" in second.stdout
  assert "traces 0" in second.stdout
  assert sorted(os.listdir(cache)) == [compile_cache.PROGRAMS_SUBFOLDER]
  assert sorted(os.listdir(programs)) == stored
  # DOFJAX_COMPILATION_CACHE=0 turns it all off.
  off = _run("dofjax.render", *args, f"--output={tmp_path / 'c.png'}",
             env=dict(env, XDG_CACHE_HOME=str(tmp_path / "off"), DOFJAX_COMPILATION_CACHE="0"))
  assert off.returncode == 0, off.stderr
  assert not os.path.exists(tmp_path / "off")


def test_completed_depth_is_stored_per_photo_and_depth_content(tmp_path, monkeypatch):
  rng = np.random.default_rng(3)
  image = rng.random((H, W, 3)).astype(np.float32)
  depth = np.full((H, W), 2.0, np.float32)
  depth[10:20, 30:40] = 0.0                                # A hole: completion is needed.
  folder = str(tmp_path / "programs")
  direct = depth_completion.complete_depth(image, depth)
  first = render.complete_depth_stored(image, depth, folder)
  assert len(os.listdir(folder)) == 1
  calls = []
  real = depth_completion.complete_depth
  monkeypatch.setattr(depth_completion, "complete_depth",
                      lambda *a, **k: calls.append(1) or real(*a, **k))
  again = render.complete_depth_stored(image, depth, folder)   # Read back: not completed.
  assert not calls
  for got in (first, again):
    np.testing.assert_array_equal(got[0], direct[0])
    np.testing.assert_array_equal(got[1], direct[1])
  other = depth.copy()
  other[0, 0] = 3.0                                        # Other content: completed afresh.
  np.testing.assert_array_equal(render.complete_depth_stored(image, other, folder)[0],
                                real(image, other)[0])
  assert len(calls) == 1 and len(os.listdir(folder)) == 2
  render.complete_depth_stored(image, np.full((H, W), 2.0, np.float32), folder)
  assert len(os.listdir(folder)) == 2                      # No holes: nothing to store.


def test_the_cli_module_leaves_jax_to_a_background_import(files, tmp_path):
  # JAX takes over a second to import: the CLI decodes the photo and the depth meanwhile, which
  # only works while importing the CLI does not import JAX itself.
  result = _run_python(
      "import sys; from dofjax import render\n"
      "print('before main', 'jax' in sys.modules)\n"
      "render.main(sys.argv)\nprint('after main', 'jax' in sys.modules)",
      files["photo"], f"--depth={files['depth']}", "--blur_scale_px=20", *SMALL,
      f"--output={tmp_path / 'b.png'}", env={"DOFJAX_COMPILATION_CACHE": "0"})
  assert result.returncode == 0, result.stderr
  assert "before main False" in result.stdout and "after main True" in result.stdout


@pytest.mark.parametrize("bits", [8, 16])
def test_photos_are_read_and_written_in_exact_steps(tmp_path, bits):
  top = (1 << bits) - 1
  dtype = np.uint16 if bits == 16 else np.uint8
  stored = np.random.default_rng(bits).integers(0, top + 1, (40, 30, 3)).astype(dtype)
  stored[0, :3] = [[0, 1, top], [top, 0, 1], [2, top - 1, 0]]      # Both ends of the range.
  cv2.imwrite(str(tmp_path / "p.png"), stored)
  image, got_bits = render.read_image(str(tmp_path / "p.png"))
  assert got_bits == bits and image.dtype == np.float32
  # RGB in [0, 1], exactly the stored value / (2^bits - 1) in float32.
  np.testing.assert_array_equal(image, stored[..., ::-1].astype(np.float32) / np.float32(top))
  # Written back (in blocks of rows smaller than the photo): the same stored values; beyond
  # [0, 1] clipped, and in between rounded to the nearest step.
  np.testing.assert_array_equal(render.to_stored(image, bits, rows=7), stored)
  edges = np.array([[[-0.2, 1.7, 0.49 / top], [0.51 / top, 1.49 / top, (top - 0.4) / top]]])
  assert render.to_stored(edges, bits, rows=1)[..., ::-1].tolist() == [[[0, top, 0],
                                                                        [1, 1, top]]]


def test_png_is_written_without_an_opencv_warning(tmp_path, capfd):
  render.write_image(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.float32))
  render.write_image(str(tmp_path / "a.jpg"), np.zeros((4, 4, 3), np.float32))
  err = capfd.readouterr().err
  assert "unsupported" not in err and "WARN" not in err, err
  assert cv2.imread(str(tmp_path / "a.png")).shape == (4, 4, 3)


@pytest.mark.parametrize("extra,expected", [
    ([], dict(aperture_blades=0, aperture_rotation_deg=0.0,
              highlight_gain=dof.PHOTO_HIGHLIGHT_GAIN,
              highlight_threshold=dof.PHOTO_HIGHLIGHT_THRESHOLD)),     # Photos: recovery on.
    (["--nohighlights"], dict(highlight_gain=0.0)),
    (["--nohighlights", "--highlights"], dict(highlight_gain=dof.PHOTO_HIGHLIGHT_GAIN)),
    (["--aperture_blades=6", "--aperture_rotation_deg=15"],
     dict(aperture_blades=6, aperture_rotation_deg=15.0)),
])
def test_aperture_and_highlight_flags_reach_the_renderer(files, monkeypatch, extra, expected):
  # The renderer's response to these settings is dof_test.py's; here: the CLI passes them on.
  seen = {}

  def fake_render(image, disparity, **kwargs):
    seen.update(kwargs)
    return image

  monkeypatch.setattr(dof, "render_disparity", fake_render)
  assert render.main(["render", files["photo"], f"--depth={files['depth']}",
                      f"--output={files['out']}", *extra]) == 0
  assert {k: seen[k] for k in expected} == expected


def test_depth_size_mismatch_names_both_sizes(files):
  cv2.imwrite(files["depth"], np.full((10, 12), 1000, np.uint16))
  with pytest.raises(errors.UserError, match="12x10 but the photo is 96x64"):
    render.main(["render", files["photo"], f"--depth={files['depth']}",
                 f"--output={files['out']}"])


def test_unreadable_photo_exits_2_without_traceback(files):
  bad = str(files["dir"] / "bad.jpg")
  with open(bad, "wb") as f:
    f.write(b"not an image")
  env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, "-m", "dofjax.render", bad, f"--depth={files['depth']}",
                         f"--output={files['out']}"], capture_output=True, text=True, env=env)
  assert proc.returncode == 2
  assert "cannot read the photo" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_checkpoint_is_a_user_error(files):
  with pytest.raises(errors.UserError):
    render.main(["render", files["photo"], f"--workdir={files['dir'] / 'no_such_workdir'}",
                 f"--output={files['out']}"])


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args, env=None):
  """Runs `python -m module ARGS` from the repository root (env: variables to set, None to
  unset); returns the CompletedProcess."""
  return _run_python("-m", module, *args, env=env)


def _run_python(*args, env=None):
  """Runs `python ARGS` (e.g. -m MODULE ..., or -c CODE ...; a first argument not starting with
  '-' is code for -c) from the repository root, as `_run`; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
             **(env or {}))
  env = {k: v for k, v in env.items() if v is not None}
  env.pop("JAX_NUM_CPU_DEVICES", None)
  args = args if args[0].startswith("-") else ("-c", *args)
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory, synthetic_data_dir):
  """A workdir trained for 4 steps on configs/tiny.py: the slow part (~1 CPU-minute) unless the
  session's shared XLA cache (conftest.py) already holds these steps. The flags are those of
  cli_test.py's first run, so that in a whole-suite run the compiled train and eval steps are
  reused from it."""
  workdir = str(tmp_path_factory.mktemp("render_workdir") / "w")
  result = _run("dofjax.main", "--config=configs/tiny.py", f"--workdir={workdir}",
                f"--config.data_dir={synthetic_data_dir}", "--config.num_train_steps=4",
                "--config.checkpoint_every_steps=2", "--config.eval_every_steps=4")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


@pytest.mark.slow  # Trains a model first (the CLI, tiny config).
def test_render_with_depth_from_trained_workdir(tmp_path, trained_workdir):
  rng = np.random.default_rng(2)
  photo = (rng.random((H, W, 3)) * 90).astype(np.uint8)
  photo[:, : W // 2] += 150                         # Bright left half, dark right half.
  paths = {n: str(tmp_path / f"{n}.png") for n in ("photo", "out", "vis")}
  cv2.imwrite(paths["photo"], photo)
  fx, fy = W // 4, H // 2
  # A 4-step model predicts nearly constant depth (~1% spread), so a large blur scale makes
  # its disparity differences visible.
  result = _run("dofjax.render", paths["photo"], f"--workdir={trained_workdir}",
                f"--focus_px={fx},{fy}", f"--output={paths['out']}",
                f"--depth_vis={paths['vis']}", "--blur_scale_px=3000", *SMALL)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "wrote" in result.stdout and "Traceback" not in result.stderr
  out = cv2.imread(paths["out"], cv2.IMREAD_UNCHANGED)
  vis = cv2.imread(paths["vis"], cv2.IMREAD_UNCHANGED)
  assert out.shape == (H, W, 3) and out.dtype == np.uint8
  assert vis.shape == (H, W, 3) and vis.std() > 0          # The predicted depth is not flat.
  # Inferno's brightness grows with disparity: pixels whose colour is far from the tapped
  # pixel's lie far from the focal plane, and are blurred; those near it stay nearly sharp.
  level = vis.astype(np.float32).mean(-1)
  off_focus = np.abs(level - level[fy, fx]) / max(np.ptp(level), 1e-6)
  change = np.abs(out.astype(np.float32) - photo).mean(-1)
  far, near = off_focus > 0.5, off_focus < 0.05
  assert far.sum() > 50 and near.sum() > 50, (far.sum(), near.sum())
  assert change[far].mean() > 5.0 and change[far].mean() > 2.0 * change[near].mean(), (
      change[far].mean(), change[near].mean())
