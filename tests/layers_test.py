"""The fast (matmul) convolutions equal the plain ones, forward and backward; impl selection;
bfloat16 compute. Small channel counts so everything runs in seconds on a CPU."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from dofjax import errors
from dofjax import fast_conv
from dofjax import layers
from dofjax import models


RTOL = 2e-5  # Relative to the largest magnitude of the reference (float32 sums of <= 1k terms).


def _random(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _assert_close(actual, expected, rtol=RTOL):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  scale = max(float(np.max(np.abs(expected))), 1e-6)
  np.testing.assert_allclose(actual / scale, expected / scale, rtol=0, atol=rtol)


def _assert_same_function(fast, plain, x, kernel, seed=0):
  """Same output, and the same VJP to x and kernel for a random output cotangent."""
  y_fast, vjp_fast = jax.vjp(fast, x, kernel)
  y_plain, vjp_plain = jax.vjp(plain, x, kernel)
  _assert_close(y_fast, y_plain)
  cotangent = _random(y_plain.shape, seed + 100)
  for g_fast, g_plain in zip(vjp_fast(cotangent), vjp_plain(cotangent)):
    _assert_close(g_fast, g_plain)


def conv_transpose_reference(x, kernel):
  """PyTorch ConvTranspose2d(4, 2, 1) by its definition: out[2i-1+k] += x[i] @ kernel[k]."""
  x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
  n, h, w, _ = x.shape
  out = np.zeros((n, 2 * h + 2, 2 * w + 2, kernel.shape[-1]))
  for ky in range(4):
    for kx in range(4):
      out[:, ky:ky + 2 * h:2, kx:kx + 2 * w:2] += x @ kernel[ky, kx]
  return out[:, 1:-1, 1:-1]


# (N, H, W, Cin, Cout, k, stride, padding): odd sizes, non-square maps, 1x1 maps, k 4 and 1.
CONV_CASES = [
    (2, 8, 8, 3, 5, 4, 2, 1),
    (1, 7, 9, 4, 6, 4, 2, 1),     # Odd sizes: the last row/col is dropped as by the plain conv.
    (2, 2, 2, 6, 7, 4, 2, 1),     # 2x2 -> 1x1, the U-Net's innermost conv.
    (1, 1, 1, 5, 3, 4, 2, 2),     # 1x1 input.
    (1, 5, 5, 3, 4, 4, 2, 2),
    (2, 9, 7, 6, 5, 4, 1, 1),     # PatchGAN's stride-1 4x4 convs.
    (1, 6, 6, 40, 1, 4, 1, 1),    # Few output channels: the shift-and-sum formulation.
    (2, 5, 6, 3, 4, 1, 1, 0),     # 1x1 convs (PixelGAN).
    (1, 1, 1, 3, 4, 1, 1, 0),
    (1, 6, 7, 3, 4, 1, 2, 0),
    (1, 9, 9, 5, 3, 3, 2, 1),     # Generic fallback.
]


@pytest.mark.parametrize("n,h,w,cin,cout,k,stride,padding", CONV_CASES)
def test_conv_matches_lax_conv(n, h, w, cin, cout, k, stride, padding):
  x, kernel = _random((n, h, w, cin), 0), _random((k, k, cin, cout), 1)
  _assert_same_function(lambda a, b: fast_conv.conv(a, b, stride, padding),
                        lambda a, b: layers.conv_xla(a, b, stride, padding), x, kernel)


def test_conv_xla_matches_flax_conv():
  x, kernel = _random((1, 7, 6, 3), 0), _random((4, 4, 3, 5), 1)
  flax_conv = nn.Conv(5, (4, 4), strides=2, padding=1, use_bias=False)
  expected = flax_conv.apply({"params": {"kernel": kernel}}, x)
  _assert_close(layers.conv_xla(x, kernel, 2, 1), expected)


# (N, H, W, Cin, Cout): 1x1 maps (innermost up conv), odd and non-square sizes, Cout 1 (output).
TRANSPOSE_CASES = [
    (2, 1, 1, 6, 5),
    (1, 3, 5, 4, 7),
    (2, 2, 2, 3, 16),
    (1, 4, 3, 8, 1),
    (1, 6, 6, 5, 3),
]
TRANSPOSE_IMPLS = {
    "dispatch": fast_conv.conv_transpose,
    "taps": fast_conv._conv_transpose_taps,  # pylint: disable=protected-access
    "col2im": fast_conv._conv_transpose_col2im,  # pylint: disable=protected-access
}


@pytest.mark.parametrize("n,h,w,cin,cout", TRANSPOSE_CASES)
def test_conv_transpose_plain_matches_pytorch_definition(n, h, w, cin, cout):
  x, kernel = _random((n, h, w, cin), 2), _random((4, 4, cin, cout), 3)
  expected = conv_transpose_reference(x, kernel)
  _assert_close(layers.conv_transpose_xla(x, kernel), expected)
  # lax.conv_transpose with the kernel flipped and padding k - 1 - p = 2 is the same function.
  via_lax = lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
  _assert_close(via_lax, expected)


@pytest.mark.parametrize("impl", sorted(TRANSPOSE_IMPLS))
@pytest.mark.parametrize("n,h,w,cin,cout", TRANSPOSE_CASES)
def test_conv_transpose_fast_matches_plain(n, h, w, cin, cout, impl):
  x, kernel = _random((n, h, w, cin), 4), _random((4, 4, cin, cout), 5)
  _assert_same_function(TRANSPOSE_IMPLS[impl], layers.conv_transpose_xla, x, kernel)


def test_conv_transpose_dispatch_uses_both_formulations():
  # Kernel larger than the activations -> taps; otherwise col2im (both are tested above).
  jaxpr_small = str(jax.make_jaxpr(fast_conv.conv_transpose)(
      jnp.zeros((1, 2, 2, 8)), jnp.zeros((4, 4, 8, 16))))
  jaxpr_large = str(jax.make_jaxpr(fast_conv.conv_transpose)(
      jnp.zeros((1, 8, 8, 8)), jnp.zeros((4, 4, 8, 2))))
  assert "custom_vjp" not in jaxpr_small and "custom_vjp" in jaxpr_large


def test_im2col_and_col2im_are_transposes():
  xp = _random((2, 6, 8, 3), 6)
  cols = _random((2, 2, 3, 4, 4, 3), 7)
  im2col = fast_conv._im2col_s2k4  # pylint: disable=protected-access
  col2im = fast_conv._col2im_s2k4  # pylint: disable=protected-access
  lhs = jnp.vdot(im2col(xp), cols)
  rhs = jnp.vdot(xp, col2im(cols))
  np.testing.assert_allclose(float(lhs), float(rhs), rtol=1e-5)


# ----------------------------------------------------------------------------- impl choice


@pytest.mark.parametrize("backend,expected", [("cpu", "matmul"), ("gpu", "xla"), ("tpu", "xla")])
def test_resolve_impl_auto_per_platform(monkeypatch, backend, expected):
  monkeypatch.setattr(jax, "default_backend", lambda: backend)
  assert layers.resolve_impl("auto") == expected


def test_resolve_impl_explicit_and_invalid():
  assert layers.resolve_impl("xla") == "xla"
  assert layers.resolve_impl("matmul") == "matmul"
  with pytest.raises(errors.UserError, match="conv_impl"):
    layers.resolve_impl("cudnn")


def test_resolve_impl_auto_on_this_machine():
  expected = "matmul" if jax.default_backend() == "cpu" else "xla"
  assert layers.resolve_impl("auto") == expected


@functools.lru_cache(maxsize=None)
def _init_variables(module_cls, shape, kwargs_items):
  """The module's init variables for input `shape` (impl- and dtype-independent), computed
  once per process and shared by the tests below."""
  x = _model_input(shape)
  with jax.threefry_partitionable(False):  # Compiles weight initialisers several times faster.
    return jax.jit(
        lambda rngs: module_cls(conv_impl="xla", **dict(kwargs_items)).init(rngs, x, train=False))(
            {"params": jax.random.key(0), "dropout": jax.random.key(1)})


def _model_input(shape):
  return jnp.tanh(_random(shape, 8))


@functools.lru_cache(maxsize=None)
def _model_outputs_cached(module_cls, shape, kwargs_items, impl, dtype):
  init = _init_variables(module_cls, shape, kwargs_items)
  x = _model_input(shape)
  module = module_cls(conv_impl=impl, dtype=dtype, **dict(kwargs_items))
  rngs = {"dropout": jax.random.key(2)}

  def loss(params):
    out, _ = module.apply({**init, "params": params}, x, train=True, rngs=rngs,
                          mutable=["batch_stats"])
    return jnp.mean(out * jnp.linspace(-1, 1, out.size).reshape(out.shape)), out

  def outputs(variables):  # One compiled program for the train output, its grads and eval.
    (_, train_out), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
    return train_out, module.apply(variables, x, train=False), grads

  return (init, *jax.jit(outputs)(init))


def _model_outputs(module_cls, shape, impl, dtype=jnp.float32, **kwargs):
  """(init variables (impl-independent), train-mode output, eval output, param grads) of the
  module on a fixed random input of `shape`; each combination is computed once per process."""
  return _model_outputs_cached(module_cls, tuple(shape), tuple(sorted(kwargs.items())), impl,
                               jnp.dtype(dtype))


MODELS = [
    (models.UNetGenerator, (2, 32, 32, 3), dict(ngf=4, num_downs=5)),
    (models.UNetGenerator, (1, 64, 32, 3), dict(ngf=4, num_downs=5, norm="instance")),
    (models.PatchDiscriminator, (2, 32, 32, 4), dict(ndf=4, n_layers=3)),
    (models.PatchDiscriminator, (1, 16, 16, 4), dict(ndf=4, n_layers=0)),
]


@pytest.mark.parametrize("module_cls,shape,kwargs", MODELS)
def test_models_same_outputs_for_both_impls(module_cls, shape, kwargs):
  _, train_xla, eval_xla, grads_xla = _model_outputs(module_cls, shape, "xla", **kwargs)
  _, train_mm, eval_mm, grads_mm = _model_outputs(module_cls, shape, "matmul", **kwargs)
  _assert_close(train_mm, train_xla, 1e-4)
  _assert_close(eval_mm, eval_xla, 1e-4)
  # One scale for all gradients: a bias before an instance norm has a zero gradient, which both
  # impls compute as rounding noise.
  flat_mm, flat_xla = (jnp.concatenate([g.ravel() for g in jax.tree_util.tree_leaves(grads)])
                       for grads in (grads_mm, grads_xla))
  _assert_close(flat_mm, flat_xla, 1e-4)


# ----------------------------------------------------------------------------- bfloat16


# 64 px: at 32 px the generator normalises 2x2 maps, where bfloat16 rounding of the conv
# outputs is amplified by 1/std and the gradients of a few small leaves are mostly noise.
BF16_MODELS = [
    (models.UNetGenerator, (2, 64, 64, 3), dict(ngf=4, num_downs=5)),
    (models.PatchDiscriminator, (2, 32, 32, 4), dict(ndf=4, n_layers=3)),
]


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize("module_cls,shape,kwargs", BF16_MODELS)
def test_bfloat16_compute_is_close_to_float32(module_cls, shape, kwargs, impl):
  init, train32, _, grads32 = _model_outputs(module_cls, shape, impl, **kwargs)
  _, train16, eval16, grads16 = _model_outputs(module_cls, shape, impl, jnp.bfloat16, **kwargs)
  # Parameters stay float32; outputs (tanh / logits) come back as float32.
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(init["params"]))
  assert train16.dtype == eval16.dtype == jnp.float32
  assert all(g.dtype == jnp.float32 for g in jax.tree_util.tree_leaves(grads16))
  assert bool(jnp.all(jnp.isfinite(train16))) and bool(jnp.all(jnp.isfinite(eval16)))
  # bfloat16 has an 8-bit mantissa: a few per cent of the output's scale.
  _assert_close(train16, train32, 0.05)
  flat16 = jnp.concatenate([g.ravel() for g in jax.tree_util.tree_leaves(grads16)])
  flat32 = jnp.concatenate([g.ravel() for g in jax.tree_util.tree_leaves(grads32)])
  cosine = jnp.vdot(flat16, flat32) / (jnp.linalg.norm(flat16) * jnp.linalg.norm(flat32))
  assert float(cosine) > 0.99
