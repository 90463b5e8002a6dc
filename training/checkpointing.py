"""Orbax checkpoints of a TrainState: periodic ones to resume from, and the best one."""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from training import train_step as train_step_lib


class Checkpointer:
  """`<dir>/latest` keeps the newest checkpoints, `<dir>/best` the best-validated one.

  Orbax writes each checkpoint to a temporary folder and renames it when
  complete, so a crash mid-save leaves the previous checkpoint intact.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    directory = os.path.abspath(directory)
    self._latest = ocp.CheckpointManager(
        os.path.join(directory, 'latest'),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))
    self._best = ocp.CheckpointManager(
        os.path.join(directory, 'best'),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))

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

  def restore(self, like: train_step_lib.TrainState, best: bool = False
              ) -> tuple[train_step_lib.TrainState, dict[str, Any]]:
    """The latest (or best) checkpoint's state, shaped like `like`, and extra."""
    manager = self._best if best else self._latest
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = manager.restore(manager.latest_step(), args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract),
        extra=ocp.args.JsonRestore()))
    return restored.state, dict(restored.extra or {})

  def close(self) -> None:
    self._latest.close()
    self._best.close()
