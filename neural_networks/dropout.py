"""Inverted dropout whose mask is a counter-based hash, driven by an explicit key.

Profiling the staircase training step on CPU showed JAX's random bits
(threefry, or XLA's RngBitGenerator) taking about 40% of the step, and key
splitting inside the row loop adding hundreds of small operations: every row
of the scan draws fresh masks for B x W x 6D activations. Here a model draws
all its 32-bit seeds from its key in one call before any loop
(`draw_seeds`), and each element's mask bit is a hash of its index and its
seed (the murmur3 finalizer), which XLA fuses into the multiply that applies
the mask: a few integer operations per element and no memory traffic.

A training step may also take the rate as a traced input (`traced_rate`), so
that runs differing only in their dropout rate share one compiled program.
Models keep passing their configured rate to `dropout`; a nonzero one marks
the site as on, and inside `traced_rate` every site that is on uses the
traced value instead. A model built with its rate set to `ON` has every site
on, whatever rate (0 included) the step then feeds it.
"""

import contextlib
import contextvars
from collections.abc import Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# A model config's rate that turns each of its dropout sites on, for a step
# whose actual rate is traced (`traced_rate`); never used as a rate itself.
ON = 0.5


class Rate(NamedTuple):
  """A dropout rate as the two values the mask needs (arrays, traceable)."""

  threshold: jax.Array  # uint32: an element is kept if its hash is >= this.
  keep: jax.Array  # float32: 1 - rate, the divisor of the kept elements.


def rate_values(rate: float) -> Rate:
  """`rate` as host arrays, computed exactly as the constant path does."""
  if not 0.0 <= rate < 1.0:
    raise ValueError(f'dropout must be in [0, 1), got {rate}.')
  return Rate(np.uint32(_threshold(rate)), np.float32(1.0 - rate))


_TRACED: contextvars.ContextVar[Rate | None] = contextvars.ContextVar(
    'traced_dropout_rate', default=None)


@contextlib.contextmanager
def traced_rate(rate: Rate | None) -> Iterator[None]:
  """Within this block (while tracing a step), every dropout site that is on
  uses `rate` (a traced `Rate`); None leaves the models' constants."""
  token = _TRACED.set(rate)
  try:
    yield
  finally:
    _TRACED.reset(token)


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


def _threshold(rate: float) -> int:
  return min(round(rate * 2**32), 2**32 - 1)


def keep_mask(seed: jax.Array, shape: tuple[int, ...],
              threshold: jax.Array | int) -> jax.Array:
  """Boolean mask, each entry True with probability `1 - threshold / 2^32`."""
  index = jnp.zeros(shape, jnp.uint32)
  stride = 1
  for axis in reversed(range(len(shape))):
    iota = jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
    index = index + iota * jnp.uint32(stride)
    stride *= shape[axis]
  bits = _fmix32(_fmix32(index ^ seed) + seed)
  return bits >= jnp.asarray(threshold, jnp.uint32)


def dropout(x: jax.Array, rate: float, seed: jax.Array | None) -> jax.Array:
  """Zeroes each entry with probability `rate` and rescales the rest.

  `seed` is a uint32 scalar from `draw_seeds`; identity when it is None
  (evaluation) or `rate` is 0. Inside `traced_rate`, a nonzero `rate` only
  says that this site is on: the traced rate is applied.
  """
  if seed is None or rate == 0.0:
    return x
  traced = _TRACED.get()
  if traced is None:
    threshold, keep = _threshold(rate), 1.0 - rate
  else:
    threshold, keep = traced.threshold, jnp.asarray(traced.keep, x.dtype)
  mask = keep_mask(seed, x.shape, threshold)
  return jnp.where(mask, x / keep, 0.0).astype(x.dtype)
