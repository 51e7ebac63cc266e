"""The longer CPU recipe: the quickstart (its model, augmentation and scale-invariant log-depth
term) on 8x more furnished rooms (synthetic_rgbd/rooms_large, 3000 frames), trained about 14x
longer. Meant for about 2 hours on a 2-core CPU, data generation included (about 8-11 minutes
of it); measured at 1.8-1.9 steps/s, its 21k steps take nearer 3 hours (README, "Real frames").

Run:  python -m dofjax.main --config=configs/synthetic_long.py --workdir=workdirs/synthetic_long
"""

from configs import quickstart


def get_config(arg=None):
  """configs/quickstart.py on synthetic_rgbd/rooms_large, 21k steps (constant for 14k)."""
  del arg
  c = quickstart.get_config()
  c.dataset = "synthetic_rgbd/rooms_large"
  c.num_train_steps = 21_000
  c.lr_constant_steps = 14_000
  c.eval_every_steps = 3_000
  c.checkpoint_every_steps = 3_000
  return c
