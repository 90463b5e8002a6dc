"""Causality, padding, gradients, tracing, init and dropout of every model."""

import collections
import dataclasses
import functools

from absl.testing import absltest
from absl.testing import parameterized
import chex
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from experiments import registry
from neural_networks import pure
from neural_networks import rnn
from neural_networks import staircase
from neural_networks import transformer

jax.config.update('jax_numpy_rank_promotion', 'raise')  # No silent broadcasting in tests.

_V, _O = 3, 2  # Input vocabulary and output classes of the tiny models.
_B, _L, _PADDED_L = 2, 7, 10  # Shapes shared by the tests, so compiles are too.
_DROPOUT = 0.1  # Every model has dropout; without a key it is off.

_STAIRCASE = staircase.StaircaseConfig(
    _V, _O, d_model=8, num_heads=2, group_size=2, num_recurrent_calls=2,
    chunk_size=2, cache_steps=1, diagonal=True, dropout=_DROPOUT)
_TRANSFORMER = transformer.TransformerConfig(_V, _O, d_model=8, num_heads=2,
                                             num_layers=2, dropout=_DROPOUT)
_RNN = rnn.RNNConfig(_V, _O, hidden_size=8, num_layers=2, dropout=_DROPOUT)
_CONFIGS = {
    'staircase': _STAIRCASE,
    'staircase_postnorm_cache_all': dataclasses.replace(
        _STAIRCASE, norm_type='postnorm', cache_steps=-1, diagonal=False,
        num_recurrent_calls=3, chunk_size=3, group_size=1),
    'staircase_parallel': dataclasses.replace(_STAIRCASE, mode='parallel'),
    'staircase_parallel_noncausal': dataclasses.replace(
        _STAIRCASE, mode='parallel', is_causal=False),
    'transformer_causal': dataclasses.replace(_TRANSFORMER, is_causal=True),
    'transformer': _TRANSFORMER,
    'universal_causal': dataclasses.replace(
        _TRANSFORMER, num_layers=4, universal_group_size=2, is_causal=True),
    'universal': dataclasses.replace(
        _TRANSFORMER, num_layers=4, universal_group_size=2,
        norm_type='postnorm'),
    'elman': _RNN,
    'lstm': dataclasses.replace(_RNN, cell='lstm'),
}
# Every registered architecture, built as the CLI builds it from tiny flags.
_TINY_FLAGS = dict(
    embed_size=8, num_heads=2, num_layers=2, dropout=_DROPOUT, group_size=1,
    num_recurrent_calls=None, is_causal=1, norm_type='prenorm',
    init_type='pytorch', fix_staircase_size_forward=2,
    staircase_cache_steps=0, diagonal=False, chunk_size=2,
    num_state_vectors=2, recurrent_layer_index=1, max_sequence_length=512,
    train_steps=0, second_training_steps=1)
_REGISTERED = tuple(f'registry_{name}' for name in registry.MODELS)
for _name, _entry in registry.MODELS.items():
  _CONFIGS[f'registry_{_name}'] = _entry.config_from_flags(
      collections.defaultdict(lambda: None, _TINY_FLAGS), _V, _O)
_CAUSAL = ('staircase', 'staircase_postnorm_cache_all', 'staircase_parallel',
           'transformer_causal', 'universal_causal', 'elman', 'lstm') + tuple(
               name for name in _REGISTERED if _CONFIGS[name].is_causal)
# One of each model class and mode, for the costlier checks.
_EACH_KIND = ('staircase', 'staircase_parallel', 'transformer',
              'universal_causal', 'elman', 'lstm')
_TRACES = collections.Counter()  # Model name -> times its apply was traced.


def _named(names):
  return [(name, name) for name in names]


def _pure(name: str) -> pure.PureModel:
  return registry.ModelEntry.build(_CONFIGS[name])


@functools.cache
def _compiled(name: str):
  """(params, jitted apply): one per model for the whole module, so the tests
  that use the same input shapes share one compiled program."""
  model = _pure(name)

  def apply(params, input_BL, length_B, key):
    _TRACES[name] += 1
    return model.apply(params, input_BL, length_B, key)

  return model.init(jax.random.key(0)), jax.jit(apply)


def _tokens(seed: int, B: int, L: int) -> jax.Array:
  return jax.random.randint(jax.random.key(seed), (B, L), 0, _V)


def _max_abs_diff(a, b) -> float:
  return float(jnp.abs(a - b).max())


class CausalityTest(chex.TestCase):

  @parameterized.named_parameters(*_named(_CAUSAL))
  def test_logits_ignore_later_tokens(self, name):
    params, apply = _compiled(name)
    input_BL = _tokens(1, _B, _L)
    logits_BLO = apply(params, input_BL, None, None)
    chex.assert_shape(logits_BLO, (_B, _L, _O))
    for cut in (1, 4, 6):
      changed_BL = input_BL.at[:, cut:].set((input_BL[:, cut:] + 1) % _V)
      changed_BLO = apply(params, changed_BL, None, None)
      chex.assert_trees_all_close(logits_BLO[:, :cut], changed_BLO[:, :cut],
                                  atol=1e-6, rtol=0)
      # Not vacuous: the changed token itself does move its logits.
      self.assertGreater(
          _max_abs_diff(logits_BLO[:, cut], changed_BLO[:, cut]), 1e-6)

  @parameterized.named_parameters(*_named(
      ('transformer', 'staircase_parallel_noncausal')))
  def test_non_causal_models_see_later_tokens(self, name):
    # Guards the test above: the same check fails without a causal mask.
    params, apply = _compiled(name)
    input_BL = _tokens(1, _B, _L)
    changed_BL = input_BL.at[:, -1].set((input_BL[:, -1] + 1) % _V)
    self.assertGreater(
        _max_abs_diff(apply(params, input_BL, None, None)[:, 0],
                      apply(params, changed_BL, None, None)[:, 0]), 1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_lstm_logits_ignore_later_tokens(self):
    # The one cheap model, run both jitted and op by op.
    model = _pure('lstm')
    params, apply = model.init(jax.random.key(0)), self.variant(model.apply)
    input_BL = _tokens(1, _B, 4)
    changed_BL = input_BL.at[:, 2:].set((input_BL[:, 2:] + 1) % _V)
    chex.assert_trees_all_close(apply(params, input_BL, None, None)[:, :2],
                                apply(params, changed_BL, None, None)[:, :2],
                                atol=1e-6, rtol=0)


class PaddingTest(chex.TestCase):

  @parameterized.named_parameters(*_named(
      ('staircase', 'staircase_postnorm_cache_all', 'staircase_parallel',
       'staircase_parallel_noncausal', 'transformer', 'universal', 'elman',
       'lstm') + _REGISTERED))
  def test_appended_padding_changes_nothing(self, name):
    params, apply = _compiled(name)
    input_BL = _tokens(1, _B, _L)
    padded_BL = jnp.concatenate(  # Any ids at all in the padding.
        [input_BL, _tokens(2, _B, _PADDED_L - _L)], axis=1)
    length_B = jnp.full((_B,), _L, jnp.int32)
    logits_BLO = apply(params, input_BL, None, None)
    padded_BLO = apply(params, padded_BL, length_B, None)
    chex.assert_shape(padded_BLO, (_B, _PADDED_L, _O))
    chex.assert_trees_all_close(padded_BLO[:, :_L], logits_BLO, atol=1e-6,
                                rtol=0)

  def test_non_causal_transformer_needs_the_length_mask(self):
    # Guards the test above: without lengths, padding does reach real tokens.
    params, apply = _compiled('transformer')
    input_BL = _tokens(1, _B, _L)
    padded_BL = jnp.concatenate([input_BL, _tokens(2, _B, _PADDED_L - _L)],
                                axis=1)
    full_B = jnp.full((_B,), _PADDED_L, jnp.int32)
    self.assertGreater(
        _max_abs_diff(apply(params, padded_BL, full_B, None)[:, :_L],
                      apply(params, input_BL, None, None)), 1e-6)

  @parameterized.named_parameters(*_named(
      ('transformer', 'universal', 'staircase',
       'staircase_parallel_noncausal')))
  def test_rows_of_different_lengths_match_unpadded_rows(self, name):
    params, apply = _compiled(name)
    short = 3
    length_B = jnp.array([_L, short], jnp.int32)
    input_BL = _tokens(3, _B, _PADDED_L)  # Every row has junk past its length.
    logits_BLO = apply(params, input_BL, length_B, None)
    alone_BLO = apply(params, input_BL[:, :_L], None, None)
    chex.assert_trees_all_close(logits_BLO[0, :_L], alone_BLO[0], atol=1e-6,
                                rtol=0)
    alone_BLO = apply(params, input_BL[:, :short], None, None)
    chex.assert_trees_all_close(logits_BLO[1, :short], alone_BLO[1],
                                atol=1e-6, rtol=0)


class GradientTest(chex.TestCase):

  @parameterized.named_parameters(*_named(_EACH_KIND))
  def test_gradients_are_finite_with_dropout_and_padding(self, name):
    model = _pure(name)
    params = model.init(jax.random.key(0))
    input_BL = _tokens(1, _B, _PADDED_L)
    length_B = jnp.array([3, _L], jnp.int32)
    weight_BLO = jax.random.normal(jax.random.key(2), (_B, _PADDED_L, _O))
    real_BL1 = (jnp.arange(_PADDED_L)[None, :] < length_B[:, None])[..., None]

    def loss(params):
      logits_BLO = model.apply(params, input_BL, length_B, jax.random.key(3))
      return jnp.sum(jnp.where(real_BL1, logits_BLO * weight_BLO, 0.0))

    grads = jax.jit(jax.grad(loss))(params)
    chex.assert_trees_all_equal_structs(grads, params)
    chex.assert_tree_all_finite(grads)
    self.assertGreater(
        max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)), 0.0)


class CompileOnceTest(chex.TestCase):

  @parameterized.named_parameters(*_named(_EACH_KIND))
  def test_one_trace_serves_every_length_of_a_bucket(self, name):
    params, apply = _compiled(name)
    input_BL = _tokens(1, _B, _PADDED_L)
    traces = _TRACES[name]
    for length in (1, 4, _PADDED_L, 6):
      length_B = jnp.array([length, max(length - 1, 1)], jnp.int32)
      chex.assert_tree_all_finite(apply(params, input_BL, length_B, None))
    # One trace if no earlier test compiled this shape, else none.
    self.assertLessEqual(_TRACES[name] - traces, 1)

  def test_assert_max_traces_sees_one_trace(self):
    chex.clear_trace_counter()
    model = _pure('staircase')
    params = model.init(jax.random.key(0))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def apply(params, input_BL, length_B):
      return model.apply(params, input_BL, length_B, None)

    for length in (1, 5, 8):
      apply(params, _tokens(1, _B, 8), jnp.full((_B,), length, jnp.int32))


class InitTest(chex.TestCase):

  def _stack(self, name, init_type):
    cfg = dataclasses.replace(_CONFIGS[name], init_type=init_type)
    model = transformer.Transformer(cfg, rngs=nnx.Rngs(0))
    return [nnx.state(layer, nnx.Param) for layer in model.layers]

  @parameterized.named_parameters(*_named(('transformer', 'universal')))
  def test_pytorch_init_copies_one_layer_into_the_stack(self, name):
    first, *rest = self._stack(name, 'pytorch')
    self.assertNotEmpty(rest)
    for other in rest:
      chex.assert_trees_all_equal(first, other)

  @parameterized.named_parameters(*_named(('transformer', 'universal')))
  def test_independent_init_draws_each_layer(self, name):
    first, *rest = self._stack(name, 'independent')
    self.assertNotEmpty(rest)
    kernels = lambda layer: [layer['self_attn']['in_proj']['kernel'][...],
                             layer['self_attn']['out_proj']['kernel'][...],
                             layer['linear1']['kernel'][...],
                             layer['linear2']['kernel'][...]]
    for other in rest:
      for a, b in zip(kernels(first), kernels(other)):
        self.assertFalse(np.array_equal(a, b))


class DropoutTest(chex.TestCase):

  @parameterized.named_parameters(*_named(_EACH_KIND))
  def test_a_key_turns_dropout_on_and_fixes_its_mask(self, name):
    params, apply = _compiled(name)
    input_BL = _tokens(1, _B, _L)
    key1, key2 = jax.random.split(jax.random.key(2))
    eval_BLO = apply(params, input_BL, None, None)
    chex.assert_trees_all_equal(eval_BLO, apply(params, input_BL, None, None))
    train_BLO = apply(params, input_BL, None, key1)
    chex.assert_trees_all_equal(train_BLO, apply(params, input_BL, None, key1))
    self.assertGreater(_max_abs_diff(train_BLO, eval_BLO), 1e-6)
    self.assertGreater(
        _max_abs_diff(train_BLO, apply(params, input_BL, None, key2)), 1e-6)

  def test_zero_dropout_ignores_the_key(self):
    cfg = dataclasses.replace(_TRANSFORMER, dropout=0.0)
    model = pure.from_nnx(lambda rngs: transformer.Transformer(cfg, rngs=rngs))
    params = model.init(jax.random.key(0))
    input_BL = _tokens(1, _B, _L)
    chex.assert_trees_all_equal(
        model.apply(params, input_BL, None, jax.random.key(2)),
        model.apply(params, input_BL, None, None))


class ConfigTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('layers_not_divisible_by_group',
       lambda: dataclasses.replace(_TRANSFORMER, num_layers=5,
                                   universal_group_size=2)),
      ('zero_group', lambda: dataclasses.replace(_TRANSFORMER,
                                                 universal_group_size=0)),
      ('zero_layers', lambda: dataclasses.replace(_TRANSFORMER, num_layers=0)),
      ('heads_do_not_divide_width',
       lambda: dataclasses.replace(_TRANSFORMER, d_model=10, num_heads=4)),
      ('unknown_norm',
       lambda: dataclasses.replace(_TRANSFORMER, norm_type='midnorm')),
      ('unknown_init',
       lambda: dataclasses.replace(_TRANSFORMER, init_type='xavier')),
      ('unknown_cell', lambda: dataclasses.replace(_RNN, cell='gru')),
      ('zero_hidden', lambda: dataclasses.replace(_RNN, hidden_size=0)),
      ('rnn_dropout_one', lambda: dataclasses.replace(_RNN, dropout=1.0)),
  )
  def test_bad_config_raises(self, make):
    with self.assertRaises(ValueError):
      make()


if __name__ == '__main__':
  absltest.main()
