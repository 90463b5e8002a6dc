"""Tests of the exact and prefix range evaluations and of the scores."""

import json

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from experiments import registry
from neural_networks import pure
from neural_networks import transformer
from training import curriculum
from training import input_encoding
from training import length_buckets
from training import range_evaluation
from training import training

# No silent broadcasting in tests.
jax.config.update('jax_numpy_rank_promotion', 'raise')

_NO_EOS = input_encoding.InputEncoding(include_eos=False)
_CORRECT_UP_TO = 12
# Four standard deviations of the difference of two independent accuracies
# over 512 strings each, at the worst case p = 0.5.
_AGREEMENT = 4 * np.sqrt(2 * 0.25 / 512)


def _parity_model(correct_up_to: int, traces: list[int] | None = None
                  ) -> pure.PureModel:
  """Causal: right on prefixes of <= `correct_up_to` tokens, a coin beyond.

  Beyond, it predicts the parity of the prefix without its last token, which
  is right exactly when that token is 0.
  """

  def init(key):
    del key  # Nothing to sample.
    return {'scale': jnp.float32(10.0)}

  def apply(params, input_BL, length_B, key):
    del length_B, key  # Causal and deterministic.
    if traces is not None:
      traces.append(1)
    count_BL = jnp.cumsum(input_BL, axis=1)
    position_L = jnp.arange(input_BL.shape[1])
    predicted_BL = jnp.where(position_L[None, :] < correct_up_to,
                             count_BL % 2, (count_BL - input_BL) % 2)
    return jax.nn.one_hot(predicted_BL, 2) * params['scale']

  return pure.PureModel(init, apply)


def _perfect_model(task) -> pure.PureModel:
  """Causal and exactly right at every valid prefix of `task`."""

  def apply(params, input_BL, length_B, key):
    del params, length_B, key  # The task's own prefix labels.
    target_BL, _ = task.prefix_targets(input_BL)
    return jax.nn.one_hot(target_BL, task.output_size)

  return pure.PureModel(lambda key: {}, apply)


# Shared so that tests reuse its compiled programs.
_PARITY = registry.task_entry('parity_check').build()
_PARITY_MODEL = _parity_model(_CORRECT_UP_TO)


class SummarizeTest(parameterized.TestCase):

  def test_scores_use_the_original_index_range(self):
    # Lengths 1..8; training on 1..3. Length 4 (index 3) is in the OOD score
    # but not in the original score.
    accuracy_K = np.array([1.0, 1.0, 1.0, 0.9, 0.5, 0.25, 0.0, 1.0])
    result = range_evaluation.summarize(accuracy_K, training_length=3)
    self.assertAlmostEqual(result.score, np.mean([0.5, 0.25, 0.0, 1.0]))
    self.assertAlmostEqual(result.ood_score,
                           np.mean([0.9, 0.5, 0.25, 0.0, 1.0]))
    self.assertAlmostEqual(result.in_distribution_accuracy, 1.0)
    self.assertEqual(result.solved_up_to, 3)
    self.assertIn('lengths 5..8', result.score_definition)
    self.assertIn('indices 4 onward', result.score_definition)
    self.assertIn('4..8', result.ood_score_definition)
    self.assertEqual(result.per_length[3].length, 4)
    self.assertEqual(result.per_length[3].accuracy, 0.9)

  @parameterized.parameters(
      ([0.5, 1.0, 1.0, 1.0], 0.99, 0),
      ([1.0, 1.0, 1.0, 1.0], 0.99, 4),
      ([1.0, 0.995, 0.98, 1.0], 0.99, 2),
      ([1.0, 0.995, 0.98, 1.0], 0.9, 4),
  )
  def test_solved_up_to_is_the_first_failure(self, accuracy_K, threshold,
                                             expected):
    result = range_evaluation.summarize(accuracy_K, 1, threshold)
    self.assertEqual(result.solved_up_to, expected)

  def test_to_json_is_plain_and_complete(self):
    result = range_evaluation.summarize(np.linspace(1.0, 0.5, 6), 2)
    loaded = json.loads(json.dumps(result.to_json()))
    for name in ('per_length', 'score', 'score_definition', 'ood_score',
                 'ood_score_definition', 'solved_up_to',
                 'in_distribution_accuracy'):
      self.assertIn(name, loaded)
    self.assertEqual(loaded['per_length'][0], {'length': 1, 'accuracy': 1.0})
    self.assertLen(loaded['per_length'], 6)
    self.assertAlmostEqual(loaded['score'], np.mean(np.linspace(1, .5, 6)[3:]))

  @parameterized.named_parameters(
      ('training_reaches_test', [1.0] * 4, 4, 0.99),
      ('score_range_empty', [1.0] * 4, 3, 0.99),
      ('training_length_zero', [1.0] * 4, 0, 0.99),
      ('accuracy_above_one', [1.0, 1.5, 1.0, 1.0], 1, 0.99),
      ('nan_accuracy', [1.0, np.nan, 1.0, 1.0], 1, 0.99),
      ('two_dimensional', [[1.0] * 4], 1, 0.99),
      ('threshold_zero', [1.0] * 4, 1, 0.0),
  )
  def test_rejects_bad_arguments(self, accuracy_K, training_length,
                                 threshold):
    with self.assertRaises(ValueError):
      range_evaluation.summarize(accuracy_K, training_length, threshold)


class EvaluateTest(chex.TestCase):

  def test_exact_is_right_up_to_the_cut_and_a_coin_beyond(self):
    accuracy_K = range_evaluation.evaluate_exact(
        _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, 40,
        bucket_width=20)
    self.assertEqual(accuracy_K.shape, (40,))
    np.testing.assert_array_equal(accuracy_K[:_CORRECT_UP_TO], 1.0)
    self.assertLess(np.abs(accuracy_K[_CORRECT_UP_TO:] - 0.5).max(), 0.1)

  def test_exact_samples_from_keys_folded_with_the_length(self):
    accuracy_K = range_evaluation.evaluate_exact(
        _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, 40,
        bucket_width=20)
    key = range_evaluation.default_key()
    for length in (13, 31):
      keys = jax.random.split(jax.random.fold_in(key, length), 8)
      last_tokens = [
          np.asarray(_PARITY.sample_batch(k, 64, 40, length).input_BL)[
              :, length - 1] for k in keys]
      # Beyond the cut the model is right exactly when the last token is 0.
      self.assertEqual(accuracy_K[length - 1],
                       np.mean(np.concatenate(last_tokens) == 0))

  def test_prefix_agrees_with_exact_within_sampling_error(self):
    exact_K = range_evaluation.evaluate_exact(
        _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, 40,
        bucket_width=20)
    prefix_K = range_evaluation.evaluate_prefix(
        _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, 40)
    self.assertEqual(prefix_K.shape, (40,))
    np.testing.assert_array_equal(prefix_K[:_CORRECT_UP_TO], 1.0)
    difference_K = np.abs(prefix_K - exact_K)
    self.assertLess(difference_K.max(), _AGREEMENT)
    self.assertLess(difference_K[_CORRECT_UP_TO:].mean(), 0.05)
    self.assertLess(np.abs(prefix_K[_CORRECT_UP_TO:] - 0.5).max(), 0.1)

  @parameterized.parameters(
      'parity_check', 'modular_arithmetic', 'parallel_parity_check')
  def test_a_perfect_model_scores_one_at_every_length(self, task_name):
    # Reading any wrong token (e.g. an even prefix of modular arithmetic, or
    # token L - 1 of parallel parity) would lose accuracy.
    task = registry.task_entry(task_name).build()
    model = _perfect_model(task)
    for evaluate in (range_evaluation.evaluate_exact,
                     range_evaluation.evaluate_prefix):
      accuracy_K = evaluate(model, {}, task, _NO_EOS, 15, num_strings=128)
      np.testing.assert_array_equal(accuracy_K, np.ones(15))

  def test_a_trained_model_agrees_across_protocols(self):
    # A small causal Transformer trained on lengths 1..10: its accuracy
    # varies with the length, so agreement is not trivial.
    model = pure.from_nnx(transformer.TransformerConfig(
        _NO_EOS.vocab_size(_PARITY), _PARITY.output_size, d_model=16,
        num_heads=2, num_layers=2, is_causal=True).make)
    config = training.TrainConfig(seed=0, batch_size=64, learning_rate=3e-3,
                                  log_every=100)
    result = training.train(
        _PARITY, [training.Phase('default', 301, model)], _NO_EOS,
        curriculum.UniformCurriculum(tuple(range(1, 11))), config,
        progress=False)
    exact_K = range_evaluation.evaluate_exact(
        model, result.eval_params, _PARITY, _NO_EOS, 30)
    prefix_K = range_evaluation.evaluate_prefix(
        model, result.eval_params, _PARITY, _NO_EOS, 30)
    self.assertGreater(exact_K.max() - exact_K.min(), 0.15)
    self.assertLess(np.abs(prefix_K - exact_K).max(), _AGREEMENT)
    self.assertLess(np.abs(prefix_K - exact_K).mean(), 0.05)
    for accuracy_K in (exact_K, prefix_K):
      self.assertEqual(accuracy_K.shape, (30,))
      self.assertTrue(np.all((accuracy_K >= 0) & (accuracy_K <= 1)))

  def test_exact_compiles_once_per_bucket(self):
    traces = []
    model = _parity_model(_CORRECT_UP_TO, traces)
    buckets = length_buckets.make_buckets(30, 10)
    range_evaluation.evaluate_exact(
        model, {'scale': 10.0}, _PARITY, _NO_EOS, 30, num_strings=128,
        bucket_width=10)
    self.assertBetween(len(traces), 1, len(buckets))
    count = len(traces)
    range_evaluation.evaluate_exact(
        model, {'scale': 10.0}, _PARITY, _NO_EOS, 30, num_strings=128,
        bucket_width=10, key=jax.random.key(7))
    self.assertLen(traces, count)  # A new key or call does not retrace.

  def test_the_same_key_gives_the_same_accuracies(self):
    run = lambda key: range_evaluation.evaluate_exact(
        _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, 40,
        bucket_width=20, key=key)
    np.testing.assert_array_equal(run(None), run(jax.random.key(1)))
    self.assertFalse(np.array_equal(run(None), run(jax.random.key(2))))

  def test_bucket_width_and_rows_per_forward_do_not_change_results(self):
    run = lambda **kw: range_evaluation.evaluate_exact(
        _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, 40, **kw)
    np.testing.assert_array_equal(run(bucket_width=40, rows_per_forward=64),
                                  run(bucket_width=20))
    np.testing.assert_array_equal(run(tokens_per_forward=2**22),
                                  run(tokens_per_forward=1))

  def test_exact_reads_the_answer_after_eos(self):
    task = registry.task_entry('parity_check').build()
    encoding = input_encoding.InputEncoding(include_eos=True)

    def apply(params, input_BT, length_B, key):
      del params, length_B, key  # Right only at the end-of-string token.
      parity_BT = jnp.cumsum(input_BT == 1, axis=1) % 2
      is_eos_BT = input_BT == task.input_size
      return jax.nn.one_hot(jnp.where(is_eos_BT, parity_BT, 1 - parity_BT), 2)

    accuracy_K = range_evaluation.evaluate_exact(
        pure.PureModel(lambda key: {}, apply), {}, task, encoding, 10,
        num_strings=64)
    np.testing.assert_array_equal(accuracy_K, np.ones(10))

  def test_prefix_rejects_include_eos(self):
    with self.assertRaisesRegex(ValueError, 'include_eos'):
      range_evaluation.evaluate_prefix(
          _PARITY_MODEL, {'scale': 10.0}, _PARITY,
          input_encoding.InputEncoding(include_eos=True), 10)

  @parameterized.named_parameters(
      ('test_length_zero', dict(test_length=0)),
      ('indivisible_strings', dict(num_strings=100)),
      ('zero_strings', dict(num_strings=0)),
      ('rows_not_dividing', dict(rows_per_forward=192)),
      ('zero_width', dict(bucket_width=0)),
  )
  def test_exact_rejects_bad_arguments(self, kwargs):
    kwargs = dict(test_length=10) | kwargs
    with self.assertRaises(ValueError):
      range_evaluation.evaluate_exact(
          _PARITY_MODEL, {'scale': 10.0}, _PARITY, _NO_EOS, **kwargs)


if __name__ == '__main__':
  absltest.main()
