"""Train or evaluate Pix2Pix depth.

  python -m dofjax.main --config=configs/base.py --workdir=W [--config.batch_size=8]
  python -m dofjax.main --config=configs/base.py --workdir=W --mode=eval

Exit statuses: see dofjax.errors (0 done, 2 usage or data error, 3 diverged, 75 stopped and
resumable: run the same command again).
"""

import os
import re
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from dofjax import errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/base.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints and summaries.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"],
                          "'train' (resumes automatically) or 'eval' (latest checkpoint, test split).")


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"Unexpected arguments: {' '.join(argv[1:])}.")
  from dofjax import distributed, evaluation, train
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Keep orbax/TFDS INFO chatter out of the progress.
  distributed.initialize_if_needed()
  config = _CONFIG.value
  if _MODE.value == "eval":
    from dofjax import compile_cache
    compile_cache.enable()
    result = evaluation.evaluate_checkpoint(config, _WORKDIR.value, split="test")
    print(f"Test metrics at step {result['step']} written to {_WORKDIR.value}/eval_test.json:")
    for k, v in result["metrics"].items():
      print(f"  {k:16s} {v:.4f}")
    table = evaluation.baseline_table(result["metrics"])
    if table:
      print(f"\nThe model against a constant depth (median-scaled: each map scaled so its median "
            f"matches the true depth's; the honest comparison on another camera's frames), "
            f"{result['dataset']}:\n{table}")
  else:
    train.train_and_evaluate(config, _WORKDIR.value)


def _config_path(argv):
  """The file named by --config=PATH[:arg] (or --config PATH) in argv, or None."""
  for i, arg in enumerate(argv[1:], start=1):
    if arg.startswith("--config="):
      return arg[len("--config="):].split(":")[0]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1].split(":")[0]
  return None


def _fail(message):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(errors.EXIT_USAGE)


def parse_flags(argv):
  """absl's flag parsing, with a missing --config file, an unknown --config.<field> or any other
  bad flag reported as one `error:` line (exit status 2) instead of a traceback."""
  path = _config_path(argv)
  if path is not None and not os.path.isfile(path):
    _fail(f"--config={path}: no such file. Pass a config file, e.g. --config=configs/base.py "
          "(the configs are in the repository's configs/ folder).")
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(f"{e}. Pass --help to see the flags.")
  except (AttributeError, KeyError) as e:
    # ml_collections reports an unknown --config.<field> like this, naming the field in quotes
    # and adding a "did you mean".
    message = e
    while isinstance(message, BaseException) and message.args:  # AttributeError(KeyError(str)).
      message = message.args[0]
    field = re.search(r"'(\w+)'", str(message))
    bad = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and field
           and a.split("=")[0].endswith("." + field.group(1))]
    if not bad:
      raise
    suggestion = re.search(r'Did you mean "([^"]+)"', str(message))
    fix = "."
    if suggestion:
      fix = f"; did you mean {bad[0].rsplit('.', 1)[0]}.{suggestion.group(1)}?"
    _fail(f"{bad[0]}: no such field in the config{fix} The fields are those of the config file "
          "(configs/base.py lists them all).")


def _run(argv):
  """main() with UserError turned into one 'error:' line and its exit status."""
  errors.run_cli(main, argv)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(_run, flags_parser=parse_flags)
