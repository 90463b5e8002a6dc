"""Reading a CLI run folder in tests: shared by the experiments' test files."""

import json
import os
import shutil
import tempfile

from absl.testing import absltest

TIMING_KEYS = ('steps_per_second', 'train_seconds', 'eval_seconds')


def tempdir(test: absltest.TestCase) -> str:
  """A fresh folder removed after `test` (works under pytest and absltest)."""
  path = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def only_run_dir(out_dir: str) -> str:
  (name,) = os.listdir(out_dir)
  return os.path.join(out_dir, name)


def load_json(path: str):
  with open(path) as f:
    return json.load(f)


def metrics(run_dir: str) -> list[dict[str, object]]:
  with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f if line.strip()]


def damage(step_dir: str) -> None:
  """Cuts every file of a checkpoint folder to half its size, as a partial
  copy or a full disk leaves it."""
  sizes = {os.path.join(root, name): os.path.getsize(os.path.join(root, name))
           for root, _, names in os.walk(step_dir) for name in names}
  assert sizes, step_dir
  for path, size in sizes.items():
    os.truncate(path, size // 2)
