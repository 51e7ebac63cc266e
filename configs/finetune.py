"""Fine-tune a quickstart-sized model on your own RGB-D captures (docs/own-data.md).

Pretrain on the synthetic rooms, then fine-tune on a folder of your frames in any supported
layout:
  python -m dofjax.main --config=configs/quickstart.py --workdir=workdirs/quickstart
  python -m dofjax.main --config=configs/finetune.py --workdir=workdirs/mine \
      --config.init_from=workdirs/quickstart --config.manual_dir=/path/to/my_frames
(`configs/synthetic_long.py` is the better, 2-hour starting point; its model is the same.)
"""

from configs import quickstart


def get_config(arg=None):
  """configs/quickstart.py (same model, losses and augmentation) on dataset=rgbd_captures,
  started from config.init_from (set it on the command line), at half the learning rate for
  800 steps (about one pass over 3,000 frames at batch 4), constant for the first 400."""
  del arg
  c = quickstart.get_config()
  c.dataset = "rgbd_captures"
  c.eval_dataset = ""            # Your held-out folders (the validation split).
  c.init_from = ""               # The pretrained workdir: --config.init_from=W.
  c.init_discriminator = True    # Keep the trained discriminator with the trained generator.
  c.learning_rate = 1e-4
  c.num_train_steps = 800
  c.lr_constant_steps = 400
  return c
