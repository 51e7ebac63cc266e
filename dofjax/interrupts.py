"""Stop requests: SIGTERM and Ctrl-C become a flag the training loop checks between steps, so
it can save a checkpoint and leave cleanly instead of dying mid-write."""

import signal
import threading

import jax


class StopRequest:
  """Context manager: while active, SIGTERM / SIGINT set `signal_name` instead of killing.

  A second Ctrl-C raises KeyboardInterrupt at once. Single process only: with several processes
  a flag set on one of them would make them part ways (one saves and leaves, the others wait for
  it forever), so there SIGTERM is left to jax's preemption service, which agrees on a step for
  all (orbax's `manager.reached_preemption`).
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signal_name is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # A second Ctrl-C stops at once.
    self.signal_name = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
