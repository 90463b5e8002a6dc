"""PyTorch-compatible initialisers, so our models start where the original's do."""

import jax
import jax.numpy as jnp


def torch_linear(fan_in: int):
  """`nn.Linear`'s default for weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / fan_in**0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def xavier_uniform():
  """`nn.init.xavier_uniform_` (the attention in-projection); symmetric in fans."""
  return jax.nn.initializers.glorot_uniform()


def normal(std: float):
  """N(0, std^2), e.g. the Transformer's embedding (std 0.02)."""
  return jax.nn.initializers.normal(std)
