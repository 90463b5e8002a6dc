"""Softmax attention (`attend`, used by every model) and multi-head attention.

Masks are boolean with True meaning "may attend"; they broadcast against
`(..., Q, M)`. Masked keys get weight exactly 0, and a query with no visible
key (padding) returns 0 instead of NaN.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from neural_networks import dropout as dropout_lib
from neural_networks import initializers

# Below this many query-key pairs, and for heads this narrow, attention
# multiplies and sums instead of calling batched matrix products: a staircase
# row (heads of 8) makes thousands of tiny matmuls per step, far slower on CPU
# than a few fused elementwise kernels. Wide heads make the elementwise
# products (Q x M x H x K per string) too big to pay: the block-recurrent
# parity model (heads of 128, windows 2 x 4) ran its length-500 forward in
# 5.8 s elementwise and 4.9 s with matrix products (experiments/benchmark.py).
_SMALL_ATTENTION = 256
_NARROW_HEAD = 32


def _elementwise(Q: int, M: int, K: int) -> bool:
  """Whether `attend` multiplies and sums rather than calling matmuls."""
  return Q * M <= _SMALL_ATTENTION and K <= _NARROW_HEAD


def attend(q_XQHK: jax.Array, k_XMJK: jax.Array, v_XMJK: jax.Array,
           mask_XQM: jax.Array | None = None, *,
           logit_scale: float | jax.Array | None = None,
           seed: jax.Array | None = None, dropout_rate: float = 0.0
           ) -> jax.Array:
  """Softmax attention of H query heads over J (1 or H) key/value heads.

  `X` is any batch shape shared by the arguments (broadcasting). The logits
  are `q . k`, times `logit_scale` when given (a number, or one per head);
  `seed` (uint32, None in evaluation) drives dropout on the weights.
  """
  Q, M = q_XQHK.shape[-3], k_XMJK.shape[-3]
  shared_kv = k_XMJK.shape[-2] == 1  # Multi-query: one key/value head.
  elementwise = _elementwise(Q, M, q_XQHK.shape[-1])
  if elementwise:  # Heads last: (..., Q, M, H).
    logits = (q_XQHK[..., :, None, :, :] * k_XMJK[..., None, :, :, :]).sum(-1)
    mask = None if mask_XQM is None else mask_XQM[..., None]
    head_axis, key_axis = -1, -2
  else:  # Heads before queries: (..., H, Q, M).
    kv = '...MK' if shared_kv else '...MHK'
    logits = jnp.einsum(f'...QHK,{kv}->...HQM', q_XQHK,
                        k_XMJK[..., 0, :] if shared_kv else k_XMJK)
    mask = None if mask_XQM is None else mask_XQM[..., None, :, :]
    head_axis, key_axis = -3, -1
  if logit_scale is not None:
    if jnp.ndim(logit_scale):  # One temperature per head.
      shape = [1] * logits.ndim
      shape[head_axis] = -1
      logit_scale = jnp.reshape(logit_scale, shape)
    logits = logits * logit_scale
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
  weights = jax.nn.softmax(logits, axis=key_axis)
  if mask is not None:  # Masked keys underflow to 0; a row with no key is 0.
    weights = jnp.where(mask.any(axis=key_axis, keepdims=True), weights, 0.0)
  weights = dropout_lib.dropout(weights, dropout_rate, seed)
  if elementwise:
    return (weights[..., None] * v_XMJK[..., None, :, :, :]).sum(-3)
  if shared_kv:
    return jnp.einsum('...HQM,...MK->...QHK', weights, v_XMJK[..., 0, :])
  return jnp.einsum('...HQM,...MHK->...QHK', weights, v_XMJK)


def causal_mask(query_position_Q: jax.Array, key_position_M: jax.Array) -> jax.Array:
  """`(1, Q, M)` mask: a query sees the keys at the same or an earlier position."""
  return (key_position_M[None, :] <= query_position_Q[:, None])[None]


def length_mask(length_B: jax.Array | None, position_M: jax.Array) -> jax.Array:
  """`(B, 1, M)` mask of real keys: `0 <= position < length` (all if no lengths)."""
  valid_M = position_M >= 0
  if length_B is None:
    return valid_M[None, None, :]
  return (valid_M[None, :] & (position_M[None, :] < length_B[:, None]))[:, None, :]


def sequence_mask(length_B: jax.Array | None, L: int,
                  is_causal: bool) -> jax.Array:
  """`(B or 1, L, L)` self-attention mask over a whole padded sequence."""
  position_L = jnp.arange(L)
  mask_BLL = length_mask(length_B, position_L)
  if is_causal:
    mask_BLL = mask_BLL & causal_mask(position_L, position_L)
  return mask_BLL


class MultiHeadAttention(nnx.Module):
  """`torch.nn.MultiheadAttention` (fused q/k/v in-projection, batch first)."""

  def __init__(self, d_model: int, num_heads: int, *, rngs: nnx.Rngs,
               dropout: float = 0.0):
    if d_model % num_heads:
      raise ValueError(
          f'd_model={d_model} must be divisible by num_heads={num_heads}.'
      )
    self.num_heads = num_heads
    # Columns 0:D query, D:2D key, 2D:3D value, as in torch's in_proj_weight.T.
    self.in_proj = nnx.Linear(
        d_model, 3 * d_model, kernel_init=initializers.xavier_uniform(),
        bias_init=jax.nn.initializers.zeros, rngs=rngs)
    self.out_proj = nnx.Linear(
        d_model, d_model, kernel_init=initializers.torch_linear(d_model),
        bias_init=jax.nn.initializers.zeros, rngs=rngs)
    self.dropout_rate = dropout  # On attention weights; off unless asked.

  def _split_heads(self, x_BMD: jax.Array) -> jax.Array:
    B, M, D = x_BMD.shape
    return x_BMD.reshape(B, M, self.num_heads, D // self.num_heads)

  def __call__(self, x_BQD: jax.Array, c_BMD: jax.Array | None,
               mask_BQM: jax.Array, seed: jax.Array | None = None) -> jax.Array:
    """Attends from `x` to `c` (to `x` itself when `c` is None).

    `seed` (uint32, or None in evaluation) drives dropout on the weights.
    """
    D = x_BQD.shape[-1]
    kernel_DE, bias_E = self.in_proj.kernel[...], self.in_proj.bias[...]
    if c_BMD is None:  # Self-attention: one fused projection.
      qkv_BQE = x_BQD @ kernel_DE + bias_E[None, None]
      q_BQD, k_BMD, v_BMD = jnp.split(qkv_BQE, 3, axis=-1)
    else:
      q_BQD = x_BQD @ kernel_DE[:, :D] + bias_E[None, None, :D]
      kv_BME = c_BMD @ kernel_DE[:, D:] + bias_E[None, None, D:]
      k_BMD, v_BMD = jnp.split(kv_BME, 2, axis=-1)
    q_BQHK, k_BMHK, v_BMHK = map(self._split_heads, (q_BQD, k_BMD, v_BMD))
    q_BQHK = q_BQHK / jnp.sqrt(jnp.asarray(q_BQHK.shape[-1], q_BQHK.dtype))
    out_BQHK = attend(q_BQHK, k_BMHK, v_BMHK, mask_BQM, seed=seed,
                      dropout_rate=self.dropout_rate)
    return self.out_proj(out_BQHK.reshape(x_BQD.shape))

