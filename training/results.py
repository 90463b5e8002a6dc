"""Result files of a run, written atomically: JSON, the metrics log, and the plot."""

import json
import os
import tempfile
import textwrap
from collections.abc import Sequence
from typing import Any


def write_json(path: str, payload: Any) -> None:
  """Writes `payload` as JSON via a temporary file and `os.replace`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_')
  try:
    with os.fdopen(fd, 'w') as f:
      json.dump(payload, f, indent=2, sort_keys=True, default=str)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


class MetricsLog:
  """`metrics.jsonl`: one JSON line per logged step, flushed as it is written."""

  def __init__(self, path: str):
    self.path = path

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step` (a resumed run logs them again)."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line for line in f
              if line.strip() and json.loads(line).get('step', 0) <= step]
    directory = os.path.dirname(os.path.abspath(self.path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_')
    with os.fdopen(fd, 'w') as f:
      f.writelines(kept)
    os.replace(tmp, self.path)

  def append(self, record: dict[str, Any]) -> None:
    with open(self.path, 'a') as f:
      f.write(json.dumps(record, sort_keys=True) + '\n')
      f.flush()
      os.fsync(f.fileno())


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
