"""Tests of the ('seed', 'data') mesh: 8 CPU devices give 1 device's results."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import absltest
import jax
import numpy as np

from training import sharding

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Runs with 8 CPU devices (XLA_FLAGS must be set before JAX starts, so in a
# subprocess) and prints its findings as one JSON line.
_EIGHT_DEVICES = textwrap.dedent('''
    import dataclasses, json
    import jax, jax.numpy as jnp, numpy as np
    from neural_networks import pure, staircase as staircase_lib
    from neural_networks import transformer as transformer_lib
    from tasks.regular import parity_check
    from training import curriculum, input_encoding, optimizers, sharding
    from training import train_step, training

    task = parity_check.ParityCheck()
    encoding = input_encoding.InputEncoding(include_eos=False)
    devices = jax.devices()
    out = {'devices': len(devices), 'mesh': {}}
    for num_seeds in (1, 2, 5, 8):
      mesh = sharding.make_mesh(num_seeds)
      out['mesh'][num_seeds] = [mesh.shape['seed'], mesh.shape['data']]
    try:
      sharding.SeedLayout(1, sharding.make_mesh(1)).check_batch_size(12)
    except ValueError as e:
      out['batch_error'] = str(e)

    def phases(cfg, name):
      return [training.Phase(name, 6, pure.from_nnx(cfg.make))]

    # 6 steps; lengths 1..16 in buckets 10 and 16 (the staircase's: seed 4
    # is padded to seed 3's bucket 16 at steps 1 and 4), 1..6 in one bucket
    # (the Transformer's); validations at steps 3 and 6.
    config = training.TrainConfig(
        seed=3, batch_size=16, learning_rate=3e-3,
        log_every=1, length_multiple=2, validate=True, validate_every=3,
        validation_length=6)

    def run(model, num_seeds, seed, mesh_devices, longest):
      records = []
      results = training.train_seeds(
          task, model, encoding,
          curriculum.UniformCurriculum(tuple(range(1, longest + 1))),
          dataclasses.replace(config, seed=seed, num_seeds=num_seeds),
          progress=False, log_fn=records.append,
          mesh=sharding.make_mesh(num_seeds, mesh_devices))
      by_seed = {}
      for i, result in enumerate(results):
        mine = [r for r in records if r.get('seed', seed) == seed + i]
        by_seed[seed + i] = {
            'loss': [r['train_loss'] for r in mine if 'train_loss' in r],
            'validation': [r['validation_accuracy'] for r in mine
                           if 'validation_accuracy' in r],
            'eval_step': result.eval_step,
            'eval_params': np.concatenate([
                np.ravel(x) for x in jax.tree.leaves(result.eval_params)
            ]).tolist()}
      return by_seed

    staircase = phases(staircase_lib.StaircaseConfig(
        3, 2, d_model=16, num_heads=2, group_size=1, num_recurrent_calls=2,
        chunk_size=2, dropout=0.1), 'staircase')
    transformer = phases(transformer_lib.TransformerConfig(
        3, 2, d_model=16, num_heads=2, num_layers=2, is_causal=True,
        dropout=0.1), 'default')
    one = devices[:1]
    out['staircase'] = {
        'one_device': {**run(staircase, 1, 3, one, 16),
                       **run(staircase, 1, 4, one, 16)},
        'two_seeds_eight_devices': run(staircase, 2, 3, devices, 16)}
    out['transformer'] = {'one_device': run(transformer, 1, 3, one, 6),
                          'eight_devices': run(transformer, 1, 3, devices, 6)}

    # The program training compiles for 2 seeds on a (2, 4) mesh: each
    # device holds one seed's parameters and a quarter of its batch.
    layout = sharding.SeedLayout(2, sharding.make_mesh(2))
    optimizer = optimizers.make_optimizer(3e-3, 0.0, 0.1)
    state = training.initial_state(staircase[0].model, optimizer, (3, 4),
                                   layout)
    leaf = jax.tree.leaves(state.params)[0]
    out['param_shard'] = [list(leaf.shape),
                          list(leaf.sharding.shard_shape(leaf.shape))]
    step = train_step.make_sample_and_train_step(
        staircase[0].model, optimizer, task, encoding, 16, 6,
        constrain_batch=layout.constrain_batch)
    step = jax.jit(layout.over_seeds(step, in_axes=(0, 0, 0, 0)),
                   out_shardings=(layout.state_sharding, layout.replicated))
    keys = jax.random.split(jax.random.key(0), 2)
    hlo = step.lower(state, jnp.array([6, 6]), keys, keys).compile().as_text()
    out['all_reduces'] = hlo.count('all-reduce(')
    print(json.dumps(out))
''')


class MeshTest(absltest.TestCase):

  def test_one_device_is_a_one_by_one_mesh(self):
    mesh = sharding.make_mesh(3, jax.devices()[:1])
    self.assertEqual(dict(mesh.shape), {'seed': 1, 'data': 1})
    with self.assertRaisesRegex(ValueError, 'num_seeds'):
      sharding.make_mesh(0)


class EightDevicesTest(absltest.TestCase):
  """One subprocess with 8 CPU devices; its findings checked one by one."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.cache = tempfile.TemporaryDirectory()
    env = dict(os.environ,
               XLA_FLAGS='--xla_force_host_platform_device_count=8',
               PYTHONPATH=_REPO,
               # Runs of equal programs (another seed) compile once.
               JAX_COMPILATION_CACHE_DIR=cls.cache.name,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')
    cls.proc = subprocess.run([sys.executable, '-c', _EIGHT_DEVICES],
                              cwd=_REPO, env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    cls.out = None
    if cls.proc.returncode == 0:
      cls.out = json.loads(cls.proc.stdout.strip().splitlines()[-1])

  @classmethod
  def tearDownClass(cls):
    cls.cache.cleanup()
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.proc.returncode, 0, msg=self.proc.stderr[-3000:])
    self.assertEqual(self.out['devices'], 8)

  def assert_same_run(self, got, want):
    self.assertLen(got['loss'], 6)  # train_steps + 1 + second_training_steps.
    np.testing.assert_allclose(got['loss'], want['loss'], rtol=0, atol=1e-5)
    self.assertLen(got['validation'], 2)
    np.testing.assert_allclose(got['validation'], want['validation'],
                               rtol=0, atol=1e-6)
    self.assertEqual(got['eval_step'], want['eval_step'])
    # Adam turns float rounding in near-zero gradients into updates of up to
    # the learning rate, so parameters agree less tightly than losses.
    np.testing.assert_allclose(got['eval_params'], want['eval_params'],
                               rtol=0, atol=1e-2)

  def test_seeds_take_the_gcd_of_seeds_and_devices(self):
    self.assertEqual(self.out['mesh'],
                     {'1': [1, 8], '2': [2, 4], '5': [1, 8], '8': [8, 1]})

  def test_a_batch_that_does_not_split_over_data_is_rejected(self):
    self.assertIn('batch_size=12 must be divisible by the 8 devices',
                  self.out['batch_error'])

  def test_a_batch_split_over_eight_devices_gives_the_results_of_one(self):
    runs = self.out['transformer']  # With dropout: the masks are global.
    self.assert_same_run(runs['eight_devices']['3'], runs['one_device']['3'])

  def test_vmapped_seeds_over_eight_devices_match_their_runs_alone(self):
    # A (2, 4) mesh: seeds split over 2 devices, each batch over 4. Staircase
    # mode draws dropout per row, so padding seed 4 to seed 3's longer
    # bucket changes nothing.
    runs = self.out['staircase']
    for seed in ('3', '4'):
      self.assert_same_run(runs['two_seeds_eight_devices'][seed],
                           runs['one_device'][seed])
    # The check means something: the two seeds differ.
    self.assertGreater(np.abs(np.subtract(runs['one_device']['3']['loss'],
                                          runs['one_device']['4']['loss'])
                              ).max(), 1e-3)

  def test_parameters_split_over_seeds_and_gradients_summed_over_data(self):
    shape, shard = self.out['param_shard']
    self.assertEqual(shape[0], 2)
    self.assertEqual(shard, [1, *shape[1:]])
    # A batch split over the data axis needs its gradients all-reduced.
    self.assertGreater(self.out['all_reduces'], 0)


if __name__ == '__main__':
  absltest.main()
