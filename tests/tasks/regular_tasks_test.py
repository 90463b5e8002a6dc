"""Tests of the regular-language tasks against brute-force references."""

import dataclasses
import functools
import re
from typing import Any, NamedTuple

from absl.testing import absltest
from absl.testing import parameterized
import chex
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from experiments import registry
from tasks import task as task_lib
from tasks.regular import regular_task

# No silent broadcasting in tests.
jax.config.update('jax_numpy_rank_promotion', 'raise')

_MAX_LENGTH = 64  # Every requested length 1.._MAX_LENGTH is checked.
_BATCH_SIZE = 24


class _Spec(NamedTuple):
  """A task as the original defines it, independently of the code under test."""

  registry_name: str
  kwargs: dict[str, Any]
  input_size: int
  output_size: int
  num_automata: int = 1  # Tokens per unit of requested length.
  explicit_tokens: bool = False


_SPECS = {
    'parity_check': _Spec('parity_check', {}, 2, 2),
    'even_pairs': _Spec('even_pairs', {}, 2, 2),
    'cycle_navigation': _Spec('cycle_navigation', {}, 3, 5),
    'modular_arithmetic': _Spec('modular_arithmetic', {}, 9, 5),
    'parallel_parity_n2_explicit': _Spec(
        'parallel_parity_check',
        {'num_automata': 2, 'explicit_tokens': True},
        4,
        4,
        num_automata=2,
        explicit_tokens=True,
    ),
    'parallel_parity_n3_implicit': _Spec(
        'parallel_parity_check',
        {'num_automata': 3, 'explicit_tokens': False},
        2,
        8,
        num_automata=3,
    ),
}
_NAMED_SPECS = tuple((name, name) for name in _SPECS)


def _build(spec: _Spec) -> task_lib.Task:
  return registry.TASKS[spec.registry_name].task_class(**spec.kwargs)


@functools.cache
def _jitted_sampler(task: task_lib.Task):
  """One compiled sampler per task (tasks are hashable), length traced."""
  return jax.jit(task.sample_batch, static_argnums=(1, 2))


def _sample(spec: _Spec, key: jax.Array, length: int) -> task_lib.Batch:
  """A batch of one shape per task, so tests share a single compilation."""
  sample = _jitted_sampler(_build(spec))
  max_length = spec.num_automata * _MAX_LENGTH
  return sample(key, _BATCH_SIZE, max_length, jnp.int32(length))


# References: plain Python over a list of token ids.


def _parity_label(tokens: list[int]) -> int:
  transition = {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0}  # A 2-state DFA.
  state = 0
  for token in tokens:
    state = transition[state, token]
  return state


def _even_pairs_label(tokens: list[int]) -> int:
  unequal_pairs = 0
  for previous, current in zip(tokens, tokens[1:]):
    if previous != current:
      unequal_pairs += 1
  return unequal_pairs % 2


def _cycle_navigation_label(tokens: list[int]) -> int:
  move = {0: -1, 1: 0, 2: 1}
  position = 0
  for token in tokens:
    position = (position + move[token]) % 5
  return position


def _modular_arithmetic_label(tokens: list[int]) -> int:
  expression = ''.join('01234+-*'[token] for token in tokens)
  if not re.fullmatch(r'[0-4]([-+*][0-4])*', expression):
    raise ValueError(f'Not an expression: {expression!r}.')
  return eval(expression) % 5  # pylint: disable=eval-used


def _parallel_parity_label(
    tokens: list[int], num_automata: int, explicit_tokens: bool
) -> int:
  parities = [0] * num_automata
  for position, token in enumerate(tokens):
    automaton = position % num_automata
    bit = token - 2 * automaton if explicit_tokens else token
    if bit not in (0, 1):
      raise ValueError(f'Token {token} cannot drive automaton {automaton}.')
    parities[automaton] ^= bit
  return sum(parity * 2**i for i, parity in enumerate(parities))


def _reference_label(spec: _Spec, tokens) -> int:
  tokens = [int(token) for token in tokens]
  if spec.registry_name == 'parity_check':
    return _parity_label(tokens)
  if spec.registry_name == 'even_pairs':
    return _even_pairs_label(tokens)
  if spec.registry_name == 'cycle_navigation':
    return _cycle_navigation_label(tokens)
  if spec.registry_name == 'modular_arithmetic':
    return _modular_arithmetic_label(tokens)
  return _parallel_parity_label(
      tokens, spec.num_automata, spec.explicit_tokens
  )


def _allowed_ids(spec: _Spec, position: int) -> tuple[int, ...]:
  """The token ids a sample may hold at a real `position`."""
  if spec.registry_name == 'modular_arithmetic':
    return (0, 1, 2, 3, 4) if position % 2 == 0 else (5, 6, 7)
  if spec.explicit_tokens:
    automaton = position % spec.num_automata
    return (2 * automaton, 2 * automaton + 1)
  if spec.registry_name == 'parallel_parity_check':
    return (0, 1)
  return tuple(range(spec.input_size))


def _token_length(spec: _Spec, length: int) -> int:
  if spec.registry_name == 'modular_arithmetic':
    return length - 1 if length % 2 == 0 else length
  return spec.num_automata * length


def _is_string_length(spec: _Spec, num_tokens: int) -> bool:
  """Whether a prefix of `num_tokens` tokens is itself a string of the task."""
  if spec.registry_name == 'modular_arithmetic':
    return num_tokens % 2 == 1
  return num_tokens % spec.num_automata == 0


class RegularTasksTest(chex.TestCase):

  def _assert_batch_matches_reference(
      self, spec, batch, batch_size, max_length, length
  ):
    input_BL, length_B, target_B = map(np.asarray, batch)
    chex.assert_shape(input_BL, (batch_size, max_length))
    chex.assert_shape([length_B, target_B], (batch_size,))
    chex.assert_type([input_BL, length_B, target_B], np.int32)
    num_tokens = _token_length(spec, length)
    np.testing.assert_array_equal(length_B, num_tokens)
    for row, (tokens_L, target) in enumerate(zip(input_BL, target_B)):
      for position, token in enumerate(tokens_L[:num_tokens]):
        self.assertIn(token, _allowed_ids(spec, position), (row, position))
      self.assertFalse(tokens_L[num_tokens:].any(), f'padding of row {row}')
      # The reference sees the real tokens only, so padding cannot matter.
      self.assertEqual(
          target, _reference_label(spec, tokens_L[:num_tokens]), tokens_L
      )

  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_sizes_match_the_spec(self, name):
    spec = _SPECS[name]
    task = _build(spec)
    self.assertEqual(task.input_size, spec.input_size)
    self.assertEqual(task.output_size, spec.output_size)

  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_every_traced_length_matches_the_reference(self, name):
    spec = _SPECS[name]
    for length in range(1, _MAX_LENGTH + 1):
      key = jax.random.fold_in(jax.random.key(7), length)
      self._assert_batch_matches_reference(
          spec,
          _sample(spec, key, length),
          _BATCH_SIZE,
          spec.num_automata * _MAX_LENGTH,
          length,
      )

  @parameterized.named_parameters(*_NAMED_SPECS)
  @hypothesis.settings(max_examples=10, deadline=None)
  @hypothesis.given(seed=st.integers(0, 2**31 - 1), length=st.integers(1, 40))
  def test_static_lengths_match_the_reference(self, name, seed, length):
    spec = _SPECS[name]
    max_length = spec.num_automata * 40
    batch = _build(spec).sample_batch(
        jax.random.key(seed), 8, max_length, length
    )
    self._assert_batch_matches_reference(spec, batch, 8, max_length, length)

  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_symbols_are_uniform(self, name):
    spec = _SPECS[name]
    num_tokens = _token_length(spec, _MAX_LENGTH)
    input_BL = np.concatenate([
        np.asarray(_sample(spec, jax.random.key(seed), _MAX_LENGTH).input_BL)
        for seed in range(4)
    ])[:, :num_tokens]
    # Positions with the same alphabet (e.g. digits, operators) are pooled.
    counts = {}
    for position, tokens_B in enumerate(input_BL.T):
      ids = _allowed_ids(spec, position)
      counts.setdefault(ids, np.zeros(len(ids), int))
      counts[ids] += [(tokens_B == i).sum() for i in ids]
    for ids, counts_V in counts.items():
      self.assertGreater(counts_V.sum(), 2000)
      p_value = stats.chisquare(counts_V).pvalue
      self.assertGreater(p_value, 1e-4, f'ids {ids}: counts {counts_V}')

  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_one_compilation_serves_every_length(self, name):
    spec = _SPECS[name]
    task = _build(spec)
    max_length = spec.num_automata * 16
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sample(key, length):
      return task.sample_batch(key, 4, max_length, length)

    for length in range(1, 17):
      batch = sample(jax.random.key(length), jnp.int32(length))
      np.testing.assert_array_equal(
          batch.length_B, _token_length(spec, length)
      )
    # pylint: disable-next=protected-access
    self.assertEqual(sample._cache_size(), 1)

  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_same_key_same_batch_and_new_key_new_batch(self, name):
    spec = _SPECS[name]
    batch = _sample(spec, jax.random.key(0), 20)
    chex.assert_trees_all_equal(batch, _sample(spec, jax.random.key(0), 20))
    other = _sample(spec, jax.random.key(1), 20)
    self.assertFalse(np.array_equal(batch.input_BL, other.input_BL))

  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_bad_sample_arguments_raise(self, name):
    task = _build(_SPECS[name])
    max_length = 12
    longest = max_length // _SPECS[name].num_automata
    key = jax.random.key(0)
    with self.assertRaisesRegex(ValueError, r'length must be in \[1, .*got 0'):
      task.sample_batch(key, 4, max_length, 0)
    with self.assertRaisesRegex(
        ValueError, rf'length must be in \[1, {longest}\].*got {longest + 1}'
    ):
      task.sample_batch(key, 4, max_length, longest + 1)
    with self.assertRaisesRegex(ValueError, 'batch_size must be >= 1, got 0'):
      task.sample_batch(key, 0, max_length, 1)

  def test_unknown_task_name_raises(self):
    with self.assertRaisesRegex(
        ValueError, r"--task='nope' is unknown.*'parity_check'"
    ):
      registry.task_entry('nope').build()

  def test_build_task_passes_kwargs(self):
    task = registry.task_entry('parallel_parity_check').build(
        num_automata=3, explicit_tokens=False
    )
    self.assertEqual((task.input_size, task.output_size), (2, 8))

  def test_parallel_parity_needs_room_for_all_automata(self):
    task = registry.TASKS['parallel_parity_check'].task_class(num_automata=2)
    with self.assertRaisesRegex(
        ValueError, r'length must be in \[1, 4\].*max_length=9.*got 5'
    ):
      task.sample_batch(jax.random.key(0), 4, 9, 5)
    with self.assertRaisesRegex(ValueError, 'max_length=1 is too small'):
      task.sample_batch(jax.random.key(0), 4, 1, 1)

  def test_parallel_parity_needs_an_automaton(self):
    with self.assertRaisesRegex(ValueError, 'num_automata must be >= 1, got 0'):
      registry.TASKS['parallel_parity_check'].task_class(num_automata=0)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_onehot_view_matches_the_reference(self, name):
    spec = _SPECS[name]
    length = 6  # Even: modular arithmetic drops a token.
    sample = self.variant(_build(spec).sample_onehot, static_argnums=(1, 2))
    batch = sample(jax.random.key(length), 16, length)
    input_BLV = np.asarray(batch['input'])
    output_BO = np.asarray(batch['output'])
    num_tokens = _token_length(spec, length)
    chex.assert_shape(input_BLV, (16, num_tokens, spec.input_size))
    chex.assert_shape(output_BO, (16, spec.output_size))
    for onehot in (input_BLV, output_BO):
      self.assertTrue(np.isin(onehot, (0, 1)).all())
      np.testing.assert_array_equal(onehot.sum(-1), 1)
    for tokens_LV, label_O in zip(input_BLV, output_BO):
      tokens_L = tokens_LV.argmax(-1)
      for position, token in enumerate(tokens_L):
        self.assertIn(token, _allowed_ids(spec, position))
      self.assertEqual(label_O.argmax(), _reference_label(spec, tokens_L))

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*_NAMED_SPECS)
  def test_prefix_targets_label_every_prefix(self, name):
    spec = _SPECS[name]
    task = _build(spec)
    # Full-length rows (odd for modular arithmetic), so every prefix is real.
    length = 21
    max_length = _token_length(spec, length)
    input_BL = task.sample_batch(jax.random.key(5), 16, max_length, length)[0]
    target_BL, is_valid_BL = self.variant(task.prefix_targets)(input_BL)
    chex.assert_shape([target_BL, is_valid_BL], (16, max_length))
    chex.assert_type(is_valid_BL, bool)
    input_BL, target_BL, is_valid_BL = map(
        np.asarray, (input_BL, target_BL, is_valid_BL)
    )
    rows = zip(input_BL, target_BL, is_valid_BL)
    for tokens_L, targets_L, is_valid_L in rows:
      for t in range(max_length):
        expected_valid = _is_string_length(spec, t + 1)
        self.assertEqual(is_valid_L[t], expected_valid, t)
        if expected_valid:
          self.assertEqual(
              targets_L[t], _reference_label(spec, tokens_L[: t + 1]), t
          )

  @parameterized.parameters('parity_check', 'even_pairs', 'cycle_navigation')
  def test_prefix_targets_of_hand_written_strings(self, name):
    spec = _SPECS[name]
    rng = np.random.default_rng(0)
    input_BL = rng.integers(0, spec.input_size, (32, 30)).astype(np.int32)
    target_BL, is_valid_BL = _build(spec).prefix_targets(jnp.asarray(input_BL))
    self.assertTrue(np.asarray(is_valid_BL).all())
    for tokens_L, targets_L in zip(input_BL, np.asarray(target_BL)):
      expected_L = [
          _reference_label(spec, tokens_L[: t + 1]) for t in range(30)
      ]
      np.testing.assert_array_equal(targets_L, expected_L)

  def test_modular_arithmetic_examples(self):
    # 1-2*3 = -5 -> 0; 4*4-3 = 13 -> 3; 2-3-4 = -5 -> 0; 2-3-4+1 = -4 -> 1.
    task = registry.task_entry('modular_arithmetic').build()
    input_BL = jnp.array(
        [[1, 6, 2, 7, 3, 0, 0], [4, 7, 4, 6, 3, 0, 0], [2, 6, 3, 6, 4, 5, 1]],
        jnp.int32,
    )
    target_BL, _ = task.prefix_targets(input_BL)
    np.testing.assert_array_equal(np.asarray(target_BL)[:, 4], [0, 3, 0])
    self.assertEqual(target_BL[2, 6], 1)


@dataclasses.dataclass(frozen=True)
class _OnesModThree(regular_task.RegularTask):
  """A task in the template's few lines: the number of 1s mod 3."""

  input_size: int = 2
  output_size: int = 3

  def sample_tokens(self, key, batch_size, max_length):
    return jax.random.randint(key, (batch_size, max_length), 0, 2, jnp.int32)

  def prefix_targets(self, input_BL):
    return (jnp.cumsum(input_BL, axis=1) % 3).astype(jnp.int32), jnp.ones(
        input_BL.shape, bool)


class TemplateTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 7, 16)
  def test_a_template_task_samples_what_a_loop_computes(self, length):
    task = _OnesModThree()
    for length_arg in (length, jnp.int32(length)):  # Static and traced.
      batch = jax.jit(task.sample_batch, static_argnums=(1, 2))(
          jax.random.key(length), 32, 16, length_arg)
      for row, n, target in zip(*map(np.asarray, batch)):
        self.assertEqual(n, length)
        self.assertTrue(np.all(row[length:] == 0))  # Padding is zero.
        self.assertEqual(target, sum(int(t) for t in row[:length]) % 3)
    # Not vacuous: the labels vary over the batch.
    self.assertLen(set(np.asarray(batch.target_B).tolist()),
                   3 if length > 1 else 2)

  def test_the_template_checks_and_clips_lengths(self):
    task = _OnesModThree()
    with self.assertRaisesRegex(ValueError, 'length must be in'):
      task.sample_batch(jax.random.key(0), 4, 8, 9)
    batch = jax.jit(task.sample_batch, static_argnums=(1, 2))(
        jax.random.key(0), 4, 8, jnp.int32(50))
    np.testing.assert_array_equal(batch.length_B, 8)


if __name__ == '__main__':
  absltest.main()
