"""The automaton task and its instances against brute-force references.

Every reference is a Python loop over the task's definition (permutation
composition, a stack, a regular expression), never the automaton's table.
"""

import dataclasses
import itertools
import re

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from experiments import config as config_lib
from experiments import registry
from tasks import task as task_lib
from tasks.regular import automaton as automaton_lib
from training import input_encoding

jax.config.update('jax_numpy_rank_promotion', 'raise')

_MAX_LENGTH = 64
_BATCH_SIZE = 32


# --- Group references: elements listed and multiplied from the definitions.

def _sign(permutation) -> int:
  """+1 or -1, from the cycle decomposition."""
  seen, sign = set(), 1
  for start in range(len(permutation)):
    length, i = 0, start
    while i not in seen:
      seen.add(i)
      i = permutation[i]
      length += 1
    if length and length % 2 == 0:
      sign = -sign
  return sign


def _factor_reference(factor: str):
  """(elements in token order, product of a word of element indices)."""
  kind, n = factor[0], int(factor[1:])
  if kind == 'Z':
    return list(range(n)), lambda word: sum(word) % n
  if kind in 'SA':
    elements = sorted(itertools.permutations(range(n)))
    if kind == 'A':
      elements = [p for p in elements if _sign(p) == 1]

    def product(word):
      image = list(range(n))  # Where each point has gone: g1, then g2, ...
      for index in word:
        image = [elements[index][i] for i in image]
      return elements.index(tuple(image))
    return elements, product
  # D<n>: (r, f) acts on the n-gon's vertices as i -> r + (-1)**f i, and a
  # word is the composition of its letters as functions, g1 o g2 o ...
  elements = [(r, f) for f in (0, 1) for r in range(n)]

  def product(word):
    def act(i):
      for index in reversed(word):
        r, f = elements[index]
        i = (r + (-i if f else i)) % n
      return i
    r, step = act(0), (act(1) - act(0)) % n
    return elements.index((r, 0 if step == 1 else 1))
  return elements, product


def _word_problem_reference(group: str):
  factors = [_factor_reference(f) for f in group.split('x')]
  orders = [len(elements) for elements, _ in factors]

  def label(tokens):
    digits = []
    for token in tokens:  # Mixed radix, the first factor most significant.
      row = []
      for order in reversed(orders):
        token, digit = divmod(int(token), order)
        row.append(digit)
      digits.append(row[::-1])
    result = 0
    for i, (_, product) in enumerate(factors):
      result = result * orders[i] + product([d[i] for d in digits])
    return result
  return label


# --- Automaton instances: references from their definitions.

def _runs(text):
  return [(symbol, len(list(run))) for symbol, run in itertools.groupby(text)]


def _tomita_3(text):
  runs = _runs(text)
  return not any(a[0] == '1' and a[1] % 2 == 1 and b[0] == '0'
                 and b[1] % 2 == 1 for a, b in zip(runs, runs[1:]))


_TOMITA = {
    1: lambda s: re.fullmatch('1*', s) is not None,
    2: lambda s: re.fullmatch('(10)*', s) is not None,
    3: _tomita_3,
    4: lambda s: '000' not in s,
    5: lambda s: s.count('0') % 2 == 0 and s.count('1') % 2 == 0,
    6: lambda s: (s.count('0') - s.count('1')) % 3 == 0,
    7: lambda s: re.fullmatch('0*1*0*1*', s) is not None,
}


def _dyck_reference(brackets, depth):
  def accepted(tokens):
    stack = []
    for token in tokens:
      kind, closes = divmod(int(token), 2)
      if not closes:
        stack.append(kind)
        if len(stack) > depth:
          return False
      elif not stack or stack.pop() != kind:
        return False
    return not stack
  return accepted


def _flip_flop(tokens):
  bit = 0
  for token in tokens:
    if token in (0, 1):
      bit = int(token)
  return bit


_REFERENCES = {
    'flip_flop': ('flip_flop', {}, _flip_flop),
    'first': ('first', {}, lambda tokens: int(tokens[0])),
    **{f'tomita_{g}': (f'tomita_{g}', {}, (
        lambda s, g=g: int(_TOMITA[g](''.join(map(str, s))))))
       for g in _TOMITA},
    'dyck_2_3': ('dyck', {'brackets': 2, 'depth': 3},
                 lambda s: int(_dyck_reference(2, 3)(s))),
    'dyck_1_2': ('dyck', {'brackets': 1, 'depth': 2},
                 lambda s: int(_dyck_reference(1, 2)(s))),
    **{f'word_problem_{g}': ('word_problem', {'group': g},
                             _word_problem_reference(g))
       for g in ('S5', 'A5', 'S3', 'A4xZ5', 'Z60', 'D5xZ2', 'S1')},
}

# Lengths with both an accepted and a rejected string, from the
# definitions (checked by enumeration in a test below).
_BOTH_CLASSES = {
    'tomita_1': lambda n: True,
    'tomita_2': lambda n: n % 2 == 0,
    'tomita_3': lambda n: n >= 2,
    'tomita_4': lambda n: n >= 3,
    'tomita_5': lambda n: n % 2 == 0,
    'tomita_6': lambda n: n >= 2,
    'tomita_7': lambda n: n >= 4,
    'dyck_2_3': lambda n: n % 2 == 0,
    'dyck_1_2': lambda n: n % 2 == 0,
}


def _build(name):
  registry_name, kwargs, _ = _REFERENCES[name]
  return registry.TASKS[registry_name].build(**kwargs)


def _sampler(task, batch_size, max_length):
  """One compiled sampler for every length (the length is traced)."""
  return jax.jit(lambda key, length: task.sample_batch(
      key, batch_size, max_length, length))


class StateTrackingTasksTest(parameterized.TestCase):

  @parameterized.named_parameters(*((n, n) for n in _REFERENCES))
  def test_every_length_matches_the_reference(self, name):
    task, reference = _build(name), _REFERENCES[name][2]
    sample = _sampler(task, _BATCH_SIZE, _MAX_LENGTH)
    for length in range(1, _MAX_LENGTH + 1):  # A key of its own each.
      key = jax.random.fold_in(jax.random.key(0), length)
      input_BL, length_B, target_B = map(np.asarray, sample(
          key, jnp.int32(length)))
      np.testing.assert_array_equal(length_B, length)
      self.assertFalse(input_BL[:, length:].any())
      self.assertTrue((input_BL < task.input_size).all())
      expected = [reference(row[:length]) for row in input_BL]
      np.testing.assert_array_equal(target_B, expected, f'length {length}')

  @parameterized.named_parameters(*((n, n) for n in _REFERENCES))
  def test_prefix_labels_match_the_reference(self, name):
    task, reference = _build(name), _REFERENCES[name][2]
    batch = task.sample_batch(jax.random.key(3), 8, 40, 40)
    target_BL, valid_BL = map(np.asarray, task.prefix_targets(batch.input_BL))
    self.assertTrue(valid_BL.all())
    for row, tokens in enumerate(np.asarray(batch.input_BL)):
      self.assertEqual(list(target_BL[row]),
                       [reference(tokens[:t + 1]) for t in range(40)])

  @parameterized.named_parameters(*((n, n) for n in _BOTH_CLASSES))
  def test_recognition_is_balanced_at_every_length(self, name):
    task = _build(name)
    self.assertEqual(task.mode, 'recognition')
    self.assertFalse(task.prefix_labels_are_samples)
    sample = _sampler(task, 1024, _MAX_LENGTH)
    for length in range(1, _MAX_LENGTH + 1):
      target_B = np.asarray(sample(jax.random.key(length),
                                   jnp.int32(length)).target_B)
      if _BOTH_CLASSES[name](length):
        # 5 standard deviations of a fair coin over 1024 rows.
        self.assertLess(abs(target_B.mean() - 0.5), 5 * 0.5 / 32,
                        f'length {length}')
      else:
        self.assertLen(set(target_B.tolist()), 1, f'length {length}')

  @parameterized.named_parameters(*((n, n) for n in _BOTH_CLASSES))
  def test_the_lengths_with_both_classes_by_enumeration(self, name):
    task, reference = _build(name), _REFERENCES[name][2]
    longest = 10 if task.input_size == 2 else 6
    for length in range(1, longest + 1):
      labels = {reference(s) for s in itertools.product(
          range(task.input_size), repeat=length)}
      self.assertEqual(len(labels) == 2, _BOTH_CLASSES[name](length), length)

  def test_accepted_strings_are_uniform_among_themselves(self):
    # Every accepted string of length 5 (the 24 without 000) appears about
    # equally often.
    task = _build('tomita_4')
    batch = task.sample_batch(jax.random.key(0), 20000, 5, 5)
    accepted = [tuple(row) for row, y in zip(np.asarray(batch.input_BL),
                                              np.asarray(batch.target_B)) if y]
    strings = [s for s in itertools.product((0, 1), repeat=5)
               if _TOMITA[4](''.join(map(str, s)))]
    counts = np.array([accepted.count(s) for s in strings])
    self.assertLen(strings, 24)
    expected = len(accepted) / len(strings)
    self.assertLess(np.abs(counts - expected).max(), 5 * np.sqrt(expected))

  @parameterized.named_parameters(
      ('word_problem', 'word_problem_A4xZ5'), ('tomita', 'tomita_3'),
      ('dyck', 'dyck_2_3'), ('flip_flop', 'flip_flop'))
  def test_one_compilation_serves_every_length(self, name):
    task = _build(name)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sample(key, length):
      return task.sample_batch(key, 4, 32, length)

    for length in range(1, 33):
      np.testing.assert_array_equal(
          sample(jax.random.key(length), jnp.int32(length)).length_B, length)
    self.assertEqual(sample._cache_size(), 1)  # pylint: disable=protected-access

  def test_auto_scores_recognition_on_strings_of_each_length(self):
    config = config_lib.ExperimentConfig(
        task=config_lib.TaskConfig('tomita_3'), architecture='lstm',
        model=registry.MODELS['lstm'].config_class(2, 2),
        encoding=input_encoding.InputEncoding(include_eos=False))
    self.assertEqual(config.resolved_protocol(), 'seed')
    flip_flop = dataclasses.replace(
        config, task=config_lib.TaskConfig('flip_flop'),
        model=registry.MODELS['lstm'].config_class(4, 2))
    self.assertEqual(flip_flop.resolved_protocol(), 'prefix')

  def test_group_orders(self):
    orders = {g: registry.TASKS['word_problem'].build(group=g).output_size
              for g in ('S5', 'A5', 'A4xZ5', 'Z60', 'D4', 'S3xS3', 'A1')}
    self.assertEqual(orders, {'S5': 120, 'A5': 60, 'A4xZ5': 60, 'Z60': 60,
                              'D4': 8, 'S3xS3': 36, 'A1': 1})

  @parameterized.parameters(
      ('word_problem', {'group': 'Q8'}, 'unknown group'),
      ('word_problem', {'group': 'S0'}, 'n >= 1'),
      ('word_problem', {'group': 'A4x'}, 'unknown group'),
      ('word_problem', {'group': 'S7'}, 'more than 720'),
      ('word_problem', {'group': 'S6xS6'}, 'at most'),
      ('dyck', {'depth': 0}, 'depth >= 1'),
      ('dyck', {'brackets': 0}, 'brackets >= 1'))
  def test_bad_arguments_are_one_clear_error(self, name, kwargs, message):
    with self.assertRaisesRegex(config_lib.ConfigError,
                                f'^task {name!r}: .*{message}'):
      config_lib.TaskConfig(name, kwargs).build()


# --- The paper's tasks, written as automata, agree with their samplers.

@dataclasses.dataclass(frozen=True)
class _ParityAutomaton(automaton_lib.AutomatonTask):
  input_size: int = 2
  output_size: int = 2

  def automaton(self):
    return automaton_lib.Automaton(((0, 1), (1, 0)), 0, (0, 1))


@dataclasses.dataclass(frozen=True)
class _EvenPairsAutomaton(automaton_lib.AutomatonTask):
  input_size: int = 2
  output_size: int = 2

  def automaton(self):
    # 0: start; 1 + 2 * first + last.
    start = (1, 4)
    rows = [start] + [(1 + 2 * (s // 2), 2 + 2 * (s // 2)) for s in range(4)]
    return automaton_lib.Automaton(tuple(rows), 0,
                                   (0, 0, 1, 1, 0))


@dataclasses.dataclass(frozen=True)
class _CycleAutomaton(automaton_lib.AutomatonTask):
  input_size: int = 3
  output_size: int = 5

  def automaton(self):
    rows = tuple(tuple((s + move) % 5 for move in (-1, 0, 1))
                 for s in range(5))
    return automaton_lib.Automaton(rows, 0, tuple(range(5)))


class PaperTasksAsAutomataTest(parameterized.TestCase):

  @parameterized.parameters(('parity_check', _ParityAutomaton),
                            ('even_pairs', _EvenPairsAutomaton),
                            ('cycle_navigation', _CycleAutomaton))
  def test_same_labels_for_the_same_tokens(self, name, automaton_class):
    task, as_automaton = registry.TASKS[name].build(), automaton_class()
    for seed in range(4):
      batch = task.sample_batch(jax.random.key(seed), 64, _MAX_LENGTH,
                                jnp.int32(1 + seed * 21))
      np.testing.assert_array_equal(
          as_automaton.prefix_targets(batch.input_BL)[0],
          task.prefix_targets(batch.input_BL)[0])
      np.testing.assert_array_equal(
          task_lib.last_valid_B(as_automaton.prefix_targets(
              batch.input_BL)[0], batch.length_B), batch.target_B)

  def test_a_bad_automaton_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'next_state must hold'):
      automaton_lib.Automaton(((0, 2),), 0, (0,))
    with self.assertRaisesRegex(ValueError, 'mode must be one of'):
      _ParityAutomaton(mode='count')


if __name__ == '__main__':
  absltest.main()
