"""First: the label is the first symbol, however long the string."""

import dataclasses

from tasks.regular import automaton as automaton_lib


@dataclasses.dataclass(frozen=True)
class FirstSymbol(automaton_lib.AutomatonTask):
  """Binary strings labelled by their first symbol: `1000 -> 1`."""

  input_size: int = 2
  output_size: int = 2

  def automaton(self) -> automaton_lib.Automaton:
    # State 0: nothing read yet; state 1 + a: the first symbol was a.
    return automaton_lib.Automaton(
        next_state=((1, 2), (1, 1), (2, 2)), start=0, labels=(0, 0, 1))
