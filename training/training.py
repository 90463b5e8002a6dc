"""The training loop of R seeds: jitted steps, logs, validation, checkpoints.

Every step's randomness is a pure function of `(seed, step)`, so a resumed
run repeats exactly what an uninterrupted one would have done, and a seed
trained with others repeats what it would have done alone.
"""

import dataclasses
import itertools
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from absl import logging

from neural_networks import dropout as dropout_lib
from neural_networks import longest_length
from neural_networks import pure
from tasks import task as task_lib
from training import checkpointing
from training import curriculum as curriculum_lib
from training import input_encoding
from training import length_buckets
from training import metrics as metrics_lib
from training import optimizers
from training import results
from training import sharding
from training import train_step as train_step_lib
from training import validation

# Lengths for this many future steps are drawn in one device call.
_LENGTH_BLOCK = 1000


class TrainingDiverged(RuntimeError):
  """The loss or the parameters stopped being finite."""


@dataclasses.dataclass(frozen=True)
class Phase:
  """`steps` consecutive training steps of one model (of one parameter
  structure shared by every phase), e.g. the staircase model's parallel
  mode, then its staircase mode. `name` is logged as each step's `mode`.

  `dropout_rate`, when given, is a traced input of the step
  (`dropout.traced_rate`) that replaces the rate at each of the model's
  dropout sites that is on: build the model with its rate set to
  `dropout.ON`, and runs that differ only in this rate share the program.
  None keeps the model's own rate, compiled in.
  """

  name: str
  steps: int
  model: pure.PureModel
  dropout_rate: float | None = None

  def step_dropout(self) -> 'dropout_lib.Rate | None':
    """The step program's `dropout_rate` argument for this phase."""
    return (None if self.dropout_rate is None
            else dropout_lib.rate_values(self.dropout_rate))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train (the original's flags, plus our logging/checkpoint cadence)."""

  seed: int  # --seed: the first seed; seed i of num_seeds is seed + i.
  num_seeds: int = 1  # --num_seeds: runs trained together (vmapped).
  batch_size: int = 128  # --batch_size: global, split over the data axis.
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
  # Stop once every seed's validation accuracy is at least this for
  # `early_stopping_patience` validations in a row (None: never).
  early_stopping_accuracy: float | None = None
  early_stopping_patience: int = 1

  def __post_init__(self):
    for name in ('num_seeds', 'batch_size', 'validate_every', 'log_every',
                 'checkpoint_every', 'bucket_width', 'length_multiple',
                 'validation_length'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')

  @property
  def seeds(self) -> tuple[int, ...]:
    return tuple(range(self.seed, self.seed + self.num_seeds))


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
                      task: task_lib.Task,
                      encoding: input_encoding.InputEncoding, batch_size: int,
                      buckets: Sequence[int], bucket: int,
                      layout: sharding.SeedLayout) -> Callable[..., Any]:
  """The jitted training step of every seed whose longest bucket is `bucket`.

  `(state, length, which, seed, step, hyper, dropout_rate) -> (state,
  metrics)`: per seed (a leading axis when stacked) its length, the index
  `which` of its own bucket in `buckets` and its seed; `step`, the
  optimizer's `optimizers.Hyperparameters` (float32 scalars) and the
  `dropout.Rate` (or None: the model's own rate; see `Phase`) are shared and
  traced, so that runs differing only in them share this program. Each seed
  samples at its own bucket, padded to `bucket` (see
  `train_step.sample_padded`).
  """
  own = (bucket,)
  if layout.stacked:
    own = tuple(buckets[:list(buckets).index(bucket) + 1])

  def step_at(state, length, which, seed, step, hyper, dropout_rate):
    sample_and_step = train_step_lib.make_sample_and_train_step(
        model, optimizers.make_optimizer(*hyper), task, encoding, batch_size,
        tuple(task.padded_length(b) for b in own),
        constrain_batch=layout.constrain_batch)
    # Keys are derived on the device, inside the one program per step.
    _, data_key, dropout_key = step_keys(seed, step)
    with (dropout_lib.traced_rate(dropout_rate),
          longest_length.shared_over(
              sharding.SEED_AXIS if layout.stacked else None)):
      return sample_and_step(state, length, data_key, dropout_key, which)

  return jax.jit(layout.over_seeds(step_at,
                                   in_axes=(0, 0, 0, 0, None, None, None)),
                 donate_argnums=0,
                 out_shardings=(layout.state_sharding, layout.replicated))


class Interrupted(Exception):
  """SIGINT or SIGTERM stopped training after a whole step, checkpointed."""

  def __init__(self, step: int, signal_name: str):
    super().__init__(f'{signal_name} at step {step}')
    self.step = step
    self.signal_name = signal_name


def train(task: task_lib.Task, phases: Sequence[Phase],
          encoding: input_encoding.InputEncoding,
          curriculum: curriculum_lib.Curriculum, config: TrainConfig,
          run_dir: str | None = None, progress: bool = True,
          log_fn: metrics_lib.Writer | None = None,
          mesh: jax.sharding.Mesh | None = None) -> TrainResult:
  """Trains one seed (`config.num_seeds == 1`); see `train_seeds`."""
  if config.num_seeds != 1:
    raise ValueError(f'train() trains one seed; use train_seeds() for'
                     f' num_seeds={config.num_seeds}.')
  return train_seeds(task, phases, encoding, curriculum, config, run_dir,
                     progress, log_fn, mesh)[0]


def train_seeds(task: task_lib.Task, phases: Sequence[Phase],
                encoding: input_encoding.InputEncoding,
                curriculum: curriculum_lib.Curriculum, config: TrainConfig,
                run_dir: str | None = None, progress: bool = True,
                log_fn: metrics_lib.Writer | None = None,
                mesh: jax.sharding.Mesh | None = None) -> list[TrainResult]:
  """Trains `config.seeds` through `phases`, or resumes from `run_dir`.

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
  `checkpoint_every` steps and at the end; `log_fn` gets the same records
  (with a `seed` when several). SIGINT or SIGTERM finishes the current step,
  checkpoints it and raises `Interrupted` (a signal to any process stops
  all of them at one step). With `early_stopping_accuracy`, training ends,
  checkpointed, once every seed's validation accuracy has reached it
  `early_stopping_patience` times in a row. A non-finite loss raises
  TrainingDiverged and leaves the last good checkpoint in place. With several
  processes every process calls this; only process 0 writes result files,
  checkpoints are collective.

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
  hyper = optimizers.Hyperparameters(
      config.learning_rate, config.weight_decay, config.adam_beta1_inv)
  optimizer = optimizers.make_optimizer(*hyper)  # Checks them; the state.
  hyper = hyper.as_arrays()
  state = initial_state(phases[0].model, optimizer, seeds, layout)
  accumulator = metrics_lib.Accumulator(R)
  best = validation.BestTracker(R, layout.stacked)
  early = validation.EarlyStopping(R, config.early_stopping_accuracy,
                                  config.early_stopping_patience)
  checkpointer, jsonl_R, start_step = None, [], 0
  if run_dir is not None:
    checkpointer = checkpointing.Checkpointer(f'{run_dir}/checkpoints')
    if primary:
      jsonl_R = [metrics_lib.JsonlWriter(f'{seed_dir}/metrics.jsonl')
                 for seed_dir in results.seed_dirs(run_dir, seeds)]
    start_step, state = _resume(checkpointer, state, accumulator, best,
                                early, jsonl_R, config.validate)
  buckets = length_buckets.make_buckets(
      curriculum.max_length, config.bucket_width, config.length_multiple)
  phase_ends = np.cumsum([phase.steps for phase in phases])
  total = int(phase_ends[-1])
  compiled: dict[tuple[int, int], Callable] = {}
  phase_rates = [phase.step_dropout() for phase in phases]

  def step_fn(phase_index: int, bucket: int):
    if (phase_index, bucket) not in compiled:
      compiled[phase_index, bucket] = make_step_program(
          phases[phase_index].model, task, encoding,
          config.batch_size, buckets, bucket, layout)
    return compiled[phase_index, bucket]

  seed_R = np.array(seeds, np.int32)
  sample_lengths = jax.jit(jax.vmap(lambda step: jax.vmap(
      lambda seed: curriculum.sample(step_keys(seed, step)[0], step))(seed_R)))

  def per_seed(values_R):
    return values_R if layout.stacked else values_R[0]

  def save(step: int) -> None:
    checkpointer.save(state, step, extra={'unlogged': accumulator.to_json(),
                                          'best': best.to_json(),
                                          'early_stopping': early.to_json()})

  bar = tqdm.tqdm(total=total, initial=start_step,
                  disable=not (progress and primary), unit='step',
                  dynamic_ncols=True)
  interval_start, interval_steps = time.perf_counter(), 0
  run_start, steps_run = time.perf_counter(), 0
  with _StopSignals() as stop:
    try:
      for step in range(start_step, start_step if early.stopped else total):
        if (step - start_step) % _LENGTH_BLOCK == 0:
          block = np.arange(step, min(step + _LENGTH_BLOCK, total))
          lengths_KR = np.asarray(sample_lengths(jnp.asarray(block,
                                                             jnp.int32)))
          which_KR = np.searchsorted(buckets, lengths_KR).astype(np.int32)
        length_R = lengths_KR[(step - start_step) % _LENGTH_BLOCK]
        which_R = which_KR[(step - start_step) % _LENGTH_BLOCK]
        phase_index = int(np.searchsorted(phase_ends, step, side='right'))
        phase = phases[phase_index]
        bucket = length_buckets.bucket_for(int(length_R.max()), buckets)
        state, step_metrics = step_fn(phase_index, bucket)(
            state, per_seed(length_R), per_seed(which_R), per_seed(seed_R),
            np.int32(step), hyper, phase_rates[phase_index])
        accumulator.add(step_metrics)
        interval_steps += 1
        steps_run += 1
        done = step + 1
        is_last = done == total
        records_R: list[dict[str, Any] | None] = [None] * R
        stop_early = False
        if done % config.log_every == 0 or is_last:
          elapsed = time.perf_counter() - interval_start
          records_R = [{'step': done, **means,
                        'steps_per_second': interval_steps / max(elapsed, 1e-9),
                        'mode': phase.name} for means in accumulator.means()]
          accumulator.reset()
          interval_start, interval_steps = time.perf_counter(), 0
          for seed, record in zip(seeds, records_R):
            if not math.isfinite(record['train_loss']):
              raise TrainingDiverged(
                  f'Non-finite training loss at step {done}'
                  f'{f" (seed {seed})" if layout.stacked else ""}; the last'
                  ' good checkpoint is kept. Try a smaller --lr.')
        if config.validate and (done % config.validate_every == 0 or is_last):
          params = sharding.to_local_device(state.params)
          accuracy_R = [validation.accuracy(
              phase.model, layout.seed_slice(params, r), task, encoding,
              config.validation_length, config.batch_size, seed)
                        for r, seed in enumerate(seeds)]
          improved_R = best.update(accuracy_R, done, state)
          if early.update(accuracy_R) and not is_last:
            stop_early = True
          for r in range(R):
            records_R[r] = {**(records_R[r] or {'step': done}),
                            'validation_accuracy': accuracy_R[r]}
            if improved_R[r]:
              records_R[r]['best'] = True
          if improved_R.any() and checkpointer is not None:
            checkpointer.save(best.state, done, best=True,
                              extra=best.to_json())
        if stop_early:  # The last line: this interval's means too.
          means_R = (accumulator.means() if 'train_loss' not in
                     (records_R[0] or {}) else [{}] * R)
          records_R = [{**(record or {'step': done}), **means,
                        'mode': phase.name, 'early_stop': True}
                       for record, means in zip(records_R, means_R)]
          accumulator.reset()
          logging.info('Early stopping at step %d: validation accuracy >= %g'
                       ' for %d validations in a row.', done,
                       config.early_stopping_accuracy,
                       config.early_stopping_patience)
        for seed, record, log in itertools.zip_longest(seeds, records_R,
                                                       jsonl_R):
          if record is None:
            continue
          if log is not None:
            log(record)
          if log_fn is not None:
            log_fn({**record, 'seed': seed} if layout.stacked else record)
        if records_R[0] is not None and 'train_loss' in records_R[0]:
          bar.set_postfix(loss=f"{records_R[0]['train_loss']:.4f}",
                          acc=f"{records_R[0]['train_accuracy']:.3f}",
                          refresh=False)
        bar.update(1)
        # A signal to any process stops every process at the same step.
        stopping = sharding.any_process(
            stop.signal_name is not None) and not is_last
        if checkpointer is not None and (
            done % config.checkpoint_every == 0 or is_last or stopping
            or stop_early):
          if not _all_finite(state.params):
            raise TrainingDiverged(
                f'Non-finite parameters at step {done}; the last good'
                ' checkpoint is kept. Try a smaller --lr.')
          save(done)
        if stopping:
          raise Interrupted(done, stop.signal_name or 'a signal to another'
                            ' process')
        if stop_early:
          break
    except KeyboardInterrupt:
      # Outside a step (e.g. while compiling): save the state's own step.
      if checkpointer is not None and _all_finite(state.params):
        save(int(np.reshape(state.step.addressable_shards[0].data, -1)[0]))
      raise
    finally:
      bar.close()
      if checkpointer is not None:
        checkpointer.close()
  steps_per_second = steps_run / max(time.perf_counter() - run_start, 1e-9)
  final = sharding.to_local_device(state)
  use_best = config.validate and best.state is not None
  evaluated = sharding.to_local_device(best.state.params) if use_best else None
  return [TrainResult(
      state=layout.seed_slice(final, r),
      eval_params=layout.seed_slice(
          evaluated if use_best else final.params, r),
      eval_step=best.step_R[r] if use_best else total,
      best_validation_accuracy=best.accuracy_R[r],
      compiled_programs=len(compiled), steps_per_second=steps_per_second)
          for r in range(R)]


def _resume(checkpointer: checkpointing.Checkpointer, state,
            accumulator: metrics_lib.Accumulator,
            best: validation.BestTracker,
            early: validation.EarlyStopping,
            jsonl_R: Sequence[metrics_lib.JsonlWriter], validate: bool):
  """`(start step, state)`: the newest checkpoint's, with the metric sums
  and the validation tracker it saved, and every metrics log cut back to it
  (the steps after it run again); with no checkpoint, step 0 and empty logs."""
  if checkpointer.latest_step() is None:
    # A fresh start: lines an earlier, uncheckpointed attempt logged go.
    for log in jsonl_R:
      log.truncate_after(-1)
    return 0, state
  step, state, extra = checkpointer.restore(state)
  accumulator.load_json(extra['unlogged'])
  early.load_json(extra.get('early_stopping', {}))
  if validate:
    best.load_json(extra['best'])
    best_extra = None
    if checkpointer.best_step() is not None:
      checkpointer.discard_best_after(step)
      try:
        _, best.state, best_extra = checkpointer.restore(state, best=True)
      except checkpointing.CheckpointError:
        pass
    validated = any(s is not None for s in extra['best']['step'])
    if best_extra != extra['best'] and validated:
      logging.warning('No readable best checkpoint matches step %d; the best'
                      ' validated state is chosen afresh from the next'
                      ' validation on.', step)
      best.reset(len(best.accuracy_R))
  for log in jsonl_R:
    log.truncate_after(step)
  logging.info('Resuming from step %d', step)
  return step, state


class _StopSignals:
  """Within the block, SIGINT and SIGTERM set `signal_name` instead of
  stopping the process, so the loop can finish its step and checkpoint. A
  second signal stops at once (KeyboardInterrupt). Only the main thread can
  take signals; elsewhere this does nothing."""

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signal_name is not None:
      raise KeyboardInterrupt
    self.signal_name = signal.Signals(signum).name
    logging.warning('%s: stopping after this step with a checkpoint'
                    ' (send it again to stop at once).', self.signal_name)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    return False
