"""Accuracy per length in static length buckets, and the score."""

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neural_networks import pure
from tasks import task as task_lib
from training import input_encoding
from training import length_buckets
from training import train_step

# The original re-seeds its generators with 1 before evaluating, so every
# model sees one test set.
_EVAL_SEED = 1
# Rows times padded tokens in one forward pass: bounds activation memory
# (attention holds rows * T * T per head) without starving the CPU of rows.
TOKENS_PER_FORWARD = 2**16
# Lengths per compiled program of the exact protocol: 5 programs up to 500,
# at about 10% padding overhead.
EXACT_BUCKET_WIDTH = 100


def default_key() -> jax.Array:
  """The fixed evaluation key (the original's seed 1)."""
  return jax.random.key(_EVAL_SEED)


def _check_positive_int(name: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f'{name} must be an integer, got {value!r}.')
  if value < 1:
    raise ValueError(f'{name} must be >= 1, got {value}.')


def _sample_max_length(task: task_lib.Task, length: int) -> int:
  """Padded token length holding every requested length up to `length`."""
  max_length = task.padded_length(length)
  if task.max_supported_length(max_length) < length:
    raise ValueError(
        f'{type(task).__name__} cannot sample length {length} in'
        f' {max_length} tokens.'
    )
  return max_length


def _rows_per_forward(num_rows: int, unit: int, tokens: int,
                      rows_per_forward: int | None,
                      tokens_per_forward: int = TOKENS_PER_FORWARD) -> int:
  """Rows in one forward pass: a multiple of `unit` that divides `num_rows`."""
  if rows_per_forward is None:
    rows_per_forward = max(unit, tokens_per_forward // max(tokens, 1))
    rows_per_forward = min(num_rows, rows_per_forward // unit * unit)
    while num_rows % rows_per_forward:
      rows_per_forward -= unit
    return rows_per_forward
  _check_positive_int('rows_per_forward', rows_per_forward)
  if rows_per_forward % unit or num_rows % rows_per_forward:
    raise ValueError(
        f'rows_per_forward={rows_per_forward} must be a multiple of {unit}'
        f' that divides {num_rows}.'
    )
  return rows_per_forward


@functools.partial(
    jax.jit,
    static_argnames=('model', 'task', 'encoding', 'sample_length',
                     'bucket_length', 'num_strings', 'sub_batch_size',
                     'rows_per_forward'))
def _bucket_accuracies(params: pure.Params, key: jax.Array,
                       lengths_K: jax.Array, *, model: pure.PureModel,
                       task: task_lib.Task,
                       encoding: input_encoding.InputEncoding,
                       sample_length: int, bucket_length: int,
                       num_strings: int, sub_batch_size: int,
                       rows_per_forward: int) -> jax.Array:
  """Exact-protocol accuracy at every (traced) length of one bucket: `(K,)`.

  Strings are sampled padded to `sample_length` tokens (the whole test's
  padding, so the test set does not depend on the bucket width) and cut to
  `bucket_length` tokens, which hold every real token of the bucket's lengths.
  """
  num_sub = num_strings // sub_batch_size
  sub_per_forward = rows_per_forward // sub_batch_size

  def correct_in_forward(length, keys_S):
    batch = jax.vmap(lambda k: task.sample_batch(
        k, sub_batch_size, sample_length, length))(keys_S)
    batch = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batch)
    batch = batch._replace(input_BL=batch.input_BL[:, :bucket_length])
    inputs = encoding.encode(task, batch)
    logits_BTO = model.apply(params, inputs.input_BT, inputs.length_B, None)
    logits_BO = train_step.readout(logits_BTO, inputs.answer_position_B)
    return (logits_BO.argmax(-1) == batch.target_B).sum()

  def accuracy_at(length):
    keys_N = jax.random.split(jax.random.fold_in(key, length), num_sub)
    keys_FS = keys_N.reshape(num_sub // sub_per_forward, sub_per_forward)
    correct_F = jax.lax.map(
        functools.partial(correct_in_forward, length), keys_FS)
    return correct_F.sum() / num_strings

  return jax.lax.map(accuracy_at, lengths_K)


def evaluate_exact(model: pure.PureModel, params: pure.Params,
                   task: task_lib.Task,
                   encoding: input_encoding.InputEncoding, test_length: int,
                   *, num_strings: int = 512, sub_batch_size: int = 64,
                   key: jax.Array | None = None,
                   bucket_width: int = EXACT_BUCKET_WIDTH,
                   rows_per_forward: int | None = None,
                   tokens_per_forward: int = TOKENS_PER_FORWARD
                   ) -> np.ndarray:
  """The original protocol: fresh strings for every length 1..`test_length`.

  For each length `L`, `num_strings` strings are sampled as sub-batches of
  `sub_batch_size` from `split(fold_in(key, L), num_strings //
  sub_batch_size)`; the key defaults to the fixed `default_key()`. Lengths
  share one compiled program per length bucket (`length_buckets.make_buckets(
  test_length, bucket_width)`), in which the length is traced.

  Args:
    model: any pure model; evaluated with `key=None` (no dropout).
    params: its parameters.
    task: the task to sample from.
    encoding: how strings become model inputs (as in training).
    test_length: the longest requested length.
    num_strings: strings per length (512 in the original).
    sub_batch_size: rows per sampled sub-batch (64 in the original).
    key: the evaluation key; None means `default_key()`.
    bucket_width: lengths per compiled program.
    rows_per_forward: rows run through the model at once (a multiple of
      `sub_batch_size` dividing `num_strings`); None picks it from the padded
      length to bound memory. Rows are independent at evaluation, so it never
      changes the result.
    tokens_per_forward: with `rows_per_forward=None`, the most rows times
      padded tokens in one forward pass. A model whose memory grows with the
      length, not its square (one that skips padding), can take more.

  Returns:
    float64 `(test_length,)` accuracies; index `i` is length `i + 1`.
  """
  for name, value in (('test_length', test_length),
                      ('num_strings', num_strings),
                      ('sub_batch_size', sub_batch_size),
                      ('bucket_width', bucket_width)):
    _check_positive_int(name, value)
  if num_strings % sub_batch_size:
    raise ValueError(
        f'num_strings={num_strings} must be divisible by'
        f' sub_batch_size={sub_batch_size}.'
    )
  key = default_key() if key is None else key
  sample_length = _sample_max_length(task, test_length)
  accuracies = []
  first = 1
  for bound in length_buckets.make_buckets(test_length, bucket_width):
    bucket_length = _sample_max_length(task, bound)
    rows = _rows_per_forward(
        num_strings, sub_batch_size,
        encoding.padded_length(task, bucket_length), rows_per_forward,
        tokens_per_forward)
    lengths_K = jnp.arange(first, bound + 1, dtype=jnp.int32)
    # Dispatched asynchronously: the host waits once, after the last bucket.
    accuracies.append(_bucket_accuracies(
        params, key, lengths_K, model=model, task=task, encoding=encoding,
        sample_length=sample_length, bucket_length=bucket_length,
        num_strings=num_strings, sub_batch_size=sub_batch_size,
        rows_per_forward=rows))
    first = bound + 1
  return np.concatenate(jax.device_get(accuracies)).astype(np.float64)


@functools.partial(
    jax.jit,
    static_argnames=('model', 'task', 'encoding', 'sample_length',
                     'test_length', 'num_strings', 'rows_per_forward'))
def _prefix_counts(params: pure.Params, key: jax.Array,
                   positions_K: jax.Array, *, model: pure.PureModel,
                   task: task_lib.Task,
                   encoding: input_encoding.InputEncoding, sample_length: int,
                   test_length: int, num_strings: int,
                   rows_per_forward: int) -> tuple[jax.Array, jax.Array]:
  """Correct and valid row counts at every read position: two `(K,)` arrays."""
  batch = task.sample_batch(key, num_strings, sample_length, test_length)
  T = int(task.token_length(test_length))
  input_BT = batch.input_BL[:, :T]
  target_BT, is_valid_BT = task.prefix_targets(input_BT)
  inputs = encoding.encode(
      task, task_lib.Batch(input_BT, batch.length_B, batch.target_B))
  F = num_strings // rows_per_forward

  def predict(xs):
    input_RT, length_R = xs
    return model.apply(params, input_RT, length_R, None).argmax(-1)

  predicted_FRT = jax.lax.map(predict, (
      inputs.input_BT.reshape(F, rows_per_forward, T),
      inputs.length_B.reshape(F, rows_per_forward)))
  predicted_BT = predicted_FRT.reshape(num_strings, T)
  correct_BK = jnp.take(
      (predicted_BT == target_BT) & is_valid_BT, positions_K, axis=1)
  valid_BK = jnp.take(is_valid_BT, positions_K, axis=1)
  return correct_BK.sum(0), valid_BK.sum(0)


def evaluate_prefix(model: pure.PureModel, params: pure.Params,
                    task: task_lib.Task,
                    encoding: input_encoding.InputEncoding, test_length: int,
                    *, num_strings: int = 512, key: jax.Array | None = None,
                    rows_per_forward: int | None = None) -> np.ndarray:
  """The fast protocol: every length read off one pass over long strings.

  Only for causal models whose answer is read at the last input token
  (`encoding.include_eos` off): the logits at token `t` then depend on the
  prefix `[0, t]` alone, so `num_strings` strings of `test_length`, sampled
  once from `key` (default `default_key()`), score every length. Length `L`
  is read at token `task.token_length(L) - 1` against
  `task.prefix_targets`: for modular arithmetic an even `L` reads the odd
  prefix `L - 1`, as the exact protocol samples it; for parallel parity
  token `n L - 1`. It agrees with `evaluate_exact` within sampling error
  (the lengths share strings here, so errors are correlated across lengths).
  Causality is the caller's promise; it is not checked.

  Returns:
    float64 `(test_length,)` accuracies; index `i` is length `i + 1`.

  Raises:
    ValueError: on bad arguments, with `include_eos`, or when the task marks
      a read position as not a string of its own.
  """
  _check_positive_int('test_length', test_length)
  _check_positive_int('num_strings', num_strings)
  if encoding.include_eos:
    raise ValueError(
        'evaluate_prefix reads the answer at the last input token, so it'
        ' needs include_eos=False; use evaluate_exact with include_eos.'
    )
  key = default_key() if key is None else key
  sample_length = _sample_max_length(task, test_length)
  T = int(task.token_length(test_length))
  rows = _rows_per_forward(num_strings, 1, T, rows_per_forward)
  positions_K = np.array(
      [int(task.token_length(n)) - 1 for n in range(1, test_length + 1)],
      np.int32)
  correct_K, valid_K = jax.device_get(_prefix_counts(
      params, key, jnp.asarray(positions_K), model=model, task=task,
      encoding=encoding, sample_length=sample_length,
      test_length=test_length, num_strings=num_strings,
      rows_per_forward=rows))
  if np.any(valid_K != num_strings):
    bad = int(np.flatnonzero(valid_K != num_strings)[0]) + 1
    raise ValueError(
        f'{type(task).__name__}.prefix_targets marks the prefix read for'
        f' length {bad} (token {positions_K[bad - 1]}) as invalid.'
    )
  return correct_K.astype(np.float64) / num_strings


class LengthAccuracy(NamedTuple):
  length: int
  accuracy: float


@dataclasses.dataclass(frozen=True)
class RangeResult:
  """Per-length accuracy and the numbers reported from it.

  Attributes:
    per_length: accuracy at every length 1..test_length.
    training_length: the longest training length.
    threshold: the accuracy `solved_up_to` requires.
    score: the original's score (see `score_definition`).
    score_definition: which lengths `score` averages, in words.
    ood_score: mean accuracy over every length past training.
    ood_score_definition: which lengths `ood_score` averages, in words.
    solved_up_to: longest `L` with accuracy >= threshold at all of 1..L.
    in_distribution_accuracy: mean accuracy over lengths 1..training_length.
  """

  per_length: tuple[LengthAccuracy, ...]
  training_length: int
  threshold: float
  score: float
  score_definition: str
  ood_score: float
  ood_score_definition: str
  solved_up_to: int
  in_distribution_accuracy: float

  @property
  def test_length(self) -> int:
    return len(self.per_length)

  def to_json(self) -> dict[str, Any]:
    """A plain dict of Python numbers and strings, ready for `json.dump`."""
    return {
        'per_length': [{'length': p.length, 'accuracy': p.accuracy}
                       for p in self.per_length],
        'training_length': self.training_length,
        'test_length': self.test_length,
        'threshold': self.threshold,
        'score': self.score,
        'score_definition': self.score_definition,
        'ood_score': self.ood_score,
        'ood_score_definition': self.ood_score_definition,
        'solved_up_to': self.solved_up_to,
        'in_distribution_accuracy': self.in_distribution_accuracy,
    }


def summarize(per_length: Sequence[float] | np.ndarray, training_length: int,
              threshold: float = 0.99) -> RangeResult:
  """Scores of a per-length accuracy array (index `i` is length `i + 1`)."""
  accuracy_K = np.asarray(per_length, np.float64)
  if accuracy_K.ndim != 1 or accuracy_K.size == 0:
    raise ValueError(
        f'per_length must be a non-empty 1-D array, got shape'
        f' {accuracy_K.shape}.'
    )
  if not np.all((accuracy_K >= 0) & (accuracy_K <= 1)):
    raise ValueError('per_length accuracies must lie in [0, 1] (no NaN).')
  _check_positive_int('training_length', training_length)
  test_length = accuracy_K.size
  # The score skips length training_length + 1; it needs one length after it.
  if training_length + 2 > test_length:
    raise ValueError(
        f'The score averages lengths {training_length + 2}..test_length, so'
        f' training_length={training_length} needs test_length >='
        f' {training_length + 2}; got test_length={test_length}.'
    )
  if not 0 < threshold <= 1:
    raise ValueError(f'threshold must be in (0, 1], got {threshold}.')
  n = training_length
  failed = np.flatnonzero(accuracy_K < threshold)
  return RangeResult(
      per_length=tuple(LengthAccuracy(i + 1, float(a))
                       for i, a in enumerate(accuracy_K)),
      training_length=n,
      threshold=float(threshold),
      score=float(accuracy_K[n + 1:].mean()),
      score_definition=(
          f'Mean accuracy over lengths {n + 2}..{test_length}: list indices'
          f' {n + 1} onward of the per-length list (index i is length i+1),'
          f' as the original (Chomsky-hierarchy) code computes it; this'
          f' off-by-one skips length {n + 1}, the first unseen length. Kept'
          ' for comparability with published numbers.'),
      ood_score=float(accuracy_K[n:].mean()),
      ood_score_definition=(
          f'Mean accuracy over every length past training,'
          f' {n + 1}..{test_length}.'),
      solved_up_to=int(failed[0]) if failed.size else test_length,
      in_distribution_accuracy=float(accuracy_K[:n].mean()),
  )


def summarize_seeds(seeds: Sequence[int], summaries: Sequence[RangeResult],
                    solved_threshold: float = 0.99) -> dict[str, Any]:
  """Scores over seeds: max, mean and std, and how many seeds solve the task.

  A seed solves the task when its `ood_score` is at least `solved_threshold`.
  `std` is the population standard deviation (NumPy's default, ddof=0).
  """
  if len(seeds) != len(summaries) or not seeds:
    raise ValueError('Give one summary per seed, and at least one seed.')
  spread = {}
  for name in ('score', 'ood_score', 'solved_up_to',
               'in_distribution_accuracy'):
    values = np.array([getattr(s, name) for s in summaries], np.float64)
    spread[name] = {'max': float(values.max()), 'mean': float(values.mean()),
                    'std': float(values.std()), 'min': float(values.min())}
  return {
      'num_seeds': len(seeds),
      'seeds': [int(s) for s in seeds],
      **spread,
      'solved': sum(s.ood_score >= solved_threshold for s in summaries),
      'solved_definition': f'seeds with ood_score >= {solved_threshold}',
      'per_seed': [{'seed': int(seed), 'score': s.score,
                    'ood_score': s.ood_score, 'solved_up_to': s.solved_up_to}
                   for seed, s in zip(seeds, summaries)],
  }
