"""Tests of the length curricula: ranges, distributions and jittability."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from training import curriculum

# No silent broadcasting in tests.
jax.config.update('jax_numpy_rank_promotion', 'raise')

_NUM_SAMPLES = 20_000


def _draw_SN(cur: curriculum.Curriculum, steps, num_samples: int):
  """`num_samples` lengths at every step of `steps`, one key each, one jit."""
  steps_S = jnp.asarray(steps, jnp.int32)
  keys_SN = jax.random.split(jax.random.key(0), (len(steps), num_samples))
  sample_N = jax.vmap(cur.sample, (0, None))
  lengths_SN = jax.jit(jax.vmap(sample_N))(keys_SN, steps_S)
  chex.assert_shape(lengths_SN, (len(steps), num_samples))
  chex.assert_type(lengths_SN, jnp.int32)
  return np.asarray(lengths_SN)


def _regular_increase(sample_all_lengths: bool, **overrides):
  kwargs = dict(
      initial_length=3,
      increase_frequency=10,
      increase_amount=2,
      sample_all_lengths=sample_all_lengths,
      length_cap=15,
  )
  kwargs.update(overrides)
  return curriculum.RegularIncreaseCurriculum(**kwargs)


_ALL_CURRICULA = (
    ('fixed', curriculum.FixedCurriculum(7), 7),
    ('uniform', curriculum.UniformCurriculum(tuple(range(1, 41))), 40),
    (
        'reverse_exponential',
        curriculum.ReverseExponentialCurriculum(tuple(range(1, 11)), 0.5),
        10,
    ),
    ('regular_increase', _regular_increase(False), 15),
    ('regular_increase_all', _regular_increase(True), 15),
)


class CurriculumTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_fixed_always_returns_its_length(self):
    cur = curriculum.FixedCurriculum(7)
    sample = self.variant(cur.sample)
    for step in (0, 1, 1000):
      length = sample(jax.random.key(step), jnp.int32(step))
      self.assertEqual(length, 7)
      chex.assert_type(length, jnp.int32)
    self.assertEqual(cur.max_length, 7)

  def test_uniform_is_flat_over_its_values(self):
    values = tuple(range(1, 41))
    lengths_N = _draw_SN(curriculum.UniformCurriculum(values), [0], 8000)[0]
    counts_V = np.array([(lengths_N == v).sum() for v in values])
    self.assertEqual(counts_V.sum(), len(lengths_N))  # Nothing outside 1..40.
    self.assertTrue((counts_V > 0).all())
    self.assertGreater(stats.chisquare(counts_V).pvalue, 1e-4, counts_V)

  def test_uniform_only_returns_listed_values(self):
    cur = curriculum.UniformCurriculum([3, 5, 11])
    lengths_N = _draw_SN(cur, [0], 1000)[0]
    self.assertEqual(set(lengths_N.tolist()), {3, 5, 11})
    self.assertEqual(cur.max_length, 11)

  @parameterized.parameters(0.5, 2.0)
  def test_reverse_exponential_follows_tau_to_the_value(self, tau):
    values = list(range(1, 11))
    cur = curriculum.ReverseExponentialCurriculum(tuple(values), tau)
    lengths_N = _draw_SN(cur, [0], _NUM_SAMPLES)[0]
    weights_V = np.array([tau**v for v in values])
    expected_V = weights_V / weights_V.sum()
    observed_V = np.array([(lengths_N == v).mean() for v in values])
    self.assertAlmostEqual(observed_V.sum(), 1.0)  # Nothing outside 1..10.
    tolerance_V = 4 * np.sqrt(expected_V * (1 - expected_V) / _NUM_SAMPLES)
    np.testing.assert_array_less(
        np.abs(observed_V - expected_V), tolerance_V + 1e-3
    )
    self.assertEqual(cur.max_length, 10)

  def test_reverse_exponential_handles_long_values(self):
    # tau ** 500 underflows float32; the lengths must still be valid.
    values = tuple(range(1, 501))
    cur = curriculum.ReverseExponentialCurriculum(values, 0.9)
    lengths_N = _draw_SN(cur, [0], 2000)[0]
    self.assertTrue(((lengths_N >= 1) & (lengths_N <= 500)).all())
    # P(length <= 30) = 1 - 0.9 ** 30 ~ 0.96.
    self.assertAlmostEqual((lengths_N <= 30).mean(), 1 - 0.9**30, delta=0.02)

  def test_regular_increase_grows_with_the_step_up_to_the_cap(self):
    steps = list(range(0, 120))
    lengths_SN = _draw_SN(_regular_increase(False), steps, 4)
    for step, lengths_N in zip(steps, lengths_SN):
      expected = min(3 + 2 * (step // 10), 15)
      np.testing.assert_array_equal(lengths_N, expected, f'step {step}')
    self.assertEqual(_regular_increase(False).max_length, 15)

  def test_regular_increase_all_lengths_draws_every_reached_length(self):
    steps = [0, 9, 10, 25, 39, 59, 60, 1000]
    lengths_SN = _draw_SN(_regular_increase(True), steps, 4000)
    for step, lengths_N in zip(steps, lengths_SN):
      stage = step // 10
      reached = {min(3 + 2 * k, 15) for k in range(stage + 1)}
      self.assertEqual(set(lengths_N.tolist()), reached, f'step {step}')
    # Below the cap, the stage k is uniform in 0..stage.
    k_N = (lengths_SN[steps.index(39)] - 3) // 2
    counts_K = np.bincount(k_N, minlength=4)
    self.assertGreater(stats.chisquare(counts_K).pvalue, 1e-4, counts_K)

  def test_regular_increase_by_zero_keeps_the_initial_length(self):
    cur = _regular_increase(True, increase_amount=0)
    np.testing.assert_array_equal(_draw_SN(cur, [0, 50, 500], 100), 3)

  @parameterized.named_parameters(*_ALL_CURRICULA)
  def test_sample_traces_once_for_every_step(self, cur, max_length):
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sample(key, step):
      return cur.sample(key, step)

    for step in range(0, 200, 7):
      length = sample(jax.random.key(step), jnp.int32(step))
      chex.assert_shape(length, ())
      chex.assert_type(length, jnp.int32)
      self.assertBetween(int(length), 1, max_length)
    self.assertEqual(cur.max_length, max_length)

  def test_bad_arguments_raise(self):
    bad_constructions = (
        ('length must be >= 1', lambda: curriculum.FixedCurriculum(0)),
        ('values must be non-empty', lambda: curriculum.UniformCurriculum(())),
        ('lengths >= 1', lambda: curriculum.UniformCurriculum((0, 3))),
        (
            'values must be non-empty',
            lambda: curriculum.ReverseExponentialCurriculum((), 0.5),
        ),
        (
            'tau must be > 0',
            lambda: curriculum.ReverseExponentialCurriculum((1, 2), 0.0),
        ),
        (
            'tau must be > 0',
            lambda: curriculum.ReverseExponentialCurriculum((1, 2), -1.0),
        ),
        ('initial_length', lambda: _regular_increase(False, initial_length=0)),
        (
            'increase_frequency',
            lambda: _regular_increase(False, increase_frequency=0),
        ),
        (
            'increase_amount must be >= 0',
            lambda: _regular_increase(False, increase_amount=-1),
        ),
        (
            'length_cap must be >= initial_length',
            lambda: _regular_increase(False, length_cap=2),
        ),
    )
    for message, construct in bad_constructions:
      with self.subTest(message), self.assertRaisesRegex(ValueError, message):
        construct()


if __name__ == '__main__':
  absltest.main()
