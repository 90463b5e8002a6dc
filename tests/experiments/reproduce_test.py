"""The reproduction grid: budgets as rules, and a smoke grid end to end."""

import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from PIL import Image

from experiments import grid
from experiments import presets
import run_folder

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO, 'experiments', 'reproduce.py')
_PUBLISHED = {name: presets.from_sweep_file(path)
              for name, path in presets.published_files().items()}


def _reproduce(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=_REPO,
                        capture_output=True, text=True, timeout=900)


class BudgetTest(absltest.TestCase):

  def test_every_cell_of_the_full_grid_has_a_setting(self):
    cells = grid.cells(grid.TASKS, grid.ARCHITECTURES, 'full', _PUBLISHED)
    self.assertLen(cells, 44)
    c2 = [c for c in cells if c.name == 'parity_check/staircase_c2'][0]
    self.assertEqual(c2.overrides, _PUBLISHED['staircase_parity_check_c2'])

  def test_the_cpu_budget_is_one_rule_for_every_architecture(self):
    for cell in grid.cells(grid.TASKS, grid.ARCHITECTURES, 'cpu', _PUBLISHED):
      o = cell.overrides
      self.assertLessEqual(o['embed_size'], 32, cell.name)
      self.assertLessEqual(o['num_heads'], 4, cell.name)
      self.assertLessEqual(o['batch_size'], 64, cell.name)
      self.assertLessEqual(o['second_training_steps'], grid.CPU_STEPS)
      self.assertEqual((o['early_stopping_accuracy'], o['validate']),
                       (0.99, True), cell.name)
      # One optimizer for all, whatever the published file says.
      self.assertEqual((o['lr'], o['wd'], o['adam_beta1_inv'], o['dropout'],
                        o['eval_num_strings']), (1e-3, 1e-2, 0.0319, 0.0, 128),
                       cell.name)
    # Chunk sizes of one kind differ only in what the published files give.
    c1 = grid.at_budget(_PUBLISHED['staircase_parity_check_c1'], 'cpu')
    c8 = grid.at_budget(_PUBLISHED['staircase_parity_check_c8'], 'cpu')
    self.assertEqual((c1['embed_size'], c1['second_training_steps']),
                     (c8['embed_size'], c8['second_training_steps']))

  def test_sequential_steps_fall_with_the_chunk(self):
    self.assertEqual([grid.sequential_steps('staircase', c, 40)
                      for c in grid.CHUNKS], [41, 21, 11, 6])
    self.assertEqual([grid.sequential_steps('brt', c, 40)
                      for c in grid.CHUNKS], [40, 20, 10, 5])

  def test_the_state_tracking_suite_keeps_each_architecture_setting(self):
    tasks, architectures = grid.SUITES['state_tracking']
    cells = grid.cells(tasks, architectures, 'cpu', _PUBLISHED)
    self.assertLen(cells, 35)
    by_name = {c.name: c.overrides for c in cells}
    a5 = by_name['A5/staircase_c2']
    self.assertEqual((a5['task'], a5['group']), ('word_problem', 'A5'))
    self.assertEqual(a5['second_training_steps'],
                     grid.STATE_TRACKING_CPU_STEPS)
    parity = grid.at_budget(_PUBLISHED['staircase_parity_check_c2'], 'cpu',
                            grid.STATE_TRACKING_CPU_STEPS)
    self.assertEqual({k: v for k, v in a5.items() if k not in ('task',
                                                             'group')},
                     {k: v for k, v in parity.items() if k != 'task'})
    self.assertEqual(by_name['tomita_3/lstm']['task'], 'tomita_3')

  def test_the_eleven_architectures_get_eleven_colors(self):
    colors = grid.distinct_colors(len(grid.ARCHITECTURES))
    self.assertLen(colors, 11)
    self.assertLen(set(colors), 11)
    self.assertLen(set(grid.distinct_colors(20)), 20)

  def test_an_unknown_budget_is_refused(self):
    with self.assertRaisesRegex(ValueError, '--budget'):
      grid.at_budget({}, 'huge')


class SmokeGridTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out_dir = tempfile.mkdtemp()
    cls.args = ('--budget=smoke', '--tasks=parity_check',
                '--architectures=staircase_c1,staircase_c2',
                f'--out_dir={cls.out_dir}')
    cls.proc = _reproduce(*cls.args)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out_dir, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.proc.returncode, 0, msg=self.proc.stderr[-3000:])

  def test_the_table_has_a_row_per_cell_matching_its_run(self):
    with open(os.path.join(self.out_dir, 'table.csv')) as f:
      lines = f.read().splitlines()
    header, rows = lines[0].split(','), [l.split(',') for l in lines[1:]]
    self.assertLen(rows, 2)
    for row in rows:
      values = dict(zip(header, row))
      saved = run_folder.load_json(os.path.join(
          self.out_dir, 'runs', values['task'], values['architecture'],
          'eval.json'))
      self.assertAlmostEqual(float(values['score_mean']), saved['score'],
                             places=6)
      self.assertAlmostEqual(float(values['ood_score_max']),
                             saved['ood_score'], places=6)
    with open(os.path.join(self.out_dir, 'table.md')) as f:
      table = f.read()
    self.assertIn('| architecture | parity_check |', table)
    self.assertIn('| staircase_c2 | ', table)

  def test_the_figures_are_pngs(self):
    for name in ('accuracy_vs_length_parity_check.png', 'score_vs_chunk.png',
                 'time_vs_chunk.png'):
      with Image.open(os.path.join(self.out_dir, name)) as image:
        self.assertEqual(image.format, 'PNG')

  def test_a_rerun_skips_every_finished_cell(self):
    proc = _reproduce(*self.args)
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertEqual(proc.stderr.count('finished before, skipped'), 2)

  def test_cells_of_an_earlier_command_stay_in_the_table(self):
    out_dir = self.out_dir + '_more'
    shutil.copytree(self.out_dir, out_dir)
    self.addCleanup(shutil.rmtree, out_dir, ignore_errors=True)
    proc = _reproduce('--budget=smoke', '--tasks=even_pairs',
                      '--architectures=staircase_c1', f'--out_dir={out_dir}')
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    with open(os.path.join(out_dir, 'table.csv')) as f:
      cells = [line.split(',')[:2] for line in f.read().splitlines()[1:]]
    self.assertEqual(cells, [['parity_check', 'staircase_c1'],
                             ['parity_check', 'staircase_c2'],
                             ['even_pairs', 'staircase_c1']])
    with open(os.path.join(out_dir, 'table.md')) as f:
      self.assertIn('| architecture | parity_check | even_pairs |', f.read())

  def test_an_unknown_architecture_is_one_line(self):
    proc = _reproduce('--architectures=gpt', f'--out_dir={self.out_dir}_x')
    self.assertNotEqual(proc.returncode, 0)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, msg=proc.stderr)
    self.assertIn('--architectures', lines[0])

  def test_a_task_outside_the_suite_is_one_line(self):
    proc = _reproduce('--suite=state_tracking', '--tasks=parity_check',
                      f'--out_dir={self.out_dir}_y')
    self.assertNotEqual(proc.returncode, 0)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, msg=proc.stderr)
    self.assertIn('--tasks', lines[0])
    self.assertIn('A4xZ5', lines[0])


if __name__ == '__main__':
  absltest.main()
