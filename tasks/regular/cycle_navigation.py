"""Cycle navigation: where does a walk on a cycle of 5 positions end?"""

import dataclasses

import jax
import jax.numpy as jnp

from tasks.regular import regular_task


@dataclasses.dataclass(frozen=True)
class CycleNavigation(regular_task.RegularTask):
  """Symbols 0, 1, 2 move -1, 0, +1 on a 5-cycle from 0: `0122 -> 1`."""

  input_size: int = 3
  output_size: int = 5

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    target_BL = jnp.cumsum(input_BL - 1, axis=1, dtype=jnp.int32) % 5
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    return jax.random.randint(key, (batch_size, max_length), 0, 3, jnp.int32)
