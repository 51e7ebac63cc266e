"""The renderer on a real photo with measured depth: Middlebury 2014 "Motorcycle" as bundled by
scikit-image (a test dependency), at half its bundled size (370x250), with the photo CLI's
defaults (highlight recovery on, max radius = the photo's largest circle of confusion)."""

import math
import os
import sys

import cv2
import numpy as np
import pytest

from dofjax import depth_completion
from dofjax import render

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "scripts"))
import gallery  # pylint: disable=wrong-import-position

BLUR_SCALE = 30.0      # px per 1/m: the far wall (5 m) blurs by ~7 px with focus on the bike.


@pytest.fixture(scope="module")
def shot():
  """(photo, signed CoC radius px, render, second render) focused on the bike's tank."""
  image, depth = gallery.load_motorcycle(scale=2)
  x, y = (v // 2 for v in gallery.BIKE_PX)
  completed, _ = depth_completion.complete_depth(image, depth)   # The depth that is rendered.
  focus = render.focus_from_pixel(completed, x, y)
  s = BLUR_SCALE * (1.0 / completed - 1.0 / focus)
  # The CLI's (and the app's) render path with its defaults: highlight recovery on, max radius =
  # the photo's largest CoC.
  first, info = render.render_photo(image, depth, focus_m=focus, blur_scale_px=BLUR_SCALE)
  second, _ = render.render_photo(image, depth, focus_m=focus, blur_scale_px=BLUR_SCALE)
  assert info["max_radius"] == math.ceil(np.abs(s).max()) and info["note"] is None
  return image, s, first, second


def test_pixels_on_the_focal_plane_stay_within_one_level(shot):
  image, s, out, _ = shot
  # Blur of anything in front may legitimately cover a focused pixel: leave out its reach.
  reach = int(math.ceil(np.abs(s).max())) + 1
  disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
  covered = cv2.dilate((s > 0.5).astype(np.uint8), disc).astype(bool)
  focal = (np.abs(s) < 0.05) & ~covered
  assert focal.sum() > 500, focal.sum()
  assert np.abs(out[focal] - image[focal]).max() <= 1.0 / 255.0 + 1e-6


def test_blur_grows_with_the_circle_of_confusion(shot):
  image, s, out, _ = shot
  detail = lambda x: np.abs(x - cv2.GaussianBlur(x, (0, 0), 1.0)).mean(-1)
  kept = detail(out) / np.maximum(detail(image), 1e-3)      # Fine detail left, per pixel.
  radius = np.abs(s)
  bins = [(0.0, 0.3), (1.0, 2.0), (2.0, 4.0), (4.0, np.inf)]
  means = []
  for lo, hi in bins:
    sel = (radius >= lo) & (radius < hi) & (detail(image) > 0.01)
    assert sel.sum() > 300, (lo, hi, sel.sum())
    means.append(float(np.median(kept[sel])))
  assert means[0] > 0.9, means
  assert all(a > b for a, b in zip(means, means[1:])), means
  assert means[-1] < 0.5, means


def test_the_render_is_deterministic(shot):
  _, _, first, second = shot
  np.testing.assert_array_equal(first, second)
