"""Tests of the sampling part of the training step."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from tasks.regular import parallel_parity_check
from tasks.regular import parity_check
from training import train_step

# No silent broadcasting in tests.
jax.config.update('jax_numpy_rank_promotion', 'raise')


class SamplePaddedTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('parity', parity_check.ParityCheck()),
      # Strings of n tokens per requested length.
      ('parallel_parity', parallel_parity_check.ParallelParityCheck()))
  def test_vmapped_seeds_draw_the_strings_of_their_own_bucket(self, task):
    max_lengths = tuple(task.padded_length(n) for n in (4, 8, 12))
    keys_R = jax.random.split(jax.random.key(0), 3)
    length_R = jnp.array([3, 7, 12], jnp.int32)
    which_R = jnp.array([0, 1, 2], jnp.int32)
    batch_R = jax.device_get(jax.jit(jax.vmap(
        lambda k, n, w: train_step.sample_padded(task, k, 5, max_lengths, w, n)
    ))(keys_R, length_R, which_R))
    jitted = jax.jit(task.sample_batch, static_argnums=(1, 2))
    sample = lambda *args: jax.device_get(jitted(*args))
    self.assertEqual(batch_R.input_BL.shape, (3, 5, max_lengths[-1]))
    for r in range(3):
      alone = sample(keys_R[r], 5, max_lengths[r], length_R[r])
      n = max_lengths[r]
      np.testing.assert_array_equal(batch_R.input_BL[r, :, :n],
                                    alone.input_BL)
      np.testing.assert_array_equal(batch_R.input_BL[r, :, n:], 0)
      np.testing.assert_array_equal(batch_R.length_B[r], alone.length_B)
      np.testing.assert_array_equal(batch_R.target_B[r], alone.target_B)
    # The check means something: the same key draws other strings at
    # another padded length.
    longer = sample(keys_R[0], 5, max_lengths[-1], length_R[0])
    self.assertFalse(np.array_equal(longer.input_BL[:, :max_lengths[0]],
                                    batch_R.input_BL[0, :, :max_lengths[0]]))


if __name__ == '__main__':
  absltest.main()
