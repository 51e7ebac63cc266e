"""Tests of dofjax.compile_cache's stored results: keyed, atomic, and a damaged file is a miss.

(Stored compiled programs: dof_test.py; the CLI across processes and the switch that turns it all
off: render_test.py.)
"""

import os

import numpy as np
import pytest

from dofjax import compile_cache
from dofjax import errors


def _computed(calls, *arrays):
  """A compute_fn that counts its calls in `calls` (a list)."""
  def compute():
    calls.append(1)
    return arrays
  return compute


def test_stored_arrays_are_read_back_under_their_key_and_a_damaged_file_is_recomputed(tmp_path):
  folder, calls = str(tmp_path / "store"), []
  depth, filled = np.linspace(1, 2, 12, dtype=np.float32).reshape(3, 4), np.eye(3, 4, dtype=bool)
  first = compile_cache.stored_arrays(folder, "depth", "k1", _computed(calls, depth, filled))
  again = compile_cache.stored_arrays(folder, "depth", "k1", _computed(calls, depth * 0, filled))
  assert len(calls) == 1 and all(a.dtype == b.dtype for a, b in zip(again, first))
  np.testing.assert_array_equal(again[0], depth)
  np.testing.assert_array_equal(again[1], filled)
  compile_cache.stored_arrays(folder, "depth", "k2", _computed(calls, depth))  # Another key.
  assert len(calls) == 2 and len(os.listdir(folder)) == 2
  for damage in (lambda b: b[:len(b) // 2], lambda b: b[:-3] + b"xyz", lambda b: b"old" + b):
    for name in os.listdir(folder):
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        blob = f.read()
      with open(path, "wb") as f:
        f.write(damage(blob))
    out = compile_cache.stored_arrays(folder, "depth", "k1", _computed(calls, depth + 1, filled))
    np.testing.assert_array_equal(out[0], depth + 1)         # Recomputed, not an error ...
    out = compile_cache.stored_arrays(folder, "depth", "k1", _computed(calls, depth, filled))
    np.testing.assert_array_equal(out[0], depth + 1)         # ... and stored again.
  assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_an_unwritable_store_still_gives_the_result(tmp_path):
  blocked = tmp_path / "file"
  blocked.write_text("not a folder")
  calls = []
  out = compile_cache.stored_arrays(str(blocked), "depth", "k", _computed(calls, np.ones(3)))
  np.testing.assert_array_equal(out[0], np.ones(3))
  assert blocked.read_text() == "not a folder"


def test_the_off_switch_gives_no_folder(monkeypatch):
  monkeypatch.setenv(compile_cache.OFF_VARIABLE, "0")
  assert compile_cache.cache_folder() is None
  assert compile_cache.program_folder(compile_cache.cache_folder()) is None
  monkeypatch.delenv(compile_cache.OFF_VARIABLE)
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/somewhere/xla")
  assert compile_cache.program_folder(compile_cache.cache_folder()) == os.path.join(
      "/somewhere/xla", compile_cache.PROGRAMS_SUBFOLDER)


def test_a_program_read_from_jax_cache_is_used_but_only_a_fresh_compile_is_stored(tmp_path):
  # An executable that JAX's persistent cache read back, serialised again, fails in the next
  # process (kernels missing), so it must not be stored. JAX reports such a read as an event.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  x = np.arange(4, dtype=np.float32)
  trees = dict(in_tree=jax.tree_util.tree_structure(((x,), {})),
               out_tree=jax.tree_util.tree_structure(x))
  compile_fn = lambda: jax.jit(lambda v: jnp.sin(v) + 1.5).lower(x).compile()

  def from_jax_cache():
    jax.monitoring.record_event(compile_cache._XLA_CACHE_HIT_EVENT)
    return compile_fn()

  folder = str(tmp_path / "programs")
  used = compile_cache.stored_program(folder, "f", "k", from_jax_cache, **trees)
  np.testing.assert_allclose(used(x), np.sin(x) + 1.5, rtol=1e-6)
  assert not os.path.exists(folder)                        # Used, not stored.
  fresh = compile_cache.stored_program(folder, "f", "k", compile_fn, **trees)
  np.testing.assert_allclose(fresh(x), np.sin(x) + 1.5, rtol=1e-6)
  assert len(os.listdir(folder)) == 1                      # A fresh compile is stored ...
  loaded = compile_cache.stored_program(folder, "f", "k", None, **trees)
  np.testing.assert_allclose(loaded(x), np.sin(x) + 1.5, rtol=1e-6)   # ... and read back.


def test_the_folder_is_kept_under_its_size_bound_least_recently_used_first(tmp_path, monkeypatch):
  folder, calls = str(tmp_path / "store"), []
  block = np.zeros(100_000, np.float32)            # About 0.4 MB stored.
  monkeypatch.setenv(compile_cache.MAX_MB_VARIABLE, "1")
  for key in ("a", "b"):
    compile_cache.stored_arrays(folder, "depth", key, _computed(calls, block))
  os.utime(os.path.join(folder, os.listdir(folder)[0]), (1, 1))   # Both look old ...
  os.utime(os.path.join(folder, os.listdir(folder)[1]), (1, 1))
  compile_cache.stored_arrays(folder, "depth", "a", _computed(calls, block))   # ... "a" is used.
  assert len(calls) == 2
  compile_cache.stored_arrays(folder, "depth", "c", _computed(calls, block))   # Over 1 MB: ...
  assert len(os.listdir(folder)) == 2
  compile_cache.stored_arrays(folder, "depth", "a", _computed(calls, block))   # ... "a" stays,
  assert len(calls) == 3
  compile_cache.stored_arrays(folder, "depth", "b", _computed(calls, block))   # "b" went.
  assert len(calls) == 4
  monkeypatch.setenv(compile_cache.MAX_MB_VARIABLE, "inf")                     # No bound.
  assert compile_cache.max_folder_bytes() >= 2**60
  monkeypatch.setenv(compile_cache.MAX_MB_VARIABLE, "lots")
  with pytest.raises(errors.UserError, match="DOFJAX_PROGRAMS_MAX_MB='lots'.*megabytes"):
    compile_cache.program_folder(str(tmp_path))
