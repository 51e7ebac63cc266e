"""Depth files in their units and formats, the EXIF lens, tap-on-hole focus (dofjax.photo_io and
the render CLI). Tiny photos, rendered with render_test.py's layer plan."""

import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from dofjax import errors
from dofjax import photo_io
from dofjax import render

H, W = 64, 96
SMALL = ["--num_layers=5", "--max_radius=16"]


@pytest.fixture()
def photo(tmp_path):
  path = str(tmp_path / "photo.png")
  cv2.imwrite(path, (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8))
  return path


def test_png_holding_metres_is_rejected_naming_the_option(tmp_path, photo):
  path = str(tmp_path / "depth_m.png")
  cv2.imwrite(path, np.random.default_rng(0).integers(1, 9, (H, W)).astype(np.uint16))
  with pytest.raises(errors.UserError, match=r"median depth of 0.00\d+ m with "
                     r"--depth_scale=0.001.*seems to hold metres: pass --depth_scale=1"):
    render.main(["render", photo, f"--depth={path}", f"--output={tmp_path / 'o.png'}"])
  # With the unit stated, it renders.
  assert render.main(["render", photo, f"--depth={path}", "--depth_scale=1", "--focus_px=10,10",
                      "--blur_scale_px=5", f"--output={tmp_path / 'o.png'}", *SMALL]) == 0


def test_npy_float_metres_with_nan_holes(tmp_path):
  depth = np.full((H, W), 2.5, np.float32)
  depth[:4] = np.nan
  depth[4:8] = -1.0
  path = str(tmp_path / "d.npy")
  np.save(path, depth)
  out = photo_io.read_depth_file(path)
  assert out.dtype == np.float32 and np.all(out[:8] == 0) and np.all(out[8:] == 2.5)
  np.save(path, np.zeros((2, H, W)))
  with pytest.raises(errors.UserError, match="must be a 2-D numeric array"):
    photo_io.read_depth_file(path)
  with open(path, "wb") as f:
    f.write(b"garbage")
  with pytest.raises(errors.UserError, match="not a .npy array"):
    photo_io.read_depth_file(path)


def test_disparity_maps_need_the_option_and_are_inverted(tmp_path):
  disparity = np.full((H, W), 0.5, np.float32)   # 1/m: 2 m.
  disparity[10:20, 10:20] = 2.0                  # 0.5 m.
  disparity[0, 0] = 0.0                          # Invalid.
  path = str(tmp_path / "disp.npy")
  np.save(path, disparity)
  depth = photo_io.read_depth_file(path, disparity=True)
  assert depth[0, 0] == 0 and depth[15, 15] == 0.5 and depth[40, 40] == 2.0
  np.save(path, disparity * 1000)                # Relative disparity, arbitrary scale.
  with pytest.raises(errors.UserError, match="--depth_scale=S with depth = 1 / "):
    photo_io.read_depth_file(path, disparity=True)


def test_exif_focal_length_is_the_default_lens_and_flags_override(tmp_path, capsys):
  rgb = (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)
  path = str(tmp_path / "phone.jpg")
  exif = Image.Exif()
  exif.get_ifd(0x8769).update({0xA405: 26, 0x920A: 5.7})
  Image.fromarray(rgb).save(path, exif=exif)
  depth = str(tmp_path / "d.npy")
  np.save(depth, np.full((H, W), 2.0, np.float32))
  out = str(tmp_path / "o.png")
  assert render.main(["render", path, f"--depth={depth}", f"--output={out}", *SMALL]) == 0
  assert ("lens: 26 mm on a 36 mm wide sensor (from the photo's EXIF FocalLengthIn35mmFilm "
          "(real focal length 5.7 mm))") in capsys.readouterr().out
  assert render.main(["render", path, f"--depth={depth}", f"--output={out}",
                      "--focal_length_mm=85", *SMALL]) == 0
  assert "lens: 85 mm on a 36 mm wide sensor (from --focal_length_mm)" in capsys.readouterr().out
  Image.fromarray(rgb).save(path)                 # No EXIF: the assumption is said.
  assert render.main(["render", path, f"--depth={depth}", f"--output={out}", *SMALL]) == 0
  assert "lens: 50 mm on a 36 mm wide sensor (assumed" in capsys.readouterr().out


def test_png_exif_is_found_before_or_after_the_image_data(tmp_path):
  rgb = (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)
  exif = Image.Exif()
  exif[0x8769] = {0xA405: 28}   # FocalLengthIn35mmFilm.
  before, plain = str(tmp_path / "before.png"), str(tmp_path / "plain.png")
  Image.fromarray(rgb).save(before, exif=exif)
  Image.fromarray(rgb).save(plain)
  with open(plain, "rb") as f:
    data = f.read()
  payload = exif.tobytes()[6:]  # An eXIf chunk after IDAT, just before IEND, as some tools write.
  chunk = (len(payload).to_bytes(4, "big") + b"eXIf" + payload
           + zlib.crc32(b"eXIf" + payload).to_bytes(4, "big"))
  after = str(tmp_path / "after.png")
  with open(after, "wb") as f:
    f.write(data[:-12] + chunk + data[-12:])
  assert photo_io.exif_lens(before)[0] == 28.0 and photo_io.exif_lens(after)[0] == 28.0
  assert photo_io.exif_lens(plain) is None


def test_tap_on_a_hole_focuses_on_the_completed_depth_and_says_so(tmp_path, capsys):
  # A near square (1 m) on a far wall (4 m); the square's centre is a dropout. The old focus
  # widened its window past the hole and landed elsewhere; now it is the surface the hole is on.
  image = np.full((H, W, 3), 200, np.uint8)
  image[16:48, 16:48] = 40
  depth = np.full((H, W), 4000, np.uint16)
  depth[16:48, 16:48] = 1000
  depth[22:42, 22:42] = 0
  photo, dpath = str(tmp_path / "p.png"), str(tmp_path / "d.png")
  cv2.imwrite(photo, image)
  cv2.imwrite(dpath, depth)
  assert render.main(["render", photo, f"--depth={dpath}", "--focus_px=32,32", "--blur_scale_px=5",
                      f"--output={tmp_path / 'o.png'}", f"--depth_vis={tmp_path / 'v.png'}",
                      *SMALL]) == 0
  out = capsys.readouterr().out
  assert "hole at 32,32; focus 1.00 m is inferred" in out and "focus 1.00 m," in out
  vis = cv2.imread(str(tmp_path / "v.png")).astype(int)
  # Filled pixels are striped (darker on alternate diagonals), valid ones are not.
  assert np.abs(np.diff(vis[30, 24:40].sum(-1))).max() > 50
  assert np.abs(np.diff(vis[18, 17:30].sum(-1))).max() < 5
