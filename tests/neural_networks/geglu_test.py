"""GEGLU's value and hand-written gradient against JAX's own GELU."""

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from jax.test_util import check_grads

from neural_networks import geglu


def _reference(u_BE):
  value_BF, gate_BF = jnp.split(u_BE, 2, axis=-1)
  return value_BF * jax.nn.gelu(gate_BF, approximate=False)


def _inputs(dtype):
  """`[value | gate]` for gates from deep in the lower tail to the upper."""
  gate_BF = jnp.linspace(-12.0, 12.0, 240, dtype=dtype).reshape(2, 120)
  value_BF = jax.random.normal(jax.random.key(0), gate_BF.shape, dtype)
  return jnp.concatenate([value_BF, gate_BF], axis=-1)


class GegluTest(parameterized.TestCase):

  def test_value_is_jax_gelu(self):
    u_BE = _inputs(jnp.float32)
    np.testing.assert_allclose(geglu.geglu(u_BE), _reference(u_BE),
                               atol=1e-6, rtol=1e-6)

  @parameterized.parameters(jnp.float32, jnp.float64)
  def test_gradient_is_that_of_jax_gelu(self, dtype):
    with jax.enable_x64(dtype == jnp.float64):
      u_BE = _inputs(dtype)
      g_BF = jax.random.normal(jax.random.key(1), (2, 120), dtype)
      loss = lambda f: lambda u_BE: jnp.sum(f(u_BE) * g_BF)
      tolerance = 1e-6 if dtype == jnp.float32 else 1e-14
      np.testing.assert_allclose(jax.grad(loss(geglu.geglu))(u_BE),
                                 jax.grad(loss(_reference))(u_BE),
                                 atol=tolerance, rtol=tolerance)

  def test_gradient_matches_finite_differences(self):
    with jax.enable_x64(True):
      check_grads(geglu.geglu, (_inputs(jnp.float64)[:, ::10],), order=1,
                  modes=('rev',))


if __name__ == '__main__':
  absltest.main()
