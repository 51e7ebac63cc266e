"""Shared pytest fixtures."""

import os
import sys

import pytest

# Make the repository importable (dofjax, tfds_diml, configs) however pytest is started.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

# Tests compile many small programs and run each a few times, so compile time is what counts:
# without LLVM's optimisations a tiny train step compiles in ~7 s of CPU instead of ~16 s, and
# with XLA:CPU's older loop emitters for fusions instead of its MLIR fusion emitters the tiny
# U-Net's value-and-grad compiles in ~0.5 s instead of ~2.5 s. The CLI subprocesses inherit
# this. XLA:CPU also aborts the process (SIGABRT) when the participants of a collective have not
# all arrived within its timeouts; they are raised to 10 minutes so that a loaded machine cannot
# trip them (a real deadlock still fails, at the multidevice run's own 15-minute limit). The
# aborts seen under heavy load on 2026-12-03 were such a deadlock, since fixed: seven devices
# waiting in a pmap's all-reduce for an eighth whose launch could not be admitted
# (`parallel.unreplicate` explains it). Set XLA_FLAGS yourself to override all of it.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
    " --xla_cpu_collective_call_terminate_timeout_seconds=600"
    " --xla_cpu_collective_timeout_seconds=600")

# One persistent XLA compilation cache for the whole session, inherited by the CLI subprocesses
# the tests start: the same tiny train/eval steps are compiled once, not once per process.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  import atexit  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="dofjax-test-xla-cache-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir (str, usable as config.data_dir) holding synthetic_rgbd/tiny, prepared
  once per test session: 48x64 frames, 16 train / 4 validation / 4 test examples."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import input_pipeline  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.data_dir = str(tmp_path_factory.mktemp("tfds_synthetic"))
  input_pipeline.prepare(config)
  return config.data_dir


MULTIDEVICE_DEVICES = 8


# The longest tests, started first so that pytest-xdist's workers do not end on them.
RUN_FIRST = ("multidevice_run_test.py", "real_frames_test.py")


def pytest_collection_modifyitems(config, items):
  """Starts the RUN_FIRST modules first; skips tests marked `multidevice` unless jax sees 8
  devices (JAX_NUM_CPU_DEVICES=8)."""
  del config
  items.sort(key=lambda item: item.nodeid.split("::")[0].rsplit("/", 1)[-1] not in RUN_FIRST)
  marked = [item for item in items if item.get_closest_marker("multidevice")]
  if not marked:
    return
  import jax  # pylint: disable=g-import-not-at-top
  if jax.device_count() >= MULTIDEVICE_DEVICES:
    return
  skip = pytest.mark.skip(reason=f"needs {MULTIDEVICE_DEVICES} devices, jax sees "
                                 f"{jax.device_count()}; run with JAX_NUM_CPU_DEVICES=8")
  for item in marked:
    item.add_marker(skip)
