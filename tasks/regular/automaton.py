"""A regular task defined by a deterministic finite automaton.

A subclass gives its automaton: the alphabet size, a transition table
`next_state[state][symbol]`, the start state and a label for every state.
Per-prefix labels are a scan over the table, so the fast (prefix)
evaluation protocol works for every automaton. Two label modes:

- `state`: the label of the state the string ends in (cycle navigation,
  the word problems); symbols are drawn independently, with optional
  weights.
- `recognition`: 1 if the string is accepted (it ends in a state labelled
  1), else 0. Strings are balanced 50/50 at every length: half are drawn
  uniformly among the accepted strings of that exact length and half among
  the rejected ones, by counting the paths that complete each prefix. A
  length with strings of one class only gives that class.
"""

import abc
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from tasks.regular import regular_task

MODES = ('state', 'recognition')


@dataclasses.dataclass(frozen=True)
class Automaton:
  """A complete DFA over symbols `0..num_symbols-1`.

  Attributes:
    next_state: `next_state[s][a]`, the state after reading `a` in `s`.
    start: the state before the first symbol.
    labels: the label of every state (1 = accepting in recognition mode).
    symbol_weights: relative probabilities of the symbols in `state` mode
      (None: uniform).
  """

  next_state: tuple[tuple[int, ...], ...]
  start: int
  labels: tuple[int, ...]
  symbol_weights: tuple[float, ...] | None = None

  def __post_init__(self):
    table = np.asarray(self.next_state)
    if table.ndim != 2 or table.size == 0:
      raise ValueError('next_state must be a non-empty states x symbols'
                       ' table.')
    num_states = table.shape[0]
    if table.min() < 0 or table.max() >= num_states:
      raise ValueError(f'next_state must hold states 0..{num_states - 1}.')
    if not 0 <= self.start < num_states:
      raise ValueError(f'start must be a state, got {self.start}.')
    if len(self.labels) != num_states or min(self.labels) < 0:
      raise ValueError('labels must give every state a label >= 0.')
    if self.symbol_weights is not None and (
        len(self.symbol_weights) != table.shape[1]
        or min(self.symbol_weights) < 0 or sum(self.symbol_weights) <= 0):
      raise ValueError('symbol_weights must give every symbol a weight >= 0.')

  @property
  def num_symbols(self) -> int:
    return len(self.next_state[0])


def prefix_states_BL(automaton: Automaton, input_BL: jax.Array) -> jax.Array:
  """The state after each prefix: one scan over the positions."""
  table_SA = jnp.asarray(automaton.next_state, jnp.int32)

  def step(state_B, symbol_B):
    state_B = table_SA[state_B, symbol_B]
    return state_B, state_B

  start_B = jnp.full(input_BL.shape[:1], automaton.start, jnp.int32)
  _, state_LB = jax.lax.scan(step, start_B, input_BL.T)
  return state_LB.T


def log_completions_KS(automaton: Automaton, accepting_S: np.ndarray,
                       max_length: int) -> jax.Array:
  """`[k, s]`: log of the number of length-`k` strings that lead from `s`
  to a state in `accepting_S` (minus infinity when there is none), for
  `k = 0..max_length`. Logs, because counts overflow at long lengths."""
  table_SA = jnp.asarray(automaton.next_state, jnp.int32)

  def step(log_count_S, _):
    log_count_S = jax.nn.logsumexp(log_count_S[table_SA], axis=1)
    return log_count_S, log_count_S

  log_count_S = jnp.where(jnp.asarray(accepting_S), 0.0, -jnp.inf)
  _, log_count_KS = jax.lax.scan(step, log_count_S, None, length=max_length)
  return jnp.concatenate([log_count_S[None], log_count_KS])


@dataclasses.dataclass(frozen=True)
class AutomatonTask(regular_task.RegularTask):
  """A regular task whose labels come from `automaton()`."""

  mode: str = 'state'

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}.')
    automaton = self.automaton()
    if automaton.num_symbols != self.input_size:
      raise ValueError(f'the automaton reads {automaton.num_symbols} symbols'
                       f' but input_size is {self.input_size}.')
    if max(automaton.labels) >= self.output_size:
      raise ValueError(f'labels must be < output_size={self.output_size}.')
    if self.mode == 'recognition' and set(automaton.labels) - {0, 1}:
      raise ValueError('recognition needs labels 0 (reject) and 1 (accept).')

  @abc.abstractmethod
  def automaton(self) -> Automaton:
    """The automaton (build it once: cache it on the class if it is big)."""

  @property
  def prefix_labels_are_samples(self) -> bool:
    # A balanced string's prefixes are not balanced: score each length on
    # strings sampled at that length.
    return self.mode == 'state'

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    automaton = self.automaton()
    labels_S = jnp.asarray(automaton.labels, jnp.int32)
    target_BL = labels_S[prefix_states_BL(automaton, input_BL)]
    return target_BL, jnp.ones(input_BL.shape, bool)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    weights = self.automaton().symbol_weights
    if weights is None:
      return jax.random.randint(key, (batch_size, max_length), 0,
                                self.input_size, jnp.int32)
    logits_A = jnp.log(jnp.asarray(weights, jnp.float32))
    return jax.random.categorical(key, logits_A, shape=(batch_size,
                                                        max_length)
                                  ).astype(jnp.int32)

  def sample_tokens_of_length(self, key: jax.Array, batch_size: int,
                              max_length: int, length: jax.Array
                              ) -> jax.Array:
    if self.mode == 'state':
      return self.sample_tokens(key, batch_size, max_length)
    return _balanced_tokens(self.automaton(), key, batch_size, max_length,
                            length)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _balanced_tokens(automaton: Automaton, key: jax.Array, batch_size: int,
                     max_length: int, length: jax.Array) -> jax.Array:
  """Half the rows uniform over accepted strings of `length`, half over
  rejected ones (all of one class where the other is empty)."""
  accepting_S = np.asarray(automaton.labels) == 1
  log_count_CKS = jnp.stack([
      log_completions_KS(automaton, ~accepting_S, max_length),
      log_completions_KS(automaton, accepting_S, max_length)])
  table_SA = jnp.asarray(automaton.next_state, jnp.int32)
  class_key, symbol_key = jax.random.split(key)
  wanted_B = jax.random.bernoulli(class_key, 0.5, (batch_size,)).astype(
      jnp.int32)
  exists_C = jnp.isfinite(log_count_CKS[:, length, automaton.start])
  wanted_B = jnp.where(exists_C[wanted_B], wanted_B, 1 - wanted_B)

  def step(state_B, inputs):
    position, step_key = inputs
    # Completions of each next symbol with `length - position - 1` symbols
    # left: the chance of the symbol among the wanted class's strings.
    left = jnp.clip(length - position - 1, 0, max_length)
    next_BA = table_SA[state_B]
    logits_BA = log_count_CKS[wanted_B[:, None], left, next_BA]
    symbol_B = jax.random.categorical(step_key, logits_BA).astype(jnp.int32)
    symbol_B = jnp.where(position < length, symbol_B, 0)
    return table_SA[state_B, symbol_B], symbol_B

  start_B = jnp.full((batch_size,), automaton.start, jnp.int32)
  _, symbol_LB = jax.lax.scan(step, start_B, (
      jnp.arange(max_length), jax.random.split(symbol_key, max_length)))
  return symbol_LB.T
