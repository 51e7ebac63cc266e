"""Importing this module registers the dofjax builders with TFDS (`tfds.builder('diml/lr')`, ...).

DATASETS lists every 'builder/config' name they provide, e.g. 'diml/lr', 'synthetic_rgbd/tiny',
and 'rgbd_captures' (your own frames, config made per folder).
"""

from tfds_diml import diml
from tfds_diml import rgbd_captures
from tfds_diml import synthetic_rgbd

Diml = diml.Diml
RgbdCaptures = rgbd_captures.RgbdCaptures
SyntheticRgbd = synthetic_rgbd.SyntheticRgbd

DATASETS = tuple(f"{builder.name}/{config.name}" for builder in (Diml, SyntheticRgbd)
                 for config in builder.BUILDER_CONFIGS) + (
                     # Its config is made for the folder it reads (`rgbd_captures.make_config`).
                     rgbd_captures.NAME,)
