"""The Transformer encoder layer and the shared layer group of the staircase model."""

import copy
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from neural_networks import attention
from neural_networks import dropout
from neural_networks import initializers

NORM_TYPES = ('prenorm', 'postnorm')
# Dropout sites of a layer, each with its own seed: attention weights,
# attention output, feed-forward hidden units, feed-forward output.
DROPOUT_SITES = 4
INIT_TYPES = ('pytorch', 'independent')


@dataclasses.dataclass(frozen=True)
class LayerConfig:
  """One encoder layer, as `torch.nn.TransformerEncoderLayer` with ReLU."""

  d_model: int  # D; --embed_size
  num_heads: int  # H; --num_heads
  dropout: float = 0.0  # --dropout: attention output and feed-forward only.
  norm_type: str = 'prenorm'  # --norm_type
  feedforward_multiplier: int = 4  # F = 4 D
  attention_dropout: bool = False  # Also on attention weights (universal TF).

  def __post_init__(self):
    if self.d_model < 1 or self.num_heads < 1:
      raise ValueError('d_model and num_heads must be >= 1.')
    if self.d_model % self.num_heads:
      raise ValueError(
          f'd_model (--embed_size) = {self.d_model} must be divisible by'
          f' num_heads (--num_heads) = {self.num_heads}.'
      )
    if self.norm_type not in NORM_TYPES:
      raise ValueError(
          f'norm_type must be one of {NORM_TYPES}, got {self.norm_type!r}.'
      )
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'dropout must be in [0, 1), got {self.dropout}.')


def layer_norm(d_model: int, rngs: nnx.Rngs) -> nnx.LayerNorm:
  """torch's LayerNorm: eps 1e-5, biased variance computed as E[(x - mean)^2]."""
  return nnx.LayerNorm(d_model, epsilon=1e-5, use_fast_variance=False,
                       rngs=rngs)


class EncoderLayer(nnx.Module):
  """Self-attention and a ReLU feed-forward, each with a residual (pre/post-norm)."""

  def __init__(self, cfg: LayerConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, F = cfg.d_model, cfg.feedforward_multiplier * cfg.d_model
    self.self_attn = attention.MultiHeadAttention(
        D, cfg.num_heads, rngs=rngs,
        dropout=cfg.dropout if cfg.attention_dropout else 0.0)
    self.linear1 = nnx.Linear(D, F, kernel_init=initializers.torch_linear(D),
                              bias_init=initializers.torch_linear(D), rngs=rngs)
    self.linear2 = nnx.Linear(F, D, kernel_init=initializers.torch_linear(F),
                              bias_init=initializers.torch_linear(F), rngs=rngs)
    self.norm1 = layer_norm(D, rngs)
    self.norm2 = layer_norm(D, rngs)

  def __call__(self, x_BQD: jax.Array, c_BMD: jax.Array | None,
               mask_BQM: jax.Array, seeds_S: jax.Array | None = None
               ) -> jax.Array:
    """Queries from `x`, keys/values from `c` (from `x` itself when None).

    `seeds_S`: DROPOUT_SITES uint32 seeds (dropout.draw_seeds), or None.
    """
    seeds = [None] * DROPOUT_SITES if seeds_S is None else list(seeds_S)
    rate = self.cfg.dropout
    if self.cfg.norm_type == 'prenorm':
      c = None if c_BMD is None else self.norm1(c_BMD)
      y_BQD = self.self_attn(self.norm1(x_BQD), c, mask_BQM, seeds[0])
      x_BQD = x_BQD + dropout.dropout(y_BQD, rate, seeds[1])
      x_BQD = x_BQD + self._feed_forward(self.norm2(x_BQD), seeds[2:])
    else:
      y_BQD = self.self_attn(x_BQD, c_BMD, mask_BQM, seeds[0])
      x_BQD = self.norm1(x_BQD + dropout.dropout(y_BQD, rate, seeds[1]))
      x_BQD = self.norm2(x_BQD + self._feed_forward(x_BQD, seeds[2:]))
    return x_BQD

  def _feed_forward(self, x_BQD: jax.Array, seeds) -> jax.Array:
    h_BQF = dropout.dropout(jax.nn.relu(self.linear1(x_BQD)), self.cfg.dropout,
                            seeds[0])
    return dropout.dropout(self.linear2(h_BQF), self.cfg.dropout, seeds[1])


def make_layers(cfg: LayerConfig, count: int, init_type: str,
                rngs: nnx.Rngs) -> nnx.List:
  """`count` layers: copies of one initial layer ('pytorch', as the original
  deep-copies one layer into every slot of a stack) or independently
  initialised ones ('independent')."""
  if init_type not in INIT_TYPES:
    raise ValueError(
        f'init_type must be one of {INIT_TYPES}, got {init_type!r}.'
    )
  if init_type == 'pytorch':
    first = EncoderLayer(cfg, rngs=rngs)
    return nnx.List([first] + [copy.deepcopy(first) for _ in range(count - 1)])
  return nnx.List([EncoderLayer(cfg, rngs=rngs) for _ in range(count)])


class Group(nnx.Module):
  """G distinct layers applied in order: one recurrent step of the staircase.

  With `kv_from_group_input` (the original's behaviour) every layer takes its
  keys/values from the group's input `c`, not from the previous layer's
  output; otherwise it is an ordinary encoder stack.
  """

  def __init__(self, cfg: LayerConfig, group_size: int, *, rngs: nnx.Rngs,
               init_type: str = 'pytorch', kv_from_group_input: bool = True):
    if group_size < 1:
      raise ValueError(f'group_size must be >= 1, got {group_size}.')
    self.layers = make_layers(cfg, group_size, init_type, rngs)
    self.kv_from_group_input = kv_from_group_input

  def __call__(self, x_BQD: jax.Array, extra_BED: jax.Array | None,
               mask_BQM: jax.Array, seeds_GS: jax.Array | None = None
               ) -> jax.Array:
    """Applies the G layers; keys/values are `[extra; group or layer input]`.

    `extra` (E tokens: cached or diagonal states, or None) comes first, so
    `mask_BQM` has `M = E + Q` columns. `seeds_GS`: dropout seeds per layer.
    """
    G = len(self.layers)
    seeds = [None] * G if seeds_GS is None else list(seeds_GS)
    group_input_BQD = x_BQD
    for i, layer in enumerate(self.layers):
      own_input_BQD = group_input_BQD if self.kv_from_group_input else x_BQD
      if extra_BED is not None:
        c_BMD = jnp.concatenate([extra_BED, own_input_BQD], axis=1)
      elif own_input_BQD is x_BQD:
        c_BMD = None  # Plain self-attention.
      else:
        c_BMD = own_input_BQD
      x_BQD = layer(x_BQD, c_BMD, mask_BQM, seeds[i])
    return x_BQD
