"""dofjax: Pix2Pix monocular depth and a differentiable depth-of-field renderer in JAX.

Conventions used everywhere in the package:
  * arrays are NHWC (or HWC for a single image), float32 unless stated;
  * network images are RGB in [-1, 1]; photos handed to the renderer are in [0, 1];
  * depth is in metres, 0 marks an invalid pixel;
  * the network's depth target is an inverse-depth code in [-1, 1], brighter = nearer
    (see `dofjax.depth`).
"""

__version__ = "0.1.0"
