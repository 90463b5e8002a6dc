"""Tests of the model input encoding against a plain-Python reference."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from experiments import registry
from tasks import task as task_lib
from training import input_encoding

# No silent broadcasting in tests.
jax.config.update('jax_numpy_rank_promotion', 'raise')

_SETTINGS = dict(include_eos=(True, False), computation_steps_mult=(0, 1, 2))


def _reference_encoding(
    input_BL, length_B, input_size: int, include_eos: bool, mult: int
):
  """Rows, lengths and answer positions built as Python lists."""
  L = len(input_BL[0])
  rows, lengths, answers = [], [], []
  for tokens_L, length in zip(input_BL, length_B):
    row = [int(token) for token in tokens_L[:length]]
    if include_eos:
      row += [input_size] * (mult * length)
      row.append(input_size + 1 if mult > 0 else input_size)
      answers.append(len(row) - 1)
      padded_length = L * (1 + mult) + 1
    else:
      answers.append(length - 1)
      padded_length = L
    lengths.append(len(row))
    rows.append(row + [0] * (padded_length - len(row)))
  return np.array(rows), np.array(lengths), np.array(answers)


class InputEncodingTest(chex.TestCase):

  def _assert_matches_reference(self, encoding, task, batch):
    encode = self.variant(functools.partial(encoding.encode, task))
    model_input = encode(batch)
    expected_BT, expected_length_B, expected_answer_B = _reference_encoding(
        np.asarray(batch.input_BL),
        np.asarray(batch.length_B),
        task.input_size,
        encoding.include_eos,
        encoding.computation_steps_mult,
    )
    B, L = batch.input_BL.shape
    T = encoding.padded_length(task, L)
    chex.assert_shape(model_input.input_BT, (B, T))
    chex.assert_shape(
        [model_input.length_B, model_input.answer_position_B], (B,)
    )
    chex.assert_type(list(model_input), jnp.int32)
    np.testing.assert_array_equal(model_input.input_BT, expected_BT)
    np.testing.assert_array_equal(model_input.length_B, expected_length_B)
    np.testing.assert_array_equal(
        model_input.answer_position_B, expected_answer_B
    )
    self.assertLess(int(model_input.input_BT.max()), encoding.vocab_size(task))

  @parameterized.product(
      task_name=('parity_check', 'cycle_navigation', 'modular_arithmetic'),
      computation_steps_mult=(0, 1, 2),
      include_eos=(True, False),
  )
  def test_vocab_size_adds_the_harness_ids(
      self, task_name, computation_steps_mult, include_eos
  ):
    task = registry.task_entry(task_name).build()
    encoding = input_encoding.InputEncoding(
        include_eos, computation_steps_mult
    )
    expected = task.input_size + (2 if computation_steps_mult > 0 else 1)
    self.assertEqual(encoding.vocab_size(task), expected)

  @parameterized.product(**_SETTINGS)
  def test_padded_length_fits_the_longest_row(
      self, include_eos, computation_steps_mult
  ):
    encoding = input_encoding.InputEncoding(
        include_eos, computation_steps_mult
    )
    task = registry.task_entry('parity_check').build()
    for max_length in (1, 7, 40):
      expected = max_length
      if include_eos:
        expected = max_length * (1 + computation_steps_mult) + 1
      self.assertEqual(encoding.padded_length(task, max_length), expected)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(**_SETTINGS)
  def test_encode_rows_of_different_lengths(
      self, include_eos, computation_steps_mult
  ):
    encoding = input_encoding.InputEncoding(
        include_eos, computation_steps_mult
    )
    task = registry.task_entry('cycle_navigation').build()  # Ids 3, 4 are new.
    length_B = np.array([1, 3, 6, 4, 5], np.int32)
    rng = np.random.default_rng(0)
    input_BL = rng.integers(0, 3, (5, 6)).astype(np.int32)
    input_BL[np.arange(6)[None, :] >= length_B[:, None]] = 0
    batch = task_lib.Batch(
        jnp.asarray(input_BL), jnp.asarray(length_B), jnp.zeros(5, jnp.int32)
    )
    self._assert_matches_reference(encoding, task, batch)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(**_SETTINGS)
  def test_encode_a_task_batch(self, include_eos, computation_steps_mult):
    encoding = input_encoding.InputEncoding(
        include_eos, computation_steps_mult
    )
    for name, max_length, length in (
        ('modular_arithmetic', 12, 8),  # 7 tokens.
        ('parity_check', 10, 10),  # No padding.
    ):
      task = registry.task_entry(name).build()
      batch = task.sample_batch(jax.random.key(0), 4, max_length, length)
      self._assert_matches_reference(encoding, task, batch)

  def test_negative_computation_steps_raise(self):
    with self.assertRaisesRegex(
        ValueError, 'computation_steps_mult must be >= 0, got -1'
    ):
      input_encoding.InputEncoding(computation_steps_mult=-1)


if __name__ == '__main__':
  absltest.main()
