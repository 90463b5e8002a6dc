"""The training loop of R seeds: jitted steps, logs, validation, checkpoints.

Every step's randomness is a pure function of `(seed, step)`, so a resumed
run repeats exactly what an uninterrupted one would have done, and a seed
trained with others repeats what it would have done alone.
"""

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
from training import sharding
from training import train_step as train_step_lib

# Lengths for this many future steps are drawn in one device call.
_LENGTH_BLOCK = 1000


class TrainingDiverged(RuntimeError):
  """The loss or the parameters stopped being finite."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train (the original's flags, plus our logging/checkpoint cadence)."""

  seed: int  # --seed: the first seed; seed i of num_seeds is seed + i.
  num_seeds: int = 1  # --num_seeds: runs trained together (vmapped).
  batch_size: int = 128  # --batch_size: global, split over the data axis.
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
    for name in ('num_seeds', 'batch_size', 'validate_every', 'log_every',
                 'checkpoint_every', 'bucket_width', 'length_multiple',
                 'validation_length'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')
    for name in ('train_steps', 'second_training_steps'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}.')

  @property
  def seeds(self) -> tuple[int, ...]:
    return tuple(range(self.seed, self.seed + self.num_seeds))

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


def step_keys(seed, step) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(length, data, dropout) keys of a training step; both may be traced."""
  key = jax.random.fold_in(jax.random.key(seed), step)
  return tuple(jax.random.split(key, 3))


@dataclasses.dataclass
class TrainResult:
  """What training one seed produced (arrays on this process's first device)."""

  state: train_step_lib.TrainState  # Final state.
  eval_params: pure.Params  # Best-validated params if validating, else final.
  eval_step: int
  best_validation_accuracy: float | None
  compiled_programs: int  # Shared by the seeds trained together.
  steps_per_second: float  # Steps of every seed together per second.


@jax.jit
def _finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _all_finite(tree) -> bool:
  return bool(_finite(tree))


def _no_steps() -> dict[str, float]:
  return {'loss': 0.0, 'accuracy': 0.0, 'steps': 0}


def _add_pending(unlogged_R: list[dict[str, float]],
                 pending: list[dict[str, jax.Array]]) -> list[dict[str, float]]:
  """Each seed's `unlogged` plus the fetched metrics of the `pending` steps."""
  host = [{k: np.reshape(v, -1) for k, v in m.items()}
          for m in jax.device_get(pending)]
  # Float64 sums of float32 values are exact here, so the grouping of steps
  # (which differs when a run is resumed) never changes the logged means.
  return [{'loss': u['loss'] + sum(float(m['loss'][r]) for m in host),
           'accuracy': u['accuracy'] + sum(float(m['accuracy'][r])
                                           for m in host),
           'steps': u['steps'] + len(host)}
          for r, u in enumerate(unlogged_R)]


@jax.jit
def _keep_improved(improved_R: jax.Array, state, best):
  """Per seed: `state` where `improved_R`, else `best` (leading seed axis)."""
  def pick(new, old):
    mask = improved_R.reshape(improved_R.shape + (1,) * (new.ndim - 1))
    return jnp.where(mask, new, old)
  return jax.tree.map(pick, state, best)


def initial_state(model: pure.PureModel,
                  optimizer: optax.GradientTransformation,
                  seeds: tuple[int, ...], layout: sharding.SeedLayout
                  ) -> train_step_lib.TrainState:
  """Each seed's initial state from `key(seed)`, placed on the mesh (stacked
  along a leading seed axis when there are several seeds)."""
  if not layout.stacked:
    state = train_step_lib.init_state(model, optimizer,
                                      jax.random.key(seeds[0]))
  else:
    state = jax.vmap(lambda key: train_step_lib.init_state(
        model, optimizer, key))(jax.vmap(jax.random.key)(jnp.array(seeds)))
  return layout.put(state)


def make_step_program(model: pure.PureModel,
                      optimizer: optax.GradientTransformation,
                      task: task_lib.Task,
                      encoding: input_encoding.InputEncoding, batch_size: int,
                      buckets: Sequence[int], bucket: int,
                      layout: sharding.SeedLayout) -> Callable[..., Any]:
  """The jitted training step of every seed whose longest bucket is `bucket`.

  `(state, length, which, seed, step) -> (state, metrics)`: per seed (a
  leading axis when stacked) its length, the index `which` of its own bucket
  in `buckets` and its seed; `step` is shared. Each seed samples at its own
  bucket, padded to `bucket` (see `train_step.sample_padded`).
  """
  own = (bucket,)
  if layout.stacked:
    own = tuple(buckets[:list(buckets).index(bucket) + 1])
  sample_and_step = train_step_lib.make_sample_and_train_step(
      model, optimizer, task, encoding, batch_size,
      tuple(task.padded_length(b) for b in own),
      constrain_batch=layout.constrain_batch)

  def step_at(state, length, which, seed, step):
    # Keys are derived on the device, inside the one program per step.
    _, data_key, dropout_key = step_keys(seed, step)
    return sample_and_step(state, length, data_key, dropout_key, which)

  return jax.jit(layout.over_seeds(step_at, in_axes=(0, 0, 0, 0, None)),
                 donate_argnums=0,
                 out_shardings=(layout.state_sharding, layout.replicated))


def train(task: task_lib.Task, models: Mapping[str, pure.PureModel],
          encoding: input_encoding.InputEncoding,
          curriculum: curriculum_lib.Curriculum, config: TrainConfig,
          run_dir: str | None = None, progress: bool = True,
          log_fn: Callable[[dict[str, Any]], None] | None = None,
          mesh: jax.sharding.Mesh | None = None) -> TrainResult:
  """Trains one seed (`config.num_seeds == 1`); see `train_seeds`."""
  if config.num_seeds != 1:
    raise ValueError(f'train() trains one seed; use train_seeds() for'
                     f' num_seeds={config.num_seeds}.')
  return train_seeds(task, models, encoding, curriculum, config, run_dir,
                     progress, log_fn, mesh)[0]


def train_seeds(task: task_lib.Task, models: Mapping[str, pure.PureModel],
                encoding: input_encoding.InputEncoding,
                curriculum: curriculum_lib.Curriculum, config: TrainConfig,
                run_dir: str | None = None, progress: bool = True,
                log_fn: Callable[[dict[str, Any]], None] | None = None,
                mesh: jax.sharding.Mesh | None = None) -> list[TrainResult]:
  """Trains `config.seeds` together, or resumes from `run_dir/checkpoints`.

  Seed `s` draws its lengths, data, dropout and initial parameters from
  `key(s)` exactly as a run of that seed alone does, so its results match that
  run's (to float rounding: the vmapped program batches the seeds'
  arithmetic). One exception: a seed whose length bucket is shorter than
  another seed's at the same step is padded to the longer one, which changes
  nothing for causal, length-masked models except the dropout masks of
  models that attend over the whole padded sequence (the Transformer, and
  the staircase model's parallel mode), which are drawn for the padded shape.

  Writes each seed's `metrics.jsonl` (one line per `log_every` steps) in
  `results.seed_dirs(run_dir, seeds)` and checkpoints of all seeds every
  `checkpoint_every` steps and at the end. A Ctrl-C saves the current state
  before re-raising; a non-finite loss raises TrainingDiverged and leaves the
  last good checkpoint in place. With several processes every process calls
  this; only process 0 writes result files, checkpoints are collective.

  Args:
    mesh: the ('seed', 'data') device mesh (default: every device,
      `sharding.make_mesh(config.num_seeds)`).

  Returns:
    One TrainResult per seed, in the order of `config.seeds`.
  """
  seeds, R = config.seeds, config.num_seeds
  layout = sharding.SeedLayout(R, mesh or sharding.make_mesh(R))
  layout.check_batch_size(config.batch_size)
  primary = sharding.is_primary()
  optimizer = optimizers.make_optimizer(
      config.learning_rate, config.weight_decay, config.adam_beta1_inv)
  first_model = next(iter(models.values()))
  state = initial_state(first_model, optimizer, seeds, layout)
  best_state = checkpointer = None
  metrics_logs: list[results.MetricsLog] = []
  best_accuracy_R: list[float | None] = [None] * R
  best_step_R: list[int | None] = [None] * R
  # Sums over the steps since the last log line; checkpointed so that a
  # resumed run logs the same averages as an uninterrupted one.
  unlogged_R = [_no_steps() for _ in seeds]
  start_step = 0
  if run_dir is not None:
    checkpointer = checkpointing.Checkpointer(f'{run_dir}/checkpoints')
    if primary:
      metrics_logs = [results.MetricsLog(f'{seed_dir}/metrics.jsonl')
                      for seed_dir in results.seed_dirs(run_dir, seeds)]
    if checkpointer.latest_step() is not None:
      start_step = checkpointer.latest_step()
      state, extra = checkpointer.restore(state)
      saved = extra.get('unlogged')
      if saved is not None:
        unlogged_R = saved if layout.stacked else [saved]
      if primary:
        print(f'Resuming from step {start_step}')
      best_R = np.full((2, R), np.nan)
      for r, log in enumerate(metrics_logs):
        log.truncate_after(start_step)
        best_R[:, r] = _best_so_far(log.path, start_step)
      best_R = sharding.from_primary(best_R)
      if config.validate and checkpointer.best_step() is not None:
        best_state = checkpointer.restore(state, best=True)[0]
        best_accuracy_R = [None if np.isnan(a) else float(a)
                           for a in best_R[0]]
        best_step_R = [None if np.isnan(s) else int(s) for s in best_R[1]]
  buckets = length_buckets.make_buckets(
      curriculum.max_length, config.bucket_width, config.length_multiple)
  compiled: dict[tuple[str, int], Callable] = {}

  def step_fn(mode: str, bucket: int):
    if (mode, bucket) not in compiled:
      compiled[mode, bucket] = make_step_program(
          models[mode], optimizer, task, encoding, config.batch_size,
          buckets, bucket, layout)
    return compiled[mode, bucket]

  seed_R = np.array(seeds, np.int32)
  sample_lengths = jax.jit(jax.vmap(lambda step: jax.vmap(
      lambda seed: curriculum.sample(step_keys(seed, step)[0], step))(seed_R)))

  def validate(params, mode: str, seed: int) -> float:
    accuracy_L = range_evaluation.evaluate_exact(
        models[mode], params, task, encoding, config.validation_length,
        num_strings=config.batch_size, sub_batch_size=config.batch_size,
        key=jax.random.key(seed + 10**6),
        bucket_width=config.validation_length)
    return float(np.mean(accuracy_L))

  def per_seed(values_R):
    return values_R if layout.stacked else values_R[0]

  total = config.total_steps
  done = start_step
  pending: list[dict[str, jax.Array]] = []
  bar = tqdm.tqdm(total=total, initial=start_step,
                  disable=not (progress and primary), unit='step',
                  dynamic_ncols=True)
  interval_start, interval_steps = time.perf_counter(), 0
  run_start, steps_run = time.perf_counter(), 0
  try:
    for step in range(start_step, total):
      if (step - start_step) % _LENGTH_BLOCK == 0:
        block = np.arange(step, min(step + _LENGTH_BLOCK, total))
        lengths_KR = np.asarray(sample_lengths(jnp.asarray(block, jnp.int32)))
        which_KR = np.searchsorted(buckets, lengths_KR).astype(np.int32)
      length_R = lengths_KR[(step - start_step) % _LENGTH_BLOCK]
      which_R = which_KR[(step - start_step) % _LENGTH_BLOCK]
      mode = mode_at(step, config, models)
      bucket = length_buckets.bucket_for(int(length_R.max()), buckets)
      state, metrics = step_fn(mode, bucket)(
          state, per_seed(length_R), per_seed(which_R), per_seed(seed_R),
          np.int32(step))
      pending.append(metrics)
      interval_steps += 1
      steps_run += 1
      done = step + 1
      is_last = done == total
      records_R: list[dict[str, Any] | None] = [None] * R
      if done % config.log_every == 0 or is_last:
        unlogged_R = _add_pending(unlogged_R, pending)
        pending = []
        elapsed = time.perf_counter() - interval_start
        records_R = [{
            'step': done,
            'train_loss': u['loss'] / u['steps'],
            'train_accuracy': u['accuracy'] / u['steps'],
            'steps_per_second': interval_steps / max(elapsed, 1e-9),
            'mode': mode,
        } for u in unlogged_R]
        unlogged_R = [_no_steps() for _ in seeds]
        interval_start, interval_steps = time.perf_counter(), 0
        for seed, record in zip(seeds, records_R):
          if not math.isfinite(record['train_loss']):
            raise TrainingDiverged(
                f'Non-finite training loss at step {done}'
                f'{f" (seed {seed})" if layout.stacked else ""}; the last good'
                ' checkpoint is kept. Try a smaller --lr.')
      if config.validate and (done % config.validate_every == 0 or is_last):
        params = sharding.to_local_device(state.params)
        improved_R = np.zeros(R, bool)
        for r, seed in enumerate(seeds):
          records_R[r] = records_R[r] or {'step': done}
          accuracy = validate(layout.seed_slice(params, r), mode, seed)
          records_R[r]['validation_accuracy'] = accuracy
          if best_accuracy_R[r] is None or accuracy > best_accuracy_R[r]:
            best_accuracy_R[r], best_step_R[r] = accuracy, done
            records_R[r]['best'] = True
            improved_R[r] = True
        if improved_R.any():
          best_state = _keep_improved(
              jnp.asarray(per_seed(improved_R)), state,
              state if best_state is None else best_state)
          if checkpointer is not None:
            checkpointer.save(best_state, done, best=True, extra=(
                {'best_steps': best_step_R} if layout.stacked else None))
      for seed, record, log in itertools.zip_longest(seeds, records_R,
                                                     metrics_logs):
        if record is None:
          continue
        if log is not None:
          log.append(record)
        if log_fn is not None:
          log_fn({**record, 'seed': seed} if layout.stacked else record)
      if records_R[0] is not None and 'train_loss' in records_R[0]:
        bar.set_postfix(loss=f"{records_R[0]['train_loss']:.4f}",
                        acc=f"{records_R[0]['train_accuracy']:.3f}",
                        refresh=False)
      if checkpointer is not None and (done % config.checkpoint_every == 0
                                       or is_last):
        if not _all_finite(state.params):
          raise TrainingDiverged(
              f'Non-finite parameters at step {done}; the last good'
              ' checkpoint is kept. Try a smaller --lr.')
        unlogged_R = _add_pending(unlogged_R, pending)
        pending = []
        checkpointer.save(state, done, extra={'unlogged': per_seed(unlogged_R)})
      bar.update(1)
  except KeyboardInterrupt:
    if checkpointer is not None and _all_finite(state.params):
      # The state's own count: the interrupt may fall before `done` is set.
      done = int(np.reshape(state.step.addressable_shards[0].data, -1)[0])
      checkpointer.save(state, done, extra={
          'unlogged': per_seed(_add_pending(unlogged_R, pending))})
      if primary:
        print(f'\nInterrupted: saved a checkpoint at step {done}.')
    raise
  finally:
    bar.close()
  steps_per_second = steps_run / max(time.perf_counter() - run_start, 1e-9)
  if checkpointer is not None:
    checkpointer.close()
  final = sharding.to_local_device(state)
  use_best = config.validate and best_state is not None
  evaluated = sharding.to_local_device(best_state.params) if use_best else None
  return [TrainResult(
      state=layout.seed_slice(final, r),
      eval_params=layout.seed_slice(
          evaluated if use_best else final.params, r),
      eval_step=best_step_R[r] if use_best else total,
      best_validation_accuracy=best_accuracy_R[r],
      compiled_programs=len(compiled), steps_per_second=steps_per_second)
          for r in range(R)]


def _best_so_far(metrics_path: str, step: int) -> tuple[float, float]:
  """Best validation accuracy logged up to `step`, and its step (NaN: none)."""
  best, best_step = np.nan, np.nan
  if not os.path.exists(metrics_path):
    return best, best_step
  with open(metrics_path) as f:
    for line in f:
      record = json.loads(line)
      accuracy = record.get('validation_accuracy')
      if accuracy is not None and record['step'] <= step and (
          np.isnan(best) or accuracy > best):
        best, best_step = accuracy, record['step']
  return best, best_step
