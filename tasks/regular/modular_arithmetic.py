"""Modular arithmetic: the value mod 5 of an expression like `1+2*3-4`."""

import dataclasses

import jax
import jax.numpy as jnp

from tasks.regular import regular_task

PLUS, MINUS, TIMES, BLANK = 5, 6, 7, 8  # Token ids after the digits 0..4.
# A tuple, not an array: importing the task must not start a JAX backend
# (multi-host runs call jax.distributed.initialize after the imports).
_OPERATORS = (PLUS, MINUS, TIMES)


def _prefix_values(input_BL: jax.Array) -> jax.Array:
  """Value mod 5 of every prefix that ends with a digit (junk elsewhere).

  Scans left to right keeping the finished sum of terms, the sign of the open
  term and its running product, so `*` binds tighter than `+` and `-`.
  """

  def step(carry, token_B):
    total_B, sign_B, term_B, times_B = carry
    is_digit_B = token_B < 5
    new_term_B = jnp.where(times_B, term_B * token_B, token_B) % 5
    closes_B = ~is_digit_B & (token_B != TIMES)
    total_B = jnp.where(closes_B, (total_B + sign_B * term_B) % 5, total_B)
    sign_B = jnp.where(closes_B, jnp.where(token_B == MINUS, -1, 1), sign_B)
    term_B = jnp.where(is_digit_B, new_term_B, term_B)
    times_B = ~is_digit_B & (token_B == TIMES)
    value_B = (total_B + sign_B * term_B) % 5
    return (total_B, sign_B, term_B, times_B), value_B

  B = input_BL.shape[0]
  zeros_B = jnp.zeros((B,), jnp.int32)
  init = (zeros_B, zeros_B + 1, zeros_B, jnp.zeros((B,), bool))
  _, value_LB = jax.lax.scan(step, init, input_BL.T)
  return value_LB.T


@dataclasses.dataclass(frozen=True)
class ModularArithmetic(regular_task.RegularTask):
  """Digits 0..4 alternating with `+ - *` (ids 5, 6, 7), usual precedence.

  `1-2*3 -> (1 - 6) mod 5 = 0`. Only odd lengths are expressions: an even
  requested length `L` gives strings of `L - 1` tokens, and `length_B` says
  so. The id 8 (`_`) is part of the alphabet but never sampled.
  """

  input_size: int = 9
  output_size: int = 5

  def token_length(self, length):
    return length - 1 + length % 2

  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    is_valid_L = jnp.arange(input_BL.shape[1]) % 2 == 0
    return _prefix_values(input_BL), jnp.broadcast_to(is_valid_L, input_BL.shape)

  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    """Digits at even positions, operators at odd ones."""
    digit_key, operator_key = jax.random.split(key)
    shape = (batch_size, max_length)
    digits_BL = jax.random.randint(digit_key, shape, 0, 5, jnp.int32)
    operators_BL = jnp.array(_OPERATORS, jnp.int32)[
        jax.random.randint(operator_key, shape, 0, 3)]
    is_digit_L = jnp.arange(max_length) % 2 == 0
    return jnp.where(is_digit_L, digits_BL, operators_BL)
