"""CLI: sample a few strings of a task and print them with their labels."""

from collections.abc import Sequence

import jax
import numpy as np
from absl import app
from absl import flags

from experiments import registry

_TASK = flags.DEFINE_enum('task', 'parity_check', sorted(registry.TASKS),
                          'The task (default arguments).')
_LENGTH = flags.DEFINE_integer('length', 8, 'String length.', lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 4, 'Strings to sample.',
                                   lower_bound=1)
_SEED = flags.DEFINE_integer('seed', 0, 'PRNG seed.')


def main(argv: Sequence[str]) -> None:
  del argv  # Unused.
  task = registry.task_entry(_TASK.value).build()
  max_length = int(task.token_length(_LENGTH.value))
  batch = task.sample_batch(jax.random.key(_SEED.value), _BATCH_SIZE.value,
                            max_length, _LENGTH.value)
  for input_L, length, target in zip(*map(np.asarray, batch)):
    print(' '.join(map(str, input_L[:length])), '->', target)


if __name__ == '__main__':
  app.run(main)
