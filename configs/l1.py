"""Ablation arm: L1 only (no discriminator is built or stepped). Otherwise exactly base.py."""

from configs import base


def get_config(arg=None):
  """base.py with loss.arm='l1'; `configs/l1.py:synthetic` runs it at quickstart size."""
  c = base.get_config(arg)
  c.loss.arm = "l1"
  return c

