"""The staircase (chunked, layer-recurrent) Transformer: a shared group scanned over chunks.

One set of parameters, two modes. *Parallel*: the group is applied P times
to the whole sequence. *Staircase*: the sequence is cut into chunks of C
tokens; a window of the P most recent chunks passes through the group once
per row, so a chunk's higher layers feed the next chunk's lower layers
(docs/staircase.md explains the scan and the original's quirks it keeps).
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from neural_networks import attention
from neural_networks import dropout
from neural_networks import initializers
from neural_networks import layers
from neural_networks import longest_length

MODES = ('parallel', 'staircase')


def resolve_recurrent_calls(num_layers: int | None,
                            num_recurrent_calls: int | None,
                            group_size: int) -> int:
  """P from the original's `--num_layers` or `--num_recurrent_calls` (exactly one)."""
  if (num_layers is None) == (num_recurrent_calls is None):
    raise ValueError(
        'Give exactly one of num_layers and num_recurrent_calls, got'
        f' num_layers={num_layers}, num_recurrent_calls={num_recurrent_calls}.'
    )
  if num_recurrent_calls is not None:
    return num_recurrent_calls
  if group_size < 1 or num_layers % group_size:
    raise ValueError(
        f'num_layers={num_layers} must be divisible by'
        f' group_size={group_size}.'
    )
  return num_layers // group_size


@dataclasses.dataclass(frozen=True)
class StaircaseConfig:
  """The original `MyStaircaseTransformer` and the options it lacked."""

  input_size: int  # V: model vocabulary (task alphabet + harness ids).
  output_size: int  # O
  d_model: int = 64  # D; --embed_size
  num_heads: int = 8  # H; --num_heads
  group_size: int = 2  # G; --group_size
  num_recurrent_calls: int = 2  # P; --num_recurrent_calls
  chunk_size: int = 2  # C; --fix_staircase_size_forward
  cache_steps: int = 0  # --staircase_cache_steps: 0 none, k last k, -1 all.
  diagonal: bool = False  # --diagonal: same-depth states of earlier chunks.
  norm_type: str = 'prenorm'  # --norm_type
  is_causal: bool = True  # --is_causal; staircase mode requires it.
  dropout: float = 0.0  # --dropout
  mode: str = 'staircase'  # 'parallel' or 'staircase'
  kv_from_group_input: bool = True  # False: a standard per-layer stack.
  init_type: str = 'pytorch'  # --init_type: 'pytorch' (copies) or 'independent'.
  scan_unroll: int = 1  # Rows per loop iteration (speed only).

  def __post_init__(self):
    if self.input_size < 1 or self.output_size < 1:
      raise ValueError('input_size and output_size must be >= 1.')
    if self.chunk_size < 1:
      raise ValueError(
          'chunk_size (--fix_staircase_size_forward) must be >= 1, got'
          f' {self.chunk_size}.'
      )
    if self.num_recurrent_calls < 1:
      raise ValueError(
          f'num_recurrent_calls must be >= 1, got {self.num_recurrent_calls}.'
      )
    if self.group_size < 1:
      raise ValueError(f'group_size must be >= 1, got {self.group_size}.')
    if self.cache_steps < -1:
      raise ValueError(
          'cache_steps (--staircase_cache_steps) must be -1 (all), 0 (none)'
          f' or a positive count, got {self.cache_steps}.'
      )
    if self.mode not in MODES:
      raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}.')
    if self.mode == 'staircase' and not self.is_causal:
      raise ValueError('Staircase mode needs causal attention (--is_causal=1).')
    if self.init_type not in layers.INIT_TYPES:
      raise ValueError(
          f'init_type must be one of {layers.INIT_TYPES}, got'
          f' {self.init_type!r}.'
      )
    self.layer_config()  # Validates d_model, heads, norm type and dropout.

  def layer_config(self) -> layers.LayerConfig:
    return layers.LayerConfig(self.d_model, self.num_heads, self.dropout,
                              self.norm_type)

  # What the harness needs (experiments/registry.py lists the protocol).

  @classmethod
  def from_flags(cls, values: Mapping[str, Any], input_size: int,
                 output_size: int) -> 'StaircaseConfig':
    """The config of the original CLI's flag values (names as the original).

    Staircase mode when `--second_training_steps > 0`, else parallel mode
    (where the original's chunk default of -1 is allowed and unused).
    """
    mode = 'staircase' if values['second_training_steps'] > 0 else 'parallel'
    chunk_size = values['fix_staircase_size_forward']
    if mode == 'parallel' and chunk_size == -1:
      chunk_size = 1
    return cls(
        input_size=input_size, output_size=output_size,
        d_model=values['embed_size'], num_heads=values['num_heads'],
        group_size=values['group_size'],
        num_recurrent_calls=resolve_recurrent_calls(
            values['num_layers'], values['num_recurrent_calls'],
            values['group_size']),
        chunk_size=chunk_size, cache_steps=values['staircase_cache_steps'],
        diagonal=bool(values['diagonal']), norm_type=values['norm_type'],
        is_causal=bool(values['is_causal']), dropout=values['dropout'],
        mode=mode, init_type=values['init_type'])

  def training_phases(self, train_steps: int, second_training_steps: int
                      ) -> tuple[tuple[str, int, dict[str, Any]], ...]:
    """`(name, steps, config overrides)`: the original trains `train_steps`
    steps in parallel mode, then `second_training_steps + 1` in staircase
    mode (or `train_steps + 1` in parallel mode when there is no second)."""
    if self.mode == 'parallel':
      return (('parallel', train_steps + 1 + second_training_steps, {}),)
    phases = (('staircase', second_training_steps + 1, {}),)
    if train_steps > 0:
      phases = (('parallel', train_steps, {'mode': 'parallel'}),) + phases
    return phases

  def make(self, rngs: nnx.Rngs) -> 'StaircaseTransformer':
    return StaircaseTransformer(self, rngs=rngs)

  @property
  def length_multiple(self) -> int:
    """Staircase mode pads lengths to whole chunks."""
    return self.chunk_size if self.mode == 'staircase' else 1

  @property
  def skips_padding(self) -> bool:
    """Staircase mode runs only the rows of the batch's longest string."""
    return self.mode == 'staircase'

  def run_name_parts(self) -> tuple[str, ...]:
    return (f'd{self.d_model}', f'h{self.num_heads}', f'g{self.group_size}',
            f'p{self.num_recurrent_calls}', f'c{self.chunk_size}')

  def flops(self, batch_size: int, length: int) -> float:
    """Forward matmul and attention FLOPs, padding included."""
    B, L, D = batch_size, length, self.d_model
    P, G = self.num_recurrent_calls, self.group_size
    per_token = 24 * D * D  # q, k, v, out (4 D^2) and feed-forward (8 D^2), x2.
    if self.mode == 'parallel':
      return P * G * B * L * (per_token + 4 * L * D)
    C = self.chunk_size
    rows, W = -(-L // C) + P - 1, P * C
    keys = W + (L if self.cache_steps else 0) + (P * L if self.diagonal else 0)
    return rows * G * B * W * (per_token + 4 * keys * D)


class StaircaseTransformer(nnx.Module):
  """Embedding, the shared group (parallel or staircase), final norm, output."""

  def __init__(self, cfg: StaircaseConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D = cfg.d_model
    # The original's kaiming-normal (fan_out) init of the [D, V] embedding.
    self.embedding = nnx.Embed(cfg.input_size, D,
                               embedding_init=initializers.normal(D**-0.5),
                               rngs=rngs)
    self.group = layers.Group(cfg.layer_config(), cfg.group_size, rngs=rngs,
                              init_type=cfg.init_type,
                              kv_from_group_input=cfg.kv_from_group_input)
    self.final_norm = (layers.layer_norm(D, rngs)
                       if cfg.norm_type == 'prenorm' else None)
    self.output = nnx.Linear(D, cfg.output_size, use_bias=False,
                             kernel_init=initializers.torch_linear(D),
                             rngs=rngs)

  def __call__(self, input_BL: jax.Array, length_B: jax.Array | None = None,
               key: jax.Array | None = None) -> jax.Array:
    """Logits `(B, L, O)`; positions at or past `length_B` never affect others."""
    x_BLD = self.embedding(input_BL)
    if self.cfg.mode == 'parallel':
      x_BLD = self._parallel(x_BLD, length_B, key)
    else:
      x_BLD = self._staircase(x_BLD, length_B, key)
    if self.final_norm is not None:
      x_BLD = self.final_norm(x_BLD)
    return self.output(x_BLD)

  def _parallel(self, x_BLD, length_B, key):
    L, P = x_BLD.shape[1], self.cfg.num_recurrent_calls
    mask_BLL = attention.sequence_mask(length_B, L, self.cfg.is_causal)
    G = self.cfg.group_size
    seeds_PGS = dropout.draw_seeds(key, (P, G, layers.DROPOUT_SITES))
    for p in range(P):
      x_BLD = self.group(x_BLD, None, mask_BLL,
                         None if seeds_PGS is None else seeds_PGS[p])
    return x_BLD

  def _staircase(self, x_BLD, length_B, key):
    cfg = self.cfg
    B, L, D = x_BLD.shape
    C, P = cfg.chunk_size, cfg.num_recurrent_calls
    N = -(-L // C)
    W, T = P * C, N * C  # Tokens in the window; padded sequence length.
    rows = N + P - 1
    x_BTD = jnp.pad(x_BLD, ((0, 0), (0, T - L), (0, 0)))
    chunk_RBCD = jnp.concatenate(
        [x_BTD.reshape(B, N, C, D).swapaxes(0, 1),
         jnp.zeros((P - 1, B, C, D), x_BLD.dtype)])
    if length_B is None:
      length_B = jnp.full((B,), L, jnp.int32)
    offset_C = jnp.arange(C)
    position_T = jnp.arange(T)
    chunk_T = position_T // C
    slot_P = jnp.arange(P)
    depth_W = jnp.repeat(P - 1 - slot_P, C)  # Passes each window token has had.
    real_BT = position_T[None, :] < length_B[:, None]
    use_cache, use_diagonal = cfg.cache_steps != 0, cfg.diagonal

    # Every row's window mask, built at once outside the loop: a key is a
    # real token at or before the query (slot s of row r holds chunk
    # r - P + 1 + s, so positions are absolute).
    row_R = jnp.arange(rows)
    position_RW = ((row_R[:, None, None] - P + 1 + slot_P[None, :, None]) * C
                   + offset_C[None, None, :]).reshape(rows, W)
    mask_RBWW = jax.vmap(
        lambda position_W: attention.length_mask(length_B, position_W)
        & attention.causal_mask(position_W, position_W))(position_RW)

    # Rows past the batch's longest string see only padding: a training batch
    # has one length, so one program runs every length at the cost of its own
    # rows (seeds trained together skip past the longest of them, see
    # longest_length.py). Each real row is
    # recomputed in the backward pass rather than storing its activations: on
    # CPU the step is bound by memory traffic, and a padding row then stores
    # nothing (benchmarks in the README).
    active_rows = -(-longest_length.longest(length_B) // C) + P - 1

    def row(carry, xs):
      return jax.lax.cond(xs[0] < active_rows, jax.checkpoint(real_row),
                          padding_row, carry, xs)

    def padding_row(carry, xs):
      del xs
      return carry, jnp.zeros((B, C, D), x_BLD.dtype)

    def real_row(carry, xs):
      window_BPCD, emitted_BTD, diagonal_BPTD = carry
      r, new_chunk_BCD, mask_BWW, seeds_GS = xs
      window_BPCD = jnp.concatenate(
          [window_BPCD[:, 1:], new_chunk_BCD[:, None]], axis=1)
      chunk_P = r - P + 1 + slot_P  # Which chunk each slot holds.
      extras, masks = [], []
      if use_diagonal:
        # Record each slot's input as its chunk's state at that depth, then
        # let every query see the earlier chunks' states at its own depth.
        depth_P = P - 1 - slot_P
        index_PC = jnp.where((chunk_P >= 0)[:, None] & (chunk_P < N)[:, None],
                             chunk_P[:, None] * C + offset_C[None, :], T)
        depth_PC = jnp.broadcast_to(depth_P[:, None], (P, C))
        diagonal_BPTD = diagonal_BPTD.at[:, depth_PC, index_PC].set(
            window_BPCD, mode='drop')
        chunk_W = jnp.repeat(chunk_P, C)
        mask_WPT = ((depth_W[:, None] == slot_P[None, :])[:, :, None]
                    & (chunk_T[None, None, :] < chunk_W[:, None, None]))
        mask_BWPT = mask_WPT[None] & real_BT[:, None, None, :]
        extras.append(diagonal_BPTD.reshape(B, P * T, D))
        masks.append(mask_BWPT.reshape(B, W, P * T))
      if use_cache:
        # Finished chunks are those with index <= r - P; keep the last k.
        visible_T = chunk_T <= r - P
        if cfg.cache_steps > 0:
          visible_T &= chunk_T > r - P - cfg.cache_steps
        extras.append(emitted_BTD)
        masks.append(jnp.broadcast_to((visible_T[None] & real_BT)[:, None],
                                      (B, W, T)))
      extra_BED = jnp.concatenate(extras, axis=1) if extras else None
      mask_BWM = jnp.concatenate(masks + [mask_BWW], axis=-1)
      out_BWD = self.group(window_BPCD.reshape(B, W, D), extra_BED, mask_BWM,
                           seeds_GS)
      window_BPCD = out_BWD.reshape(B, P, C, D)
      finished_BCD = window_BPCD[:, 0]
      if use_cache:
        start = jnp.maximum(r - P + 1, 0) * C
        emitted_BTD = jax.lax.dynamic_update_slice(
            emitted_BTD, finished_BCD, (0, start, 0))
      return (window_BPCD, emitted_BTD, diagonal_BPTD), finished_BCD

    zeros = lambda *shape: jnp.zeros(shape, x_BLD.dtype)
    carry = (zeros(B, P, C, D),
             zeros(B, T, D) if use_cache else None,
             zeros(B, P, T, D) if use_diagonal else None)
    # All dropout seeds at once: no random-number calls inside the loop.
    seeds_RGS = dropout.draw_seeds(
        key, (rows, cfg.group_size, layers.DROPOUT_SITES))
    _, finished_RBCD = jax.lax.scan(
        row, carry, (row_R, chunk_RBCD, mask_RBWW, seeds_RGS),
        unroll=cfg.scan_unroll)
    out_BTD = finished_RBCD[P - 1:].swapaxes(0, 1).reshape(B, T, D)
    return out_BTD[:, :L]
