"""The registries: `--architecture` names to model entries, `--task` names to task entries.

Every entry describes itself, so nothing outside this file compares
architecture or task names. A new model is one file and one line here (or one
`register_model` call anywhere, e.g. in a test):

  register_model('gru', gru.GRUConfig)

Its config class (a frozen dataclass whose first two fields are
`input_size` and `output_size`) provides:
- `from_flags(values, input_size, output_size, **fixed)`, a classmethod:
  the config from the CLI's flag values (a mapping of flag names, see
  `experiments/original_flags.py`), raising ValueError that names the flag;
- `make(rngs) -> nnx.Module`: the module, whose `__call__(input_BL, length_B,
  key)` returns logits `(B, L, O)`;
- `is_causal` and `length_multiple` (attributes or properties): whether a
  position never sees later ones, and the multiple that padded training
  lengths must be;
- optionally `skips_padding` (default False): the model's cost follows the
  batch's longest real string, not its padded shape, so one compiled program
  serves every length (no length buckets);
- optionally a `dropout` field (its rate, 0 <= rate < 1): in training a
  nonzero rate becomes a traced input of the step, so that runs differing
  only in it share one compiled program (see `neural_networks/dropout.py`);
- `flops(batch_size, length)`: forward FLOPs, for the benchmark;
- `run_name_parts()`: short tags for the default run name;
- optionally `training_phases(train_steps, second_training_steps)`: the
  `(name, steps, config overrides)` of each phase (default: one phase named
  'default' of `train_steps + 1 + second_training_steps` steps, the original's
  count).
A module may declare its own flags as `cli_flags`: name -> `(kind, default,
choices, help)` with kind 'enum', 'string', 'int', 'float' or 'bool';
`experiments/original_flags.py` defines them and passes their values to
`from_flags`. `torch_class` names the original PyTorch class whose weights
`neural_networks/torch_import.py` loads into this model.

A task entry is its class (a frozen dataclass of `tasks.task.Task`), its
level ('regular' today), and its arguments: the flags that set its fields.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

from neural_networks import block_recurrent
from neural_networks import dropout
from neural_networks import pure
from neural_networks import rnn
from neural_networks import staircase
from neural_networks import transformer
from tasks import task as task_lib
from tasks.regular import cycle_navigation
from tasks.regular import dyck
from tasks.regular import even_pairs
from tasks.regular import first_symbol
from tasks.regular import flip_flop
from tasks.regular import modular_arithmetic
from tasks.regular import parallel_parity_check
from tasks.regular import parity_check
from tasks.regular import tomita
from tasks.regular import word_problem

FlagSpec = tuple[str, Any, tuple[Any, ...] | None, str]  # kind, default, choices, help


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """An architecture: its config class and what the harness needs of it."""

  name: str
  config_class: type
  fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  cli_flags: Mapping[str, FlagSpec] = dataclasses.field(default_factory=dict)
  torch_class: str | None = None

  def config_from_flags(self, values: Mapping[str, Any], input_size: int,
                        output_size: int):
    """The model config of these flag values; ValueError names a bad flag."""
    return self.config_class.from_flags(values, input_size, output_size,
                                        **self.fixed)

  def training_phases(self, config, train_steps: int,
                      second_training_steps: int
                      ) -> tuple[tuple[str, int, dict[str, Any]], ...]:
    """`(name, steps, config overrides)` of each training phase."""
    if hasattr(config, 'training_phases'):
      return config.training_phases(train_steps, second_training_steps)
    return (('default', train_steps + 1 + second_training_steps, {}),)

  @staticmethod
  def build(config) -> pure.PureModel:
    """The model of `config` as a pure `init`/`apply` pair."""
    return pure.from_nnx(config.make)

  @classmethod
  def build_for_training(cls, config) -> tuple[pure.PureModel, float | None]:
    """The training model of `config` and the dropout rate to feed its step
    as a traced value. A nonzero rate builds the model with `dropout.ON`, so
    that one program serves every nonzero rate. A rate of 0 (or no `dropout`
    field) builds the model as it is, with no dropout in its program: at the
    main job's size, masks drawn at rate 0 cost 10% of the step."""
    if not getattr(config, 'dropout', 0.0):
      return cls.build(config), None
    return (cls.build(dataclasses.replace(config, dropout=dropout.ON)),
            config.dropout)

  def config_from_json(self, fields: Mapping[str, Any]):
    return self.config_class(**fields)


@dataclasses.dataclass(frozen=True)
class TaskEntry:
  """A task: its class, level and the flags that set its arguments."""

  name: str
  task_class: type
  level: str = 'regular'
  # Flag name -> the task's field it sets (the flags of the original CLI).
  arguments: Mapping[str, str] = dataclasses.field(default_factory=dict)
  # Flags of this task that the original CLI lacks: name -> FlagSpec.
  cli_flags: Mapping[str, FlagSpec] = dataclasses.field(default_factory=dict)
  # Arguments fixed by the name (`tomita_3`: grammar 3).
  fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def kwargs_from_flags(self, values: Mapping[str, Any]) -> dict[str, Any]:
    return {field: values[flag] for flag, field in self.arguments.items()}

  def build(self, **kwargs) -> task_lib.Task:
    return self.task_class(**self.fixed, **kwargs)


MODELS: dict[str, ModelEntry] = {}
TASKS: dict[str, TaskEntry] = {}


def register_model(name: str, config_class: type, *,
                   cli_flags: Mapping[str, FlagSpec] | None = None,
                   torch_class: str | None = None, **fixed) -> ModelEntry:
  """Registers an architecture; `fixed` are extra `from_flags` arguments."""
  if name in MODELS:
    raise ValueError(f'--architecture={name!r} is already registered.')
  MODELS[name] = ModelEntry(name, config_class, fixed, cli_flags or {},
                            torch_class)
  return MODELS[name]


def register_task(name: str, task_class: type, *, level: str = 'regular',
                  arguments: Mapping[str, str] | None = None,
                  cli_flags: Mapping[str, FlagSpec] | None = None,
                  fixed: Mapping[str, Any] | None = None) -> TaskEntry:
  """Registers a task; `arguments` maps flag names to its fields, `fixed`
  gives fields that the name implies."""
  if name in TASKS:
    raise ValueError(f'--task={name!r} is already registered.')
  TASKS[name] = TaskEntry(name, task_class, level, arguments or {},
                          cli_flags or {}, fixed or {})
  return TASKS[name]


def model_entry(name: str) -> ModelEntry:
  if name not in MODELS:
    raise ValueError(f'--architecture={name!r} is unknown; choose one of'
                     f' {sorted(MODELS)}.')
  return MODELS[name]


def task_entry(name: str) -> TaskEntry:
  if name not in TASKS:
    raise ValueError(f'--task={name!r} is unknown; choose one of'
                     f' {sorted(TASKS)}.')
  return TASKS[name]


# `my_staircase` is the original's name for the staircase architecture.
register_model('my_staircase', staircase.StaircaseConfig,
               torch_class='MyStaircaseTransformer')
register_model('staircase', staircase.StaircaseConfig,
               torch_class='MyStaircaseTransformer')
register_model('transformer', transformer.TransformerConfig,
               torch_class='Transformer')
register_model('universal_transformer', transformer.TransformerConfig,
               torch_class='UniversalTransformer', universal=True)
register_model('rnn', rnn.RNNConfig, torch_class='ElmanRNN')
register_model('lstm', rnn.RNNConfig, cell='lstm')
register_model('brt', block_recurrent.BlockRecurrentConfig,
               cli_flags=block_recurrent.CLI_FLAGS,
               torch_class='BlockRecurrentTransformerWrapper')

register_task('parity_check', parity_check.ParityCheck)
register_task('even_pairs', even_pairs.EvenPairs)
register_task('cycle_navigation', cycle_navigation.CycleNavigation)
register_task('modular_arithmetic', modular_arithmetic.ModularArithmetic)
register_task('parallel_parity_check',
              parallel_parity_check.ParallelParityCheck,
              arguments={'num_parity_automata': 'num_automata',
                         'explicit_tokens_parity': 'explicit_tokens'})
# The state-tracking suite: automata (tasks/regular/automaton.py) and groups.
register_task('word_problem', word_problem.WordProblem,
              arguments={'group': 'group'}, cli_flags={'group': (
                  'string', 'S5', None, 'word_problem: the group, Z<n>, S<n>,'
                  ' A<n>, D<n> or a product such as A4xZ5.')})
register_task('flip_flop', flip_flop.FlipFlop)
register_task('first', first_symbol.FirstSymbol)
for _grammar in tomita.GRAMMARS:
  register_task(f'tomita_{_grammar}', tomita.Tomita,
                fixed={'grammar': _grammar})
register_task('dyck', dyck.Dyck,
              arguments={'dyck_brackets': 'brackets',
                         'dyck_depth': 'depth'}, cli_flags={
                  'dyck_brackets': ('int', 2, None,
                                    'dyck: the number of bracket kinds.'),
                  'dyck_depth': ('int', 3, None,
                                 'dyck: the deepest nesting accepted.')})
