"""The ('seed', 'data') device mesh, the NamedShardings on it, multi-host I/O.

R seeds of one configuration train in one program: per-seed code is written
once and batched with `jax.vmap` over a leading seed axis (only when R > 1, so
a single seed runs exactly the program it always ran). The seed axis of the
mesh takes `gcd(R, devices)` devices and the data axis the rest: each seed's
parameters live on its slice of the seed axis, replicated along `data`, and
its batch is split along `data`. JAX's SPMD partitioner inserts every
collective (the gradient all-reduce over `data`); nothing here communicates
by hand. The same code runs on one CPU, 8 GPUs or a multi-host TPU slice.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

SEED_AXIS = 'seed'
DATA_AXIS = 'data'


def make_mesh(num_seeds: int,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """`devices` (default: those of every process) as a ('seed', 'data') mesh."""
  if num_seeds < 1:
    raise ValueError(f'num_seeds must be >= 1, got {num_seeds}.')
  devices = list(jax.devices() if devices is None else devices)
  num_seed_devices = math.gcd(num_seeds, len(devices))
  return jax.make_mesh(
      (num_seed_devices, len(devices) // num_seed_devices),
      (SEED_AXIS, DATA_AXIS), axis_types=(AxisType.Auto,) * 2,
      devices=devices)


@dataclasses.dataclass(frozen=True)
class SeedLayout:
  """Where the state and batches of `num_seeds` runs live on `mesh`.

  With one seed nothing has a seed axis; with R > 1 every leaf of the train
  state, and every per-seed input and metric, has a leading axis of size R.
  """

  num_seeds: int
  mesh: Mesh

  def __post_init__(self):
    if self.num_seeds < 1:
      raise ValueError(f'num_seeds must be >= 1, got {self.num_seeds}.')
    if self.num_seeds % self.mesh.shape[SEED_AXIS]:
      raise ValueError(
          f'{self.num_seeds} seeds cannot be split over the'
          f' {self.mesh.shape[SEED_AXIS]} devices of the seed axis.')

  @property
  def stacked(self) -> bool:
    return self.num_seeds > 1

  @property
  def data_devices(self) -> int:
    return self.mesh.shape[DATA_AXIS]

  @property
  def state_sharding(self) -> NamedSharding:
    """Split over `seed` (when stacked), replicated over `data`."""
    return NamedSharding(self.mesh, P(SEED_AXIS) if self.stacked else P())

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  def check_batch_size(self, batch_size: int) -> None:
    """Raises ValueError unless the global batch splits evenly over `data`."""
    if batch_size % self.data_devices:
      raise ValueError(
          f'batch_size={batch_size} must be divisible by the'
          f' {self.data_devices} devices of the mesh data axis (mesh'
          f' {dict(self.mesh.shape)} over {self.mesh.size} devices; the seed'
          f' axis takes gcd(num_seeds={self.num_seeds}, {self.mesh.size})).')

  def over_seeds(self, fn: Callable[..., Any],
                 in_axes: Any = 0) -> Callable[..., Any]:
    """`fn` written for one seed, batched over the seed axis when stacked
    (named `SEED_AXIS`, for collectives over seeds)."""
    if not self.stacked:
      return fn
    return jax.vmap(fn, in_axes=in_axes, axis_name=SEED_AXIS,
                    spmd_axis_name=SEED_AXIS)

  def constrain_batch(self, tree: Any) -> Any:
    """Splits the leading (batch) axis of one seed's arrays over `data`.

    Called inside `over_seeds`: the vmapped seed axis is then split over
    `seed` as well. Sampling is counter-based (partitionable threefry), so the
    split batch holds exactly the strings an unsplit one would.
    """
    return jax.lax.with_sharding_constraint(
        tree, NamedSharding(self.mesh, P(DATA_AXIS)))

  def put(self, tree: Any) -> Any:
    """A train state (identical on every process) placed as `state_sharding`."""
    sharding = self.state_sharding

    def put_leaf(x):
      x = np.asarray(x)
      return jax.make_array_from_callback(x.shape, sharding,
                                          lambda index: x[index])
    return jax.tree.map(put_leaf, tree)

  def seed_slice(self, tree: Any, i: int) -> Any:
    """Seed `i` of a host (NumPy) tree."""
    return jax.tree.map(lambda x: x[i], tree) if self.stacked else tree


def is_primary() -> bool:
  """Only process 0 writes result files."""
  return jax.process_index() == 0


def to_host(tree: Any) -> Any:
  """NumPy copies of global arrays on every process (gathered if multi-host)."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return multihost_utils.process_allgather(tree, tiled=True)


def to_local_device(tree: Any) -> Any:
  """A copy on this process's first device, for unsharded evaluation."""
  return jax.device_put(to_host(tree), jax.local_devices()[0])


def from_primary(values: np.ndarray) -> np.ndarray:
  """Process 0's `values` on every process (what it read from its files)."""
  if jax.process_count() == 1:
    return np.asarray(values)
  return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(values)))


def any_process(flag: bool) -> bool:
  """Whether `flag` is set on any process (every process gets the same
  answer, so all of them take the same branch)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.process_allgather(np.asarray(flag)).any())


def sync(name: str) -> None:
  """Waits until every process gets here (a no-op with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
