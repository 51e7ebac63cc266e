"""Quickstart: synthetic RGB-D scenes (no download), a CPU-sized Pix2Pix, train + eval + DoF
samples in at most ten minutes on a 2-core CPU.

Run:  python -m dofjax.main --config=configs/quickstart.py --workdir=/tmp/dofjax_quickstart
"""

from configs import base


def get_config(arg=None):
  """base.py scaled down to 128 px synthetic scenes; same losses and optimiser."""
  del arg
  c = base.get_config()
  c.dataset = "synthetic_rgbd/quickstart"
  c.image_size = 128
  c.load_size = 143            # 286/256 of the crop, as in the reference.
  c.model.ngf = 32
  c.model.ndf = 32
  c.model.num_downs = 7        # 128 px -> 1x1 at the bottleneck.
  c.batch_size = 4
  c.num_train_steps = 1500
  c.lr_constant_steps = 1000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.num_eval_batches = -1
  c.eval_batch_size = 8
  return c
