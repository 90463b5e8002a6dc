"""CLI: train one configuration, evaluate its length generalization, save everything.

Accepts the original code's flags (names, meanings, defaults), so its README
command and the published sweep files run unchanged, e.g.

  python experiments/example.py --task parity_check --architecture my_staircase \
    --is_causal 1 --include_eos 0 --fix_staircase_size_forward 2 \
    --embed_size 64 --num_heads 8 --group_size 2 --num_recurrent_calls 2 \
    --batch_size 256 --lr 3.55e-4 --wd 1e-2 --second_training_steps 20000

or a named preset (explicit flags override it): `--preset=cpu_demo`.

Flags -> `ExperimentConfig` (experiments/original_flags.py) ->
`run.train_and_evaluate` into <out_dir>/<run_name>/ (see experiments/run.py).
Rerunning an interrupted command resumes from its last checkpoint. On
several hosts, start the same command on each with --coordinator_address,
--num_processes and --process_id (or --distributed where JAX detects the
cluster): only process 0 writes result files.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import os
from collections.abc import Sequence

import jax
from absl import flags
from absl import logging

from experiments import cli
from experiments import original_flags
from experiments import run

FLAGS = flags.FLAGS
_RUN_NAME = flags.DEFINE_string(
    'run_name', None, 'Run folder name (default: built from the configuration).')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace a finished run with the same folder.')
_TENSORBOARD = flags.DEFINE_bool(
    'tensorboard', False, 'Also write TensorBoard events (needs tensorboardX).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar.')
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None, 'Multi-host: host:port of process 0, for'
    ' jax.distributed.initialize.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Multi-host: number of processes.',
                                      lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'Multi-host: this process, 0..n-1.',
                                   lower_bound=0)
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-host: call jax.distributed.initialize(),'
    ' detecting the cluster (Cloud TPU, SLURM, Open MPI) for the three flags'
    ' above; implied by any of them.')
flags.register_multi_flags_validator(
    ['process_id', 'num_processes'],
    lambda v: v['process_id'] is None or v['num_processes'] is None
    or v['process_id'] < v['num_processes'],
    '--process_id must be in [0, --num_processes).')


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
    raise run.ConfigError(
        'jax.distributed.initialize failed (--coordinator_address,'
        f' --num_processes, --process_id, --distributed): {message}') from None


def main(argv: Sequence[str]) -> None:
  del argv  # cli.call rejects extra arguments.
  _initialize_distributed()
  values = original_flags.flag_values()
  config = original_flags.to_config(values)
  for warning in original_flags.ignored_flag_warnings(
      values, original_flags.given_flags()):
    logging.warning('%s', warning)
  run_dir = os.path.join(values['out_dir'],
                         _RUN_NAME.value or cli.default_run_name(config))
  wandb = None
  if values['use_wandb']:
    wandb = run.WandbOptions(values['wandb_project'], values['wandb_group'],
                             values['wandb_display_name'])
  result = run.train_and_evaluate(
      config, run_dir, overwrite=_OVERWRITE.value, progress=_PROGRESS.value,
      tensorboard=_TENSORBOARD.value, wandb=wandb)
  if jax.process_index() == 0:
    cli.print_result(result)
    if values['profile_model']:
      print(f'profile: {cli.ms_per_step(result):.1f} ms per training step'
            ' (median over the log intervals)')


if __name__ == '__main__':
  cli.run(main)
