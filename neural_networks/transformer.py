"""The Transformer encoder baseline (no positional encoding) and the universal Transformer."""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
from flax import nnx

from neural_networks import attention
from neural_networks import dropout
from neural_networks import initializers
from neural_networks import layers


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """The original `Transformer`, or `UniversalTransformer` when `universal_group_size` is set."""

  input_size: int  # V
  output_size: int  # O
  d_model: int = 64  # D; --embed_size
  num_heads: int = 8  # H; --num_heads
  num_layers: int = 5  # --num_layers: total layer applications.
  norm_type: str = 'prenorm'  # --norm_type
  is_causal: bool = False  # --is_causal
  dropout: float = 0.0  # --dropout
  init_type: str = 'pytorch'  # --init_type
  # G distinct layers applied num_layers / G times (standard stack each time);
  # None: num_layers distinct layers. The universal Transformer also drops out
  # attention weights, as the original does.
  universal_group_size: int | None = None

  def __post_init__(self):
    if self.input_size < 1 or self.output_size < 1:
      raise ValueError('input_size and output_size must be >= 1.')
    if self.num_layers < 1:
      raise ValueError(f'num_layers must be >= 1, got {self.num_layers}.')
    G = self.universal_group_size
    if G is not None and (G < 1 or self.num_layers % G):
      raise ValueError(
          f'num_layers={self.num_layers} must be divisible by'
          f' group_size={G}.'
      )
    if self.init_type not in layers.INIT_TYPES:
      raise ValueError(
          f'init_type must be one of {layers.INIT_TYPES}, got'
          f' {self.init_type!r}.'
      )
    self.layer_config()

  def layer_config(self) -> layers.LayerConfig:
    return layers.LayerConfig(
        self.d_model, self.num_heads, self.dropout, self.norm_type,
        attention_dropout=self.universal_group_size is not None)

  # What the harness needs (experiments/registry.py lists the protocol).

  @classmethod
  def from_flags(cls, values: Mapping[str, Any], input_size: int,
                 output_size: int, universal: bool = False
                 ) -> 'TransformerConfig':
    """The config of the original CLI's flag values; `universal`: the
    `universal_transformer` architecture (`--group_size` distinct layers)."""
    if values['num_layers'] is None:
      raise ValueError('--num_layers is required for this architecture.')
    return cls(
        input_size=input_size, output_size=output_size,
        d_model=values['embed_size'], num_heads=values['num_heads'],
        num_layers=values['num_layers'], norm_type=values['norm_type'],
        is_causal=bool(values['is_causal']), dropout=values['dropout'],
        init_type=values['init_type'],
        universal_group_size=values['group_size'] if universal else None)

  def make(self, rngs: nnx.Rngs) -> 'Transformer':
    return Transformer(self, rngs=rngs)

  length_multiple = 1

  def run_name_parts(self) -> tuple[str, ...]:
    return f'd{self.d_model}', f'h{self.num_heads}', f'l{self.num_layers}'

  def flops(self, batch_size: int, length: int) -> float:
    """Forward matmul and attention FLOPs, padding included."""
    B, L, D = batch_size, length, self.d_model
    return self.num_layers * B * L * (24 * D * D + 4 * L * D)


class Transformer(nnx.Module):
  """Linear embedding of the one-hot input, an encoder stack, bias-free output."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D = cfg.d_model
    self.embedding = nnx.Embed(cfg.input_size, D,
                               embedding_init=initializers.normal(0.02),
                               rngs=rngs)
    distinct = cfg.universal_group_size or cfg.num_layers
    self.layers = layers.make_layers(cfg.layer_config(), distinct,
                                     cfg.init_type, rngs)
    self.final_norm = (layers.layer_norm(D, rngs)
                       if cfg.norm_type == 'prenorm' else None)
    self.output = nnx.Linear(D, cfg.output_size, use_bias=False,
                             kernel_init=initializers.torch_linear(D),
                             rngs=rngs)

  def __call__(self, input_BL: jax.Array, length_B: jax.Array | None = None,
               key: jax.Array | None = None) -> jax.Array:
    """Logits `(B, L, O)`; padding (at or past `length_B`) is never attended."""
    x_BLD = self.embedding(input_BL)
    mask_BLL = attention.sequence_mask(length_B, x_BLD.shape[1],
                                       self.cfg.is_causal)
    n = self.cfg.num_layers
    seeds_NS = dropout.draw_seeds(key, (n, layers.DROPOUT_SITES))
    for i in range(n):
      x_BLD = self.layers[i % len(self.layers)](
          x_BLD, None, mask_BLL, None if seeds_NS is None else seeds_NS[i])
    if self.final_norm is not None:
      x_BLD = self.final_norm(x_BLD)
    return self.output(x_BLD)
