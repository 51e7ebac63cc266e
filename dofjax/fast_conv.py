"""Convolutions as reshapes, slices and matrix products (fast on XLA:CPU; docs/design.md).

Exactly the functions of `layers.conv_xla` and `layers.conv_transpose_xla`, with the same
(k, k, in, out) kernel layout. XLA:CPU's matrix product runs near the machine's peak while its
convolution backward passes do not, so every formulation here is chosen so that the forward pass
and its autodiff are matrix products plus cheap elementwise loops:

* 4x4 stride-2 convolution: space-to-depth(2) of the padded input turns the 16 strided taps into
  4 contiguous 2x2 blocks. The patch gather (im2col) and its adjoint (col2im, which sums the
  overlapping patch entries back) are linear and each other's transpose, so each is the other's
  VJP through `jax.custom_vjp`: XLA's own autodiff of the slicing materialised 16 zero-padded
  copies of the patch gradient (over a third of the 256 px generator backward in a profile).
* Convolutions with few output channels (the PatchGAN's 1-channel logit map): one matrix product
  to k*k*out "partial outputs" per input pixel, then a sum of k*k shifted slices; this avoids a
  (pixels, k*k*in) patch matrix feeding a matrix-vector product.
* Transposed 4x4 stride-2 convolution: output phase (ry, rx) of pixel (m, n), i.e. output pixel
  (2m+ry, 2n+rx), is a sum of 4 kernel taps applied to input pixels (m+ry-1+ty, n+rx-1+tx).
  When the kernel is larger than the activations (small maps, many channels) the 16 taps are one
  batched matrix product against the kernel as stored (no copy of the large kernel, and the
  kernel gradient comes out in the stored layout). Otherwise each input pixel is multiplied
  by the whole kernel at once ((in) x (16 out)) and the 16 partial outputs are summed into the
  four phases ("col2im"), so the big activations are never duplicated.
"""

import jax
import jax.numpy as jnp
from jax import lax


def _pad_hw(x, top: int, bottom: int, left: int, right: int):
  """Zero-pads axes 1 and 2 (height, width) of an (N,H,W,...) array."""
  return jnp.pad(x, ((0, 0), (top, bottom), (left, right)) + ((0, 0),) * (x.ndim - 3))


def _patches(x, k: int, stride: int, out_h: int, out_w: int):
  """(N,H,W,C) already padded -> (N,out_h,out_w,k*k*C), taps ordered (ky, kx, c)."""
  taps = []
  for ky in range(k):
    for kx in range(k):
      taps.append(x[:, ky:ky + stride * (out_h - 1) + 1:stride,
                    kx:kx + stride * (out_w - 1) + 1:stride, :])
  return jnp.concatenate(taps, axis=-1)


def _conv_patches(x, kernel, stride: int, padding: int):
  """Generic k x k convolution: patches (N,Ho,Wo,k*k*Cin) @ kernel (k*k*Cin, Cout)."""
  k = kernel.shape[0]
  _, h, w, _ = x.shape
  out_h = (h + 2 * padding - k) // stride + 1
  out_w = (w + 2 * padding - k) // stride + 1
  x = _pad_hw(x, padding, padding, padding, padding)
  cols = _patches(x, k, stride, out_h, out_w)
  return cols @ kernel.reshape(-1, kernel.shape[-1])


def _im2col_s2k4_impl(xp):
  """(N,2Hs,2Ws,C) -> (N,Hs-1,Ws-1,4,4,C): the 4x4 stride-2 patches of an already padded map.

  With xs = space_to_depth(xp), tap (ky, kx) = (2ty+sy, 2tx+sx) of patch (i, j) is
  xs[i+ty, sy, j+tx, sx]: 4 contiguous slices instead of 16 strided ones.
  """
  n, hp, wp, c = xp.shape
  hs, ws = hp // 2, wp // 2
  xs = xp.reshape(n, hs, 2, ws, 2, c)
  taps = [xs[:, ty:ty + hs - 1, :, tx:tx + ws - 1, :, :] for ty in range(2) for tx in range(2)]
  p = jnp.stack(taps, 0).reshape(2, 2, n, hs - 1, 2, ws - 1, 2, c)  # (ty,tx,n,i,sy,j,sx,c)
  p = p.transpose(2, 3, 5, 0, 4, 1, 6, 7)  # (n,i,j,ty,sy,tx,sx,c)
  return p.reshape(n, hs - 1, ws - 1, 4, 4, c)


def _col2im_s2k4_impl(cols):
  """Adjoint of `_im2col_s2k4_impl`: (N,Ho,Wo,4,4,C) -> (N,2Ho+2,2Wo+2,C), overlaps summed.

  Written as a gather (each output element sums the 4 patch entries that read it) so that XLA
  emits one loop over the output instead of 16 padded copies of the patches.
  """
  n, ho, wo, _, _, c = cols.shape
  hs, ws = ho + 1, wo + 1
  cp = _pad_hw(cols.reshape(n, ho, wo, 2, 2, 2, 2, c), 1, 1, 1, 1)  # (n,i,j,ty,sy,tx,sx,c)
  xs = 0
  for ty in range(2):
    for tx in range(2):
      xs = xs + cp[:, 1 - ty:1 - ty + hs, 1 - tx:1 - tx + ws, ty, :, tx, :, :]  # (n,m,l,sy,sx,c)
  return xs.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * hs, 2 * ws, c)


@jax.custom_vjp
def _im2col_s2k4(xp):
  return _im2col_s2k4_impl(xp)


@jax.custom_vjp
def _col2im_s2k4(cols):
  return _col2im_s2k4_impl(cols)


# Each is linear and the other's transpose, so each one's VJP is the other.
_im2col_s2k4.defvjp(lambda xp: (_im2col_s2k4_impl(xp), None),
                    lambda _, g: (_col2im_s2k4(g),))
_col2im_s2k4.defvjp(lambda cols: (_col2im_s2k4_impl(cols), None),
                    lambda _, g: (_im2col_s2k4(g),))


def _conv_s2k4(x, kernel, padding: int):
  """4x4 stride-2 convolution as patches @ kernel: (N,H,W,Cin) -> (N,Ho,Wo,Cout)."""
  _, h, w, c = x.shape
  out_h = (h + 2 * padding - 4) // 2 + 1
  out_w = (w + 2 * padding - 4) // 2 + 1
  # Pad to (out+1)*2 rows/cols; any extra row/col at the end is never read by a valid tap.
  hp, wp = 2 * (out_h + 1), 2 * (out_w + 1)
  xp = _pad_hw(x, padding, hp - h - padding, padding, wp - w - padding)
  cols = _im2col_s2k4(xp)
  return cols.reshape(*cols.shape[:3], 16 * c) @ kernel.reshape(16 * c, -1)


def _conv_shift_sum(x, kernel, stride: int, padding: int):
  """k x k convolution as x @ kernel -> k*k partial maps, then a sum of shifted slices.

  For few output channels: the matrix product is (pixels, Cin) x (Cin, k*k*Cout).
  """
  k, _, cin, cout = kernel.shape
  n, h, w, _ = x.shape
  out_h = (h + 2 * padding - k) // stride + 1
  out_w = (w + 2 * padding - k) // stride + 1
  x = _pad_hw(x, padding, padding, padding, padding)
  z = jnp.einsum("nhwc,kco->nhwko", x, kernel.reshape(k * k, cin, cout))
  y = 0
  for ky in range(k):
    for kx in range(k):
      y = y + z[:, ky:ky + stride * (out_h - 1) + 1:stride,
                kx:kx + stride * (out_w - 1) + 1:stride, ky * k + kx, :]
  return y


def conv(x, kernel, stride: int, padding: int):
  """Cross-correlation. x (N,H,W,Cin), kernel (k,k,Cin,Cout) -> (N,Ho,Wo,Cout).

  Ho = (H + 2*padding - k) // stride + 1 (same for Wo); zero padding on all four sides.
  """
  k, _, cin, cout = kernel.shape
  if k == 1 and padding == 0:
    return x[:, ::stride, ::stride, :] @ kernel.reshape(cin, cout)
  if k == 4 and stride == 2:
    return _conv_s2k4(x, kernel, padding)
  if 4 * k * k * cout <= cin:
    return _conv_shift_sum(x, kernel, stride, padding)
  return _conv_patches(x, kernel, stride, padding)


# Transposed conv. Output phase (ry, rx) uses kernel tap (3-ry-2ty, 3-rx-2tx) on the input pixel
# offset by (ry+ty-1, rx+tx-1), ty, tx in {0, 1}: out[2m+r] = sum_t x[m+r-1+t] W[3-r-2t].


def _conv_transpose_taps(x, kernel):
  """Small maps: one batched product over the 16 taps, against the kernel as stored."""
  n, h, w, cin = x.shape
  cout = kernel.shape[-1]
  xp = _pad_hw(x, 1, 1, 1, 1)
  shifted, phase_of_tap = [], []
  for ky in range(4):
    for kx in range(4):
      # ky = 3 - ry - 2ty  =>  ry = (3 - ky) % 2, ty = (3 - ky - ry) // 2.
      ry = (3 - ky) % 2
      ty = (3 - ky - ry) // 2
      rx = (3 - kx) % 2
      tx = (3 - kx - rx) // 2
      oy, ox = ry + ty, rx + tx
      shifted.append(xp[:, oy:oy + h, ox:ox + w, :].reshape(n * h * w, cin))
      phase_of_tap.append((ry, rx))
  x16 = jnp.stack(shifted, 0)  # (16, M, Cin), tap order (ky, kx)
  z = lax.dot_general(x16, kernel.reshape(16, cin, cout), (((2,), (1,)), ((0,), (0,))))
  phases = {}
  for i, p in enumerate(phase_of_tap):
    phases[p] = z[i] if p not in phases else phases[p] + z[i]
  out = jnp.stack([jnp.stack([phases[(ry, rx)] for rx in range(2)], 0) for ry in range(2)], 0)
  out = out.reshape(2, 2, n, h, w, cout).transpose(2, 3, 0, 4, 1, 5)  # (n,h,ry,w,rx,o)
  return out.reshape(n, 2 * h, 2 * w, cout)


def _conv_transpose_col2im(x, kernel):
  """Large maps: z = x @ kernel as (Cin, 16 Cout), then col2im sums the overlapping taps.

  This is the adjoint of the 4x4 stride-2 padding-1 convolution: output pixel 2i-1+k receives
  x[i] @ kernel[k], i.e. col2im on the output padded by 1 on each side.
  """
  n, h, w, cin = x.shape
  cout = kernel.shape[-1]
  z = jnp.einsum("nhwc,kco->nhwko", x, kernel.reshape(16, cin, cout))
  out = _col2im_s2k4(z.reshape(n, h, w, 4, 4, cout))  # (N,2H+2,2W+2,Cout)
  return out[:, 1:-1, 1:-1, :]


def conv_transpose(x, kernel):
  """PyTorch ConvTranspose2d(4, stride 2, padding 1). x (N,H,W,Cin), kernel (4,4,Cin,Cout).

  Returns (N,2H,2W,Cout); out[2i-1+k] += x[i] @ kernel[k] per spatial axis.
  """
  n, h, w, _ = x.shape
  if kernel.shape[-1] > n * h * w:
    return _conv_transpose_taps(x, kernel)
  return _conv_transpose_col2im(x, kernel)
