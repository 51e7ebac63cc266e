"""The tap-to-focus app's web glue: a standard-library HTTP server for one page (page.html).

Each browser tab is a session (an id the page makes) holding its photo and depth. The page
sends uploads as raw request bodies and settings as JSON; renders come back as JPEG data URLs,
the full-resolution result as the PNG the CLI would write. A UserError becomes a 400 answer with
its message, shown in the page; the server keeps running. Renders run one at a time (they use
every core); a request older than the newest one of its tab is answered `stale` unrendered, so the
newest setting always wins. From the first render request for new depth on, a background thread
compiles the renders the tab will likely need (`start_warm_up`), yielding to the tab's requests.
"""

import base64
import collections
import dataclasses
import http.server
import json
import os
import shlex
import threading
import time
import urllib.parse

from dofjax import app as app_lib
from dofjax import errors

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MAX_SESSIONS = 4          # Tabs whose photos stay in memory; the oldest is dropped first.
WARM_UP_IDLE_S = 1.0      # The warm-up starts a compile only after this long without requests.
_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")


@dataclasses.dataclass
class Session:
  """One tab's state: the photo (float32 HxWx3 [0, 1]) and its depth (HxW m), their previews,
  and the last full-size render (float32 HxWx3 [0, 1]; its PNG is made when saved)."""
  image: object = None
  bits: int = 8
  name: str = "photo"
  depth_m: object = None
  filled: object = None
  depth_flags: tuple = ()
  small: tuple = None
  full: object = None
  newest: int = -1          # The highest request number (the page's `seq`) seen.
  generation: int = 0       # Bumped by each new depth: stops the previous warm-up.
  warmed: int = 0           # The generation whose warm-up was started.
  warm_left: int = 0        # Programs the warm-up has yet to compile.


class AppState:
  """Sessions (at most MAX_SESSIONS, least recently used dropped) and the render lock."""

  def __init__(self, workdir=None, warm_up=True, programs=None):
    self.workdir = workdir
    self.warm_up = warm_up             # Whether new depth starts `start_warm_up`.
    self.programs = programs           # Folder of stored compiled programs, or None.
    self.sessions = collections.OrderedDict()
    self.lock = threading.Lock()       # Guards `sessions`, `waiting` and `newest`.
    self.render_lock = threading.Lock()
    self.waiting = 0                   # Page requests waiting for or holding render_lock.
    self.idle_since = time.monotonic()   # When the last page request was answered.
    self.compiled = set()              # app.plan_key's of the programs compiled so far.

  def session(self, sid, create=False):
    """The session `sid`; a new one if `create`, else UserError if unknown."""
    with self.lock:
      if sid in self.sessions:
        self.sessions.move_to_end(sid)
        return self.sessions[sid]
      if not create:
        raise errors.UserError("upload a photo first (or reload the page: the server restarted).")
      self.sessions[sid] = Session()
      while len(self.sessions) > MAX_SESSIONS:
        self.sessions.popitem(last=False)
      return self.sessions[sid]


def set_photo(state, sid, data, name):
  """Reads an uploaded photo (and a HEIC's own depth) into a fresh session; returns its size,
  whether it brought depth and its EXIF lens as a dict."""
  image, bits, own_depth, lens = app_lib.read_photo_upload(data, name)
  s = state.session(sid, create=True)
  s.image, s.bits, s.name, s.depth_m, s.small, s.full = image, bits, name, None, None, None
  if own_depth is not None:
    set_depth(s, own_depth, [])
  return dict(width=image.shape[1], height=image.shape[0], bits=bits,
              depth=own_depth is not None, focal_length_mm=lens and lens[0],
              lens_source=lens and lens[1])


def set_depth(session, depth_m, depth_flags):
  """Stores a depth map (HxW m), the CLI flags that give the same depth, and the reduced-size
  inputs of previews."""
  depth_m, session.filled = app_lib.complete(session.image, depth_m)
  session.depth_m, session.depth_flags = depth_m, tuple(depth_flags)
  session.small = app_lib.preview_inputs(session.image, depth_m)
  session.full = None
  session.generation += 1


def start_warm_up(state, session, settings=None):
  """Compiles, on a daemon thread, the programs of app.warm_up_keys for the session's photo
  (settings: the page's first request; None: the centre in focus; the thread stops when new depth
  arrives). Each program is compiled (not run) when no page request waits; returns the
  thread."""
  h, w = session.depth_m.shape
  settings = settings or app_lib.Settings(x=w // 2, y=h // 2)
  generation = session.generation
  session.warm_left = 1

  def work():
    keys = app_lib.warm_up_keys(session.depth_m, session.small[1], settings)
    session.warm_left = len(keys)
    for key in keys:
      # The page's own requests first, and the burst a click or a release sends (preview, then
      # full size) as a whole.
      while state.waiting or time.monotonic() - state.idle_since < WARM_UP_IDLE_S:
        time.sleep(0.05)
      if session.generation != generation:
        return
      if key not in state.compiled:
        # Compiling needs no render lock: a request that comes meanwhile renders at once
        # (sharing the cores with the compile, which mostly uses one).
        app_lib.warm_up(key, state.programs)
        state.compiled.add(key)
      session.warm_left -= 1

  thread = threading.Thread(target=work, name="dofjax-warm-up", daemon=True)
  thread.start()
  return thread


def render(state, session, fields):
  """Preview or full-size render for the page's fields: a JSON-able dict with a JPEG data URL."""
  if session.depth_m is None:
    raise errors.UserError("add depth first: upload a 16-bit depth PNG in millimetres"
                           + (" or press 'Predict depth'." if state.workdir else "."))
  settings = app_lib.parse_settings(fields)
  full = bool(fields.get("full"))
  seq = fields.get("seq")
  if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
    raise errors.UserError(f"seq must be an integer (the page's request number); got {seq!r}.")
  with state.lock:
    session.newest = max(session.newest, -1 if seq is None else seq)
    state.waiting += 1
    warm = state.warm_up and session.warmed != session.generation
    session.warmed = session.generation
  if warm:    # The first render of new depth: prepare the likely next ones meanwhile.
    start_warm_up(state, session, settings)
  try:
    with state.render_lock:
      if seq is not None and seq < session.newest:
        return dict(stale=True, seq=seq)
      t0 = time.perf_counter()
      if full:
        out, info = app_lib.render_full(session.image, session.depth_m, settings, state.programs)
      else:
        out, info = app_lib.render_preview(*session.small, session.depth_m, settings,
                                           state.programs)
      seconds = time.perf_counter() - t0
      key = (info["height"], info["width"], info["max_radius"], settings.blades,
             settings.highlights)
      compiled = key not in state.compiled     # This request compiled its program.
      state.compiled.add(key)
  finally:
    with state.lock:
      state.waiting -= 1
      state.idle_since = time.monotonic()
  if full:
    session.full = out
  data = base64.b64encode(app_lib.jpeg(out)).decode("ascii")
  stem = os.path.splitext(os.path.basename(session.name))[0] or "photo"
  cli = app_lib.cli_args(settings, photo=os.path.basename(session.name),
                         depth_flags=session.depth_flags, output=f"{stem}-bokeh.png")
  return dict(image="data:image/jpeg;base64," + data, full=full, seconds=round(seconds, 3),
              seq=seq, compiled=compiled,
              note=app_lib.focus_note(session.depth_m, session.filled, settings),
              focus_m=info["focus_m"], max_radius=info["max_radius"], width=info["width"],
              height=info["height"], cli="python -m dofjax.render " + shlex.join(cli))


class Handler(http.server.BaseHTTPRequestHandler):
  """Routes: GET / (the page), /api/status, /api/depth.jpg, /api/download; POST /api/config, /api/photo,
  /api/depth, /api/predict, /api/render. Session id and options in the query string."""

  state: AppState = None   # Set by `make_server`.

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    del format, args   # Quiet: the terminal shows errors only.

  def _reply(self, code, body, ctype, extra=()):
    self.send_response(code)
    self.send_header("Content-Type", ctype)
    self.send_header("Content-Length", str(len(body)))
    self.send_header("Cache-Control", "no-store")
    for key, value in extra:
      self.send_header(key, value)
    self.end_headers()
    self.wfile.write(body)

  def _json(self, obj, code=200):
    self._reply(code, json.dumps(obj).encode(), "application/json")

  def _query(self):
    parsed = urllib.parse.urlparse(self.path)
    return parsed.path, {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}

  def _body(self):
    size = int(self.headers.get("Content-Length") or 0)
    if size > MAX_UPLOAD_BYTES:
      raise errors.UserError(f"the upload is {size / 2**20:.0f} MiB; the limit is "
                             f"{MAX_UPLOAD_BYTES / 2**20:.0f} MiB.")
    return self.rfile.read(size)

  def do_GET(self):  # pylint: disable=invalid-name
    path, q = self._query()
    try:
      if path == "/":
        with open(_PAGE, "rb") as f:
          self._reply(200, f.read(), "text/html; charset=utf-8")
      elif path == "/api/status":
        s = self.state.session(q.get("s"))
        self._json({"warming": s.warm_left, "waiting": self.state.waiting})
      elif path == "/api/depth.jpg":
        s = self.state.session(q.get("s"))
        self._reply(200, app_lib.depth_preview(s.depth_m, filled=s.filled), "image/jpeg")
      elif path == "/api/photo.jpg":
        s = self.state.session(q.get("s"))
        self._reply(200, app_lib.photo_preview(s.image), "image/jpeg")
      elif path == "/api/download":
        s = self.state.session(q.get("s"))
        if s.full is None:
          raise errors.UserError("nothing to save yet: wait for the full-size render.")
        stem = os.path.splitext(os.path.basename(s.name))[0] or "photo"
        self._reply(200, app_lib.result_png(s.full, s.bits), "image/png",
                    [("Content-Disposition", f'attachment; filename="{stem}-bokeh.png"')])
      else:
        self._json({"error": f"no page {path!r}"}, 404)
    except errors.UserError as e:
      self._json({"error": str(e)}, 400)

  def do_POST(self):  # pylint: disable=invalid-name
    path, q = self._query()
    try:
      body = self._body()
      sid = q.get("s")
      if path == "/api/config":
        self._json({"workdir": self.state.workdir})
      elif path == "/api/photo":
        self._json(set_photo(self.state, sid, body, q.get("name", "photo")))
      elif path == "/api/depth":
        s, name, resample = self.state.session(sid), q.get("name", "depth.png"), q.get("resample")
        set_depth(s, app_lib.read_depth_bytes(body, s.image.shape[:2], resample == "1", name),
                  [f"--depth={os.path.basename(name)}"]
                  + (["--resize_depth"] if resample == "1" else []))
        self._json({"ok": True})
      elif path == "/api/predict":
        s = self.state.session(sid)
        with self.state.render_lock:
          set_depth(s, app_lib.depth_from_model(self.state.workdir, s.image),
                    [f"--workdir={self.state.workdir}"])
        self._json({"ok": True})
      elif path == "/api/render":
        self._json(render(self.state, self.state.session(sid), json.loads(body or b"{}")))
      else:
        self._json({"error": f"no action {path!r}"}, 404)
    except errors.UserError as e:
      self._json({"error": str(e)}, 400)


def make_server(host, port, workdir=None, warm_up=True, programs=None):
  """A ThreadingHTTPServer for the app on host:port (port 0: a free one); warm_up: compile each
  photo's likely programs in the background when its depth arrives; programs: None, or the folder
  of stored compiled programs (`compile_cache.program_folder`) that renders load and store."""
  handler = type("AppHandler", (Handler,), {"state": AppState(workdir, warm_up, programs)})
  return http.server.ThreadingHTTPServer((host, port), handler)
