"""The block-recurrent Transformer: known answers, a reference loop and its properties.

docs/block_recurrent.md, "What the tests check", lists them.
"""

import dataclasses
import functools
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
from flax import nnx
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np

import block_recurrent_reference as reference
from neural_networks import attention
from neural_networks import block_recurrent
from neural_networks import pure
from neural_networks import torch_import

jax.config.update('jax_numpy_rank_promotion', 'raise')

_BRT = 'BlockRecurrentTransformerWrapper'
_V, _O = 4, 3


def _config(**fields) -> block_recurrent.BlockRecurrentConfig:
  defaults = dict(input_size=_V, output_size=_O, d_model=16, num_heads=2,
                  num_layers=3, recurrent_layer_index=2, chunk_size=2,
                  num_state_vectors=3)
  return block_recurrent.variant_config(**{**defaults, **fields})


def _model(cfg, seed=0) -> block_recurrent.BlockRecurrentTransformer:
  return block_recurrent.BlockRecurrentTransformer(cfg, rngs=nnx.Rngs(seed))


def _logits(model, input_BL, length_B=None):
  graphdef, params = nnx.split(model)
  return np.asarray(_forward(graphdef, params, jnp.asarray(input_BL),
                             length_B))


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, params, input_BL, length_B):
  return nnx.merge(graphdef, params)(input_BL, length_B)


def _run(model, input_BL, length_B=None):
  """Jitted `model.run`: `(logits_BLO, final_state_BSD)` as NumPy arrays."""
  graphdef, params = nnx.split(model)
  return tuple(map(np.asarray, _jitted_run(
      graphdef, params, jnp.asarray(input_BL),
      None if length_B is None else jnp.asarray(length_B))))


@functools.partial(jax.jit, static_argnums=0)
def _jitted_run(graphdef, params, input_BL, length_B):
  return nnx.merge(graphdef, params).run(input_BL, length_B)


@functools.partial(jax.jit, static_argnums=0)
def _forward_with_key(graphdef, params, input_BL, key):
  return nnx.merge(graphdef, params)(input_BL, None, key)


def _tokens(seed, B, L, V=_V):
  return np.random.default_rng(seed).integers(0, V, (B, L)).astype(np.int32)


def _scale_param(model, path, factor, rows=None):
  """Multiplies a parameter (or some of its output columns) in place."""
  param = model
  for name in path:
    param = getattr(param, name) if isinstance(name, str) else param[name]
  value = param[...]
  if rows is None:
    param.set_value(value * factor)
  else:
    param.set_value(value.at[:, rows].multiply(factor))


def _ablate_state_read(model):
  """Zeroes the recurrent layer's output columns that carry the state read."""
  cfg = model.cfg
  layer = model.layers[cfg.recurrent_layer_index - 1]
  HK = cfg.num_heads * cfg.head_size
  kernel = layer.to_out.kernel
  kernel.set_value(kernel[...].at[HK:].set(0.0))


def _known_answer_state_dict(c):
  """The known-answer weights for a config of `reference.CONFIGS` (I=3, O=2)."""
  return reference.known_answer_state_dict(
      c['d_model'], c['num_heads'], c['num_layers'], 3, 2,
      c['num_state_vectors'], c['recurrent_layer_index'])


class KnownAnswerTest(parameterized.TestCase):
  """The known answers and the independent float64 reference loop."""

  @parameterized.parameters('G1', 'G2')
  def test_known_answer_logits_in_float64(self, name):
    c = reference.CONFIGS[name]
    state_dict = _known_answer_state_dict(c)
    self.assertLen(state_dict, 43)
    with jax.enable_x64(True):
      model = torch_import.model_from_state_dict(
          _BRT, state_dict, dict(c, input_size=3, output_size=2),
          dtype=jnp.float64)
      logits_BLO = np.asarray(model(jnp.asarray(reference.INPUT_BL)))
    self.assertEqual(logits_BLO.dtype, np.float64)
    np.testing.assert_allclose(logits_BLO, reference.EXPECTED[name],
                               atol=1e-9, rtol=0)

  @parameterized.parameters('G1', 'G2')
  def test_known_answer_logits_in_float32(self, name):
    c = reference.CONFIGS[name]
    state_dict = _known_answer_state_dict(c)
    model = torch_import.model_from_state_dict(
        _BRT, state_dict, dict(c, input_size=3, output_size=2))
    np.testing.assert_allclose(_logits(model, reference.INPUT_BL),
                               reference.EXPECTED[name], atol=2e-6)

  def test_reference_reproduces_the_known_answers(self):
    # The reference below is trusted only because it meets the spec's numbers.
    for name, c in reference.CONFIGS.items():
      state_dict = _known_answer_state_dict(c)
      logits_BLO, _ = reference.reference_run(
          state_dict, reference.INPUT_BL, c['num_heads'], c['num_layers'],
          c['chunk_size'], c['recurrent_layer_index'])
      np.testing.assert_allclose(logits_BLO, reference.EXPECTED[name],
                                 atol=1e-9, rtol=0)

  @parameterized.parameters(
      # (D, H, N, C, S, r, L): L divisible by C or not, W = 1, r first,
      # middle or last, S = 1 and S > C.
      (16, 2, 3, 2, 3, 2, 9), (32, 4, 2, 4, 2, 1, 10), (16, 2, 3, 1, 2, 3, 6),
      (24, 2, 1, 3, 1, 1, 8), (16, 4, 3, 8, 5, 2, 19), (32, 2, 2, 2, 16, 2, 4),
  )
  def test_scan_equals_the_variable_shape_block_loop(self, D, H, N, C, S, r, L):
    """Logits and final state equal the per-block loop that carries the memory."""
    rng = np.random.default_rng(D * 1000 + C * 10 + L)
    state_dict = reference.random_state_dict(rng, D, H, N, _V, _O, S, r)
    input_BL = rng.integers(0, _V, (3, L))
    expected_BLO, expected_state_BSD = reference.reference_run(
        state_dict, input_BL, H, N, C, r)
    kwargs = dict(input_size=_V, output_size=_O, d_model=D, num_heads=H,
                  num_layers=N, chunk_size=C, num_state_vectors=S,
                  recurrent_layer_index=r,
                  max_sequence_length=512 - 512 % C)
    with jax.enable_x64(True):
      model = torch_import.model_from_state_dict(_BRT, state_dict, kwargs,
                                                 dtype=jnp.float64)
      logits_BLO, state_BSD = _run(model, input_BL)
      # The same with padding to a whole number of blocks plus two, and
      # lengths: the final state ignores the padding.
      padded_BL = np.pad(input_BL, ((0, 0), (0, 2 * C)))
      padded_logits_BLO, padded_state_BSD = _run(
          model, padded_BL, np.full((3,), L, np.int32))
    np.testing.assert_allclose(logits_BLO, expected_BLO, atol=1e-12, rtol=0)
    np.testing.assert_allclose(state_BSD, expected_state_BSD, atol=1e-12,
                               rtol=0)
    np.testing.assert_allclose(padded_logits_BLO[:, :L], expected_BLO,
                               atol=1e-12, rtol=0)
    np.testing.assert_allclose(padded_state_BSD, expected_state_BSD,
                               atol=1e-12, rtol=0)

  def test_per_example_lengths_give_each_example_its_own_final_state(self):
    rng = np.random.default_rng(5)
    D, H, N, C, S, r = 16, 2, 2, 2, 2, 2
    state_dict = reference.random_state_dict(rng, D, H, N, _V, _O, S, r)
    input_BL = rng.integers(0, _V, (3, 11))
    lengths = [11, 6, 1]
    kwargs = dict(input_size=_V, output_size=_O, d_model=D, num_heads=H,
                  num_layers=N, chunk_size=C, num_state_vectors=S,
                  recurrent_layer_index=r)
    with jax.enable_x64(True):
      model = torch_import.model_from_state_dict(_BRT, state_dict, kwargs,
                                                 dtype=jnp.float64)
      _, state_BSD = _run(model, input_BL, np.asarray(lengths))
    for b, length in enumerate(lengths):
      _, expected_SD = reference.reference_run(
          state_dict, input_BL[b:b + 1, :length], H, N, C, r)
      np.testing.assert_allclose(state_BSD[b], expected_SD[0], atol=1e-12)


class PropertyTest(parameterized.TestCase):
  """Properties of the model (float32)."""

  @hypothesis.settings(deadline=None, max_examples=10)
  @hypothesis.given(position=st.integers(0, 12), seed=st.integers(0, 99))
  def test_causality(self, position, seed):
    model = _model(_config())
    input_BL = _tokens(seed, 2, 13)
    perturbed_BL = input_BL.copy()
    perturbed_BL[:, position] = (perturbed_BL[:, position] + 1) % _V
    before, after = _logits(model, input_BL), _logits(model, perturbed_BL)
    np.testing.assert_array_equal(before[:, :position], after[:, :position])
    self.assertFalse(np.allclose(before[:, position:], after[:, position:]))

  @parameterized.parameters(1, 3)
  def test_appended_tokens_change_no_earlier_logit(self, C):
    """Right-padding invariance for every L mod C: what the jit buckets rely on."""
    model = _model(_config(chunk_size=C, max_sequence_length=12, num_layers=2))
    for L in range(C, 2 * C + 1):
      input_BL = _tokens(L, 2, L)
      longer_BL = np.concatenate([input_BL, _tokens(L + 50, 2, 5)], axis=1)
      np.testing.assert_allclose(_logits(model, longer_BL)[:, :L],
                                 _logits(model, input_BL), atol=1e-6)

  def test_first_block_memory_is_masked(self):
    input_BL = _tokens(0, 2, 7)
    fill = lambda shape, dtype: jax.random.normal(jax.random.key(1), shape,
                                                  dtype) * 5
    for first_block_memory, changes in (('absent', False), ('zeros', True)):
      model = _model(_config(first_block_memory=first_block_memory))
      # Both eager: a jitted forward would not see the patch.
      expected = np.asarray(model(jnp.asarray(input_BL)))
      with mock.patch.object(block_recurrent, 'first_block_memory', fill):
        actual = np.asarray(model(jnp.asarray(input_BL)))
      if changes:  # The test can see a fill that is used.
        self.assertGreater(np.abs(actual - expected).max(), 1e-3)
      else:
        np.testing.assert_array_equal(actual, expected)

  @parameterized.parameters((2, 3), (1, 2), (3, 1))
  def test_receptive_field_without_the_state_is_n_plus_one_blocks(self, C, N):
    model = _model(_config(chunk_size=C, num_layers=N, recurrent_layer_index=N,
                           max_sequence_length=510 if C == 3 else 512))
    _ablate_state_read(model)
    L = (N + 3) * C
    input_BL = _tokens(C, 2, L)
    query_block = L // C - 1
    base = _logits(model, input_BL)[:, -1]

    def change_at_block(block):
      perturbed_BL = input_BL.copy()
      perturbed_BL[:, block * C] = (perturbed_BL[:, block * C] + 1) % _V
      return np.abs(_logits(model, perturbed_BL)[:, -1] - base).max()

    self.assertEqual(change_at_block(query_block - N - 1), 0.0)
    self.assertEqual(change_at_block(query_block - N - 2), 0.0)
    self.assertGreater(change_at_block(query_block - N), 1e-6)

  def test_the_state_carries_information_across_the_whole_sequence(self):
    model = _model(_config())
    input_BL = _tokens(3, 2, 40)
    perturbed_BL = input_BL.copy()
    perturbed_BL[:, 0] = (perturbed_BL[:, 0] + 1) % _V
    change = np.abs(_logits(model, perturbed_BL)[:, -1]
                    - _logits(model, input_BL)[:, -1]).max()
    self.assertGreater(change, 1e-7)

  def test_block_size_one_sees_the_previous_token_and_itself(self):
    mask_NCM = np.asarray(block_recurrent.token_mask(_config(chunk_size=1), 4))
    chex.assert_shape(mask_NCM, (4, 1, 2))
    np.testing.assert_array_equal(mask_NCM[0], [[False, True]])
    np.testing.assert_array_equal(mask_NCM[1:], np.ones((3, 1, 2), bool))
    # Block width 2: all of the memory, then causal within the block.
    np.testing.assert_array_equal(
        np.asarray(block_recurrent.token_mask(_config(chunk_size=2), 2)),
        [[[False, False, True, False], [False, False, True, True]],
         [[True, True, True, False], [True, True, True, True]]])

  def test_block_size_one_updates_the_state_after_every_token(self):
    model = _model(_config(chunk_size=1))
    input_BL = _tokens(4, 2, 5)
    # Padded to one shape; the lengths say where each sequence ends.
    states = [_run(model, input_BL, np.full((2,), L, np.int32))[1]
              for L in range(1, 6)]
    for earlier, later in zip(states, states[1:]):
      self.assertGreater(np.abs(later - earlier).max(), 1e-6)

  def test_gate_limits(self):
    input_BL = _tokens(5, 2, 2)  # One block: the final state is s_1.
    results = {}
    for beta in (-50.0, 50.0):
      for shift in (0.0, 3.0):
        model = _model(_config())
        state = model.layers[1].state
        state.gate_logit_D.set_value(jnp.full_like(state.gate_logit_D[...],
                                                   beta))
        state.init_state_SD.set_value(state.init_state_SD[...] + shift)
        results[beta, shift] = (_run(model, input_BL)[1],
                                np.asarray(state.init_state_SD[...]))
    # Closed gate: the state stays s_init (not its normalised form).
    for shift in (0.0, 3.0):
      final_BSD, init_SD = results[-50.0, shift]
      np.testing.assert_array_equal(final_BSD,
                                    np.broadcast_to(init_SD, final_BSD.shape))
    # Open gate: s_1 = z, which sees s_init only through its LayerNorm, so a
    # constant shift of s_init changes nothing.
    np.testing.assert_allclose(results[50.0, 0.0][0], results[50.0, 3.0][0],
                               atol=1e-5)
    self.assertGreater(np.abs(results[50.0, 0.0][0]
                              - results[50.0, 0.0][1]).max(), 1e-2)

  def test_permuting_state_slots_permutes_the_final_state_only(self):
    model = _model(_config(num_state_vectors=4))
    input_BL = _tokens(6, 2, 9)
    logits_BLO, state_BSD = _run(model, input_BL)
    permutation = np.array([2, 0, 3, 1])
    state = model.layers[1].state
    for param in (state.init_state_SD, state.state_pos_ids_SD):
      param.set_value(param[...][permutation])
    permuted_logits_BLO, permuted_state_BSD = _run(model, input_BL)
    np.testing.assert_allclose(permuted_logits_BLO, logits_BLO, atol=1e-5)
    np.testing.assert_allclose(permuted_state_BSD, state_BSD[:, permutation],
                               atol=1e-5)
    # Permuting s_init alone is a different model.
    state.init_state_SD.set_value(state.init_state_SD[...][permutation])
    self.assertGreater(np.abs(_logits(model, input_BL) - logits_BLO).max(),
                       1e-4)

  @parameterized.named_parameters(
      ('recurrent_queries', (1, 'to_q', 'kernel'), None, False),
      ('read_queries', (1, 'state', 'q_to_state', 'kernel'), None, False),
      ('state_keys', (1, 'state', 'state_to_kv', 'kernel'), slice(0, 8), False),
      ('other_layer_queries', (0, 'to_q', 'kernel'), None, True),
      ('state_values', (1, 'state', 'state_to_kv', 'kernel'), slice(8, 16),
       True),
  )
  def test_l2_norm_makes_some_scales_irrelevant(self, path, columns, changes):
    model = _model(_config())  # head width 8
    input_BL = _tokens(7, 2, 9)
    expected = _logits(model, input_BL)
    layer_path = ('layers', path[0]) + path[1:]
    _scale_param(model, layer_path, 3.0, columns)
    actual = _logits(model, input_BL)
    if changes:
      self.assertGreater(np.abs(actual - expected).max(), 1e-4)
    else:
      np.testing.assert_allclose(actual, expected, atol=1e-5)

  def test_only_relative_positions_matter(self):
    model = _model(_config(chunk_size=4, num_state_vectors=2))
    input_BL = _tokens(8, 2, 11)
    expected = _logits(model, input_BL)
    tables = block_recurrent.rotary_tables

    def shifted(shift):
      def rotary_tables(C, K, use_xpos, dtype):
        cos_MK, sin_MK, scale_MK = tables(C + shift, K, use_xpos, dtype)
        # Slots shift + 0 .. shift + 2C - 1, XPos still centred on slot C.
        return (cos_MK[shift:shift + 2 * C], sin_MK[shift:shift + 2 * C],
                scale_MK[shift:shift + 2 * C])
      return rotary_tables

    with mock.patch.object(block_recurrent, 'rotary_tables', shifted(5)):
      np.testing.assert_allclose(np.asarray(model(jnp.asarray(input_BL))),
                                 expected, atol=2e-5)

    def queries_shifted(C, K, use_xpos, dtype):  # Breaks relativity.
      cos_MK, sin_MK, scale_MK = tables(C, K, use_xpos, dtype)
      roll = lambda t: jnp.concatenate([t[:C], jnp.roll(t[C:], 1, axis=0)])
      return roll(cos_MK), roll(sin_MK), scale_MK

    with mock.patch.object(block_recurrent, 'rotary_tables', queries_shifted):
      self.assertGreater(
          np.abs(np.asarray(model(jnp.asarray(input_BL))) - expected).max(),
          1e-4)

  def test_batch_rows_are_independent(self):
    model = _model(_config())
    input_BL = _tokens(9, 4, 9)
    together = _logits(model, input_BL)
    for b in range(4):
      np.testing.assert_allclose(_logits(model, input_BL[b:b + 1])[0],
                                 together[b], atol=1e-6)
    other_BL = input_BL.copy()
    other_BL[1:] = _tokens(10, 3, 9)
    np.testing.assert_allclose(_logits(model, other_BL)[0], together[0],
                               atol=1e-6)

  @parameterized.parameters(((64, 4, 2), 160_704), ((512, 4, 2), 10_232_832),
                            ((512, 16, 16), 9_853_184), ((64, 8, 32), 160_384))
  def test_parameter_count(self, dhs, expected):
    D, H, S = dhs
    cfg = block_recurrent.BlockRecurrentConfig(
        input_size=3, output_size=2, d_model=D, num_heads=H, num_layers=3,
        recurrent_layer_index=2, chunk_size=2, num_state_vectors=S)
    model = nnx.eval_shape(lambda: _model(cfg))
    count = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    self.assertEqual(count, expected)
    self.assertEqual(block_recurrent.parameter_count(cfg), expected)

  def test_long_inputs_run_and_stay_prefix_invariant(self):
    model = _model(_config(d_model=8, num_heads=2, num_layers=2,
                           recurrent_layer_index=1, num_state_vectors=2))
    input_BL = _tokens(11, 1, 600)
    longer_BL = np.concatenate([input_BL, _tokens(12, 1, 7)], axis=1)
    logits_BLO = _logits(model, input_BL)
    self.assertTrue(np.isfinite(logits_BLO).all())
    np.testing.assert_allclose(_logits(model, longer_BL)[:, :600], logits_BLO,
                               atol=1e-6)

  def test_gradient_flows_through_the_state_to_the_first_token(self):
    """Token 0 uses its own id, so the gradient of its embedding row is its own."""
    input_BL = _tokens(13, 1, 40, V=_V - 1)
    input_BL[:, 0] = _V - 1

    def first_token_gradient(model):
      graphdef, params = nnx.split(model)
      last_logit = lambda params: nnx.merge(graphdef, params)(
          jnp.asarray(input_BL))[0, -1, 0]
      grads = jax.jit(jax.grad(last_logit))(params)
      return np.asarray(grads['embedding']['embedding'][...][_V - 1])

    model = _model(_config())
    self.assertGreater(np.abs(first_token_gradient(model)).max(), 0.0)
    _ablate_state_read(model)
    np.testing.assert_array_equal(first_token_gradient(model), 0.0)


class VariantTest(parameterized.TestCase):
  """The `--brt_*` variants."""

  def test_sliding_exclusive_sees_exactly_c_earlier_keys(self):
    for C in (1, 2, 4):
      cfg = _config(chunk_size=C, token_window='sliding_exclusive')
      mask_NCM = np.asarray(block_recurrent.token_mask(cfg, 3))
      np.testing.assert_array_equal(mask_NCM[1:].sum(-1), C)
      for i in range(C):  # Query i sees window slots i .. C + i - 1.
        np.testing.assert_array_equal(
            np.flatnonzero(mask_NCM[1, i]), np.arange(i, C + i))
      np.testing.assert_array_equal(mask_NCM[0].sum(-1), np.arange(C))

  def test_a_query_with_no_key_outputs_zero_not_nan(self):
    model = _model(_config(token_window='sliding_exclusive', chunk_size=1))
    input_BL = _tokens(14, 2, 5)
    logits_BLO = _logits(model, input_BL)
    self.assertTrue(np.isfinite(logits_BLO).all())
    # The first token attends to nothing: its logits ignore its token except
    # through the residual path and the state read, so they stay finite.
    q_XQHK = jnp.ones((1, 1, 2, 4))
    k_XMJK = jnp.ones((1, 3, 1, 4))
    out = attention.attend(q_XQHK, k_XMJK, k_XMJK, jnp.zeros((1, 1, 3), bool))
    np.testing.assert_array_equal(out, 0.0)
    grads = jax.grad(lambda q: attention.attend(
        q, k_XMJK, k_XMJK, jnp.zeros((1, 1, 3), bool)).sum())(q_XQHK)
    self.assertTrue(np.isfinite(grads).all())

  def test_kv_heads_all_adds_the_expected_parameters(self):
    count = lambda cfg: sum(x.size for x in jax.tree.leaves(
        nnx.state(nnx.eval_shape(lambda: _model(cfg)), nnx.Param)))
    one, every = _config(), _config(kv_heads='all')
    D, H, K, N = 16, 2, 8, 3
    # Each layer's token K/V and the state's K/V grow from 2K to 2HK outputs.
    self.assertEqual(count(every) - count(one), (N + 1) * D * 2 * K * (H - 1))
    self.assertEqual(count(one), block_recurrent.parameter_count(one))

  def test_meliad_preset_runs_at_block_size_one_and_trains(self):
    cfg = _config(variant='meliad', chunk_size=1, dropout=0.05)
    self.assertEqual(cfg.token_window, 'sliding_exclusive')
    self.assertTrue(cfg.apply_dropout)
    model = pure.from_nnx(lambda rngs: block_recurrent.BlockRecurrentTransformer(
        cfg, rngs=rngs))
    params = model.init(jax.random.key(0))
    input_BL = jnp.asarray(_tokens(15, 2, 6))
    loss = lambda p, key: jnp.mean(model.apply(p, input_BL, None, key) ** 2)
    value, grads = jax.jit(jax.value_and_grad(loss))(params, jax.random.key(1))
    self.assertTrue(np.isfinite(value))
    leaves = jax.tree.leaves(grads)
    self.assertTrue(all(np.isfinite(g).all() for g in leaves))
    self.assertGreater(sum(float(jnp.abs(g).sum()) for g in leaves), 0.0)
    # Dropout is on with a key, off without one.
    apply = jax.jit(model.apply)
    with_key = apply(params, input_BL, None, jax.random.key(2))
    again = apply(params, input_BL, None, jax.random.key(2))
    without = apply(params, input_BL, None, None)
    np.testing.assert_array_equal(with_key, again)
    self.assertGreater(float(jnp.abs(with_key - without).max()), 0.0)

  def test_the_seed_variant_ignores_dropout(self):
    model = pure.from_nnx(lambda rngs: block_recurrent.BlockRecurrentTransformer(
        _config(dropout=0.3), rngs=rngs))
    params = model.init(jax.random.key(0))
    input_BL = jnp.asarray(_tokens(16, 2, 6))
    apply = jax.jit(model.apply)
    np.testing.assert_array_equal(
        apply(params, input_BL, None, jax.random.key(1)),
        apply(params, input_BL, None, None))

  @parameterized.parameters(
      *[(name, value) for name, values in block_recurrent.CHOICES.items()
        for value in values[1:]],
      ('init_state_std', 0.1), ('apply_dropout', True))
  def test_every_departure_runs_and_changes_the_model(self, name, value):
    seed_model = _model(_config(dropout=0.1))
    model = _model(dataclasses.replace(seed_model.cfg, **{name: value}))
    seed_params = nnx.state(seed_model, nnx.Param)
    shapes = lambda params: jax.tree.map(jnp.shape, params)
    if name != 'init_state_std' and (shapes(nnx.state(model, nnx.Param))
                                     == shapes(seed_params)):
      nnx.update(model, seed_params)  # Same weights: only the flag differs.
    input_BL = jnp.asarray(_tokens(17, 2, 7))
    key = jax.random.key(3)
    expected = np.asarray(_forward_with_key(*nnx.split(seed_model), input_BL, key))
    actual = np.asarray(_forward_with_key(*nnx.split(model), input_BL, key))
    self.assertTrue(np.isfinite(actual).all())
    self.assertGreater(np.abs(actual - expected).max(), 1e-6)

  def test_variant_overrides_and_bad_values(self):
    cfg = _config(variant='meliad', norm='layernorm')
    self.assertEqual(cfg.norm, 'layernorm')
    self.assertEqual(cfg.ffn, 'relu')
    bad = [dict(variant='hutchins'), dict(norm='batchnorm'),
           dict(recurrent_layer_index=0), dict(recurrent_layer_index=4),
           dict(chunk_size=3), dict(num_heads=3), dict(d_model=6, num_heads=2),
           dict(num_state_vectors=0), dict(chunk_size=0),
           dict(init_state_std=-1.0), dict(dropout=1.0)]
    for fields in bad:
      with self.assertRaises(ValueError, msg=str(fields)):
        _config(**fields)
    # Without rotary positions an odd head width is fine.
    _config(d_model=6, num_heads=2, position='none')


if __name__ == '__main__':
  absltest.main()
