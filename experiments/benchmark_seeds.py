"""CLI: speed of R seeds trained together, on 1 and N devices, and vs R runs.

Throughput (the default): the training program of experiments/example.py for
R = 1, 2, 5 seeds, on one device and on every device, with each seed's
lengths uniform over 1..--sequence_length, e.g.

  python experiments/benchmark_seeds.py --preset=staircase_parity_check_c2

Seed-steps per second count each seed's step once, so the vmapped program
gains when R seeds together take less than R times one seed's step. Compile
time is reported apart and excluded. Forced CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=8) share the same cores,
so their numbers check correctness, not scaling.

End to end (--end_to_end): the wall time of one `example.py --num_seeds=R`
run against R runs of `example.py --seed=i` one after another (each process
starts, compiles, trains, evaluates and writes its files), e.g.

  python experiments/benchmark_seeds.py --end_to_end --end_to_end_seeds=5 \
    --end_to_end_flags='--preset=staircase_parity_check_c2 \
    --second_training_steps=300'

Not a test: numbers depend on the machine and on what else runs on it.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import dataclasses
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import jax
import numpy as np
from absl import flags

from experiments import cli
from experiments import config as config_lib
from experiments import original_flags
from experiments import run
from training import length_buckets
from training import optimizers
from training import results as results_lib
from training import sharding
from training import training

_NUM_SEEDS_LIST = flags.DEFINE_list('num_seeds_list', ['1', '2', '5'],
                                    'Seeds trained together (R values).')
_STEPS = flags.DEFINE_integer('steps', 20, 'Timed steps per R and mesh.',
                              lower_bound=1)
_END_TO_END = flags.DEFINE_bool(
    'end_to_end', False, 'Time one --num_seeds run against sequential runs.')
_END_TO_END_SEEDS = flags.DEFINE_integer('end_to_end_seeds', 5,
                                         'R of the end-to-end comparison.',
                                         lower_bound=1)
_END_TO_END_FLAGS = flags.DEFINE_string(
    'end_to_end_flags',
    '--preset=staircase_parity_check_c2 --second_training_steps=300',
    'example.py flags of the end-to-end comparison.')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the results here.')


def _throughput(config: config_lib.ExperimentConfig, num_seeds: int,
                devices: Sequence[jax.Device]) -> dict:
  """Seed-steps per second of the training program (compile excluded)."""
  config = dataclasses.replace(config, training=dataclasses.replace(
      config.training, num_seeds=num_seeds, seed=0))
  setup = run.training_setup(config)
  train_config = setup.train_config
  model = setup.phases[-1].model
  layout = sharding.SeedLayout(num_seeds,
                               sharding.make_mesh(num_seeds, devices))
  layout.check_batch_size(train_config.batch_size)
  hyper = optimizers.Hyperparameters(
      train_config.learning_rate, train_config.weight_decay,
      train_config.adam_beta1_inv)
  optimizer = optimizers.make_optimizer(*hyper)
  hyper = hyper.as_arrays()
  rate = setup.phases[-1].step_dropout()
  state = training.initial_state(model, optimizer, train_config.seeds, layout)
  buckets = length_buckets.make_buckets(
      setup.curriculum.max_length, train_config.bucket_width,
      train_config.length_multiple)
  seed_R = np.array(train_config.seeds, np.int32)
  per_seed = (lambda x: x) if layout.stacked else (lambda x: x[0])
  programs, compile_s = {}, 0.0
  for bucket in buckets:
    start = time.perf_counter()
    programs[bucket] = training.make_step_program(
        model, setup.task, config.encoding,
        train_config.batch_size, buckets, bucket, layout)
    length_R = np.full(num_seeds, bucket, np.int32)
    which_R = np.full(num_seeds, buckets.index(bucket), np.int32)
    state, metrics = programs[bucket](state, per_seed(length_R),
                                      per_seed(which_R), per_seed(seed_R),
                                      np.int32(0), hyper, rate)
    jax.block_until_ready(metrics)
    compile_s += time.perf_counter() - start
  rng = np.random.default_rng(0)
  times = []
  for step in range(_STEPS.value):
    length_R = rng.integers(1, setup.curriculum.max_length + 1,
                            num_seeds).astype(np.int32)
    which_R = np.searchsorted(buckets, length_R).astype(np.int32)
    start = time.perf_counter()
    state, metrics = programs[buckets[which_R.max()]](
        state, per_seed(length_R), per_seed(which_R), per_seed(seed_R),
        np.int32(step + 1), hyper, rate)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  return {'num_seeds': num_seeds, 'devices': len(devices),
          'mesh': dict(layout.mesh.shape),
          'step_s_median': statistics.median(times),
          'seed_steps_per_s': num_seeds * len(times) / sum(times),
          'compile_and_first_steps_s': compile_s}


def _end_to_end() -> dict:
  """Wall time of one --num_seeds=R run and of R sequential runs."""
  num_seeds = _END_TO_END_SEEDS.value
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'example.py')
  common = [sys.executable, script, *shlex.split(_END_TO_END_FLAGS.value),
            '--progress=false']

  def timed(args, out_dir):
    """(wall, CPU) seconds of one example.py process."""
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    start, start_cpu = time.perf_counter(), cpu()
    subprocess.run(common + args + [f'--out_dir={out_dir}'], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, cpu() - start_cpu

  with tempfile.TemporaryDirectory() as out_dir:
    together, together_cpu = timed(['--seed=0', f'--num_seeds={num_seeds}'],
                                   out_dir)
    alone, alone_cpu = zip(*[timed([f'--seed={i}'], out_dir)
                             for i in range(num_seeds)])
  # CPU seconds are less sensitive than wall seconds to other jobs on a
  # shared machine.
  return {'flags': _END_TO_END_FLAGS.value, 'num_seeds': num_seeds,
          'together_s': together, 'sequential_s': sum(alone),
          'sequential_runs_s': list(alone), 'speedup': sum(alone) / together,
          'together_cpu_s': together_cpu, 'sequential_cpu_s': sum(alone_cpu),
          'cpu_ratio': sum(alone_cpu) / together_cpu}


def main(argv: Sequence[str]) -> None:
  del argv  # cli.call rejects extra arguments.
  results = {'backend': jax.default_backend(),
             'device_count': jax.device_count(),
             'cpu_count': os.cpu_count(),
             'xla_flags': os.environ.get('XLA_FLAGS', '')}
  if _END_TO_END.value:
    results['end_to_end'] = _end_to_end()
  else:
    config = original_flags.to_config(original_flags.flag_values())
    device_counts = sorted({1, jax.device_count()})
    results['batch_size'] = config.training.batch_size
    results['throughput'] = [
        _throughput(config, int(r), jax.devices()[:n])
        for r in _NUM_SEEDS_LIST.value for n in device_counts]
  print(json.dumps(results, indent=2))
  if _JSON_OUT.value:
    results_lib.write_json(_JSON_OUT.value, results)


if __name__ == '__main__':
  cli.run(main)
