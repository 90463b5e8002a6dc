"""The reproduction grid: architectures x tasks at a budget, and its table and figures.

An architecture of the grid is a published preset (`staircase_c<C>`,
`brt_c<C>`, `transformer`: the `*_best` sweep files) or one of ours (`rnn`,
`lstm`: the paper publishes no setting for them). A budget rewrites every
setting the same way for every architecture of a kind, so chunk sizes stay
comparable:
- `full`: the published settings and step counts, as they are;
- `cpu`: widths capped at 32 (heads at 4), batches at 64 and training at
  `CPU_STEPS` steps, with validation every 250 steps and early stopping once
  validation accuracy is at least 0.99 twice in a row. Every architecture
  gets the README `cpu_demo` optimizer (`CPU_OPTIMIZER`: Adam at 1e-3, no
  dropout), because the published learning rates are tuned for 20,000 and
  more steps: with them, 2,000 steps left the staircase chunk-1 model at
  chance even on training lengths. The final evaluation scores 128 strings
  per length instead of 512 (the Transformer's protocol runs one pass per
  length; at 512 it took 31 minutes for 3 seeds);
- `smoke`: a few steps of tiny models, to check the pipeline end to end.

The `state_tracking` suite (`SUITES`) runs the same budgets on harder
regular languages; at `cpu` it trains `STATE_TRACKING_CPU_STEPS` steps with
`STATE_TRACKING_SEEDS` seed by default, so that its 35 cells fit in about an
hour.
"""

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training import results

TASKS = ('parity_check', 'even_pairs', 'modular_arithmetic',
         'cycle_navigation')
CHUNKS = (1, 2, 4, 8)
ARCHITECTURES = ('transformer', *(f'staircase_c{c}' for c in CHUNKS),
                 *(f'brt_c{c}' for c in CHUNKS), 'rnn', 'lstm')
BUDGETS = ('smoke', 'cpu', 'full')
DEFAULT_SEEDS = {'smoke': 1, 'cpu': 3, 'full': 5}
# Beyond the paper: state tracking (tasks/regular/automaton.py and
# word_problem.py). A grid task is a name and the flags that make it; each
# architecture keeps its parity_check setting, the task replaced.
STATE_TRACKING_TASKS = {
    'flip_flop': {'task': 'flip_flop'},
    'A4xZ5': {'task': 'word_problem', 'group': 'A4xZ5'},
    'S3': {'task': 'word_problem', 'group': 'S3'},
    'A5': {'task': 'word_problem', 'group': 'A5'},
    'tomita_3': {'task': 'tomita_3'},
}
STATE_TRACKING_ARCHITECTURES = ('staircase_c1', 'staircase_c2', 'staircase_c4',
                                'transformer', 'brt_c2', 'lstm', 'rnn')
SUITES = {'paper': (TASKS, ARCHITECTURES),
          'state_tracking': (tuple(STATE_TRACKING_TASKS),
                             STATE_TRACKING_ARCHITECTURES)}
# The state-tracking suite at the cpu budget: 35 cells in about an hour.
STATE_TRACKING_CPU_STEPS = 1000
STATE_TRACKING_SEEDS = 1
CPU_STEPS = 2000
CPU_OPTIMIZER = dict(lr=1e-3, wd=1e-2, adam_beta1_inv=0.0319, dropout=0.0)
CPU_EVAL_STRINGS = 128
# Ours, for the recurrent baselines (Delétang et al. train them with Adam at
# 1e-3 and batch 128; the width is ours).
_RNN = dict(include_eos=0, validate=True, batch_size=128, embed_size=256,
            lr=1e-3, wd=0.0, adam_beta1_inv=0.1, dropout=0.0,
            second_training_steps=100_000)


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run of the grid: an architecture on a task."""

  task: str
  architecture: str
  overrides: Mapping[str, Any]  # Flag values (text or values).

  @property
  def name(self) -> str:
    return f'{self.task}/{self.architecture}'


def setting(architecture: str, task: str, published: Mapping[str, Mapping]
            ) -> dict[str, Any]:
  """The full-budget flag values of one architecture on one task."""
  if task in STATE_TRACKING_TASKS:
    values = setting(architecture, 'parity_check', published)
    return {**values, **STATE_TRACKING_TASKS[task]}
  if architecture in ('rnn', 'lstm'):
    return {**_RNN, 'task': task, 'architecture': architecture}
  kind, _, chunk = architecture.partition('_c')
  preset = (f'transformer_{task}' if kind == 'transformer'
            else f'{kind}_{task}_c{chunk}')
  if preset not in published:
    raise ValueError(f'no published setting {preset!r}.')
  return dict(published[preset])


def at_budget(values: Mapping[str, Any], budget: str,
              max_steps: int = CPU_STEPS) -> dict[str, Any]:
  """`values` rewritten for `budget` (the same rule for every architecture;
  `max_steps` caps training at the cpu budget)."""
  if budget not in BUDGETS:
    raise ValueError(f'--budget must be one of {BUDGETS}, got {budget!r}.')
  values = dict(values)
  if budget == 'full':
    return values
  number = lambda name, default: int(float(values.get(name, default)))
  if budget == 'smoke':
    width, heads, batch, steps, every = 16, 2, 16, 20, 10
  else:
    width = min(number('embed_size', 32), 32)
    heads = min(number('num_heads', 4), 4)
    batch = min(number('batch_size', 128), 64)
    steps, every = max_steps, 250
  values.update(
      embed_size=width, num_heads=heads, batch_size=batch,
      train_steps=0,
      second_training_steps=min(number('train_steps', 0)
                                + number('second_training_steps', 0), steps),
      validate=True, validate_every=every, checkpoint_every=every,
      log_frequency=every)
  if budget == 'cpu':
    values.update(CPU_OPTIMIZER, early_stopping_accuracy=0.99,
                  early_stopping_patience=2,
                  eval_num_strings=CPU_EVAL_STRINGS)
  else:
    values.update(test_length=60)
  return values


def cells(tasks: Sequence[str], architectures: Sequence[str], budget: str,
          published: Mapping[str, Mapping]) -> list[Cell]:
  return [Cell(task, architecture,
               at_budget(setting(architecture, task, published), budget,
                         STATE_TRACKING_CPU_STEPS
                         if task in STATE_TRACKING_TASKS else CPU_STEPS))
          for task in tasks for architecture in architectures]


def read_run(run_dir: str, num_seeds: int) -> dict[str, Any] | None:
  """A finished run's scores and mean accuracy per length (None if it is
  not finished)."""
  final = os.path.join(run_dir, 'summary.json' if num_seeds > 1
                       else 'eval.json')
  if not os.path.exists(final):
    return None
  with open(final) as f:
    payload = json.load(f)
  seed_payloads = [payload]
  if num_seeds > 1:
    seed_payloads = []
    for seed in payload['seeds']:
      with open(os.path.join(run_dir, f'seed_{seed}', 'eval.json')) as f:
        seed_payloads.append(json.load(f))
  accuracy_SL = np.array([[p['accuracy'] for p in s['per_length']]
                          for s in seed_payloads])
  stat = lambda key: ([s[key] for s in seed_payloads])
  seed_dir = (run_dir if num_seeds == 1
              else os.path.join(run_dir, f'seed_{payload["seeds"][0]}'))
  with open(os.path.join(seed_dir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f if line.strip()]
  steps_trained = max(r['step'] for r in records)
  rates = [r['steps_per_second'] for r in records if 'steps_per_second' in r]
  return {
      'accuracy_SL': accuracy_SL,
      'ms_per_step': 1000 / float(np.median(rates)) if rates else None,
      'scores': stat('score'), 'ood_scores': stat('ood_score'),
      'solved_up_to': stat('solved_up_to'),
      'train_seconds': seed_payloads[0].get('train_seconds'),
      'eval_steps': stat('eval_step'), 'steps_trained': steps_trained,
      'accuracy_L': accuracy_SL.mean(axis=0),
      'training_length': seed_payloads[0]['training_length'],
      'model': _model_config(run_dir),
  }


def _model_config(run_dir: str) -> dict[str, Any]:
  with open(os.path.join(run_dir, 'config.json')) as f:
    return json.load(f)['config']['model']


def table_rows(found: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
  """One row per finished cell, in grid order (the long form)."""
  rows = []
  for name, run in found.items():
    task, architecture = name.split('/')
    scores, ood = np.array(run['scores']), np.array(run['ood_scores'])
    rows.append({
        'task': task, 'architecture': architecture, 'seeds': len(scores),
        'ood_score_max': float(ood.max()), 'ood_score_mean': float(ood.mean()),
        'ood_score_std': float(ood.std()), 'score_mean': float(scores.mean()),
        'score_max': float(scores.max()),
        'solved_seeds': int((ood >= 0.99).sum()),
        'steps_trained': int(run['steps_trained']),
        'ms_per_step': (None if run['ms_per_step'] is None
                        else round(run['ms_per_step'], 1)),
        'train_seconds': (None if run['train_seconds'] is None
                          else round(run['train_seconds'], 1))})
  return rows


def write_table(out_dir: str, rows: Sequence[dict[str, Any]],
                caption: str) -> None:
  """`table.md` (a row per architecture, a column per task) and `table.csv`
  (a row per cell, every number)."""
  columns = list(rows[0]) if rows else ['task']
  lines = [','.join(columns)]
  lines += [','.join('' if r[c] is None else str(r[c]) for c in columns)
            for r in rows]
  results.write_text(os.path.join(out_dir, 'table.csv'),
                     '\n'.join(lines) + '\n')
  tasks = list(dict.fromkeys(r['task'] for r in rows))
  architectures = list(dict.fromkeys(r['architecture'] for r in rows))
  cell = {(r['task'], r['architecture']): r for r in rows}
  md = [caption, '', '| architecture | ' + ' | '.join(tasks) + ' |',
        '|---|' + '---|' * len(tasks)]
  for architecture in architectures:
    entries = []
    for task in tasks:
      r = cell.get((task, architecture))
      entries.append('' if r is None else (
          f"{r['ood_score_max']:.3f} / {r['ood_score_mean']:.3f} ±"
          f" {r['ood_score_std']:.3f} ({r['score_mean']:.3f}),"
          f" {r['solved_seeds']}/{r['seeds']} solved"))
    md.append(f'| {architecture} | ' + ' | '.join(entries) + ' |')
  results.write_text(os.path.join(out_dir, 'table.md'), '\n'.join(md) + '\n')


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(fig, path: str) -> str:
  tmp = os.path.join(os.path.dirname(path), '.tmp_' + os.path.basename(path))
  fig.savefig(tmp, dpi=120)
  os.replace(tmp, path)
  return path


def distinct_colors(n: int) -> list[tuple[float, ...]]:
  """`n` colors, all different for n <= 20 (matplotlib's default cycle
  repeats after 10, and the grid has 11 architectures)."""
  palette = _pyplot().get_cmap('tab20')
  return [palette((2 * i) % 20 + (2 * i) // 20) for i in range(n)]


def plot_tasks(out_dir: str, found: Mapping[str, Mapping[str, Any]]) -> list[str]:
  """`accuracy_vs_length_<task>.png`: each architecture's best seed (by
  ood_score), the spread over seeds shaded."""
  plt = _pyplot()
  paths = []
  for task in dict.fromkeys(name.split('/')[0] for name in found):
    runs = {name.split('/')[1]: run for name, run in found.items()
            if name.startswith(f'{task}/')}
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    training_length = next(iter(runs.values()))['training_length']
    ax.axvspan(1, training_length, color='tab:green', alpha=0.1,
               label=f'training lengths 1..{training_length}')
    # Earlier rows on top: where curves coincide (e.g. at 1.0), the
    # staircase model shows over the RNN baselines.
    for i, ((architecture, run), color) in enumerate(
        zip(runs.items(), distinct_colors(len(runs)))):
      accuracy_SL = run['accuracy_SL']
      lengths = np.arange(1, accuracy_SL.shape[1] + 1)
      best = accuracy_SL[int(np.argmax(run['ood_scores']))]
      line, = ax.plot(lengths, best, lw=1.1, color=color,
                      zorder=3 + len(runs) - i,
                      label=f'{architecture} (best of {len(accuracy_SL)})')
      if len(accuracy_SL) > 1:
        ax.fill_between(lengths, accuracy_SL.min(0), accuracy_SL.max(0),
                        color=line.get_color(), alpha=0.15, lw=0)
    ax.set(xlabel='string length', ylabel='accuracy', ylim=(0, 1.02),
           title=f'{task}: accuracy against length (best seed; shaded: the'
           ' range over seeds)')
    ax.title.set_fontsize(9)
    ax.legend(loc='center left', bbox_to_anchor=(1.01, 0.5), fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save(fig, os.path.join(out_dir,
                                         f'accuracy_vs_length_{task}.png')))
    plt.close(fig)
  return paths


def _chunk_points(found, key):
  """`{task: {kind: [(chunk, values)]}}` for the chunked architectures."""
  points = {}
  for name, run in found.items():
    task, architecture = name.split('/')
    kind, _, chunk = architecture.partition('_c')
    if kind in ('staircase', 'brt') and chunk:
      points.setdefault(task, {}).setdefault(kind, []).append(
          (int(chunk), run[key]))
  return {task: {kind: sorted(values) for kind, values in kinds.items()}
          for task, kinds in points.items()}


def plot_score_vs_chunk(out_dir: str, found) -> str | None:
  """`score_vs_chunk.png`: ood score (mean, max) against chunk size, one
  panel per task."""
  points = _chunk_points(found, 'ood_scores')
  if not points:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(points), figsize=(4 * len(points), 3.6),
                           squeeze=False)
  for ax, (task, kinds) in zip(axes[0], sorted(points.items())):
    for kind, values in kinds.items():
      chunks = [c for c, _ in values]
      mean = [float(np.mean(v)) for _, v in values]
      line, = ax.plot(chunks, mean, '-o' if kind == 'staircase' else '--s',
                      label=f'{kind} (mean)')
      ax.plot(chunks, [float(np.max(v)) for _, v in values], ':',
              color=line.get_color(), label=f'{kind} (max)')
    ax.set_xscale('log', base=2)
    ax.set_xticks(CHUNKS, [str(c) for c in CHUNKS])
    ax.set(xlabel='chunk (block) size', ylabel='ood score', ylim=(0, 1.02),
           title=task)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  path = _save(fig, os.path.join(out_dir, 'score_vs_chunk.png'))
  plt.close(fig)
  return path


def sequential_steps(kind: str, chunk: int, length: int,
                     passes: int = 2) -> int:
  """Steps a sequence of `length` needs one after another: staircase rows
  (chunks + passes - 1), or block-recurrent blocks."""
  chunks = math.ceil(length / chunk)
  return chunks + passes - 1 if kind == 'staircase' else chunks


def plot_time_vs_chunk(out_dir: str, found, length: int = 40) -> str | None:
  """`time_vs_chunk.png`: measured ms per training step (every cell of a
  budget has the same width and batch) and sequential steps per sequence of
  `length` (with each cell's own number of staircase passes), against
  chunk size."""
  points = _chunk_points(found, 'ms_per_step')
  if not points:
    return None
  steps = {}  # kind -> {chunk: sequential steps}
  for name, run in found.items():
    kind, _, chunk = name.split('/')[1].partition('_c')
    if kind in ('staircase', 'brt') and chunk:
      steps.setdefault(kind, {})[int(chunk)] = sequential_steps(
          kind, int(chunk), length,
          run['model'].get('num_recurrent_calls', 2))
  plt = _pyplot()
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  for task, kinds in sorted(points.items()):
    for kind, values in kinds.items():
      values = [(c, v) for c, v in values if v is not None]
      left.plot([c for c, _ in values], [v for _, v in values],
                '-o' if kind == 'staircase' else '--s', label=f'{kind} {task}')
  for kind, by_chunk in sorted(steps.items()):
    chunks = sorted(by_chunk)
    right.plot(chunks, [by_chunk[c] for c in chunks],
               '-o' if kind == 'staircase' else '--s', label=kind,
               color='tab:blue' if kind == 'staircase' else 'tab:orange')
  left.set(ylabel='ms per training step (median)')
  right.set(ylabel=f'sequential steps for length {length}')
  for ax in (left, right):
    ax.set_xscale('log', base=2)
    ax.set_xticks(CHUNKS, [str(c) for c in CHUNKS])
    ax.set_xlabel('chunk (block) size')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle('The parallelism side of the trade-off', fontsize=9)
  fig.tight_layout()
  path = _save(fig, os.path.join(out_dir, 'time_vs_chunk.png'))
  plt.close(fig)
  return path
