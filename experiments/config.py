"""`ExperimentConfig`: everything one run computes from, as one frozen value.

A config is the task (name and arguments), the architecture and that model's
own config dataclass, training (optimizer, steps and phases, curriculum,
batch size, seeds), the input encoding and the evaluation. The CLI builds one
from flags (`original_flags.to_config`), Python code builds one directly, and
a run folder's `config.json` holds one: `to_json` and `from_json` round-trip
it exactly.
"""

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from experiments import registry
from tasks import task as task_lib
from training import curriculum as curriculum_lib
from training import input_encoding

PROTOCOLS = ('auto', 'seed', 'prefix')
CURRICULA = ('uniform', 'fixed', 'reverse_exponential', 'regular_increase')


class ConfigError(ValueError):
  """A bad configuration: the message says what to change."""


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """A registered task and its constructor arguments."""

  name: str = 'parity_check'
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def build(self) -> task_lib.Task:
    try:
      return registry.task_entry(self.name).build(**self.kwargs)
    except (TypeError, ValueError) as e:
      raise ConfigError(f'task {self.name!r}: {e}') from None


@dataclasses.dataclass(frozen=True)
class PhaseConfig:
  """`steps` training steps of the model config with `model_overrides`."""

  name: str
  steps: int
  model_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
  """Training lengths (`--curriculum`): all four curricula of the harness.

  - uniform: every length in 1..max_length equally often (the original's);
  - fixed: always max_length;
  - reverse_exponential: `P(length) ∝ tau ** length` over 1..max_length;
  - regular_increase: `initial_length`, growing by `increase_amount` every
    `increase_frequency` steps up to max_length; with `sample_all_lengths`
    a step draws among the lengths reached so far.
  """

  kind: str = 'uniform'  # --curriculum
  max_length: int = 40  # --sequence_length
  tau: float = 0.9  # --curriculum_tau
  initial_length: int = 1  # --curriculum_initial_length
  increase_frequency: int = 1000  # --curriculum_increase_frequency
  increase_amount: int = 1  # --curriculum_increase_amount
  sample_all_lengths: bool = False  # --curriculum_sample_all_lengths

  def build(self) -> curriculum_lib.Curriculum:
    values = tuple(range(1, self.max_length + 1))
    if self.kind == 'uniform':
      return curriculum_lib.UniformCurriculum(values)
    if self.kind == 'fixed':
      return curriculum_lib.FixedCurriculum(self.max_length)
    if self.kind == 'reverse_exponential':
      return curriculum_lib.ReverseExponentialCurriculum(values, self.tau)
    if self.kind == 'regular_increase':
      return curriculum_lib.RegularIncreaseCurriculum(
          self.initial_length, self.increase_frequency, self.increase_amount,
          self.sample_all_lengths, self.max_length)
    raise ConfigError(f'--curriculum must be one of {CURRICULA}, got'
                      f' {self.kind!r}.')


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """The optimizer, the phases, the curriculum and the run's cadence."""

  phases: tuple[PhaseConfig, ...] = (PhaseConfig('default', 1),)
  seed: int | None = None  # --seed; None: drawn once and saved.
  num_seeds: int = 1  # --num_seeds
  batch_size: int = 128  # --batch_size
  learning_rate: float = 1e-5  # --lr
  weight_decay: float = 0.0  # --wd
  adam_beta1_inv: float = 0.1  # --adam_beta1_inv
  curriculum: CurriculumConfig = CurriculumConfig()
  validate: bool = False  # --validate
  validation_length: int | None = None  # --validation_length; None: max.
  validate_every: int = 1000  # --validate_every
  log_every: int = 100  # --log_frequency
  checkpoint_every: int = 1000  # --checkpoint_every
  bucket_width: int = 10  # --bucket_width
  early_stopping_accuracy: float | None = None  # --early_stopping_accuracy
  early_stopping_patience: int = 1  # --early_stopping_patience

  @property
  def total_steps(self) -> int:
    return sum(phase.steps for phase in self.phases)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
  """Scoring after training: the protocol and the longest length."""

  protocol: str = 'auto'  # --eval_protocol: 'seed', 'prefix' or 'auto'.
  test_length: int = 500  # --test_length
  # --eval_num_strings: strings scored per length (512 in the original).
  num_strings: int = 512


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """One run: task x model x training x encoding x evaluation."""

  task: TaskConfig
  architecture: str  # A name in registry.MODELS.
  model: Any  # That architecture's config dataclass.
  training: TrainingConfig = TrainingConfig()
  encoding: input_encoding.InputEncoding = input_encoding.InputEncoding()
  evaluation: EvaluationConfig = EvaluationConfig()

  @property
  def model_entry(self) -> registry.ModelEntry:
    return registry.model_entry(self.architecture)

  def phase_models(self) -> list[tuple[PhaseConfig, Any]]:
    """Each phase with its model config (the overrides applied)."""
    try:
      return [(phase, dataclasses.replace(self.model, **phase.model_overrides))
              for phase in self.training.phases]
    except (TypeError, ValueError) as e:
      raise ConfigError(f'training phase: {e}') from None

  @property
  def final_model(self):
    """The model config of the last phase: the one evaluated."""
    return self.phase_models()[-1][1]

  def resolved_protocol(self) -> str:
    """'prefix' when `auto` allows it (a causal model reading the answer at
    the last input token, on a task whose prefixes are samples of their
    length), else 'seed'."""
    if self.evaluation.protocol != 'auto':
      return self.evaluation.protocol
    return ('prefix' if self._prefix_applies()
            and self.task.build().prefix_labels_are_samples else 'seed')

  def _prefix_applies(self) -> bool:
    return (not self.encoding.include_eos
            and bool(self.final_model.is_causal))

  @property
  def validation_length(self) -> int:
    return (self.training.validation_length
            or self.training.curriculum.max_length)

  def validate(self) -> None:
    """Raises ConfigError, naming the flag, for anything that would fail
    later (at the first step or at the final evaluation)."""
    t, e = self.training, self.evaluation
    task = self.task.build()
    try:
      entry = registry.model_entry(self.architecture)
    except ValueError as err:
      raise ConfigError(str(err)) from None
    if not isinstance(self.model, entry.config_class):
      raise ConfigError(
          f'the model config is a {type(self.model).__name__}; architecture'
          f' {self.architecture!r} needs a {entry.config_class.__name__}.')
    vocab = self.encoding.vocab_size(task)
    if (self.model.input_size, self.model.output_size) != (
        vocab, task.output_size):
      raise ConfigError(
          f'the model has input_size={self.model.input_size},'
          f' output_size={self.model.output_size}; task {self.task.name!r}'
          f' with this encoding needs {vocab} and {task.output_size}.')
    if not t.phases or any(p.steps < 1 for p in t.phases):
      raise ConfigError('every training phase needs at least one step.')
    self.phase_models()  # Each phase's config is valid.
    _at_least(1, num_seeds=t.num_seeds, batch_size=t.batch_size,
              sequence_length=t.curriculum.max_length,
              validate_every=t.validate_every, log_frequency=t.log_every,
              checkpoint_every=t.checkpoint_every,
              bucket_width=t.bucket_width, test_length=e.test_length)
    for name, value in (('lr', t.learning_rate), ('wd', t.weight_decay)):
      if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f'--{name} must be a finite number >= 0, got'
                          f' {value}.')
    if not 0 < t.adam_beta1_inv <= 1:
      raise ConfigError(
          f'--adam_beta1_inv must be in (0, 1], got {t.adam_beta1_inv}.')
    if t.seed is not None and not 0 <= t.seed <= 2**31 - t.num_seeds:
      raise ConfigError(f'--seed must be in [0, 2**31 - --num_seeds], got'
                        f' {t.seed}.')
    if not 1 <= self.validation_length <= t.curriculum.max_length:
      raise ConfigError(
          '--validation_length must be in [1, --sequence_length='
          f'{t.curriculum.max_length}] (validation never uses lengths beyond'
          ' the training range).')
    if t.early_stopping_accuracy is not None:
      if not t.validate:
        raise ConfigError('--early_stopping_accuracy needs --validate (it'
                          ' stops on validation accuracy).')
      if not 0 < t.early_stopping_accuracy <= 1:
        raise ConfigError('--early_stopping_accuracy must be in (0, 1], got'
                          f' {t.early_stopping_accuracy}.')
    if t.early_stopping_patience < 1:
      raise ConfigError('--early_stopping_patience must be >= 1, got'
                        f' {t.early_stopping_patience}.')
    t.curriculum.build()
    if e.test_length < t.curriculum.max_length + 2:
      raise ConfigError(
          f'--test_length={e.test_length} must be at least --sequence_length'
          f' + 2 = {t.curriculum.max_length + 2}: the score averages lengths'
          f' {t.curriculum.max_length + 2}..test_length, as the original'
          ' does.')
    for length in (t.curriculum.max_length, e.test_length):
      if task.max_supported_length(task.padded_length(length)) < length:
        raise ConfigError(f'task {self.task.name!r} cannot make strings of'
                          f' length {length}.')
    if self.encoding.computation_steps_mult and not self.encoding.include_eos:
      raise ConfigError('--computation_steps_mult needs --include_eos=1.')
    if self.encoding.computation_steps_mult < 0:
      raise ConfigError('--computation_steps_mult must be >= 0, got'
                        f' {self.encoding.computation_steps_mult}.')
    if e.protocol not in PROTOCOLS:
      raise ConfigError(f'--eval_protocol must be one of {PROTOCOLS}, got'
                        f' {e.protocol!r}.')
    if e.num_strings < 64 or e.num_strings % 64:
      raise ConfigError('--eval_num_strings must be a positive multiple of'
                        f' 64, got {e.num_strings}.')
    if e.protocol == 'prefix' and not self._prefix_applies():
      raise ConfigError('--eval_protocol=prefix needs a causal model'
                        ' (--is_causal=1, or an RNN) and --include_eos=0.')

  def to_dict(self) -> dict[str, Any]:
    return {
        'task': {'name': self.task.name, 'kwargs': dict(self.task.kwargs)},
        'architecture': self.architecture,
        'model': dataclasses.asdict(self.model),
        'training': {**dataclasses.asdict(self.training), 'phases': [
            {'name': p.name, 'steps': p.steps,
             'model_overrides': dict(p.model_overrides)}
            for p in self.training.phases]},
        'encoding': dataclasses.asdict(self.encoding),
        'evaluation': dataclasses.asdict(self.evaluation),
    }

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> 'ExperimentConfig':
    """The config of `to_dict`; ConfigError for a missing or unknown key."""
    try:
      entry = registry.model_entry(data['architecture'])
      training = dict(data['training'])
      training['phases'] = tuple(PhaseConfig(**p)
                                 for p in training['phases'])
      training['curriculum'] = CurriculumConfig(**training['curriculum'])
      return cls(task=TaskConfig(**data['task']),
                 architecture=data['architecture'],
                 model=entry.config_from_json(data['model']),
                 training=TrainingConfig(**training),
                 encoding=input_encoding.InputEncoding(**data['encoding']),
                 evaluation=EvaluationConfig(**data['evaluation']))
    except KeyError as e:
      raise ConfigError(f'the experiment config lacks {e}.') from None
    except (TypeError, ValueError) as e:
      raise ConfigError(f'the experiment config is not valid: {e}') from None

  @classmethod
  def from_json(cls, path_or_text: str) -> 'ExperimentConfig':
    """A config from JSON text or from the path of a file holding it."""
    text = path_or_text
    if not path_or_text.lstrip().startswith('{'):
      with open(path_or_text) as f:
        text = f.read()
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise ConfigError(f'the experiment config is not JSON: {e}') from None
    return cls.from_dict(data)


def _at_least(minimum: int, **values: int) -> None:
  for name, value in values.items():
    if value < minimum:
      raise ConfigError(f'--{name} must be >= {minimum}, got {value}.')


def load_json_file(path: str) -> dict[str, Any]:
  """A JSON file's content; ConfigError (one line) when unreadable."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ConfigError(f'cannot read {path}: {e}') from None
