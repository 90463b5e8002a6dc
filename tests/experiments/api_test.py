"""The Python API and the registries: a toy model and a toy task added from
this file alone (one registry call each) train and evaluate end to end."""

import collections
import dataclasses
import glob
import json
import os
import subprocess
import sys
from unittest import mock

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import yaml

from experiments import benchmark
from experiments import config as config_lib
from experiments import original_flags
from experiments import presets
from experiments import registry
from experiments import run
from neural_networks import rnn
from tasks import task as task_lib
from training import input_encoding

import run_folder

FLAGS = flags.FLAGS
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class LastSymbol(task_lib.Task):
  """The label is the string's last symbol, of `alphabet` symbols."""

  alphabet: int = 3
  input_size: int = 3
  output_size: int = 3

  def prefix_targets(self, input_BL):
    return input_BL, jnp.ones(input_BL.shape, bool)

  def sample_batch(self, key, batch_size, max_length, length):
    self.check_sample_args(batch_size, max_length, length)
    length_B = jnp.full((batch_size,), self.clip_length(max_length, length))
    tokens_BL = jax.random.randint(key, (batch_size, max_length), 0,
                                   self.alphabet)
    tokens_BL = jnp.where(task_lib.valid_mask_BL(length_B, max_length),
                          tokens_BL, 0)
    return task_lib.Batch(tokens_BL, length_B,
                          task_lib.last_valid_B(tokens_BL, length_B))


class PositionwiseModel(nnx.Module):
  """Embedding and a linear readout at each position (causal, no mixing)."""

  def __init__(self, cfg, *, rngs):
    self.embedding = nnx.Embed(cfg.input_size, cfg.width, rngs=rngs)
    self.output = nnx.Linear(cfg.width, cfg.output_size, rngs=rngs)

  def __call__(self, input_BL, length_B=None, key=None):
    del length_B, key  # Positionwise: padding never reaches a real token.
    return self.output(jax.nn.relu(self.embedding(input_BL)))


@dataclasses.dataclass(frozen=True)
class PositionwiseConfig:
  input_size: int
  output_size: int
  width: int = 8

  @classmethod
  def from_flags(cls, values, input_size, output_size):
    return cls(input_size, output_size, width=values['embed_size'])

  def make(self, rngs):
    return PositionwiseModel(self, rngs=rngs)

  is_causal = True
  length_multiple = 1

  def run_name_parts(self):
    return (f'w{self.width}',)

  def flops(self, batch_size, length):
    return 2 * batch_size * length * self.width * (self.input_size
                                                   + self.output_size)


registry.register_model('toy_positionwise', PositionwiseConfig)
registry.register_task('toy_last_symbol', LastSymbol,
                       arguments={'toy_alphabet': 'alphabet'})


def _toy_config(**training) -> config_lib.ExperimentConfig:
  task = LastSymbol()
  encoding = input_encoding.InputEncoding(include_eos=False)
  return config_lib.ExperimentConfig(
      task=config_lib.TaskConfig('toy_last_symbol'),
      architecture='toy_positionwise',
      model=PositionwiseConfig(encoding.vocab_size(task), task.output_size),
      training=config_lib.TrainingConfig(
          phases=(config_lib.PhaseConfig('default', 150),), seed=0,
          batch_size=16, learning_rate=3e-2, log_every=50,
          checkpoint_every=50,
          curriculum=config_lib.CurriculumConfig(max_length=5), **training),
      encoding=encoding,
      evaluation=config_lib.EvaluationConfig(test_length=20))


class ToyRegistrationTest(absltest.TestCase):

  def test_a_toy_model_and_task_train_and_evaluate(self):
    run_dir = os.path.join(run_folder.tempdir(self), 'toy')
    result = run.train_and_evaluate(_toy_config(), run_dir, progress=False)
    payload = result.evaluations[0]
    # A positionwise readout solves "last symbol" at every length, which
    # holds only if the harness reads the answer at the last real token.
    self.assertEqual(payload['protocol'], 'prefix')
    self.assertEqual(payload['score'], 1.0)
    self.assertEqual(payload['solved_up_to'], 20)
    self.assertEqual(payload['eval_step'], 150)
    self.assertEqual(result.accuracy_per_seed[0].shape, (20,))
    saved = run_folder.load_json(os.path.join(run_dir, 'eval.json'))
    self.assertEqual(saved['score'], payload['score'])
    self.assertEqual(run.load_run_config(run_dir), result.config)
    # Rescoring the saved run with the other protocol agrees.
    again = run.evaluate_run(run_dir, protocol='seed')
    self.assertEqual(again.evaluations[0]['score'], 1.0)
    self.assertTrue(os.path.exists(os.path.join(run_dir,
                                                'eval_seed_L20.json')))

  def test_the_toy_entries_describe_themselves_to_the_cli(self):
    values = collections.defaultdict(lambda: None, embed_size=5,
                                     toy_alphabet=3)
    entry = registry.MODELS['toy_positionwise']
    self.assertEqual(entry.config_from_flags(values, 4, 3),
                     PositionwiseConfig(4, 3, 5))
    self.assertEqual(entry.training_phases(entry.config_from_flags(
        values, 4, 3), 2, 3), (('default', 6, {}),))
    self.assertEqual(registry.TASKS['toy_last_symbol'].kwargs_from_flags(
        values), {'alphabet': 3})

  def test_a_bad_config_fails_before_training(self):
    run_dir = os.path.join(run_folder.tempdir(self), 'toy')
    bad = dataclasses.replace(_toy_config(), evaluation=(
        config_lib.EvaluationConfig(test_length=5)))
    with self.assertRaisesRegex(config_lib.ConfigError, '--test_length'):
      run.train_and_evaluate(bad, run_dir, progress=False)
    self.assertFalse(os.path.exists(run_dir))
    too_few = dataclasses.replace(_toy_config(), evaluation=(
        config_lib.EvaluationConfig(num_strings=100)))
    with self.assertRaisesRegex(config_lib.ConfigError, '--eval_num_strings'):
      run.train_and_evaluate(too_few, run_dir, progress=False)
    self.assertFalse(os.path.exists(run_dir))
    wrong_size = dataclasses.replace(_toy_config(), model=PositionwiseConfig(
        9, 3))
    with self.assertRaisesRegex(config_lib.ConfigError, 'input_size=9'):
      run.train_and_evaluate(wrong_size, run_dir, progress=False)

  def test_a_folder_of_another_config_is_refused(self):
    run_dir = os.path.join(run_folder.tempdir(self), 'toy')
    config = _toy_config()
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, 'config.json'), 'w') as f:
      json.dump({'schema': run.CONFIG_SCHEMA, 'config': dataclasses.replace(
          config, training=dataclasses.replace(
              config.training, learning_rate=1.0)).to_dict()}, f)
    with self.assertRaisesRegex(config_lib.ConfigError,
                                'training.learning_rate'):
      run.train_and_evaluate(config, run_dir, progress=False)
    with open(os.path.join(run_dir, 'config.json'), 'w') as f:
      json.dump({'flags': {}, 'seed': 0}, f)  # An earlier version's.
    with self.assertRaisesRegex(config_lib.ConfigError, 'another version'):
      run.train_and_evaluate(config, run_dir, progress=False)


class WandbOfflineTest(absltest.TestCase):

  def test_the_summary_holds_the_scores_a_sweep_ranks_by(self):
    import wandb  # pylint: disable=g-import-not-at-top
    run_dir = os.path.join(run_folder.tempdir(self), 'toy')
    summaries = []
    real_init = wandb.init

    def init(**kwargs):  # The real run, whose summary is read at finish.
      wandb_run = real_init(**kwargs)
      real_finish = wandb_run.finish

      def finish(**finish_kwargs):
        summaries.append(dict(wandb_run.summary))
        real_finish(**finish_kwargs)
      wandb_run.finish = finish
      return wandb_run

    self.enter_context(mock.patch.dict(os.environ, {'WANDB_MODE': 'offline',
                                                    'WANDB_SILENT': 'true'}))
    self.enter_context(mock.patch.object(wandb, 'init', init))
    result = run.train_and_evaluate(
        _toy_config(), run_dir, progress=False,
        wandb=run.WandbOptions(project='toy'))
    self.assertLen(summaries, 1)
    summary = summaries[0]
    for key in ('score', 'ood_score', 'solved_up_to'):
      self.assertEqual(summary[key], result.evaluations[0][key], key)
    self.assertEqual(summary['score'], 1.0)
    self.assertIn('train_loss', summary)  # Training metrics were logged too.
    # The per-length table is saved with the offline run.
    tables = glob.glob(os.path.join(run_dir, 'wandb', 'offline-run-*', 'files',
                                    'media', 'table',
                                    'accuracy_per_length_summary_*.json'))
    self.assertLen(tables, 1)
    with open(tables[0]) as f:
      table = json.load(f)
    self.assertEqual(table['columns'], ['length', 'accuracy', 'seed'])
    self.assertEqual([row[0] for row in table['data']], list(range(1, 21)))

  def test_a_wandb_that_cannot_start_fails_before_training(self):
    import wandb  # pylint: disable=g-import-not-at-top
    run_dir = os.path.join(run_folder.tempdir(self), 'toy')

    def init(**kwargs):
      raise wandb.errors.UsageError('api_key not configured (no-tty)')

    self.enter_context(mock.patch.object(wandb, 'init', init))
    with self.assertRaisesRegex(config_lib.ConfigError,
                                'wandb could not start.*WANDB_MODE=offline'):
      run.train_and_evaluate(_toy_config(), run_dir, progress=False,
                             wandb=run.WandbOptions())
    self.assertFalse(os.path.exists(os.path.join(run_dir, 'metrics.jsonl')))


class ConfigJsonTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.flags_were_parsed = FLAGS.is_parsed()

  @classmethod
  def tearDownClass(cls):
    FLAGS.unparse_flags()
    if cls.flags_were_parsed:
      FLAGS(sys.argv[:1], known_only=True)
    super().tearDownClass()

  def config_of(self, *args) -> config_lib.ExperimentConfig:
    FLAGS.unparse_flags()
    FLAGS(['example.py', *args])
    return original_flags.to_config(original_flags.flag_values())

  @parameterized.parameters(*sorted(presets.PRESETS))
  def test_every_preset_round_trips_through_json(self, preset):
    config = self.config_of(f'--preset={preset}')
    text = config.to_json()
    again = config_lib.ExperimentConfig.from_json(text)
    self.assertEqual(again, config)
    self.assertEqual(again.to_json(), text)

  def test_every_published_preset_equals_its_sweep_file(self):
    files = presets.published_files()
    self.assertLen(files, 36)  # 4 tasks x (4 staircase + 4 brt + 1).
    for name, path in files.items():
      # The command wandb would run: the file's items, then --name=value.
      with open(path) as f:
        raw = yaml.safe_load(f)
      argv = [str(item) for item in raw['command']
              if not str(item).startswith('${')]
      for flag, spec in raw['parameters'].items():
        value = spec['value'] if 'value' in spec else spec['values'][0]
        argv.append(f'--{flag}={value}')
      FLAGS.unparse_flags()
      FLAGS(['example.py', *argv])
      from_command = original_flags.flag_values()
      FLAGS.unparse_flags()
      FLAGS(['example.py', f'--preset={name}'])
      from_preset = original_flags.flag_values()
      for flag in ('preset', 'use_wandb', 'wandb_project', 'wandb_group'):
        del from_command[flag], from_preset[flag]
      self.assertEqual(from_preset, from_command, name)

  def test_the_yaml_quirks_of_the_sweep_files(self):
    # `1e-2` is text in YAML 1.1 and `20_000` an integer; both reach the
    # flags as the numbers meant.
    config = self.config_of('--preset=staircase_parity_check_c2')
    self.assertEqual(config.training.weight_decay, 0.01)
    self.assertEqual(config.training.learning_rate, 0.0003551589862157637)
    self.assertEqual(config.training.phases[-1].steps, 20_001)
    self.assertEqual(config.model.dropout, 0.1)
    brt = self.config_of('--preset=brt_parity_check_c2')
    self.assertEqual(brt.training.phases[-1].steps, 100_001)  # "100_000".
    self.assertEqual((brt.model.d_model, brt.model.chunk_size), (512, 2))

  def test_a_file_round_trips_and_damage_is_one_clear_error(self):
    config = self.config_of('--preset=cpu_demo_brt', '--brt_norm=rmsnorm',
                            '--curriculum=reverse_exponential')
    self.assertEqual(config.model.norm, 'rmsnorm')
    path = os.path.join(run_folder.tempdir(self), 'config.json')
    with open(path, 'w') as f:
      f.write(config.to_json())
    self.assertEqual(config_lib.ExperimentConfig.from_json(path), config)
    with self.assertRaisesRegex(config_lib.ConfigError, 'not JSON'):
      config_lib.ExperimentConfig.from_json(config.to_json()[:-5])
    data = config.to_dict()
    data['model']['no_such_field'] = 1
    with self.assertRaisesRegex(config_lib.ConfigError, 'no_such_field'):
      config_lib.ExperimentConfig.from_dict(data)

  def test_the_staircase_phases_come_from_the_original_step_flags(self):
    config = self.config_of('--preset=cpu_demo', '--train_steps=10',
                            '--second_training_steps=20')
    self.assertEqual([(p.name, p.steps, dict(p.model_overrides))
                      for p in config.training.phases],
                     [('parallel', 10, {'mode': 'parallel'}),
                      ('staircase', 21, {})])
    self.assertEqual(config.phase_models()[0][1].mode, 'parallel')
    self.assertEqual(config.final_model.mode, 'staircase')

  @parameterized.named_parameters(
      ('non_positive', '--batch_size=0'),
      ('negative_count', '--train_steps=-1'),
      ('dropout_of_one', '--dropout=1'),
      ('beta1_inv_zero', '--adam_beta1_inv=0'),
      ('unknown_task', '--task=nope'),
      ('unknown_architecture', '--architecture=gpt'),
      ('not_zero_or_one', '--is_causal=2'),
      ('unknown_norm', '--norm_type=batchnorm'),
      ('a_model_flag_of_the_registry', '--brt_norm=batchnorm'),
      ('unknown_curriculum', '--curriculum=random'),
      ('chunk_zero', '--fix_staircase_size_forward=0'),
      ('unknown_preset', '--preset=nope'),
      ('load_pretrain', '--load_pretrain'))
  def test_bad_values_fail_at_parse_time(self, arg):
    FLAGS.unparse_flags()
    with self.assertRaises(flags.Error):
      FLAGS(['example.py', arg])

  def test_the_given_flags_that_a_model_ignores_are_named(self):
    FLAGS.unparse_flags()
    FLAGS(['example.py', '--architecture=rnn', '--num_heads=3',
           '--diagonal'])
    warnings = original_flags.ignored_flag_warnings(
        original_flags.flag_values(), original_flags.given_flags())
    self.assertLen(warnings, 2)
    self.assertIn('--diagonal is ignored', warnings[0])
    self.assertIn('--num_heads is ignored', warnings[1])


class EvaluateCliTest(absltest.TestCase):

  def test_evaluate_needs_only_the_run_dir(self):
    task = registry.TASKS['even_pairs'].build()
    encoding = input_encoding.InputEncoding(include_eos=False)
    config = dataclasses.replace(
        _toy_config(), task=config_lib.TaskConfig('even_pairs'),
        architecture='lstm', model=rnn.RNNConfig(
            encoding.vocab_size(task), task.output_size, hidden_size=8,
            cell='lstm'))
    run_dir = os.path.join(run_folder.tempdir(self), 'lstm')
    trained = run.train_and_evaluate(config, run_dir, progress=False)
    proc = subprocess.run(
        [sys.executable, os.path.join(_REPO, 'experiments', 'evaluate.py'),
         f'--run_dir={run_dir}'], cwd=_REPO, capture_output=True, text=True,
        timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, msg=proc.stderr)
    rescored = run_folder.load_json(os.path.join(run_dir,
                                                 'eval_prefix_L20.json'))
    # The same checkpoint, protocol and lengths as training's evaluation.
    self.assertEqual(rescored['per_length'],
                     trained.evaluations[0]['per_length'])
    self.assertEqual(set(rescored), set(trained.evaluations[0]))
    self.assertIn('score', proc.stdout)
    # Fewer strings per length: its own file, accuracies in 64ths.
    fewer = run.evaluate_run(run_dir, num_strings=64)
    self.assertTrue(os.path.exists(os.path.join(run_dir,
                                                'eval_prefix_L20_N64.json')))
    counts = np.array([p['accuracy'] for p in
                       fewer.evaluations[0]['per_length']]) * 64
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)


class BenchmarkTest(parameterized.TestCase):

  @parameterized.parameters(*sorted(set(registry.MODELS)
                                    - {'toy_positionwise', 'my_staircase'}))
  def test_every_architecture_is_measured(self, architecture):
    values = collections.defaultdict(lambda: None, dict(
        embed_size=8, num_heads=2, num_layers=2, dropout=0.0, group_size=1,
        is_causal=1, norm_type='prenorm', init_type='pytorch',
        fix_staircase_size_forward=2, staircase_cache_steps=0,
        diagonal=False, chunk_size=2, num_state_vectors=2,
        recurrent_layer_index=1, max_sequence_length=512, train_steps=0,
        second_training_steps=1))
    task = registry.TASKS['parity_check'].build()
    encoding = input_encoding.InputEncoding(include_eos=False)
    model = registry.MODELS[architecture].config_from_flags(
        values, encoding.vocab_size(task), task.output_size)
    config = config_lib.ExperimentConfig(
        config_lib.TaskConfig('parity_check'), architecture, model,
        training=config_lib.TrainingConfig(
            batch_size=4, curriculum=config_lib.CurriculumConfig(
                max_length=6)), encoding=encoding)
    numbers = benchmark.measure(config, steps=2, forward_length=12,
                                forward_batch_size=2, forward_repeats=1,
                                # The profile does not depend on the model.
                                profile_steps=2 if architecture == 'staircase'
                                else 0)
    for key in ('train_step_s_median', 'compile_s', 'train_gflops_per_s',
                'forward_L12_s_median', 'fraction_of_matmul_rate'):
      self.assertGreater(numbers[key], 0, key)
      self.assertTrue(np.isfinite(numbers[key]), key)
    if architecture != 'staircase':
      self.assertNotIn('profile', numbers)
      return
    profile = numbers['profile']
    self.assertEqual(profile['steps'], 2)
    self.assertGreater(profile['op_ms_per_step_all_threads'], 0)
    self.assertGreater(profile['ops_per_step_all_threads'], 1)
    kind_ms = [ms for _, ms, _ in profile['by_kind_per_step']]
    self.assertEqual(kind_ms, sorted(kind_ms, reverse=True))
    self.assertAlmostEqual(sum(kind_ms),
                           profile['op_ms_per_step_all_threads'])
    # Exclusive op time fits in the threads' wall time.
    self.assertLessEqual(profile['op_ms_per_step_all_threads'],
                         profile['threads']
                         * profile['wall_ms_per_step_under_profiler'])


if __name__ == '__main__':
  absltest.main()
