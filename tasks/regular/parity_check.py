"""Parity check: is the number of 1s in a bit string odd?"""

import dataclasses

import jax
import jax.numpy as jnp

from tasks.regular import regular_task


@dataclasses.dataclass(frozen=True)
class ParityCheck(regular_task.RegularTask):
  """`0110 -> 0`, `0111 -> 1`: the number of 1s mod 2."""

  input_size: int = 2
  output_size: int = 2

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    target_BL = jnp.cumsum(input_BL, axis=1, dtype=jnp.int32) % 2
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    return jax.random.randint(key, (batch_size, max_length), 0, 2, jnp.int32)
