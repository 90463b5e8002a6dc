"""CLI: wall time of the ORIGINAL PyTorch code's training step.

The counterpart of experiments/benchmark.py for the paper's own code: it builds
the original's staircase model (models/my_staircase.py, in staircase mode, i.e.
the second training phase, unless --second_training_steps=0) or its
block-recurrent transformer (models/block_recurrent_transformer.py) from
example.py's flags, with example.py's AdamW, loss and input tape, and times
what one iteration of the original's training loop (experiments/training.py)
does: sample a batch of one length, pad it, forward, loss, accuracy, backward,
clip the gradient norm to 1, optimizer step. Lengths are drawn uniformly from
1..--max_length with numpy's default_rng(0), as benchmark.py draws them.

Runs under a PyTorch environment, not this repository's: it imports neither
JAX nor our packages. To set one up:

  git clone https://github.com/IBM/recurrent-chunked-models-regular-languages \
    /tmp/orig
  python -m venv /tmp/torchenv
  /tmp/torchenv/bin/pip install numpy
  /tmp/torchenv/bin/pip install torch \
    --index-url https://download.pytorch.org/whl/cpu
  # Only for --architecture=brt (the original pins 0.4.4; its
  # memorizing-transformers dependency is not imported):
  /tmp/torchenv/bin/pip install beartype einops packaging
  /tmp/torchenv/bin/pip install --no-deps \
    block-recurrent-transformer-pytorch==0.4.4

Then, e.g. (the published parity chunk-2 staircase configuration):

  /tmp/torchenv/bin/python experiments/benchmark_original.py \
    --original_dir=/tmp/orig --architecture=my_staircase \
    --fix_staircase_size_forward=2 --embed_size=64 --num_heads=8 \
    --group_size=2 --num_recurrent_calls=2 --batch_size=256 --dropout=0.1 \
    --is_causal=1 --include_eos=0

Warm-up steps (at --max_length) are excluded from the statistics. The result
is JSON on stdout (the original's own prints go to stderr). Not a test:
numbers depend on the machine; where other jobs share the cores, torch's
default thread count can make steps many times slower (pass --threads).
"""

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import types

import numpy as np
import torch

# The original imports its modules under this package name.
_PACKAGE = 'recurrent_chunked_models_regular_languages'
_MARKERS = ('models/my_staircase.py', 'models/block_recurrent_transformer.py',
            'tasks/task.py', 'experiments/example.py')
# Tasks whose original modules import only torch (the others import JAX).
_TASKS = {'parity_check': ('parity_check', 'ParityCheck'),
          'cycle_navigation': ('cycle_navigation', 'CycleNavigation')}


def _parse_args(argv=None):
  """The flags, with example.py's names and defaults where it has them."""
  p = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  add = p.add_argument
  add('--original_dir', required=True, help='Checkout of the original code.')
  add('--architecture', required=True, choices=('my_staircase', 'brt'))
  add('--task', default='parity_check', choices=sorted(_TASKS))
  add('--max_length', '--sequence_length', dest='max_length', type=int,
      default=40, help='Training lengths are drawn from 1..max_length.')
  add('--batch_size', type=int, default=128)
  add('--lr', type=float, default=1e-5)
  add('--wd', type=float, default=0.0)
  add('--adam_beta1_inv', type=float, default=0.1,
      help='AdamW beta1 = 1 - adam_beta1_inv.')
  add('--include_eos', type=int, default=1, choices=(0, 1),
      help='1: append the answer token to the input tape.')
  add('--embed_size', type=int, default=32)
  add('--num_heads', type=int, default=4)
  add('--num_layers', type=int, default=None)
  add('--dropout', type=float, default=0.0)
  add('--is_causal', type=int, default=0, choices=(0, 1))
  add('--norm_type', default='prenorm', choices=('prenorm', 'postnorm'))
  # Staircase flags.
  add('--group_size', type=int, default=1)
  add('--num_recurrent_calls', type=int, default=None)
  add('--fix_staircase_size_forward', type=int, default=-1,
      help='Staircase chunk size.')
  add('--staircase_cache_steps', type=int, default=0)
  add('--diagonal', type=int, default=0, choices=(0, 1))
  add('--second_training_steps', type=int, default=1,
      help='>0: time the staircase mode (the second training phase); '
      '0: the parallel mode (the first phase).')
  # Block-recurrent transformer flags.
  add('--chunk_size', type=int, default=None, help='BRT block width.')
  add('--num_state_vectors', type=int, default=None)
  add('--recurrent_layer_index', type=int, default=None)
  # Benchmark flags.
  add('--steps', type=int, default=30, help='Timed training steps.')
  add('--warmup', type=int, default=3, help='Untimed steps before them.')
  add('--threads', type=int, default=None,
      help="torch.set_num_threads (default: torch's default).")
  add('--seed', type=int, default=0, help='Seeds torch, numpy and random.')
  add('--json_out', default=None, help='Also write the results here.')
  args = p.parse_args(argv)

  d = args.original_dir
  if not os.path.isdir(d):
    p.error(f'--original_dir {d!r} does not exist.')
  missing = [m for m in _MARKERS if not os.path.isfile(os.path.join(d, m))]
  if missing:
    p.error(f'--original_dir {d!r} does not look like the original code '
            f'(no {", ".join(missing)}).')
  for name in ('max_length', 'batch_size', 'steps', 'embed_size', 'num_heads'):
    if getattr(args, name) < 1:
      p.error(f'--{name} must be at least 1.')
  if args.warmup < 0 or (args.threads is not None and args.threads < 1):
    p.error('--warmup must be >= 0 and --threads >= 1.')
  if args.architecture == 'my_staircase':
    if args.num_layers is None and args.num_recurrent_calls is None:
      p.error('my_staircase needs --num_recurrent_calls or --num_layers.')
    if args.second_training_steps > 0 and (
        args.fix_staircase_size_forward < 1 or not args.is_causal):
      p.error('Staircase mode needs --fix_staircase_size_forward >= 1 and '
              '--is_causal=1 (or pass --second_training_steps=0).')
  else:
    for name in ('num_layers', 'chunk_size', 'num_state_vectors',
                 'recurrent_layer_index'):
      if getattr(args, name) is None:
        p.error(f'brt needs --{name}.')
  return args


def _import_original(original_dir):
  """Makes the checkout importable under the package name it imports."""
  package = types.ModuleType(_PACKAGE)
  package.__path__ = [os.path.abspath(original_dir)]
  sys.modules[_PACKAGE] = package
  import importlib  # pylint: disable=g-import-not-at-top
  return lambda name: importlib.import_module(f'{_PACKAGE}.{name}')


def _git_commit(directory):
  try:
    return subprocess.run(['git', '-C', directory, 'rev-parse', 'HEAD'],
                          capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def _pad(x_BLI, task, include_eos):
  """The input tape of the original's experiments/utils.py.

  pad_sequence_with_empty_targets with computation_steps_mult=0 (that module
  imports JAX, so it is restated here): one more one-hot slot, and with
  include_eos, output_length(L) tokens in that slot after the string.
  """
  B, L, I = x_BLI.shape
  x = torch.cat([x_BLI.float(), torch.zeros(B, L, 1)], dim=-1)
  if not include_eos:
    return x
  eos = torch.zeros(B, task.output_length(L), I + 1)
  eos[..., I] = 1
  return torch.cat([x, eos], dim=1)


def _build(args, load):
  """Task, model, optimizer, loss and accuracy as example.py builds them."""
  module, cls = _TASKS[args.task]
  task = getattr(load(f'tasks.regular.{module}'), cls)()
  single_output = task.output_length(10) == 1
  norm = load('models.transformer_utils').TransformerNormalization
  # The subset of example.py's _ARCHITECTURE_PARAMS the two models read.
  params = dict(
      d_model=args.embed_size, num_heads=args.num_heads,
      num_layers=args.num_layers, dropout=args.dropout,
      is_causal=args.is_causal, norm_type=norm[args.norm_type],
      group_size=args.group_size,
      num_recurrent_calls=args.num_recurrent_calls,
      fix_staircase_size_forward=args.fix_staircase_size_forward,
      staircase_cache_steps=args.staircase_cache_steps,
      diagonal=bool(args.diagonal), chunk_size=args.chunk_size,
      num_state_vectors=args.num_state_vectors,
      recurrent_layer_index=args.recurrent_layer_index)
  kwargs = dict(output_size=task.output_size,
                return_all_outputs=not single_output,
                input_size=task.input_size + 1, **params)
  mode = None
  if args.architecture == 'my_staircase':
    staircase = load('models.my_staircase')
    model = staircase.MyStaircaseTransformer(**kwargs)
    # training.py switches modes when the second phase starts.
    if args.second_training_steps > 0:
      model.mode = staircase.ForwardMode.STAIRCASE
    mode = model.mode.name.lower()
  else:
    brt = load('models.block_recurrent_transformer')
    model = brt.BlockRecurrentTransformerWrapper(**kwargs)
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  model = model.to(device)
  optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr,
                                betas=(1 - args.adam_beta1_inv, .999),
                                weight_decay=args.wd)

  def loss_fn(output, target):
    return torch.mean(torch.sum(task.pointwise_loss_fn(output, target), -1))

  def accuracy_fn(output, target):
    mask = task.accuracy_mask(target)
    return torch.sum(mask * task.accuracy_fn(output, target)) / torch.sum(mask)

  return task, model, optimizer, loss_fn, accuracy_fn, single_output, mode, (
      device)


def measure(args):
  """Seconds per training step of the original's model, warm-up apart."""
  random.seed(args.seed)
  np.random.seed(args.seed)
  torch.manual_seed(args.seed)
  if args.threads is not None:
    torch.set_num_threads(args.threads)
  load = _import_original(args.original_dir)
  (task, model, optimizer, loss_fn, accuracy_fn, single_output, mode,
   device) = _build(args, load)
  sync = torch.cuda.synchronize if device == 'cuda' else lambda: None

  def step(length):
    """One iteration of training.py's loop, without its logging."""
    model.train()
    batch = task.sample_batch(length=length, batch_size=args.batch_size)
    inputs = _pad(batch['input'], task, args.include_eos).to(device)
    target = batch['output'].to(device)
    optimizer.zero_grad(set_to_none=True)
    output = model(inputs)
    if isinstance(output, dict):
      output = output['output']
    if not single_output:
      output = output[:, -task.output_length(length):]
    loss = loss_fn(output, target)
    accuracy = accuracy_fn(output, target)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.)
    optimizer.step()
    return loss, accuracy

  for _ in range(args.warmup):
    step(args.max_length)
  sync()
  rng = np.random.default_rng(0)
  times, lengths = [], []
  for _ in range(args.steps):
    length = int(rng.integers(1, args.max_length + 1))
    start = time.perf_counter()
    loss, accuracy = step(length)
    sync()
    times.append(time.perf_counter() - start)
    lengths.append(length)

  return {
      'benchmark': 'original_pytorch_train_step',
      'config': vars(args),
      'mode': mode,
      'original_commit': _git_commit(args.original_dir),
      'torch_version': torch.__version__,
      'torch_num_threads': torch.get_num_threads(),
      'torch_num_interop_threads': torch.get_num_interop_threads(),
      'device': device,
      'num_parameters': sum(p.numel() for p in model.parameters()),
      'input_size': task.input_size + 1,
      'lengths': lengths,
      'train_step_s': times,
      'train_step_s_median': statistics.median(times),
      'train_step_s_mean': statistics.fmean(times),
      'train_step_s_min': min(times),
      'last_loss': float(loss.detach()),
      'last_accuracy': float(accuracy),
  }


def main(argv=None):
  args = _parse_args(argv)
  # The original prints as it builds models; keep stdout for the JSON.
  with contextlib.redirect_stdout(sys.stderr):
    results = measure(args)
  text = json.dumps(results, indent=2)
  print(text)
  if args.json_out:
    with open(args.json_out, 'w', encoding='utf-8') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  main()
