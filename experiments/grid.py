"""The reproduction grid: architectures x tasks at a budget, and its table and figures.

An architecture of the grid is a published preset (`staircase_c<C>`,
`brt_c<C>`, `transformer`: the `*_best` sweep files) or one of ours (`rnn`,
`lstm`: the paper publishes no setting for them). A budget rewrites every
setting the same way for every architecture of a kind, so chunk sizes stay
comparable:
- `full`: the published settings and step counts, as they are;
- `cpu`: widths capped at 32 (heads at 4), batches at 64 (the README's
  `cpu_demo` size, which learns parity in about 750 steps), training capped
  at `CPU_STEPS` steps, with validation every 250 steps and early stopping
  once validation accuracy is at least 0.99 twice in a row;
- `smoke`: a few steps of tiny models, to check the pipeline end to end.
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
CPU_STEPS = 2000
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
  if architecture in ('rnn', 'lstm'):
    return {**_RNN, 'task': task, 'architecture': architecture}
  kind, _, chunk = architecture.partition('_c')
  preset = (f'transformer_{task}' if kind == 'transformer'
            else f'{kind}_{task}_c{chunk}')
  if preset not in published:
    raise ValueError(f'no published setting {preset!r}.')
  return dict(published[preset])


def at_budget(values: Mapping[str, Any], budget: str) -> dict[str, Any]:
  """`values` rewritten for `budget` (the same rule for every architecture)."""
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
    steps, every = CPU_STEPS, 250
  values.update(
      embed_size=width, num_heads=heads, batch_size=batch,
      train_steps=0,
      second_training_steps=min(number('train_steps', 0)
                                + number('second_training_steps', 0), steps),
      validate=True, validate_every=every, checkpoint_every=every,
      log_frequency=every)
  if budget == 'cpu':
    values.update(early_stopping_accuracy=0.99, early_stopping_patience=2)
  else:
    values.update(test_length=60)
  return values


def cells(tasks: Sequence[str], architectures: Sequence[str], budget: str,
          published: Mapping[str, Mapping]) -> list[Cell]:
  return [Cell(task, architecture,
               at_budget(setting(architecture, task, published), budget))
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
    steps_trained = max(json.loads(line)['step'] for line in f if line.strip())
  return {
      'scores': stat('score'), 'ood_scores': stat('ood_score'),
      'solved_up_to': stat('solved_up_to'),
      'train_seconds': seed_payloads[0].get('train_seconds'),
      'eval_steps': stat('eval_step'), 'steps_trained': steps_trained,
      'accuracy_L': accuracy_SL.mean(axis=0),
      'training_length': seed_payloads[0]['training_length'],
  }


def table_rows(found: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
  """One row per finished cell, in grid order."""
  rows = []
  for name, run in found.items():
    task, architecture = name.split('/')
    scores, ood = np.array(run['scores']), np.array(run['ood_scores'])
    rows.append({
        'task': task, 'architecture': architecture, 'seeds': len(scores),
        'score_mean': float(scores.mean()), 'score_std': float(scores.std()),
        'score_max': float(scores.max()), 'ood_score_mean': float(ood.mean()),
        'solved_seeds': int((ood >= 0.99).sum()),
        'solved_up_to_max': int(max(run['solved_up_to'])),
        'steps_trained': int(run['steps_trained']),
        'train_seconds': (None if run['train_seconds'] is None
                          else round(run['train_seconds'], 1))})
  return rows


def write_table(out_dir: str, rows: Sequence[dict[str, Any]],
                caption: str) -> None:
  """`results.csv` and `results.md`."""
  columns = list(rows[0]) if rows else ['task']
  lines = [','.join(columns)]
  lines += [','.join('' if r[c] is None else str(r[c]) for c in columns)
            for r in rows]
  results.write_text(os.path.join(out_dir, 'results.csv'),
                     '\n'.join(lines) + '\n')
  md = [caption, '',
        '| task | architecture | seeds | score (mean ± std) | max |'
        ' ood score | solved seeds | solved up to | steps trained | train s |',
        '|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    md.append(
        f"| {r['task']} | {r['architecture']} | {r['seeds']} |"
        f" {r['score_mean']:.3f} ± {r['score_std']:.3f} |"
        f" {r['score_max']:.3f} | {r['ood_score_mean']:.3f} |"
        f" {r['solved_seeds']}/{r['seeds']} | {r['solved_up_to_max']} |"
        f" {r['steps_trained']} | {r['train_seconds']} |")
  results.write_text(os.path.join(out_dir, 'results.md'), '\n'.join(md) + '\n')


def plot_tasks(out_dir: str, found: Mapping[str, Mapping[str, Any]]) -> list[str]:
  """`accuracy_vs_length_<task>.png`: each architecture's mean over seeds."""
  paths = []
  for task in dict.fromkeys(name.split('/')[0] for name in found):
    runs = {name.split('/')[1]: run for name, run in found.items()
            if name.startswith(f'{task}/')}
    path = os.path.join(out_dir, f'accuracy_vs_length_{task}.png')
    some = next(iter(runs.values()))
    results.plot_accuracy_vs_length(
        path, [(f'{arch} ({len(run["scores"])} seeds)', run['accuracy_L'])
               for arch, run in runs.items()],
        some['training_length'],
        f'{task}: accuracy against length, mean over seeds')
    paths.append(path)
  return paths


def plot_chunk_tradeoff(out_dir: str, found: Mapping[str, Mapping[str, Any]]
                        ) -> str | None:
  """`chunk_tradeoff.png`: score and training time against chunk size, per
  recurrent kind and task (the paper's trade-off)."""
  points = {}
  for name, run in found.items():
    task, architecture = name.split('/')
    kind, _, chunk = architecture.partition('_c')
    if kind in ('staircase', 'brt') and chunk:
      points.setdefault((kind, task), []).append(
          (int(chunk), float(np.mean(run['scores'])), run['train_seconds']))
  if not points:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
  for (kind, task), values in sorted(points.items()):
    values.sort()
    chunks = [v[0] for v in values]
    style = '-o' if kind == 'staircase' else '--s'
    left.plot(chunks, [v[1] for v in values], style, label=f'{kind} {task}')
    if all(v[2] is not None for v in values):
      right.plot(chunks, [v[2] for v in values], style,
                 label=f'{kind} {task}')
  for ax, label in ((left, 'score (mean over seeds)'),
                    (right, 'training seconds (one run of all seeds)')):
    ax.set_xscale('log', base=2)
    ax.set_xticks(CHUNKS, [str(c) for c in CHUNKS])
    ax.set_xlabel('chunk (block) size')
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  left.set_ylim(0, 1.02)
  left.legend(fontsize=7)
  fig.suptitle('Generalization and training time against chunk size',
               fontsize=9)
  fig.tight_layout()
  path = os.path.join(out_dir, 'chunk_tradeoff.png')
  tmp = os.path.join(out_dir, '.tmp_chunk_tradeoff.png')
  fig.savefig(tmp, dpi=120)
  plt.close(fig)
  os.replace(tmp, path)
  return path
