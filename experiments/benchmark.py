"""CLI: wall time of training steps and long forwards for one model configuration.

Takes example.py's flags (a staircase model in staircase mode unless
--second_training_steps=0 is given), e.g.

  python experiments/benchmark.py --architecture=my_staircase \
    --fix_staircase_size_forward=2 --embed_size=64 --num_heads=8 \
    --group_size=2 --num_recurrent_calls=2 --batch_size=256 --dropout=0.1 \
    --is_causal=1 --include_eos=0

Compilation and warm-up are timed separately and excluded from the medians.
Not a test: numbers depend on the machine.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from experiments import cli
from experiments import config as config_lib
from experiments import op_profile
from experiments import original_flags
from experiments import run
from training import length_buckets
from training import optimizers
from training import results as results_lib
from training import sharding
from training import training

_STEPS = flags.DEFINE_integer('steps', 30, 'Timed training steps.',
                              lower_bound=1)
_FORWARD_LENGTH = flags.DEFINE_integer('forward_length', 500,
                                       'Length of the timed forward pass.',
                                       lower_bound=1)
_FORWARD_BATCH_SIZE = flags.DEFINE_integer(
    'forward_batch_size', 64, 'Batch of the timed forward pass.', lower_bound=1)
_FORWARD_REPEATS = flags.DEFINE_integer('forward_repeats', 5,
                                        'Timed forward passes.', lower_bound=1)
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the results here.')
_PROFILE_STEPS = flags.DEFINE_integer(
    'profile_steps', 0,
    'After the timed steps, run this many more under jax.profiler and report'
    ' the XLA operation time per step by kind (experiments/op_profile.py).'
    ' 0: no profile.', lower_bound=0)
_PROFILE_DIR = flags.DEFINE_string(
    'profile_dir', None,
    'Where --profile_steps writes its trace (TensorBoard / Perfetto format);'
    ' unset: a temporary folder, deleted afterwards.')


def _timed(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def _matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
  """This machine's dense float32 matmul rate, measured now."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  jax.block_until_ready(matmul(a))
  return 2 * n**3 / statistics.median(
      _timed(lambda: matmul(a)) for _ in range(repeats)) / 1e9


def measure(config: config_lib.ExperimentConfig, steps: int,
            forward_length: int, forward_batch_size: int,
            forward_repeats: int, profile_steps: int = 0,
            profile_dir: str | None = None) -> dict:
  """Step and forward times of the config's final model; compile apart.

  The step is the training loop's own program (`training.make_step_program`,
  one seed, one device), at the buckets the loop would use. With
  `profile_steps`, that many further steps (the same lengths as the first
  timed ones) are profiled into `profile_dir`.
  """
  task = config.task.build()
  encoding = config.encoding
  model_cfg = config.final_model
  model = config.model_entry.build(model_cfg)
  setup = run.training_setup(dataclasses.replace(
      config, training=dataclasses.replace(config.training, num_seeds=1,
                                           seed=0)))
  phase = setup.phases[-1]
  t = setup.train_config
  batch_size = t.batch_size
  buckets = length_buckets.make_buckets(setup.curriculum.max_length,
                                        t.bucket_width, t.length_multiple)
  results = {'config': config.to_dict(),
             'buckets': list(buckets),
             'backend': jax.default_backend(),
             'devices': jax.device_count(),
             'xla_flags': os.environ.get('XLA_FLAGS', '')}
  results['matmul_gflops_per_s'] = _matmul_gflops()

  layout = sharding.SeedLayout(1, sharding.make_mesh(1, jax.devices()[:1]))
  hyper = optimizers.Hyperparameters(t.learning_rate, t.weight_decay,
                                     t.adam_beta1_inv)
  state = training.initial_state(phase.model,
                                 optimizers.make_optimizer(*hyper), (0,),
                                 layout)
  hyper = hyper.as_arrays()
  rate = phase.step_dropout()
  one = lambda value: np.int32(value)
  programs, flops, trace_s, compile_s = {}, {}, 0.0, 0.0
  for which, bucket in enumerate(buckets):
    step = training.make_step_program(phase.model, task, encoding, batch_size,
                                      buckets, bucket, layout)
    start = time.perf_counter()
    lowered = step.trace(state, one(bucket), one(which), one(0), one(0),
                         hyper, rate).lower()
    trace_s += time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s += time.perf_counter() - start
    programs[bucket] = compiled
    # Backward is about twice the forward.
    flops[bucket] = 3 * model_cfg.flops(batch_size,
                                        int(task.token_length(bucket)))
    state, _ = compiled(state, one(bucket), one(which), one(0), one(0),
                        hyper, rate)  # Warm-up.
  jax.block_until_ready(state)

  def run_steps(count: int, first_step: int):
    """`count` steps at lengths drawn from seed 0: their lengths and times."""
    nonlocal state
    rng = np.random.default_rng(0)
    lengths, times = [], []
    for i in range(count):
      length = int(rng.integers(1, setup.curriculum.max_length + 1))
      which = int(np.searchsorted(buckets, length))
      start = time.perf_counter()
      state, metrics = programs[buckets[which]](
          state, one(length), one(which), one(0), one(first_step + i), hyper,
          rate)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
      lengths.append(length)
    return lengths, times

  lengths, times = run_steps(steps, first_step=1)
  skips = run.skips_padding(model_cfg)
  # The work done: a model that skips padding runs only the real length.
  step_flops = [
      3 * model_cfg.flops(batch_size, int(task.token_length(length))) if skips
      else flops[length_buckets.bucket_for(length, buckets)]
      for length in lengths]
  results['train_step_s_median'] = statistics.median(times)
  results['train_step_s_mean'] = statistics.fmean(times)
  results['trace_and_lower_s'] = trace_s
  results['compile_s'] = compile_s  # Loaded from the cache when it holds it.
  results['compilation_cache'] = jax.config.jax_compilation_cache_dir
  results['train_gflops_per_s'] = sum(step_flops) / sum(times) / 1e9

  if profile_steps:
    with tempfile.TemporaryDirectory() as scratch:
      trace_dir = profile_dir or scratch
      with jax.profiler.trace(trace_dir):
        _, profiled_times = run_steps(profile_steps, first_step=steps + 1)
      by_kind = op_profile.op_time_by_kind(trace_dir)
    wall_s = sum(profiled_times)
    per_step = lambda value: value / profile_steps
    results['profile'] = {
        'steps': profile_steps,
        'trace_dir': profile_dir,
        'wall_ms_per_step_under_profiler': per_step(wall_s * 1e3),
        'threads': by_kind['threads'],
        'op_ms_per_step_all_threads': per_step(
            sum(k['ms'] for k in by_kind['kinds'].values())),
        'ops_per_step_all_threads': per_step(
            sum(k['calls'] for k in by_kind['kinds'].values())),
        # `[kind, ms, calls]` per step, by decreasing time.
        'by_kind_per_step': [
            [kind, per_step(k['ms']), per_step(k['calls'])]
            for kind, k in by_kind['kinds'].items()],
    }

  L, B = forward_length, forward_batch_size
  batch = task.sample_batch(jax.random.key(0), B, int(task.token_length(L)), L)
  inputs = encoding.encode(task, batch)
  forward = jax.jit(model.apply)
  start = time.perf_counter()
  forward_compiled = forward.lower(state.params, inputs.input_BT,
                                   inputs.length_B, None).compile()
  results['forward_compile_s'] = time.perf_counter() - start
  run_forward = lambda: forward_compiled(state.params, inputs.input_BT,
                                         inputs.length_B, None)
  run_forward()
  forward_times = [_timed(run_forward) for _ in range(forward_repeats)]
  results[f'forward_L{L}_s_median'] = statistics.median(forward_times)
  results['forward_gflops_per_s'] = (
      model_cfg.flops(B, inputs.input_BT.shape[1])
      / statistics.median(forward_times) / 1e9)
  results['gflops_per_s'] = results['train_gflops_per_s']
  results['fraction_of_matmul_rate'] = (results['gflops_per_s']
                                        / results['matmul_gflops_per_s'])
  return results


def main(argv: Sequence[str]) -> None:
  del argv  # cli.call rejects extra arguments.
  # The staircase model's staircase mode unless the flags say otherwise.
  values = original_flags.flag_values()
  if not original_flags.FLAGS['second_training_steps'].present:
    values['second_training_steps'] = max(values['second_training_steps'], 1)
  config = original_flags.to_config(values)
  if _PROFILE_DIR.value is not None:
    if not _PROFILE_STEPS.value:
      raise config_lib.ConfigError(
          '--profile_dir needs --profile_steps=N (N > 0) to profile anything.')
    if os.path.exists(_PROFILE_DIR.value) and not os.path.isdir(
        _PROFILE_DIR.value):
      raise config_lib.ConfigError(
          f'--profile_dir={_PROFILE_DIR.value} is a file; give a folder.')
  results = measure(config, _STEPS.value, _FORWARD_LENGTH.value,
                    _FORWARD_BATCH_SIZE.value, _FORWARD_REPEATS.value,
                    _PROFILE_STEPS.value, _PROFILE_DIR.value)
  print(json.dumps(results, indent=2))
  if _JSON_OUT.value:
    results_lib.write_json(_JSON_OUT.value, results)


if __name__ == '__main__':
  cli.run(main)
