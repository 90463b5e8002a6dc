"""The block-recurrent Transformer: S state vectors updated once per block.

See docs/block_recurrent.md for the model, its origin and its variants.

The sequence is cut into blocks of C tokens. Every layer attends causally
within its block and to the previous block's raw keys and values of the same
layer (one block of "XL memory"), with rotary + XPos positions local to that
window of 2C slots. Layer r also reads S learned state vectors and, after each
block, rewrites them with a fixed sigmoid gate from a state self-attention and
a state-to-token cross-attention.

Why only the state is scanned: the memory a layer reads is the previous
block's keys and values *of that layer*, which depend on that block's input to
the layer and never on the state of the block being processed. So every layer
runs on all blocks at once (the XL memory is the key/value tensor shifted by
one block), and the only sequential computation is the state update of layer
r, a `jax.lax.scan` over blocks whose carry is the (B, S, D) state. Its inputs
(the block's keys and values) are computed before the scan and the read of
the state by the tokens after it, so the big matrix products see all B x L
tokens at once. This computes exactly the original's block loop (the tests
compare it with a per-block reference that carries the memory).

Shape letters beyond the usual B, L, D, H, K: C block width, M keys one
query sees (2C: [previous block | current block], or C), J key/value heads
(1, shared by the H query heads as in the original, or H).
"""

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from neural_networks import attention
from neural_networks import dropout
from neural_networks import geglu
from neural_networks import initializers
from neural_networks import matmul

# Each field's allowed values; the first is the original's
# (docs/block_recurrent.md, "Variants").
CHOICES = {
    'token_window': ('block_xl', 'sliding_exclusive'),
    'first_block_memory': ('absent', 'zeros'),
    'kv_heads': ('1', 'all'),
    'position': ('rope_xpos', 'rope', 'none'),
    'qk_norm': ('recurrent_layer', 'all_layers', 'none'),
    'qk_temperature': ('inv_sqrt_dh', 'fixed8', 'learned_per_head'),
    'norm': ('layernorm', 'rmsnorm'),
    'ffn': ('geglu', 'relu'),
    'state_out': ('two_linear', 'one_linear'),
    'state_cross_span': ('block', 'block_and_memory'),
}
# `--brt_variant`: the original (lucidrains 0.4.4, as the seed ran it), or
# Hutchins et al.'s meliad configuration with rotary positions instead of the
# T5 bias.
VARIANTS = {
    'seed': {},
    'meliad': dict(
        token_window='sliding_exclusive', first_block_memory='zeros',
        kv_heads='all', position='rope', qk_norm='all_layers',
        qk_temperature='learned_per_head', norm='rmsnorm', ffn='relu',
        state_out='one_linear', state_cross_span='block_and_memory',
        init_state_std=0.1, apply_dropout=True),
}
ROPE_THETA = 10000.0
XPOS_SCALE_BASE = 512.0
_L2N_EPS = 1e-12
DROPOUT_SITES = 3  # Per layer: normalised attention input, weights, FFN output.


@dataclasses.dataclass(frozen=True)
class BlockRecurrentConfig:
  """The original `brt` model (the defaults) and its variants."""

  input_size: int  # V: model vocabulary (task alphabet + harness ids).
  output_size: int  # O
  d_model: int = 64  # D; --embed_size
  num_heads: int = 4  # H; --num_heads (D / H must be even for rotary).
  num_layers: int = 3  # --num_layers
  recurrent_layer_index: int = 2  # r, 1-based; --recurrent_layer_index
  chunk_size: int = 2  # C, the block width; --chunk_size
  num_state_vectors: int = 2  # S; --num_state_vectors
  max_sequence_length: int = 512  # Only checked: a multiple of chunk_size.
  token_window: str = 'block_xl'  # --brt_token_window
  first_block_memory: str = 'absent'  # --brt_first_block_memory
  kv_heads: str = '1'  # --brt_kv_heads: '1' (multi-query) or 'all'.
  position: str = 'rope_xpos'  # --brt_position
  qk_norm: str = 'recurrent_layer'  # --brt_qk_norm
  qk_temperature: str = 'inv_sqrt_dh'  # --brt_qk_temperature
  norm: str = 'layernorm'  # --brt_norm
  ffn: str = 'geglu'  # --brt_ffn
  state_out: str = 'two_linear'  # --brt_state_out
  state_cross_span: str = 'block'  # --brt_state_cross_span
  init_state_std: float | None = None  # --brt_init_state_std; None: 1/sqrt(D).
  apply_dropout: bool = False  # --brt_apply_dropout; the original has none.
  dropout: float = 0.0  # --dropout, used only with apply_dropout.

  def __post_init__(self):
    D, H = self.d_model, self.num_heads
    if self.input_size < 1 or self.output_size < 1:
      raise ValueError('input_size and output_size must be >= 1.')
    if D < 1 or H < 1 or D % H:
      raise ValueError(f'--num_heads={H} must divide --embed_size={D}.')
    if self.position != 'none' and (D // H) % 2:
      raise ValueError(
          f'Rotary positions need an even head width; --embed_size={D} /'
          f' --num_heads={H} = {D // H}.')
    if self.num_layers < 1:
      raise ValueError(f'--num_layers must be >= 1, got {self.num_layers}.')
    if not 1 <= self.recurrent_layer_index <= self.num_layers:
      raise ValueError(
          f'--recurrent_layer_index={self.recurrent_layer_index} must be in'
          f' [1, --num_layers={self.num_layers}] (it is 1-based).')
    if self.chunk_size < 1:
      raise ValueError(f'--chunk_size must be >= 1, got {self.chunk_size}.')
    if self.num_state_vectors < 1:
      raise ValueError(
          f'--num_state_vectors must be >= 1, got {self.num_state_vectors}.')
    if self.max_sequence_length % self.chunk_size:
      raise ValueError(
          f'--max_sequence_length={self.max_sequence_length} must be a'
          f' multiple of --chunk_size={self.chunk_size} (the original asserts'
          ' it; it never limits the input length).')
    for name, allowed in CHOICES.items():
      if getattr(self, name) not in allowed:
        raise ValueError(f'--brt_{name} must be one of {allowed}, got'
                         f' {getattr(self, name)!r}.')
    if self.init_state_std is not None and not self.init_state_std >= 0:
      raise ValueError(
          f'--brt_init_state_std must be >= 0, got {self.init_state_std}.')
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'--dropout must be in [0, 1), got {self.dropout}.')

  @property
  def head_size(self) -> int:  # K
    return self.d_model // self.num_heads

  @property
  def kv_head_count(self) -> int:  # J
    return 1 if self.kv_heads == '1' else self.num_heads

  @property
  def ff_size(self) -> int:  # GEGLU: int(4 D * 2 / 3), as the original.
    return int(self.d_model * 4 * 2 / 3) if self.ffn == 'geglu' else 4 * self.d_model

  # What the harness needs (experiments/registry.py lists the protocol).

  @classmethod
  def from_flags(cls, values: Mapping[str, Any], input_size: int,
                 output_size: int) -> 'BlockRecurrentConfig':
    """The config of the original CLI's flag values and the `--brt_*` flags
    (`CLI_FLAGS`); the state has one vector per block token when
    `--num_state_vectors` is unset, as the original package."""
    for name in ('num_layers', 'chunk_size', 'recurrent_layer_index'):
      if values[name] is None:
        raise ValueError(f'--{name} is required for --architecture=brt.')
    options = {flag[len('brt_'):]: values[flag] for flag in CLI_FLAGS
               if flag != 'brt_variant' and values.get(flag) is not None}
    return variant_config(
        values.get('brt_variant') or 'seed', input_size=input_size,
        output_size=output_size, d_model=values['embed_size'],
        num_heads=values['num_heads'], num_layers=values['num_layers'],
        recurrent_layer_index=values['recurrent_layer_index'],
        chunk_size=values['chunk_size'],
        num_state_vectors=(values['chunk_size']
                           if values['num_state_vectors'] is None
                           else values['num_state_vectors']),
        max_sequence_length=values['max_sequence_length'],
        dropout=values['dropout'], **options)

  def make(self, rngs: nnx.Rngs) -> 'BlockRecurrentTransformer':
    return BlockRecurrentTransformer(self, rngs=rngs)

  is_causal = True

  @property
  def length_multiple(self) -> int:
    """Training lengths are padded to whole blocks."""
    return self.chunk_size

  def run_name_parts(self) -> tuple[str, ...]:
    """Sizes, then the nearest `--brt_variant` and the choices that differ
    from it (nothing for the original), e.g. `meliad-layernorm`."""
    parts = (f'd{self.d_model}', f'h{self.num_heads}',
             f'l{self.num_layers}', f'r{self.recurrent_layer_index}',
             f's{self.num_state_vectors}', f'c{self.chunk_size}')
    differing = {}
    for variant, fields in VARIANTS.items():
      preset = {name: fields.get(name, allowed[0])
                for name, allowed in CHOICES.items()}
      differing[variant] = [str(getattr(self, name)) for name in CHOICES
                            if getattr(self, name) != preset[name]]
    variant = min(differing, key=lambda v: len(differing[v]))
    if variant == 'seed' and not differing[variant]:
      return parts
    return parts + ('-'.join([variant, *differing[variant]]),)

  def flops(self, batch_size: int, length: int) -> float:
    """Forward matmul and attention FLOPs (blocks padded)."""
    D, H, K, J, F = (self.d_model, self.num_heads, self.head_size,
                     self.kv_head_count, self.ff_size)
    C, S, N = self.chunk_size, self.num_state_vectors, self.num_layers
    B, T = batch_size, -(-length // C) * C
    ff = D * (2 * F if self.ffn == 'geglu' else F) + F * D
    per_token = N * (2 * D * H * K + 2 * D * J * K + ff) + D * H * K  # + read q.
    per_token += D * H * K  # The read's half of layer r's output projection.
    attention = N * 2 * (2 * C) * H * K + 2 * S * H * K  # Window and read.
    per_state = D * (2 * J * K + 2 * H * K) + 2 * H * K * D + D * D
    per_state += 2 * (S + C) * H * K
    return 2 * (B * T * (per_token + attention) + B * (T // C) * S * per_state)

  def normalises_qk(self, layer: int) -> bool:
    """Whether layer `layer` (1-based) l2-normalises its token queries/keys."""
    return (self.qk_norm == 'all_layers' or
            (self.qk_norm == 'recurrent_layer'
             and layer == self.recurrent_layer_index))


# This model's own CLI flags, as data (experiments/ defines them with absl):
# name -> (kind, default, choices, help). An unset `--brt_<field>` takes the
# `--brt_variant` value.
_CHOICE_HELP = {
    'token_window': "'block_xl': the previous block and the causal current"
                    " block, self included (seed); 'sliding_exclusive': the C"
                    ' tokens strictly before the query (meliad).',
    'first_block_memory': "'absent': the first block has no memory (seed);"
                          " 'zeros': a zero memory it attends to (meliad).",
    'kv_heads': "'1': one key/value head shared by all heads (seed); 'all':"
                ' one per head (meliad).',
    'position': "'rope_xpos' (seed), 'rope' (meliad, for its T5 bias) or"
                " 'none'.",
    'qk_norm': "Where queries/keys are l2-normalised: 'recurrent_layer'"
               " (seed), 'all_layers' (meliad) or 'none'.",
    'qk_temperature': "Logit scale with the l2 norm: 'inv_sqrt_dh' (seed),"
                      " 'fixed8' (the package's unused setting) or"
                      " 'learned_per_head' (meliad).",
    'norm': "'layernorm' (mean-centred, eps 1e-5; seed) or 'rmsnorm' (eps"
            ' 1e-6; meliad).',
    'ffn': "'geglu' (hidden 8D/3; seed) or 'relu' (hidden 4D; meliad).",
    'state_out': "State update: 'two_linear' (seed) or 'one_linear'"
                 ' (meliad).',
    'state_cross_span': "What the state attends to: 'block' (seed) or"
                        " 'block_and_memory' (meliad).",
}
CLI_FLAGS = {
    'brt_variant': (
        'enum', 'seed', tuple(VARIANTS),
        "Block-recurrent Transformer: 'seed' (the original's model, quirks"
        " included) or 'meliad' (Hutchins et al.'s configuration, rotary"
        ' instead of the T5 bias). The --brt_* flags override single'
        ' choices.'),
    **{f'brt_{name}': ('enum', None, CHOICES[name],
                       f'Block-recurrent Transformer: {help_text} Unset: the'
                       ' --brt_variant value.')
       for name, help_text in _CHOICE_HELP.items()},
    'brt_init_state_std': (
        'float', None, None,
        'Block-recurrent Transformer: std of the learned initial state'
        ' (unset: the variant: 1/sqrt(embed_size) for seed, 0.1 for'
        ' meliad).'),
    'brt_apply_dropout': (
        'bool', None, None,
        'Block-recurrent Transformer: apply --dropout (the original ignores'
        ' it) on the normalised attention input, the attention weights, the'
        ' FFN output and before the output projection. Unset: the variant'
        ' (meliad on).'),
}


def variant_config(variant: str = 'seed', **fields) -> BlockRecurrentConfig:
  """A config from a `--brt_variant` preset; `fields` override the preset."""
  if variant not in VARIANTS:
    raise ValueError(
        f'--brt_variant must be one of {tuple(VARIANTS)}, got {variant!r}.')
  return BlockRecurrentConfig(**{**VARIANTS[variant], **fields})


def l2_normalise(u: jax.Array) -> jax.Array:
  """`u / max(|u|, 1e-12)` over the last axis, with a finite gradient at 0."""
  squared = jnp.sum(u * u, axis=-1, keepdims=True)
  return u / jnp.sqrt(jnp.maximum(squared, _L2N_EPS**2))


def rotary_tables(C: int, K: int, use_xpos: bool, dtype):
  """`(cos_MK, sin_MK, scale_MK)` for window slots 0..2C-1 (half-split layout).

  Slots 0..C-1 hold the previous block, C..2C-1 the current one. XPos scales
  queries by `scale` and divides keys by it, so only distances matter.
  """
  position_M = jnp.arange(2 * C, dtype=dtype)
  half_K = jnp.arange(0, K, 2, dtype=dtype)
  frequency_K = 1.0 / ROPE_THETA**(half_K / K)
  angle_MK = position_M[:, None] * frequency_K[None, :]
  angle_MK = jnp.concatenate([angle_MK, angle_MK], axis=-1)
  if use_xpos:
    zeta_K = (half_K + 0.4 * K) / (1.4 * K)
    scale_MK = zeta_K[None, :]**((position_M[:, None] - C) / XPOS_SCALE_BASE)
    scale_MK = jnp.concatenate([scale_MK, scale_MK], axis=-1)
  else:
    scale_MK = jnp.ones_like(angle_MK)
  return jnp.cos(angle_MK), jnp.sin(angle_MK), scale_MK


def rotate(u_XMJK: jax.Array, cos_MK, sin_MK, scale_MK) -> jax.Array:
  """Rotary embedding over the whole head width, times the XPos factor:
  `u cos + [-second half, first half] sin`, written per half so that the
  half-turned copy of `u` is never stored."""
  first_XMJK, second_XMJK = jnp.split(u_XMJK, 2, axis=-1)
  lead = (None,) * (u_XMJK.ndim - 3)
  cos_XMJK, sin_XMJK, scale_XMJK = (t[lead + (slice(None), None)]
                                    for t in (cos_MK, sin_MK, scale_MK))
  cos_first, cos_second = jnp.split(cos_XMJK, 2, axis=-1)
  sin_first, sin_second = jnp.split(sin_XMJK, 2, axis=-1)
  return jnp.concatenate([first_XMJK * cos_first - second_XMJK * sin_first,
                          second_XMJK * cos_second + first_XMJK * sin_second],
                         axis=-1) * scale_XMJK


def _last_axis(v_E: jax.Array, ndim: int) -> jax.Array:
  """`v_E` shaped to broadcast along the last axis of a rank-`ndim` array."""
  return v_E.reshape((1,) * (ndim - 1) + v_E.shape)


def first_block_memory(shape: tuple[int, ...], dtype) -> jax.Array:
  """What stands in for the memory of block 0 (masked unless the variant says zeros)."""
  return jnp.zeros(shape, dtype)


def with_memory(u_BNCJK: jax.Array) -> jax.Array:
  """`(B, N, 2C, J, K)`: each block's keys (or values) after the previous block's."""
  first_B1CJK = first_block_memory(
      (u_BNCJK.shape[0], 1) + u_BNCJK.shape[2:], u_BNCJK.dtype)
  memory_BNCJK = jnp.concatenate([first_B1CJK, u_BNCJK[:, :-1]], axis=1)
  return jnp.concatenate([memory_BNCJK, u_BNCJK], axis=2)


def token_mask(cfg: BlockRecurrentConfig, N: int) -> jax.Array:
  """`(N, C, 2C)` bool: which window slot each query of each block may attend to."""
  C = cfg.chunk_size
  query_C = jnp.arange(C)[:, None]
  slot_M = jnp.arange(2 * C)[None, :]
  if cfg.token_window == 'block_xl':  # All of the memory, causal in the block.
    mask_CM = slot_M <= C + query_C
  else:  # The C tokens strictly before the query.
    mask_CM = (slot_M >= query_C) & (slot_M < C + query_C)
  memory_ok_N = jnp.arange(N) > 0
  if cfg.first_block_memory == 'zeros':
    memory_ok_N = jnp.ones((N,), bool)
  is_memory_M = jnp.arange(2 * C) < C
  visible_NM = memory_ok_N[:, None] | ~is_memory_M[None, :]
  return mask_CM[None] & visible_NM[:, None, :]


def _linear(fan_in: int, fan_out: int, rngs: nnx.Rngs,
            use_bias: bool = False) -> nnx.Linear:
  """`nn.Linear` with PyTorch's default initialisation."""
  init = initializers.torch_linear(fan_in)
  return nnx.Linear(fan_in, fan_out, use_bias=use_bias, kernel_init=init,
                    bias_init=init, dot_general=matmul.dense_dot_general,
                    rngs=rngs)


def _norm(cfg: BlockRecurrentConfig, rngs: nnx.Rngs) -> nnx.Module:
  """The original's bias-free LayerNorm (eps 1e-5), or meliad's RMS norm."""
  if cfg.norm == 'layernorm':
    return nnx.LayerNorm(cfg.d_model, epsilon=1e-5, use_bias=False,
                         use_fast_variance=False, rngs=rngs)
  return nnx.RMSNorm(cfg.d_model, epsilon=1e-6, rngs=rngs)


class QKNorm(nnx.Module):
  """l2-normalised queries and keys, each scaled per feature (learned, init 1)."""

  def __init__(self, cfg: BlockRecurrentConfig):
    K, H = cfg.head_size, cfg.num_heads
    self.q_scale_K = nnx.Param(jnp.ones((K,)))
    self.k_scale_K = nnx.Param(jnp.ones((K,)))
    # The temperature: the original's 1/sqrt(K) (its configured 8 is dead
    # code), that 8, or a learned per-head factor (init 1) as in meliad.
    self.temperature_H = (nnx.Param(jnp.ones((H,)))
                          if cfg.qk_temperature == 'learned_per_head' else None)
    self._fixed_scale = {'inv_sqrt_dh': 1 / math.sqrt(K),
                         'fixed8': 8.0}.get(cfg.qk_temperature)

  def queries(self, q_XHK: jax.Array) -> jax.Array:
    return l2_normalise(q_XHK) * _last_axis(self.q_scale_K[...], q_XHK.ndim)

  def keys(self, k_XJK: jax.Array) -> jax.Array:
    return l2_normalise(k_XJK) * _last_axis(self.k_scale_K[...], k_XJK.ndim)

  def logit_scale(self):
    if self.temperature_H is not None:
      return self.temperature_H[...]
    return self._fixed_scale


def _maybe_norm(cfg: BlockRecurrentConfig, normalise: bool) -> QKNorm | None:
  return QKNorm(cfg) if normalise else None


def _scale_of(qk_norm: QKNorm | None, K: int):
  return 1 / math.sqrt(K) if qk_norm is None else qk_norm.logit_scale()


class BlockState(nnx.Module):
  """Layer r's state: read by the tokens, rewritten after every block."""

  def __init__(self, cfg: BlockRecurrentConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, H, K, S, J = (cfg.d_model, cfg.num_heads, cfg.head_size,
                     cfg.num_state_vectors, cfg.kv_head_count)
    std = D**-0.5 if cfg.init_state_std is None else cfg.init_state_std
    self.init_state_SD = nnx.Param(
        jax.random.normal(rngs.params(), (S, D)) * std)
    self.state_pos_ids_SD = nnx.Param(jax.random.normal(rngs.params(), (S, D)))
    self.gate_logit_D = nnx.Param(  # beta: s' = sigmoid(beta) z + (1 - ...) s.
        jax.random.normal(rngs.params(), (D,)) * 0.1)
    self.state_norm = _norm(cfg, rngs)
    self.q_to_state = _linear(D, H * K, rngs)  # Token queries reading the state.
    self.q_from_state = _linear(D, H * K, rngs)  # State queries to the tokens.
    self.state_to_q = _linear(D, H * K, rngs)  # State self-attention queries.
    self.state_to_kv = _linear(D, 2 * J * K, rngs)
    self.to_state_out = _linear(2 * H * K, D, rngs)
    self.state_out_to_gate = (_linear(D, D, rngs, use_bias=True)
                              if cfg.state_out == 'two_linear' else None)
    normalise = cfg.qk_norm != 'none'
    self.read_norm = _maybe_norm(cfg, normalise)  # a_q, a_k
    self.self_norm = _maybe_norm(cfg, normalise)  # b_q, b_k
    self.cross_norm = _maybe_norm(cfg, normalise)  # c_q, c_k

  def __call__(self, h_BNCD: jax.Array, k_BNCJK: jax.Array,
               v_BNCJK: jax.Array, real_BNC: jax.Array):
    """`(read_BNCHK, final_state_BSD)`: each block's read of the state before it.

    `k`, `v` are this layer's raw token keys and values; `real_BNC` marks real
    tokens, so padding never enters the final state.
    """
    cfg = self.cfg
    B, N, C, D = h_BNCD.shape
    H, K, J, S = cfg.num_heads, cfg.head_size, cfg.kv_head_count, cfg.num_state_vectors

    # What the state attends to in block n: its tokens (and the memory).
    if cfg.state_cross_span == 'block':
      cross_k_BNMJK, cross_v_BNMJK, cross_mask_BNM = k_BNCJK, v_BNCJK, real_BNC
    else:
      cross_k_BNMJK, cross_v_BNMJK = with_memory(k_BNCJK), with_memory(v_BNCJK)
      memory_ok_N = jnp.arange(N) > 0
      if cfg.first_block_memory == 'zeros':
        memory_ok_N = jnp.ones((N,), bool)
      cross_mask_BNM = jnp.concatenate(
          [jnp.broadcast_to(memory_ok_N[None, :, None], (B, N, C)), real_BNC],
          axis=-1)
    if self.cross_norm is not None:
      cross_k_BNMJK = self.cross_norm.keys(cross_k_BNMJK)
    has_real_BN = real_BNC.any(-1)

    # One product for the state's keys/values and both kinds of state query.
    project_DE = jnp.concatenate(
        [self.state_to_kv.kernel[...], self.state_to_q.kernel[...],
         self.q_from_state.kernel[...]], axis=1)
    gate_BSD = _last_axis(jax.nn.sigmoid(self.gate_logit_D[...]), 3)
    positions_BSD = self.state_pos_ids_SD[...][None]

    def update(state_BSD, xs):
      cross_k_BMJK, cross_v_BMJK, cross_mask_BM, has_real_B = xs
      state_in_BSD = self.state_norm(state_BSD) + positions_BSD
      kv_BSE, q_self_BSE, q_cross_BSE = jnp.split(
          state_in_BSD @ project_DE, [2 * J * K, 2 * J * K + H * K], axis=-1)
      kv_BS2JK = kv_BSE.reshape(B, S, 2, J, K)
      key_BSJK, value_BSJK = kv_BS2JK[:, :, 0], kv_BS2JK[:, :, 1]
      q_self_BSHK = q_self_BSE.reshape(B, S, H, K)
      q_cross_BSHK = q_cross_BSE.reshape(B, S, H, K)
      self_key_BSJK = key_BSJK
      if self.self_norm is not None:
        q_self_BSHK = self.self_norm.queries(q_self_BSHK)
        self_key_BSJK = self.self_norm.keys(key_BSJK)
        q_cross_BSHK = self.cross_norm.queries(q_cross_BSHK)
      self_BSHK = attention.attend(
          q_self_BSHK, self_key_BSJK, value_BSJK,
          logit_scale=_scale_of(self.self_norm, K))
      cross_BSHK = attention.attend(
          q_cross_BSHK, cross_k_BMJK, cross_v_BMJK, cross_mask_BM[:, None, :],
          logit_scale=_scale_of(self.cross_norm, K))
      # Per head [self ; cross]: input feature h * 2K + c of the projection.
      both_BSE = jnp.concatenate([self_BSHK, cross_BSHK], -1).reshape(B, S, -1)
      z_BSD = self.to_state_out(both_BSE)
      if self.state_out_to_gate is not None:
        z_BSD = self.state_out_to_gate(z_BSD)
      new_BSD = gate_BSD * z_BSD + (1 - gate_BSD) * state_BSD
      new_BSD = jnp.where(has_real_B[:, None, None], new_BSD, state_BSD)
      return new_BSD, (key_BSJK, value_BSJK)

    init_BSD = jnp.broadcast_to(self.init_state_SD[...], (B, S, D))
    init_BSD = init_BSD.astype(h_BNCD.dtype)
    swap = lambda u: jnp.swapaxes(u, 0, 1)
    final_BSD, (key_NBSJK, value_NBSJK) = jax.lax.scan(
        update, init_BSD,
        (swap(cross_k_BNMJK), swap(cross_v_BNMJK), swap(cross_mask_BNM),
         swap(has_real_BN)))

    # The tokens of block n read the state before block n (no mask, no positions).
    q_BNCHK = self.q_to_state(h_BNCD).reshape(B, N, C, H, K)
    key_BNSJK = swap(key_NBSJK)
    if self.read_norm is not None:
      q_BNCHK = self.read_norm.queries(q_BNCHK)
      key_BNSJK = self.read_norm.keys(key_BNSJK)
    read_BNCHK = attention.attend(q_BNCHK, key_BNSJK, swap(value_NBSJK),
                                  logit_scale=_scale_of(self.read_norm, K))
    return read_BNCHK, final_BSD


class BlockLayer(nnx.Module):
  """Pre-norm attention over [previous block | block], then a pre-norm FFN."""

  def __init__(self, cfg: BlockRecurrentConfig, index: int, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D, H, K, J, F = (cfg.d_model, cfg.num_heads, cfg.head_size,
                     cfg.kv_head_count, cfg.ff_size)
    recurrent = index == cfg.recurrent_layer_index
    self.attn_norm = _norm(cfg, rngs)
    self.to_q = _linear(D, H * K, rngs)
    self.to_kv = _linear(D, 2 * J * K, rngs)  # Features [keys | values].
    self.qk_norm = _maybe_norm(cfg, cfg.normalises_qk(index))
    self.state = BlockState(cfg, rngs=rngs) if recurrent else None
    # Input features [attention output | state read] in the recurrent layer.
    self.to_out = _linear((2 if recurrent else 1) * H * K, D, rngs)
    self.ff_norm = _norm(cfg, rngs)
    # GEGLU: features [value | gate] of width F each; or ReLU of width 4D.
    self.ff_in = _linear(D, 2 * F if cfg.ffn == 'geglu' else F, rngs)
    self.ff_out = _linear(F, D, rngs)

  def __call__(self, x_BNCD: jax.Array, mask_NCM: jax.Array, tables,
               real_BNC: jax.Array, seeds_S: jax.Array | None):
    """`(x_BNCD, final_state_BSD or None)`."""
    cfg = self.cfg
    B, N, C, D = x_BNCD.shape
    H, K, J = cfg.num_heads, cfg.head_size, cfg.kv_head_count
    rate = cfg.dropout if cfg.apply_dropout else 0.0
    seed = (lambda i: None) if seeds_S is None else (lambda i: seeds_S[i])

    h_BNCD = dropout.dropout(self.attn_norm(x_BNCD), rate, seed(0))
    q_BNCHK = self.to_q(h_BNCD).reshape(B, N, C, H, K)
    kv_BNC2JK = self.to_kv(h_BNCD).reshape(B, N, C, 2, J, K)
    k_BNCJK, v_BNCJK = kv_BNC2JK[:, :, :, 0], kv_BNC2JK[:, :, :, 1]
    k_BNMJK, v_BNMJK = with_memory(k_BNCJK), with_memory(v_BNCJK)
    if self.qk_norm is not None:
      q_BNCHK = self.qk_norm.queries(q_BNCHK)
      k_BNMJK = self.qk_norm.keys(k_BNMJK)
    if tables is not None:
      cos_MK, sin_MK, scale_MK = tables
      q_BNCHK = rotate(q_BNCHK, cos_MK[C:], sin_MK[C:], scale_MK[C:])
      k_BNMJK = rotate(k_BNMJK, cos_MK, sin_MK, 1 / scale_MK)
    out_BNCHK = attention.attend(q_BNCHK, k_BNMJK, v_BNMJK, mask_NCM[None],
                                 logit_scale=_scale_of(self.qk_norm, K),
                                 seed=seed(1), dropout_rate=rate)
    out_BNCE = out_BNCHK.reshape(B, N, C, H * K)
    final_state_BSD = None
    if self.state is not None:
      read_BNCHK, final_state_BSD = self.state(h_BNCD, k_BNCJK, v_BNCJK,
                                               real_BNC)
      out_BNCE = jnp.concatenate(
          [out_BNCE, read_BNCHK.reshape(B, N, C, H * K)], axis=-1)
    x_BNCD = x_BNCD + self.to_out(out_BNCE)

    u_BNCF = self.ff_in(self.ff_norm(x_BNCD))
    if cfg.ffn == 'geglu':
      u_BNCF = geglu.geglu(u_BNCF)
    else:
      u_BNCF = jax.nn.relu(u_BNCF)
    x_BNCD = x_BNCD + dropout.dropout(self.ff_out(u_BNCF), rate, seed(2))
    return x_BNCD, final_state_BSD


class BlockRecurrentTransformer(nnx.Module):
  """Embedding, N block layers (layer r recurrent), final norm, output."""

  def __init__(self, cfg: BlockRecurrentConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    D = cfg.d_model
    # The original's bias-free linear embedding of one-hot inputs,
    # kaiming-normal (fan_out): N(0, 1/D).
    self.embedding = nnx.Embed(cfg.input_size, D,
                               embedding_init=initializers.normal(D**-0.5),
                               rngs=rngs)
    self.layers = nnx.List([BlockLayer(cfg, i + 1, rngs=rngs)
                            for i in range(cfg.num_layers)])
    self.final_norm = _norm(cfg, rngs)
    self.output = _linear(D, cfg.output_size, rngs)

  def __call__(self, input_BL: jax.Array, length_B: jax.Array | None = None,
               key: jax.Array | None = None) -> jax.Array:
    """Logits `(B, L, O)`; causal, so positions at or past `length_B` never matter."""
    return self.run(input_BL, length_B, key)[0]

  def run(self, input_BL: jax.Array, length_B: jax.Array | None = None,
          key: jax.Array | None = None):
    """`(logits_BLO, final_state_BSD)`: the state after the last real token."""
    cfg = self.cfg
    B, L = input_BL.shape
    C, D = cfg.chunk_size, cfg.d_model
    N = -(-L // C)
    x_BLD = self.embedding(input_BL)
    x_BNCD = jnp.pad(x_BLD, ((0, 0), (0, N * C - L), (0, 0))).reshape(B, N, C, D)
    if length_B is None:
      length_B = jnp.full((B,), L, jnp.int32)
    real_BNC = (jnp.arange(N * C)[None, :] < length_B[:, None]).reshape(B, N, C)
    mask_NCM = token_mask(cfg, N)
    tables = (None if cfg.position == 'none' else
              rotary_tables(C, cfg.head_size, cfg.position == 'rope_xpos',
                            x_BLD.dtype))
    rate = cfg.dropout if cfg.apply_dropout else 0.0
    seeds_LS = (dropout.draw_seeds(key, (cfg.num_layers + 1, DROPOUT_SITES))
                if rate > 0 else None)
    final_state_BSD = None
    for i, layer in enumerate(self.layers):
      x_BNCD, state_BSD = layer(x_BNCD, mask_NCM, tables, real_BNC,
                                None if seeds_LS is None else seeds_LS[i])
      if state_BSD is not None:
        final_state_BSD = state_BSD
    x_BLD = self.final_norm(x_BNCD.reshape(B, N * C, D)[:, :L])
    x_BLD = dropout.dropout(x_BLD, rate,
                            None if seeds_LS is None else seeds_LS[-1, 0])
    return self.output(x_BLD), final_state_BSD


def parameter_count(cfg: BlockRecurrentConfig) -> int:
  """The parameter count of the original (seed) variant, by formula."""
  I, O, N = cfg.input_size, cfg.output_size, cfg.num_layers
  D, H, K, S, F = (cfg.d_model, cfg.num_heads, cfg.head_size,
                   cfg.num_state_vectors, cfg.ff_size)
  recurrent_extra = 6 * H * K * D + 8 * K + 2 * S * D + 3 * D + 2 * D * K + D * D
  return (I * D + N * (2 * D + 2 * D * H * K + 2 * D * K + 3 * D * F)
          + recurrent_extra + D + O * D)
