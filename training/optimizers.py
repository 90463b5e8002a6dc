"""The original's optimizer as an optax chain: global-norm clipping, then AdamW."""

import optax


def make_optimizer(learning_rate: float, weight_decay: float = 0.0,
                   adam_beta1_inv: float = 0.1,
                   clip_norm: float = 1.0) -> optax.GradientTransformation:
  """Clip to global norm `clip_norm`, then AdamW with b1 = 1 - adam_beta1_inv.

  Weight decay is decoupled and applies to every parameter (norms and biases
  included), as torch's AdamW does.
  """
  if learning_rate < 0:
    raise ValueError(f'learning_rate (--lr) must be >= 0, got {learning_rate}.')
  if weight_decay < 0:
    raise ValueError(f'weight_decay (--wd) must be >= 0, got {weight_decay}.')
  if not 0 < adam_beta1_inv <= 1:
    raise ValueError(
        f'adam_beta1_inv must be in (0, 1], got {adam_beta1_inv}.')
  return optax.chain(
      optax.clip_by_global_norm(clip_norm),
      optax.adamw(learning_rate, b1=1.0 - adam_beta1_inv, b2=0.999, eps=1e-8,
                  weight_decay=weight_decay),
  )
