"""CLI: train one configuration, evaluate its length generalization, save everything.

Accepts the original code's flags (names, meanings, defaults), so its README
command and the published sweep files run unchanged, e.g.

  python experiments/example.py --task parity_check --architecture my_staircase \
    --is_causal 1 --include_eos 0 --fix_staircase_size_forward 2 \
    --embed_size 64 --num_heads 8 --group_size 2 --num_recurrent_calls 2 \
    --batch_size 256 --lr 3.55e-4 --wd 1e-2 --second_training_steps 20000

or a named preset (explicit flags override it):

  python experiments/example.py --preset=cpu_demo

Results go to <out_dir>/<run_name>/: config.json, metrics.jsonl, eval.json,
accuracy_vs_length.png and checkpoints/. Rerunning an interrupted command
resumes from its last checkpoint.

`--num_seeds=R` trains seeds --seed .. --seed+R-1 together in one program;
each seed's metrics.jsonl, eval.json and plot go to <run>/seed_<s>/, and
<run>/ holds summary.json, summary.md (max, mean, std over seeds) and one plot
of every seed. Training uses every device (a ('seed', 'data') mesh, see
training/sharding.py); on several hosts, start the same command on each with
--coordinator_address, --num_processes and --process_id (or --distributed
where JAX detects the cluster): only process 0 writes result files.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from absl import app
from absl import flags
from absl import logging

from experiments import constants
from experiments import model_factory
from experiments import original_flags
from neural_networks import pure
from tasks import task as task_lib
from training import curriculum as curriculum_lib
from training import input_encoding
from training import length_buckets
from training import range_evaluation
from training import results
from training import sharding
from training import training

FLAGS = flags.FLAGS
_PRESET = flags.DEFINE_string(
    'preset', None, f'Named configuration: one of {sorted(constants.PRESETS)}.')
_RUN_NAME = flags.DEFINE_string(
    'run_name', None, 'Run folder name (default: built from the configuration).')
_EVAL_PROTOCOL = flags.DEFINE_enum(
    'eval_protocol', 'auto', ['auto', 'seed', 'prefix'],
    "'seed': the original protocol (512 fresh strings per length); 'prefix':"
    ' one pass scores every prefix (causal models reading the answer at the'
    " last input token); 'auto': prefix when it applies, else seed.")
_CHECKPOINT_EVERY = flags.DEFINE_integer('checkpoint_every', 1000,
                                         'Steps between checkpoints.')
_LOG_FREQUENCY = flags.DEFINE_integer('log_frequency', 100,
                                      'Steps between metrics.jsonl lines.')
_VALIDATE_EVERY = flags.DEFINE_integer('validate_every', 1000,
                                       'Steps between validations.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace a finished run with the same folder.')
_TENSORBOARD = flags.DEFINE_bool(
    'tensorboard', False, 'Also write TensorBoard events (needs tensorboardX).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar.')
_BUCKET_WIDTH = flags.DEFINE_integer(
    'bucket_width', 10,
    'Training lengths are padded up to multiples of this (rounded to the'
    ' chunk or block width): one compiled program per bucket. Smaller means'
    ' less padding and more programs.')
_NUM_SEEDS = flags.DEFINE_integer(
    'num_seeds', 1, 'Runs of this configuration trained together in one'
    ' program: seeds --seed, --seed+1, ..., each as it would train alone.')
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-host: host:port of process 0, for'
    ' jax.distributed.initialize.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Multi-host: number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'Multi-host: this process, 0..n-1.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-host: call jax.distributed.initialize(),'
    ' detecting the cluster (Cloud TPU, SLURM, Open MPI) for the three flags'
    ' above; implied by any of them.')
# Flags that do not change a run's results (a resumed run may differ in them).
_RUN_INDEPENDENT = ('seed', 'progress', 'overwrite', 'out_dir',
                    'coordinator_address', 'num_processes', 'process_id',
                    'distributed')


class ConfigError(ValueError):
  """A bad flag value or combination."""


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def _apply_preset() -> None:
  if _PRESET.value is None:
    return
  if _PRESET.value not in constants.PRESETS:
    raise ConfigError(f'--preset={_PRESET.value!r} is unknown; choose one of'
                      f' {sorted(constants.PRESETS)}.')
  for name, value in constants.PRESETS[_PRESET.value].items():
    if not FLAGS[name].present:
      FLAGS[name].value = value


def _check_flags() -> None:
  """Rejects bad values with a message naming the flag and what is allowed."""
  f = original_flags
  positive = {'batch_size': f.BATCH_SIZE, 'sequence_length': f.SEQUENCE_LENGTH,
              'test_length': f.TEST_LENGTH, 'embed_size': f.EMBED_SIZE,
              'num_heads': f.NUM_HEADS, 'group_size': f.GROUP_SIZE,
              'checkpoint_every': _CHECKPOINT_EVERY,
              'log_frequency': _LOG_FREQUENCY,
              'validate_every': _VALIDATE_EVERY,
              'bucket_width': _BUCKET_WIDTH}
  for name, holder in positive.items():
    if holder.value < 1:
      raise ConfigError(f'--{name} must be >= 1, got {holder.value}.')
  for name, holder in {'train_steps': f.TRAIN_STEPS,
                       'second_training_steps': f.SECOND_TRAINING_STEPS,
                       'computation_steps_mult': f.COMPUTATION_STEPS_MULT}.items():
    if holder.value < 0:
      raise ConfigError(f'--{name} must be >= 0, got {holder.value}.')
  for name, holder in {'lr': f.LR, 'wd': f.WD}.items():
    if not holder.value >= 0:
      raise ConfigError(f'--{name} must be >= 0, got {holder.value}.')
  if not 0 < f.ADAM_BETA1_INV.value <= 1:
    raise ConfigError(
        f'--adam_beta1_inv must be in (0, 1], got {f.ADAM_BETA1_INV.value}.')
  if not 0 <= f.DROPOUT.value < 1:
    raise ConfigError(f'--dropout must be in [0, 1), got {f.DROPOUT.value}.')
  for name, holder in {'is_causal': f.IS_CAUSAL,
                       'include_eos': f.INCLUDE_EOS}.items():
    if holder.value not in (0, 1):
      raise ConfigError(f'--{name} must be 0 or 1, got {holder.value}.')
  if f.NORM_TYPE.value not in ('prenorm', 'postnorm'):
    raise ConfigError(f'--norm_type must be prenorm or postnorm, got'
                      f' {f.NORM_TYPE.value!r}.')
  if f.TASK.value not in constants.TASK_BUILDERS:
    raise ConfigError(f'--task={f.TASK.value!r} is unknown; choose one of'
                      f' {sorted(constants.TASK_BUILDERS)}.')
  if f.ARCHITECTURE.value not in model_factory.ARCHITECTURES:
    raise ConfigError(f'--architecture={f.ARCHITECTURE.value!r} is unknown;'
                      f' choose one of {model_factory.ARCHITECTURES}.')
  if f.EMBED_SIZE.value % f.NUM_HEADS.value and f.ARCHITECTURE.value not in (
      'rnn', 'lstm'):
    raise ConfigError(f'--num_heads={f.NUM_HEADS.value} must divide'
                      f' --embed_size={f.EMBED_SIZE.value}.')
  if f.LOAD_PRETRAIN.value:
    raise ConfigError('--load_pretrain is not supported (nor was it by the'
                      ' original); resume by rerunning the same command.')
  if f.INCREASE_CURRICULUM.value:
    raise ConfigError('--increase_curriculum is not supported by this CLI yet;'
                      ' use training.curriculum.RegularIncreaseCurriculum.')
  if f.COMPUTATION_STEPS_MULT.value and not f.INCLUDE_EOS.value:
    raise ConfigError('--computation_steps_mult needs --include_eos=1.')
  if f.VALIDATION_LENGTH.value is not None and not (
      1 <= f.VALIDATION_LENGTH.value <= f.SEQUENCE_LENGTH.value):
    raise ConfigError('--validation_length must be in [1, --sequence_length='
                      f'{f.SEQUENCE_LENGTH.value}] (validation never uses'
                      ' lengths beyond the training range).')
  if _NUM_SEEDS.value < 1:
    raise ConfigError(f'--num_seeds must be >= 1, got {_NUM_SEEDS.value}.')
  if f.SEED.value is not None and not (
      0 <= f.SEED.value <= 2**31 - _NUM_SEEDS.value):
    raise ConfigError(f'--seed must be in [0, 2**31 - --num_seeds], got'
                      f' {f.SEED.value}.')
  if f.TEST_LENGTH.value <= f.SEQUENCE_LENGTH.value:
    raise ConfigError(f'--test_length={f.TEST_LENGTH.value} must exceed'
                      f' --sequence_length={f.SEQUENCE_LENGTH.value} to'
                      ' measure length generalization.')
  if model_factory.is_staircase(f.model_flags()):
    if f.SECOND_TRAINING_STEPS.value > 0:
      if not f.IS_CAUSAL.value:
        raise ConfigError('Staircase mode (--second_training_steps > 0) needs'
                          ' --is_causal=1.')
      if f.FIX_STAIRCASE_SIZE_FORWARD.value < 1:
        raise ConfigError('--fix_staircase_size_forward (chunk size) must be'
                          ' >= 1 in staircase mode, got'
                          f' {f.FIX_STAIRCASE_SIZE_FORWARD.value}.')
    if f.STAIRCASE_CACHE_STEPS.value < -1:
      raise ConfigError('--staircase_cache_steps must be -1 (all), 0 (none) or'
                        f' a count >= 1, got {f.STAIRCASE_CACHE_STEPS.value}.')


def _check_distributed_flags() -> None:
  if _NUM_PROCESSES.value is not None and _NUM_PROCESSES.value < 1:
    raise ConfigError(
        f'--num_processes must be >= 1, got {_NUM_PROCESSES.value}.')
  if _PROCESS_ID.value is not None and not (
      0 <= _PROCESS_ID.value < (_NUM_PROCESSES.value or 2**31)):
    raise ConfigError(f'--process_id must be in [0, --num_processes), got'
                      f' {_PROCESS_ID.value}.')


def _initialize_distributed() -> None:
  """jax.distributed.initialize, before anything uses a device."""
  explicit = (_COORDINATOR_ADDRESS.value, _NUM_PROCESSES.value,
              _PROCESS_ID.value)
  if not _DISTRIBUTED.value and all(v is None for v in explicit):
    return
  try:
    jax.distributed.initialize(*explicit)
  except (ValueError, RuntimeError, TypeError) as e:
    message = ' '.join(str(e).split())
    raise ConfigError(
        'jax.distributed.initialize failed (--coordinator_address,'
        f' --num_processes, --process_id, --distributed): {message}') from None


def _default_run_name(seed_label: str) -> str:
  f = original_flags
  m = f.model_flags()
  parts = [m.architecture, f.TASK.value, f'd{m.embed_size}']
  if m.architecture not in ('rnn', 'lstm'):
    parts.append(f'h{m.num_heads}')
  if model_factory.is_staircase(m):
    parts += [f'g{m.group_size}', f'p{m.num_recurrent_calls or "-"}',
              f'c{m.fix_staircase_size_forward}']
  elif m.architecture == 'brt':
    parts += [f'l{m.num_layers}', f'r{m.recurrent_layer_index}',
              f's{m.num_state_vectors or m.chunk_size}', f'c{m.chunk_size}']
    if m.brt_variant != 'seed' or m.brt_options:
      parts.append(m.brt_variant + ''.join('-' + str(v) for _, v in m.brt_options))
  elif m.num_layers:
    parts.append(f'l{m.num_layers}')
  parts += [f'b{f.BATCH_SIZE.value}', f'lr{f.LR.value:g}',
            f'steps{f.TRAIN_STEPS.value}+{f.SECOND_TRAINING_STEPS.value}',
            seed_label]
  return '_'.join(parts)


def _flag_values() -> dict[str, object]:
  names = sorted({fl.name for fl in FLAGS.get_key_flags_for_module(sys.argv[0])}
                 | {fl.name for fl in FLAGS.get_key_flags_for_module(
                     original_flags)})
  return {name: FLAGS[name].value for name in names}


class Setup(NamedTuple):
  """Everything a run needs, built from the flags."""

  task: task_lib.Task
  encoding: input_encoding.InputEncoding
  models: dict[str, pure.PureModel]
  model_configs: dict[str, str]
  train_config: training.TrainConfig
  curriculum: curriculum_lib.Curriculum
  final_mode: str  # The mode of the last training step (evaluated).
  protocol: str  # The resolved evaluation protocol.


def build_setup(seed: int, num_seeds: int = 1) -> Setup:
  """Task, models, training and evaluation settings from the flag values."""
  f = original_flags
  task = constants.build_task(f.TASK.value, **f.task_kwargs())
  encoding = input_encoding.InputEncoding(bool(f.INCLUDE_EOS.value),
                                          f.COMPUTATION_STEPS_MULT.value)
  model_flags = f.model_flags()
  staircase_arch = model_factory.is_staircase(model_flags)
  modes = (('parallel',) if f.SECOND_TRAINING_STEPS.value == 0 else
           ('parallel', 'staircase') if f.TRAIN_STEPS.value > 0 else
           ('staircase',))
  vocab_size = encoding.vocab_size(task)
  try:
    models = model_factory.build_models(model_flags, vocab_size,
                                        task.output_size, modes)
    model_configs = {mode: repr(model_factory.model_config(
        model_flags, vocab_size, task.output_size,
        mode if staircase_arch else 'staircase')) for mode in models}
  except ValueError as e:
    raise ConfigError(str(e)) from None
  if (model_flags.architecture == 'brt' and model_flags.dropout > 0
      and not model_factory.model_config(model_flags, vocab_size,
                                         task.output_size).apply_dropout):
    logging.warning('--dropout=%g is ignored by brt, as in the original;'
                    ' pass --brt_apply_dropout to use it.', model_flags.dropout)
  train_config = training.TrainConfig(
      seed=seed, num_seeds=num_seeds, batch_size=f.BATCH_SIZE.value,
      train_steps=f.TRAIN_STEPS.value,
      second_training_steps=f.SECOND_TRAINING_STEPS.value,
      learning_rate=f.LR.value, weight_decay=f.WD.value,
      adam_beta1_inv=f.ADAM_BETA1_INV.value, validate=f.VALIDATE.value,
      validation_length=f.VALIDATION_LENGTH.value or f.SEQUENCE_LENGTH.value,
      validate_every=_VALIDATE_EVERY.value, log_every=_LOG_FREQUENCY.value,
      checkpoint_every=_CHECKPOINT_EVERY.value,
      bucket_width=_BUCKET_WIDTH.value,
      length_multiple=model_factory.length_multiple(model_flags, models))
  curriculum = curriculum_lib.UniformCurriculum(
      tuple(range(1, f.SEQUENCE_LENGTH.value + 1)))
  final_mode = training.mode_at(train_config.total_steps - 1, train_config,
                                models)
  protocol = _EVAL_PROTOCOL.value
  prefix_ok = not encoding.include_eos and model_factory.is_causal(model_flags)
  if protocol == 'prefix' and not prefix_ok:
    raise ConfigError('--eval_protocol=prefix needs a causal model'
                      ' (--is_causal=1, or an RNN) and --include_eos=0.')
  if protocol == 'auto':
    protocol = 'prefix' if prefix_ok else 'seed'
  return Setup(task, encoding, models, model_configs, train_config,
               curriculum, final_mode, protocol)


def _seed_label(seed: int | None, num_seeds: int) -> str:
  if num_seeds == 1:
    return f'seed{"random" if seed is None else seed}'
  if seed is None:
    return f'seedsrandom-x{num_seeds}'
  return f'seeds{seed}-{seed + num_seeds - 1}'


def _make_mesh(num_seeds: int) -> jax.sharding.Mesh:
  """Every device as a ('seed', 'data') mesh; the batch must split over data."""
  mesh = sharding.make_mesh(num_seeds)
  batch_size = original_flags.BATCH_SIZE.value
  if batch_size % mesh.shape[sharding.DATA_AXIS]:
    raise ConfigError(
        f'--batch_size={batch_size} must be divisible by the'
        f' {mesh.shape[sharding.DATA_AXIS]} devices of the mesh\'s data axis'
        f' ({mesh.size} devices; --num_seeds={num_seeds} puts'
        f' gcd({num_seeds}, {mesh.size}) = {mesh.shape[sharding.SEED_AXIS]} on'
        ' the seed axis and the rest on the data axis).')
  return mesh


def run() -> dict[str, object]:
  """Trains, evaluates and writes the run folder.

  Returns eval.json's content (one seed) or summary.json's (several).
  """
  _apply_preset()
  _check_flags()
  f = original_flags
  num_seeds = _NUM_SEEDS.value
  mesh = _make_mesh(num_seeds)
  primary = sharding.is_primary()
  run_name = _RUN_NAME.value or _default_run_name(
      _seed_label(f.SEED.value, num_seeds))
  run_dir = os.path.join(f.OUT_DIR.value, run_name)
  config_path = os.path.join(run_dir, 'config.json')
  finished_path = os.path.join(
      run_dir, 'eval.json' if num_seeds == 1 else 'summary.json')
  flag_values = _flag_values()
  if os.path.exists(finished_path) and not _OVERWRITE.value:
    raise ConfigError(f'{run_dir} holds a finished run; pass --overwrite to'
                      ' replace it or --run_name to choose another folder.')
  overwrite = _OVERWRITE.value and os.path.isdir(run_dir)
  seed = f.SEED.value
  if os.path.exists(config_path) and not overwrite:
    saved = _load_json(config_path)
    # A flag added since the run started counts as its default.
    differing = [k for k in flag_values if k not in _RUN_INDEPENDENT and
                 saved['flags'].get(k, FLAGS[k].default) != flag_values[k]]
    if differing:
      raise ConfigError(
          f'{run_dir} holds a run with different flags'
          f' ({", ".join("--" + k for k in differing)}); pass --overwrite or'
          ' choose another --run_name.')
    seed = saved['seed']
  if seed is None:
    seed = int.from_bytes(os.urandom(4), 'little') % (2**31 - num_seeds + 1)
    seed = int(sharding.from_primary(np.int32(seed)))

  setup = build_setup(seed, num_seeds)
  task, encoding, models = setup.task, setup.encoding, setup.models
  train_config, protocol = setup.train_config, setup.protocol
  seeds = train_config.seeds
  model_flags = f.model_flags()
  # Every process has read the run folder before process 0 changes it.
  sharding.sync('read the run folder')
  if primary:
    if overwrite:
      shutil.rmtree(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    results.write_json(config_path, {
        'flags': flag_values, 'seed': seed, 'seeds': list(seeds),
        'run_name': run_name, 'task': repr(task),
        'model_config': setup.model_configs,
        'train_config': vars(train_config), 'eval_protocol': protocol,
        'jax_version': jax.__version__, 'backend': jax.default_backend(),
        'mesh': dict(mesh.shape), 'process_count': jax.process_count()})
    print(f'Run folder: {run_dir}')
  log_fn = _make_loggers(run_dir, run_name, flag_values) if primary else None
  start = time.perf_counter()
  trained = training.train_seeds(task, models, encoding, setup.curriculum,
                                 train_config, run_dir=run_dir,
                                 progress=_PROGRESS.value, log_fn=log_fn,
                                 mesh=mesh)
  train_seconds = time.perf_counter() - start

  evaluate = (range_evaluation.evaluate_prefix if protocol == 'prefix'
              else range_evaluation.evaluate_exact)
  payloads, summaries, curves = [], [], []
  for seed_i, seed_dir, result in zip(
      seeds, results.seed_dirs(run_dir, seeds), trained):
    start = time.perf_counter()
    accuracy_L = evaluate(models[setup.final_mode], result.eval_params, task,
                          encoding, f.TEST_LENGTH.value)
    eval_seconds = time.perf_counter() - start
    summary = range_evaluation.summarize(accuracy_L, f.SEQUENCE_LENGTH.value)
    payload = {**summary.to_json(), 'protocol': protocol, 'seed': seed_i,
               'eval_step': result.eval_step,
               'best_validation_accuracy': result.best_validation_accuracy,
               'training_length': f.SEQUENCE_LENGTH.value,
               'test_length': f.TEST_LENGTH.value,
               'train_seconds': train_seconds, 'eval_seconds': eval_seconds,
               'compiled_programs': {
                   'training': result.compiled_programs,
                   'validation': int(train_config.validate),
                   'evaluation': (1 if protocol == 'prefix' else len(
                       length_buckets.make_buckets(
                           f.TEST_LENGTH.value,
                           range_evaluation.EXACT_BUCKET_WIDTH)))}}
    label = f'{model_flags.architecture} (step {result.eval_step})'
    if num_seeds > 1:
      label = f'seed {seed_i}, step {result.eval_step}'
    if primary:
      results.plot_accuracy_vs_length(
          os.path.join(seed_dir, 'accuracy_vs_length.png'),
          [(label, accuracy_L)], f.SEQUENCE_LENGTH.value,
          f'{f.TASK.value}: {run_name}'
          + (f' (seed {seed_i})' if num_seeds > 1 else ''))
      results.write_json(os.path.join(seed_dir, 'eval.json'), payload)
      if num_seeds == 1:
        _print_summary(payload, accuracy_L, seed_dir)
    payloads.append(payload)
    summaries.append(summary)
    curves.append((label, accuracy_L))
  if num_seeds == 1:
    return payloads[0]
  over_seeds = {**range_evaluation.summarize_seeds(seeds, summaries),
                'protocol': protocol, 'test_length': f.TEST_LENGTH.value,
                'training_length': f.SEQUENCE_LENGTH.value,
                'train_seconds': train_seconds}
  if primary:
    table = results.summary_table(over_seeds)
    results.write_text(os.path.join(run_dir, 'summary.md'), table)
    results.plot_accuracy_vs_length(
        os.path.join(run_dir, 'accuracy_vs_length.png'), curves,
        f.SEQUENCE_LENGTH.value, f'{f.TASK.value}: {run_name}')
    results.write_json(os.path.join(run_dir, 'summary.json'), over_seeds)
    print(f'\n{num_seeds} seeds ({protocol} protocol):\n{table}'
          f'Results: {run_dir}')
  return over_seeds


def _make_loggers(run_dir, run_name, flag_values):
  loggers, wandb = [], None
  if original_flags.USE_WANDB.value:
    try:
      import wandb  # pylint: disable=g-import-not-at-top
    except ImportError:
      # Published sweep commands pass --use_wandb; they still run, logging to
      # the run folder only.
      print('warning: --use_wandb ignored: wandb is not installed'
            ' (pip install wandb); metrics are in metrics.jsonl.',
            file=sys.stderr)
      wandb = None
  if wandb is not None:
    wandb_run = wandb.init(
        project=original_flags.WANDB_PROJECT.value,
        group=original_flags.WANDB_GROUP.value,
        name=original_flags.WANDB_DISPLAY_NAME.value or run_name,
        config=flag_values, dir=run_dir,
        mode=os.environ.get('WANDB_MODE', 'offline'))
    loggers.append(lambda record: wandb_run.log(record, step=record['step']))
  if _TENSORBOARD.value:
    try:
      import tensorboardX  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ConfigError('--tensorboard needs `pip install tensorboardX`.') from None
    writer = tensorboardX.SummaryWriter(os.path.join(run_dir, 'tensorboard'))

    def tb_log(record):
      for k, v in record.items():
        if isinstance(v, (int, float)) and k != 'step':
          writer.add_scalar(k, v, record['step'])
      writer.flush()
    loggers.append(tb_log)
  if not loggers:
    return None

  def log_all(record):
    if 'seed' in record:  # One of several seeds: its own names.
      prefix = f"seed_{record['seed']}/"
      record = {'step': record['step'], **{
          prefix + k: v for k, v in record.items()
          if k not in ('step', 'seed')}}
    for log in loggers:
      log(record)
  return log_all


def _load_json(path):
  with open(path) as fh:
    return json.load(fh)


def _print_summary(payload, accuracy_L, run_dir) -> None:
  L = payload['training_length']
  marks = [m for m in (L, L + 1, 2 * L, 100, 200, 500, len(accuracy_L))
           if m <= len(accuracy_L)]
  print(f'\nLength generalization ({payload["protocol"]} protocol,'
        f' checkpoint of step {payload["eval_step"]}):')
  for m in sorted(set(marks)):
    print(f'  length {m:4d}: accuracy {accuracy_L[m - 1]:.3f}')
  print(f'  score {payload["score"]:.4f} ({payload["score_definition"]})')
  print(f'  out-of-distribution score {payload["ood_score"]:.4f}'
        f' ({payload["ood_score_definition"]})')
  print(f'  accuracy >= 0.99 for every length up to {payload["solved_up_to"]}')
  print(f'Results: {run_dir}')


def main(argv: Sequence[str]) -> None:
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    _check_distributed_flags()
    _initialize_distributed()
    run()
  except (ConfigError, training.TrainingDiverged) as e:
    _fail(str(e))
  except KeyboardInterrupt:
    _fail('interrupted; rerun the same command to resume.')


if __name__ == '__main__':
  app.run(main)
