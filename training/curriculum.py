"""Length curricula: pure, jittable functions of `(key, step)` -> length."""

import abc
import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Curriculum(abc.ABC):
  """Chooses the string length of every training step."""

  @abc.abstractmethod
  def sample(self, key: jax.Array, step) -> jax.Array:
    """An int32 scalar length for training step `step` (may be traced)."""

  @property
  @abc.abstractmethod
  def max_length(self) -> int:
    """The longest length `sample` can return (sizes the padded batches)."""


@dataclasses.dataclass(frozen=True)
class FixedCurriculum(Curriculum):
  """Always the same length."""

  length: int

  def __post_init__(self):
    if self.length < 1:
      raise ValueError(f'length must be >= 1, got {self.length}.')

  def sample(self, key: jax.Array, step) -> jax.Array:
    del key, step
    return jnp.int32(self.length)

  @property
  def max_length(self) -> int:
    return self.length


def _check_values(values: tuple[int, ...]) -> None:
  if not values or min(values) < 1:
    raise ValueError(f'values must be non-empty lengths >= 1, got {values}.')


@dataclasses.dataclass(frozen=True)
class UniformCurriculum(Curriculum):
  """Uniform over `values`; the original's default is `values = 1..40`."""

  values: tuple[int, ...]

  def __post_init__(self):
    object.__setattr__(self, 'values', tuple(int(v) for v in self.values))
    _check_values(self.values)

  def sample(self, key: jax.Array, step) -> jax.Array:
    del step
    return jax.random.choice(key, jnp.array(self.values, jnp.int32))

  @property
  def max_length(self) -> int:
    return max(self.values)


@dataclasses.dataclass(frozen=True)
class ReverseExponentialCurriculum(Curriculum):
  """`P(value) ∝ tau ** value`: with `tau < 1`, short strings dominate."""

  values: tuple[int, ...]
  tau: float

  def __post_init__(self):
    object.__setattr__(self, 'values', tuple(int(v) for v in self.values))
    _check_values(self.values)
    if not self.tau > 0:
      raise ValueError(f'tau must be > 0, got {self.tau}.')

  def sample(self, key: jax.Array, step) -> jax.Array:
    del step
    values_V = jnp.array(self.values, jnp.int32)
    # Logits instead of probabilities: tau ** 500 underflows float32.
    logits_V = values_V.astype(jnp.float32) * jnp.log(jnp.float32(self.tau))
    return values_V[jax.random.categorical(key, logits_V)]

  @property
  def max_length(self) -> int:
    return max(self.values)


@dataclasses.dataclass(frozen=True)
class RegularIncreaseCurriculum(Curriculum):
  """Length grows by `increase_amount` every `increase_frequency` steps.

  With `sample_all_lengths`, a step draws uniformly among the lengths reached
  so far (`initial + increase_amount * k`, `k` uniform in `0..stage`) instead
  of the newest one. Lengths are capped at `max_length` so batches have a
  static size.
  """

  initial_length: int
  increase_frequency: int
  increase_amount: int
  sample_all_lengths: bool
  length_cap: int

  def __post_init__(self):
    if self.initial_length < 1 or self.increase_frequency < 1:
      raise ValueError('initial_length and increase_frequency must be >= 1.')
    if self.increase_amount < 0:
      raise ValueError('increase_amount must be >= 0.')
    if self.length_cap < self.initial_length:
      raise ValueError('length_cap must be >= initial_length.')

  def sample(self, key: jax.Array, step) -> jax.Array:
    stage = jnp.asarray(step, jnp.int32) // self.increase_frequency
    if self.sample_all_lengths:
      stage = jax.random.randint(key, (), 0, stage + 1)
    length = self.initial_length + self.increase_amount * stage
    return jnp.minimum(length, self.length_cap).astype(jnp.int32)

  @property
  def max_length(self) -> int:
    return self.length_cap
