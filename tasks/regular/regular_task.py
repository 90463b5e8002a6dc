"""The template of a regular task: a token sampler and per-prefix labels.

A task writes `sample_tokens` (unmasked tokens of a static shape) and
`prefix_targets` (the label of every prefix); the template checks the
arguments, clips a traced length into the supported range, zeroes the
padding and reads the label of the whole string at its last real token, so
the fast evaluation protocol and the samplers can never disagree.
"""

import abc
import dataclasses

import jax
import jax.numpy as jnp

from tasks import task


@dataclasses.dataclass(frozen=True)
class RegularTask(task.Task):
  """`sample_batch` from `sample_tokens` and `prefix_targets`."""

  @abc.abstractmethod
  def sample_tokens(self, key: jax.Array, batch_size: int,
                    max_length: int) -> jax.Array:
    """`(batch_size, max_length)` int32 tokens; positions past a row's
    length are zeroed by the template, so draw every position."""

  def sample_tokens_of_length(self, key: jax.Array, batch_size: int,
                              max_length: int, length: jax.Array
                              ) -> jax.Array:
    """Tokens for rows of `length` real tokens (a traced int32 scalar);
    by default `sample_tokens`, which ignores the length."""
    del length
    return self.sample_tokens(key, batch_size, max_length)

  def sample_batch(
      self, key: jax.Array, batch_size: int, max_length: int, length
  ) -> task.Batch:
    self.check_sample_args(batch_size, max_length, length)
    length = self.token_length(self.clip_length(max_length, length))
    length_B = jnp.full((batch_size,), length, jnp.int32)
    tokens_BL = self.sample_tokens_of_length(key, batch_size, max_length,
                                             length)
    tokens_BL = jnp.where(task.valid_mask_BL(length_B, max_length), tokens_BL,
                          0)
    target_B = task.last_valid_B(self.prefix_targets(tokens_BL)[0], length_B)
    return task.Batch(tokens_BL, length_B, target_B)
