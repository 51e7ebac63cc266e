"""Quickstart: synthetic RGB-D scenes (no download), a CPU-sized Pix2Pix, train + eval + DoF
samples in at most ten minutes on a 2-core CPU.

Run:  python -m dofjax.main --config=configs/quickstart.py --workdir=/tmp/dofjax_quickstart
"""

from configs import base


def get_config(arg=None):
  """base.py scaled down to 128 px synthetic scenes (`base.shrink_to_quickstart`); same losses
  and optimiser."""
  del arg
  return base.shrink_to_quickstart(base.get_config())
