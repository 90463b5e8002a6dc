"""The seven Tomita grammars (Tomita, 1982): binary recognition tasks."""

import dataclasses

from tasks.regular import automaton as automaton_lib

# Minimal DFAs: (next_state[s] = (on 0, on 1), accepting states). A state
# named `sink` rejects forever.
_GRAMMARS = {
    # 1*
    1: (((1, 0), (1, 1)), {0}),
    # (10)*: 0 expects a 1, 1 expects a 0, 2 is the sink.
    2: (((2, 1), (0, 2), (2, 2)), {0}),
    # No odd run of 1s directly followed by an odd run of 0s: 0 even 1s
    # (or only 0s), 1 odd 1s, 2 odd 1s then odd 0s, 3 odd 1s then even 0s,
    # 4 the sink.
    3: (((0, 1), (2, 0), (3, 4), (2, 1), (4, 4)), {0, 1, 3}),
    # No 000: the count of trailing 0s, 3 the sink.
    4: (((1, 0), (2, 0), (3, 0), (3, 3)), {0, 1, 2}),
    # An even number of 0s and an even number of 1s: state 2 * p0 + p1.
    5: (((2, 1), (3, 0), (0, 3), (1, 2)), {0}),
    # (#0 - #1) mod 3 == 0.
    6: (((1, 2), (2, 0), (0, 1)), {0}),
    # 0*1*0*1*: the phase reached, 4 the sink.
    7: (((0, 1), (2, 1), (2, 3), (4, 3), (4, 4)), {0, 1, 2, 3}),
}
GRAMMARS = tuple(sorted(_GRAMMARS))


@dataclasses.dataclass(frozen=True)
class Tomita(automaton_lib.AutomatonTask):
  """Accept (1) or reject (0) a binary string, balanced at every length."""

  grammar: int = 1
  input_size: int = 2
  output_size: int = 2
  mode: str = 'recognition'

  def __post_init__(self):
    if self.grammar not in _GRAMMARS:
      raise ValueError(f'the Tomita grammar must be one of {GRAMMARS}, got'
                       f' {self.grammar!r}.')
    super().__post_init__()

  def automaton(self) -> automaton_lib.Automaton:
    next_state, accepting = _GRAMMARS[self.grammar]
    return automaton_lib.Automaton(
        next_state=next_state, start=0,
        labels=tuple(int(s in accepting) for s in range(len(next_state))))
