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
