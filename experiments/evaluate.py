"""CLI: re-evaluate a saved run at other lengths or with another protocol.

  python experiments/evaluate.py --run_dir=out/<run_name> --test_length=1000 \
    --eval_protocol=seed

Rebuilds the task and model from the run's config.json, restores the
evaluated checkpoint (the best-validated one when the run validated, else the
latest) and writes eval_<protocol>_L<test_length>.json and its plot into the
run folder (each seed's folder for a --num_seeds run, plus
summary_eval_<protocol>_L<test_length>.json/.md over the seeds). Flags given
here (e.g. --test_length) override the saved ones. Runs on one process.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

import json
import os
import sys
import time
from collections.abc import Sequence

import jax
from absl import app
from absl import flags
from absl import logging

from experiments import example
from experiments import original_flags
from training import checkpointing
from training import optimizers
from training import range_evaluation
from training import results
from training import sharding
from training import training

FLAGS = flags.FLAGS
_RUN_DIR = flags.DEFINE_string('run_dir', None, 'A run folder of example.py.')
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'auto', ['auto', 'best', 'latest'],
    "Which checkpoint: 'auto' is best when the run validated, else latest.")


def evaluate_run() -> dict[str, object]:
  """Re-scores every seed of the run; returns the (first) seed's payload, or
  the summary over seeds."""
  run_dir = _RUN_DIR.value
  config_path = os.path.join(run_dir or '', 'config.json')
  if not run_dir or not os.path.exists(config_path):
    raise example.ConfigError(f'--run_dir={run_dir!r} holds no config.json.')
  with open(config_path) as f:
    saved = json.load(f)
  for name, value in saved['flags'].items():
    if name in FLAGS and not FLAGS[name].present:
      FLAGS[name].value = value
  example._check_flags()  # pylint: disable=protected-access
  num_seeds = saved['flags'].get('num_seeds', 1)
  setup = example.build_setup(saved['seed'], num_seeds)
  seeds = setup.train_config.seeds
  model = setup.models[setup.final_mode]
  optimizer = optimizers.make_optimizer(
      original_flags.LR.value, original_flags.WD.value,
      original_flags.ADAM_BETA1_INV.value)
  # Evaluation is per seed and unsharded: restore onto one device.
  layout = sharding.SeedLayout(
      num_seeds, sharding.make_mesh(num_seeds, jax.local_devices()[:1]))
  like = training.initial_state(model, optimizer, seeds, layout)
  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir,
                                                         'checkpoints'))
  use_best = _CHECKPOINT.value == 'best' or (
      _CHECKPOINT.value == 'auto' and checkpointer.best_step() is not None)
  step = checkpointer.best_step() if use_best else checkpointer.latest_step()
  if step is None:
    raise example.ConfigError(f'{run_dir} has no {"best" if use_best else ""}'
                              ' checkpoint to evaluate.')
  state, extra = checkpointer.restore(like, best=use_best)
  checkpointer.close()
  params = sharding.to_host(state.params)
  # Each seed's best step (the best checkpoint holds each seed's best state).
  steps = extra.get('best_steps') or [step] * num_seeds
  test_length = original_flags.TEST_LENGTH.value
  training_length = original_flags.SEQUENCE_LENGTH.value
  evaluate = (range_evaluation.evaluate_prefix if setup.protocol == 'prefix'
              else range_evaluation.evaluate_exact)
  stem = f'eval_{setup.protocol}_L{test_length}'
  payloads, summaries, curves = [], [], []
  for i, (seed, seed_dir) in enumerate(
      zip(seeds, results.seed_dirs(run_dir, seeds))):
    start = time.perf_counter()
    accuracy_L = evaluate(model, layout.seed_slice(params, i), setup.task,
                          setup.encoding, test_length)
    summary = range_evaluation.summarize(accuracy_L, training_length)
    payload = {**summary.to_json(), 'protocol': setup.protocol, 'seed': seed,
               'eval_step': steps[i], 'test_length': test_length,
               'training_length': training_length,
               'eval_seconds': time.perf_counter() - start}
    results.write_json(os.path.join(seed_dir, f'{stem}.json'), payload)
    results.plot_accuracy_vs_length(
        os.path.join(seed_dir, f'{stem}.png'),
        [(f'step {steps[i]}', accuracy_L)], training_length,
        f'{original_flags.TASK.value}: {os.path.basename(run_dir)}')
    if num_seeds == 1:
      example._print_summary(payload, accuracy_L, run_dir)  # pylint: disable=protected-access
    payloads.append(payload)
    summaries.append(summary)
    curves.append((f'seed {seed}, step {steps[i]}', accuracy_L))
  if num_seeds == 1:
    return payloads[0]
  over_seeds = {**range_evaluation.summarize_seeds(seeds, summaries),
                'protocol': setup.protocol, 'test_length': test_length,
                'training_length': training_length}
  table = results.summary_table(over_seeds)
  results.write_json(os.path.join(run_dir, f'summary_{stem}.json'),
                     over_seeds)
  results.write_text(os.path.join(run_dir, f'summary_{stem}.md'), table)
  results.plot_accuracy_vs_length(
      os.path.join(run_dir, f'{stem}.png'), curves, training_length,
      f'{original_flags.TASK.value}: {os.path.basename(run_dir)}')
  print(f'{num_seeds} seeds ({setup.protocol} protocol):\n{table}'
        f'Results: {run_dir}')
  return over_seeds


def main(argv: Sequence[str]) -> None:
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    example._fail(f'unexpected arguments: {" ".join(argv[1:])}')  # pylint: disable=protected-access
  try:
    evaluate_run()
  except example.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
