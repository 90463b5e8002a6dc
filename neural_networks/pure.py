"""Modules as pure `init`/`apply` pairs: the only bridge between NNX and plain JAX."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from flax import nnx

Params = Any  # A pytree of arrays: nnx.State for our modules, a dict for Haiku.


class PureModel(NamedTuple):
  """`init(key) -> params`; `apply(params, input_BL, length_B, key) -> logits_BLO`.

  `length_B` (or None: every position is real) marks padding; `key` (or None
  for evaluation) drives dropout.
  """

  init: Callable[[jax.Array], Params]
  apply: Callable[[Params, jax.Array, jax.Array | None, jax.Array | None],
                  jax.Array]


def from_nnx(make: Callable[[nnx.Rngs], nnx.Module]) -> PureModel:
  """Wraps a module factory; the module is rebuilt from its params at each call."""
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: make(nnx.Rngs(0))))

  def init(key: jax.Array) -> Params:
    return nnx.state(make(nnx.Rngs(key)), nnx.Param)

  def apply(params: Params, input_BL: jax.Array, length_B: jax.Array | None,
            key: jax.Array | None) -> jax.Array:
    return nnx.merge(graphdef, params)(input_BL, length_B, key)

  return PureModel(init, apply)
