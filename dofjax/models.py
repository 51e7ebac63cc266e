"""Pix2Pix networks (Flax Linen), faithful to the reference `unet_256` and 70x70 PatchGAN.

Both take NHWC float inputs in [-1, 1] and infer the input channels. See docs/design.md ("Reference
facts") for the reference's architecture; `tests/models_test.py` checks the parameter counts
and the receptive field.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dofjax import errors
from dofjax import layers

NORMS = ("batch", "instance")


def _bn_scale_init(key, shape, dtype=jnp.float32):
  """BatchNorm scale ~ N(1, 0.02), as the reference initialises it."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def check_norm(norm: str, field: str = "norm") -> None:
  """UserError unless `norm` is one of NORMS; `field` names it in the message."""
  if norm not in NORMS:
    raise errors.UserError(f"{field}={norm!r} is not one of {', '.join(map(repr, NORMS))}; "
                           f"set --config.{field}=batch (the paper's).")


def check_num_downs(num_downs: int) -> None:
  """UserError unless the U-Net has at least 5 downsamplings (its dropout layout needs them)."""
  if num_downs < 5:
    raise errors.UserError(f"model.num_downs={num_downs} must be at least 5; set "
                           "--config.model.num_downs (8 for 256 px, 7 for 128 px).")


def check_n_layers(n_layers: int) -> None:
  """UserError unless the PatchGAN has n_layers >= 0 (0 = PixelGAN, 3 = 70x70)."""
  if n_layers < 0:
    raise errors.UserError(f"model.n_layers={n_layers} must be >= 0 (3 for the 70x70 "
                           "PatchGAN); set --config.model.n_layers=3.")


def check_image_size(height: int, width: int, num_downs: int) -> None:
  """UserError unless height and width are positive multiples of 2**num_downs."""
  size = 2**num_downs
  if height <= 0 or width <= 0 or height % size or width % size:
    raise errors.UserError(
        f"Image size {height}x{width} is not divisible by 2**model.num_downs = {size}; use "
        f"--config.image_size={max(size, height // size * size)} or change "
        "--config.model.num_downs (8 for 256 px, 7 for 128 px).")


class _Norm(nn.Module):
  """BatchNorm (PyTorch eps 1e-5, momentum 0.1) or affine-free InstanceNorm, as the reference."""
  norm: str
  axis_name: Optional[str] = None  # pmap axis: BatchNorm statistics over all replicas.

  @nn.compact
  def __call__(self, x, train: bool):
    if self.norm == "batch":
      y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       axis_name=self.axis_name if train else None,
                       scale_init=_bn_scale_init, dtype=jnp.float32)(x.astype(jnp.float32))
    else:
      y = nn.InstanceNorm(use_scale=False, use_bias=False, epsilon=1e-5,
                          dtype=jnp.float32)(x.astype(jnp.float32))
    return y.astype(x.dtype)


def encoder_channels(ngf: int, num_downs: int):
  """Channels after each downsampling: ngf, 2ngf, 4ngf, then 8ngf to the 1x1 bottleneck."""
  return [ngf * min(2**i, 8) for i in range(num_downs)]


class UNetGenerator(nn.Module):
  """U-Net generator, the reference `unet_256` for num_downs=8 (docs/design.md, "Reference facts").

  Call: `apply(variables, x, train=...)`, x (N,H,W,Cin) in [-1, 1], H and W divisible by
  2**num_downs. Returns (N,H,W,out_channels) in [-1, 1] (tanh). `train=True` uses batch
  statistics (updating `batch_stats`) and dropout (rng 'dropout'). `bn_axis_name` (pmap only)
  averages the BatchNorm batch statistics over that axis.
  """
  out_channels: int = 1
  ngf: int = 64
  num_downs: int = 8
  norm: str = "batch"
  dropout_rate: float = 0.5
  conv_impl: str = "xla"
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, train: bool):
    check_norm(self.norm)
    check_num_downs(self.num_downs)
    check_image_size(x.shape[1], x.shape[2], self.num_downs)
    use_bias = self.norm == "instance"
    impl = layers.resolve_impl(self.conv_impl)
    channels = encoder_channels(self.ngf, self.num_downs)
    x = x.astype(self.dtype)

    # Encoder: conv (outermost, no norm); then LeakyReLU -> conv -> norm; innermost has no norm.
    h = layers.Conv(channels[0], use_bias=use_bias, impl=impl, dtype=self.dtype,
                    name="down_0")(x)
    skips = [h]
    for i in range(1, self.num_downs):
      h = layers.Conv(channels[i], use_bias=use_bias, impl=impl, dtype=self.dtype,
                      name=f"down_{i}")(nn.leaky_relu(h, 0.2))
      if i < self.num_downs - 1:
        h = _Norm(self.norm, self.bn_axis_name, name=f"down_norm_{i}")(h, train)
        skips.append(h)

    # Decoder: ReLU -> transposed conv -> norm (-> dropout), then concat [skip, up].
    for i in range(self.num_downs - 1, 0, -1):
      u = layers.ConvTranspose(channels[i - 1], use_bias=use_bias, impl=impl, dtype=self.dtype,
                               name=f"up_{i}")(nn.relu(h))
      u = _Norm(self.norm, self.bn_axis_name, name=f"up_norm_{i}")(u, train)
      if 4 <= i <= self.num_downs - 2 and self.dropout_rate > 0:
        u = nn.Dropout(self.dropout_rate, deterministic=not train)(u)
      h = jnp.concatenate([skips[i - 1], u], axis=-1)
    y = layers.ConvTranspose(self.out_channels, use_bias=True, impl=impl, dtype=self.dtype,
                             name="up_0")(nn.relu(h))
    return jnp.tanh(y.astype(jnp.float32))


class PatchDiscriminator(nn.Module):
  """PatchGAN discriminator: 70x70 receptive field for n_layers=3; n_layers=0 is the PixelGAN.

  Call: `apply(variables, x, train=...)`, x (N,H,W,C) = concat(RGB, depth) in [-1, 1].
  Returns logits (N,H',W',1); 30x30 for a 256x256 input and n_layers=3.
  """
  ndf: int = 64
  n_layers: int = 3
  norm: str = "batch"
  conv_impl: str = "xla"
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, train: bool):
    check_norm(self.norm)
    check_n_layers(self.n_layers)
    use_bias = self.norm == "instance"
    impl = layers.resolve_impl(self.conv_impl)
    conv = lambda f, k, s, p, b, name: layers.Conv(  # noqa: E731
        f, kernel_size=k, strides=s, padding=p, use_bias=b, impl=impl, dtype=self.dtype,
        name=name)
    h = x.astype(self.dtype)
    if self.n_layers == 0:  # PixelGAN: 1x1 convs.
      h = nn.leaky_relu(conv(self.ndf, 1, 1, 0, True, "conv_0")(h), 0.2)
      h = conv(2 * self.ndf, 1, 1, 0, use_bias, "conv_1")(h)
      h = _Norm(self.norm, self.bn_axis_name, name="norm_1")(h, train)
      h = conv(1, 1, 1, 0, True, "conv_out")(nn.leaky_relu(h, 0.2))
      return h.astype(jnp.float32)
    h = nn.leaky_relu(conv(self.ndf, 4, 2, 1, True, "conv_0")(h), 0.2)
    for n in range(1, self.n_layers + 1):
      stride = 2 if n < self.n_layers else 1
      h = conv(self.ndf * min(2**n, 8), 4, stride, 1, use_bias, f"conv_{n}")(h)
      h = nn.leaky_relu(_Norm(self.norm, self.bn_axis_name, name=f"norm_{n}")(h, train), 0.2)
    h = conv(1, 4, 1, 1, True, "conv_out")(h)
    return h.astype(jnp.float32)


def count_params(params) -> int:
  """Number of scalar parameters in a pytree."""
  return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))
