"""Train or evaluate Pix2Pix depth.

  python -m dofjax.main --config=configs/base.py --workdir=W [--config.batch_size=8]
  python -m dofjax.main --config=configs/base.py --workdir=W --mode=eval
"""

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
  from dofjax import distributed, train
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Keep orbax/TFDS INFO chatter out of the progress.
  distributed.initialize_if_needed()
  config = _CONFIG.value
  if _MODE.value == "eval":
    result = train.evaluate_checkpoint(config, _WORKDIR.value, split="test")
    print(f"Test metrics at step {result['step']} written to {_WORKDIR.value}/eval_test.json:")
    for k, v in result["metrics"].items():
      print(f"  {k:12s} {v:.4f}")
  else:
    train.train_and_evaluate(config, _WORKDIR.value)


def _run(argv):
  """main() with UserError turned into one 'error:' line and exit status 2."""
  errors.run_cli(main, argv)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(_run)
