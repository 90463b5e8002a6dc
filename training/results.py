"""Result files of a run, written atomically: text, JSON, the summary table and the plot."""

import json
import os
import tempfile
import textwrap
from collections.abc import Sequence
from typing import Any


def seed_dirs(run_dir: str, seeds: Sequence[int]) -> list[str]:
  """Each seed's folder: the run folder for one seed, else `<run>/seed_<s>/`."""
  if len(seeds) == 1:
    return [run_dir]
  return [os.path.join(run_dir, f'seed_{seed}') for seed in seeds]


def write_text(path: str, text: str) -> None:
  """Writes `text` via a temporary file and `os.replace`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path: str, payload: Any) -> None:
  """Writes `payload` as JSON, atomically."""
  write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str))


def summary_table(summary: dict[str, Any]) -> str:
  """A Markdown table of `range_evaluation.summarize_seeds`: one row per seed,
  then max, mean and std over seeds."""
  columns = ('score', 'ood_score', 'solved_up_to')
  lines = ['| seed | ' + ' | '.join(columns) + ' |',
           '|---|' + '---|' * len(columns)]
  for row in summary['per_seed']:
    lines.append(f"| {row['seed']} | {row['score']:.4f} |"
                 f" {row['ood_score']:.4f} | {row['solved_up_to']} |")
  for stat in ('max', 'mean', 'std'):
    lines.append(f'| {stat} | ' + ' | '.join(
        f'{summary[c][stat]:.4f}' if c != 'solved_up_to'
        else f'{summary[c][stat]:.1f}' for c in columns) + ' |')
  lines.append(f"\nSolved ({summary['solved_definition']}):"
               f" {summary['solved']} of {summary['num_seeds']}.")
  return '\n'.join(lines) + '\n'


def plot_accuracy_vs_length(path: str, curves: Sequence[tuple[str, Sequence[float]]],
                            training_length: int, title: str) -> None:
  """Accuracy against length, the training range shaded; atomic PNG write."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(7, 4))
  ax.axvspan(1, training_length, color='tab:green', alpha=0.12,
             label=f'training lengths 1..{training_length}')
  for label, accuracy in curves:
    ax.plot(range(1, len(accuracy) + 1), accuracy, label=label, lw=1.2)
  ax.set_xlabel('string length')
  ax.set_ylabel('accuracy')
  ax.set_ylim(0, 1.02)
  ax.set_title('\n'.join(textwrap.wrap(title, 80)), fontsize=8)
  ax.legend(loc='lower left', fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_', suffix='.png')
  os.close(fd)
  fig.savefig(tmp, dpi=120)
  plt.close(fig)
  os.replace(tmp, path)
