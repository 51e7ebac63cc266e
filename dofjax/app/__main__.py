"""python -m dofjax.app [--workdir=W] [--port=7860]: the tap-to-focus app in your browser.

Serves one page on 127.0.0.1 (this machine only): upload a photo and its depth (a 16-bit PNG in
millimetres, or predicted by the model trained in --workdir), click what should be sharp, drag
the sliders. Needs nothing beyond dofjax's own dependencies.
"""

import argparse
import os
import sys

from dofjax import errors


def _parse(argv):
  p = argparse.ArgumentParser(prog="python -m dofjax.app", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", help="Training workdir: predict depth with its latest checkpoint.")
  p.add_argument("--port", type=int, default=7860, help="Port on 127.0.0.1 (0: any free one).")
  return p.parse_args(argv[1:])


def main(argv=None):
  """Starts the server and serves until Ctrl+C; returns 0."""
  args = _parse(list(sys.argv if argv is None else argv))
  if args.workdir is not None and not os.path.isdir(args.workdir):
    raise errors.UserError(f"--workdir={args.workdir} is not a folder; pass the workdir of a "
                           "training run, or leave it out and upload depth PNGs.")
  if not 0 <= args.port < 65536:
    raise errors.UserError(f"--port must be in [0, 65535]; got {args.port}.")
  from dofjax import compile_cache
  from dofjax.app import server  # Imports jax: after the flags are checked.
  # As the photo CLI: renders are kept whole in the program folder (a restarted app loads them
  # without tracing); JAX's own cache is for the predictor (--workdir).
  folder = compile_cache.enable(xla_cache=args.workdir is not None)
  try:
    httpd = server.make_server("127.0.0.1", args.port, args.workdir,
                               programs=compile_cache.program_folder(folder))
  except OSError as e:
    raise errors.UserError(f"cannot listen on 127.0.0.1:{args.port} ({e.strerror}); pass "
                           "another --port, or --port=0 for any free one.") from None
  print(f"dofjax app: open http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl+C stops it)",
        flush=True)
  try:
    httpd.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    httpd.server_close()
  return 0


if __name__ == "__main__":
  errors.run_cli(main)
