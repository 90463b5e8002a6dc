"""`attention.attend` against a loop over the definition, in both of its paths."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from neural_networks import attention

jax.config.update('jax_numpy_rank_promotion', 'raise')  # No silent broadcasting in tests.


def _reference(q_BQHK, k_BMJK, v_BMJK, mask_BQM, scale_H):
  """Softmax over the visible keys of each query and head, one at a time."""
  B, Q, H, K = q_BQHK.shape
  out = np.zeros((B, Q, H, K))
  for b in range(B):
    for i in range(Q):
      for h in range(H):
        j = 0 if k_BMJK.shape[2] == 1 else h
        visible = np.flatnonzero(mask_BQM[b, i])
        if not visible.size:
          continue  # No key: the output is 0.
        logits = [scale_H[h] * float(np.dot(q_BQHK[b, i, h], k_BMJK[b, m, j]))
                  for m in visible]
        weights = np.exp(np.array(logits) - max(logits))
        weights /= weights.sum()
        out[b, i, h] = sum(w * v_BMJK[b, m, j] for w, m in zip(weights, visible))
  return out


class AttendTest(parameterized.TestCase):

  @parameterized.product(
      size=((3, 5), (16, 20)),  # Q x M below and above the small-path limit.
      K=(4, 64),  # Heads narrow enough for the small path, and too wide.
      kv_heads=(1, 2), per_head_scale=(False, True))
  def test_matches_the_definition(self, size, K, kv_heads, per_head_scale):
    Q, M = size
    self.assertEqual(attention._elementwise(Q, M, K), Q == 3 and K == 4)
    B, H = 1, 2
    keys = jax.random.split(jax.random.key(Q), 4)
    q = jax.random.normal(keys[0], (B, Q, H, K))
    k = jax.random.normal(keys[1], (B, M, kv_heads, K))
    v = jax.random.normal(keys[2], (B, M, kv_heads, K))
    mask = jax.random.bernoulli(keys[3], 0.6, (B, Q, M)).at[0, 0].set(False)
    scale = jnp.array([0.5, 2.0]) if per_head_scale else 0.7
    out = attention.attend(q, k, v, mask, logit_scale=scale)
    scale_H = np.broadcast_to(np.asarray(scale), (H,))
    np.testing.assert_allclose(out, _reference(*map(np.asarray, (q, k, v, mask)),
                                               scale_H), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[0, 0], 0.0)  # A query with no key.
    grads = jax.grad(lambda q: attention.attend(q, k, v, mask).sum())(q)
    self.assertTrue(np.isfinite(grads).all())

  @parameterized.parameters((3, 5), (16, 20))
  def test_no_mask_and_no_scale_is_plain_softmax(self, Q, M):
    q = jax.random.normal(jax.random.key(0), (1, Q, 1, 4))
    k = jax.random.normal(jax.random.key(1), (1, M, 1, 4))
    out = attention.attend(q, k, k)
    expected = jax.nn.softmax(q[0, :, 0] @ k[0, :, 0].T, axis=-1) @ k[0, :, 0]
    np.testing.assert_allclose(out[0, :, 0], expected, rtol=1e-5, atol=1e-6)

  @parameterized.parameters((3, 5), (16, 20))
  def test_dropout_keeps_the_expected_weight(self, Q, M):
    q = jnp.zeros((1, Q, 1, 4))  # Uniform weights: the output is mean(v).
    v = jnp.ones((1, M, 1, 4))
    seeds = jnp.arange(200, dtype=jnp.uint32)
    out = jax.vmap(lambda s: attention.attend(q, v, v, seed=s,
                                              dropout_rate=0.5))(seeds)
    self.assertFalse(np.allclose(out, 1.0))  # Some weights were dropped ...
    self.assertAlmostEqual(float(out.mean()), 1.0, delta=0.05)  # ... unbiased.


if __name__ == '__main__':
  absltest.main()
