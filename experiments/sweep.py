"""CLI: run a wandb sweep file locally, with no wandb server, and rank its trials.

  python experiments/sweep.py \
    --sweep_file=experiments/sweeps/staircase/parity_check/chunk_2_search.yaml \
    --num_trials=20 --out_dir=out/sweep_parity_c2

Each trial is the file's command flags plus one draw of its parameters, as
wandb draws them (`experiments/sweep_file.py`), trained and evaluated by
`run.train_and_evaluate` in `<out_dir>/trial_<i>/`. Flags of
`experiments/example.py` given here override every trial (e.g.
`--second_training_steps=2000` for a shorter budget). A rerun skips finished
trials and resumes an interrupted one. After every trial,
`leaderboard.csv` and `leaderboard.md` rank the finished ones:
`--select_by=validation` (default) by accuracy on training-range lengths
only, `--select_by=score` as the original sweeps did (on test lengths).
`--best_to=FILE` writes the winner as a `*_best.yaml` sweep file, which
this command runs with its seeds (`--num_trials=1 --num_seeds=5`).
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import csv
import dataclasses
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import yaml
from absl import flags
from absl import logging

from experiments import cli
from experiments import config as config_lib
from experiments import original_flags
from experiments import run
from experiments import sweep_file
from training import results

FLAGS = flags.FLAGS
_SWEEP_FILE = flags.DEFINE_string('sweep_file', None,
                                  'A wandb sweep file (YAML).')
_NUM_TRIALS = flags.DEFINE_integer(
    'num_trials', None, 'Trials to run (default: the whole grid for a grid'
    ' sweep, 1 for a fixed setting; required for a random search).',
    lower_bound=1)
_SELECT_BY = flags.DEFINE_enum(
    'select_by', 'validation', ['validation', 'score'],
    'validation: rank by accuracy on training-range lengths (honest);'
    ' score: rank by the test-length score, as the original sweeps did.')
_BEST_TO = flags.DEFINE_string(
    'best_to', None, 'Write the best trial as a *_best.yaml sweep file here.')
_PROGRESS = flags.DEFINE_bool('progress', False, 'Show a progress bar.')
flags.mark_flag_as_required('sweep_file')

_MANIFEST = 'sweep.json'
SCORE_WARNING = ('ranking by score selects on the test lengths'
                 ' (42..500 when training on 1..40), as the original sweeps'
                 ' did: its winner\'s score is optimistic.')


@dataclasses.dataclass(frozen=True)
class Trial:
  index: int
  parameters: dict[str, sweep_file.FlagText]  # The drawn ones.
  config: config_lib.ExperimentConfig
  run_dir: str


def trials(sweep: sweep_file.SweepFile, num_trials: int, seed: int,
           out_dir: str) -> list[Trial]:
  """Every trial's config, all checked before any training."""
  made = []
  for index in range(num_trials):
    flag_texts = sweep.trial(seed, index)
    try:
      config = original_flags.to_config(original_flags.flag_values(
          {**flag_texts, 'seed': str(seed)}))
    except config_lib.ConfigError as e:
      raise config_lib.ConfigError(f'trial {index + 1} of'
                                   f' {sweep.path}: {e}') from None
    drawn = {name: flag_texts[name] for name in sweep.parameters}
    made.append(Trial(index, drawn, config,
                      os.path.join(out_dir, f'trial_{index + 1:03d}')))
  return made


def _check_manifest(out_dir: str, manifest: dict[str, Any]) -> None:
  """A folder holds one sweep: the same file, seed and overrides."""
  path = os.path.join(out_dir, _MANIFEST)
  if os.path.exists(path):
    with open(path) as f:
      try:
        saved = json.load(f)
      except json.JSONDecodeError:
        saved = None
    if saved != manifest:
      raise config_lib.ConfigError(
          f'{out_dir} holds another sweep (its {_MANIFEST} differs: other'
          ' file, --seed or flags); choose another --out_dir.')
  try:
    results.write_json(path, manifest)
  except OSError as e:
    raise config_lib.ConfigError(f'cannot write {out_dir}: {e} (choose'
                                 ' another --out_dir).') from None


def row(trial: Trial) -> dict[str, Any] | None:
  """The leaderboard row of a finished trial (None if unfinished)."""
  t = trial.config.training
  several = t.num_seeds > 1
  final = os.path.join(trial.run_dir,
                       'summary.json' if several else 'eval.json')
  if not os.path.exists(final):
    return None
  with open(final) as f:
    payload = json.load(f)
  seed_payloads = [payload]
  if several:
    seed_payloads = []
    for seed_dir in results.seed_dirs(trial.run_dir,
                                      range(t.seed, t.seed + t.num_seeds)):
      with open(os.path.join(seed_dir, 'eval.json')) as f:
        seed_payloads.append(json.load(f))
  validation = [p['best_validation_accuracy'] for p in seed_payloads]
  if any(v is None for v in validation):  # Not validated: eval's 1..L.
    validation = [p['in_distribution_accuracy'] for p in seed_payloads]
  mean = lambda key: (payload[key]['mean'] if several else payload[key])
  seconds = [p.get('train_seconds') or 0.0 for p in seed_payloads[:1]]
  seconds += [p.get('eval_seconds') or 0.0 for p in seed_payloads]
  return {'trial': trial.index + 1, **trial.parameters,
          'validation_accuracy': sum(validation) / len(validation),
          'ood_score': mean('ood_score'), 'score': mean('score'),
          'wall_seconds': round(sum(seconds), 1)}


def ranked(rows: Sequence[dict[str, Any]], select_by: str
           ) -> list[dict[str, Any]]:
  key = 'validation_accuracy' if select_by == 'validation' else 'score'
  # Ties keep trial order: nothing else (no test length) breaks them.
  return sorted(rows, key=lambda r: (-r[key], r['trial']))


def write_leaderboard(out_dir: str, rows: Sequence[dict[str, Any]],
                      select_by: str) -> None:
  """`leaderboard.csv` and `leaderboard.md`, best first."""
  rows = ranked(rows, select_by)
  columns = list(dict.fromkeys(k for r in rows for k in r))
  text = io.StringIO()
  writer = csv.DictWriter(text, columns, lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  results.write_text(os.path.join(out_dir, 'leaderboard.csv'),
                     text.getvalue())
  shown = lambda v: f'{v:.4f}' if isinstance(v, float) else str(v)
  lines = [f'Ranked by {select_by}'
           + (f' ({SCORE_WARNING})' if select_by == 'score' else
              ' (accuracy on training-range lengths only).'), '',
           '| rank | ' + ' | '.join(columns) + ' |',
           '|' + '---|' * (len(columns) + 1)]
  lines += [f'| {rank} | ' + ' | '.join(shown(r.get(c, '')) for c in columns)
            + ' |' for rank, r in enumerate(rows, 1)]
  results.write_text(os.path.join(out_dir, 'leaderboard.md'),
                     '\n'.join(lines) + '\n')


def best_file_text(sweep: sweep_file.SweepFile, best: Trial,
                   select_by: str) -> str:
  """The winner as a `*_best.yaml` file: the sweep's command, its drawn
  values as `value:` parameters."""
  with open(sweep.path) as f:
    raw = yaml.safe_load(f)
  command = [str(item) for item in raw.get('command', [])]
  for i, item in enumerate(command[:-1]):
    if item == '--wandb_group' and command[i + 1] == 'search':
      command[i + 1] = 'best'
  raw['command'] = command
  raw['name'] = str(raw.get('name', 'sweep')).replace('_search', '') + '_best'
  raw['parameters'] = {
      name: {'value': yaml.safe_load(value) if isinstance(value, str)
             else value} for name, value in best.parameters.items()}
  return (f'# best trial is trial_{best.index + 1:03d} of {sweep.path}'
          f' (selected by {select_by})\n'
          + yaml.safe_dump(raw, sort_keys=False))


def run_sweep(sweep: sweep_file.SweepFile, num_trials: int, seed: int,
              out_dir: str, select_by: str = 'validation',
              progress: bool = False) -> list[dict[str, Any]]:
  """Runs (or resumes) every trial; returns the ranked leaderboard rows."""
  made = trials(sweep, num_trials, seed, out_dir)
  _check_manifest(out_dir, {'sweep_file': os.path.abspath(sweep.path),
                            'seed': seed, 'num_trials': num_trials,
                            'overrides': sorted(original_flags.given_flags()
                                                - {'out_dir', 'seed'})})
  if select_by == 'score':
    logging.warning('%s', SCORE_WARNING)
  rows = [r for r in map(row, made) if r is not None]
  for trial in made:
    if row(trial) is not None:
      logging.info('Trial %d of %d: finished before, skipped.',
                   trial.index + 1, num_trials)
      continue
    logging.info('Trial %d of %d: %s', trial.index + 1, num_trials,
                 ', '.join(f'{k}={v}' for k, v in trial.parameters.items()))
    start = time.perf_counter()
    run.train_and_evaluate(trial.config, trial.run_dir, progress=progress)
    trial_row = row(trial)
    trial_row['wall_seconds'] = round(time.perf_counter() - start, 1)
    rows.append(trial_row)
    if jax.process_index() == 0:
      write_leaderboard(out_dir, rows, select_by)
  if jax.process_index() == 0:
    write_leaderboard(out_dir, rows, select_by)
  return ranked(rows, select_by)


def main(argv: Sequence[str]) -> None:
  del argv
  try:
    sweep = sweep_file.load(_SWEEP_FILE.value)
  except sweep_file.SweepFileError as e:
    raise config_lib.ConfigError(f'--sweep_file: {e}') from None
  num_trials = _NUM_TRIALS.value
  if num_trials is None:
    if sweep.method == 'grid':
      num_trials = sweep.num_grid_trials()
    elif sweep.is_fixed_setting():
      num_trials = 1
    else:
      raise config_lib.ConfigError(
          f'{sweep.path} is a random search: give --num_trials.')
  if _BEST_TO.value:
    parent = os.path.dirname(os.path.abspath(_BEST_TO.value))
    try:
      os.makedirs(parent, exist_ok=True)
    except OSError as e:
      raise config_lib.ConfigError(f'--best_to: {e}') from None
    if not os.access(parent, os.W_OK):
      raise config_lib.ConfigError(f'--best_to: {parent} is not writable.')
  seed = FLAGS.seed if FLAGS.seed is not None else 0
  out_dir = FLAGS.out_dir
  rows = run_sweep(sweep, num_trials, seed, out_dir, _SELECT_BY.value,
                   _PROGRESS.value)
  if jax.process_index() != 0:
    return
  best = rows[0]
  if _BEST_TO.value:
    made = trials(sweep, num_trials, seed, out_dir)
    try:
      results.write_text(_BEST_TO.value, best_file_text(
          sweep, made[best['trial'] - 1], _SELECT_BY.value))
    except OSError as e:
      raise config_lib.ConfigError(f'--best_to: cannot write it: {e}') from None
  with open(os.path.join(out_dir, 'leaderboard.md')) as f:
    print(f.read(), end='')
  print(f'Best: trial {best["trial"]} ({_SELECT_BY.value}'
        f' {best["validation_accuracy" if _SELECT_BY.value == "validation" else "score"]:.4f},'
        f' score {best["score"]:.4f}). Leaderboard: '
        f'{os.path.join(out_dir, "leaderboard.md")}'
        + (f'; best setting: {_BEST_TO.value}' if _BEST_TO.value else ''))


if __name__ == '__main__':
  cli.run(main)
