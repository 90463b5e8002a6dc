"""Model configurations from the original CLI's flag values, and pure models from them."""

import dataclasses

from neural_networks import block_recurrent
from neural_networks import pure
from neural_networks import rnn
from neural_networks import staircase
from neural_networks import transformer

# `my_staircase` is the original's name for the staircase architecture.
ARCHITECTURES = ('my_staircase', 'staircase', 'transformer',
                 'universal_transformer', 'rnn', 'lstm', 'brt')


@dataclasses.dataclass(frozen=True)
class ModelFlags:
  """The original CLI's model flags, with its names and defaults."""

  architecture: str = 'rnn'
  embed_size: int = 32
  num_heads: int = 4
  num_layers: int | None = None
  dropout: float = 0.0
  group_size: int = 1
  num_recurrent_calls: int | None = None
  is_causal: bool = False
  norm_type: str = 'prenorm'
  init_type: str = 'pytorch'
  fix_staircase_size_forward: int = -1
  staircase_cache_steps: int = 0
  diagonal: bool = False
  chunk_size: int | None = None  # brt: block width.
  num_state_vectors: int | None = None  # brt; unset: chunk_size (the package's).
  recurrent_layer_index: int | None = None  # brt, 1-based.
  max_sequence_length: int = 512  # brt: only checked against chunk_size.
  brt_variant: str = 'seed'
  # brt: (field, value) pairs of the --brt_* flags given, over the variant.
  brt_options: tuple[tuple[str, object], ...] = ()


def model_config(model_flags: ModelFlags, vocab_size: int, output_size: int,
                 mode: str = 'staircase'):
  """The frozen model config; raises ValueError naming the bad flag."""
  f = model_flags
  arch = f.architecture
  if arch in ('my_staircase', 'staircase'):
    return staircase.StaircaseConfig(
        input_size=vocab_size, output_size=output_size, d_model=f.embed_size,
        num_heads=f.num_heads, group_size=f.group_size,
        num_recurrent_calls=staircase.resolve_recurrent_calls(
            f.num_layers, f.num_recurrent_calls, f.group_size),
        # The chunk size is unused in parallel mode, where the original's
        # default of -1 is allowed.
        chunk_size=(1 if mode == 'parallel' and f.fix_staircase_size_forward == -1
                    else f.fix_staircase_size_forward),
        cache_steps=f.staircase_cache_steps, diagonal=f.diagonal,
        norm_type=f.norm_type, is_causal=f.is_causal, dropout=f.dropout,
        mode=mode, init_type=f.init_type)
  if arch in ('transformer', 'universal_transformer'):
    if f.num_layers is None:
      raise ValueError(f'--num_layers is required for --architecture={arch}.')
    return transformer.TransformerConfig(
        input_size=vocab_size, output_size=output_size, d_model=f.embed_size,
        num_heads=f.num_heads, num_layers=f.num_layers,
        norm_type=f.norm_type, is_causal=f.is_causal, dropout=f.dropout,
        init_type=f.init_type,
        universal_group_size=(f.group_size
                              if arch == 'universal_transformer' else None))
  if arch in ('rnn', 'lstm'):
    return rnn.RNNConfig(
        input_size=vocab_size, output_size=output_size,
        hidden_size=f.embed_size, num_layers=f.num_layers or 1,
        dropout=f.dropout, cell='elman' if arch == 'rnn' else 'lstm')
  if arch == 'brt':
    for name in ('num_layers', 'chunk_size', 'recurrent_layer_index'):
      if getattr(f, name) is None:
        raise ValueError(f'--{name} is required for --architecture=brt.')
    return block_recurrent.variant_config(
        f.brt_variant, input_size=vocab_size, output_size=output_size,
        d_model=f.embed_size, num_heads=f.num_heads, num_layers=f.num_layers,
        recurrent_layer_index=f.recurrent_layer_index,
        chunk_size=f.chunk_size,
        num_state_vectors=(f.chunk_size if f.num_state_vectors is None
                           else f.num_state_vectors),
        max_sequence_length=f.max_sequence_length, dropout=f.dropout,
        **dict(f.brt_options))
  raise ValueError(
      f'Unknown --architecture={arch!r}; choose one of {ARCHITECTURES}.')


def build_model(cfg) -> pure.PureModel:
  """A pure `init`/`apply` pair for any of our model configs."""
  module_class = {
      staircase.StaircaseConfig: staircase.StaircaseTransformer,
      transformer.TransformerConfig: transformer.Transformer,
      rnn.RNNConfig: rnn.RNN,
      block_recurrent.BlockRecurrentConfig:
          block_recurrent.BlockRecurrentTransformer,
  }[type(cfg)]
  return pure.from_nnx(lambda rngs: module_class(cfg, rngs=rngs))


def is_staircase(model_flags: ModelFlags) -> bool:
  return model_flags.architecture in ('my_staircase', 'staircase')


def is_causal(model_flags: ModelFlags) -> bool:
  """Whether a position's logits never depend on later positions."""
  return (model_flags.is_causal
          or model_flags.architecture in ('rnn', 'lstm', 'brt'))


def length_multiple(model_flags: ModelFlags, modes=('staircase',)) -> int:
  """Padded training lengths are multiples of this (the chunk or block)."""
  if model_flags.architecture == 'brt':
    return model_flags.chunk_size
  if is_staircase(model_flags) and 'staircase' in modes:
    return model_flags.fix_staircase_size_forward
  return 1


def build_models(model_flags: ModelFlags, vocab_size: int, output_size: int,
                 modes: tuple[str, ...] = ('staircase',)
                 ) -> dict[str, pure.PureModel]:
  """One pure model per mode, all sharing one parameter structure.

  For the staircase architecture `modes` picks among 'parallel' and
  'staircase' (the original trains in parallel mode, then switches); other
  architectures have the single mode 'default'.
  """
  if not is_staircase(model_flags):
    return {'default': build_model(
        model_config(model_flags, vocab_size, output_size))}
  return {mode: build_model(model_config(model_flags, vocab_size, output_size,
                                         mode))
          for mode in modes}
