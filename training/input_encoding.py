"""The model input built from a task batch, as the original harness builds it.

The harness widens the one-hot alphabet by one id (two with computation
steps). With `include_eos`, every string is followed by
`computation_steps_mult * length` computation tokens (id `input_size`) and
then `output_length` output tokens (id `input_size + 1` with computation
steps, else `input_size`), the first of which is where the answer is read;
without it the answer is read at the last input token. Token ids stay ids:
one-hot (a bias-free linear map) is the model's embedding.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from tasks import task as task_lib


class ModelInput(NamedTuple):
  """What a model consumes, padded to a static length `T`.

  Attributes:
    input_BT: int32 token ids in `[0, vocab_size)`; zeros past `length_B`.
    length_B: int32 number of real tokens per row (input + appended tokens).
    answer_position_B: int32 position whose logits give the row's label.
  """

  input_BT: jax.Array
  length_B: jax.Array
  answer_position_B: jax.Array


@dataclasses.dataclass(frozen=True)
class InputEncoding:
  """How strings become model inputs (`--include_eos`, `--computation_steps_mult`)."""

  include_eos: bool = True
  computation_steps_mult: int = 0

  def __post_init__(self):
    if self.computation_steps_mult < 0:
      raise ValueError(
          'computation_steps_mult must be >= 0, got'
          f' {self.computation_steps_mult}.'
      )

  def vocab_size(self, task: task_lib.Task) -> int:
    """Input vocabulary of the model: the alphabet plus the harness's extra ids."""
    return task.input_size + 1 + (self.computation_steps_mult > 0)

  def _output_length(self, task: task_lib.Task) -> int:
    output_length = task.output_length(1)
    if output_length != 1:
      raise ValueError(
          'Only tasks with one output token are supported, got'
          f' output_length={output_length}.'
      )
    return output_length

  def padded_length(self, task: task_lib.Task, max_length: int) -> int:
    """Static model input length `T` for task batches padded to `max_length`."""
    if not self.include_eos:
      return max_length
    return max_length * (1 + self.computation_steps_mult) + self._output_length(
        task
    )

  def encode(self, task: task_lib.Task, batch: task_lib.Batch) -> ModelInput:
    """Appends computation and output tokens after each row's real tokens."""
    B, L = batch.input_BL.shape
    length_B = batch.length_B
    if not self.include_eos:
      return ModelInput(batch.input_BL, length_B, length_B - 1)
    output_length = self._output_length(task)
    T = self.padded_length(task, L)
    computation_id = task.input_size
    output_id = task.input_size + (self.computation_steps_mult > 0)
    position_T = jnp.arange(T, dtype=jnp.int32)[None, :]
    computation_end_B = length_B * (1 + self.computation_steps_mult)
    total_B = computation_end_B + output_length
    input_BT = jnp.pad(batch.input_BL, ((0, 0), (0, T - L)))
    input_BT = jnp.where(position_T < length_B[:, None], input_BT, 0)
    input_BT = jnp.where(
        (position_T >= length_B[:, None])
        & (position_T < computation_end_B[:, None]),
        computation_id,
        input_BT,
    )
    input_BT = jnp.where(
        (position_T >= computation_end_B[:, None])
        & (position_T < total_B[:, None]),
        output_id,
        input_BT,
    )
    return ModelInput(input_BT.astype(jnp.int32), total_B, computation_end_B)
