"""The training loop: jitted steps per length bucket, logging, validation, checkpoints.

Every step's randomness is a pure function of `(seed, step)`, so a resumed
run repeats exactly what an uninterrupted one would have done.
"""

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from neural_networks import pure
from tasks import task as task_lib
from training import checkpointing
from training import curriculum as curriculum_lib
from training import input_encoding
from training import length_buckets
from training import optimizers
from training import range_evaluation
from training import results
from training import train_step as train_step_lib

# Lengths for this many future steps are drawn in one device call.
_LENGTH_BLOCK = 1000


class TrainingDiverged(RuntimeError):
  """The loss or the parameters stopped being finite."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train (the original's flags, plus our logging/checkpoint cadence)."""

  seed: int
  batch_size: int = 128  # --batch_size
  train_steps: int = 0  # --train_steps: phase 1 (parallel mode for staircase).
  second_training_steps: int = 0  # --second_training_steps: staircase mode.
  learning_rate: float = 1e-5  # --lr
  weight_decay: float = 0.0  # --wd
  adam_beta1_inv: float = 0.1  # --adam_beta1_inv
  validate: bool = False  # --validate: and keep the best checkpoint.
  validation_length: int = 40  # --validation_length
  validate_every: int = 1000
  log_every: int = 100  # --log_frequency
  checkpoint_every: int = 1000  # --checkpoint_every
  bucket_width: int = 10  # Training lengths padded to multiples of this.
  length_multiple: int = 1  # Buckets rounded to this (the staircase chunk).

  def __post_init__(self):
    for name in ('batch_size', 'validate_every', 'log_every',
                 'checkpoint_every', 'bucket_width', 'length_multiple',
                 'validation_length'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')
    for name in ('train_steps', 'second_training_steps'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}.')

  @property
  def total_steps(self) -> int:
    """The original counts `train_steps + 1 + second_training_steps` steps."""
    return self.train_steps + 1 + self.second_training_steps


def mode_at(step: int, config: TrainConfig, modes: Mapping[str, Any]) -> str:
  """Which model runs at `step`: the staircase model switches from parallel
  to staircase mode at `train_steps` when `second_training_steps > 0`."""
  if 'default' in modes:
    return 'default'
  if config.second_training_steps > 0 and step >= config.train_steps:
    return 'staircase'
  return 'parallel'


def step_keys(seed: int, step) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(length, data, dropout) keys of training step `step`."""
  key = jax.random.fold_in(jax.random.key(seed), step)
  return tuple(jax.random.split(key, 3))


@dataclasses.dataclass
class TrainResult:
  state: train_step_lib.TrainState  # Final state.
  eval_params: pure.Params  # Best-validated params if validating, else final.
  eval_step: int
  best_validation_accuracy: float | None
  compiled_programs: int
  steps_per_second: float


@jax.jit
def _finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _all_finite(tree) -> bool:
  return bool(_finite(tree))


def _add_pending(unlogged: dict[str, float],
                 pending: list[dict[str, jax.Array]]) -> dict[str, float]:
  """`unlogged` plus the (fetched) metrics of the steps in `pending`."""
  host = jax.device_get(pending)
  # Float64 sums of float32 values are exact here, so the grouping of steps
  # (which differs when a run is resumed) never changes the logged means.
  return {'loss': unlogged['loss'] + sum(float(m['loss']) for m in host),
          'accuracy': (unlogged['accuracy']
                       + sum(float(m['accuracy']) for m in host)),
          'steps': unlogged['steps'] + len(host)}


def train(task: task_lib.Task, models: Mapping[str, pure.PureModel],
          encoding: input_encoding.InputEncoding,
          curriculum: curriculum_lib.Curriculum, config: TrainConfig,
          run_dir: str | None = None, progress: bool = True,
          log_fn: Callable[[dict[str, Any]], None] | None = None,
          ) -> TrainResult:
  """Trains from scratch, or resumes from `run_dir/checkpoints` if present.

  Writes `run_dir/metrics.jsonl` (one line per `log_every` steps) and
  checkpoints every `checkpoint_every` steps and at the end. A Ctrl-C saves
  the current state before re-raising; a non-finite loss raises
  TrainingDiverged and leaves the last good checkpoint in place.
  """
  optimizer = optimizers.make_optimizer(
      config.learning_rate, config.weight_decay, config.adam_beta1_inv)
  first_model = next(iter(models.values()))
  state = train_step_lib.init_state(first_model, optimizer,
                                    jax.random.key(config.seed))
  checkpointer = metrics_log = None
  best_accuracy, best_step = None, None
  # Sums over the steps since the last log line; checkpointed so that a
  # resumed run logs the same averages as an uninterrupted one.
  unlogged = {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}
  if run_dir is not None:
    checkpointer = checkpointing.Checkpointer(f'{run_dir}/checkpoints')
    metrics_log = results.MetricsLog(f'{run_dir}/metrics.jsonl')
    if checkpointer.latest_step() is not None:
      state, extra = checkpointer.restore(state)
      unlogged = extra.get('unlogged', unlogged)
      print(f'Resuming from step {int(state.step)}')
      metrics_log.truncate_after(int(state.step))
      best_accuracy, best_step = _best_so_far(metrics_log.path, int(state.step))
  buckets = length_buckets.make_buckets(
      curriculum.max_length, config.bucket_width, config.length_multiple)
  compiled: dict[tuple[str, int], Callable] = {}

  def step_fn(mode: str, bucket: int):
    """The jitted `(state, length, step)` program of one mode and bucket."""
    if (mode, bucket) not in compiled:
      sample_and_step = train_step_lib.make_sample_and_train_step(
          models[mode], optimizer, task, encoding, config.batch_size,
          task.padded_length(bucket))

      def step_at(state, length, step):
        # Keys are derived on the device, inside the one program per step.
        _, data_key, dropout_key = step_keys(config.seed, step)
        return sample_and_step(state, length, data_key, dropout_key)

      compiled[mode, bucket] = jax.jit(step_at, donate_argnums=0)
    return compiled[mode, bucket]

  sample_lengths = jax.jit(jax.vmap(
      lambda step: curriculum.sample(step_keys(config.seed, step)[0], step)))

  def validate(params, mode: str) -> float:
    accuracy_L = range_evaluation.evaluate_exact(
        models[mode], params, task, encoding, config.validation_length,
        num_strings=config.batch_size, sub_batch_size=config.batch_size,
        key=jax.random.key(config.seed + 10**6),
        bucket_width=config.validation_length)
    return float(np.mean(accuracy_L))

  start_step, total = int(state.step), config.total_steps
  pending: list[dict[str, jax.Array]] = []
  bar = tqdm.tqdm(total=total, initial=start_step, disable=not progress,
                  unit='step', dynamic_ncols=True)
  interval_start, interval_steps = time.perf_counter(), 0
  run_start, steps_run = time.perf_counter(), 0
  try:
    for step in range(start_step, total):
      if (step - start_step) % _LENGTH_BLOCK == 0:
        block = np.arange(step, min(step + _LENGTH_BLOCK, total))
        lengths = np.asarray(sample_lengths(jnp.asarray(block, jnp.int32)))
      length = int(lengths[(step - start_step) % _LENGTH_BLOCK])
      mode = mode_at(step, config, models)
      bucket = length_buckets.bucket_for(length, buckets)
      state, metrics = step_fn(mode, bucket)(
          state, jnp.int32(length), jnp.int32(step))
      pending.append(metrics)
      interval_steps += 1
      steps_run += 1
      done = step + 1
      is_last = done == total
      record = None
      if done % config.log_every == 0 or is_last:
        unlogged = _add_pending(unlogged, pending)
        pending = []
        elapsed = time.perf_counter() - interval_start
        record = {
            'step': done,
            'train_loss': unlogged['loss'] / unlogged['steps'],
            'train_accuracy': unlogged['accuracy'] / unlogged['steps'],
            'steps_per_second': interval_steps / max(elapsed, 1e-9),
            'mode': mode,
        }
        unlogged = {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}
        interval_start, interval_steps = time.perf_counter(), 0
        if not math.isfinite(record['train_loss']):
          raise TrainingDiverged(
              f'Non-finite training loss at step {done}; the last good'
              ' checkpoint is kept. Try a smaller --lr.')
      if config.validate and (done % config.validate_every == 0 or is_last):
        record = record or {'step': done}
        accuracy = validate(state.params, mode)
        record['validation_accuracy'] = accuracy
        if best_accuracy is None or accuracy > best_accuracy:
          best_accuracy, best_step = accuracy, done
          record['best'] = True
          if checkpointer is not None:
            checkpointer.save(state, best=True)
      if record is not None:
        if metrics_log is not None:
          metrics_log.append(record)
        if log_fn is not None:
          log_fn(record)
        bar.set_postfix(loss=f"{record.get('train_loss', float('nan')):.4f}",
                        acc=f"{record.get('train_accuracy', float('nan')):.3f}",
                        refresh=False)
      if checkpointer is not None and (done % config.checkpoint_every == 0
                                       or is_last):
        if not _all_finite(state.params):
          raise TrainingDiverged(
              f'Non-finite parameters at step {done}; the last good'
              ' checkpoint is kept. Try a smaller --lr.')
        unlogged = _add_pending(unlogged, pending)
        pending = []
        checkpointer.save(state, extra={'unlogged': unlogged})
      bar.update(1)
  except KeyboardInterrupt:
    if checkpointer is not None and _all_finite(state.params):
      checkpointer.save(state, extra={
          'unlogged': _add_pending(unlogged, pending)})
      print(f'\nInterrupted: saved a checkpoint at step {int(state.step)}.')
    raise
  finally:
    bar.close()
  steps_per_second = steps_run / max(time.perf_counter() - run_start, 1e-9)
  eval_params, eval_step = state.params, int(state.step)
  if config.validate and checkpointer is not None and checkpointer.best_step():
    eval_params = checkpointer.restore(state, best=True)[0].params
    eval_step = checkpointer.best_step()
  elif config.validate and best_step is not None:
    eval_step = best_step  # Without a run folder, the final params stand in.
  if checkpointer is not None:
    checkpointer.close()
  return TrainResult(state, eval_params, eval_step, best_accuracy,
                     len(compiled), steps_per_second)


def _best_so_far(metrics_path: str, step: int) -> tuple[float | None, int | None]:
  """The best validation accuracy logged up to `step` (for resumed runs)."""
  best, best_step = None, None
  if not os.path.exists(metrics_path):
    return best, best_step
  with open(metrics_path) as f:
    for line in f:
      record = json.loads(line)
      accuracy = record.get('validation_accuracy')
      if accuracy is not None and record['step'] <= step and (
          best is None or accuracy > best):
        best, best_step = accuracy, record['step']
  return best, best_step
