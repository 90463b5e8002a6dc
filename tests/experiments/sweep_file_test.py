"""Reading wandb sweep files and drawing their trials as wandb does."""

import glob
import math
import os
import textwrap

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from experiments import presets
from experiments import sweep_file
import run_folder

_SEARCH = textwrap.dedent('''\
    program: experiments/example.py
    command:
      - ${env}
      - ${interpreter}
      - ${program}
      - "--task"
      - "parity_check"
      - "--use_wandb"
      - "--wandb_project"
      - "p"
      - "--validate"
      - "--seed=3"
      - ${args}
    method: METHOD
    metric: {name: score, goal: maximize}
    parameters:
      batch_size: {values: [64, 128, 256]}
      lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-3}
      dropout: {distribution: uniform, min: 0, max: 0.2}
      layers: {distribution: int_uniform, min: 1, max: 3}
      width: {distribution: q_uniform, min: 16, max: 64, q: 16}
      steps: {value: 20_000}
      wd: {values: [1e-2]}
    ''')


def _write(test, text: str) -> str:
  path = os.path.join(run_folder.tempdir(test), 'sweep.yaml')
  with open(path, 'w') as f:
    f.write(text)
  return path


class SweepFileTest(parameterized.TestCase):

  def test_the_command_gives_the_fixed_flags_without_wandbs(self):
    sweep = sweep_file.load(_write(self, _SEARCH.replace('METHOD', 'random')))
    self.assertEqual(sweep.fixed, {'task': 'parity_check', 'validate': True,
                                   'seed': '3'})
    self.assertEqual(sweep.metric, {'name': 'score', 'goal': 'maximize'})
    self.assertEqual(sweep.constant_parameters(),
                     {'steps': '20000', 'wd': '1e-2'})
    self.assertFalse(sweep.is_fixed_setting())

  def test_random_trials_follow_their_distributions(self):
    sweep = sweep_file.load(_write(self, _SEARCH.replace('METHOD', 'random')))
    trials = [sweep.trial(0, i) for i in range(400)]
    self.assertEqual(sweep.trial(0, 7), trials[7])  # Depends on (seed, i).
    self.assertNotEqual(sweep.trial(1, 7), trials[7])
    lr = np.array([float(t['lr']) for t in trials])
    self.assertTrue(((1e-5 <= lr) & (lr <= 1e-3)).all())
    # Log-uniform: the mean of log(lr) sits mid-way between the logs.
    self.assertAlmostEqual(np.log(lr).mean(), math.log(1e-4), delta=0.15)
    dropout = np.array([float(t['dropout']) for t in trials])
    self.assertTrue(((0 <= dropout) & (dropout <= 0.2)).all())
    self.assertAlmostEqual(dropout.mean(), 0.1, delta=0.01)
    self.assertEqual({t['layers'] for t in trials}, {'1', '2', '3'})
    self.assertEqual({t['width'] for t in trials}, {'16', '32', '48', '64'})
    self.assertEqual({t['batch_size'] for t in trials}, {'64', '128', '256'})
    for trial in trials:
      self.assertEqual((trial['steps'], trial['wd'], trial['task']),
                       ('20000', '1e-2', 'parity_check'))

  def test_a_grid_enumerates_every_combination_once(self):
    text = textwrap.dedent('''\
        method: grid
        parameters:
          a: {values: [1, 2, 3]}
          b: {values: [x, y]}
          c: {value: 5}
        ''')
    sweep = sweep_file.load(_write(self, text))
    self.assertEqual(sweep.num_grid_trials(), 6)
    trials = [sweep.trial(0, i) for i in range(6)]
    self.assertEqual([(t['a'], t['b']) for t in trials],
                     [(a, b) for a in '123' for b in 'xy'])
    self.assertTrue(all(t['c'] == '5' for t in trials))
    with self.assertRaisesRegex(sweep_file.SweepFileError, '6 trials'):
      sweep.trial(0, 6)

  @parameterized.named_parameters(
      ('not_yaml', 'parameters: [unclosed', 'not readable YAML'),
      ('no_parameters', 'method: random\n', 'no `parameters`'),
      ('unknown_method', 'method: bayes\nparameters: {a: {value: 1}}\n',
       "method 'bayes'"),
      ('unknown_distribution',
       'parameters: {a: {distribution: normal, mu: 0, sigma: 1}}\n',
       "distribution 'normal'"),
      ('grid_with_a_distribution', 'method: grid\nparameters: {a: '
       '{distribution: uniform, min: 0, max: 1}}\n', 'a grid needs'),
      ('min_above_max',
       'parameters: {a: {distribution: uniform, min: 2, max: 1}}\n',
       'min <= max'),
      ('empty_values', 'parameters: {a: {values: []}}\n', 'non-empty'),
  )
  def test_a_bad_file_is_one_clear_error(self, text, message):
    with self.assertRaisesRegex(sweep_file.SweepFileError, message):
      sweep_file.load(_write(self, text))

  def test_a_missing_file_is_one_clear_error(self):
    with self.assertRaisesRegex(sweep_file.SweepFileError, 'not a file'):
      sweep_file.load('/no/such/sweep.yaml')

  def test_every_shipped_file_loads(self):
    paths = glob.glob(os.path.join(presets.SWEEP_DIR, '*', '*', '*.yaml'))
    self.assertLen(paths, 68)
    for path in paths:
      sweep = sweep_file.load(path)
      self.assertEqual(sweep.metric.get('name'), 'score', path)
      self.assertEqual(sweep.is_fixed_setting(), not path.endswith(
          '_search.yaml'), path)
      self.assertNotIn('use_wandb', sweep.trial(0, 0))


if __name__ == '__main__':
  absltest.main()
