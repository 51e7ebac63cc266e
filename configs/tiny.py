"""Tiny: seconds on a CPU, for the tests. Same code paths as base.py."""

from configs import base


def get_config(arg=None):
  """base.py shrunk to 32 px synthetic images and a few steps."""
  del arg
  c = base.get_config()
  c.dataset = "synthetic_rgbd/tiny"
  c.image_size = 32
  c.load_size = 36
  c.model.ngf = 8
  c.model.ndf = 8
  c.model.num_downs = 5
  c.model.n_layers = 2
  # XLA's own convolutions compile in about half the time of the CPU 'matmul' form; the two are
  # checked against each other in tests/layers_test.py.
  c.model.conv_impl = "xla"
  c.batch_size = 2
  c.num_train_steps = 6
  c.lr_constant_steps = 3
  c.log_every_steps = 2
  c.eval_every_steps = 3
  c.checkpoint_every_steps = 3
  c.num_eval_batches = 2
  c.eval_batch_size = 2
  c.num_image_summaries = 2
  c.num_samples = 2
  return c
