"""Training metrics: per-seed sums between log lines, and the writers of records.

A record is a flat dict with a `step` (and, from a run of several seeds, a
`seed`). Writers are callables `record -> None`: `metrics.jsonl` (always, in
each seed's folder), TensorBoard and wandb (optional, imported when asked).
"""

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from absl import logging
import jax
import numpy as np

Record = dict[str, Any]
Writer = Callable[[Record], None]


class Accumulator:
  """Each seed's loss and accuracy summed over the steps since the last log.

  Step metrics stay on the device until `flush` fetches them in one call.
  The sums are float64 of float32 values, exact here, so the grouping of
  steps (which differs when a run is resumed) never changes a logged mean.
  The sums are part of the checkpoint (`to_json` / `from_json`).
  """

  def __init__(self, num_seeds: int):
    self._sums_R = [_no_steps() for _ in range(num_seeds)]
    self._pending: list[dict[str, jax.Array]] = []

  def add(self, metrics: dict[str, jax.Array]) -> None:
    self._pending.append(metrics)

  def flush(self) -> None:
    """Fetches the pending steps' metrics and adds them to the sums."""
    if not self._pending:
      return
    host = [{k: np.reshape(v, -1) for k, v in m.items()}
            for m in jax.device_get(self._pending)]
    self._sums_R = [
        {'loss': s['loss'] + sum(float(m['loss'][r]) for m in host),
         'accuracy': s['accuracy'] + sum(float(m['accuracy'][r])
                                         for m in host),
         'steps': s['steps'] + len(host)}
        for r, s in enumerate(self._sums_R)]
    self._pending = []

  def means(self) -> list[dict[str, float]]:
    """Per seed `{'train_loss', 'train_accuracy'}` since the last reset."""
    self.flush()
    return [{'train_loss': s['loss'] / s['steps'],
             'train_accuracy': s['accuracy'] / s['steps']}
            for s in self._sums_R]

  def reset(self) -> None:
    self._sums_R = [_no_steps() for _ in self._sums_R]
    self._pending = []

  def to_json(self) -> list[dict[str, float]]:
    self.flush()
    return [dict(s) for s in self._sums_R]

  def load_json(self, sums_R: Sequence[dict[str, float]]) -> None:
    self._sums_R = [dict(s) for s in sums_R]
    self._pending = []


def _no_steps() -> dict[str, float]:
  return {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}


class JsonlWriter:
  """`metrics.jsonl`: one JSON line per record, flushed as it is written."""

  def __init__(self, path: str):
    self.path = path

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step` (a resumed run logs them again)."""
    if not os.path.exists(self.path):
      return
    kept = []
    with open(self.path) as f:
      for line in f:
        try:
          record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:  # A line cut short by a crash.
          logging.warning('Dropped an unreadable line of %s: %r', self.path,
                          line[:80])
          continue
        if isinstance(record, dict) and record.get('step', 0) <= step:
          kept.append(line if line.endswith('\n') else line + '\n')
    directory = os.path.dirname(os.path.abspath(self.path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_')
    with os.fdopen(fd, 'w') as f:
      f.writelines(kept)
    os.replace(tmp, self.path)

  def __call__(self, record: Record) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    with open(self.path, 'a') as f:
      f.write(json.dumps(record, sort_keys=True) + '\n')
      f.flush()
      os.fsync(f.fileno())


def per_seed_names(record: Record) -> Record:
  """`{'step', 'seed': s, k: v}` -> `{'step', 'seed_<s>/k': v}`: one run's
  dashboards keep the seeds of a `--num_seeds` run apart."""
  if 'seed' not in record:
    return record
  prefix = f"seed_{record['seed']}/"
  return {'step': record['step'], **{
      prefix + k: v for k, v in record.items() if k not in ('step', 'seed')}}


class TensorBoardWriter:
  """Scalars of every record as TensorBoard events (needs tensorboardX)."""

  def __init__(self, directory: str):
    import tensorboardX  # pylint: disable=g-import-not-at-top
    self._writer = tensorboardX.SummaryWriter(directory)

  def __call__(self, record: Record) -> None:
    for k, v in per_seed_names(record).items():
      if isinstance(v, (int, float)) and k != 'step':
        self._writer.add_scalar(k, v, record['step'])
    self._writer.flush()


class WandbWriter:
  """Every record as a wandb log line at its step (an open wandb run)."""

  def __init__(self, wandb_run):
    self._run = wandb_run

  def __call__(self, record: Record) -> None:
    self._run.log(per_seed_names(record), step=record['step'])
