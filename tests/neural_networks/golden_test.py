"""Our models, loaded with the original's weights, reproduce its logits (golden fixtures)."""

import glob
import json
import os

import jax
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from neural_networks import torch_import

_GOLDEN_DIR = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                           'shared', 'golden', 'seed_torch', 'visible')
_FIXTURES = sorted(glob.glob(os.path.join(_GOLDEN_DIR, '*.npz')))


def _kind(path: str) -> str:
  with np.load(path, allow_pickle=False) as fixture:
    return json.loads(str(fixture['config']))['kind']


_CASES = [(os.path.basename(p)[:-4], p) for p in _FIXTURES
          if _kind(p) != 'brt']


class GoldenTest(parameterized.TestCase):

  def test_fixtures_are_present(self):
    # Guards against a silently empty parameterisation.
    self.assertGreaterEqual(len(_CASES), 35, _GOLDEN_DIR)

  @parameterized.named_parameters(*_CASES)
  def test_float32_logits_match_the_original(self, path):
    with np.load(path, allow_pickle=False) as fixture:
      expected = fixture['output']
    actual = torch_import.logits_from_fixture(path)
    self.assertEqual(actual.shape, expected.shape)
    self.assertEqual(actual.dtype, np.float32)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)

  @parameterized.named_parameters(*_CASES)
  def test_float64_logits_match_the_original(self, path):
    with np.load(path, allow_pickle=False) as fixture:
      expected = fixture['output_float64']
    with jax.enable_x64(True):
      actual = torch_import.logits_from_fixture(path, dtype=np.float64)
    self.assertEqual(actual.dtype, np.float64)
    np.testing.assert_allclose(actual, expected, atol=1e-9, rtol=0)

  def test_property_fixtures_staircase_equals_parallel(self):
    for name, path in _CASES:
      if 'property' not in name:
        continue
      with np.load(path, allow_pickle=False) as fixture:
        np.testing.assert_allclose(torch_import.logits_from_fixture(path),
                                   fixture['output_parallel'], atol=1e-5)

  def test_block_recurrent_fixtures_are_not_yet_supported(self):
    brt = [p for p in _FIXTURES if _kind(p) == 'brt']
    self.assertNotEmpty(brt)
    with self.assertRaises(NotImplementedError):
      torch_import.logits_from_fixture(brt[0])


if __name__ == '__main__':
  absltest.main()
