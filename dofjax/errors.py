"""The one exception type for bad user input.

Raise `UserError` (or a subclass) with a message that says what is wrong and how to fix it. The
command-line entry points catch it, print the message alone (no traceback) and exit with status 2.
"""

import sys


class UserError(Exception):
  """Bad input from the user: a config value, a path, a file's contents. Message = the fix."""


class DataError(UserError):
  """A dataset file or folder is missing, unreadable or inconsistent; the message names the path."""


def run_cli(main_fn, argv=None):
  """Calls main_fn(argv); turns a UserError into one line on stderr and exit status 2."""
  try:
    return main_fn(argv)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
