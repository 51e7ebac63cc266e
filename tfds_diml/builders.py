"""Importing this module registers the dofjax builders with TFDS (`tfds.builder('diml/lr')`, ...).

DATASETS lists every 'builder/config' name they provide, e.g. 'diml/lr', 'synthetic_rgbd/tiny'.
"""

from tfds_diml import diml
from tfds_diml import synthetic_rgbd

Diml = diml.Diml
SyntheticRgbd = synthetic_rgbd.SyntheticRgbd

DATASETS = tuple(f"{builder.name}/{config.name}" for builder in (Diml, SyntheticRgbd)
                 for config in builder.BUILDER_CONFIGS)
