"""Group word problems: the product of a string of group elements.

The tokens are the elements of a finite group and the label of a string
`g1 g2 ... gn` is the element `g1 g2 ... gn`. Solvable groups (cyclic,
dihedral, A4) are in reach of shallow circuits; for S5 and A5 the problem is
NC1-complete (Barrington, 1989), the hard case of state tracking (Merrill et
al., 2024, "The Illusion of State in State-Space Models"; Grazzi et al.,
2024, "Unlocking State-Tracking in Linear RNNs Through Negative
Eigenvalues").

`group` names the group: `Z<n>` (cyclic, order n), `S<n>` (symmetric, n!),
`A<n>` (alternating, n!/2), `D<n>` (dihedral, the 2n symmetries of an
n-gon), or a direct product of these joined by `x`, such as `A4xZ5`. Each
factor keeps its own multiplication table, so a product never builds the
(order x order) table of the whole group; a token is the mixed-radix index
of its factors' elements, the first factor most significant.
"""

import dataclasses
import functools
import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from tasks.regular import regular_task

_FACTOR = re.compile(r'([ZSAD])(\d+)')
# Each factor's table holds order**2 entries; S6 (720) is the largest S_n.
MAX_FACTOR_ORDER = 720
MAX_ORDER = 7200


def _compose(p: tuple[int, ...], q: tuple[int, ...]) -> tuple[int, ...]:
  """The permutation `p` then `q`."""
  return tuple(q[i] for i in p)


def factor_elements(factor: str) -> list:
  """The elements of one factor, identity first, in token order: integers
  for `Z<n>`, permutation tuples for `S<n>`/`A<n>`, `(rotation, flip)` for
  `D<n>`."""
  kind, n = factor[0], int(factor[1:])
  if kind == 'Z':
    return list(range(n))
  if kind == 'D':
    return [(r, f) for f in (0, 1) for r in range(n)]
  permutations = list(itertools.permutations(range(n)))
  if kind == 'S':
    return permutations
  inversions = lambda p: sum(a > b for a, b in itertools.combinations(p, 2))
  return [p for p in permutations if inversions(p) % 2 == 0]


def multiply(factor: str, a, b):
  """`a * b` in one factor, from the definitions."""
  kind, n = factor[0], int(factor[1:])
  if kind == 'Z':
    return (a + b) % n
  if kind == 'D':
    (r1, f1), (r2, f2) = a, b
    return ((r1 + (-r2 if f1 else r2)) % n, f1 ^ f2)
  return _compose(a, b)


def parse_group(group: str) -> tuple[str, ...]:
  """The factors of `group`; ValueError naming what is wrong."""
  if not isinstance(group, str) or not group:
    raise ValueError(f'group must be a name such as S5 or A4xZ5, got'
                     f' {group!r}.')
  factors = group.split('x')
  order = 1
  for factor in factors:
    match = _FACTOR.fullmatch(factor)
    if not match:
      raise ValueError(
          f'unknown group {factor!r} in {group!r}: use Z<n>, S<n>, A<n>, D<n>'
          ' or products of them joined by x, such as A4xZ5.')
    n = int(match.group(2))
    if n < 1:
      raise ValueError(f'group {factor!r} needs n >= 1.')
    factor_order = {'Z': n, 'D': 2 * n, 'S': math.factorial(n),
                    'A': max(1, math.factorial(n) // 2)}[match.group(1)]
    if factor_order > MAX_FACTOR_ORDER:
      raise ValueError(f'group {factor!r} has more than {MAX_FACTOR_ORDER}'
                       ' elements.')
    order *= factor_order
  if order > MAX_ORDER:
    raise ValueError(f'group {group!r} has {order} elements; at most'
                     f' {MAX_ORDER} are supported.')
  return tuple(factors)


@functools.cache
def _table(factor: str) -> np.ndarray:
  """`table[i, j]`: the index of element i times element j."""
  elements = factor_elements(factor)
  index = {e: i for i, e in enumerate(elements)}
  return np.array([[index[multiply(factor, a, b)] for b in elements]
                   for a in elements], np.int32)


@dataclasses.dataclass(frozen=True)
class WordProblem(regular_task.RegularTask):
  """The product of a string of group elements; every symbol is uniform."""

  group: str = 'S5'  # --group
  input_size: int = dataclasses.field(init=False)
  output_size: int = dataclasses.field(init=False)

  def __post_init__(self):
    order = int(np.prod([len(_table(f)) for f in parse_group(self.group)]))
    object.__setattr__(self, 'input_size', order)
    object.__setattr__(self, 'output_size', order)

  @property
  def factors(self) -> tuple[str, ...]:
    return parse_group(self.group)

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    # Per factor, the running product is an associative scan of the
    # factor's table (the group law is associative), then the factor
    # indices are joined back into one token.
    product_BL = jnp.zeros_like(input_BL)
    rest_BL = input_BL
    stride = self.input_size
    for factor in self.factors:
      table_GG = jnp.asarray(_table(factor))
      order = table_GG.shape[0]
      stride //= order
      element_BL = rest_BL // stride
      rest_BL = rest_BL % stride
      running_BL = jax.lax.associative_scan(
          lambda a, b, table_GG=table_GG: table_GG[a, b], element_BL, axis=1)
      product_BL = product_BL + running_BL * stride
    return product_BL, jnp.ones(input_BL.shape, bool)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    return jax.random.randint(key, (batch_size, max_length), 0,
                              self.input_size, jnp.int32)
