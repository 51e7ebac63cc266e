"""How dofjax stops: exception types for the user's mistakes, and the exit statuses of its CLIs.

Raise `UserError` (or a subclass) with a message that says what is wrong and how to fix it. The
command-line entry points catch it, print the message alone (no traceback) and exit with the
error's `exit_status`. Anything else is a bug and surfaces with its traceback (exit status 1).

Exit statuses (documented in the README):
  0   finished
  1   a bug (Python's traceback)
  2   usage or data error: a config value, a flag, a path, a file's contents (`UserError`)
  3   training diverged: a non-finite loss or gradient with on_nonfinite='stop'
  75  stopped by a signal or a preemption notice after saving a checkpoint: run the same
      command again to resume (EX_TEMPFAIL of sysexits.h)
"""

import sys

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_RESUMABLE = 75


class UserError(Exception):
  """Bad input from the user: a config value, a path, a file's contents. Message = the fix."""
  exit_status = EXIT_USAGE


class DataError(UserError):
  """A dataset file or folder is missing, unreadable or inconsistent; the message names the path."""


class TrainingDiverged(UserError):
  """A loss or gradient became non-finite and config.on_nonfinite == 'stop'."""
  exit_status = EXIT_DIVERGED


class StoppedResumable(UserError):
  """The run stopped early on request (SIGTERM, SIGINT, a preemption notice) with its work saved;
  rerunning the same command resumes it."""
  exit_status = EXIT_RESUMABLE


def run_cli(main_fn, argv=None):
  """Calls main_fn(argv); turns a UserError into one line on stderr and its exit status."""
  try:
    return main_fn(argv)
  except UserError as e:
    print(str(e) if isinstance(e, StoppedResumable) else f"error: {e}", file=sys.stderr)
    sys.exit(e.exit_status)
