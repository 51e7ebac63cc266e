"""TFDS builders for dofjax, and the storage format they share.

  diml/lr, diml/hr                 DIML/CVL RGB-D indoor (manual download), `tfds_diml.diml`.
  synthetic_rgbd/<config>          procedural RGB-D scenes with exact depth (no download),
                                   `tfds_diml.synthetic_rgbd`; configs tiny, quickstart,
                                   diml_lr_like, dof_tiny, dof, dof_hdr (boxes in empty
                                   rooms) and rooms, rooms_large, rooms_tiny, rooms_dof
                                   (furnished rooms, `tfds_diml.rooms`).

`import tfds_diml.builders` registers both with TFDS. The package itself imports nothing, so
`tfds_diml.storage` (millimetres <-> metres, PNG encoding) is usable without loading TFDS. Both
builders store PNG bytes in array_record files read with `tfds.data_source`; neither needs
TensorFlow. Nothing here imports dofjax.
"""
