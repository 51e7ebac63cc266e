"""Convolution layers with the reference pix2pix semantics, in two interchangeable formulations.

* `impl='xla'`: `lax.conv_general_dilated` (what cuDNN and the TPU do well).
* `impl='matmul'`: the same function written as patches + one matrix product (what XLA:CPU does
  well; docs/design.md, "Performance notes").

Parameters are always stored as square kernels of shape (k, k, in, out) (HWIO), initialised
N(0, 0.02), so parameter counts and checkpoints do not depend on the formulation.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from dofjax import errors

IMPLS = ("xla", "matmul")

reference_kernel_init = nn.initializers.normal(stddev=0.02)


def resolve_impl(impl: str) -> str:
  """'auto' -> 'matmul' on CPU, 'xla' elsewhere; 'xla'/'matmul' pass through; else UserError."""
  if impl == "auto":
    return "matmul" if jax.default_backend() == "cpu" else "xla"
  if impl not in IMPLS:
    raise errors.UserError(
        f"model.conv_impl={impl!r} is not one of 'auto', {', '.join(map(repr, IMPLS))}.")
  return impl


def conv_xla(x, kernel, stride: int, padding: int):
  """Cross-correlation. x (N,H,W,Cin), kernel (k,k,Cin,Cout) -> (N,(H+2p-k)//s+1,...,Cout)."""
  return lax.conv_general_dilated(
      x, kernel, window_strides=(stride, stride),
      padding=((padding, padding), (padding, padding)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_transpose_xla(x, kernel):
  """PyTorch ConvTranspose2d(k=4, stride=2, padding=1): (N,H,W,Cin) -> (N,2H,2W,Cout).

  out[o] = sum over (i, k) with o = 2 i - 1 + k of x[i] * kernel[k], per spatial axis.
  """
  k = kernel.shape[0]
  pad = k - 1 - 1  # k - 1 - padding, padding = 1.
  return lax.conv_general_dilated(
      x, kernel[::-1, ::-1], window_strides=(1, 1), padding=((pad, pad), (pad, pad)),
      lhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv(nn.Module):
  """k x k convolution with symmetric zero padding (reference: Conv2d(k, stride, padding))."""
  features: int
  kernel_size: int = 4
  strides: int = 2
  padding: int = 1
  use_bias: bool = False
  impl: str = "xla"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param("kernel", reference_kernel_init, (k, k, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if self.impl == "matmul":
      from dofjax import fast_conv
      y = fast_conv.conv(x, kernel, self.strides, self.padding)
    else:
      y = conv_xla(x, kernel, self.strides, self.padding)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y


class ConvTranspose(nn.Module):
  """4x4 stride-2 padding-1 transposed convolution (reference: ConvTranspose2d(4, 2, 1))."""
  features: int
  use_bias: bool = False
  impl: str = "xla"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", reference_kernel_init, (4, 4, x.shape[-1], self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if self.impl == "matmul":
      from dofjax import fast_conv
      y = fast_conv.conv_transpose(x, kernel)
    else:
      y = conv_transpose_xla(x, kernel)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y
