"""XLA CPU settings that speed up our models; entry points import this before JAX runs.

Measured on a 2-core CPU (experiments/benchmark.py, staircase chunk-2 parity
configuration): XLA's experimental YNNPACK fusions make the many small
operations of the staircase row loop slower (train step 0.58 s -> 0.31 s at
length 40 without them; length-500 forward 0.23 s -> 0.16 s). The flags only
affect the CPU backend, and a user's own XLA_FLAGS setting of the same flag
wins.
"""

import os

_FLAGS = ('--xla_cpu_experimental_ynn_fusion_type=',)


def _apply() -> None:
  current = os.environ.get('XLA_FLAGS', '')
  extra = [flag for flag in _FLAGS if flag.split('=')[0] not in current]
  os.environ['XLA_FLAGS'] = ' '.join([current, *extra]).strip()


_apply()
