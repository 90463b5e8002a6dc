"""Property tests of the staircase Transformer, and a row-by-row reference."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import chex
from flax import nnx
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np

from neural_networks import layers
from neural_networks import pure
from neural_networks import staircase

jax.config.update('jax_numpy_rank_promotion', 'raise')  # No silent broadcasting in tests.

_V, _O = 3, 2  # Input vocabulary and output classes of the tiny models.
_B = 2


def _config(**overrides) -> staircase.StaircaseConfig:
  base = dict(input_size=_V, output_size=_O, d_model=8, num_heads=2,
              group_size=2, num_recurrent_calls=2, chunk_size=2)
  return staircase.StaircaseConfig(**(base | overrides))


def _pure(cfg: staircase.StaircaseConfig) -> pure.PureModel:
  return pure.from_nnx(
      lambda rngs: staircase.StaircaseTransformer(cfg, rngs=rngs))


def _module(cfg: staircase.StaircaseConfig,
            seed: int = 0) -> staircase.StaircaseTransformer:
  return staircase.StaircaseTransformer(cfg, rngs=nnx.Rngs(seed))


def _jit_call(model: nnx.Module, input_BL: jax.Array) -> jax.Array:
  graphdef, params = nnx.split(model, nnx.Param)
  return jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))(params, input_BL)


def _tokens(seed: int, B: int, L: int) -> jax.Array:
  return jax.random.randint(jax.random.key(seed), (B, L), 0, _V)


def _perturb_params(params, seed: int):
  """Adds noise to every parameter so zero biases / unit scales matter too."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [
      leaf + 0.1 * jax.random.normal(k, leaf.shape, leaf.dtype)
      for leaf, k in zip(leaves, keys)])


def _perturbed_module(cfg, seed: int = 0) -> staircase.StaircaseTransformer:
  graphdef, params = nnx.split(_module(cfg, seed), nnx.Param)
  return nnx.merge(graphdef, _perturb_params(params, seed + 1))


def _np(param: nnx.Variable) -> np.ndarray:
  return np.asarray(param[...], np.float64)


def _np_layer_norm(norm: nnx.LayerNorm, x: np.ndarray) -> np.ndarray:
  centred = x - x.mean(axis=-1, keepdims=True)
  scaled = centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + 1e-5)
  return scaled * _np(norm.scale) + _np(norm.bias)


def _np_attention(attn, x_BQD: np.ndarray, c_BMD: np.ndarray,
                  mask_BQM: np.ndarray) -> np.ndarray:
  (B, Q, D), H = x_BQD.shape, attn.num_heads
  kernel_DE, bias_E = _np(attn.in_proj.kernel), _np(attn.in_proj.bias)
  q_BQHK, k_BMHK, v_BMHK = (
      (y @ kernel_DE[:, i * D:(i + 1) * D] + bias_E[i * D:(i + 1) * D])
      .reshape(B, y.shape[1], H, D // H)
      for i, y in enumerate((x_BQD, c_BMD, c_BMD)))
  logits_BHQM = np.einsum('BQHK,BMHK->BHQM', q_BQHK, k_BMHK) / np.sqrt(D // H)
  logits_BHQM = np.where(mask_BQM[:, None], logits_BHQM, -np.inf)
  weights_BHQM = np.exp(logits_BHQM
                        - logits_BHQM.max(axis=-1, keepdims=True))
  weights_BHQM /= weights_BHQM.sum(axis=-1, keepdims=True)
  out_BQD = np.einsum('BHQM,BMHK->BQHK', weights_BHQM, v_BMHK).reshape(B, Q, D)
  return out_BQD @ _np(attn.out_proj.kernel) + _np(attn.out_proj.bias)


def _np_group(group: layers.Group, x_BQD: np.ndarray,
              extra_BED: np.ndarray | None, mask_BQM: np.ndarray) -> np.ndarray:
  """The README's group: each layer's keys/values are `[extra; group input]`."""
  c_BMD = x_BQD if extra_BED is None else np.concatenate([extra_BED, x_BQD], 1)
  for layer in group.layers:
    feed_forward = lambda y: (
        np.maximum(y @ _np(layer.linear1.kernel) + _np(layer.linear1.bias), 0)
        @ _np(layer.linear2.kernel) + _np(layer.linear2.bias))
    if layer.cfg.norm_type == 'prenorm':
      x_BQD = x_BQD + _np_attention(
          layer.self_attn, _np_layer_norm(layer.norm1, x_BQD),
          _np_layer_norm(layer.norm1, c_BMD), mask_BQM)
      x_BQD = x_BQD + feed_forward(_np_layer_norm(layer.norm2, x_BQD))
    else:
      x_BQD = _np_layer_norm(layer.norm1, x_BQD + _np_attention(
          layer.self_attn, x_BQD, c_BMD, mask_BQM))
      x_BQD = _np_layer_norm(layer.norm2, x_BQD + feed_forward(x_BQD))
  return x_BQD


def _reference_logits(model: staircase.StaircaseTransformer,
                      input_BL: jax.Array) -> np.ndarray:
  """The original's staircase procedure, row by row, with dynamic shapes.

  Follows the seed README ("What the models compute", staircase mode and
  diagonal staircase): an active row of chunk states of varying size, a list
  of finished chunks as the cache, per-depth lists of diagonal states, and
  keys/values `[diagonal..., cache, active row]` with per-query masks. The
  group runs in float64 NumPy (`_np_group`, checked against `model.group`
  below): calling the jitted library group on every new row shape compiled
  for minutes.
  """
  cfg = model.cfg
  B, L = input_BL.shape
  C, P = cfg.chunk_size, cfg.num_recurrent_calls
  x_BLD = _np(model.embedding.embedding)[np.asarray(input_BL)]
  chunks = [x_BLD[:, start:start + C] for start in range(0, L, C)]
  num_chunks = len(chunks)
  active = []  # (chunk index, states), oldest first.
  cache = []  # Final states of finished chunks, oldest first.
  diagonal = [[] for _ in range(P)]  # Per depth: earlier chunks' states.
  final = [None] * num_chunks
  for r in range(num_chunks + P - 1):
    if r < num_chunks:
      active.append((r, chunks[r]))
    depths = [r - k for k, _ in active]  # Group passes each has had.
    sizes = [x.shape[1] for _, x in active]
    extras, column_kinds = [], []  # A diagonal key's depth; -1 for cache.
    if cfg.diagonal:
      for depth in sorted(set(depths)):  # Depths no chunk holds are left out.
        for x in diagonal[depth]:
          extras.append(x)
          column_kinds += [depth] * x.shape[1]
    for x in cache:
      extras.append(x)
      column_kinds += [-1] * x.shape[1]
    query_depth_Q = np.repeat(depths, sizes)
    kind_E = np.asarray(column_kinds, dtype=int)
    Q = sum(sizes)
    extra_mask_QE = ((kind_E[None, :] == -1)
                     | (kind_E[None, :] == query_depth_Q[:, None]))
    mask_QM = np.concatenate(
        [extra_mask_QE, np.tril(np.ones((Q, Q), bool))], axis=1)
    if cfg.diagonal:  # Recorded after use: a chunk sees earlier chunks only.
      for (_, x), depth in zip(active, depths):
        diagonal[depth].append(x)
    out_BQD = _np_group(
        model.group, np.concatenate([x for _, x in active], axis=1),
        np.concatenate(extras, axis=1) if extras else None,
        np.broadcast_to(mask_QM, (B, *mask_QM.shape)))
    outs = np.split(out_BQD, np.cumsum(sizes)[:-1], axis=1)
    active = [(k, x) for (k, _), x in zip(active, outs)]
    if r >= P - 1:
      k, x = active.pop(0)
      final[k] = x
      if cfg.cache_steps != 0:
        cache.append(x)
        if cfg.cache_steps > 0:
          cache = cache[-cfg.cache_steps:]
  assert not active and all(x is not None for x in final)
  x_BLD = np.concatenate(final, axis=1)
  if model.final_norm is not None:
    x_BLD = _np_layer_norm(model.final_norm, x_BLD)
  return x_BLD @ _np(model.output.kernel)


@st.composite
def _staircase_cases(draw):
  length = draw(st.integers(1, 11))
  cfg = _config(
      chunk_size=draw(st.integers(1, 4)),
      num_recurrent_calls=draw(st.integers(1, 4)),
      group_size=draw(st.integers(1, 2)),
      cache_steps=draw(st.sampled_from([0, 1, 2, -1])),
      diagonal=draw(st.booleans()),
      norm_type=draw(st.sampled_from(layers.NORM_TYPES)))
  return cfg, length, draw(st.integers(0, 2**16))


class StaircaseEqualsParallelTest(chex.TestCase):

  @hypothesis.settings(max_examples=8, deadline=None)
  @hypothesis.given(data=st.data())
  def test_one_chunk_equals_parallel_mode(self, data):
    length = data.draw(st.integers(1, 8), 'L')
    cfg = _config(
        chunk_size=data.draw(st.integers(length, 8), 'C'),
        num_recurrent_calls=data.draw(st.integers(1, 3), 'P'),
        group_size=data.draw(st.integers(1, 2), 'G'),
        cache_steps=data.draw(st.sampled_from([0, 1, -1]), 'cache'),
        diagonal=data.draw(st.booleans(), 'diagonal'),
        norm_type=data.draw(st.sampled_from(layers.NORM_TYPES), 'norm'))
    seed = data.draw(st.integers(0, 2**16), 'seed')
    stair = _pure(cfg)
    parallel = _pure(dataclasses.replace(cfg, mode='parallel'))
    params = _perturb_params(stair.init(jax.random.key(seed)), seed)
    input_BL = _tokens(seed, _B, length)
    stair_BLO = jax.jit(stair.apply)(params, input_BL, None, None)
    chex.assert_shape(stair_BLO, (_B, length, _O))
    chex.assert_trees_all_close(
        stair_BLO, jax.jit(parallel.apply)(params, input_BL, None, None),
        atol=1e-6, rtol=0)

  def test_several_chunks_differ_from_parallel_mode(self):
    # Guards the test above against a staircase mode that is parallel mode.
    cfg = _config(chunk_size=2, num_recurrent_calls=2)
    params = _pure(cfg).init(jax.random.key(0))
    input_BL = _tokens(1, _B, 6)
    parallel = _pure(dataclasses.replace(cfg, mode='parallel'))
    diff = jnp.abs(jax.jit(_pure(cfg).apply)(params, input_BL, None, None)
                   - jax.jit(parallel.apply)(params, input_BL, None, None))
    self.assertGreater(float(diff.max()), 1e-3)


class StaircaseReferenceTest(chex.TestCase):

  @parameterized.parameters(('prenorm', 3), ('postnorm', 0))
  def test_numpy_group_matches_model_group(self, norm_type, num_extra):
    model = _perturbed_module(_config(group_size=2, norm_type=norm_type))
    Q, D = 5, model.cfg.d_model
    x_BQD, extra_BED = (
        jax.random.normal(jax.random.key(n), (_B, n, D))
        for n in (Q, num_extra))
    mask_BQM = jax.random.bernoulli(jax.random.key(2), 0.6,
                                    (_B, Q, num_extra + Q))
    mask_BQM |= jnp.eye(Q, num_extra + Q, num_extra, dtype=bool)[None]
    extra = extra_BED if num_extra else None
    chex.assert_trees_all_close(
        model.group(x_BQD, extra, mask_BQM),
        _np_group(model.group, np.asarray(x_BQD, np.float64),
                  None if extra is None else np.asarray(extra, np.float64),
                  np.asarray(mask_BQM)),
        atol=1e-5, rtol=0)

  @parameterized.named_parameters(
      # name, L, C, P, G, cache, diagonal, norm
      ('p1_c1', 5, 1, 1, 1, 0, False, 'prenorm'),
      ('p1_c3_cache1', 8, 3, 1, 2, 1, False, 'postnorm'),
      ('p2_c4_cache2', 9, 4, 2, 1, 2, False, 'prenorm'),
      ('p3_c2_cache2', 11, 2, 3, 1, 2, False, 'postnorm'),
      ('p3_c4_cache_all', 11, 4, 3, 2, -1, False, 'postnorm'),
      ('p4_c3_cache_all', 11, 3, 4, 2, -1, False, 'prenorm'),
      ('short_single_chunk', 2, 3, 2, 2, 1, False, 'prenorm'),
      ('diagonal_p4_c1_cache2', 6, 1, 4, 1, 2, True, 'postnorm'),
  )
  def test_matches_row_by_row_reference(self, length, chunk_size, calls,
                                        group_size, cache_steps, diagonal,
                                        norm_type):
    cfg = _config(chunk_size=chunk_size, num_recurrent_calls=calls,
                  group_size=group_size, cache_steps=cache_steps,
                  diagonal=diagonal, norm_type=norm_type)
    model = _perturbed_module(cfg, seed=length)
    input_BL = _tokens(length, _B, length)
    logits_BLO = _jit_call(model, input_BL)
    chex.assert_shape(logits_BLO, (_B, length, _O))
    chex.assert_trees_all_close(logits_BLO, _reference_logits(model, input_BL),
                                atol=1e-5, rtol=0)

  @hypothesis.settings(max_examples=8, deadline=None)
  @hypothesis.given(case=_staircase_cases())
  def test_matches_reference_on_random_configs(self, case):
    cfg, length, seed = case
    model = _perturbed_module(cfg, seed)
    input_BL = _tokens(seed, _B, length)
    chex.assert_trees_all_close(_jit_call(model, input_BL),
                                _reference_logits(model, input_BL),
                                atol=1e-5, rtol=0)

  @parameterized.parameters(1, 2, 3, 4)
  def test_diagonal_matches_reference_and_changes_later_chunks(self, calls):
    C, L = 2, 7
    cfg = _config(chunk_size=C, num_recurrent_calls=calls, diagonal=True,
                  cache_steps=(1, 0, 2, -1)[calls - 1],
                  norm_type=('prenorm', 'postnorm')[calls % 2])
    model = _perturbed_module(cfg, seed=calls)
    input_BL = _tokens(calls, _B, L)
    logits_BLO = _jit_call(model, input_BL)
    chex.assert_tree_all_finite(logits_BLO)
    chex.assert_trees_all_close(logits_BLO, _reference_logits(model, input_BL),
                                atol=1e-5, rtol=0)
    plain = nnx.merge(
        nnx.graphdef(_module(dataclasses.replace(cfg, diagonal=False))),
        nnx.state(model, nnx.Param))
    plain_BLO = _jit_call(plain, input_BL)
    # The first chunk has no earlier chunks to look at; every later one does.
    chex.assert_trees_all_close(logits_BLO[:, :C], plain_BLO[:, :C], atol=1e-6,
                                rtol=0)
    diff_N = jnp.abs(logits_BLO - plain_BLO)[:, C:].max(axis=(0, 2))
    self.assertGreater(float(diff_N.min()), 1e-5)


class StaircaseChunkPropertiesTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(1, 3)
  def test_one_pass_without_cache_keeps_chunks_independent(self, chunk_size):
    L = 4 * chunk_size + 1  # Five chunks; the last one is short if C > 1.
    model = _pure(_config(chunk_size=chunk_size, num_recurrent_calls=1))
    params = model.init(jax.random.key(chunk_size))
    apply = self.variant(model.apply)
    input_BL = _tokens(chunk_size, _B, L)
    logits_BLO = apply(params, input_BL, None, None)
    for changed_chunk in (0, 2, 4):
      start, stop = changed_chunk * chunk_size, (changed_chunk + 1) * chunk_size
      changed_BL = input_BL.at[:, start:stop].set(
          (input_BL[:, start:stop] + 1) % _V)
      changed_BLO = apply(params, changed_BL, None, None)
      outside_L = (jnp.arange(L) < start) | (jnp.arange(L) >= stop)
      chex.assert_trees_all_close(logits_BLO[:, outside_L],
                                  changed_BLO[:, outside_L], atol=1e-6, rtol=0)
      self.assertGreater(
          float(jnp.abs(logits_BLO - changed_BLO)[:, start:stop].max()), 1e-4)

  def test_chunks_interact_with_two_passes_or_a_cache(self):
    # Guards the test above: with P = 2 or a cache, later chunks do change.
    input_BL = _tokens(0, _B, 6)
    changed_BL = input_BL.at[:, :2].set((input_BL[:, :2] + 1) % _V)
    for overrides in (dict(num_recurrent_calls=2),
                      dict(num_recurrent_calls=1, cache_steps=1)):
      model = _pure(_config(chunk_size=2, **overrides))
      params, apply = model.init(jax.random.key(0)), jax.jit(model.apply)
      diff = jnp.abs(apply(params, input_BL, None, None)
                     - apply(params, changed_BL, None, None))[:, 2:]
      self.assertGreater(float(diff.max()), 1e-4, msg=str(overrides))

  @parameterized.parameters((1, False, 4), (2, True, 9))
  def test_cache_all_equals_a_cache_of_every_chunk(self, calls, diagonal, k):
    C, L = 2, 7  # Four chunks.
    cfg = _config(chunk_size=C, num_recurrent_calls=calls, diagonal=diagonal,
                  cache_steps=-1)
    params = _perturb_params(_pure(cfg).init(jax.random.key(calls)), 1)
    input_BL = _tokens(calls, _B, L)
    all_BLO = jax.jit(_pure(cfg).apply)(params, input_BL, None, None)
    chex.assert_trees_all_close(
        all_BLO,
        jax.jit(_pure(dataclasses.replace(cfg, cache_steps=k)).apply)(
            params, input_BL, None, None),
        atol=1e-6, rtol=0)
    # A shorter cache forgets the oldest chunks, so "all" is not vacuous.
    one_BLO = jax.jit(_pure(dataclasses.replace(cfg, cache_steps=1)).apply)(
        params, input_BL, None, None)
    self.assertGreater(float(jnp.abs(all_BLO - one_BLO)[:, 2 * C:].max()),
                       1e-5)


class StaircaseConfigTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('chunk_size_0', dict(chunk_size=0)),
      ('heads_do_not_divide_width', dict(d_model=10, num_heads=4)),
      ('staircase_not_causal', dict(mode='staircase', is_causal=False)),
      ('cache_below_minus_one', dict(cache_steps=-2)),
      ('unknown_mode', dict(mode='sideways')),
      ('zero_recurrent_calls', dict(num_recurrent_calls=0)),
      ('zero_group_size', dict(group_size=0)),
      ('unknown_norm', dict(norm_type='midnorm')),
      ('unknown_init', dict(init_type='xavier')),
      ('dropout_one', dict(dropout=1.0)),
  )
  def test_bad_config_raises(self, overrides):
    with self.assertRaises(ValueError):
      _config(**overrides)

  def test_parallel_mode_may_be_non_causal(self):
    _config(mode='parallel', is_causal=False)  # Must not raise.

  @parameterized.named_parameters(
      ('layers_not_divisible', 5, None, 2),
      ('neither', None, None, 2),
      ('both', 4, 2, 2),
  )
  def test_bad_recurrent_calls_raise(self, num_layers, calls, group_size):
    with self.assertRaises(ValueError):
      staircase.resolve_recurrent_calls(num_layers, calls, group_size)

  @parameterized.parameters((6, None, 2, 3), (None, 3, 2, 3), (4, None, 1, 4))
  def test_recurrent_calls_resolve(self, num_layers, calls, group_size,
                                   expected):
    self.assertEqual(
        staircase.resolve_recurrent_calls(num_layers, calls, group_size),
        expected)


class StaircaseInitTest(chex.TestCase):

  def _layer_params(self, init_type):
    model = _module(_config(group_size=3, init_type=init_type))
    return [nnx.state(layer, nnx.Param) for layer in model.group.layers]

  def test_pytorch_init_copies_one_layer_into_the_group(self):
    first, *rest = self._layer_params('pytorch')
    for other in rest:
      chex.assert_trees_all_equal(first, other)

  def test_independent_init_draws_each_layer(self):
    first, *rest = self._layer_params('independent')
    for other in rest:
      for name in ('in_proj', 'out_proj'):
        self.assertFalse(np.array_equal(
            first['self_attn'][name]['kernel'][...],
            other['self_attn'][name]['kernel'][...]))
      for name in ('linear1', 'linear2'):
        self.assertFalse(np.array_equal(first[name]['kernel'][...],
                                        other[name]['kernel'][...]))

  def test_copied_layers_are_separate_parameters(self):
    # Copies start equal but must train apart: params hold G layers, and
    # changing one layer's params leaves the others as they were.
    model = _module(_config(group_size=2))
    self.assertLen(nnx.state(model, nnx.Param)['group']['layers'], 2)
    model.group.layers[0].linear1.bias[...] += 1.0
    self.assertFalse(np.array_equal(model.group.layers[0].linear1.bias[...],
                                    model.group.layers[1].linear1.bias[...]))


if __name__ == '__main__':
  absltest.main()
