"""Dropout: the hashed mask's rate, and the traced rate against the constant."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from neural_networks import dropout

_SHAPE = (64, 33, 48)


def _x():
  return jax.random.normal(jax.random.key(1), _SHAPE)


class DropoutTest(parameterized.TestCase):

  @parameterized.parameters(0.1, 0.3, 0.5, 0.9)
  def test_the_fraction_dropped_is_the_rate(self, rate):
    y = dropout.dropout(_x(), rate, jnp.uint32(7))
    dropped = float(jnp.mean(y == 0.0))
    # 101,376 entries: the standard error is below 0.0016.
    self.assertAlmostEqual(dropped, rate, delta=0.01)

  def test_kept_entries_are_rescaled(self):
    x = _x()
    y = dropout.dropout(x, 0.25, jnp.uint32(3))
    kept = y != 0.0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-6)

  def test_identity_without_a_seed_or_at_rate_zero(self):
    x = _x()
    self.assertIs(dropout.dropout(x, 0.3, None), x)
    self.assertIs(dropout.dropout(x, 0.0, jnp.uint32(3)), x)

  @parameterized.parameters(0.0, 0.1, 0.3, 0.5)
  def test_a_traced_rate_gives_the_constant_rates_mask(self, rate):
    x = _x()

    @jax.jit
    def traced(rate_values):
      with dropout.traced_rate(rate_values):
        return dropout.dropout(x, dropout.ON, jnp.uint32(11))

    got = traced(dropout.rate_values(rate))
    expected = dropout.dropout(x, rate, jnp.uint32(11))
    np.testing.assert_array_equal(got == 0.0, expected == 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)

  def test_one_program_serves_every_rate(self):
    x = _x()

    @jax.jit
    def traced(rate_values):
      with dropout.traced_rate(rate_values):
        return dropout.dropout(x, dropout.ON, jnp.uint32(11))

    fractions = [float(jnp.mean(traced(dropout.rate_values(rate)) == 0.0))
                 for rate in (0.0, 0.2, 0.6)]
    self.assertEqual(traced._cache_size(), 1)  # pylint: disable=protected-access
    np.testing.assert_allclose(fractions, [0.0, 0.2, 0.6], atol=0.01)

  def test_a_site_that_is_off_stays_off_under_a_traced_rate(self):
    x = _x()
    with dropout.traced_rate(dropout.rate_values(0.5)):
      self.assertIs(dropout.dropout(x, 0.0, jnp.uint32(3)), x)

  def test_the_traced_rate_ends_with_its_block(self):
    x = _x()
    with dropout.traced_rate(dropout.rate_values(0.0)):
      pass
    y = dropout.dropout(x, 0.5, jnp.uint32(3))
    self.assertAlmostEqual(float(jnp.mean(y == 0.0)), 0.5, delta=0.01)

  @parameterized.parameters(-0.1, 1.0)
  def test_a_rate_outside_0_1_is_refused(self, rate):
    with self.assertRaisesRegex(ValueError, 'dropout must be in'):
      dropout.rate_values(rate)


if __name__ == '__main__':
  absltest.main()
