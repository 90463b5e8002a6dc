"""What the command-line tools share: one `error:` line for bad input, the
logs they show, default run names and the printed summary."""

import dataclasses
import json
import logging as std_logging
import os
import statistics
import sys
from collections.abc import Callable, Sequence

from absl import app
from absl import flags
from absl import logging

from experiments import compilation_cache
from experiments import config as config_lib
from experiments import run as run_lib
from training import checkpointing
from training import results
from training import training

FLAGS = flags.FLAGS
_COMPILATION_CACHE_DIR = flags.DEFINE_string(
    'compilation_cache_dir', compilation_cache.DEFAULT_DIR,
    'Folder of JAX\'s persistent compilation cache, so that a rerun compiles'
    ' nothing; empty turns the cache off.')
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This repository's packages, whose INFO logs the CLIs show.
_OURS = tuple(os.path.join(_REPO, package) + os.sep for package in (
    'experiments', 'training', 'neural_networks', 'tasks'))


def fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a bad flag value given as one `error:` line."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    fail(' '.join(str(e).split()))


class _Format(std_logging.Formatter):
  """Our INFO lines as plain text, our warnings as `warning: ...`. Other
  libraries' warnings and errors are `warning:` lines too: the one `error:`
  line of a failed command is ours."""

  def format(self, record):
    message = record.getMessage()
    if record.levelno >= std_logging.WARNING:
      if record.pathname.startswith(_OURS):
        return f'{record.levelname.lower()}: {message}'
      return f'warning: {record.name}: {" ".join(message.split())[:300]}'
    return message


def _shown(record: std_logging.LogRecord) -> bool:
  """Our INFO lines and everyone's warnings, except orbax's complaints
  about a damaged checkpoint, which `training.checkpointing` reports."""
  if record.pathname.startswith(_OURS):
    return True
  if os.sep + 'orbax' + os.sep in record.pathname:
    return record.levelno >= std_logging.CRITICAL
  return record.levelno >= std_logging.WARNING


def _show_our_logs() -> None:
  """INFO logs of this repository's code (e.g. 'Resuming from step N'), and
  warnings of everything; orbax's INFO chatter stays hidden."""
  if FLAGS['verbosity'].present:
    return
  logging.set_verbosity(logging.INFO)
  handler = logging.get_absl_handler()
  handler.setFormatter(_Format())
  handler.addFilter(_shown)


def call(main: Callable[[Sequence[str]], None], argv: Sequence[str],
         interrupted: type[BaseException] = training.Interrupted) -> None:
  """`main(argv)` with bad input, divergence and interruption given as one
  line and an exit status, never a traceback."""
  if len(argv) > 1:
    fail(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    main(argv)
  except (config_lib.ConfigError, checkpointing.CheckpointError,
          training.TrainingDiverged) as e:
    fail(str(e))
  except interrupted as e:
    print(f'error: stopped by {e.signal_name}: saved a checkpoint at step'
          f' {e.step}; rerun the same command to resume.', file=sys.stderr)
    sys.exit(128 + (15 if e.signal_name == 'SIGTERM' else 2))
  except KeyboardInterrupt:
    fail('interrupted; rerun the same command to resume.')


def run(main: Callable[[Sequence[str]], None]) -> None:
  """`app.run(main)` through `parse_flags` and `call`."""

  def wrapped(argv):
    _show_our_logs()

    def main_with_cache(argv):
      compilation_cache.enable(_COMPILATION_CACHE_DIR.value)
      main(argv)

    call(main_with_cache, argv)

  app.run(wrapped, flags_parser=parse_flags)


def default_run_name(config: config_lib.ExperimentConfig) -> str:
  """`<architecture>_<task>_<model tags>_b.._lr.._steps.._seed..`."""
  t = config.training
  if t.num_seeds == 1:
    seeds = f'seed{"random" if t.seed is None else t.seed}'
  elif t.seed is None:
    seeds = f'seedsrandom-x{t.num_seeds}'
  else:
    seeds = f'seeds{t.seed}-{t.seed + t.num_seeds - 1}'
  steps = '+'.join(str(phase.steps) for phase in t.phases)
  task = config.task.build()
  defaults = {f.name: f.default for f in dataclasses.fields(task)}
  task_name = '-'.join([config.task.name, *(
      f'{name}{value:g}' if isinstance(value, float) else f'{name}{value}'
      for name, value in sorted(config.task.kwargs.items())
      if value != defaults.get(name))])
  return '_'.join([config.architecture, task_name,
                   *config.model.run_name_parts(), f'b{t.batch_size}',
                   f'lr{t.learning_rate:g}', f'steps{steps}', seeds])


def read_metrics(seed_dir: str) -> list[dict[str, object]]:
  with open(os.path.join(seed_dir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f if line.strip()]


def ms_per_step(result: run_lib.RunResult) -> float:
  """Median milliseconds per training step over the first seed's log
  intervals (robust to the intervals that compiled)."""
  t = result.config.training
  seed_dir = results.seed_dirs(result.run_dir,
                               range(t.seed, t.seed + t.num_seeds))[0]
  rates = [r['steps_per_second'] for r in read_metrics(seed_dir)
           if 'steps_per_second' in r]
  return 1000 / statistics.median(rates)


def print_result(result: run_lib.RunResult) -> None:
  """The scores of one seed, or the table over several."""
  if result.summary is not None:
    s = result.summary
    print(f'\n{s["num_seeds"]} seeds ({s["protocol"]} protocol):\n'
          f'{results.summary_table(s)}Results: {result.run_dir}')
    return
  payload, accuracy_L = result.evaluations[0], result.accuracy_per_seed[0]
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
  print(f'Results: {result.run_dir}')
