"""Where a compiled program's time goes: XLA operation time by kind, from a profile.

`jax.profiler.trace` records one event per XLA operation (thunk) on each
runtime thread. A control-flow operation (`while`, `conditional`) spans the
operations of its body, so each event is charged only its exclusive time (its
duration less that of the events nested in it on the same thread). Kinds are
HLO names without their numeric suffix: `dot`, `fusion`, `copy`, ...

A caveat: XLA's CPU runtime may run a large matrix product asynchronously on
Eigen's thread pool, and its event then covers less than its work, so read
`dot` times as lower bounds and compare the total with the step's wall time.
"""

import collections
import glob
import os
import re

import jax

_SUFFIX = re.compile(r'[.\d]+$')


def kind_of(hlo_op: str) -> str:
  """`fusion.12` -> `fusion`, `dot.3` -> `dot`, `copy` -> `copy`."""
  return _SUFFIX.sub('', hlo_op) or hlo_op


def _exclusive_ns(events: list[tuple[float, float, str]]) -> list[tuple[str, float]]:
  """`(name, exclusive ns)` of `(start, duration, name)` events of one thread."""
  events = sorted(events, key=lambda e: (e[0], -e[1]))
  exclusive = [duration for _, duration, _ in events]
  open_ = []  # Indices of the events that enclose the current one.
  for i, (start, _, _) in enumerate(events):
    while open_ and events[open_[-1]][0] + events[open_[-1]][1] <= start:
      open_.pop()
    if open_:
      exclusive[open_[-1]] -= events[i][1]
    open_.append(i)
  return [(name, max(ns, 0.0)) for (_, _, name), ns in zip(events, exclusive)]


def op_time_by_kind(trace_dir: str) -> dict:
  """Exclusive milliseconds and call counts per operation kind, all threads.

  Reads the newest `.xplane.pb` under `trace_dir` (written by
  `jax.profiler.trace(trace_dir)`). Returns `{'threads': n, 'kinds': {kind:
  {'ms': total, 'calls': count}}}`, kinds by decreasing time.
  """
  paths = glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'),
                    recursive=True)
  if not paths:
    raise FileNotFoundError(f'no .xplane.pb profile under {trace_dir}')
  profile = jax.profiler.ProfileData.from_file(max(paths, key=os.path.getmtime))
  ms = collections.Counter()
  calls = collections.Counter()
  threads = 0
  for plane in profile.planes:
    for line in plane.lines:
      events = []
      for event in line.events:
        op = dict(event.stats).get('hlo_op')
        if op is not None:
          events.append((event.start_ns, event.duration_ns, kind_of(str(op))))
      threads += bool(events)
      for kind, ns in _exclusive_ns(events):
        ms[kind] += ns / 1e6
        calls[kind] += 1
  return {'threads': threads,
          'kinds': {kind: {'ms': total, 'calls': calls[kind]}
                    for kind, total in ms.most_common()}}
