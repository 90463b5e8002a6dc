"""Builds our models from the original PyTorch code's weights and constructor arguments.

A `state_dict` is a mapping from torch parameter names to NumPy arrays (torch
layouts: `nn.Linear` weights are `[out, in]`). Torch itself is only needed to
read a `.pt` checkpoint (`load_torch_checkpoint`).
"""

import json
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from neural_networks import block_recurrent
from neural_networks import layers
from neural_networks import rnn
from neural_networks import staircase
from neural_networks import transformer

MODEL_CLASSES = ('MyStaircaseTransformer', 'Transformer',
                 'UniversalTransformer', 'ElmanRNN',
                 'BlockRecurrentTransformerWrapper')
_FIXTURE_KEYS = ('input_tokens', 'input_onehot', 'output', 'output_float64',
                 'output_parallel', 'staircase_vs_parallel_max_abs_diff',
                 'config')


class _Loader:
  """Pops torch names from a state_dict into our parameters, checking shapes."""

  def __init__(self, state_dict: Mapping[str, Any], dtype):
    self._remaining = {k: np.asarray(v) for k, v in state_dict.items()}
    self._dtype = dtype

  def put(self, param: nnx.Variable, name: str, transpose: bool = False):
    if name not in self._remaining:
      raise KeyError(f'state_dict has no parameter {name!r}.')
    array = self._remaining.pop(name)
    array = array.T if transpose else array
    if param[...].shape != array.shape:
      raise ValueError(
          f'{name}: expected shape {param[...].shape}, got {array.shape}.')
    param.set_value(jnp.asarray(array, self._dtype))

  def linear(self, module: nnx.Linear, name: str):
    self.put(module.kernel, f'{name}.weight', transpose=True)
    if module.bias is not None:
      self.put(module.bias, f'{name}.bias')

  def embed(self, module: nnx.Embed, name: str):
    self.put(module.embedding, name, transpose=True)
    # nnx.Embed fixes its compute dtype from the table it was built with.
    module.dtype = self._dtype

  def layer_norm(self, module: nnx.LayerNorm, name: str):
    self.put(module.scale, f'{name}.weight')
    self.put(module.bias, f'{name}.bias')

  def encoder_layer(self, layer: layers.EncoderLayer, prefix: str):
    attn = layer.self_attn
    self.put(attn.in_proj.kernel, f'{prefix}.self_attn.in_proj_weight', True)
    self.put(attn.in_proj.bias, f'{prefix}.self_attn.in_proj_bias')
    self.linear(attn.out_proj, f'{prefix}.self_attn.out_proj')
    self.linear(layer.linear1, f'{prefix}.linear1')
    self.linear(layer.linear2, f'{prefix}.linear2')
    self.layer_norm(layer.norm1, f'{prefix}.norm1')
    self.layer_norm(layer.norm2, f'{prefix}.norm2')

  def gamma_norm(self, module: nnx.LayerNorm, name: str):
    """The block-recurrent model's LayerNorm: a gain and a zero bias buffer."""
    self.put(module.scale, f'{name}.gamma')
    beta = self._remaining.pop(f'{name}.beta', None)
    if beta is not None and np.any(beta):
      raise ValueError(f'{name}.beta is not zero; our LayerNorm has no bias.')

  def block_recurrent(self, model: block_recurrent.BlockRecurrentTransformer):
    """Every parameter of the original `brt`, by the package's names."""
    self.put(model.embedding.embedding, 'model.token_emb.weight', True)
    model.embedding.dtype = self._dtype
    for i, layer in enumerate(model.layers):
      prefix = f'model.layers.{i}'
      self.gamma_norm(layer.attn_norm, f'{prefix}.0.norm')
      self.linear(layer.to_q, f'{prefix}.0.to_q')
      self.linear(layer.to_kv, f'{prefix}.0.to_kv')
      if layer.qk_norm is not None:
        self.put(layer.qk_norm.q_scale_K, f'{prefix}.0.attn.q_scale')
        self.put(layer.qk_norm.k_scale_K, f'{prefix}.0.attn.k_scale')
      self.linear(layer.to_out, f'{prefix}.0.to_out')
      if layer.state is not None:
        state, name = layer.state, f'{prefix}.0.state_container'
        self.put(state.init_state_SD, f'{name}.init_state')
        self.put(state.state_pos_ids_SD, f'{name}.state_pos_ids')
        self.put(state.gate_logit_D, f'{name}.learned_ema_beta')
        self.gamma_norm(state.state_norm, f'{name}.state_norm')
        for attr in ('q_to_state', 'q_from_state', 'state_to_q',
                     'state_to_kv', 'to_state_out', 'state_out_to_gate'):
          self.linear(getattr(state, attr), f'{name}.{attr}')
        for attr, torch_name in (('read_norm', 'to_state_cross_attn'),
                                 ('self_norm', 'state_self_attn'),
                                 ('cross_norm', 'from_state_cross_attn')):
          norm = getattr(state, attr)
          self.put(norm.q_scale_K, f'{name}.{torch_name}.q_scale')
          self.put(norm.k_scale_K, f'{name}.{torch_name}.k_scale')
      self.gamma_norm(layer.ff_norm, f'{prefix}.1.0')
      self.linear(layer.ff_in, f'{prefix}.1.1')
      self.linear(layer.ff_out, f'{prefix}.1.3')
    self.gamma_norm(model.final_norm, 'model.to_logits.0')
    self.linear(model.output, 'model.to_logits.1')

  def finish(self):
    if self._remaining:
      raise ValueError(f'Unused state_dict entries: {sorted(self._remaining)}.')


def config_from_torch(model_class: str, kwargs: Mapping[str, Any],
                      mode: str | None = None):
  """Our config for one of the original classes and its constructor kwargs."""
  if model_class == 'MyStaircaseTransformer':
    G = kwargs.get('group_size', 1)
    return staircase.StaircaseConfig(
        input_size=kwargs['input_size'], output_size=kwargs['output_size'],
        d_model=kwargs['d_model'], num_heads=kwargs['num_heads'],
        group_size=G,
        num_recurrent_calls=staircase.resolve_recurrent_calls(
            kwargs.get('num_layers'), kwargs.get('num_recurrent_calls'), G),
        chunk_size=kwargs['fix_staircase_size_forward'],
        cache_steps=kwargs.get('staircase_cache_steps', 0),
        diagonal=bool(kwargs.get('diagonal', False)),
        norm_type=kwargs.get('norm_type', 'prenorm'),
        is_causal=bool(kwargs.get('is_causal', True)),
        dropout=kwargs.get('dropout', 0.0),
        mode=(mode or 'staircase').lower())
  if model_class in ('Transformer', 'UniversalTransformer'):
    return transformer.TransformerConfig(
        input_size=kwargs['input_size'], output_size=kwargs['output_size'],
        d_model=kwargs['d_model'], num_heads=kwargs['num_heads'],
        num_layers=kwargs['num_layers'],
        norm_type=kwargs.get('norm_type', 'prenorm'),
        is_causal=bool(kwargs.get('is_causal', False)),
        dropout=kwargs.get('dropout', 0.0),
        universal_group_size=(kwargs['group_size']
                              if model_class == 'UniversalTransformer'
                              else None))
  if model_class == 'ElmanRNN':
    if kwargs.get('bidirectional', False):
      raise ValueError('Bidirectional RNNs are not supported.')
    return rnn.RNNConfig(
        input_size=kwargs['input_size'], output_size=kwargs['output_size'],
        hidden_size=kwargs['hidden_size'], num_layers=kwargs['num_layers'],
        dropout=kwargs.get('dropout', 0.0))
  if model_class == 'BlockRecurrentTransformerWrapper':
    D, C = kwargs['d_model'], kwargs['chunk_size']
    return block_recurrent.BlockRecurrentConfig(
        input_size=kwargs['input_size'], output_size=kwargs['output_size'],
        d_model=D, num_heads=kwargs['num_heads'],
        num_layers=kwargs['num_layers'],
        recurrent_layer_index=kwargs['recurrent_layer_index'], chunk_size=C,
        # The package's default when unset is one state vector per token.
        num_state_vectors=kwargs.get('num_state_vectors') or C,
        max_sequence_length=kwargs.get('max_sequence_length', 512))
  raise ValueError(
      f'Unknown model class {model_class!r}; expected one of {MODEL_CLASSES}.')


def model_from_state_dict(model_class: str, state_dict: Mapping[str, Any],
                          kwargs: Mapping[str, Any], mode: str | None = None,
                          dtype=jnp.float32) -> nnx.Module:
  """Our module, holding exactly the weights of the original `state_dict`."""
  cfg = config_from_torch(model_class, kwargs, mode)
  loader = _Loader(state_dict, dtype)
  if isinstance(cfg, staircase.StaircaseConfig):
    model = staircase.StaircaseTransformer(cfg, rngs=nnx.Rngs(0))
    for g, layer in enumerate(model.group.layers):
      loader.encoder_layer(layer, f'group.layers.{g}')
  elif isinstance(cfg, transformer.TransformerConfig):
    model = transformer.Transformer(cfg, rngs=nnx.Rngs(0))
    prefix = ('group.layers' if cfg.universal_group_size
              else 'transformer.layers')
    for i, layer in enumerate(model.layers):
      loader.encoder_layer(layer, f'{prefix}.{i}')
  elif isinstance(cfg, block_recurrent.BlockRecurrentConfig):
    model = block_recurrent.BlockRecurrentTransformer(cfg, rngs=nnx.Rngs(0))
    loader.block_recurrent(model)
    loader.finish()
    return model
  else:
    model = rnn.RNN(cfg, rngs=nnx.Rngs(0))
    for k, layer in enumerate(model.layers):
      for name in ('weight_ih', 'weight_hh'):
        loader.put(getattr(layer, name), f'rnn.{name}_l{k}', transpose=True)
      for name in ('bias_ih', 'bias_hh'):
        loader.put(getattr(layer, name), f'rnn.{name}_l{k}')
  loader.embed(model.embedding, 'embedding.weight')
  if isinstance(cfg, rnn.RNNConfig):
    loader.linear(model.output_projection, 'output_projection')
  else:
    loader.linear(model.output, 'output')
    if model.final_norm is not None:
      loader.layer_norm(
          model.final_norm,
          'transformer.norm' if model_class == 'Transformer' else 'final_norm')
  loader.finish()
  return model


def load_torch_checkpoint(path: str) -> dict[str, np.ndarray]:
  """A state_dict of NumPy arrays from an original `.pt` file (needs torch)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('Reading a .pt checkpoint needs PyTorch installed.') from e
  checkpoint = torch.load(path, map_location='cpu', weights_only=True)
  for key in ('model_state_dict', 'state_dict', 'model'):
    if isinstance(checkpoint, Mapping) and key in checkpoint:
      checkpoint = checkpoint[key]
  return {k: v.detach().cpu().numpy() for k, v in checkpoint.items()}


def logits_from_fixture(path: str, dtype=np.float32) -> np.ndarray:
  """Our logits for a golden fixture's weights and input, shaped like its `output`.

  Pass `dtype=np.float64` (with `jax_enable_x64` on) to compare against
  `output_float64`.
  """
  with np.load(path, allow_pickle=False) as fixture:
    config = json.loads(str(fixture['config']))
    state_dict = {k: fixture[k] for k in fixture.files
                  if k not in _FIXTURE_KEYS}
    input_BL = fixture['input_tokens']
  kwargs = config['constructor_kwargs']
  model = model_from_state_dict(config['model_class'], state_dict, kwargs,
                                config.get('mode'), dtype=dtype)
  graphdef, params = nnx.split(model)
  forward = jax.jit(lambda params, x_BL: nnx.merge(graphdef, params)(x_BL))
  logits_BLO = np.asarray(forward(params, jnp.asarray(input_BL)))
  if not kwargs['return_all_outputs']:
    logits_BLO = logits_BLO[:, -1]
  return logits_BLO
