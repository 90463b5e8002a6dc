"""Tests of the training loop: resume, determinism, validation, NaNs."""

import dataclasses
import io
import json
import logging as std_logging
import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import chex
import haiku as hk
import jax
from jax.experimental.compilation_cache import compilation_cache
import jax.numpy as jnp
import numpy as np
import pytest

from neural_networks import block_recurrent
from neural_networks import pure
from neural_networks import staircase
from tasks.regular import parity_check
from training import checkpointing
from training import curriculum as curriculum_lib
from training import input_encoding
from training import length_buckets
from training import optimizers
from training import range_evaluation
from training import train_step
from training import training
from training import validation

# No silent broadcasting in tests.
jax.config.update('jax_numpy_rank_promotion', 'raise')

_TASK = parity_check.ParityCheck()
_NO_EOS = input_encoding.InputEncoding(include_eos=False)
_SEQUENCE_LENGTH = 8
_CURRICULUM = curriculum_lib.UniformCurriculum(
    tuple(range(1, _SEQUENCE_LENGTH + 1)))
# 21 steps: parallel mode for steps 0..7, staircase mode from step 8 on;
# logs at 3, 6, ..., 21; validations at 5, 10, 15, 20, 21; checkpoints at 7,
# 14, 21.
_CONFIG = training.TrainConfig(
    seed=3, batch_size=8, learning_rate=3e-3, validate=True, validation_length=_SEQUENCE_LENGTH,
    validate_every=5, log_every=3, checkpoint_every=7, length_multiple=2)
_TIMING_KEYS = ('steps_per_second',)

_cache_dir = None


def setUpModule():
  # Every train() call jits fresh closures; a persistent compilation cache
  # turns the repeated compiles into lookups. It only saves time.
  global _cache_dir
  _cache_dir = tempfile.mkdtemp()
  compilation_cache.set_cache_dir(_cache_dir)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)


def tearDownModule():
  jax.config.update('jax_compilation_cache_dir', None)
  compilation_cache.reset_cache()
  shutil.rmtree(_cache_dir, ignore_errors=True)


_TOTAL_STEPS = 21
_STAIRCASE = staircase.StaircaseConfig(
    _NO_EOS.vocab_size(_TASK), _TASK.output_size, d_model=16, num_heads=2,
    group_size=1, num_recurrent_calls=2, chunk_size=2)


def _staircase_phases(train_steps=8, second_training_steps=12,
                      wrap=lambda mode, model: model
                      ) -> list[training.Phase]:
  """The original's phases: parallel mode, then staircase mode."""
  return [training.Phase(name, steps, wrap(name, pure.from_nnx(
      dataclasses.replace(_STAIRCASE, **overrides).make)))
          for name, steps, overrides in _STAIRCASE.training_phases(
              train_steps, second_training_steps)]


def _one_phase(model, steps) -> list[training.Phase]:
  return [training.Phase('default', steps, model)]


def _tempdir(test: absltest.TestCase) -> str:
  """A fresh folder removed after `test` (works under pytest and absltest)."""
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _damage(step_dir: str) -> None:
  """Overwrites every file of a checkpoint folder with junk, as bit rot or a
  partial copy would."""
  files = [os.path.join(root, name) for root, _, names in os.walk(step_dir)
           for name in names]
  assert files, step_dir
  for path in files:
    with open(path, 'wb') as f:
      f.write(b'\x00junk')


def _read_metrics(run_dir: str) -> list[dict[str, object]]:
  path = os.path.join(run_dir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _without_timing(records):
  return [{k: v for k, v in r.items() if k not in _TIMING_KEYS}
          for r in records]


def _train(phases, run_dir, config=_CONFIG, curriculum=_CURRICULUM,
           log_fn=None):
  """training.train, returning (result, what it logged)."""
  out = io.StringIO()
  stream = std_logging.StreamHandler(out)
  logger = std_logging.getLogger('absl')
  level = logger.level
  logger.addHandler(stream)
  logger.setLevel(std_logging.INFO)
  try:
    result = training.train(_TASK, phases, _NO_EOS, curriculum, config,
                            run_dir=run_dir, progress=False, log_fn=log_fn)
  finally:
    logger.removeHandler(stream)
    logger.setLevel(level)
  return result, out.getvalue()


def _raise_at(step: int, error: BaseException):
  def log_fn(record):
    if record['step'] == step:
      raise error
  return log_fn


def _scores(model, params) -> dict[str, float]:
  accuracy_L = range_evaluation.evaluate_prefix(
      model, params, _TASK, _NO_EOS, 12, num_strings=64)
  summary = range_evaluation.summarize(accuracy_L, _SEQUENCE_LENGTH)
  return {'score': summary.score, 'ood_score': summary.ood_score,
          'solved_up_to': summary.solved_up_to}


class PhaseTest(absltest.TestCase):

  def test_staircase_switches_at_train_steps(self):
    self.assertEqual(_STAIRCASE.training_phases(8, 12),
                     (('parallel', 8, {'mode': 'parallel'}),
                      ('staircase', 13, {})))

  def test_no_second_phase_stays_parallel(self):
    parallel = dataclasses.replace(_STAIRCASE, mode='parallel')
    self.assertEqual(parallel.training_phases(8, 0), (('parallel', 9, {}),))

  def test_phases_run_in_order_and_log_their_names(self):
    records = []
    _train(_staircase_phases(2, 3), None,
           dataclasses.replace(_CONFIG, validate=False, log_every=1),
           log_fn=records.append)
    self.assertEqual([r['mode'] for r in records],
                     ['parallel'] * 2 + ['staircase'] * 4)


class ResumeTest(parameterized.TestCase):
  """Run A goes uninterrupted; the others are stopped and rerun."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.models = _staircase_phases()
    cls.run_a = tempfile.mkdtemp()
    cls.result_a, _ = _train(cls.models, cls.run_a)
    cls.metrics_a = _read_metrics(cls.run_a)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.run_a, ignore_errors=True)
    super().tearDownClass()

  def assert_same_as_run_a(self, result, run_dir):
    chex.assert_trees_all_close(result.state.params,
                                self.result_a.state.params, atol=1e-6)
    chex.assert_trees_all_close(result.eval_params, self.result_a.eval_params,
                                atol=1e-6)
    self.assertEqual(result.eval_step, self.result_a.eval_step)
    self.assertEqual(result.best_validation_accuracy,
                     self.result_a.best_validation_accuracy)
    model = self.models[-1].model
    scores = _scores(model, result.eval_params)
    for name, value in _scores(model, self.result_a.eval_params).items():
      self.assertAlmostEqual(scores[name], value, delta=1e-6, msg=name)
    self.assertEqual(_without_timing(_read_metrics(run_dir)),
                     _without_timing(self.metrics_a))

  def test_run_a_logs_every_log_and_validation_step(self):
    self.assertEqual([r['step'] for r in self.metrics_a],
                     [3, 5, 6, 9, 10, 12, 15, 18, 20, 21])
    self.assertEqual(self.metrics_a[0]['mode'], 'parallel')
    self.assertEqual(self.metrics_a[-1]['mode'], 'staircase')
    for record in self.metrics_a:
      if record['step'] % 3 == 0 or record['step'] == 21:
        self.assertContainsSubset(
            {'step', 'train_loss', 'train_accuracy', 'steps_per_second'},
            record)
        self.assertTrue(np.isfinite(record['train_loss']))

  @pytest.mark.slow  # 12 s; example_test checks the same through the CLI.
  def test_a_crash_resumes_from_the_last_checkpoint_and_matches(self):
    run_dir = _tempdir(self)
    crash = RuntimeError('simulated crash')
    with self.assertRaises(RuntimeError):
      _train(self.models, run_dir, log_fn=_raise_at(18, crash))
    # Lines 15 and 18 were logged after the checkpoint of step 14.
    self.assertEqual(_read_metrics(run_dir)[-1]['step'], 18)
    result, printed = _train(self.models, run_dir)
    self.assertIn('Resuming from step 14', printed)
    self.assert_same_as_run_a(result, run_dir)

  def test_a_crash_before_any_checkpoint_starts_afresh_without_old_lines(self):
    run_dir = _tempdir(self)
    with self.assertRaises(RuntimeError):
      _train(self.models, run_dir, log_fn=_raise_at(5, RuntimeError()))
    self.assertEqual([r['step'] for r in _read_metrics(run_dir)], [3, 5])
    result, printed = _train(self.models, run_dir)
    self.assertNotIn('Resuming', printed)
    self.assert_same_as_run_a(result, run_dir)  # Steps 3 and 5 once each.

  @pytest.mark.slow  # 14 s; example_test checks the same through the CLI.
  def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(self):
    run_dir = _tempdir(self)
    with self.assertRaises(RuntimeError):
      _train(self.models, run_dir, log_fn=_raise_at(18, RuntimeError()))
    _damage(os.path.join(run_dir, 'checkpoints', 'latest', '14'))
    result, printed = _train(self.models, run_dir)
    self.assertIn('latest checkpoint at step 14 is unreadable', printed)
    self.assertIn('Resuming from step 7', printed)
    self.assertTrue(os.path.isdir(
        os.path.join(run_dir, 'checkpoints', 'damaged_latest_14')))
    self.assert_same_as_run_a(result, run_dir)

  @pytest.mark.slow  # 6 s; example_test checks the same through the CLI.
  def test_no_readable_checkpoint_is_one_clear_error(self):
    run_dir = _tempdir(self)
    with self.assertRaises(RuntimeError):
      _train(self.models, run_dir, log_fn=_raise_at(18, RuntimeError()))
    for step in ('7', '14'):
      _damage(os.path.join(run_dir, 'checkpoints', 'latest', step))
    with self.assertRaisesRegex(checkpointing.CheckpointError,
                                r'no readable latest checkpoint.*--overwrite'):
      _train(self.models, run_dir)

  def test_ctrl_c_saves_and_resumes_across_the_mode_switch(self):
    run_dir = _tempdir(self)
    with self.assertRaises(KeyboardInterrupt):
      _train(self.models, run_dir, log_fn=_raise_at(6, KeyboardInterrupt()))
    checkpointer = checkpointing.Checkpointer(
        os.path.join(run_dir, 'checkpoints'))
    self.assertEqual(checkpointer.latest_step(), 6)
    checkpointer.close()
    result, printed = _train(self.models, run_dir)
    self.assertIn('Resuming from step 6', printed)
    self.assert_same_as_run_a(result, run_dir)

  def test_the_same_seed_gives_the_same_metrics_and_params(self):
    records = []
    result, _ = _train(self.models, None, log_fn=records.append)
    self.assertEqual(_without_timing(records), _without_timing(self.metrics_a))
    chex.assert_trees_all_equal(result.state.params,
                                self.result_a.state.params)

  def test_validation_keeps_the_best_checkpoint(self):
    validated = [r for r in self.metrics_a if 'validation_accuracy' in r]
    accuracy_V = [r['validation_accuracy'] for r in validated]
    best = validated[int(np.argmax(accuracy_V))]  # The first maximum.
    self.assertEqual(self.result_a.eval_step, best['step'])
    self.assertEqual(self.result_a.best_validation_accuracy,
                     max(accuracy_V))
    # With this seed the best validation is not at the last step, so the
    # evaluated params are not the final ones.
    self.assertLess(self.result_a.eval_step, _TOTAL_STEPS)
    with self.assertRaises(AssertionError):
      chex.assert_trees_all_close(self.result_a.eval_params,
                                  self.result_a.state.params)
    checkpointer = checkpointing.Checkpointer(
        os.path.join(self.run_a, 'checkpoints'))
    self.assertEqual(checkpointer.best_step(), best['step'])
    _, restored, _ = checkpointer.restore(self.result_a.state, best=True)
    checkpointer.close()
    self.assertEqual(int(restored.step), best['step'])
    chex.assert_trees_all_equal(restored.params, self.result_a.eval_params)
    # The restored params reproduce the logged validation accuracy.
    # Steps 9.. run the second phase.
    phase = self.models[0 if best['step'] <= 8 else 1]
    accuracy_L = range_evaluation.evaluate_exact(
        phase.model, restored.params, _TASK, _NO_EOS,
        _CONFIG.validation_length, num_strings=_CONFIG.batch_size,
        sub_batch_size=_CONFIG.batch_size,
        key=jax.random.key(_CONFIG.seed + 10**6),
        bucket_width=_CONFIG.validation_length)
    self.assertAlmostEqual(float(np.mean(accuracy_L)), max(accuracy_V))

  def test_one_program_per_mode_and_length_bucket(self):
    traces = {'parallel': 0, 'staircase': 0}

    def counting(mode, model):
      def apply(*args):
        traces[mode] += 1
        return model.apply(*args)
      return pure.PureModel(model.init, apply)

    phases = _staircase_phases(15, 15, wrap=counting)
    curriculum = curriculum_lib.UniformCurriculum(tuple(range(1, 17)))
    config = dataclasses.replace(_CONFIG, validate=False, bucket_width=8)
    result, _ = _train(phases, None, config=config, curriculum=curriculum)
    buckets = length_buckets.make_buckets(16, config.bucket_width, 2)
    self.assertEqual(buckets, (8, 16))
    lengths = [int(curriculum.sample(training.step_keys(config.seed, s)[0], s))
               for s in range(31)]
    # The check means something: each mode saw many lengths in both buckets.
    for part in (lengths[:15], lengths[15:]):
      self.assertGreater(len(set(part)), 4)
      self.assertEqual({length_buckets.bucket_for(n, buckets) for n in part},
                       set(buckets))
    self.assertEqual(result.compiled_programs, 4)
    self.assertEqual(traces, {'parallel': 2, 'staircase': 2})


class SeedsTest(absltest.TestCase):
  """Seeds trained together in one vmapped program match runs of them alone."""

  @pytest.mark.slow  # 50 s; the 8-device subprocess checks vmapped seeds.
  def test_vmapped_brt_seeds_match_the_runs_of_those_seeds_alone(self):
    # The block-recurrent model (a scan over blocks and a custom gradient);
    # the staircase and the Transformer are checked on 8 devices in
    # tests/training/sharding_test.py and tests/experiments/multi_seed_test.py.
    brt = block_recurrent.BlockRecurrentConfig(
        _NO_EOS.vocab_size(_TASK), _TASK.output_size, d_model=16,
        num_heads=2, num_layers=2, recurrent_layer_index=1, chunk_size=2,
        num_state_vectors=2)
    models = _one_phase(pure.from_nnx(brt.make), 12)
    curriculum = curriculum_lib.UniformCurriculum(tuple(range(1, 17)))
    config = training.TrainConfig(
        seed=3, num_seeds=2, batch_size=8, learning_rate=3e-3, validate=True, validation_length=8,
        validate_every=6, log_every=1, bucket_width=8, length_multiple=2)
    buckets = length_buckets.make_buckets(16, 8, 2)
    bucket_RS = [[length_buckets.bucket_for(int(curriculum.sample(
        training.step_keys(seed, s)[0], s)), buckets)
                  for s in range(12)] for seed in (3, 4)]
    # The check means something: at some steps one seed is padded to the
    # other's longer bucket.
    self.assertNotEqual(bucket_RS[0], bucket_RS[1])
    together = []
    results = training.train_seeds(_TASK, models, _NO_EOS, curriculum,
                                   config, progress=False,
                                   log_fn=together.append)
    self.assertLen(results, 2)
    self.assertEqual(results[0].compiled_programs,
                     len(set(map(max, zip(*bucket_RS)))))
    for seed, result in zip((3, 4), results):
      alone = []
      single = training.train(
          _TASK, models, _NO_EOS, curriculum,
          dataclasses.replace(config, seed=seed, num_seeds=1),
          progress=False, log_fn=alone.append)
      mine = [{k: v for k, v in r.items() if k != 'seed'}
              for r in together if r['seed'] == seed]
      self.assertEqual([sorted(r) for r in mine], [sorted(r) for r in alone])
      for got, want in zip(mine, alone):
        for key, value in want.items():
          if key in _TIMING_KEYS:
            continue
          if isinstance(value, float):
            self.assertAlmostEqual(got[key], value, delta=1e-5, msg=key)
          else:
            self.assertEqual(got[key], value, msg=key)
      self.assertEqual(result.eval_step, single.eval_step)
      self.assertAlmostEqual(result.best_validation_accuracy,
                             single.best_validation_accuracy, delta=1e-6)
      # Adam turns float rounding in near-zero gradients into updates of up
      # to the learning rate, so parameters agree less tightly than losses.
      chex.assert_trees_all_close(result.state.params, single.state.params,
                                  atol=1e-2)
      chex.assert_trees_all_close(result.eval_params, single.eval_params,
                                  atol=1e-2)


def _haiku_model(vocab_size: int, output_size: int) -> pure.PureModel:
  """Embedding, a running sum over positions (causal), a small MLP."""

  def forward(input_BL):
    x_BLD = hk.Embed(vocab_size, 8)(input_BL)
    x_BLD = jnp.cumsum(x_BLD, axis=1)
    return hk.Linear(output_size)(jax.nn.relu(hk.Linear(8)(x_BLD)))

  f = hk.transform(forward)
  dummy_BL = jnp.zeros((1, 4), jnp.int32)
  return pure.PureModel(
      init=lambda key: f.init(key, dummy_BL),
      apply=lambda params, input_BL, length_B, key: f.apply(
          params, key, input_BL))


class AnyPureModelTest(absltest.TestCase):

  def test_a_haiku_model_trains_checkpoints_and_restores(self):
    model = _haiku_model(_NO_EOS.vocab_size(_TASK), _TASK.output_size)
    config = training.TrainConfig(seed=0, batch_size=8,
                                  learning_rate=1e-2, log_every=3,
                                  checkpoint_every=3)
    run_dir = _tempdir(self)
    initial = model.init(jax.random.key(0))
    result, _ = _train(_one_phase(model, 7), run_dir, config=config)
    self.assertEqual(int(result.state.step), 7)
    self.assertEqual(result.eval_step, 7)
    losses = [r['train_loss'] for r in _read_metrics(run_dir)]
    self.assertLen(losses, 3)  # Steps 3, 6 and 7.
    self.assertTrue(np.all(np.isfinite(losses)))
    self.assertEqual(set(result.state.params), set(initial))
    with self.assertRaises(AssertionError):  # It did train.
      chex.assert_trees_all_close(result.state.params, initial)
    # Rerunning the finished run restores the Haiku dict and trains no more.
    again, printed = _train(_one_phase(model, 7), run_dir, config=config)
    self.assertIn('Resuming from step 7', printed)
    self.assertIsInstance(again.state.params, dict)
    chex.assert_trees_all_equal(again.state.params, result.state.params)
    chex.assert_trees_all_equal(again.state.opt_state, result.state.opt_state)
    self.assertLen(_read_metrics(run_dir), 3)


@dataclasses.dataclass(frozen=True)
class _LengthTwoFrom(curriculum_lib.Curriculum):
  """Length 1 before step `first_step`, 2 from then on."""

  first_step: int

  def sample(self, key, step):
    del key  # Deterministic.
    return jnp.where(step < self.first_step, 1, 2).astype(jnp.int32)

  @property
  def max_length(self) -> int:
    return 2


def _nan_on_length_two() -> pure.PureModel:
  """A causal lookup table whose logits become NaN on strings of length 2."""

  def init(key):
    return {'table': 0.1 * jax.random.normal(key, (3, 2))}

  def apply(params, input_BL, length_B, key):
    del key  # Deterministic.
    logits_BLO = jnp.cumsum(params['table'][input_BL], axis=1)
    poison_B = jnp.where(length_B >= 2, jnp.nan, 1.0)
    return logits_BLO * poison_B[:, None, None]

  return pure.PureModel(init, apply)


class _RecordingParity(parity_check.ParityCheck):
  """Parity that records the longest strings each sample_batch may make."""

  max_lengths = []

  def sample_batch(self, key, batch_size, max_length, length=None):
    self.max_lengths.append(max_length)
    return super().sample_batch(key, batch_size, max_length, length)


class ValidationTest(absltest.TestCase):

  def test_validation_reads_only_training_lengths(self):
    # By construction: every string validation draws fits in the
    # training range, so selecting on it never sees a test length.
    model = pure.from_nnx(_STAIRCASE.make)
    params = model.init(jax.random.key(0))
    _RecordingParity.max_lengths.clear()
    validation.accuracy(model, params, _RecordingParity(), _NO_EOS,
                        _SEQUENCE_LENGTH, batch_size=4, seed=0)
    self.assertNotEmpty(_RecordingParity.max_lengths)
    self.assertLessEqual(max(_RecordingParity.max_lengths), _SEQUENCE_LENGTH)


class EarlyStoppingTest(absltest.TestCase):

  def test_the_streak_counts_validations_in_a_row_for_every_seed(self):
    early = validation.EarlyStopping(2, accuracy=0.9, patience=2)
    self.assertFalse(early.update([0.95, 0.95]))
    self.assertFalse(early.update([0.95, 0.5]))  # Seed 2 breaks the streak.
    self.assertFalse(early.update([0.95, 0.95]))
    self.assertTrue(early.update([0.91, 0.9]))
    self.assertEqual(early.to_json(), {'streak': [4, 2], 'stopped': True})
    never = validation.EarlyStopping(1, accuracy=None, patience=1)
    self.assertFalse(never.update([1.0]))

  def test_a_met_threshold_stops_checkpoints_and_stays_stopped(self):
    run_dir = _tempdir(self)
    config = dataclasses.replace(_CONFIG, early_stopping_accuracy=1e-9,
                                 early_stopping_patience=2)
    result, printed = _train(_staircase_phases(), run_dir, config=config)
    self.assertIn('Early stopping at step 10', printed)
    records = _read_metrics(run_dir)
    self.assertEqual(records[-1]['step'], 10)
    self.assertTrue(records[-1]['early_stop'])
    self.assertIn('train_loss', records[-1])  # Steps 10's interval, logged.
    self.assertLessEqual(result.eval_step, 10)
    self.assertEqual(int(result.state.step), 10)
    checkpointer = checkpointing.Checkpointer(os.path.join(run_dir,
                                                           'checkpoints'))
    self.assertEqual(checkpointer.latest_step(), 10)
    checkpointer.close()
    again, _ = _train(_staircase_phases(), run_dir, config=config)
    self.assertEqual(int(again.state.step), 10)  # The rerun trains no more.
    self.assertEqual(_read_metrics(run_dir), records)
    # A threshold never met trains every step.
    unmet = dataclasses.replace(config, early_stopping_accuracy=1.01)
    full, _ = _train(_staircase_phases(), None, config=unmet)
    self.assertEqual(int(full.state.step), _TOTAL_STEPS)


class DivergenceTest(parameterized.TestCase):

  @parameterized.named_parameters(
      # The NaN loss of steps 11.. is seen when step 15 is logged.
      ('caught_by_the_loss', 5, 5, 10),
      # Not logged before step 20; the parameters of step 12 are not finite.
      ('caught_by_the_parameters', 20, 4, 8))
  def test_nan_raises_and_keeps_the_last_good_checkpoint(
      self, log_every, checkpoint_every, last_good_step):
    config = training.TrainConfig(seed=0, batch_size=8, learning_rate=1e-2,
                                  log_every=log_every,
                                  checkpoint_every=checkpoint_every)
    model = _nan_on_length_two()
    run_dir = _tempdir(self)
    with self.assertRaises(training.TrainingDiverged):
      _train(_one_phase(model, 31), run_dir, config=config,
             curriculum=_LengthTwoFrom(first_step=10))
    checkpointer = checkpointing.Checkpointer(
        os.path.join(run_dir, 'checkpoints'))
    self.assertEqual(checkpointer.latest_step(), last_good_step)
    like = train_step.init_state(
        model, optimizers.make_optimizer(1e-2, 0.0, 0.1), jax.random.key(0))
    _, restored, _ = checkpointer.restore(like)
    checkpointer.close()
    self.assertEqual(int(restored.step), last_good_step)
    for leaf in jax.tree.leaves(restored):
      self.assertTrue(np.all(np.isfinite(leaf)))
    for record in _read_metrics(run_dir):
      self.assertTrue(np.isfinite(record['train_loss']))
      self.assertLessEqual(record['step'], 10)


if __name__ == '__main__':
  absltest.main()
