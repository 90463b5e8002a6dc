"""The train state and one pure training step: sample, encode, forward, loss, update."""

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


def make_sample_and_train_step(model: pure.PureModel,
                               optimizer: optax.GradientTransformation,
                               task: task_lib.Task,
                               encoding: input_encoding.InputEncoding,
                               batch_size: int, max_length: int):
  """`(state, length, data_key, dropout_key) -> (state, metrics)`, sampling included.

  `length` is traced: one compiled program serves every length up to
  `max_length` (the bucket).
  """
  train_step = make_train_step(model, optimizer, task, encoding)

  def step(state: TrainState, length: jax.Array, data_key: jax.Array,
           dropout_key: jax.Array):
    batch = task.sample_batch(data_key, batch_size, max_length, length)
    return train_step(state, batch, dropout_key)

  return step
