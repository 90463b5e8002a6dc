"""The task interface: pure samplers of padded int32 batches, and a one-hot view."""

import abc
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Batch(NamedTuple):
  """A batch of strings padded to a static length.

  Attributes:
    input_BL: int32 token ids; positions `>= length_B` are padding (zeros).
    length_B: int32 real length of every row (the number of tokens).
    target_B: int32 label of every row, in `[0, output_size)`.
  """

  input_BL: jax.Array
  length_B: jax.Array
  target_B: jax.Array


def is_static(value) -> bool:
  """True when `value` is a concrete Python/NumPy integer, not a tracer."""
  return not isinstance(value, jax.core.Tracer)


def valid_mask_BL(length_B: jax.Array, max_length: int) -> jax.Array:
  """Boolean mask, True at the real (non-padding) positions of every row."""
  return jnp.arange(max_length)[None, :] < length_B[:, None]


@dataclasses.dataclass(frozen=True)
class Task(abc.ABC):
  """A formal-language task: strings of a requested length and one label each.

  Subclasses are frozen dataclasses (hashable, so they can be static arguments
  of `jax.jit`) with `input_size` (alphabet size) and `output_size` (number of
  classes) fields.
  """

  input_size: int
  output_size: int

  def output_length(self, length) -> int:
    """Number of output tokens the model emits for an input of `length`."""
    del length  # Every task here has one label per string.
    return 1

  def token_length(self, length):
    """Number of tokens in a string of requested `length` (what `length_B` holds)."""
    return length

  def padded_length(self, length: int) -> int:
    """The smallest `max_length` that holds a string of requested `length`."""
    return max(int(length), int(self.token_length(length)))

  def max_supported_length(self, max_length: int) -> int:
    """The largest requested length whose string fits in `max_length` tokens."""
    return max_length

  def check_sample_args(self, batch_size: int, max_length: int, length) -> None:
    """Raises ValueError for arguments no sampler can honour.

    `length` is only checked when static; a traced length is clipped to
    `[1, max_supported_length(max_length)]` by the samplers, so shapes never
    change.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
      raise ValueError(f'batch_size must be an integer, got {batch_size!r}.')
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    if isinstance(max_length, bool) or not isinstance(max_length, int):
      raise ValueError(f'max_length must be an integer, got {max_length!r}.')
    longest = self.max_supported_length(max_length)
    if longest < 1:
      raise ValueError(
          f'max_length={max_length} is too small for {type(self).__name__}:'
          f' even a string of length 1 needs {self.token_length(1)} tokens.'
      )
    if is_static(length):
      length = int(length)
      if length < 1 or length > longest:
        raise ValueError(
            f'length must be in [1, {longest}] for {type(self).__name__} with'
            f' max_length={max_length}, got {length}.'
        )

  def clip_length(self, max_length: int, length) -> jax.Array:
    """`length` as an int32 scalar inside the supported range (for traced input)."""
    return jnp.clip(
        jnp.asarray(length, jnp.int32), 1, self.max_supported_length(max_length)
    )

  @property
  def prefix_labels_are_samples(self) -> bool:
    """Whether the prefixes of sampled strings are distributed as strings
    sampled at the prefix's length, so that scoring every prefix of long
    strings (the prefix protocol) measures what sampling at each length
    would. False for tasks that balance the labels at every length."""
    return True

  @abc.abstractmethod
  def prefix_targets(self, input_BL: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Labels of every prefix: `(target_BL, is_valid_BL)`.

    `target_BL[b, t]` is the label of the string `input_BL[b, :t + 1]`, and
    `is_valid_BL[b, t]` says whether that prefix is itself a string of the
    task (e.g. only odd-length prefixes are expressions in modular
    arithmetic). Lets a causal model be scored at every length in one pass.
    """

  @abc.abstractmethod
  def sample_batch(
      self, key: jax.Array, batch_size: int, max_length: int, length
  ) -> Batch:
    """Samples `batch_size` strings of `length`, padded to `max_length` tokens.

    Pure and jittable: `length` may be a traced int32 scalar, so one compiled
    sampler serves every length up to `max_length`.
    """

  def sample_onehot(
      self, key: jax.Array, batch_size: int, length: int
  ) -> dict[str, jax.Array]:
    """DeepMind's convention: `{'input': (B, L, V) one-hot, 'output': (B, O)}`.

    Unpadded: `length` must be static, and the input has exactly as many
    positions as a string of `length` has tokens.
    """
    batch = self.sample_batch(key, batch_size, self.padded_length(length),
                              length)
    input_BL = batch.input_BL[:, : int(self.token_length(length))]
    return {
        'input': jax.nn.one_hot(input_BL, self.input_size),
        'output': jax.nn.one_hot(batch.target_B, self.output_size),
    }


def last_valid_B(value_BL: jax.Array, length_B: jax.Array) -> jax.Array:
  """`value_BL[b, length_B[b] - 1]`: a per-prefix quantity read at the end."""
  return jnp.take_along_axis(value_BL, (length_B - 1)[:, None], axis=1)[:, 0]
