"""End-to-end tests of `experiments/example.py --num_seeds`."""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from experiments import cli
from experiments import example
from training import curriculum
from training import length_buckets
from training import training

import run_folder

FLAGS = flags.FLAGS
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO, 'experiments', 'example.py')
# A causal Transformer without dropout: padding a seed to another seed's
# longer bucket changes its results only by float rounding. 10 steps; lengths
# 1..12 fall in buckets 10 and 12; validations at 5 and 10; checkpoints at 4
# and 8 (kept) and 10.
_TINY = ('--task', 'parity_check', '--architecture', 'transformer',
         '--num_layers', '1', '--is_causal', '1', '--include_eos', '0',
         '--num_heads', '2', '--embed_size', '8', '--batch_size', '8',
         '--lr', '1e-2', '--train_steps', '9', '--sequence_length', '12',
         '--test_length', '14', '--validate', '--validate_every', '5',
         '--log_frequency', '2', '--checkpoint_every', '4',
         '--progress=false')
_SEEDS = (6, 7)

_cache_dir = None


def setUpModule():
  global _cache_dir
  _cache_dir = tempfile.mkdtemp()


def tearDownModule():
  shutil.rmtree(_cache_dir, ignore_errors=True)


def _run_cli(*args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
  env = dict(os.environ,
             JAX_COMPILATION_CACHE_DIR=_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1', **(env or {}))
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=_REPO, env=env,
                        capture_output=True, text=True, timeout=600,
                        check=False)










def _without_timing(records):
  return [{k: v for k, v in r.items() if k not in run_folder.TIMING_KEYS}
          for r in records]


class MultiSeedRunTest(parameterized.TestCase):
  """Two seeds trained together, and the second seed trained alone."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out_dir = tempfile.mkdtemp()
    cls.args = (*_TINY, '--seed', str(_SEEDS[0]), '--num_seeds', '2')
    cls.proc = _run_cli(*cls.args, '--out_dir', cls.out_dir)
    cls.alone_dir = tempfile.mkdtemp()
    cls.alone = _run_cli(*_TINY, '--seed', str(_SEEDS[1]), '--out_dir',
                         cls.alone_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out_dir, ignore_errors=True)
    shutil.rmtree(cls.alone_dir, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    for proc in (self.proc, self.alone):
      self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.run_dir = run_folder.only_run_dir(self.out_dir)

  def test_writes_a_folder_per_seed_and_a_summary(self):
    self.assertEndsWith(self.run_dir, '_seeds6-7')
    self.assertEqual(
        sorted(os.listdir(self.run_dir)),
        ['accuracy_vs_length.png', 'checkpoints', 'config.json', 'seed_6',
         'seed_7', 'summary.json', 'summary.md'])
    for seed in _SEEDS:
      self.assertEqual(
          sorted(os.listdir(os.path.join(self.run_dir, f'seed_{seed}'))),
          ['accuracy_vs_length.png', 'eval.json', 'metrics.jsonl'])
    config = run_folder.load_json(os.path.join(self.run_dir, 'config.json'))
    self.assertEqual(config['config']['training']['seed'], _SEEDS[0])
    self.assertEqual(config['config']['training']['num_seeds'], 2)
    self.assertEqual(config['mesh'], {'seed': 1, 'data': 1})

  def test_each_seed_matches_its_run_alone(self):
    lengths = curriculum.UniformCurriculum(tuple(range(1, 13)))
    buckets = length_buckets.make_buckets(12, 10)
    bucket_RS = [[length_buckets.bucket_for(
        int(lengths.sample(training.step_keys(seed, s)[0], s)), buckets)
                  for s in range(10)] for seed in _SEEDS]
    # The check means something: seed 7 is padded to seed 6's bucket at some
    # step.
    self.assertTrue(any(a > b for a, b in zip(*bucket_RS)))
    seed_dir = os.path.join(self.run_dir, f'seed_{_SEEDS[1]}')
    alone_dir = run_folder.only_run_dir(self.alone_dir)
    together, alone = run_folder.metrics(seed_dir), run_folder.metrics(alone_dir)
    self.assertEqual([sorted(r) for r in together], [sorted(r) for r in alone])
    for got, want in zip(_without_timing(together), _without_timing(alone)):
      for key, value in want.items():
        if isinstance(value, float):
          self.assertAlmostEqual(got[key], value, delta=1e-5, msg=key)
        else:
          self.assertEqual(got[key], value, msg=key)
    got = run_folder.load_json(os.path.join(seed_dir, 'eval.json'))
    want = run_folder.load_json(os.path.join(alone_dir, 'eval.json'))
    self.assertEqual((got['seed'], got['eval_step']),
                     (want['seed'], want['eval_step']))
    np.testing.assert_allclose(
        [p['accuracy'] for p in got['per_length']],
        [p['accuracy'] for p in want['per_length']], atol=0.01)

  def test_summary_is_max_mean_std_over_seeds(self):
    summary = run_folder.load_json(os.path.join(self.run_dir, 'summary.json'))
    evals = [run_folder.load_json(os.path.join(self.run_dir, f'seed_{s}', 'eval.json'))
             for s in _SEEDS]
    self.assertEqual(summary['seeds'], list(_SEEDS))
    for name in ('score', 'ood_score'):
      values = np.array([e[name] for e in evals])
      self.assertAlmostEqual(summary[name]['max'], values.max())
      self.assertAlmostEqual(summary[name]['mean'], values.mean())
      self.assertAlmostEqual(summary[name]['std'], values.std())
    self.assertEqual(summary['solved'],
                     sum(e['ood_score'] >= 0.99 for e in evals))
    with open(os.path.join(self.run_dir, 'summary.md')) as f:
      table = f.read()
    for seed, e in zip(_SEEDS, evals):
      self.assertIn(f"| {seed} | {e['score']:.4f} |", table)
    self.assertIn(f"| mean | {summary['score']['mean']:.4f} |", table)
    self.assertIn(table, self.proc.stdout)

  def test_rerun_after_a_crash_resumes_every_seed(self):
    out_dir = run_folder.tempdir(self)
    run_dir = os.path.join(out_dir, os.path.basename(self.run_dir))
    shutil.copytree(self.run_dir, run_dir)
    # What a kill after the last step's metrics and before its checkpoint
    # leaves: checkpoints 4 (evicted) and 8, lines for every step.
    for name in ('summary.json', 'seed_6/eval.json', 'seed_7/eval.json'):
      os.remove(os.path.join(run_dir, name))
    shutil.rmtree(os.path.join(run_dir, 'checkpoints', 'latest', '10'))
    proc = _run_cli(*self.args, '--out_dir', out_dir)
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertIn('Resuming from step 8', proc.stderr)
    for seed in _SEEDS:
      for name in ('metrics.jsonl', 'eval.json'):
        path = os.path.join(f'seed_{seed}', name)
        if name == 'eval.json':
          got = [run_folder.load_json(os.path.join(run_dir, path))]
          want = [run_folder.load_json(os.path.join(self.run_dir, path))]
        else:
          got = run_folder.metrics(os.path.join(run_dir, f'seed_{seed}'))
          want = run_folder.metrics(os.path.join(self.run_dir, f'seed_{seed}'))
        self.assertEqual(_without_timing(got), _without_timing(want), path)


class BadFlagTest(absltest.TestCase):

  _BASE = ('--architecture', 'rnn', '--batch_size', '8', '--embed_size', '8',
           '--sequence_length', '4', '--test_length', '6', '--train_steps',
           '2', '--seed', '0', '--progress=false')

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

  def assert_clean_error(self, code, stderr: str, names: str):
    self.assertNotIn(code, (0, None), msg=stderr)
    self.assertNotIn('Traceback', stderr)
    lines = stderr.strip().splitlines()
    self.assertLen(lines, 1, msg=stderr)
    self.assertStartsWith(lines[0], 'error: ')
    self.assertIn(names, lines[0])

  def run_in_process(self, args, out_dir):
    """example.main as app.run calls it: (exit code, stderr)."""
    FLAGS.unparse_flags()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(
        io.StringIO()):
      try:
        argv = cli.parse_flags(['example.py', *self._BASE, *args,
                                '--out_dir', out_dir])
        cli.call(example.main, argv)
        code = 0
      except SystemExit as e:
        code = e.code
    return code, stderr.getvalue()

  def test_fewer_than_one_seed(self):
    out_dir = run_folder.tempdir(self)
    code, stderr = self.run_in_process(('--num_seeds', '0'), out_dir)
    self.assert_clean_error(code, stderr, '--num_seeds')
    self.assertEmpty(os.listdir(out_dir))

  def test_process_id_outside_the_processes(self):
    out_dir = run_folder.tempdir(self)
    code, stderr = self.run_in_process(
        ('--num_processes', '2', '--process_id', '2'), out_dir)
    self.assert_clean_error(code, stderr, '--process_id')

  def test_a_batch_that_does_not_split_over_the_data_axis(self):
    out_dir = run_folder.tempdir(self)
    # 8 devices, 2 seeds: a (2, 4) mesh, and 10 rows do not split over 4.
    proc = _run_cli(*self._BASE, '--num_seeds', '2', '--batch_size', '10',
                    '--out_dir', out_dir,
                    env={'XLA_FLAGS':
                         '--xla_force_host_platform_device_count=8'})
    self.assert_clean_error(proc.returncode, proc.stderr, '--batch_size=10')
    self.assertIn('4 devices of the mesh', proc.stderr)
    self.assertEqual(proc.returncode, 2)
    self.assertEmpty(os.listdir(out_dir))


if __name__ == '__main__':
  absltest.main()
