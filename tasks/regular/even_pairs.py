"""Even pairs: is the number of `01` and `10` pairs in a bit string even?"""

import dataclasses

import jax
import jax.numpy as jnp

from tasks import task


@dataclasses.dataclass(frozen=True)
class EvenPairs(task.Task):
  """`0110 -> 0`, `0111 -> 1`: unequal adjacent pairs mod 2.

  The count of unequal adjacent pairs is odd exactly when the first and the
  last symbols differ, which is how the label is computed.
  """

  input_size: int = 2
  output_size: int = 2

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    target_BL = (input_BL != input_BL[:, :1]).astype(jnp.int32)
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_batch(
      self, key: jax.Array, batch_size: int, max_length: int, length
  ) -> task.Batch:
    self.check_sample_args(batch_size, max_length, length)
    length = self.clip_length(max_length, length)
    length_B = jnp.full((batch_size,), length, jnp.int32)
    bits_BL = jax.random.randint(key, (batch_size, max_length), 0, 2, jnp.int32)
    bits_BL = jnp.where(task.valid_mask_BL(length_B, max_length), bits_BL, 0)
    target_B = (bits_BL[:, 0] != task.last_valid_B(bits_BL, length_B))
    return task.Batch(bits_BL, length_B, target_B.astype(jnp.int32))
