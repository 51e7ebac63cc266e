"""TFDS builders for dofjax; importing this package registers them with TFDS.

  diml/lr, diml/hr                 DIML/CVL RGB-D indoor (manual download), `tfds_diml.diml`.
  synthetic_rgbd/<config>          procedural RGB-D scenes with exact depth (no download),
                                   `tfds_diml.synthetic_rgbd`; configs tiny, quickstart,
                                   diml_lr_like, dof_tiny, dof.

Both store PNG bytes in array_record files and are read with `tfds.data_source`; neither needs
TensorFlow.
"""

from tfds_diml import diml
from tfds_diml import synthetic_rgbd

Diml = diml.Diml
SyntheticRgbd = synthetic_rgbd.SyntheticRgbd
