"""The original's optimizer as an optax chain: global-norm clipping, then AdamW."""

from typing import NamedTuple

import numpy as np
import optax


class Hyperparameters(NamedTuple):
  """The values a sweep varies; traced inputs of the compiled training step,
  so that runs differing only in them share every program."""

  learning_rate: float
  weight_decay: float = 0.0
  adam_beta1_inv: float = 0.1

  def as_arrays(self) -> 'Hyperparameters':
    return Hyperparameters(*(np.float32(v) for v in self))


def make_optimizer(learning_rate, weight_decay=0.0, adam_beta1_inv=0.1,
                   clip_norm: float = 1.0) -> optax.GradientTransformation:
  """Clip to global norm `clip_norm`, then AdamW with b1 = 1 - adam_beta1_inv.

  Weight decay is decoupled and applies to every parameter (norms and biases
  included), as torch's AdamW does. The three hyper-parameters may be traced
  scalars (inside `jax.jit`); Python numbers are checked here.
  """
  checks = (('learning_rate (--lr)', learning_rate, lambda v: v >= 0, '>= 0'),
            ('weight_decay (--wd)', weight_decay, lambda v: v >= 0, '>= 0'),
            ('adam_beta1_inv', adam_beta1_inv, lambda v: 0 < v <= 1,
             'in (0, 1]'))
  for name, value, ok, expected in checks:
    if isinstance(value, (int, float)) and not ok(value):
      raise ValueError(f'{name} must be {expected}, got {value}.')
  return optax.chain(
      optax.clip_by_global_norm(clip_norm),
      optax.adamw(learning_rate, b1=1.0 - adam_beta1_inv, b2=0.999, eps=1e-8,
                  weight_decay=weight_decay),
  )
