"""HEIC photos with their own depth (dofjax.photo_io.read_heic, the render CLI).

The real iPhone portrait is pillow-heif's own test image `tests/images/heif_other/pug.heic`, taken
from pillow-heif's source distribution on PyPI by `pip download` (network: a slow test). The fast
tests build HEICs with pillow-heif itself (it writes photos, not depth images)."""

import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from dofjax import errors
from dofjax import photo_io
from dofjax import render


def _heic(path, rgb, **kw):
  import pillow_heif
  pillow_heif.register_heif_opener()
  Image.fromarray(rgb).save(path, format="HEIF", quality=95, **kw)
  return path


def test_heic_without_depth_reads_and_says_what_to_add(tmp_path):
  rgb = np.zeros((48, 64, 3), np.uint8)
  rgb[:, 32:] = 200
  path = _heic(str(tmp_path / "IMG_0001.HEIC"), rgb)
  image, bits, depth = photo_io.read_heic(path)
  assert image.shape == (48, 64, 3) and bits == 8 and depth is None
  assert abs(image[10, 50, 0] - 200 / 255) < 0.05 and image[10, 10].max() < 0.05
  with pytest.raises(errors.UserError, match="IMG_0001.HEIC has no depth image of its own: pass "
                     "--depth=D"):
    render.main(["render", path, f"--output={tmp_path / 'o.png'}"])


def test_the_lens_of_a_heic_is_read_before_anything_registered_its_reader(tmp_path, monkeypatch):
  # The render CLI reads the EXIF lens first (before JAX starts loading), so nothing has opened a
  # HEIC yet in that process: the look-up registers pillow-heif's reader itself.
  exif = Image.Exif()
  exif.get_ifd(0x8769)[0xA405] = 26                     # FocalLengthIn35mmFilm.
  path = _heic(str(tmp_path / "IMG_0002.HEIC"), np.zeros((32, 48, 3), np.uint8),
               exif=exif.tobytes())
  monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "HEIF"])
  monkeypatch.setattr(Image, "OPEN", {k: v for k, v in Image.OPEN.items() if k != "HEIF"})
  with pytest.raises(OSError):
    Image.open(path)                                    # No reader registered ...
  assert photo_io.exif_lens(path) == (26.0, "EXIF FocalLengthIn35mmFilm")   # ... until now.


def test_a_heic_without_pillow_heif_says_how_to_install_it(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "pillow_heif", None)      # import pillow_heif -> ImportError.
  with pytest.raises(errors.UserError, match=r"IMG_0002.heic is a HEIC photo; reading it needs "
                     r"pillow-heif: pip install 'dofjax\[heif\]'"):
    photo_io.read_heic(str(tmp_path / "IMG_0002.heic"))


def test_depth_representations_and_orientation():
  t = np.array([[0.0, 1.0]])
  meta = lambda kind: dict(representation_type=kind, d_min=1.0, d_max=4.0)
  np.testing.assert_allclose(photo_io.heic_depth_to_metres(t, meta(0)), [[4.0, 1.0]])   # 1/z.
  np.testing.assert_allclose(photo_io.heic_depth_to_metres(t, meta(1)), [[1.0, 0.25]])  # 1/m.
  np.testing.assert_allclose(photo_io.heic_depth_to_metres(t, meta(2)), [[1.0, 4.0]])   # z.
  with pytest.raises(errors.UserError, match="representation this reader does not know"):
    photo_io.heic_depth_to_metres(t, meta(3))
  a = np.arange(6).reshape(2, 3)
  assert photo_io._orient(a, 6).shape == (3, 2) and photo_io._orient(a, 6)[0, 0] == 3  # 90 cw.
  np.testing.assert_array_equal(photo_io._orient(a, 3), a[::-1, ::-1])


@pytest.fixture(scope="module")
def pug(tmp_path_factory):
  """pug.heic out of pillow-heif's source distribution (the installed version), from PyPI."""
  import pillow_heif
  folder = tmp_path_factory.mktemp("sdist")
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                  "-d", str(folder), f"pillow-heif=={pillow_heif.__version__}"],
                 check=True, capture_output=True, timeout=600)
  (archive,) = [f for f in os.listdir(folder) if f.endswith(".tar.gz")]
  with tarfile.open(folder / archive) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("heif_other/pug.heic"))
    path = folder / "pug.heic"
    path.write_bytes(tar.extractfile(member).read())
  return str(path)


@pytest.mark.slow
def test_an_iphone_portrait_renders_from_its_own_depth(pug, tmp_path, capsys):
  image, _, depth = photo_io.read_heic(pug)
  assert image.shape == (3024, 4032, 3) and depth.shape == (3024, 4032)
  # The pug (centre, bottom half) is nearer than the wall behind it (top centre).
  assert np.median(depth[1800:2200, 1600:2200]) < 0.9 * np.median(depth[200:600, 1600:2400])
  out = str(tmp_path / "pug.png")
  assert render.main(["render", pug, "--focus_px=2000,1900", "--f_number=2",
                      f"--output={out}"]) == 0
  text = capsys.readouterr().out
  assert "lens: 26 mm on a 36 mm wide sensor (from the photo's EXIF FocalLengthIn35mmFilm" in text
  assert "depth: the photo's own depth image" in text
  result = np.asarray(Image.open(out), np.float32) / 255.0
  sharp = lambda x: float(np.abs(np.diff(x, axis=1)).mean())
  # The wall is blurred, the pug around the tapped pixel is not.
  kept = lambda rows, cols: sharp(result[rows, cols]) / sharp(image[rows, cols])
  wall, pug_fur = kept(slice(200, 600), slice(1600, 2400)), kept(slice(1850, 1950), slice(1950, 2050))
  assert wall < 0.6 and pug_fur > 0.85, (wall, pug_fur)
