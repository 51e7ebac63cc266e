"""Ablation arm: cGAN + L1 + the bokeh term, i.e. training through the differentiable renderer
(loss.bokeh_weight = lambda_l1: L1 between depth-of-field previews rendered from predicted and
from true depth). Otherwise exactly base.py."""

from configs import base


def get_config(arg=None):
  """base.py with loss.bokeh_weight=100; `configs/bokeh.py:synthetic` runs it at quickstart
  size."""
  c = base.get_config(arg)
  c.loss.bokeh_weight = 100.0
  return c
