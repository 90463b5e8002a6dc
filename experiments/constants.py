"""Registries: task builders (and, as they land, model presets)."""

from collections.abc import Callable

from tasks import task
from tasks.regular import cycle_navigation
from tasks.regular import even_pairs
from tasks.regular import modular_arithmetic
from tasks.regular import parallel_parity_check
from tasks.regular import parity_check

# Every builder takes no required argument; parallel parity defaults to two
# automata with explicit tokens, as the original CLI does.
TASK_BUILDERS: dict[str, Callable[..., task.Task]] = {
    'parity_check': parity_check.ParityCheck,
    'even_pairs': even_pairs.EvenPairs,
    'cycle_navigation': cycle_navigation.CycleNavigation,
    'modular_arithmetic': modular_arithmetic.ModularArithmetic,
    'parallel_parity_check': parallel_parity_check.ParallelParityCheck,
}


def build_task(name: str, **kwargs) -> task.Task:
  """The task registered under `name`; a clear ValueError for unknown names."""
  if name not in TASK_BUILDERS:
    raise ValueError(
        f'Unknown task {name!r}; choose one of {sorted(TASK_BUILDERS)}.'
    )
  return TASK_BUILDERS[name](**kwargs)


# Named configurations for experiments/example.py: flag values that explicit
# flags override. `cpu_demo` is the README's main job.
PRESETS: dict[str, dict[str, object]] = {
    # A staircase Transformer that learns parity on lengths 1..40 in a few
    # minutes on a 2-core CPU and keeps its accuracy far beyond them.
    'cpu_demo': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        include_eos=0, fix_staircase_size_forward=2, embed_size=32,
        num_heads=4, group_size=2, num_recurrent_calls=2, batch_size=64,
        lr=1e-3, wd=1e-2, adam_beta1_inv=0.1, dropout=0.0,
        second_training_steps=1500, test_length=200, seed=0,
        log_frequency=100, checkpoint_every=500),
    # The published parity, chunk-2 staircase configuration
    # (seed_sweeps/staircase/parity_check/chunk_2_best.yaml).
    'staircase_parity_c2': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        include_eos=0, validate=True, batch_size=256, embed_size=64,
        num_heads=8, lr=0.0003551589862157637, dropout=0.1,
        second_training_steps=20_000, fix_staircase_size_forward=2, wd=1e-2,
        adam_beta1_inv=0.03185991498729463, num_recurrent_calls=2,
        group_size=2),
    # The published Transformer baseline
    # (seed_sweeps/transformer/parity_check/transformer_sweep.yaml).
    'transformer_parity': dict(
        task='parity_check', architecture='transformer', is_causal=1,
        include_eos=1, validate=True, batch_size=128, num_layers=5,
        embed_size=64, num_heads=8, lr=1e-4, dropout=0.1,
        second_training_steps=200_000, wd=0.01, adam_beta1_inv=0.1),
}
