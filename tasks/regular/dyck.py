"""Bounded-depth Dyck: balanced brackets of k kinds, nested at most D deep."""

import dataclasses
import functools
import itertools

from tasks.regular import automaton as automaton_lib


@functools.cache
def _automaton(brackets: int, depth: int) -> automaton_lib.Automaton:
  # A state is the stack of open brackets (a tuple of kinds), plus a sink.
  stacks = [s for d in range(depth + 1)
            for s in itertools.product(range(brackets), repeat=d)]
  index = {stack: i for i, stack in enumerate(stacks)}
  sink = len(stacks)
  next_state = []
  for stack in stacks:
    row = []
    for symbol in range(2 * brackets):
      kind, closes = divmod(symbol, 2)
      if not closes:
        row.append(index.get(stack + (kind,), sink))  # Too deep: sink.
      else:
        row.append(index[stack[:-1]] if stack and stack[-1] == kind
                   else sink)
    next_state.append(tuple(row))
  next_state.append((sink,) * (2 * brackets))
  labels = tuple(int(i == index[()]) for i in range(sink + 1))
  return automaton_lib.Automaton(tuple(next_state), index[()], labels)


@dataclasses.dataclass(frozen=True)
class Dyck(automaton_lib.AutomatonTask):
  """Symbol `2k` opens and `2k + 1` closes a bracket of kind `k`; accept
  (1) a balanced string whose nesting never passes `depth`, else reject (0).
  Balanced at every even length; odd lengths are all rejected."""

  brackets: int = 2  # --dyck_brackets
  depth: int = 3  # --dyck_depth
  input_size: int = dataclasses.field(init=False)
  output_size: int = 2
  mode: str = 'recognition'

  def __post_init__(self):
    if self.brackets < 1 or self.depth < 1:
      raise ValueError('Dyck needs brackets >= 1 and depth >= 1, got'
                       f' brackets={self.brackets}, depth={self.depth}.')
    if self.brackets ** self.depth > 4096:
      raise ValueError('Dyck with brackets**depth > 4096 has too many states'
                       f' (brackets={self.brackets}, depth={self.depth}).')
    object.__setattr__(self, 'input_size', 2 * self.brackets)
    super().__post_init__()

  def automaton(self) -> automaton_lib.Automaton:
    return _automaton(self.brackets, self.depth)
