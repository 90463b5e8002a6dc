"""Parity check: is the number of 1s in a bit string odd?"""

import dataclasses

import jax
import jax.numpy as jnp

from tasks import task


@dataclasses.dataclass(frozen=True)
class ParityCheck(task.Task):
  """`0110 -> 0`, `0111 -> 1`: the number of 1s mod 2."""

  input_size: int = 2
  output_size: int = 2

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    target_BL = jnp.cumsum(input_BL, axis=1, dtype=jnp.int32) % 2
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_batch(
      self, key: jax.Array, batch_size: int, max_length: int, length
  ) -> task.Batch:
    self.check_sample_args(batch_size, max_length, length)
    length = self.clip_length(max_length, length)
    length_B = jnp.full((batch_size,), length, jnp.int32)
    bits_BL = jax.random.randint(key, (batch_size, max_length), 0, 2, jnp.int32)
    bits_BL = jnp.where(task.valid_mask_BL(length_B, max_length), bits_BL, 0)
    return task.Batch(bits_BL, length_B, bits_BL.sum(axis=1) % 2)
