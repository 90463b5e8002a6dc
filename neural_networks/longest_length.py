"""The longest real length of a call, shared by seeds trained together.

A model that skips padding (the staircase mode) runs only the rows of its
batch's longest string (`lax.cond` in its row loop). Under `jax.vmap` over
seeds each seed has its own longest string, the test is batched, and JAX
turns the cond into a select that runs every row. A training step over
stacked seeds names its vmapped axis here (`shared_over`); `longest` then
takes the maximum over all seeds, an unbatched value, so the rows past every
seed's strings are still skipped. Rows past one seed's own strings but within
another's only compute padding, which no real position sees.
"""

import contextlib
import contextvars
from collections.abc import Iterator

import jax
import jax.numpy as jnp

_AXIS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    'shared_length_axis', default=None)


@contextlib.contextmanager
def shared_over(axis_name: str | None) -> Iterator[None]:
  """Within this block (while tracing), `longest` is the maximum over the
  vmapped axis `axis_name` (None: over this call's batch only)."""
  token = _AXIS.set(axis_name)
  try:
    yield
  finally:
    _AXIS.reset(token)


def longest(length_B: jax.Array) -> jax.Array:
  """`max(length_B)`, over every seed of the step when they share one."""
  axis_name = _AXIS.get()
  longest_here = jnp.max(length_B)
  if axis_name is None:
    return longest_here
  return jax.lax.pmax(longest_here, axis_name)
