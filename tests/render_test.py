"""Tests of the `python -m dofjax.render` CLI on tiny images."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dofjax import errors
from dofjax import render

H, W = 40, 56


@pytest.fixture()
def files(tmp_path):
  rng = np.random.default_rng(0)
  photo = (rng.random((H, W, 3)) * 255).astype(np.uint8)
  depth_mm = np.full((H, W), 4000, np.uint16)
  depth_mm[10:30, 10:30] = 1200                     # A near square ...
  depth_mm[0:3, 0:3] = 0                            # ... and a few invalid pixels.
  paths = {"photo": str(tmp_path / "photo.png"), "depth": str(tmp_path / "depth.png"),
           "out": str(tmp_path / "out.png"), "vis": str(tmp_path / "vis.png"),
           "dir": tmp_path}
  cv2.imwrite(paths["photo"], photo)
  cv2.imwrite(paths["depth"], depth_mm)
  return paths


def test_render_with_depth_focus_pixel_and_depth_vis(files):
  assert render.main(["render", files["photo"], f"--depth={files['depth']}", "--focus_px=20,20",
                      "--f_number=1.4", f"--output={files['out']}",
                      f"--depth_vis={files['vis']}", "--blur_scale_px=8"]) == 0
  out = cv2.imread(files["out"], cv2.IMREAD_UNCHANGED)
  photo = cv2.imread(files["photo"], cv2.IMREAD_UNCHANGED)
  assert out.shape == (H, W, 3) and out.dtype == np.uint8
  # The focused square stays sharp, the far background is blurred (less variance).
  assert np.abs(out[15:25, 15:25].astype(int) - photo[15:25, 15:25]).max() <= 2
  assert out[:, 40:].std() < 0.7 * photo[:, 40:].std()
  vis = cv2.imread(files["vis"])[..., ::-1]
  assert vis.shape == (H, W, 3) and vis[20, 20].sum() > vis[35, 50].sum()  # Near is brighter.


def test_sixteen_bit_photo_and_resize_depth(files):
  photo16 = (np.random.default_rng(1).random((H, W, 3)) * 65535).astype(np.uint16)
  cv2.imwrite(files["photo"], photo16)
  small = str(files["dir"] / "small.png")
  cv2.imwrite(small, np.full((H // 2, W // 2), 3000, np.uint16))
  assert render.main(["render", files["photo"], f"--depth={small}", "--resize_depth",
                      "--focus_m=1.5", f"--output={files['out']}"]) == 0
  out = cv2.imread(files["out"], cv2.IMREAD_UNCHANGED)
  assert out.shape == (H, W, 3) and out.dtype == np.uint16


@pytest.mark.parametrize("extra,message", [
    (["--focus_px=100,5"], "outside the 56x40 photo"),
    (["--f_number=0"], "--f_number must be > 0"),
    (["--focus_px=a,b"], "--focus_px must be"),
])
def test_bad_flags_raise_user_error(files, extra, message):
  with pytest.raises(errors.UserError, match=message):
    render.main(["render", files["photo"], f"--depth={files['depth']}",
                 f"--output={files['out']}"] + extra)


def test_depth_size_mismatch_names_both_sizes(files):
  cv2.imwrite(files["depth"], np.full((10, 12), 1000, np.uint16))
  with pytest.raises(errors.UserError, match="12x10 but the photo is 56x40"):
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
  pytest.importorskip("dofjax.inference")
  with pytest.raises(errors.UserError):
    render.main(["render", files["photo"], f"--workdir={files['dir'] / 'no_such_workdir'}",
                 f"--output={files['out']}"])
