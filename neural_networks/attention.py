"""Multi-head attention with queries and keys/values passed separately, and masks.

Masks are boolean with True meaning "may attend"; they broadcast against
`(B, Q, M)`. A query with no visible key gets a uniform average instead of
NaN (its output is garbage, but it belongs to padding and is never read).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from neural_networks import dropout as dropout_lib
from neural_networks import initializers

_NEG_INF = -1e30
# Attention with at most this many query-key pairs skips batched matmuls.
_SMALL_ATTENTION = 256


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
    Q, M = q_BQHK.shape[1], k_BMHK.shape[1]
    if Q * M <= _SMALL_ATTENTION:
      # Tiny windows (staircase rows): broadcast-multiply-reduce fuses into a
      # few elementwise kernels, far cheaper on CPU than thousands of tiny
      # batched matmuls.
      logits_BQMH = (q_BQHK[:, :, None] * k_BMHK[:, None]).sum(-1)
      logits_BQMH = jnp.where(mask_BQM[..., None], logits_BQMH, _NEG_INF)
      weights_BQMH = self._drop(jax.nn.softmax(logits_BQMH, axis=2), seed)
      out_BQHK = (weights_BQMH[..., None] * v_BMHK[:, None]).sum(2)
    else:
      logits_BHQM = jnp.einsum('BQHK,BMHK->BHQM', q_BQHK, k_BMHK)
      logits_BHQM = jnp.where(mask_BQM[:, None], logits_BHQM, _NEG_INF)
      weights_BHQM = self._drop(jax.nn.softmax(logits_BHQM, axis=-1), seed)
      out_BQHK = jnp.einsum('BHQM,BMHK->BQHK', weights_BHQM, v_BMHK)
    return self.out_proj(out_BQHK.reshape(x_BQD.shape))

  def _drop(self, weights: jax.Array, seed: jax.Array | None) -> jax.Array:
    return dropout_lib.dropout(weights, self.dropout_rate, seed)
