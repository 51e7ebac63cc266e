"""python -m dofjax.export's refusals that need no converter: each is one `error:` line and exit
status 2, before anything is loaded. (The exports themselves: export_test.py, `-m export`.)"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs the CLI with the extra's imports failing, as in an install without it (the core install
# has none of the three).
_WITHOUT_EXTRA = ("import sys; sys.modules.update(onnx=None, onnxruntime=None, jax2onnx=None); "
                  "from dofjax import errors, export; errors.run_cli(export.main, sys.argv)")


def _run(args, code=None):
  env = dict(os.environ, PYTHONPATH=ROOT)
  cmd = [sys.executable] + (["-c", code] if code else ["-m", "dofjax.export"])
  return subprocess.run(cmd + args, cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)


def test_unknown_extension_is_one_error_line(tmp_path):
  proc = _run([f"--workdir={tmp_path}", f"--output={tmp_path / 'depth.pb'}"])
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      f"error: --output={str(tmp_path / 'depth.pb')!r} must end in .onnx (ONNX Runtime, mobile "
      "and web)."], proc.stderr


def test_tflite_says_it_is_not_built(tmp_path):
  proc = _run([f"--workdir={tmp_path}", f"--output={tmp_path / 'depth.onnx'}",
               f"--renderer_output={tmp_path / 'r.tflite'}"])
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: --renderer_output="), proc.stderr
  assert ".tflite is not built (docs/phone.md" in lines[0]


def test_missing_extra_names_it(tmp_path):
  proc = _run([f"--workdir={tmp_path}", f"--output={tmp_path / 'depth.onnx'}"], _WITHOUT_EXTRA)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines() == [
      "error: exporting needs the ONNX converter and runtime (onnx is not installed); "
      "install them with pip install -e '.[export]'."], proc.stderr
  assert not (tmp_path / "depth.onnx").exists()
