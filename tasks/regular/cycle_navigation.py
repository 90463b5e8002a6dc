"""Cycle navigation: where does a walk on a cycle of 5 positions end?"""

import dataclasses

import jax
import jax.numpy as jnp

from tasks import task


@dataclasses.dataclass(frozen=True)
class CycleNavigation(task.Task):
  """Symbols 0, 1, 2 move -1, 0, +1 on a 5-cycle from 0: `0122 -> 1`."""

  input_size: int = 3
  output_size: int = 5

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    target_BL = jnp.cumsum(input_BL - 1, axis=1, dtype=jnp.int32) % 5
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_batch(
      self, key: jax.Array, batch_size: int, max_length: int, length
  ) -> task.Batch:
    self.check_sample_args(batch_size, max_length, length)
    length = self.clip_length(max_length, length)
    length_B = jnp.full((batch_size,), length, jnp.int32)
    moves_BL = jax.random.randint(
        key, (batch_size, max_length), 0, 3, jnp.int32
    )
    moves_BL = jnp.where(task.valid_mask_BL(length_B, max_length), moves_BL, 0)
    target_B = task.last_valid_B(self.prefix_targets(moves_BL)[0], length_B)
    return task.Batch(moves_BL, length_B, target_B)
