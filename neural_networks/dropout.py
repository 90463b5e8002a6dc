"""Inverted dropout whose mask is a counter-based hash, driven by an explicit key.

Profiling the staircase training step on CPU showed JAX's random bits
(threefry, or XLA's RngBitGenerator) taking about 40% of the step, and key
splitting inside the row loop adding hundreds of small operations: every row
of the scan draws fresh masks for B x W x 6D activations. Here a model draws
all its 32-bit seeds from its key in one call before any loop
(`draw_seeds`), and each element's mask bit is a hash of its index and its
seed (the murmur3 finalizer), which XLA fuses into the multiply that applies
the mask: a few integer operations per element and no memory traffic.
"""

import jax
import jax.numpy as jnp


def _fmix32(h: jax.Array) -> jax.Array:
  """murmur3's 32-bit finalizer: a bijection with full avalanche."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def draw_seeds(key: jax.Array | None, shape: tuple[int, ...]) -> jax.Array | None:
  """Independent uint32 dropout seeds (None, for evaluation, when key is)."""
  return None if key is None else jax.random.bits(key, shape, jnp.uint32)


def keep_mask(seed: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
  """Boolean mask, each entry True with probability `1 - rate` (to 2^-32)."""
  index = jnp.zeros(shape, jnp.uint32)
  stride = 1
  for axis in reversed(range(len(shape))):
    iota = jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
    index = index + iota * jnp.uint32(stride)
    stride *= shape[axis]
  bits = _fmix32(_fmix32(index ^ seed) + seed)
  return bits >= jnp.uint32(min(round(rate * 2**32), 2**32 - 1))


def dropout(x: jax.Array, rate: float, seed: jax.Array | None) -> jax.Array:
  """Zeroes each entry with probability `rate` and rescales the rest.

  `seed` is a uint32 scalar from `draw_seeds`; identity when it is None
  (evaluation) or `rate` is 0.
  """
  if seed is None or rate == 0.0:
    return x
  keep = keep_mask(seed, x.shape, rate)
  return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)
