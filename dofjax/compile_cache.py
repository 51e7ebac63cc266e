"""The persistent XLA compilation cache: the one place every entry point that renders or predicts
(`python -m dofjax.render`, `python -m dofjax.app`, `python -m dofjax.main --mode=eval`) turns it
on, so a program compiled once (the renderer of a photo size, the model's predictor) is read back
from disk by every later process instead of being compiled again (seconds each).

Where: $JAX_COMPILATION_CACHE_DIR if set, else $XDG_CACHE_HOME/dofjax/xla (~/.cache/dofjax/xla).
Off: DOFJAX_COMPILATION_CACHE=0. JAX caches programs that took at least
$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS (default 1 s) to compile. docs/speed.md says more.
"""

import os

OFF_VARIABLE = "DOFJAX_COMPILATION_CACHE"
_OFF_VALUES = ("0", "off", "false", "no")


def cache_folder():
  """The cache's folder (str) from the environment, or None when DOFJAX_COMPILATION_CACHE=0."""
  if os.environ.get(OFF_VARIABLE, "").strip().lower() in _OFF_VALUES:
    return None
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(base, "dofjax", "xla")


def enable():
  """Points JAX's persistent compilation cache at `cache_folder()` (or turns it off); call it
  before the first compilation of the process. Returns the folder, or None when off."""
  import jax  # pylint: disable=g-import-not-at-top
  folder = cache_folder()
  if folder is None:
    jax.config.update("jax_enable_compilation_cache", False)
  else:
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", folder)
  return folder
