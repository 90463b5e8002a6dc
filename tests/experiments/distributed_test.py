"""Two processes on localhost train one run together (jax.distributed)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import pytest
import numpy as np

import run_folder

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO, 'experiments', 'example.py')
# One seed whose batch is split over the two processes' devices (a (1, 2)
# mesh): every gradient is summed across the processes.
_TINY = ('--task', 'parity_check', '--architecture', 'transformer',
         '--num_layers', '1', '--is_causal', '1', '--include_eos', '0',
         '--num_heads', '2', '--embed_size', '8', '--batch_size', '8',
         '--lr', '1e-2', '--train_steps', '9', '--sequence_length', '6',
         '--test_length', '8', '--validate', '--validate_every', '5',
         '--log_frequency', '2', '--checkpoint_every', '4', '--seed', '3',
         '--progress=false')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _start(*args: str) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, _SCRIPT, *args], cwd=_REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
  try:
    stdout, stderr = proc.communicate(timeout=300)
  except subprocess.TimeoutExpired:
    proc.kill()
    stdout, stderr = proc.communicate()
  return proc.returncode, stdout, stderr


def _two_processes(*args: str) -> list[subprocess.Popen]:
  address = f'localhost:{_free_port()}'
  return [_start(*args, '--coordinator_address', address, '--num_processes',
                 '2', '--process_id', str(i)) for i in range(2)]


# 50 s of setup: kept out of the default run to hold CI under its limit;
# TwoProcessStopTest still runs two processes there.
@pytest.mark.slow
class TwoProcessTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.shared_dir, cls.single_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
    cls.processes = [_finish(p) for p in _two_processes(
        *_TINY, '--out_dir', cls.shared_dir)]
    cls.single = _finish(_start(*_TINY, '--out_dir', cls.single_dir))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.shared_dir, ignore_errors=True)
    shutil.rmtree(cls.single_dir, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    for code, _, stderr in (*self.processes, self.single):
      self.assertEqual(code, 0, msg=stderr[-3000:])
    self.shared_run = run_folder.only_run_dir(self.shared_dir)
    self.single_run = run_folder.only_run_dir(self.single_dir)

  def test_the_processes_share_one_mesh(self):
    config = run_folder.load_json(os.path.join(self.shared_run, 'config.json'))
    self.assertEqual(config['process_count'], 2)
    self.assertEqual(config['mesh'], {'seed': 1, 'data': 2})

  def test_two_processes_match_one(self):
    shared, single = run_folder.metrics(self.shared_run), run_folder.metrics(self.single_run)
    self.assertEqual([sorted(r) for r in shared], [sorted(r) for r in single])
    for got, want in zip(shared, single):
      for key, value in want.items():
        if key in run_folder.TIMING_KEYS:
          continue
        if isinstance(value, float):
          self.assertAlmostEqual(got[key], value, delta=1e-5, msg=key)
        else:
          self.assertEqual(got[key], value, msg=key)
    got = run_folder.load_json(os.path.join(self.shared_run, 'eval.json'))
    want = run_folder.load_json(os.path.join(self.single_run, 'eval.json'))
    self.assertEqual(got['eval_step'], want['eval_step'])
    np.testing.assert_allclose(
        [p['accuracy'] for p in got['per_length']],
        [p['accuracy'] for p in want['per_length']], atol=0.01)

  def test_only_process_zero_writes(self):
    # Two writers would have appended every metrics line twice.
    self.assertLen(run_folder.metrics(self.shared_run), len(run_folder.metrics(self.single_run)))
    (_, first, first_log), (_, second, second_log) = self.processes
    for printed in ('score', 'Results:'):
      self.assertIn(printed, first)
      self.assertNotIn(printed, second)
    self.assertIn('Run folder:', first_log)
    self.assertNotIn('Run folder:', second_log)
    self.assertEqual(sorted(os.listdir(self.shared_run)),
                     sorted(os.listdir(self.single_run)))


class TwoProcessStopTest(absltest.TestCase):

  def test_sigterm_to_one_process_stops_both_at_one_checkpoint(self):
    out_dir = run_folder.tempdir(self)
    procs = _two_processes(*_TINY, '--train_steps', '5000',
                           '--checkpoint_every', '5000', '--out_dir', out_dir)
    deadline = time.time() + 240
    metrics = None
    while time.time() < deadline and all(p.poll() is None for p in procs):
      runs = os.listdir(out_dir)
      if runs and os.path.exists(os.path.join(out_dir, runs[0],
                                              'metrics.jsonl')):
        metrics = os.path.join(out_dir, runs[0], 'metrics.jsonl')
        break
      time.sleep(0.5)
    self.assertIsNotNone(metrics, 'training never started')
    procs[1].send_signal(signal.SIGTERM)  # Only the second process.
    results = [_finish(p) for p in procs]
    steps = []
    for code, _, stderr in results:
      self.assertNotEqual(code, 0, msg=stderr[-3000:])
      self.assertNotIn('Traceback', stderr)
      (line,) = [l for l in stderr.splitlines() if l.startswith('error:')]
      self.assertIn('rerun the same command to resume', line)
      steps.append(int(re.search(r'at step (\d+)', line).group(1)))
    self.assertEqual(steps[0], steps[1])  # The same step on both.
    self.assertLess(steps[0], 5000)
    self.assertEqual(sorted(os.listdir(os.path.join(
        os.path.dirname(metrics), 'checkpoints', 'latest'))), [str(steps[0])])


if __name__ == '__main__':
  absltest.main()
