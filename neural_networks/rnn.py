"""Recurrent baselines: the original's Elman RNN and an LSTM, scanned over positions.

Each layer's input projection is one matmul over all positions; only the
recurrent part runs inside `jax.lax.scan`.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from neural_networks import dropout
from neural_networks import initializers


@dataclasses.dataclass(frozen=True)
class RNNConfig:
  """`cell='elman'`: the original `ElmanRNN`; `cell='lstm'`: an LSTM baseline."""

  input_size: int  # V
  output_size: int  # O
  hidden_size: int = 32  # --embed_size
  num_layers: int = 1  # --num_layers
  dropout: float = 0.0  # Between stacked layers, in training only.
  cell: str = 'elman'

  def __post_init__(self):
    if min(self.input_size, self.output_size, self.hidden_size,
           self.num_layers) < 1:
      raise ValueError(
          'input_size, output_size, hidden_size and num_layers must be >= 1.'
      )
    if self.cell not in ('elman', 'lstm'):
      raise ValueError(f"cell must be 'elman' or 'lstm', got {self.cell!r}.")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'dropout must be in [0, 1), got {self.dropout}.')

  # What the harness needs (experiments/registry.py lists the protocol).

  @classmethod
  def from_flags(cls, values: Mapping[str, Any], input_size: int,
                 output_size: int, cell: str = 'elman') -> 'RNNConfig':
    """The config of the original CLI's flag values (`--embed_size` is the
    hidden size; one layer unless `--num_layers`)."""
    return cls(input_size=input_size, output_size=output_size,
               hidden_size=values['embed_size'],
               num_layers=values['num_layers'] or 1,
               dropout=values['dropout'], cell=cell)

  def make(self, rngs: nnx.Rngs) -> 'RNN':
    return RNN(self, rngs=rngs)

  is_causal = True
  length_multiple = 1

  def run_name_parts(self) -> tuple[str, ...]:
    return (f'd{self.hidden_size}',) + (
        (f'l{self.num_layers}',) if self.num_layers > 1 else ())

  def flops(self, batch_size: int, length: int) -> float:
    """Forward matmul FLOPs: input and recurrent projections of every gate."""
    gates = 4 if self.cell == 'lstm' else 1
    return (2 * batch_size * length * self.num_layers * 2
            * self.hidden_size**2 * gates)


class RecurrentLayer(nnx.Module):
  """One torch-layout RNN layer: `weight_ih [gH, H_in]`, `weight_hh [gH, H]`, two biases."""

  def __init__(self, in_size: int, hidden_size: int, gates: int, *,
               rngs: nnx.Rngs):
    init = initializers.torch_linear(hidden_size)  # torch RNNs use U(+-1/sqrt(H)).
    E = gates * hidden_size
    self.weight_ih = nnx.Param(init(rngs.params(), (in_size, E)))
    self.weight_hh = nnx.Param(init(rngs.params(), (hidden_size, E)))
    self.bias_ih = nnx.Param(init(rngs.params(), (E,)))
    self.bias_hh = nnx.Param(init(rngs.params(), (E,)))


class RNN(nnx.Module):
  """Embedding (bias-free, std 0.02), stacked recurrent layers, output with bias."""

  def __init__(self, cfg: RNNConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    H = cfg.hidden_size
    gates = 4 if cfg.cell == 'lstm' else 1
    self.embedding = nnx.Embed(cfg.input_size, H,
                               embedding_init=initializers.normal(0.02),
                               rngs=rngs)
    self.layers = nnx.List([RecurrentLayer(H, H, gates, rngs=rngs)
                            for _ in range(cfg.num_layers)])
    self.output_projection = nnx.Linear(
        H, cfg.output_size, kernel_init=initializers.torch_linear(H),
        bias_init=initializers.torch_linear(H), rngs=rngs)

  def __call__(self, input_BL: jax.Array, length_B: jax.Array | None = None,
               key: jax.Array | None = None) -> jax.Array:
    """Logits `(B, L, O)`; causal, so padding never reaches real positions."""
    del length_B  # Padding follows the real tokens and cannot flow backwards.
    x_BLH = self.embedding(input_BL)
    n = len(self.layers)
    seeds_N = dropout.draw_seeds(key, (n,))
    for i, layer in enumerate(self.layers):
      if i > 0 and seeds_N is not None:
        x_BLH = dropout.dropout(x_BLH, self.cfg.dropout, seeds_N[i])
      x_BLH = self._run_layer(layer, x_BLH)
    return self.output_projection(x_BLH)

  def _run_layer(self, layer: RecurrentLayer, x_BLH: jax.Array) -> jax.Array:
    B, _, H = x_BLH.shape
    bias_E = layer.bias_ih[...] + layer.bias_hh[...]
    projected_LBE = (x_BLH @ layer.weight_ih[...]
                     + bias_E[None, None]).swapaxes(0, 1)
    weight_hh_HE = layer.weight_hh[...]
    zeros_BH = jnp.zeros((B, H), x_BLH.dtype)
    if self.cfg.cell == 'elman':
      def step(h_BH, projected_BE):
        h_BH = jax.nn.relu(projected_BE + h_BH @ weight_hh_HE)
        return h_BH, h_BH
      init = zeros_BH
    else:
      def step(carry, projected_BE):
        h_BH, c_BH = carry
        gates_BE = projected_BE + h_BH @ weight_hh_HE
        i_BH, f_BH, g_BH, o_BH = jnp.split(gates_BE, 4, axis=-1)  # torch order.
        c_BH = (jax.nn.sigmoid(f_BH) * c_BH
                + jax.nn.sigmoid(i_BH) * jnp.tanh(g_BH))
        h_BH = jax.nn.sigmoid(o_BH) * jnp.tanh(c_BH)
        return (h_BH, c_BH), h_BH
      init = (zeros_BH, zeros_BH)
    _, h_LBH = jax.lax.scan(step, init, projected_LBE)
    return h_LBH.swapaxes(0, 1)
