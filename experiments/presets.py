"""Presets: named overrides of flag values, which explicit flags override.

`cpu_demo` is the README's main job. The published configurations are read
from the shipped sweep files (`experiments/sweeps/`): each `*_best.yaml`
file's command flags and parameters, one seed, wandb's options dropped,
named `<architecture>_<task>_c<chunk>` (`transformer_<task>` for the
Transformer's one file). Their values are text, as wandb passes them, and the
flag parser reads them as it reads a command line.
"""

import glob
import os

from experiments import sweep_file

SWEEP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'sweeps')

_DEMOS: dict[str, dict[str, object]] = {
    # A staircase Transformer (chunk 1) that learns parity on lengths 1..40
    # in about a minute on a 2-core CPU and keeps its accuracy far beyond.
    'cpu_demo': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        include_eos=0, fix_staircase_size_forward=1, embed_size=32,
        num_heads=4, group_size=2, num_recurrent_calls=2, batch_size=64,
        lr=1e-3, wd=1e-2, adam_beta1_inv=0.0319, dropout=0.0,
        second_training_steps=1500, test_length=500, seed=0,
        log_frequency=100, checkpoint_every=500),
    # The same budget for a causal Transformer of similar size (no positional
    # encoding, as in the original), for contrast.
    'cpu_demo_transformer': dict(
        task='parity_check', architecture='transformer', is_causal=1,
        include_eos=0, num_layers=4, embed_size=32, num_heads=4,
        batch_size=64, lr=1e-3, wd=1e-2, adam_beta1_inv=0.0319, dropout=0.0,
        second_training_steps=1500, test_length=500, seed=0,
        log_frequency=100, checkpoint_every=500),
    # The same budget for a block-recurrent Transformer (blocks of 2, two
    # state vectors, the recurrent layer in the middle of three), for contrast.
    'cpu_demo_brt': dict(
        task='parity_check', architecture='brt', include_eos=0, num_layers=3,
        recurrent_layer_index=2, chunk_size=2, num_state_vectors=2,
        embed_size=64, num_heads=4, batch_size=64, lr=1e-3, wd=1e-2,
        adam_beta1_inv=0.0319, dropout=0.0, second_training_steps=1500,
        test_length=500, seed=0, log_frequency=100, checkpoint_every=500),
}


def published_files() -> dict[str, str]:
  """Preset name -> the `*_best` sweep file it is read from."""
  files = {}
  for path in sorted(glob.glob(os.path.join(SWEEP_DIR, '*', '*', '*.yaml'))):
    kind, task = path.split(os.sep)[-3:-1]
    stem = os.path.basename(path)[:-len('.yaml')]
    if kind == 'transformer' and stem == 'transformer_sweep':
      files[f'transformer_{task}'] = path
    elif stem.startswith('chunk_') and stem.endswith('_best'):
      files[f'{kind}_{task}_c{stem[len("chunk_"):-len("_best")]}'] = path
  return files


def from_sweep_file(path: str) -> dict[str, object]:
  """A `*_best` file's setting: its command flags and its parameters."""
  sweep = sweep_file.load(path)
  if not sweep.is_fixed_setting():
    raise sweep_file.SweepFileError(f'{path} searches; a preset needs one'
                                    ' value per parameter.')
  return {**sweep.fixed, **sweep.constant_parameters()}


PRESETS: dict[str, dict[str, object]] = {
    **_DEMOS,
    **{name: from_sweep_file(path)
       for name, path in published_files().items()},
}
