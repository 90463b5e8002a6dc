"""CLI: run the paper's grid (architectures x tasks) at a budget; write its table and figures.

  python experiments/reproduce.py --budget=cpu --tasks=parity_check \
    --num_seeds=3 --out_dir=out/reproduce_cpu
  python experiments/reproduce.py --suite=state_tracking --budget=cpu \
    --out_dir=out/state_tracking

Each cell is one run folder `<out_dir>/runs/<task>/<architecture>/` trained
by `run.train_and_evaluate` with `--num_seeds` vmapped seeds; a rerun skips
finished cells and resumes an interrupted one. After every cell the table
(`table.md`, `table.csv`) and the figures (`accuracy_vs_length_<task>.png`,
`score_vs_chunk.png`, `time_vs_chunk.png`) are rewritten from every finished
cell, those of the suite that earlier commands finished in the same folder
(other tasks or architectures, with the same number of seeds) included,
from the first write on.
`experiments/grid.py` defines the architectures and the budgets.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import os
import time
from collections.abc import Sequence

import jax
from absl import flags
from absl import logging

from experiments import cli
from experiments import config as config_lib
from experiments import grid
from experiments import original_flags
from experiments import presets
from experiments import run

FLAGS = flags.FLAGS
_BUDGET = flags.DEFINE_enum('budget', 'cpu', list(grid.BUDGETS),
                            'smoke, cpu or full (see experiments/grid.py).')
_SUITE = flags.DEFINE_enum(
    'suite', 'paper', list(grid.SUITES),
    "'paper': the paper's four tasks and eleven architectures;"
    " 'state_tracking': flip-flop, word problems and Tomita 3 on seven.")
_TASKS = flags.DEFINE_list('tasks', None,
                           "Tasks of the grid (default: the suite's).")
_ARCHITECTURES = flags.DEFINE_list(
    'architectures', None, "Architectures of the grid (default: the"
    f" suite's), among {', '.join(grid.ARCHITECTURES)}.")
_PROGRESS = flags.DEFINE_bool('progress', False, 'Show progress bars.')


def _checked(names: Sequence[str], known: Sequence[str], flag: str) -> None:
  unknown = [n for n in names if n not in known]
  if unknown or not names:
    raise config_lib.ConfigError(
        f'--{flag}: {unknown or "none given"}; choose among {list(known)}.')


def main(argv: Sequence[str]) -> None:
  del argv
  suite_tasks, suite_architectures = grid.SUITES[_SUITE.value]
  tasks = _TASKS.value or list(suite_tasks)
  architectures = _ARCHITECTURES.value or list(suite_architectures)
  _checked(tasks, suite_tasks, 'tasks')
  _checked(architectures, grid.ARCHITECTURES, 'architectures')
  budget = _BUDGET.value
  num_seeds = (FLAGS.num_seeds if FLAGS['num_seeds'].present
               else grid.STATE_TRACKING_SEEDS
               if _SUITE.value == 'state_tracking' and budget == 'cpu'
               else grid.DEFAULT_SEEDS[budget])
  seed = FLAGS.seed if FLAGS.seed is not None else 0
  out_dir = FLAGS.out_dir
  published = {name: presets.from_sweep_file(path)
               for name, path in presets.published_files().items()}
  cells = grid.cells(tasks, architectures, budget, published)
  configs = []  # Every cell checked before any training.
  for cell in cells:
    try:
      configs.append(original_flags.to_config(original_flags.flag_values(
          {**cell.overrides, 'num_seeds': num_seeds, 'seed': seed})))
    except config_lib.ConfigError as e:
      raise config_lib.ConfigError(f'{cell.name}: {e}') from None
  # Every cell of the suite already finished in this folder (by this command
  # or earlier ones, with the same seeds) is in the table from the start.
  suite_cells = grid.cells(suite_tasks, suite_architectures, budget, published)
  earlier = {cell.name: grid.read_run(_run_dir(out_dir, cell), num_seeds)
             for cell in suite_cells}
  order = [cell.name for cell in suite_cells]
  found = {}
  caption = (f'Budget `{budget}`, {num_seeds} seed(s) from seed {seed}.'
             ' Each cell: ood score (mean accuracy over every length past'
             ' training) as max / mean ± std over seeds, then in brackets'
             " the original's score (mean over lengths 42..test length),"
             ' and the seeds with ood score >= 0.99.')
  for index, (cell, config) in enumerate(zip(cells, configs), 1):
    run_dir = _run_dir(out_dir, cell)
    finished = grid.read_run(run_dir, num_seeds)
    if finished is None:
      logging.info('Cell %d of %d: %s', index, len(cells), cell.name)
      start = time.perf_counter()
      run.train_and_evaluate(config, run_dir, progress=_PROGRESS.value)
      logging.info('Cell %s took %.0f s.', cell.name,
                   time.perf_counter() - start)
      finished = grid.read_run(run_dir, num_seeds)
    else:
      logging.info('Cell %d of %d: %s finished before, skipped.', index,
                   len(cells), cell.name)
    found[cell.name] = finished
    if jax.process_index() == 0:
      shown = {**{k: v for k, v in earlier.items() if v is not None}, **found}
      _write(out_dir, {name: shown[name] for name in order if name in shown},
             caption)
  if jax.process_index() == 0:
    with open(os.path.join(out_dir, 'table.md')) as f:
      print(f.read(), end='')


def _run_dir(out_dir: str, cell) -> str:
  return os.path.join(out_dir, 'runs', cell.task, cell.architecture)


def _write(out_dir: str, found, caption: str) -> None:
  grid.write_table(out_dir, grid.table_rows(found), caption)
  grid.plot_tasks(out_dir, found)
  grid.plot_score_vs_chunk(out_dir, found)
  grid.plot_time_vs_chunk(out_dir, found)


if __name__ == '__main__':
  cli.run(main)
