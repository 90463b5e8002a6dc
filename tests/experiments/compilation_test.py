"""Compilation out of the way: few programs per run, optimizer values and the
dropout rate as traced inputs, and the persistent compilation cache."""

import collections
import dataclasses
import os
import subprocess
import sys

from absl import flags
from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from experiments import compilation_cache
from experiments import original_flags
from experiments import run
from neural_networks import dropout
from training import optimizers
from training import range_evaluation
from training import sharding
from training import train_step
from training import training

import run_folder

FLAGS = flags.FLAGS
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_STAIRCASE = ('--architecture=my_staircase', '--second_training_steps=20',
              '--fix_staircase_size_forward=2', '--embed_size=8',
              '--num_heads=2', '--group_size=1', '--num_recurrent_calls=2',
              '--is_causal=1', '--include_eos=0', '--batch_size=8',
              '--sequence_length=12',
              '--log_frequency=7', '--checkpoint_every=100', '--seed=2')


def _config(*args):
  FLAGS.unparse_flags()
  FLAGS(['example.py', *args])
  try:
    return original_flags.to_config(original_flags.flag_values())
  finally:
    FLAGS.unparse_flags()


class _CacheEvents:
  """Counts JAX's persistent-cache events while it is entered."""

  def __init__(self):
    self.counts = collections.Counter()
    jax.monitoring.register_event_listener(self._listen)

  def _listen(self, event, **kwargs):
    del kwargs
    if event.startswith('/jax/compilation_cache/'):
      self.counts[event.rsplit('/', 1)[-1]] += 1

  def reset(self):
    self.counts.clear()


class ProgramsTest(absltest.TestCase):

  def test_a_staircase_run_is_one_training_and_one_evaluation_program(self):
    # Training lengths 1..12 would take two buckets of 10, evaluation to 130
    # two of 100; the staircase mode skips padding rows and needs one each.
    config = _config(*_STAIRCASE, '--test_length=130', '--eval_protocol=seed',
                     '--eval_num_strings=64')
    self.assertEqual(run.training_setup(config).train_config.bucket_width, 12)
    self.assertEqual(run.exact_bucket_width(config), 130)
    self.assertEqual(run.exact_options(config)['tokens_per_forward'],
                     4 * range_evaluation.TOKENS_PER_FORWARD)
    result = run.train_and_evaluate(
        config, os.path.join(run_folder.tempdir(self), 'run'), progress=False)
    self.assertEqual(result.evaluations[0]['compiled_programs'],
                     {'training': 1, 'validation': 0, 'evaluation': 1})

  def test_seeds_trained_together_still_skip_padding_rows(self):
    # Under vmap, a row test on each seed's own length would become a select
    # that runs every row; the shared longest length keeps the cond.
    setup = run.training_setup(_config(*_STAIRCASE, '--num_seeds=2'))
    phase = setup.phases[-1]
    layout = sharding.SeedLayout(2, sharding.make_mesh(2))
    self.assertTrue(layout.stacked)
    hyper = optimizers.Hyperparameters(1e-2)
    state = training.initial_state(
        phase.model, optimizers.make_optimizer(*hyper), (0, 1), layout)
    program = training.make_step_program(
        phase.model, setup.task, _config(*_STAIRCASE).encoding, 8, (12,), 12,
        layout)
    two = lambda *values: np.array(values, np.int32)
    text = str(jax.make_jaxpr(program)(
        state, two(3, 9), two(0, 0), two(0, 1), np.int32(0),
        hyper.as_arrays(), None))
    self.assertTrue(' cond[' in text and ' pmax[' in text,
                    'the stacked step has no row cond over a shared length')

  def test_models_that_pay_for_padding_keep_their_buckets(self):
    config = _config('--architecture=transformer', '--num_layers=1',
                     '--embed_size=8', '--num_heads=2', '--include_eos=0',
                     '--sequence_length=12', '--test_length=130', '--seed=0')
    self.assertEqual(run.training_setup(config).train_config.bucket_width, 10)
    self.assertEqual(run.exact_bucket_width(config), 100)
    self.assertEqual(run.exact_options(config)['tokens_per_forward'],
                     range_evaluation.TOKENS_PER_FORWARD)
    parallel = _config(*_STAIRCASE, '--train_steps=5', '--test_length=130')
    # A parallel phase pads: the whole run keeps buckets.
    self.assertEqual(run.training_setup(parallel).train_config.bucket_width,
                     10)


class TracedHyperparametersTest(absltest.TestCase):

  def test_the_traced_step_equals_the_step_with_constants(self):
    config = _config(*_STAIRCASE, '--dropout=0.1')
    setup = run.training_setup(config)
    phase, task = setup.phases[-1], setup.task
    self.assertEqual(phase.dropout_rate, 0.1)
    # A rate of 0 compiles no dropout at all.
    self.assertIsNone(
        run.training_setup(_config(*_STAIRCASE)).phases[-1].dropout_rate)
    layout = sharding.SeedLayout(1, sharding.make_mesh(1))
    program = training.make_step_program(phase.model, task, config.encoding,
                                         8, (12,), 12, layout)
    key = jax.random.key(0)
    # Rates whose 1 - rate divides exactly (XLA may turn a division by a
    # constant into a product), so that any difference is a defect: Adam's
    # first step turns rounding in tiny gradients into visible updates.
    for lr, wd, beta1_inv, rate in ((1e-2, 0.0, 0.1, 0.5),
                                    (3e-3, 0.1, 0.5, 0.0),
                                    (1e-3, 0.0, 0.2, 0.75)):
      hyper = optimizers.Hyperparameters(lr, wd, beta1_inv)
      optimizer = optimizers.make_optimizer(*hyper)
      state = train_step.init_state(phase.model, optimizer, key)
      traced, _ = program(state, np.int32(9), np.int32(0), np.int32(5),
                          np.int32(3), hyper.as_arrays(),
                          dropout.rate_values(rate))
      _, data_key, dropout_key = training.step_keys(5, 3)
      # The model with this rate compiled in, as evaluation builds it.
      model = config.model_entry.build(dataclasses.replace(
          config.final_model, dropout=rate))
      constant = jax.jit(train_step.make_sample_and_train_step(
          model, optimizer, task, config.encoding, 8, 12))
      state = train_step.init_state(model, optimizer, key)
      expected, _ = constant(state, jnp.int32(9), data_key, dropout_key)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(
          a, b, rtol=2e-5, atol=1e-7), traced.params, expected.params)
    # One program served every setting (0 too, fed to a model built with
    # dropout on).
    self.assertEqual(program._cache_size(), 1)  # pylint: disable=protected-access

  def test_the_dropout_rate_is_applied(self):
    # The traced rate takes effect: the same rate gives the same step,
    # another rate another (so the equality above is not vacuous).
    setup = run.training_setup(_config(*_STAIRCASE, '--dropout=0.1'))
    phase = setup.phases[-1]
    layout = sharding.SeedLayout(1, sharding.make_mesh(1))
    program = training.make_step_program(
        phase.model, setup.task, _config(*_STAIRCASE).encoding, 8, (12,), 12,
        layout)
    hyper = optimizers.Hyperparameters(1e-2)
    losses = []
    for rate in (0.0, 0.0, 0.5):
      state = train_step.init_state(
          phase.model, optimizers.make_optimizer(*hyper), jax.random.key(0))
      _, metrics = program(state, np.int32(12), np.int32(0), np.int32(5),
                           np.int32(3), hyper.as_arrays(),
                           dropout.rate_values(rate))
      losses.append(float(metrics['loss']))
    self.assertEqual(losses[0], losses[1])
    self.assertNotEqual(losses[0], losses[2])

  def test_a_second_trial_with_other_hyperparameters_compiles_nothing(self):
    # Dropout 0.1, then 0.15 (a rate of 0 has a program of its own: no masks).
    cache_dir = run_folder.tempdir(self)
    compilation_cache.enable(cache_dir)
    self.addCleanup(compilation_cache.enable, '')
    events = _CacheEvents()
    out_dir = run_folder.tempdir(self)
    first = _config(*_STAIRCASE, '--dropout=0.1', '--test_length=20',
                    '--validate', '--validate_every=10',
                    '--validation_length=12')
    run.train_and_evaluate(first, os.path.join(out_dir, 'first'),
                           progress=False)
    self.assertGreater(events.counts['compile_requests_use_cache'], 3)
    events.reset()
    t = first.training
    second = dataclasses.replace(
        first, model=dataclasses.replace(first.model, dropout=0.15),
        training=dataclasses.replace(
            t, learning_rate=t.learning_rate * 3, weight_decay=0.05,
            adam_beta1_inv=0.3))
    run.train_and_evaluate(second, os.path.join(out_dir, 'second'),
                           progress=False)
    requests = events.counts['compile_requests_use_cache']
    self.assertGreater(requests, 3)
    self.assertEqual(events.counts['cache_hits'], requests, events.counts)


class CacheFlagTest(absltest.TestCase):

  def _example(self, *args):
    return subprocess.run(
        [sys.executable, os.path.join(_REPO, 'experiments', 'example.py'),
         *_STAIRCASE, '--second_training_steps=3', '--test_length=14',
         '--progress=false', *args],
        cwd=_REPO, capture_output=True, text=True, timeout=300, check=False)

  def test_the_cli_fills_the_cache_folder_it_is_given(self):
    cache_dir = os.path.join(run_folder.tempdir(self), 'cache')
    proc = self._example(f'--compilation_cache_dir={cache_dir}',
                         f'--out_dir={run_folder.tempdir(self)}')
    self.assertEqual(proc.returncode, 0, msg=proc.stderr)
    self.assertNotEmpty(os.listdir(cache_dir))

  def test_a_folder_that_cannot_be_made_is_one_error_line(self):
    blocker = os.path.join(run_folder.tempdir(self), 'a_file')
    with open(blocker, 'w') as f:
      f.write('x')
    proc = self._example(f'--compilation_cache_dir={blocker}/cache',
                         f'--out_dir={run_folder.tempdir(self)}')
    self.assertEqual(proc.returncode, 2)
    (line,) = proc.stderr.strip().splitlines()
    self.assertStartsWith(line, 'error: cannot use the compilation cache')
    self.assertIn('--compilation_cache_dir', line)


if __name__ == '__main__':
  absltest.main()
