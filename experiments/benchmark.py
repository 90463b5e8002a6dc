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

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from experiments import cli
from experiments import config as config_lib
from experiments import original_flags
from experiments import run
from training import length_buckets
from training import optimizers
from training import results as results_lib
from training import train_step as train_step_lib

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
            forward_repeats: int) -> dict:
  """Step and forward times of the config's final model; compile apart."""
  task = config.task.build()
  encoding = config.encoding
  model_cfg = config.final_model
  model = config.model_entry.build(model_cfg)
  t = config.training
  optimizer = optimizers.make_optimizer(t.learning_rate, t.weight_decay,
                                        t.adam_beta1_inv)
  batch_size = t.batch_size
  max_train_length = t.curriculum.max_length
  # As training does: one program when the model skips padding.
  buckets = ((max_train_length,) if run.skips_padding(model_cfg) else
             length_buckets.make_buckets(max_train_length, t.bucket_width,
                                         model_cfg.length_multiple))
  results = {'config': config.to_dict(),
             'buckets': list(buckets),
             'backend': jax.default_backend(),
             'devices': jax.device_count(),
             'xla_flags': os.environ.get('XLA_FLAGS', '')}
  results['matmul_gflops_per_s'] = _matmul_gflops()

  state = train_step_lib.init_state(model, optimizer, jax.random.key(0))
  programs, flops, trace_s, compile_s = {}, {}, 0.0, 0.0
  for bucket in buckets:
    step = jax.jit(train_step_lib.make_sample_and_train_step(
        model, optimizer, task, encoding, batch_size, bucket),
                   donate_argnums=0)
    start = time.perf_counter()
    lowered = step.trace(state, jnp.int32(1), jax.random.key(0),
                         jax.random.key(0)).lower()
    trace_s += time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s += time.perf_counter() - start
    # Backward is about twice the forward.
    programs[bucket] = compiled
    flops[bucket] = 3 * model_cfg.flops(batch_size,
                                        int(task.token_length(bucket)))
    state, _ = compiled(state, jnp.int32(bucket), jax.random.key(0),
                        jax.random.key(1))  # Warm-up.
  jax.block_until_ready(state)

  rng = np.random.default_rng(0)
  times, step_flops = [], []
  for i in range(steps):
    length = int(rng.integers(1, max_train_length + 1))
    bucket = length_buckets.bucket_for(length, buckets)
    start = time.perf_counter()
    state, metrics = programs[bucket](state, jnp.int32(length),
                                   jax.random.key(i), jax.random.key(-i))
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
    # The work done: a model that skips padding runs only the real length.
    step_flops.append(
        3 * model_cfg.flops(batch_size, int(task.token_length(length)))
        if run.skips_padding(model_cfg) else flops[bucket])
  results['train_step_s_median'] = statistics.median(times)
  results['train_step_s_mean'] = statistics.fmean(times)
  results['trace_and_lower_s'] = trace_s
  results['compile_s'] = compile_s  # Loaded from the cache when it holds it.
  results['compilation_cache'] = jax.config.jax_compilation_cache_dir
  results['train_gflops_per_s'] = sum(step_flops) / sum(times) / 1e9

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
  results = measure(config, _STEPS.value, _FORWARD_LENGTH.value,
                    _FORWARD_BATCH_SIZE.value, _FORWARD_REPEATS.value)
  print(json.dumps(results, indent=2))
  if _JSON_OUT.value:
    results_lib.write_json(_JSON_OUT.value, results)


if __name__ == '__main__':
  cli.run(main)
