"""The train state and one pure training step: sample, encode, forward, loss, update."""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from neural_networks import pure
from tasks import task as task_lib
from training import input_encoding


class TrainState(NamedTuple):
  step: jax.Array
  params: pure.Params
  opt_state: optax.OptState


def init_state(model: pure.PureModel, optimizer: optax.GradientTransformation,
               key: jax.Array) -> TrainState:
  params = model.init(key)
  return TrainState(jnp.int32(0), params, optimizer.init(params))


def readout(logits_BTO: jax.Array, answer_position_B: jax.Array) -> jax.Array:
  """The logits at each row's answer position: `(B, O)`."""
  return jnp.take_along_axis(
      logits_BTO, answer_position_B[:, None, None], axis=1)[:, 0]


def loss_and_metrics(model: pure.PureModel, params: pure.Params,
                     inputs: input_encoding.ModelInput, target_B: jax.Array,
                     key: jax.Array | None) -> tuple[jax.Array, dict[str, Any]]:
  """The original's loss: cross entropy over classes, mean over the batch."""
  logits_BTO = model.apply(params, inputs.input_BT, inputs.length_B, key)
  logits_BO = readout(logits_BTO, inputs.answer_position_B)
  loss = optax.softmax_cross_entropy_with_integer_labels(
      logits_BO.astype(jnp.float32), target_B).mean()
  accuracy = (logits_BO.argmax(-1) == target_B).mean()
  return loss, {'accuracy': accuracy}


def make_train_step(model: pure.PureModel,
                    optimizer: optax.GradientTransformation,
                    task: task_lib.Task,
                    encoding: input_encoding.InputEncoding):
  """A pure `(state, batch, key) -> (state, metrics)`; the caller jits it."""

  def train_step(state: TrainState, batch: task_lib.Batch, key: jax.Array):
    inputs = encoding.encode(task, batch)
    grad_fn = jax.value_and_grad(
        lambda p: loss_and_metrics(model, p, inputs, batch.target_B, key),
        has_aux=True)
    (loss, metrics), grads = grad_fn(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss, **metrics}
    return TrainState(state.step + 1, params, opt_state), metrics

  return train_step


def sample_padded(task: task_lib.Task, key: jax.Array, batch_size: int,
                  max_lengths: Sequence[int], which, length) -> task_lib.Batch:
  """The batch `task.sample_batch(key, batch_size, max_lengths[which], length)`,
  zero-padded to `max(max_lengths)` tokens.

  The random bits of a batch depend on its sampled shape, so vmapped seeds
  that share one padded shape each sample at their own bucket's length: each
  then trains on the strings of the run with that seed alone. `which` may be
  traced (under `jax.vmap` every candidate is sampled, then one is selected;
  sampling is cheap next to the step).
  """
  if len(max_lengths) == 1:
    return task.sample_batch(key, batch_size, max_lengths[0], length)
  padded = max(max_lengths)

  def sample_at(max_length):
    def sample(key, length):
      batch = task.sample_batch(key, batch_size, max_length, length)
      return batch._replace(input_BL=jnp.pad(
          batch.input_BL, ((0, 0), (0, padded - max_length))))
    return sample

  return jax.lax.switch(which, [sample_at(n) for n in max_lengths], key,
                        length)


def make_sample_and_train_step(
    model: pure.PureModel, optimizer: optax.GradientTransformation,
    task: task_lib.Task, encoding: input_encoding.InputEncoding,
    batch_size: int, max_length: int | Sequence[int],
    constrain_batch: Callable[[task_lib.Batch], task_lib.Batch] | None = None):
  """`(state, length, data_key, dropout_key, which=0) -> (state, metrics)`.

  Sampling is included, and `length` is traced: one compiled program serves
  every length up to `max_length` (the bucket). A sequence of max lengths
  pads to the longest and samples at `max_length[which]` (see
  `sample_padded`). `constrain_batch` places the sampled batch (e.g. split
  over the mesh's data axis).
  """
  train_step = make_train_step(model, optimizer, task, encoding)
  max_lengths = (max_length,) if isinstance(max_length, int) else tuple(
      max_length)

  def step(state: TrainState, length: jax.Array, data_key: jax.Array,
           dropout_key: jax.Array, which: jax.Array | int = 0):
    batch = sample_padded(task, data_key, batch_size, max_lengths, which,
                          length)
    if constrain_batch is not None:
      batch = constrain_batch(batch)
    return train_step(state, batch, dropout_key)

  return step
