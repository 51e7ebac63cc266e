"""The 8-device tests of multidevice_test.py, run from the everyday test command.

jax fixes its device count when it is imported, so those tests need a process started with
JAX_NUM_CPU_DEVICES=8. This test starts one; under pytest-xdist it then runs beside the other
tests instead of after them.
"""

import os
import re
import subprocess
import sys

import jax
import pytest

from conftest import MULTIDEVICE_DEVICES  # tests/ is on sys.path under pytest.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_multidevice_tests_pass_on_eight_fake_cpu_devices():
  if jax.device_count() >= MULTIDEVICE_DEVICES:
    pytest.skip("this process already has 8 devices: multidevice_test.py runs here directly")
  env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(MULTIDEVICE_DEVICES), PYTHONPATH=ROOT)
  proc = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-m", "multidevice and not slow", "-p",
       "no:cacheprovider", os.path.join(ROOT, "tests", "multidevice_test.py")],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
  # A crash (e.g. SIGABRT) logs its cause long before Python's thread dump: keep those lines.
  before_dump = proc.stderr.split("Fatal Python error")[0].splitlines()
  fatal = [line for line in before_dump
           if re.match(r"[FE]\d{4} ", line) or "Check failed" in line or "terminate" in line]
  assert proc.returncode == 0, ("\n".join(fatal[-20:] + before_dump[-15:]) + "\n"
                                + proc.stdout[-4000:] + proc.stderr[-2000:])
  assert "passed" in summary and "skipped" not in summary, summary
