"""End-to-end tests of experiments/sweep.py: a local sweep, its leaderboard,
resuming, re-ranking and the best setting."""

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import absltest
import pytest
import yaml

from experiments import sweep_file
import run_folder

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO, 'experiments', 'sweep.py')
# A tiny RNN search in the published files' style.
_SWEEP = textwrap.dedent('''\
    program: experiments/example.py
    command:
      - ${env}
      - ${interpreter}
      - ${program}
      - "--task"
      - "parity_check"
      - "--use_wandb"
      - "--wandb_group"
      - "search"
      - "--architecture"
      - "rnn"
      - "--validate"
      - "--include_eos"
      - "0"
      - ${args}
    name: tiny_rnn_search
    method: random
    metric: {name: score, goal: maximize}
    parameters:
      batch_size: {value: 8}
      embed_size: {value: 8}
      lr: {distribution: log_uniform_values, min: 1e-3, max: 3e-2}
      wd: {values: [0, 1e-2]}
      second_training_steps: {value: 9}
    ''')
_COMMON = ('--sequence_length=4', '--test_length=8', '--validate_every=5',
           '--checkpoint_every=5', '--log_frequency=5')


def _sweep(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=_REPO,
                        capture_output=True, text=True, timeout=600)


def _leaderboard(out_dir: str) -> list[dict[str, str]]:
  with open(os.path.join(out_dir, 'leaderboard.csv')) as f:
    return list(csv.DictReader(f))


class SweepTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work = tempfile.mkdtemp()
    cls.sweep_path = os.path.join(cls.work, 'tiny_search.yaml')
    with open(cls.sweep_path, 'w') as f:
      f.write(_SWEEP)
    cls.out_dir = os.path.join(cls.work, 'out')
    cls.best_path = os.path.join(cls.work, 'tiny_best.yaml')
    cls.args = (f'--sweep_file={cls.sweep_path}', '--num_trials=3',
                f'--out_dir={cls.out_dir}', '--seed=1', *_COMMON)
    cls.proc = _sweep(*cls.args, f'--best_to={cls.best_path}')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.work, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.proc.returncode, 0, msg=self.proc.stderr[-3000:])

  def test_every_trial_is_a_run_folder_and_a_leaderboard_row(self):
    rows = _leaderboard(self.out_dir)
    self.assertLen(rows, 3)
    self.assertCountEqual([r['trial'] for r in rows], ['1', '2', '3'])
    accuracy = [float(r['validation_accuracy']) for r in rows]
    self.assertEqual(accuracy, sorted(accuracy, reverse=True))
    for r in rows:
      trial_dir = os.path.join(self.out_dir, f'trial_{int(r["trial"]):03d}')
      saved = run_folder.load_json(os.path.join(trial_dir, 'eval.json'))
      self.assertAlmostEqual(float(r['score']), saved['score'], places=6)
      self.assertAlmostEqual(float(r['validation_accuracy']),
                             saved['best_validation_accuracy'], places=6)
      config = run_folder.load_json(os.path.join(trial_dir, 'config.json'))
      self.assertAlmostEqual(config['config']['training']['learning_rate'],
                             float(r['lr']))
      self.assertTrue(1e-3 <= float(r['lr']) <= 3e-2)
    with open(os.path.join(self.out_dir, 'leaderboard.md')) as f:
      self.assertIn('Ranked by validation', f.read())

  def test_the_best_file_is_the_winner_as_a_fixed_setting(self):
    best = sweep_file.load(self.best_path)
    self.assertTrue(best.is_fixed_setting())
    self.assertEqual(best.name, 'tiny_rnn_best')
    with open(self.best_path) as f:
      command = yaml.safe_load(f)['command']
    self.assertEqual(command[command.index('--wandb_group') + 1], 'best')
    self.assertEqual(command[-1], '${args}')
    winner = _leaderboard(self.out_dir)[0]
    for name, value in best.constant_parameters().items():
      self.assertEqual(float(value), float(winner[name]), name)

  @pytest.mark.slow  # A third sweep; seeds are tested in multi_seed_test.
  def test_the_best_file_runs_its_seeds(self):
    out_dir = os.path.join(tempfile.mkdtemp(dir=self.work), 'seeds')
    proc = _sweep(f'--sweep_file={self.best_path}', '--num_seeds=2',
                  f'--out_dir={out_dir}', '--seed=1', *_COMMON)
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    (row,) = _leaderboard(out_dir)
    summary = run_folder.load_json(os.path.join(out_dir, 'trial_001',
                                                'summary.json'))
    self.assertEqual(summary['num_seeds'], 2)
    self.assertAlmostEqual(float(row['score']), summary['score']['mean'],
                           places=6)

  def test_a_rerun_skips_finished_trials_and_resumes_an_unfinished_one(self):
    out_dir = os.path.join(tempfile.mkdtemp(dir=self.work), 'out')
    shutil.copytree(self.out_dir, out_dir)
    os.remove(os.path.join(out_dir, 'trial_002', 'eval.json'))
    args = [a if not a.startswith('--out_dir') else f'--out_dir={out_dir}'
            for a in self.args]
    proc = _sweep(*args)
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertEqual(proc.stderr.count('finished before, skipped'), 2)
    self.assertIn('Resuming from step 10', proc.stderr)
    self.assertEqual(
        run_folder.load_json(os.path.join(out_dir, 'trial_002', 'eval.json'))
        ['score'],
        run_folder.load_json(os.path.join(self.out_dir, 'trial_002',
                                          'eval.json'))['score'])

  def test_select_by_score_reranks_without_training_and_warns(self):
    out_dir = os.path.join(tempfile.mkdtemp(dir=self.work), 'out')
    shutil.copytree(self.out_dir, out_dir)
    args = [a if not a.startswith('--out_dir') else f'--out_dir={out_dir}'
            for a in self.args]
    proc = _sweep(*args, '--select_by=score')
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertEqual(proc.stderr.count('finished before, skipped'), 3)
    self.assertIn('selects on the test lengths', proc.stderr)
    scores = [float(r['score']) for r in _leaderboard(out_dir)]
    self.assertEqual(scores, sorted(scores, reverse=True))

  def test_other_flags_in_the_same_folder_are_refused(self):
    proc = _sweep(*self.args, '--second_training_steps=4')
    self.assertNotEqual(proc.returncode, 0)
    self.assertEqual(proc.stderr.strip().splitlines()[-1].split(':')[0],
                     'error')
    self.assertIn('another sweep', proc.stderr)


class SweepErrorTest(absltest.TestCase):

  def test_bad_inputs_are_one_line_before_training(self):
    work = run_folder.tempdir(self)
    search = os.path.join(work, 'search.yaml')
    with open(search, 'w') as f:
      f.write(_SWEEP)
    bad_value = os.path.join(work, 'bad.yaml')
    with open(bad_value, 'w') as f:
      f.write(_SWEEP.replace('embed_size: {value: 8}',
                             'embed_size: {value: 0}'))
    out_dir = os.path.join(work, 'out')
    for args, message in (
        (('--sweep_file=/no/such.yaml',), 'not a file'),
        ((f'--sweep_file={search}',), 'give --num_trials'),
        ((f'--sweep_file={bad_value}', '--num_trials=2'), 'trial 1'),
        ((f'--sweep_file={search}', '--num_trials=0'), '--num_trials')):
      proc = _sweep(*args, f'--out_dir={out_dir}', *_COMMON)
      self.assertNotEqual(proc.returncode, 0, args)
      self.assertNotIn('Traceback', proc.stderr)
      lines = proc.stderr.strip().splitlines()
      self.assertLen(lines, 1, msg=proc.stderr)
      self.assertStartsWith(lines[0], 'error: ')
      self.assertIn(message, lines[0])
      self.assertFalse(os.path.exists(os.path.join(out_dir, 'trial_001')))


if __name__ == '__main__':
  absltest.main()
