"""CLI: wall time of training steps and long forwards for one model configuration.

Takes the original CLI's flag names for the model and task, e.g.

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
from absl import app
from absl import flags

from experiments import constants
from experiments import model_factory
from experiments import original_flags
from neural_networks import block_recurrent
from neural_networks import rnn
from neural_networks import transformer
from training import input_encoding
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
_BUCKET_WIDTH = flags.DEFINE_integer(
    'bucket_width', 10, 'Training lengths are padded up to multiples of this.',
    lower_bound=1)
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


def forward_flops(cfg, batch_size: int, length: int) -> float:
  """FLOPs the forward pass executes: matmuls and attention, padding included.

  XLA's cost analysis counts a loop body once, not once per iteration, so
  scanned models are counted here from their shapes instead.
  """
  B, L = batch_size, length
  if isinstance(cfg, rnn.RNNConfig):
    gates = 4 if cfg.cell == 'lstm' else 1
    return 2 * B * L * cfg.num_layers * 2 * cfg.hidden_size**2 * gates
  D = cfg.d_model
  if isinstance(cfg, block_recurrent.BlockRecurrentConfig):
    return _block_recurrent_flops(cfg, B, L)
  per_token = 24 * D * D  # q, k, v, out (4 D^2) and feed-forward (8 D^2), x2.
  if isinstance(cfg, transformer.TransformerConfig):
    return cfg.num_layers * B * L * (per_token + 4 * L * D)
  P, G = cfg.num_recurrent_calls, cfg.group_size
  if cfg.mode == 'parallel':
    return P * G * B * L * (per_token + 4 * L * D)
  C = cfg.chunk_size
  rows, W = -(-L // C) + P - 1, P * C
  keys = W + (L if cfg.cache_steps else 0) + (P * L if cfg.diagonal else 0)
  return rows * G * B * W * (per_token + 4 * keys * D)


def _block_recurrent_flops(cfg, B: int, L: int) -> float:
  """Matmuls and attention of the block-recurrent model (blocks padded)."""
  D, H, K, J, F = (cfg.d_model, cfg.num_heads, cfg.head_size,
                   cfg.kv_head_count, cfg.ff_size)
  C, S, N = cfg.chunk_size, cfg.num_state_vectors, cfg.num_layers
  T = -(-L // C) * C
  ff = D * (2 * F if cfg.ffn == 'geglu' else F) + F * D
  per_token = N * (2 * D * H * K + 2 * D * J * K + ff) + D * H * K  # + read q.
  per_token += D * H * K  # The read's half of layer r's output projection.
  attention = N * 2 * (2 * C) * H * K + 2 * S * H * K  # Window and read.
  per_state = D * (2 * J * K + 2 * H * K) + 2 * H * K * D + D * D
  per_state += 2 * (S + C) * H * K
  return 2 * (B * T * (per_token + attention) + B * (T // C) * S * per_state)


def main(argv: Sequence[str]) -> None:
  del argv  # Unused.
  model_flags = original_flags.model_flags()
  try:
    task = constants.build_task(original_flags.TASK.value,
                                **original_flags.task_kwargs())
    encoding = input_encoding.InputEncoding(
        bool(original_flags.INCLUDE_EOS.value),
        original_flags.COMPUTATION_STEPS_MULT.value)
    model_cfg = model_factory.model_config(
        model_flags, encoding.vocab_size(task), task.output_size)
    model = model_factory.build_model(model_cfg)
    optimizer = optimizers.make_optimizer(
        original_flags.LR.value, original_flags.WD.value,
        original_flags.ADAM_BETA1_INV.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  batch_size = original_flags.BATCH_SIZE.value
  max_train_length = original_flags.SEQUENCE_LENGTH.value
  multiple_of = model_factory.length_multiple(model_flags)
  buckets = length_buckets.make_buckets(max_train_length, _BUCKET_WIDTH.value,
                                        multiple_of)
  results = {'config': {**{k: v for k, v in vars(model_flags).items()},
                        'task': original_flags.TASK.value,
                        'batch_size': batch_size,
                        'sequence_length': max_train_length,
                        'buckets': list(buckets),
                        'backend': jax.default_backend(),
                        'devices': jax.device_count(),
                        'xla_flags': os.environ.get('XLA_FLAGS', '')}}
  results['matmul_gflops_per_s'] = _matmul_gflops()

  state = train_step_lib.init_state(model, optimizer, jax.random.key(0))
  steps, flops, compile_s = {}, {}, 0.0
  for bucket in buckets:
    step = jax.jit(train_step_lib.make_sample_and_train_step(
        model, optimizer, task, encoding, batch_size, bucket),
                   donate_argnums=0)
    start = time.perf_counter()
    compiled = step.lower(state, jnp.int32(1), jax.random.key(0),
                          jax.random.key(0)).compile()
    compile_s += time.perf_counter() - start
    # Backward is about twice the forward.
    steps[bucket] = compiled
    flops[bucket] = 3 * forward_flops(model_cfg, batch_size,
                                      int(task.token_length(bucket)))
    state, _ = compiled(state, jnp.int32(bucket), jax.random.key(0),
                        jax.random.key(1))  # Warm-up.
  jax.block_until_ready(state)

  rng = np.random.default_rng(0)
  times, step_flops = [], []
  for i in range(_STEPS.value):
    length = int(rng.integers(1, max_train_length + 1))
    bucket = length_buckets.bucket_for(length, buckets)
    start = time.perf_counter()
    state, metrics = steps[bucket](state, jnp.int32(length),
                                   jax.random.key(i), jax.random.key(-i))
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
    step_flops.append(flops[bucket])
  results['train_step_s_median'] = statistics.median(times)
  results['train_step_s_mean'] = statistics.fmean(times)
  results['compile_s'] = compile_s
  results['train_gflops_per_s'] = sum(step_flops) / sum(times) / 1e9

  L, B = _FORWARD_LENGTH.value, _FORWARD_BATCH_SIZE.value
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
  forward_times = [_timed(run_forward) for _ in range(_FORWARD_REPEATS.value)]
  results[f'forward_L{L}_s_median'] = statistics.median(forward_times)
  results['forward_gflops_per_s'] = (
      forward_flops(model_cfg, B, inputs.input_BT.shape[1])
      / statistics.median(forward_times) / 1e9)
  results['gflops_per_s'] = results['train_gflops_per_s']
  results['fraction_of_matmul_rate'] = (results['gflops_per_s']
                                        / results['matmul_gflops_per_s'])
  print(json.dumps(results, indent=2))
  if _JSON_OUT.value:
    results_lib.write_json(_JSON_OUT.value, results)


if __name__ == '__main__':
  app.run(main)
