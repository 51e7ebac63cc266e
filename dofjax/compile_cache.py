"""The persistent XLA compilation cache: the one place every entry point that renders or predicts
(`python -m dofjax.render`, `python -m dofjax.app`, `python -m dofjax.main --mode=eval`) turns it
on, so a program compiled once (the renderer of a photo size, the model's predictor) is read back
from disk by every later process instead of being compiled again (seconds each).

Where: $JAX_COMPILATION_CACHE_DIR if set, else $XDG_CACHE_HOME/dofjax/xla (~/.cache/dofjax/xla).
Off: DOFJAX_COMPILATION_CACHE=0. JAX caches programs that took at least
$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS (default 1 s) to compile. docs/speed.md says more.

JAX's cache skips only XLA's compile: each process still traces and lowers the program (seconds
for the 17-layer renderer). So the photo CLI and the app keep whole compiled programs instead
(`stored_program`; JAX's cache off, `enable(xla_cache=False)`) and other per-photo results
(`stored_arrays`) in files under `<folder>/dofjax-programs` (`program_folder`), keyed on
everything they depend on; a later process loads them instead of tracing. A missing, unreadable,
corrupt or other-version file is a miss: the program is compiled (or the result computed) again
and the file rewritten. Files are written atomically. The folder is kept under
$DOFJAX_PROGRAMS_MAX_MB (default 2048) megabytes: storing a file removes the least recently used
ones beyond that (`_evict`).
"""

import contextlib
import functools
import hashlib
import os
import pickle

OFF_VARIABLE = "DOFJAX_COMPILATION_CACHE"
PROGRAMS_SUBFOLDER = "dofjax-programs"
_XLA_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"   # jax.monitoring's event name.
_MAGIC = b"dofjax-stored-v1\n"   # A stored file: magic, sha256 of key + data, key, data.
_OFF_VALUES = ("0", "off", "false", "no")
MAX_MB_VARIABLE = "DOFJAX_PROGRAMS_MAX_MB"
DEFAULT_MAX_MB = 2048


def cache_folder():
  """The cache's folder (str) from the environment, or None when DOFJAX_COMPILATION_CACHE=0."""
  if os.environ.get(OFF_VARIABLE, "").strip().lower() in _OFF_VALUES:
    return None
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(base, "dofjax", "xla")


def enable(xla_cache=True):
  """Points JAX's persistent compilation cache at `cache_folder()` (or turns it off); call it
  before the first compilation of the process. Returns the folder, or None when off.

  xla_cache False: JAX's cache stays off in this process, though the folder is still returned
  for `program_folder`: the photo CLI keeps its render whole (`stored_program`), which must
  store fresh compiles (see there)."""
  import jax  # pylint: disable=g-import-not-at-top
  folder = cache_folder()
  if folder is None or not xla_cache:
    jax.config.update("jax_enable_compilation_cache", False)
  else:
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", folder)
  return folder


def program_folder(folder):
  """The folder of stored programs and arrays (str) inside the cache folder `folder` (str, from
  `enable`), or None when `folder` is None (the cache is off). UserError when its size bound
  ($DOFJAX_PROGRAMS_MAX_MB) is not a size: said before anything is compiled."""
  if folder is None:
    return None
  max_folder_bytes()
  return os.path.join(folder, PROGRAMS_SUBFOLDER)


def environment_key():
  """What a compiled program depends on besides its own source and arguments (str): the JAX and
  jaxlib versions, the backend and its devices, XLA_FLAGS and the x64 setting."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  devices = jax.devices()
  return (f"jax {jax.__version__} jaxlib {jaxlib.__version__} {jax.default_backend()} "
          f"{devices[0].client.platform_version} {devices[0].device_kind} x{len(devices)} "
          f"x64 {jax.config.jax_enable_x64} XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}")


@functools.lru_cache(maxsize=None)
def source_digest(path):
  """sha256 (hex str) of a source file's bytes (`path`: a module's __file__), for keys that must
  change when the code that made a stored result changes."""
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def array_digest(*arrays):
  """sha256 (hex str) over numpy arrays' shapes, dtypes and bytes: a content key for inputs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.shape} {a.dtype};".encode())
    h.update(memoryview(a).cast("B"))
  return h.hexdigest()


def _path(folder, name, key):
  """(file path, key bytes) of the entry `name` (a file-name prefix) under `key` (str)."""
  key_bytes = key.encode()
  digest = hashlib.sha256(key_bytes).hexdigest()[:32]
  return os.path.join(folder, f"{name}-{digest}.bin"), key_bytes


def _read(folder, name, key):
  """The bytes (a memoryview) stored under (name, key), or None: no file, unreadable, written
  for another key, or not intact (the checksum over key and data differs)."""
  path, key_bytes = _path(folder, name, key)
  try:
    with open(path, "rb") as f:
      blob = f.read()
  except OSError:
    return None
  with contextlib.suppress(OSError):   # A read-only folder is still read.
    os.utime(path)                     # Recently used: the last to be evicted.
  head = len(_MAGIC) + 32
  if not blob.startswith(_MAGIC) or len(blob) < head + len(key_bytes):
    return None
  rest = memoryview(blob)[head:]
  if rest[:len(key_bytes)] != key_bytes or hashlib.sha256(rest).digest() != blob[len(_MAGIC):head]:
    return None
  return rest[len(key_bytes):]


def _write(folder, name, key, data):
  """Stores `data` (bytes) under (name, key) atomically (a temporary file, then os.replace).
  Returns False, storing nothing, when the folder cannot be written."""
  path, key_bytes = _path(folder, name, key)
  digest = hashlib.sha256(key_bytes)
  digest.update(data)
  tmp = f"{path}.{os.getpid()}.tmp"
  try:
    os.makedirs(folder, exist_ok=True)
    with open(tmp, "wb") as f:
      for part in (_MAGIC, digest.digest(), key_bytes, data):
        f.write(part)
    os.replace(tmp, path)
  except OSError:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    return False
  _evict(folder, keep=path)
  return True


def max_folder_bytes():
  """The program folder's size bound in bytes, from $DOFJAX_PROGRAMS_MAX_MB (default
  DEFAULT_MAX_MB); UserError unless it is a number >= 0."""
  from dofjax import errors  # pylint: disable=g-import-not-at-top
  text = os.environ.get(MAX_MB_VARIABLE, "").strip()
  try:
    megabytes = float(text) if text else DEFAULT_MAX_MB
  except ValueError:
    megabytes = -1.0
  if not megabytes >= 0:
    raise errors.UserError(f"{MAX_MB_VARIABLE}={text!r}: it must be a size in megabytes >= 0 "
                           f"(default {DEFAULT_MAX_MB}).")
  return int(min(megabytes, 2.0**40) * 2**20)     # "inf": no bound.


def _evict(folder, keep):
  """Removes the least recently used stored files (by modification time, which a read updates)
  from `folder` until the files total at most `max_folder_bytes()`; never `keep` (the path just
  written). Files other processes remove meanwhile are skipped."""
  entries = []
  with os.scandir(folder) as it:
    for entry in it:
      if entry.name.endswith(".bin") and entry.path != keep:
        with contextlib.suppress(OSError):
          stat = entry.stat()
          entries.append((stat.st_mtime, stat.st_size, entry.path))
  total = sum(size for _, size, _ in entries)
  with contextlib.suppress(OSError):
    total += os.path.getsize(keep)
  limit = max_folder_bytes()
  for _, size, path in sorted(entries):
    if total <= limit:
      break
    with contextlib.suppress(OSError):
      os.remove(path)
    total -= size


def stored_program(folder, name, key, compile_fn, in_tree, out_tree):
  """A compiled program from `folder`, or compiled now and stored there for later processes.

  Args:
    folder: str, from `program_folder`.
    name: a file-name prefix (the program's function).
    key: str naming everything the program depends on (its source, argument shapes and dtypes,
      static arguments); `environment_key()` is added here.
    compile_fn: () -> jax.stages.Compiled, called on a miss (it traces and compiles). When JAX's
      persistent cache supplies that executable, it is used but not stored: an executable read
      back from JAX's cache and serialised again lacks the kernels it had not run (jax 0.10.2,
      XLA:CPU: "NOT_FOUND: Function ..._fusion not found" in the next process). Callers that
      want it stored keep JAX's cache off (`enable(xla_cache=False)`).
    in_tree, out_tree: the program's argument pytree ((args, kwargs), static ones left out) and
      result pytree (jax.tree_util.PyTreeDef), which a stored executable does not hold.
  Returns:
    jax.stages.Compiled, called with the program's arguments (static ones left out).
  """
  from jax.experimental import serialize_executable  # pylint: disable=g-import-not-at-top
  key = f"{key}|{environment_key()}"
  blob = _read(folder, name, key)
  if blob is not None:
    try:
      return serialize_executable.deserialize_and_load(blob, in_tree, out_tree)
    except (pickle.UnpicklingError, EOFError, ValueError):   # Intact but not loadable here.
      pass
  compiled, fresh = _compile_fresh(compile_fn)
  if not fresh:
    return compiled
  try:
    blob, _, _ = serialize_executable.serialize(compiled)
  except ValueError:   # This backend cannot serialise executables: keep it in memory only.
    return compiled
  _write(folder, name, key, blob)
  return compiled


def _compile_fresh(compile_fn):
  """(compile_fn()'s result, fresh: False when JAX's persistent cache supplied an executable
  meanwhile, counted by the cache-hit event of jax.monitoring)."""
  import jax  # pylint: disable=g-import-not-at-top
  hits = []

  def listener(event, **unused_kwargs):
    if event == _XLA_CACHE_HIT_EVENT:
      hits.append(event)

  jax.monitoring.register_event_listener(listener)
  try:
    compiled = compile_fn()
  finally:
    jax.monitoring.unregister_event_listener(listener)
  return compiled, not hits


def stored_arrays(folder, name, key, compute_fn):
  """Numpy arrays from `folder`, or computed now by compute_fn() and stored there.

  folder: str, from `program_folder`; name: a file-name prefix; key: str naming everything the
  result depends on (content hashes of the inputs, the code's version); compute_fn: () -> tuple
  of numpy arrays. Returns that tuple (read back or computed)."""
  import io  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  blob = _read(folder, name, key)
  if blob is not None:
    try:
      with np.load(io.BytesIO(blob), allow_pickle=False) as stored:
        return tuple(stored[f"arr_{i}"] for i in range(len(stored.files)))
    except (ValueError, OSError, KeyError):   # Intact but not an .npz of arrays.
      pass
  arrays = tuple(compute_fn())
  buffer = io.BytesIO()
  np.savez(buffer, *arrays)
  _write(folder, name, key, buffer.getvalue())
  return arrays
