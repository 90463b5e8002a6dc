"""experiments/op_profile.py: op kinds, exclusive time, a real trace."""

import tempfile
import time

import jax
import jax.numpy as jnp
from absl.testing import absltest

from experiments import op_profile


class KindTest(absltest.TestCase):

  def test_numeric_suffixes_are_dropped(self):
    self.assertEqual(op_profile.kind_of('fusion.12'), 'fusion')
    self.assertEqual(op_profile.kind_of('dot.3'), 'dot')
    self.assertEqual(op_profile.kind_of('copy'), 'copy')
    self.assertEqual(op_profile.kind_of('bitcast.1.2'), 'bitcast')


class ExclusiveTimeTest(absltest.TestCase):

  def test_a_loop_is_charged_only_what_its_body_does_not_take(self):
    # (start, duration, name): a while spanning two dots, then a copy.
    events = [(0, 100, 'while'), (10, 30, 'dot'), (50, 20, 'dot'),
              (120, 5, 'copy')]
    self.assertEqual(sorted(op_profile._exclusive_ns(events)),
                     [('copy', 5), ('dot', 20), ('dot', 30), ('while', 50)])

  def test_nesting_two_deep(self):
    events = [(0, 100, 'while'), (0, 60, 'conditional'), (5, 50, 'dot'),
              (70, 10, 'fusion')]
    self.assertEqual(dict(op_profile._exclusive_ns(events)),
                     {'while': 30, 'conditional': 10, 'dot': 50,
                      'fusion': 10})

  def test_back_to_back_events_do_not_nest(self):
    events = [(0, 10, 'a'), (10, 10, 'b'), (20, 10, 'c')]
    self.assertEqual(dict(op_profile._exclusive_ns(events)),
                     {'a': 10, 'b': 10, 'c': 10})


class TraceTest(absltest.TestCase):

  def test_a_loop_of_matmuls_shows_every_iteration(self):
    iterations, runs = 7, 3

    @jax.jit
    def repeated(a_NN):
      return jax.lax.fori_loop(0, iterations, lambda i, x: jnp.tanh(x @ a_NN),
                               a_NN)

    a_NN = jax.random.normal(jax.random.key(0), (128, 128)) / 16
    jax.block_until_ready(repeated(a_NN))
    with tempfile.TemporaryDirectory() as trace_dir:
      start = time.perf_counter()
      with jax.profiler.trace(trace_dir):
        for _ in range(runs):
          jax.block_until_ready(repeated(a_NN))
      wall_ms = (time.perf_counter() - start) * 1e3
      profile = op_profile.op_time_by_kind(trace_dir)
    kinds = profile['kinds']
    self.assertGreaterEqual(profile['threads'], 1)
    # Whatever XLA calls the matmul, some kind runs once per iteration.
    self.assertGreaterEqual(max(k['calls'] for k in kinds.values()),
                            iterations * runs)
    total_ms = sum(k['ms'] for k in kinds.values())
    self.assertGreater(total_ms, 0)
    self.assertLessEqual(total_ms, profile['threads'] * wall_ms)
    self.assertTrue(all(k['ms'] >= 0 for k in kinds.values()))

  def test_no_profile_is_an_error(self):
    with tempfile.TemporaryDirectory() as empty:
      with self.assertRaisesRegex(FileNotFoundError, 'no .xplane.pb'):
        op_profile.op_time_by_kind(empty)


if __name__ == '__main__':
  absltest.main()
