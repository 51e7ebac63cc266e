"""Benchmarks: `python -m dofjax.benchmark {train,dof,data,export} [flags]`.

Each subcommand lives in its own module (`dofjax.bench_train`, `dofjax.bench_dof`,
`dofjax.bench_data`, `dofjax.bench_export`) with a `main(argv)`; each prints human-readable
figures and, as its last line, one JSON object with the headline numbers.
"""

import importlib
import sys

from dofjax import errors

SUBCOMMANDS = ("train", "dof", "data", "export")


def main(argv=None):
  """Dispatches argv[1] (one of SUBCOMMANDS) to dofjax.bench_<name>.main(argv[1:])."""
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
    raise errors.UserError(
        f"usage: python -m dofjax.benchmark {{{','.join(SUBCOMMANDS)}}} [flags]; "
        f"got {argv[1:2] or 'nothing'}.")
  module = importlib.import_module(f"dofjax.bench_{argv[1]}")
  return module.main([f"{argv[0]} {argv[1]}"] + argv[2:])


if __name__ == "__main__":
  errors.run_cli(main)
