"""Ablation arm: cGAN only (lambda_L1 unused). Otherwise exactly base.py."""

from configs import base


def get_config(arg=None):
  """base.py with loss.arm='cgan'; `configs/cgan.py:synthetic` runs it at quickstart size."""
  c = base.get_config(arg)
  c.loss.arm = "cgan"
  return c

