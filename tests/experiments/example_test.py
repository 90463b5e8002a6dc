"""End-to-end tests of the training CLI, experiments/example.py."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image

from experiments import cli
from experiments import example
from experiments import presets

import run_folder

FLAGS = flags.FLAGS
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO, 'experiments', 'example.py')
_RESULT_FILES = ('config.json', 'metrics.jsonl', 'eval.json',
                 'accuracy_vs_length.png', 'checkpoints')

# The original README command shrunk, in the sweep files' style: original
# flag names, space-separated values mixed with `--flag=value`.
_README_STAIRCASE = (
    '--task', 'parity_check', '--architecture', 'my_staircase',
    '--is_causal', '1', '--include_eos', '0', '--validate',
    '--batch_size=16', '--embed_size=16', '--num_heads=2', '--lr=1e-3',
    '--wd', '1e-2',
    '--second_training_steps=20', '--fix_staircase_size_forward=2',
    '--num_recurrent_calls=2', '--group_size=2', '--sequence_length', '6',
    '--test_length', '12')
# Our cadence flags: 21 steps, checkpoints at 7, 14, 21 (the last two kept),
# log lines at 7, 14, 21, validations at 10, 20, 21.
_CADENCE = ('--log_frequency', '7', '--checkpoint_every', '7',
            '--validate_every', '10', '--progress=false')

_cache_dir = None


def setUpModule():
  # The runs share a persistent compilation cache (JAX reads these variables),
  # so a repeated configuration is not compiled again. It only saves time.
  global _cache_dir
  _cache_dir = tempfile.mkdtemp()


def tearDownModule():
  shutil.rmtree(_cache_dir, ignore_errors=True)


def _run_cli(*args: str, script: str = _SCRIPT) -> subprocess.CompletedProcess:
  env = dict(os.environ,
             JAX_COMPILATION_CACHE_DIR=_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')
  return subprocess.run([sys.executable, script, *args], cwd=_REPO, env=env,
                        capture_output=True, text=True, timeout=600,
                        check=False)










def _without_timing(record):
  if isinstance(record, list):
    return [_without_timing(r) for r in record]
  return {k: v for k, v in record.items() if k not in run_folder.TIMING_KEYS}


class CliTestCase(parameterized.TestCase):

  def assert_ok(self, proc: subprocess.CompletedProcess):
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertNotIn('Traceback', proc.stderr)

  def assert_clean_error(self, code, stderr: str, names: str):
    """A non-zero exit and one `error:` line naming `names`, no traceback."""
    self.assertNotIn(code, (0, None), msg=stderr)
    self.assertNotIn('Traceback', stderr)
    lines = stderr.strip().splitlines()
    self.assertLen(lines, 1, msg=stderr)
    self.assertStartsWith(lines[0], 'error: ')
    self.assertIn(names, lines[0])


class StaircaseRunTest(CliTestCase):
  """One tiny staircase run with a random seed, inspected by every test."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out_dir = tempfile.mkdtemp()
    cls.args = (*_README_STAIRCASE, *_CADENCE, '--out_dir',
                cls.out_dir)
    cls.proc = _run_cli(*cls.args)
    cls.run_dir = None
    if cls.proc.returncode == 0:
      cls.run_dir = run_folder.only_run_dir(cls.out_dir)
    # Tests read this copy; the crash test damages the original.
    cls.reference = tempfile.mkdtemp()
    if cls.run_dir:
      shutil.copytree(cls.run_dir, cls.reference, dirs_exist_ok=True)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out_dir, ignore_errors=True)
    shutil.rmtree(cls.reference, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assert_ok(self.proc)

  def test_evaluate_rescores_the_saved_run(self):
    run_dir = run_folder.tempdir(self)
    shutil.copytree(self.reference, run_dir, dirs_exist_ok=True)
    proc = _run_cli('--run_dir', run_dir, '--test_length', '16',
                    '--eval_protocol', 'seed',
                    script=os.path.join(_REPO, 'experiments', 'evaluate.py'))
    self.assert_ok(proc)
    rescored = run_folder.load_json(os.path.join(run_dir, 'eval_seed_L16.json'))
    original = run_folder.load_json(os.path.join(run_dir, 'eval.json'))
    self.assertEqual(rescored['protocol'], 'seed')
    self.assertEqual(rescored['eval_step'], original['eval_step'])
    self.assertEqual([p['length'] for p in rescored['per_length']],
                     list(range(1, 17)))
    # The same checkpoint scored by the other protocol: equal within
    # sampling error at the shared lengths.
    for new, old in zip(rescored['per_length'], original['per_length']):
      self.assertLess(abs(new['accuracy'] - old['accuracy']), 0.15)
    self.assertTrue(os.path.exists(os.path.join(run_dir, 'eval_seed_L16.png')))

  def test_evaluate_rejects_a_folder_without_a_run(self):
    proc = _run_cli('--run_dir', run_folder.tempdir(self),
                    script=os.path.join(_REPO, 'experiments', 'evaluate.py'))
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('config.json', proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)

  def test_writes_every_result_file(self):
    for name in _RESULT_FILES:
      self.assertTrue(os.path.exists(os.path.join(self.reference, name)), name)
    self.assertEqual(
        sorted(os.listdir(os.path.join(self.reference, 'checkpoints',
                                       'latest'))), ['14', '21'])
    self.assertNotEmpty(
        os.listdir(os.path.join(self.reference, 'checkpoints', 'best')))
    self.assertIn(f'Run folder: {self.run_dir}', self.proc.stderr)
    self.assertIn('score', self.proc.stdout)

  def test_config_json_is_the_experiment_config_with_the_drawn_seed(self):
    saved = run_folder.load_json(os.path.join(self.reference, 'config.json'))
    config = saved['config']
    self.assertIsInstance(config['training']['seed'], int)
    self.assertEqual(config['architecture'], 'my_staircase')
    self.assertEqual([(p['name'], p['steps'])
                      for p in config['training']['phases']],
                     [('staircase', 21)])
    self.assertEqual(config['training']['batch_size'], 16)
    self.assertEqual(config['model']['chunk_size'], 2)
    self.assertEqual(config['evaluation']['protocol'], 'auto')
    self.assertEqual(set(saved['code_version']),
                     {'package', 'git_commit', 'jax'})
    # The folder is named for the flags: a rerun finds it and its seed.
    self.assertEndsWith(self.run_dir, '_seedrandom')

  def test_eval_json_holds_per_length_accuracy_and_scores(self):
    result = run_folder.load_json(os.path.join(self.reference, 'eval.json'))
    per_length = result['per_length']
    self.assertEqual([p['length'] for p in per_length], list(range(1, 13)))
    accuracy_L = np.array([p['accuracy'] for p in per_length])
    self.assertTrue(np.all((accuracy_L >= 0) & (accuracy_L <= 1)))
    # Training on 1..6: the score averages lengths 8..12, ood 7..12.
    self.assertAlmostEqual(result['score'], accuracy_L[7:].mean())
    self.assertAlmostEqual(result['ood_score'], accuracy_L[6:].mean())
    self.assertIn('8..12', result['score_definition'])
    failed = np.flatnonzero(accuracy_L < 0.99)
    self.assertEqual(result['solved_up_to'],
                     int(failed[0]) if failed.size else 12)
    self.assertEqual(result['test_length'], 12)
    self.assertEqual(result['training_length'], 6)
    # Lengths 1..6 fit one bucket; validation and the prefix protocol add one
    # program each.
    self.assertEqual(result['protocol'], 'prefix')
    self.assertEqual(result['compiled_programs'],
                     {'training': 1, 'validation': 1, 'evaluation': 1})

  def test_metrics_lines_have_step_loss_accuracy_and_speed(self):
    records = run_folder.metrics(self.reference)
    self.assertEqual([r['step'] for r in records], [7, 10, 14, 20, 21])
    for record in records:
      if record['step'] % 7 == 0:
        for key in ('train_loss', 'train_accuracy', 'steps_per_second'):
          self.assertTrue(np.isfinite(record[key]), key)
        self.assertBetween(record['train_accuracy'], 0, 1)
        self.assertEqual(record['mode'], 'staircase')
    validated = {r['step']: r['validation_accuracy'] for r in records
                 if 'validation_accuracy' in r}
    self.assertEqual(sorted(validated), [10, 20, 21])
    result = run_folder.load_json(os.path.join(self.reference, 'eval.json'))
    best = max(validated.values())
    self.assertEqual(result['best_validation_accuracy'], best)
    self.assertEqual(result['eval_step'],
                     min(s for s, a in validated.items() if a == best))

  def test_plot_is_a_png(self):
    path = os.path.join(self.reference, 'accuracy_vs_length.png')
    with open(path, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
    with Image.open(path) as image:
      image.verify()
    with Image.open(path) as image:
      self.assertEqual(image.format, 'PNG')
      self.assertGreater(min(image.size), 100)

  def test_rerun_of_a_finished_run_needs_overwrite(self):
    out_dir = run_folder.tempdir(self)
    run_dir = os.path.join(out_dir, os.path.basename(self.run_dir))
    shutil.copytree(self.reference, run_dir)
    proc = _run_cli(*self.args[:-1], out_dir)
    self.assert_clean_error(proc.returncode, proc.stderr, '--overwrite')
    self.assertEqual(sorted(os.listdir(run_dir)),
                     sorted(os.listdir(self.reference)))

  def test_rerun_after_a_crash_resumes_and_matches(self):
    # What a kill after the metrics of step 21 and before its checkpoint
    # leaves: checkpoint 14 (and 7, evicted), lines for steps up to 21.
    for name in ('eval.json', 'accuracy_vs_length.png'):
      os.remove(os.path.join(self.run_dir, name))
    shutil.rmtree(os.path.join(self.run_dir, 'checkpoints', 'latest', '21'))
    proc = _run_cli(*self.args)
    self.assert_ok(proc)
    self.assertIn('Resuming from step 14', proc.stderr)
    self.assertEqual(_without_timing(run_folder.metrics(self.run_dir)),
                     _without_timing(run_folder.metrics(self.reference)))
    resumed = run_folder.load_json(os.path.join(self.run_dir, 'eval.json'))
    reference = run_folder.load_json(os.path.join(self.reference, 'eval.json'))
    for key in ('score', 'ood_score', 'in_distribution_accuracy'):
      self.assertAlmostEqual(resumed[key], reference[key], delta=1e-6,
                             msg=key)
    self.assertEqual(_without_timing(resumed), _without_timing(reference))
    self.assertEqual(
        run_folder.load_json(os.path.join(self.run_dir, 'config.json')),
        run_folder.load_json(os.path.join(self.reference, 'config.json')))

  def _unfinished_copy(self) -> tuple[str, str]:
    """(out_dir, run_dir): a copy of the reference run with its final
    results removed, as a kill during evaluation leaves it."""
    out_dir = run_folder.tempdir(self)
    run_dir = os.path.join(out_dir, os.path.basename(self.run_dir))
    shutil.copytree(self.reference, run_dir)
    for name in ('eval.json', 'accuracy_vs_length.png'):
      os.remove(os.path.join(run_dir, name))
    return out_dir, run_dir

  def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(self):
    out_dir, run_dir = self._unfinished_copy()
    run_folder.damage(os.path.join(run_dir, 'checkpoints', 'latest', '21'))
    proc = _run_cli(*self.args[:-1], out_dir)
    self.assert_ok(proc)
    self.assertIn('latest checkpoint at step 21 is unreadable', proc.stderr)
    self.assertIn('Resuming from step 14', proc.stderr)
    resumed = run_folder.load_json(os.path.join(run_dir, 'eval.json'))
    reference = run_folder.load_json(os.path.join(self.reference, 'eval.json'))
    self.assertEqual(_without_timing(resumed), _without_timing(reference))

  def test_no_readable_checkpoint_is_one_error_line(self):
    out_dir, run_dir = self._unfinished_copy()
    for step in ('14', '21'):
      run_folder.damage(os.path.join(run_dir, 'checkpoints', 'latest', step))
    proc = _run_cli(*self.args[:-1], out_dir)
    self.assertNotEqual(proc.returncode, 0)
    self.assertNotIn('Traceback', proc.stderr)
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith('error:')]
    self.assertLen(errors, 1, msg=proc.stderr)
    self.assertIn('no readable latest checkpoint', errors[0])
    self.assertIn('--overwrite', errors[0])
    self.assertEqual(proc.stderr.strip().splitlines()[-1], errors[0])

  def test_the_recorded_seed_reproduces_the_run(self):
    seed = run_folder.load_json(os.path.join(
        self.reference, 'config.json'))['config']['training']['seed']
    out_dir = run_folder.tempdir(self)
    proc = _run_cli(*self.args[:-1], out_dir, '--seed', str(seed))
    self.assert_ok(proc)
    run_dir = run_folder.only_run_dir(out_dir)
    self.assertEndsWith(run_dir, f'_seed{seed}')
    self.assertEqual(_without_timing(run_folder.metrics(run_dir)),
                     _without_timing(run_folder.metrics(self.reference)))
    self.assertEqual(
        _without_timing(run_folder.load_json(os.path.join(run_dir, 'eval.json'))),
        _without_timing(run_folder.load_json(os.path.join(self.reference,
                                                'eval.json'))))


class OtherRunsTest(CliTestCase):

  @parameterized.named_parameters(
      ('transformer', ('--architecture', 'transformer', '--num_layers', '2',
                       '--include_eos', '1', '--num_heads', '2'), 'seed'),
      ('rnn', ('--architecture', 'rnn', '--include_eos', '0'), 'prefix'),
      # The block-recurrent model is causal whatever --is_causal says.
      ('brt', ('--architecture', 'brt', '--num_layers', '2', '--chunk_size',
               '2', '--recurrent_layer_index', '1', '--num_state_vectors',
               '2', '--num_heads', '2', '--include_eos', '0'), 'prefix'),
      ('brt_meliad', ('--architecture', 'brt', '--brt_variant', 'meliad',
                      '--brt_norm', 'layernorm', '--num_layers', '1',
                      '--chunk_size', '1', '--recurrent_layer_index', '1',
                      '--num_heads', '2', '--include_eos', '1',
                      '--dropout', '0.1'), 'seed'))
  def test_baseline_runs_and_evaluates(self, args, protocol):
    out_dir = run_folder.tempdir(self)
    proc = _run_cli(*args, '--task', 'parity_check', '--train_steps', '10',
                    '--embed_size', '8', '--batch_size', '8', '--lr', '1e-3',
                    '--sequence_length', '6', '--test_length', '8',
                    '--seed', '1', '--out_dir', out_dir, '--progress=false')
    self.assert_ok(proc)
    run_dir = run_folder.only_run_dir(out_dir)
    for name in _RESULT_FILES:
      self.assertTrue(os.path.exists(os.path.join(run_dir, name)), name)
    result = run_folder.load_json(os.path.join(run_dir, 'eval.json'))
    self.assertEqual(result['protocol'], protocol)
    self.assertLen(result['per_length'], 8)
    self.assertEqual(result['eval_step'], 11)  # train_steps + 1.
    self.assertIsNone(result['best_validation_accuracy'])
    self.assertEqual(run_folder.metrics(run_dir)[-1]['step'], 11)

  def test_a_state_tracking_task_runs_and_names_its_group(self):
    out_dir = run_folder.tempdir(self)
    proc = _run_cli('--task', 'word_problem', '--group', 'A4xZ5',
                    '--architecture', 'lstm', '--include_eos', '0',
                    '--train_steps', '10', '--embed_size', '8',
                    '--batch_size', '8', '--sequence_length', '6',
                    '--test_length', '8', '--seed', '1', '--out_dir',
                    out_dir, '--progress=false')
    self.assert_ok(proc)
    run_dir = run_folder.only_run_dir(out_dir)
    self.assertIn('word_problem-groupA4xZ5_', os.path.basename(run_dir))
    config = run_folder.load_json(os.path.join(run_dir, 'config.json'))
    self.assertEqual(config['config']['task'],
                     {'name': 'word_problem', 'kwargs': {'group': 'A4xZ5'}})
    self.assertEqual(config['config']['model']['output_size'], 60)
    result = run_folder.load_json(os.path.join(run_dir, 'eval.json'))
    self.assertEqual(result['protocol'], 'prefix')
    self.assertLen(result['per_length'], 8)

  def test_bucket_width_sets_the_training_programs(self):
    out_dir = run_folder.tempdir(self)
    proc = _run_cli('--architecture', 'rnn', '--include_eos', '0',
                    '--task', 'parity_check', '--train_steps', '30',
                    '--embed_size', '8', '--batch_size', '8',
                    '--sequence_length', '6', '--test_length', '8',
                    '--bucket_width', '2', '--seed', '1', '--out_dir', out_dir,
                    '--progress=false')
    self.assert_ok(proc)
    result = run_folder.load_json(os.path.join(run_folder.only_run_dir(out_dir), 'eval.json'))
    # Lengths 1..6 in buckets 2, 4, 6; 31 steps draw all three.
    self.assertEqual(result['compiled_programs']['training'], 3)

  def test_explicit_flags_override_the_preset(self):
    out_dir = run_folder.tempdir(self)
    # Explicit tiny sizes; everything else comes from the preset.
    proc = _run_cli('--preset', 'cpu_demo', '--second_training_steps', '5',
                    '--test_length', '50', '--sequence_length', '6',
                    '--batch_size', '16', '--embed_size', '16',
                    '--num_heads', '2', '--out_dir', out_dir,
                    '--progress=false')
    self.assert_ok(proc)
    run_dir = run_folder.only_run_dir(out_dir)
    config = run_folder.load_json(os.path.join(run_dir,
                                               'config.json'))['config']
    model, training = config['model'], config['training']
    self.assertEqual(training['phases'][0]['steps'], 6)
    self.assertEqual(config['evaluation']['test_length'], 50)
    self.assertEqual(training['curriculum']['max_length'], 6)
    self.assertEqual(training['batch_size'], 16)
    self.assertEqual((model['d_model'], model['num_heads']), (16, 2))
    # The rest comes from the preset.
    preset = presets.PRESETS['cpu_demo']
    self.assertEqual(config['architecture'], preset['architecture'])
    self.assertEqual(
        (training['learning_rate'], training['weight_decay'],
         training['adam_beta1_inv'], training['seed'],
         training['log_every'], training['checkpoint_every']),
        (preset['lr'], preset['wd'], preset['adam_beta1_inv'],
         preset['seed'], preset['log_frequency'],
         preset['checkpoint_every']))
    self.assertEqual(
        (model['is_causal'], config['encoding']['include_eos'],
         model['chunk_size'], model['group_size'],
         model['num_recurrent_calls']),
        (bool(preset['is_causal']), bool(preset['include_eos']),
         preset['fix_staircase_size_forward'], preset['group_size'],
         preset['num_recurrent_calls']))
    result = run_folder.load_json(os.path.join(run_dir, 'eval.json'))
    self.assertLen(result['per_length'], 50)
    self.assertEqual(result['training_length'], 6)
    self.assertEqual(run_folder.metrics(run_dir)[-1]['step'], 6)


class PreemptionTest(CliTestCase):

  _ARGS = ('--architecture', 'rnn', '--include_eos', '0', '--task',
           'parity_check', '--train_steps', '1500', '--embed_size', '8',
           '--batch_size', '8', '--sequence_length', '6', '--test_length',
           '8', '--seed', '2', '--log_frequency', '50', '--checkpoint_every',
           '100000', '--progress=false')

  def test_sigterm_checkpoints_the_step_and_the_rerun_resumes(self):
    out_dir, alone_dir = run_folder.tempdir(self), run_folder.tempdir(self)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=_cache_dir)
    proc = subprocess.Popen(
        [sys.executable, _SCRIPT, *self._ARGS, '--out_dir', out_dir],
        cwd=_REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    # Signal once training runs: the first metrics line is written.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
      runs = os.listdir(out_dir)
      if runs and os.path.exists(os.path.join(out_dir, runs[0],
                                              'metrics.jsonl')):
        break
      time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    self.assertEqual(proc.returncode, 143, msg=stderr)
    self.assertNotIn('Traceback', stderr)
    (line,) = [l for l in stderr.splitlines() if l.startswith('error:')]
    self.assertIn('stopped by SIGTERM: saved a checkpoint at step', line)
    step = int(line.split('at step ')[1].split(';')[0])
    self.assertBetween(step, 50, 1500)  # Not the end: a real preemption.
    run_dir = run_folder.only_run_dir(out_dir)
    self.assertEqual(
        os.listdir(os.path.join(run_dir, 'checkpoints', 'latest')),
        [str(step)])
    resumed = _run_cli(*self._ARGS, '--out_dir', out_dir)
    self.assert_ok(resumed)
    self.assertIn(f'Resuming from step {step}', resumed.stderr)
    alone = _run_cli(*self._ARGS, '--out_dir', alone_dir)
    self.assert_ok(alone)
    alone_run = run_folder.only_run_dir(alone_dir)
    self.assertEqual(_without_timing(run_folder.metrics(run_dir)),
                     _without_timing(run_folder.metrics(alone_run)))
    self.assertEqual(
        _without_timing(run_folder.load_json(os.path.join(run_dir,
                                                          'eval.json'))),
        _without_timing(run_folder.load_json(os.path.join(alone_run,
                                                          'eval.json'))))


class BadFlagTest(CliTestCase):
  """Bad flags stop the CLI before any training, with one clear line."""

  # Tiny values for everything else, so a missed check trains only briefly.
  _BASE = ('--architecture', 'rnn', '--batch_size', '8', '--embed_size', '8',
           '--num_heads', '2', '--sequence_length', '4', '--test_length', '6',
           '--train_steps', '2', '--seed', '0', '--progress=false')
  _STAIRCASE = ('--architecture', 'my_staircase', '--is_causal', '1',
                '--include_eos', '0', '--num_recurrent_calls', '1',
                '--fix_staircase_size_forward', '2',
                '--second_training_steps', '5')

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

  def run_in_process(self, args, out_dir):
    """example.main as app.run calls it: (exit code, stderr)."""
    FLAGS.unparse_flags()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(
        io.StringIO()):
      try:
        argv = cli.parse_flags(['example.py', *args, '--out_dir', out_dir])
        cli.call(example.main, argv)
        code = 0
      except SystemExit as e:
        code = e.code
    return code, stderr.getvalue()

  @parameterized.named_parameters(
      ('unknown_task', ('--task', 'parity'), '--task'),
      ('unknown_architecture', ('--architecture', 'gpt'), '--architecture'),
      ('brt_without_chunk_size',
       ('--architecture', 'brt', '--num_layers', '2',
        '--recurrent_layer_index', '1'), '--chunk_size'),
      ('brt_recurrent_layer_out_of_range',
       ('--architecture', 'brt', '--num_layers', '2', '--chunk_size', '2',
        '--recurrent_layer_index', '3'), '--recurrent_layer_index'),
      ('brt_chunk_not_dividing_max_length',
       ('--architecture', 'brt', '--num_layers', '2', '--chunk_size', '3',
        '--recurrent_layer_index', '1'), '--max_sequence_length'),
      ('brt_unknown_choice',
       ('--architecture', 'brt', '--num_layers', '2', '--chunk_size', '2',
        '--recurrent_layer_index', '1', '--brt_norm', 'batchnorm'),
       '--brt_norm'),
      ('brt_unknown_variant',
       ('--architecture', 'brt', '--num_layers', '2', '--chunk_size', '2',
        '--recurrent_layer_index', '1', '--brt_variant', 'hutchins'),
       '--brt_variant'),
      ('chunk_size_zero', _STAIRCASE + ('--fix_staircase_size_forward', '0'),
       '--fix_staircase_size_forward'),
      ('heads_not_dividing_width',
       ('--architecture', 'transformer', '--num_layers', '1',
        '--embed_size', '16', '--num_heads', '3'), '--num_heads'),
      ('cache_steps', _STAIRCASE + ('--staircase_cache_steps', '-2'),
       '--staircase_cache_steps'),
      ('staircase_not_causal', _STAIRCASE + ('--is_causal', '0'),
       '--is_causal'),
      ('batch_size', ('--batch_size', '0'), '--batch_size'),
      ('bucket_width', ('--bucket_width', '0'), '--bucket_width'),
      ('test_length', ('--test_length', '0'), '--test_length'),
      ('test_length_within_training', ('--test_length', '4'),
       '--test_length'),
      ('train_steps', ('--train_steps', '-1'), '--train_steps'),
      ('negative_lr', ('--lr', '-1'), '--lr'),
      ('nan_lr', ('--lr', 'nan'), '--lr'),
      ('layers_not_divisible',
       ('--architecture', 'my_staircase', '--is_causal', '1',
        '--include_eos', '0', '--fix_staircase_size_forward', '2',
        '--second_training_steps', '5', '--num_layers', '5',
        '--group_size', '2'), 'num_layers'),
      ('unknown_preset', ('--preset', 'unknown'), '--preset'),
      ('early_stopping_without_validation',
       ('--early_stopping_accuracy', '0.9'), '--validate'),
      ('test_length_without_a_scored_length', ('--test_length', '5'),
       '--test_length'),
      ('prefix_protocol_with_eos', ('--include_eos', '1', '--eval_protocol',
                                    'prefix'), '--eval_protocol'),
      ('eval_num_strings', ('--eval_num_strings', '100'),
       '--eval_num_strings'),
      ('unknown_group', ('--task', 'word_problem', '--group', 'Q8'),
       'unknown group'),
      ('dyck_depth_zero', ('--task', 'dyck', '--dyck_depth', '0'),
       'depth >= 1'),
  )
  def test_bad_flag_fails_fast_with_one_line(self, args, names):
    out_dir = run_folder.tempdir(self)
    code, stderr = self.run_in_process(self._BASE + args, out_dir)
    self.assert_clean_error(code, stderr, names)
    self.assertEmpty(os.listdir(out_dir))

  def test_an_out_dir_that_cannot_be_created_is_one_line(self):
    blocker = os.path.join(run_folder.tempdir(self), 'a_file')
    with open(blocker, 'w') as f:
      f.write('not a folder')
    code, stderr = self.run_in_process(self._BASE, os.path.join(blocker, 'out'))
    self.assert_clean_error(code, stderr, '--out_dir')

  def test_a_run_folder_of_another_code_version_is_one_line(self):
    out_dir = run_folder.tempdir(self)
    args = self._BASE + ('--run_name', 'old')
    os.makedirs(os.path.join(out_dir, 'old'))
    with open(os.path.join(out_dir, 'old', 'config.json'), 'w') as f:
      json.dump({'schema': 1, 'flags': {}}, f)
    code, stderr = self.run_in_process(args, out_dir)
    self.assert_clean_error(code, stderr, 'another version')
    self.assertEqual(os.listdir(os.path.join(out_dir, 'old')),
                     ['config.json'])

  def test_bad_flags_exit_cleanly_from_the_command_line(self):
    out_dir = run_folder.tempdir(self)
    proc = _run_cli(*self._BASE, '--architecture', 'transformer',
                    '--num_layers', '1', '--embed_size', '16', '--num_heads',
                    '3', '--out_dir', out_dir)
    self.assert_clean_error(proc.returncode, proc.stderr, '--num_heads')
    self.assertEqual(proc.returncode, 2)
    self.assertEmpty(os.listdir(out_dir))


if __name__ == '__main__':
  absltest.main()
