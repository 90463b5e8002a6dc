"""Static length buckets: a handful of compiled programs serve every length."""

import bisect
from collections.abc import Sequence


def make_buckets(max_length: int, width: int, multiple_of: int = 1) -> tuple[int, ...]:
  """Bucket upper bounds `width, 2 width, ...` ending exactly at `max_length`.

  Bounds are rounded up to a multiple of `multiple_of` (e.g. the staircase
  chunk size, so padding never adds a partial chunk) but never past
  `max_length`'s own rounding.
  """
  if max_length < 1 or width < 1 or multiple_of < 1:
    raise ValueError('max_length, width and multiple_of must be >= 1.')
  round_up = lambda n: -(-n // multiple_of) * multiple_of
  bounds = {round_up(min(b, max_length)) for b in range(width, max_length + width, width)}
  return tuple(sorted(bounds))


def bucket_for(length: int, buckets: Sequence[int]) -> int:
  """The smallest bucket bound that holds `length`."""
  i = bisect.bisect_left(buckets, length)
  if i == len(buckets):
    raise ValueError(f'length {length} exceeds the largest bucket {buckets[-1]}.')
  return buckets[i]
