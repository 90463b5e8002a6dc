"""Orbax checkpoints of a TrainState: periodic ones to resume from, and the best one."""

import os
import shutil
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp

from training import train_step as train_step_lib


class CheckpointError(ValueError):
  """No checkpoint of a run could be read."""


class Checkpointer:
  """`<dir>/latest` keeps the newest checkpoints, `<dir>/best` the newest
  best-validated ones.

  Orbax writes each checkpoint to a temporary folder and renames it when
  complete, so a crash mid-save leaves the previous checkpoint intact. A
  checkpoint damaged later is moved aside to `<dir>/damaged_<kind>_<step>`
  when a restore finds it unreadable.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    directory = os.path.abspath(directory)
    self._directory = directory
    self._latest = ocp.CheckpointManager(
        os.path.join(directory, 'latest'),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))
    self._best = ocp.CheckpointManager(
        os.path.join(directory, 'best'),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))

  def latest_step(self) -> int | None:
    return self._latest.latest_step()

  def best_step(self) -> int | None:
    return self._best.latest_step()

  def save(self, state: train_step_lib.TrainState, step: int,
           best: bool = False, extra: dict[str, Any] | None = None) -> None:
    """Saves `state` (of training step `step`) and a small JSON dict `extra`.

    With several processes, every process calls this with the same
    arguments: orbax writes each process's shards and the metadata once.
    """
    manager = self._best if best else self._latest
    if manager.latest_step() == step:
      return
    manager.save(step, force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        extra=ocp.args.JsonSave(extra or {})))
    manager.wait_until_finished()

  def restore(self, like: train_step_lib.TrainState, best: bool = False,
              max_step: int | None = None
              ) -> tuple[int, train_step_lib.TrainState, dict[str, Any]]:
    """`(step, state, extra)` of the newest readable latest (or best)
    checkpoint at or before `max_step`, the state shaped like `like`.

    A checkpoint that cannot be read (a partial copy, a full disk, bit rot)
    is moved aside with a warning and the one before it is tried;
    CheckpointError when none is readable.
    """
    kind = 'best' if best else 'latest'
    manager = self._best if best else self._latest
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    steps = [step for step in sorted(manager.all_steps(), reverse=True)
             if max_step is None or step <= max_step]
    for i, step in enumerate(steps):
      try:
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            extra=ocp.args.JsonRestore()))
        extra = restored.extra
        if not isinstance(extra, dict):  # Orbax reads an emptied file as None.
          raise ValueError(f'its extra record is {extra!r}')
      except Exception as e:  # pylint: disable=broad-except
        aside = self._move_aside(manager, kind, step)
        fallback = (f'trying step {steps[i + 1]}' if i + 1 < len(steps)
                    else 'no older one is left')
        logging.warning('The %s checkpoint at step %d is unreadable (%s: %s);'
                        ' moved it to %s; %s.', kind, step, type(e).__name__,
                        ' '.join(str(e).split())[:200], aside, fallback)
        continue
      if i:
        logging.warning('Using the %s checkpoint at step %d, the newest'
                        ' readable one.', kind, step)
      return step, restored.state, dict(extra)
    raise CheckpointError(
        f'no readable {kind} checkpoint in {self._directory}'
        f' ({len(steps)} found, all damaged); pass --overwrite to start'
        ' this run afresh.')

  def _move_aside(self, manager: ocp.CheckpointManager, kind: str,
                  step: int) -> str:
    """Renames a damaged step folder out of the manager's sight."""
    source = os.path.join(str(manager.directory), str(step))
    target = os.path.join(self._directory, f'damaged_{kind}_{step}')
    if jax.process_index() == 0 and os.path.isdir(source):
      if os.path.exists(target):
        shutil.rmtree(target)
      os.rename(source, target)
    manager.reload()
    return target

  def discard_best_after(self, step: int) -> None:
    """Deletes best checkpoints newer than `step` (a resumed run from
    `step` validates, and saves them, again)."""
    for best_step in self._best.all_steps():
      if best_step > step:
        self._best.delete(best_step)

  def close(self) -> None:
    self._latest.close()
    self._best.close()
