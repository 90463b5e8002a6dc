"""Parallel parity: n parity automata driven by interleaved tokens."""

import dataclasses

import jax
import jax.numpy as jnp

from tasks.regular import regular_task


@dataclasses.dataclass(frozen=True)
class ParallelParityCheck(regular_task.RegularTask):
  """Token `k * n + i` drives automaton `i`; the label is the joint state.

  With explicit tokens automaton `i` reads symbols `{2i, 2i + 1}` (bit = id
  mod 2), otherwise every automaton reads `{0, 1}`. The label is
  `sum_i parity_i * 2**i`. A requested `length` counts symbols per
  automaton, so rows hold `n * length` tokens and `max_length` (the padded
  token length) must be at least that.
  """

  num_automata: int = 2  # --num_parity_automata
  explicit_tokens: bool = True  # --explicit_tokens_parity
  input_size: int = dataclasses.field(init=False)
  output_size: int = dataclasses.field(init=False)

  def __post_init__(self):
    if self.num_automata < 1:
      raise ValueError(
          f'num_automata must be >= 1, got {self.num_automata}.'
      )
    n = self.num_automata
    object.__setattr__(self, 'input_size', 2 * n if self.explicit_tokens else 2)
    object.__setattr__(self, 'output_size', 2**n)

  def token_length(self, length):
    return self.num_automata * length

  def max_supported_length(self, max_length: int) -> int:
    return max_length // self.num_automata

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    n, L = self.num_automata, input_BL.shape[1]
    automaton_L = jnp.arange(L) % n
    bit_BL = input_BL % 2
    # parity_BLn[b, t, i]: parity of automaton i after the first t + 1 tokens.
    drives_Ln = automaton_L[:, None] == jnp.arange(n)[None, :]
    parity_BLn = jnp.cumsum(bit_BL[:, :, None] * drives_Ln[None], axis=1) % 2
    weight_n = 2 ** jnp.arange(n)
    target_BL = (parity_BLn * weight_n[None, None]).sum(-1).astype(jnp.int32)
    is_valid_L = (jnp.arange(L) + 1) % n == 0
    return target_BL, jnp.broadcast_to(is_valid_L, input_BL.shape)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    bits_BL = jax.random.randint(key, (batch_size, max_length), 0, 2, jnp.int32)
    if self.explicit_tokens:
      automaton_L = jnp.arange(max_length, dtype=jnp.int32) % self.num_automata
      bits_BL = bits_BL + 2 * automaton_L[None, :]
    return bits_BL
