"""Where training reports go: TensorBoard event files, W/metrics.jsonl and a console line.

Only process 0 writes (`SummaryWriter(..., enabled=False)` elsewhere). `metrics.jsonl` holds one
JSON object per line: {"step": int, "split": "train" | "validation" | "test", <scalars>}.
"""

import contextlib
import json
import sys
import time

import numpy as np
from etils import epath

# The metrics.jsonl / TensorBoard key of the training rate (steps per second of training only).
THROUGHPUT_KEY = "steps_per_second"


def format_duration(seconds: float) -> str:
  """Seconds -> 'h:mm:ss' or 'm:ss'."""
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _JsonLines:
  """Appends lines to a local file; on object stores (gs://), which cannot append, keeps the
  file's lines and rewrites it whole on each flush."""

  def __init__(self, path):
    self._path = epath.Path(path)
    self._remote = "://" in str(path)
    if self._remote:
      self._lines = self._path.read_text().splitlines(True) if self._path.exists() else []
    else:
      self._file = self._path.open("a")

  def write(self, line: str) -> None:
    if self._remote:
      self._lines.append(line)
    else:
      self._file.write(line)

  def flush(self) -> None:
    if self._remote:
      self._path.write_text("".join(self._lines))
    else:
      self._file.flush()

  def close(self) -> None:
    self.flush()
    if not self._remote:
      self._file.close()


class SummaryWriter:
  """Writes scalars and images to TensorBoard and metrics.jsonl in `workdir`, and progress lines."""

  def __init__(self, workdir, enabled: bool = True):
    self.enabled = enabled
    self._tb = None
    self._jsonl = None
    if enabled:
      from tensorboardX import SummaryWriter as TBWriter
      workdir = epath.Path(workdir)
      self._tb = TBWriter(logdir=str(workdir), flush_secs=30)
      self._jsonl = _JsonLines(workdir / "metrics.jsonl")

  def scalars(self, step: int, split: str, values: dict) -> None:
    """Writes each scalar as `<split>/<name>` to TensorBoard and one line to metrics.jsonl."""
    if not self.enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in values.items()}
    for name, value in clean.items():
      self._tb.add_scalar(f"{split}/{name}", value, step)
    self._jsonl.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
    self._jsonl.flush()

  def image(self, step: int, tag: str, image_uint8) -> None:
    """One (H, W, 3) uint8 image to TensorBoard."""
    if self.enabled:
      self._tb.add_image(tag, np.asarray(image_uint8), step, dataformats="HWC")

  def flush(self) -> None:
    if self.enabled:
      self._tb.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self.enabled:
      self._tb.close()
      self._jsonl.close()
      self.enabled = False


class Progress:
  """Console progress: step, chosen scalars, steps/s over the last interval, ETA."""

  def __init__(self, total_steps: int, start_step: int, enabled: bool = True, stream=None):
    self.total = total_steps
    self.enabled = enabled
    self.stream = stream or sys.stdout
    self._last_step = start_step
    self._last_time = time.perf_counter()

  def steps_per_second(self, step: int) -> float:
    """Rate since the previous call (resets the interval)."""
    now = time.perf_counter()
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    return rate

  @contextlib.contextmanager
  def paused(self):
    """Within this block the clock stops: its time does not count in the next steps/s."""
    began = time.perf_counter()
    try:
      yield
    finally:
      self._last_time += time.perf_counter() - began

  def line(self, step: int, values: dict, rate: float) -> None:
    """Prints 'step 120/1500  g_loss 3.21  ...  4.2 steps/s  ETA 5:28'."""
    if not self.enabled:
      return
    parts = [f"step {step}/{self.total}"]
    parts += [f"{k} {float(v):.4g}" for k, v in values.items()]
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    parts.append(f"{rate:.2f} steps/s" if np.isfinite(rate) else "compiled")
    parts.append(f"ETA {format_duration(eta) if np.isfinite(eta) else '?'}")
    print("  ".join(parts), file=self.stream, flush=True)

  def message(self, text: str) -> None:
    if self.enabled:
      print(text, file=self.stream, flush=True)
