"""`x @ w` with a hand-written backward pass that spares XLA:CPU a large transpose.

For the weight gradient `x^T g`, XLA's CPU backend transposes the output
gradient `g` into a `(D, B*L)` copy, and fuses into that copy every
elementwise producer of `g`; for a residual stream that is the whole chain of
LayerNorm backward terms of the later layers, recomputed for each weight.
Contracting `x` and `g` over their leading axis with one `dot_general` avoids
the copy. Measured on the block-recurrent parity configuration (d 512, batch
256, length 40, 2-core CPU): the gradient went from 12.1 to 9.3 CPU-seconds.
"""

import jax


@jax.custom_vjp
def matmul(x_XI: jax.Array, w_IO: jax.Array) -> jax.Array:
  """`x_XI @ w_IO` over the last axis of `x` (any leading axes)."""
  return x_XI @ w_IO


def _matmul_fwd(x_XI, w_IO):
  return x_XI @ w_IO, (x_XI, w_IO)


def _matmul_bwd(residuals, g_XO):
  x_XI, w_IO = residuals
  I, O = w_IO.shape
  x_ZI, g_ZO = x_XI.reshape(-1, I), g_XO.reshape(-1, O)
  dw_IO = jax.lax.dot_general(x_ZI, g_ZO, (((0,), (0,)), ((), ())))
  return g_XO @ w_IO.T, dw_IO


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense_dot_general(x, kernel, dimension_numbers, precision=None,
                      preferred_element_type=None, out_sharding=None):
  """A `dot_general` for `nnx.Linear(dot_general=...)` that uses `matmul`."""
  (x_contracting, kernel_contracting), batch = dimension_numbers
  if (tuple(x_contracting) != (x.ndim - 1,) or tuple(kernel_contracting) != (0,)
      or batch != ((), ()) or kernel.ndim != 2):
    raise ValueError(f'Not a dense layer contraction: {dimension_numbers}.')
  # nnx.Linear passes its defaults (None) for these.
  del precision, preferred_element_type, out_sharding
  return matmul(x, kernel)
