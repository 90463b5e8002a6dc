"""The Python API: `train_and_evaluate(config, run_dir)` and `evaluate_run(run_dir)`.

  from experiments import config, run
  cfg = config.ExperimentConfig.from_json('out/my_run/config.json')
  result = run.train_and_evaluate(cfg, 'out/my_run')
  print(result.evaluations[0]['score'])

`train_and_evaluate` owns the run folder: it writes `config.json` (the
config and the code version), trains every seed (resuming from the folder's
checkpoints when it holds the same config), evaluates each seed and writes
`eval.json` and `accuracy_vs_length.png` (in `seed_<s>/` for several seeds,
plus `summary.json`/`.md` over them). `evaluate_run` re-scores a saved run
with the same payload schema.
"""

import dataclasses
import functools
import math
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from absl import logging

from experiments import compilation_cache
from experiments import config as config_lib
from tasks import task as task_lib
from training import checkpointing
from training import length_buckets
from training import metrics
from training import optimizers
from training import range_evaluation
from training import results
from training import sharding
from training import training

# config.json's layout; a folder with another (or none) was written by
# another version of the code.
CONFIG_SCHEMA = 2
ConfigError = config_lib.ConfigError


@dataclasses.dataclass(frozen=True)
class WandbOptions:
  """Where a run logs on Weights & Biases (`--use_wandb`)."""

  project: str | None = None
  group: str | None = None
  name: str | None = None


@dataclasses.dataclass(frozen=True)
class RunResult:
  """What a run computed: one eval.json payload and accuracy curve per seed,
  and the summary over seeds (None for one seed)."""

  run_dir: str
  config: config_lib.ExperimentConfig  # With the seed that was used.
  evaluations: tuple[dict[str, Any], ...]
  accuracy_per_seed: tuple[np.ndarray, ...]  # Index i is length i + 1.
  summary: dict[str, Any] | None
  steps_per_second: float | None = None  # Training steps of all seeds.

  @property
  def payload(self) -> dict[str, Any]:
    """eval.json's content for one seed, summary.json's for several."""
    return self.evaluations[0] if self.summary is None else self.summary


def train_and_evaluate(config: config_lib.ExperimentConfig, run_dir: str, *,
                       overwrite: bool = False, progress: bool = True,
                       tensorboard: bool = False,
                       wandb: WandbOptions | None = None,
                       mesh: jax.sharding.Mesh | None = None) -> RunResult:
  """Trains `config` in `run_dir` (resuming it) and scores every seed.

  Raises ConfigError, before any training, for a bad config, a folder that
  holds another config or a finished run (unless `overwrite`), or one that
  cannot be written.
  """
  config.validate()
  compilation_cache.enable_default()
  t = config.training
  mesh = mesh or make_mesh(t.num_seeds, t.batch_size)
  config = _prepare_run_dir(config, run_dir, overwrite, mesh)
  setup = training_setup(config)
  wandb_run = _start_wandb(wandb, config, run_dir)
  try:
    result = _train_and_score(config, run_dir, setup, mesh, progress,
                              _writers(run_dir, tensorboard, wandb_run))
  except BaseException:
    if wandb_run is not None:
      wandb_run.finish(exit_code=1)
    raise
  if wandb_run is not None:
    summary = _wandb_summary(result)
    wandb_run.summary.update(summary)
    wandb_run.log({'accuracy_vs_length': _wandb_line_plot(
        summary['accuracy_per_length'])})
    wandb_run.finish()
  return result


def _train_and_score(config: config_lib.ExperimentConfig, run_dir: str,
                     setup: 'TrainingSetup', mesh, progress: bool, log_fn
                     ) -> RunResult:
  """Trains every seed, then scores each one's evaluated params."""
  t = config.training
  start = time.perf_counter()
  trained = training.train_seeds(
      setup.task, setup.phases, config.encoding, setup.curriculum,
      setup.train_config, run_dir=run_dir, progress=progress, log_fn=log_fn,
      mesh=mesh)
  train_seconds = time.perf_counter() - start
  protocol = config.resolved_protocol()
  evaluation_programs = (1 if protocol == 'prefix' else len(
      length_buckets.make_buckets(config.evaluation.test_length,
                                  exact_bucket_width(config))))
  result = _score_seeds(
      config, run_dir, setup.phases[-1].model,
      [r.eval_params for r in trained], [r.eval_step for r in trained],
      [r.best_validation_accuracy for r in trained], stem='eval',
      plot_name='accuracy_vs_length', summary_stem='summary',
      extra={'train_seconds': train_seconds, 'compiled_programs': {
          'training': trained[0].compiled_programs,
          'validation': int(t.validate), 'evaluation': evaluation_programs}},
      label=(lambda seed, step: f'{config.architecture} (step {step})'))
  return dataclasses.replace(result,
                             steps_per_second=trained[0].steps_per_second)


@dataclasses.dataclass(frozen=True)
class TrainingSetup:
  """What the training loop takes, built from a config (seed settled)."""

  task: task_lib.Task
  phases: tuple[training.Phase, ...]
  curriculum: Any
  train_config: training.TrainConfig


def skips_padding(model_config) -> bool:
  """Whether the model's cost follows real lengths (see the registry)."""
  return bool(getattr(model_config, 'skips_padding', False))


def exact_bucket_width(config: config_lib.ExperimentConfig) -> int:
  """Lengths per compiled program of the exact evaluation: all of them for
  a model that skips padding."""
  if skips_padding(config.final_model):
    return config.evaluation.test_length
  return range_evaluation.EXACT_BUCKET_WIDTH


def exact_options(config: config_lib.ExperimentConfig) -> dict[str, int]:
  """`evaluate_exact`'s program sizes for this model. One that skips padding
  holds no length x length attention, so it takes 4x the rows per forward
  (the staircase chunk-2 model's evaluation to 200: 41 s -> 36 s)."""
  tokens = range_evaluation.TOKENS_PER_FORWARD
  return {'bucket_width': exact_bucket_width(config),
          'tokens_per_forward': (4 * tokens if skips_padding(config.final_model)
                                 else tokens)}


def training_setup(config: config_lib.ExperimentConfig) -> TrainingSetup:
  """The task, the phases' models, the curriculum and the loop's config."""
  t = config.training
  if t.seed is None:
    raise ValueError('training_setup needs a config with a seed.')
  phase_models = config.phase_models()
  # Models that skip padding need no length buckets: one training program.
  bucket_width = (t.curriculum.max_length if all(
      skips_padding(model) for _, model in phase_models) else t.bucket_width)
  return TrainingSetup(
      task=config.task.build(),
      phases=tuple(training.Phase(phase.name, phase.steps,
                                  *config.model_entry.build_for_training(model))
                   for phase, model in phase_models),
      curriculum=t.curriculum.build(),
      train_config=training.TrainConfig(
          seed=t.seed, num_seeds=t.num_seeds, batch_size=t.batch_size,
          learning_rate=t.learning_rate, weight_decay=t.weight_decay,
          adam_beta1_inv=t.adam_beta1_inv, validate=t.validate,
          validation_length=config.validation_length,
          validate_every=t.validate_every, log_every=t.log_every,
          checkpoint_every=t.checkpoint_every, bucket_width=bucket_width,
          early_stopping_accuracy=t.early_stopping_accuracy,
          early_stopping_patience=t.early_stopping_patience,
          length_multiple=math.lcm(*(model.length_multiple
                                     for _, model in phase_models))))


def evaluate_run(run_dir: str, *, test_length: int | None = None,
                 protocol: str | None = None,
                 num_strings: int | None = None,
                 checkpoint: str = 'auto') -> RunResult:
  """Re-scores every seed of a saved run: `eval_<protocol>_L<length>.json`
  (`..._N<strings>` when not 512 strings per length) and its plot (per
  seed), and `summary_eval_...` over seeds.

  `checkpoint`: 'best', 'latest' or 'auto' (best when the run validated).
  """
  config = load_run_config(run_dir)
  config = dataclasses.replace(config, evaluation=dataclasses.replace(
      config.evaluation,
      test_length=test_length or config.evaluation.test_length,
      protocol=protocol or config.evaluation.protocol,
      num_strings=num_strings or config.evaluation.num_strings))
  config.validate()
  t = config.training
  seeds = tuple(range(t.seed, t.seed + t.num_seeds))
  model = config.model_entry.build(config.final_model)
  optimizer = optimizers.make_optimizer(t.learning_rate, t.weight_decay,
                                        t.adam_beta1_inv)
  # Evaluation is per seed and unsharded: restore onto one device.
  layout = sharding.SeedLayout(
      t.num_seeds, sharding.make_mesh(t.num_seeds, jax.local_devices()[:1]))
  like = training.initial_state(model, optimizer, seeds, layout)
  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir,
                                                         'checkpoints'))
  use_best = checkpoint == 'best' or (
      checkpoint == 'auto' and checkpointer.best_step() is not None)
  step = checkpointer.best_step() if use_best else checkpointer.latest_step()
  if step is None:
    checkpointer.close()
    raise ConfigError(f'{run_dir} has no {"best " if use_best else ""}'
                      'checkpoint to evaluate.')
  try:
    step, state, extra = checkpointer.restore(like, best=use_best)
  finally:
    checkpointer.close()
  params = sharding.to_host(state.params)
  best = extra if use_best else extra.get('best', {})
  steps = best.get('step') if use_best else [step] * t.num_seeds
  accuracies = best.get('accuracy') or [None] * t.num_seeds
  protocol = config.resolved_protocol()
  stem = f'eval_{protocol}_L{config.evaluation.test_length}'
  if config.evaluation.num_strings != config_lib.EvaluationConfig.num_strings:
    stem += f'_N{config.evaluation.num_strings}'
  return _score_seeds(
      config, run_dir, model,
      [layout.seed_slice(params, i) for i in range(t.num_seeds)], steps,
      accuracies, stem=stem, plot_name=stem, summary_stem=f'summary_{stem}',
      extra={'train_seconds': None, 'compiled_programs': None},
      label=lambda seed, step: f'step {step}')


def load_run_config(run_dir: str) -> config_lib.ExperimentConfig:
  """The ExperimentConfig a run folder was trained with."""
  path = os.path.join(run_dir, 'config.json')
  if not os.path.exists(path):
    raise ConfigError(f'{run_dir!r} holds no config.json (not a run folder).')
  saved = config_lib.load_json_file(path)
  if saved.get('schema') != CONFIG_SCHEMA or 'config' not in saved:
    raise ConfigError(
        f'{run_dir} was written by another version of this code (its'
        ' config.json has no experiment config of this version); rerun with'
        ' --overwrite to start it afresh, or choose another --run_name.')
  return config_lib.ExperimentConfig.from_dict(saved['config'])


def make_mesh(num_seeds: int, batch_size: int) -> jax.sharding.Mesh:
  """Every device as a ('seed', 'data') mesh; the batch must split over data."""
  mesh = sharding.make_mesh(num_seeds)
  if batch_size % mesh.shape[sharding.DATA_AXIS]:
    raise ConfigError(
        f'--batch_size={batch_size} must be divisible by the'
        f' {mesh.shape[sharding.DATA_AXIS]} devices of the mesh\'s data axis'
        f' ({mesh.size} devices; --num_seeds={num_seeds} puts'
        f' gcd({num_seeds}, {mesh.size}) = {mesh.shape[sharding.SEED_AXIS]} on'
        ' the seed axis and the rest on the data axis).')
  return mesh


def _prepare_run_dir(config: config_lib.ExperimentConfig, run_dir: str,
                     overwrite: bool, mesh: jax.sharding.Mesh
                     ) -> config_lib.ExperimentConfig:
  """Checks the folder, settles the seed and writes config.json.

  Returns the config with its seed (the saved one when resuming, a random
  one for a new run without a seed).
  """
  t = config.training
  finished = os.path.join(run_dir,
                          'eval.json' if t.num_seeds == 1 else 'summary.json')
  if os.path.exists(finished) and not overwrite:
    raise ConfigError(f'{run_dir} holds a finished run; pass --overwrite to'
                      ' replace it or --run_name to choose another folder.')
  config_path = os.path.join(run_dir, 'config.json')
  overwrite = overwrite and os.path.isdir(run_dir)
  if os.path.exists(config_path) and not overwrite:
    saved = load_run_config(run_dir)
    if t.seed is None:
      config = _with_seed(config, saved.training.seed)
    differing = _differences(saved.to_dict(), config.to_dict())
    if differing:
      raise ConfigError(
          f'{run_dir} holds a run with another configuration'
          f' ({", ".join(differing)}); pass --overwrite or choose another'
          ' --run_name.')
  if config.training.seed is None:
    seed = int.from_bytes(os.urandom(4), 'little') % (2**31 - t.num_seeds + 1)
    config = _with_seed(config, int(sharding.from_primary(np.int32(seed))))
  # Every process has read the run folder before process 0 changes it.
  sharding.sync('read the run folder')
  if sharding.is_primary():
    try:
      if overwrite:
        shutil.rmtree(run_dir)
      os.makedirs(run_dir, exist_ok=True)
      results.write_json(config_path, {
          'schema': CONFIG_SCHEMA, 'config': config.to_dict(),
          'code_version': code_version(), 'backend': jax.default_backend(),
          'mesh': dict(mesh.shape), 'process_count': jax.process_count()})
    except OSError as e:
      raise ConfigError(f'cannot write the run folder {run_dir}: {e}'
                        ' (choose another --out_dir).') from None
    logging.info('Run folder: %s', run_dir)
  return config


def _with_seed(config, seed):
  return dataclasses.replace(config, training=dataclasses.replace(
      config.training, seed=seed))


def _differences(saved: dict, new: dict, prefix: str = '') -> list[str]:
  """Dotted paths of the fields where two config dicts differ."""
  out = []
  for key in sorted(set(saved) | set(new)):
    a, b = saved.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f'{prefix}{key}.')
    elif a != b:
      out.append(f'{prefix}{key}: {a!r} -> {b!r}')
  return out


@functools.cache
def code_version() -> dict[str, Any]:
  """This code's version: the package's, the git commit when there is one,
  and JAX's."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  try:
    package = metadata.version('recurrent-transformers-lengthgen')
  except metadata.PackageNotFoundError:
    package = None
  try:
    commit = subprocess.run(
        ['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10,
        check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    commit = None
  return {'package': package, 'git_commit': commit,
          'jax': jax.__version__}


def _start_wandb(options: WandbOptions | None, config, run_dir):
  """The wandb run, online or offline as wandb decides (`wandb login`,
  `WANDB_MODE`); ConfigError, before training, when it cannot start."""
  if options is None or not sharding.is_primary():
    return None
  try:
    import wandb  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConfigError('--use_wandb needs wandb: pip install wandb.') from None
  try:
    return wandb.init(project=options.project, group=options.group,
                      name=options.name or os.path.basename(run_dir),
                      config=config.to_dict(), dir=run_dir)
  except Exception as e:  # pylint: disable=broad-except
    reason = ' '.join(str(e).split())[:200]
    raise ConfigError(
        f'wandb could not start ({type(e).__name__}: {reason}); run `wandb'
        ' login`, or set WANDB_MODE=offline to log in the run folder.'
    ) from None


def _writers(run_dir: str, tensorboard: bool, wandb_run):
  """One `record -> None` for the optional writers (metrics.jsonl is the
  training loop's own), or None."""
  if not sharding.is_primary():
    return None
  writers: list[metrics.Writer] = []
  if wandb_run is not None:
    writers.append(metrics.WandbWriter(wandb_run))
  if tensorboard:
    try:
      writers.append(metrics.TensorBoardWriter(
          os.path.join(run_dir, 'tensorboard')))
    except ImportError:
      raise ConfigError('--tensorboard needs `pip install tensorboardX`.'
                        ) from None
  if not writers:
    return None

  def write_all(record):
    for write in writers:
      write(record)
  return write_all


def _wandb_summary(result: RunResult) -> dict[str, Any]:
  """What a sweep ranks by (`score`, the mean over seeds for several), the
  other scores, and accuracy per length as a table."""
  import wandb  # pylint: disable=g-import-not-at-top
  payload = result.payload
  several = result.summary is not None
  summary = {key: payload[key]['mean'] if several else payload[key]
             for key in ('score', 'ood_score', 'solved_up_to')}
  if several:
    summary.update({f'{key}_{stat}': payload[key][stat]
                    for key in ('score', 'ood_score') for stat in ('max', 'std')})
  seeds = [evaluation['seed'] for evaluation in result.evaluations]
  table = wandb.Table(columns=['length', 'accuracy', 'seed'], data=[
      [length + 1, float(accuracy), seed]
      for seed, accuracy_L in zip(seeds, result.accuracy_per_seed)
      for length, accuracy in enumerate(accuracy_L)])
  summary['accuracy_per_length'] = table
  return summary


def _wandb_line_plot(table):
  import wandb  # pylint: disable=g-import-not-at-top
  return wandb.plot.line(table, 'length', 'accuracy', stroke='seed',
                         title='accuracy against length')


def _score_seeds(config: config_lib.ExperimentConfig, run_dir: str, model,
                 params_R: Sequence[Any], steps_R: Sequence[int],
                 best_accuracy_R: Sequence[float | None], *, stem: str,
                 plot_name: str, summary_stem: str, extra: dict[str, Any],
                 label) -> RunResult:
  """Evaluates each seed's params; writes `<stem>.json` and the plot per
  seed, and the summary files over several seeds (process 0 only)."""
  t, e = config.training, config.evaluation
  seeds = tuple(range(t.seed, t.seed + t.num_seeds))
  task: task_lib.Task = config.task.build()
  protocol = config.resolved_protocol()
  evaluate = (range_evaluation.evaluate_prefix if protocol == 'prefix'
              else functools.partial(range_evaluation.evaluate_exact,
                                     **exact_options(config)))
  primary = sharding.is_primary()
  run_name = os.path.basename(os.path.normpath(run_dir))
  training_length = t.curriculum.max_length
  several = t.num_seeds > 1
  payloads, accuracies, summaries, curves = [], [], [], []
  for seed, seed_dir, params, step, best_accuracy in zip(
      seeds, results.seed_dirs(run_dir, seeds), params_R, steps_R,
      best_accuracy_R):
    start = time.perf_counter()
    accuracy_L = evaluate(model, params, task, config.encoding,
                          e.test_length, num_strings=e.num_strings)
    eval_seconds = time.perf_counter() - start
    summary = range_evaluation.summarize(accuracy_L, training_length)
    payload = {**summary.to_json(), 'protocol': protocol, 'seed': seed,
               'eval_step': step, 'best_validation_accuracy': best_accuracy,
               'training_length': training_length,
               'test_length': e.test_length, 'eval_seconds': eval_seconds,
               **extra}
    curve_label = f'seed {seed}, step {step}' if several else label(seed,
                                                                    step)
    if primary:
      results.plot_accuracy_vs_length(
          os.path.join(seed_dir, f'{plot_name}.png'),
          [(curve_label, accuracy_L)], training_length,
          f'{config.task.name}: {run_name}'
          + (f' (seed {seed})' if several else ''))
      results.write_json(os.path.join(seed_dir, f'{stem}.json'), payload)
    payloads.append(payload)
    accuracies.append(np.asarray(accuracy_L))
    summaries.append(summary)
    curves.append((curve_label, accuracy_L))
  over_seeds = None
  if several:
    over_seeds = {**range_evaluation.summarize_seeds(seeds, summaries),
                  'protocol': protocol, 'test_length': e.test_length,
                  'training_length': training_length,
                  'train_seconds': extra.get('train_seconds')}
    if primary:
      results.write_text(os.path.join(run_dir, f'{summary_stem}.md'),
                         results.summary_table(over_seeds))
      results.plot_accuracy_vs_length(
          os.path.join(run_dir, f'{plot_name}.png'), curves,
          training_length, f'{config.task.name}: {run_name}')
      results.write_json(os.path.join(run_dir, f'{summary_stem}.json'),
                         over_seeds)
  return RunResult(run_dir, config, tuple(payloads), tuple(accuracies),
                   over_seeds)
