"""Flip-flop: remember the last bit written, across long stretches of noise."""

import dataclasses

from tasks.regular import automaton as automaton_lib

WRITE_0, WRITE_1, IGNORE, READ = range(4)
# Writes are rare, so the bit to recall was mostly written long ago (Liu et
# al., 2023, "Exposing Attention Glitches with Flip-Flop Language Modeling",
# draw sparse writes the same way).
_WEIGHTS = (0.05, 0.05, 0.8, 0.1)


@dataclasses.dataclass(frozen=True)
class FlipFlop(automaton_lib.AutomatonTask):
  """Symbols write 0, write 1, ignore, read; the label is the last bit
  written (0 before any write): `2 1 2 3 2 -> 1`."""

  input_size: int = 4
  output_size: int = 2

  def automaton(self) -> automaton_lib.Automaton:
    # State = the bit held; only writes change it.
    return automaton_lib.Automaton(
        next_state=((0, 1, 0, 0), (0, 1, 1, 1)), start=0, labels=(0, 1),
        symbol_weights=_WEIGHTS)
