"""Even pairs: is the number of `01` and `10` pairs in a bit string even?"""

import dataclasses

import jax
import jax.numpy as jnp

from tasks.regular import regular_task


@dataclasses.dataclass(frozen=True)
class EvenPairs(regular_task.RegularTask):
  """`0110 -> 0`, `0111 -> 1`: unequal adjacent pairs mod 2.

  The count of unequal adjacent pairs is odd exactly when the first and the
  last symbols differ, which is how the label is computed.
  """

  input_size: int = 2
  output_size: int = 2

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    target_BL = (input_BL != input_BL[:, :1]).astype(jnp.int32)
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    return jax.random.randint(key, (batch_size, max_length), 0, 2, jnp.int32)
