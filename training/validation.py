"""Validation on the training lengths, and the best-validated state of each seed.

The original validates every 1000 steps on lengths 1..validation_length and
evaluates the checkpoint with the best validation accuracy. The tracker's
numbers are saved with every checkpoint, so a resumed run picks the same
checkpoint as an uninterrupted one.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neural_networks import pure
from tasks import task as task_lib
from training import input_encoding
from training import range_evaluation

# Validation strings come from their own key, apart from the training data.
_VALIDATION_KEY_OFFSET = 10**6


def accuracy(model: pure.PureModel, params: pure.Params, task: task_lib.Task,
             encoding: input_encoding.InputEncoding, validation_length: int,
             batch_size: int, seed: int) -> float:
  """Mean accuracy over lengths 1..validation_length, `batch_size` strings
  each, drawn from a key of the seed's own."""
  accuracy_L = range_evaluation.evaluate_exact(
      model, params, task, encoding, validation_length,
      num_strings=batch_size, sub_batch_size=batch_size,
      key=jax.random.key(seed + _VALIDATION_KEY_OFFSET),
      bucket_width=validation_length)
  return float(np.mean(accuracy_L))


@jax.jit
def _keep_improved(improved_R: jax.Array, state, best):
  """Per seed: `state` where `improved_R`, else `best` (leading seed axis)."""
  def pick(new, old):
    mask = improved_R.reshape(improved_R.shape + (1,) * (new.ndim - 1))
    return jnp.where(mask, new, old)
  return jax.tree.map(pick, state, best)


class BestTracker:
  """Per seed: the best validation accuracy so far, its step, and the state.

  `state` holds every seed's best state (stacked like the training state
  when `stacked`), so one checkpoint saves all of them.
  """

  def __init__(self, num_seeds: int, stacked: bool):
    self._stacked = stacked
    self.reset(num_seeds)

  def reset(self, num_seeds: int) -> None:
    """Forgets every best: the next validation of each seed is its best."""
    self.accuracy_R: list[float | None] = [None] * num_seeds
    self.step_R: list[int | None] = [None] * num_seeds
    self.state: Any = None

  def update(self, accuracy_R: list[float], step: int, state) -> np.ndarray:
    """Records validation accuracies at `step`; returns which seeds improved
    (strictly: the first of equal accuracies is kept)."""
    improved_R = np.array([best is None or a > best
                           for a, best in zip(accuracy_R, self.accuracy_R)])
    for r in np.flatnonzero(improved_R):
      self.accuracy_R[r], self.step_R[r] = accuracy_R[r], step
    if improved_R.any():
      which = improved_R if self._stacked else improved_R[0]
      self.state = _keep_improved(jnp.asarray(which), state,
                                  state if self.state is None else self.state)
    return improved_R

  def to_json(self) -> dict[str, list]:
    return {'accuracy': list(self.accuracy_R), 'step': list(self.step_R)}

  def load_json(self, saved: dict[str, list]) -> None:
    self.accuracy_R = list(saved['accuracy'])
    self.step_R = list(saved['step'])


class EarlyStopping:
  """Stops training once every seed's validation accuracy has been at least
  `accuracy` for `patience` validations in a row (off when `accuracy` is
  None, the original's behaviour). Its state goes into checkpoints."""

  def __init__(self, num_seeds: int, accuracy: float | None, patience: int):
    self.accuracy, self.patience = accuracy, patience
    self.streak_R = [0] * num_seeds
    self.stopped = False

  def update(self, accuracy_R: list[float]) -> bool:
    """Records one validation; True when training should stop now."""
    if self.accuracy is None:
      return False
    self.streak_R = [streak + 1 if a >= self.accuracy else 0
                     for streak, a in zip(self.streak_R, accuracy_R)]
    self.stopped = min(self.streak_R) >= self.patience
    return self.stopped

  def to_json(self) -> dict[str, Any]:
    return {'streak': list(self.streak_R), 'stopped': self.stopped}

  def load_json(self, saved: dict[str, Any]) -> None:
    self.streak_R = list(saved.get('streak', self.streak_R))
    self.stopped = bool(saved.get('stopped', False))
