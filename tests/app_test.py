"""Tests of the tap-to-focus app (dofjax.app): its functions give the CLI's image bit for bit, and
every bad input becomes a message in the page while the server keeps running."""

import json
import os
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from dofjax import app
from dofjax import dof
from dofjax import errors
from dofjax import render
from dofjax import render_plan
from dofjax.app import __main__ as app_main
from dofjax.app import server

H, W = 48, 64


def _png(array):
  ok, data = cv2.imencode(".png", array)
  assert ok
  return data.tobytes()


@pytest.fixture()
def files(tmp_path):
  """A tiny photo with a clipped lamp behind a near square, its depth (mm, a few holes)."""
  rng = np.random.default_rng(0)
  photo = (rng.random((H, W, 3)) * 200).astype(np.uint8)
  photo[30:34, 50:54] = 255                          # A clipped light in the background.
  depth_mm = np.full((H, W), 5000, np.uint16)
  depth_mm[12:36, 8:32] = 1500                       # The subject.
  depth_mm[0:2, 0:3] = 0                             # Holes.
  paths = {"photo": tmp_path / "photo.png", "depth": tmp_path / "depth.png"}
  paths["photo"].write_bytes(_png(photo))
  paths["depth"].write_bytes(_png(depth_mm))
  return paths


def test_full_render_is_the_cli_png_bit_for_bit(files, tmp_path):
  # Every control off its default, so each must reach the CLI's flags (a render compiles for
  # seconds, so one case).
  fields = dict(x=20, y=24, f_number=1.4, focal_length_mm=85, highlights=False, blades=6,
                rotation_deg=15.0)
  image, bits = app.read_photo_bytes(files["photo"].read_bytes(), "photo.png")
  depth_m = app.read_depth_bytes(files["depth"].read_bytes(), image.shape[:2])
  settings = app.parse_settings(fields)
  out, info = app.render_full(image, depth_m, settings)
  out_path = tmp_path / "cli.png"
  args = app.cli_args(settings, photo=str(files["photo"]),
                      depth_flags=[f"--depth={files['depth']}"], output=str(out_path))
  assert render.main(["render", *args]) == 0
  assert app.result_png(out, bits) == out_path.read_bytes()
  assert info["focus_m"] == pytest.approx(1.5, rel=1e-3)   # The clicked subject.


def test_preview_is_smaller_with_the_same_focus_and_blurs_off_focus(files):
  image, _ = app.read_photo_bytes(files["photo"].read_bytes())
  depth_m = app.read_depth_bytes(files["depth"].read_bytes(), image.shape[:2])
  settings = app.parse_settings(dict(x=20, y=24, f_number=1.0, focal_length_mm=200))
  small_image, small_depth = app.preview_inputs(image, depth_m, long_side=32)
  assert small_image.shape == (24, 32, 3) and small_depth.shape == (24, 32)
  out, info = app.render_preview(small_image, small_depth, depth_m, settings)
  assert out.shape == small_image.shape
  assert info["focus_m"] == pytest.approx(1.5, rel=1e-3)
  # The plan the warm-up compiles for these settings is the one the preview uses.
  assert info["max_radius"] == app.plan_key(small_depth, settings, depth_m)[2]
  # The subject stays sharp, the background does not.
  subject = np.abs(out[8:16, 6:14] - small_image[8:16, 6:14]).max()
  background = np.abs(out[:, 20:] - small_image[:, 20:]).mean()
  assert subject < 2 / 255 and background > 10 / 255


def test_every_cli_error_is_a_message(files, tmp_path):
  with pytest.raises(errors.UserError, match="cannot read the photo .*notes.txt.*not a JPEG or PNG"):
    app.read_photo_bytes(b"not an image", "notes.txt")
  with pytest.raises(errors.UserError, match="empty"):
    app.read_photo_bytes(b"", "photo.jpg")
  with pytest.raises(errors.UserError, match="the depth map is 64x48 but the photo is 32x16"):
    app.read_depth_bytes(files["depth"].read_bytes(), (16, 32))
  resampled = app.read_depth_bytes(files["depth"].read_bytes(), (24, 32), resample=True)
  assert resampled.shape == (24, 32)
  with pytest.raises(errors.UserError, match="no valid pixels"):
    app.read_depth_bytes(_png(np.zeros((H, W), np.uint16)), (H, W))
  with pytest.raises(errors.UserError, match="16-bit PNG in millimetres"):
    app.read_depth_bytes(files["photo"].read_bytes(), (H, W))
  with pytest.raises(errors.UserError, match="not a dofjax workdir"):
    app.depth_from_model(str(tmp_path), np.zeros((H, W, 3), np.float32))
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(errors.UserError, match="No checkpoint"):
    app.depth_from_model(str(tmp_path), np.zeros((H, W, 3), np.float32))
  with pytest.raises(errors.UserError, match="--workdir"):
    app.depth_from_model(None, np.zeros((H, W, 3), np.float32))


@pytest.mark.slow  # Compiles a dozen renderers (about 20 s).
def test_setting_changes_compile_one_program_per_plan_key(files):
  image, _ = app.read_photo_bytes(files["photo"].read_bytes())
  depth_m = app.read_depth_bytes(files["depth"].read_bytes(), image.shape[:2])
  # A scripted session: focus, f-number, focal length, rotation and highlights change; one
  # aperture switch. Counted in traces of the compiled render (each a compile when not cached).
  changes = [dict(x=20, y=24, f_number=2.0), dict(x=50, y=40, f_number=2.0),
             dict(x=20, y=24, f_number=2.2), dict(x=20, y=24, f_number=2.2, focal_length_mm=52),
             dict(x=20, y=24, f_number=2.0, blades=6), dict(x=20, y=24, blades=6, rotation_deg=30),
             dict(x=20, y=24, f_number=2.1, blades=6, rotation_deg=50),
             dict(x=50, y=40, f_number=2.0, highlights=False),
             dict(x=50, y=40, f_number=2.0, highlights=True)]
  keys, traces = set(), dof.render_trace_count()
  for fields in changes:
    settings = app.parse_settings(dict(fields, focal_length_mm=fields.get("focal_length_mm", 50)))
    _, info = app.render_full(image, depth_m, settings)
    key = app.plan_key(depth_m, settings)
    assert info["max_radius"] == key[2]
    keys.add(key)
  # 9 changes, 3 programs: round and 6 blades with highlights, round without (the f-number,
  # focal length and focus changes stay in one plan bucket).
  assert len(keys) == 3
  assert dof.render_trace_count() - traces <= len(keys)


def test_warm_up_compiles_the_programs_the_renders_then_use(files):
  image, _ = app.read_photo_bytes(files["photo"].read_bytes())
  depth_m = app.read_depth_bytes(files["depth"].read_bytes(), image.shape[:2])
  small_image, small_depth = app.preview_inputs(image, depth_m, long_side=40)
  settings = app.parse_settings(dict(x=20, y=24, f_number=1.4, focal_length_mm=85))
  keys = app.warm_up_keys(depth_m, small_depth, settings, apertures=(0, 8))
  preview, full = app.plan_key(small_depth, settings, depth_m), app.plan_key(depth_m, settings)
  assert keys[:4] == [preview, preview[:3] + (8, True), full, full[:3] + (8, True)]
  # Then the buckets either side (there is none below the smallest).
  assert {k[2] for k in keys if k[:2] == full[:2]} == {
      render_plan.plan_max_radius(full[2] * 0.666), full[2],
      render_plan.plan_max_radius(full[2] * 1.01)}
  app.warm_up(keys[1])            # The preview with 8 blades ...
  traces = dof.render_trace_count()
  eight = app.parse_settings(dict(x=20, y=24, f_number=1.4, focal_length_mm=85, blades=8,
                                  rotation_deg=20))
  app.render_preview(small_image, small_depth, depth_m, eight)
  assert dof.render_trace_count() == traces     # ... is then used, not compiled again.


def test_a_restarted_app_loads_the_programs_its_warm_up_stored(files, tmp_path, monkeypatch):
  image, _ = app.read_photo_bytes(files["photo"].read_bytes())
  depth_m = app.read_depth_bytes(files["depth"].read_bytes(), image.shape[:2])
  # A preview size no other test renders, so its program is compiled here (and stored), not read
  # from the session's persistent XLA cache.
  small_image, small_depth = app.preview_inputs(image, depth_m, long_side=37)
  settings = app.parse_settings(dict(x=20, y=24, f_number=2.0, focal_length_mm=50))
  folder = str(tmp_path / "programs")
  app.warm_up(app.plan_key(small_depth, settings, depth_m), folder)
  assert [name.split("-")[0] for name in os.listdir(folder)] == ["render"]
  traces = dof.render_trace_count()
  first, _ = app.render_preview(small_image, small_depth, depth_m, settings, folder)
  monkeypatch.setattr(dof, "_STORED_RENDERS", {})      # A new process: nothing in memory ...
  again, _ = app.render_preview(small_image, small_depth, depth_m, settings, folder)
  assert dof.render_trace_count() == traces             # ... and still nothing traced,
  np.testing.assert_array_equal(again, first)           # the same image.


def test_stale_requests_are_dropped_and_the_newest_wins(files):
  state = server.AppState(warm_up=False)
  server.set_photo(state, "t", files["photo"].read_bytes(), "photo.png")
  session = state.session("t")
  server.set_depth(session, app.read_depth_bytes(files["depth"].read_bytes(), (H, W)),
                   ["--depth=depth.png"])
  answers = {}

  def request(seq, full):
    answers[seq] = server.render(state, session, dict(x=20, y=24, seq=seq, full=full))

  with state.render_lock:         # A render in progress: the next requests queue behind it.
    threads = [threading.Thread(target=request, args=(seq, full))
               for seq, full in ((1, False), (2, True), (3, False))]
    for t in threads:
      t.start()
    while state.waiting < 3:
      threading.Event().wait(0.01)
  for t in threads:
    t.join()
  assert answers[1] == dict(stale=True, seq=1) and answers[2] == dict(stale=True, seq=2)
  assert answers[3]["seq"] == 3 and not answers[3]["full"]
  assert answers[3]["image"].startswith("data:image/jpeg;base64,")
  # An answer to an old request that arrives after a newer one was seen is stale too.
  assert server.render(state, session, dict(x=20, y=24, seq=2)) == dict(stale=True, seq=2)
  with pytest.raises(errors.UserError, match="seq must be an integer"):
    server.render(state, session, dict(x=20, y=24, seq="4"))


@pytest.mark.parametrize("fields, message", [
    (dict(), "click on the photo"),
    (dict(x=1, y=2, f_number=0), r"f_number must be a number in \[0.5, 22\]"),
    (dict(x=1, y=2, f_number="1.8"), "f_number must be a number"),
    (dict(x=1, y=2, blades=7), r"blades must be one of \(0, 5, 6, 8\)"),
    (dict(x=1, y=2, focal_length_mm=True), "focal_length_mm must be a number"),
])
def test_bad_settings_are_messages(fields, message):
  with pytest.raises(errors.UserError, match=message):
    app.parse_settings(fields)


def test_click_outside_the_photo_is_a_message():
  with pytest.raises(errors.UserError, match="outside the 64x48 photo"):
    app.render_full(np.zeros((H, W, 3), np.float32), np.ones((H, W), np.float32),
                    app.parse_settings(dict(x=64, y=0)))


@pytest.fixture()
def url():
  httpd = server.make_server("127.0.0.1", 0, warm_up=False)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{httpd.server_address[1]}"
  httpd.shutdown()
  httpd.server_close()


def _post(url, path, body=b""):
  """(HTTP status, JSON answer) of a POST."""
  try:
    with urllib.request.urlopen(urllib.request.Request(url + path, data=body)) as r:
      return r.status, json.loads(r.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_server_answers_bad_input_with_messages_and_keeps_running(url, files):
  with urllib.request.urlopen(url + "/") as r:
    page = r.read().decode()
  for control in ('id="photo-input"', 'id="depth-input"', 'id="fnum"', 'id="focal"',
                  'id="highlights"', 'id="blades"', 'id="rotation"', 'id="save"'):
    assert control in page
  status, answer = _post(url, "/api/photo?s=a&name=notes.txt", b"junk")
  assert status == 400 and "not a JPEG or PNG image" in answer["error"]
  assert "Traceback" not in answer["error"]
  status, answer = _post(url, "/api/render?s=nobody", b"{}")
  assert status == 400 and "upload a photo first" in answer["error"]
  # Still serving: a good photo, then a depth map of another size, then a render without depth.
  assert _post(url, "/api/photo?s=a&name=photo.png", files["photo"].read_bytes()) == (
      200, {"width": W, "height": H, "bits": 8, "depth": False, "focal_length_mm": None,
            "lens_source": None})
  small_depth = _png(np.full((10, 10), 2000, np.uint16))
  status, answer = _post(url, "/api/depth?s=a&name=d.png", small_depth)
  assert status == 400 and "the depth map is 10x10 but the photo is 64x48" in answer["error"]
  status, answer = _post(url, "/api/render?s=a", json.dumps(dict(x=1, y=1)).encode())
  assert status == 400 and "add depth first" in answer["error"]
  status, answer = _post(url, "/api/predict?s=a")
  assert status == 400 and "--workdir" in answer["error"]
  assert _post(url, "/api/depth?s=a&name=d.png", files["depth"].read_bytes()) == (200, {"ok": True})
  status, answer = _post(url, "/api/render?s=a", json.dumps(dict(x=1, y=1, blades=3)).encode())
  assert status == 400 and "blades must be one of" in answer["error"]
  with pytest.raises(urllib.error.HTTPError) as e:
    urllib.request.urlopen(url + "/api/download?s=a")
  assert e.value.code == 400 and "nothing to save yet" in json.loads(e.value.read())["error"]


def test_launch_flags_are_checked(tmp_path):
  with pytest.raises(errors.UserError, match="is not a folder"):
    app_main.main(["app", f"--workdir={tmp_path / 'missing'}"])
  with pytest.raises(errors.UserError, match="--port must be in"):
    app_main.main(["app", "--port=70000"])


def test_upload_path_completes_depth_reads_the_lens_and_names_the_users_file(url, files):
  """Issue 28 in the app: the EXIF lens comes back with the photo, a tap on a depth hole says
  that its distance was inferred, and messages name the uploaded file, not the server's copy."""
  from PIL import Image
  photo = cv2.imdecode(np.frombuffer(files["photo"].read_bytes(), np.uint8), cv2.IMREAD_COLOR)
  exif = Image.Exif()
  exif.get_ifd(0x8769)[0xA405] = 28
  buf = __import__("io").BytesIO()
  Image.fromarray(photo[..., ::-1]).save(buf, format="JPEG", exif=exif)
  status, answer = _post(url, "/api/photo?s=b&name=IMG_7.jpg", buf.getvalue())
  assert status == 200 and answer["focal_length_mm"] == 28.0
  assert "FocalLengthIn35mmFilm" in answer["lens_source"] and answer["depth"] is False
  metres = _png(np.full((H, W), 3, np.uint16))          # A PNG holding metres, not millimetres.
  status, answer = _post(url, "/api/depth?s=b&name=my_depth.png", metres)
  assert status == 400 and "'my_depth.png' gives a median depth of 0.003 m" in answer["error"]
  assert "dofjax-app-" not in answer["error"] and "--depth_scale=1" in answer["error"]
  depth_mm = np.full((H, W), 5000, np.uint16)
  depth_mm[12:36, 8:32] = 1500
  depth_mm[18:30, 14:26] = 0                             # A dropout on the subject.
  assert _post(url, "/api/depth?s=b&name=d.png", _png(depth_mm)) == (200, {"ok": True})
  status, answer = _post(url, "/api/render?s=b", json.dumps(dict(x=20, y=24)).encode())
  assert status == 200 and answer["focus_m"] == pytest.approx(1.5, rel=0.02)
  assert "hole at 20,24" in answer["note"] and "inferred" in answer["note"]
  status, answer = _post(url, "/api/render?s=b", json.dumps(dict(x=5, y=5)).encode())
  assert status == 200 and answer["note"] is None
  for page in ("depth.jpg", "photo.jpg"):
    with urllib.request.urlopen(f"{url}/api/{page}?s=b") as r:
      assert r.headers["Content-Type"] == "image/jpeg" and len(r.read()) > 100
