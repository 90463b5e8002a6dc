"""The CLI's flags: the original's (names, meanings, defaults) and ours, read here only.

Importing this module defines them, so the original README command and every
published sweep file parse unchanged. Bounds and choices are declared on the
flags, so a bad value fails at parse time; `to_config` turns the values (with
a `--preset` under them) into an `ExperimentConfig`. The registries add each
model's and task's own flags (e.g. the block-recurrent `--brt_*`).
"""

from collections.abc import Mapping
from typing import Any

from absl import flags

from experiments import config as config_lib
from experiments import presets
from experiments import registry
from training import input_encoding

FLAGS = flags.FLAGS
_POSITIVE = dict(lower_bound=1)
_COUNT = dict(lower_bound=0)

# The original's flags.
flags.DEFINE_integer('batch_size', 128, 'Training batch size.', **_POSITIVE)
flags.DEFINE_integer('sequence_length', 40,
                     'Longest training length (uniform over 1..this).',
                     **_POSITIVE)
flags.DEFINE_enum('task', 'parity_check', sorted(registry.TASKS), 'Task.')
flags.DEFINE_enum('architecture', 'rnn', sorted(registry.MODELS),
                  'Model (my_staircase is the original name of the staircase'
                  ' model).')
flags.DEFINE_integer(
    'computation_steps_mult', 0,
    'Computation tokens appended per input token (needs include_eos).',
    **_COUNT)
flags.DEFINE_integer('seed', None, 'Seed; random when unset.', lower_bound=0,
                     upper_bound=2**31 - 1)
flags.DEFINE_float('lr', 1e-5, 'AdamW learning rate.', lower_bound=0)
flags.DEFINE_float('wd', 0.0, 'Decoupled weight decay (every parameter).',
                   lower_bound=0)
flags.DEFINE_float('adam_beta1_inv', 0.1, 'AdamW b1 = 1 - adam_beta1_inv,'
                   ' in (0, 1].', upper_bound=1)
flags.register_validator('adam_beta1_inv', lambda v: v > 0,
                         '--adam_beta1_inv must be in (0, 1].')
flags.DEFINE_integer(
    'train_steps', 0,
    'Steps in the first phase (parallel mode for staircase).', **_COUNT)
flags.DEFINE_integer('test_length', 500, 'Longest evaluation length.',
                     **_POSITIVE)
flags.DEFINE_integer('num_layers', None,
                     'Layers (Transformer) or total layer applications.',
                     **_POSITIVE)
flags.DEFINE_integer('embed_size', 32, 'Model width (RNN hidden size).',
                     **_POSITIVE)
flags.DEFINE_integer(
    'include_eos', 1, '1: append an end marker and read the answer there.',
    lower_bound=0, upper_bound=1)
flags.DEFINE_integer('num_heads', 4, 'Attention heads.', **_POSITIVE)
flags.DEFINE_float('dropout', 0.0, 'Dropout rate, in [0, 1).', lower_bound=0)
flags.register_validator('dropout', lambda v: v < 1,
                         '--dropout must be in [0, 1).')
flags.DEFINE_integer('group_size', 1, 'Distinct layers in the shared group.',
                     **_POSITIVE)
flags.DEFINE_integer(
    'num_recurrent_calls', None,
    'Passes of every token through the group (num_layers / group_size).',
    **_POSITIVE)
flags.DEFINE_integer('is_causal', 0, '1: causal attention mask.',
                     lower_bound=0, upper_bound=1)
flags.DEFINE_enum('norm_type', 'prenorm', ['prenorm', 'postnorm'],
                  'Where the layer norms sit.')
flags.DEFINE_enum(
    'init_type', 'pytorch', ['pytorch', 'independent'],
    "'pytorch': the original's initialisation (identical initial weights for"
    " the layers of a stack); 'independent': each layer drawn separately.")
flags.DEFINE_bool('load_pretrain', False,
                  'Unsupported in the original; rejected.')
flags.register_validator(
    'load_pretrain', lambda v: not v,
    '--load_pretrain is not supported (nor was it by the original); resume'
    ' by rerunning the same command.')
flags.DEFINE_integer('fix_staircase_size_forward', -1,
                     'Staircase chunk size C (>= 1; -1: unset).')
flags.register_validator(
    'fix_staircase_size_forward', lambda v: v == -1 or v >= 1,
    '--fix_staircase_size_forward (chunk size) must be >= 1 (or -1, unset).')
flags.DEFINE_integer(
    'staircase_cache_steps', 0,
    'Finished chunks kept as extra keys/values: 0 none, k the last k, -1 all.',
    lower_bound=-1)
flags.DEFINE_integer(
    'second_training_steps', 0,
    'Steps after the switch to staircase mode (staircase model).', **_COUNT)
flags.DEFINE_bool('diagonal', False,
                  'Staircase: also attend to same-depth earlier states.')
flags.DEFINE_integer('chunk_size', None,
                     'Block-recurrent Transformer block width.', **_POSITIVE)
flags.DEFINE_integer('num_state_vectors', None,
                     'Block-recurrent Transformer state vectors.',
                     **_POSITIVE)
flags.DEFINE_integer('recurrent_layer_index', None,
                     'Block-recurrent Transformer recurrent layer (1-based).',
                     **_POSITIVE)
flags.DEFINE_integer(
    'max_sequence_length', 512,
    'Block-recurrent Transformer: must be a multiple of --chunk_size (the'
    " original's only use of it); never limits the input length.",
    **_POSITIVE)
flags.DEFINE_integer('num_parity_automata', 2,
                     'parallel_parity_check: number of automata.',
                     **_POSITIVE)
flags.DEFINE_bool('explicit_tokens_parity', True,
                  'parallel_parity_check: a separate pair of symbols per'
                  ' automaton.')
flags.DEFINE_bool('use_wandb', False,
                  'Log to Weights & Biases (optional dependency).')
flags.DEFINE_string('wandb_display_name', None, 'wandb run name.')
flags.DEFINE_string('wandb_group', None, 'wandb group.')
flags.DEFINE_string('wandb_project', None, 'wandb project.')
flags.DEFINE_bool(
    'increase_curriculum', False,
    'Regularly increasing length curriculum: --curriculum=regular_increase.')
flags.DEFINE_bool('validate', False,
                  'Validate every --validate_every steps on lengths 1..'
                  'validation_length; evaluate the best checkpoint.')
flags.DEFINE_integer('validation_length', None,
                     'Longest validation length (sequence_length).',
                     **_POSITIVE)
flags.DEFINE_bool('profile_model', False,
                  'Print milliseconds per training step.')
flags.DEFINE_string('out_dir', 'out', 'Results folder.')

# Ours: the run's cadence, the curriculum, seeds and evaluation.
flags.DEFINE_string('preset', None,
                    f'Named configuration: one of {sorted(presets.PRESETS)};'
                    ' explicit flags override it.')
flags.register_validator(
    'preset', lambda v: v is None or v in presets.PRESETS,
    f'--preset must be one of {sorted(presets.PRESETS)}.')
flags.DEFINE_enum(
    'eval_protocol', 'auto', list(config_lib.PROTOCOLS),
    "'seed': the original protocol (512 fresh strings per length); 'prefix':"
    ' one pass scores every prefix (causal models reading the answer at the'
    " last input token); 'auto': prefix when it applies, else seed.")
flags.DEFINE_integer(
    'eval_num_strings', 512,
    'Strings scored per length at the final evaluation (a multiple of 64;'
    ' the original scores 512).', **_POSITIVE)
flags.DEFINE_integer('checkpoint_every', 1000, 'Steps between checkpoints.',
                     **_POSITIVE)
flags.DEFINE_integer('log_frequency', 100,
                     'Steps between metrics.jsonl lines.', **_POSITIVE)
flags.DEFINE_integer('validate_every', 1000, 'Steps between validations.',
                     **_POSITIVE)
flags.DEFINE_integer(
    'bucket_width', 10,
    'Training lengths are padded up to multiples of this (rounded to the'
    ' chunk or block width): one compiled program per bucket. Smaller means'
    ' less padding and more programs. Unused by models that skip padding'
    ' (the staircase mode): one program serves every length.', **_POSITIVE)
flags.DEFINE_float(
    'early_stopping_accuracy', None, 'Stop training once validation accuracy'
    ' (every seed\'s) is at least this for --early_stopping_patience'
    ' validations in a row; needs --validate. Off by default, as in the'
    ' original.', lower_bound=0, upper_bound=1)
flags.DEFINE_integer('early_stopping_patience', 1,
                     'Validations in a row for --early_stopping_accuracy.',
                     **_POSITIVE)
flags.DEFINE_integer(
    'num_seeds', 1, 'Runs of this configuration trained together in one'
    ' program: seeds --seed, --seed+1, ..., each as it would train alone.',
    **_POSITIVE)
flags.DEFINE_enum(
    'curriculum', 'uniform', list(config_lib.CURRICULA),
    "Training lengths: 'uniform' over 1..--sequence_length (the original's),"
    " 'fixed' (always --sequence_length), 'reverse_exponential'"
    " (P(length) ~ --curriculum_tau ** length) or 'regular_increase'"
    ' (from --curriculum_initial_length, + --curriculum_increase_amount'
    ' every --curriculum_increase_frequency steps, up to --sequence_length).')
flags.DEFINE_float('curriculum_tau', 0.9, 'reverse_exponential: tau > 0.')
flags.register_validator('curriculum_tau', lambda v: v > 0,
                         '--curriculum_tau must be > 0.')
flags.DEFINE_integer('curriculum_initial_length', 1,
                     'regular_increase: the first length.', **_POSITIVE)
flags.DEFINE_integer('curriculum_increase_frequency', 1000,
                     'regular_increase: steps between increases.',
                     **_POSITIVE)
flags.DEFINE_integer('curriculum_increase_amount', 1,
                     'regular_increase: length added at each increase.',
                     **_COUNT)
flags.DEFINE_bool('curriculum_sample_all_lengths', False,
                  'regular_increase: draw among every length reached so'
                  ' far instead of the newest.')

_DEFINE = {'enum': lambda name, default, choices, help_text:
           flags.DEFINE_enum(name, default, list(choices), help_text),
           'string': lambda name, default, _, help_text:
           flags.DEFINE_string(name, default, help_text),
           'int': lambda name, default, _, help_text:
           flags.DEFINE_integer(name, default, help_text),
           'float': lambda name, default, _, help_text:
           flags.DEFINE_float(name, default, help_text),
           'bool': lambda name, default, _, help_text:
           flags.DEFINE_bool(name, default, help_text)}


def _define_registry_flags() -> None:
  """The flags that models and tasks declare for themselves."""
  specs: dict[str, registry.FlagSpec] = {}
  for entry in [*registry.MODELS.values(), *registry.TASKS.values()]:
    specs.update(entry.cli_flags)
  for name, (kind, default, choices, help_text) in specs.items():
    if name not in FLAGS:
      _DEFINE[kind](name, default, choices, help_text)


_define_registry_flags()


def flag_values(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Every flag of this module by name: explicit ones, then the preset's
  (or `overrides`'), then defaults. Reads FLAGS; never writes them."""
  preset = dict(presets.PRESETS.get(FLAGS.preset, {}) if FLAGS.preset
                else {})
  preset.update(overrides or {})
  names = {fl.name for fl in FLAGS.get_key_flags_for_module(__name__)}
  unknown = sorted(set(preset) - names)
  if unknown:
    raise config_lib.ConfigError(
        f'--preset={FLAGS.preset} sets unknown flags {unknown}.')
  return {name: (FLAGS[name].value if FLAGS[name].present or name not in preset
                 else _parsed(name, preset[name])) for name in sorted(names)}


def _parsed(name: str, value: Any) -> Any:
  """A preset's value; text (as a sweep file gives it) is read by the
  flag's own parser, as on the command line."""
  if not isinstance(value, str):
    return value
  try:
    return FLAGS[name].parser.parse(value)
  except ValueError as e:
    raise config_lib.ConfigError(
        f'--preset={FLAGS.preset} gives --{name}={value}: {e}') from None


def to_config(values: Mapping[str, Any]) -> config_lib.ExperimentConfig:
  """The ExperimentConfig of flag values (`flag_values()`); ConfigError
  names the flag to change."""
  v = values
  try:
    task_entry = registry.task_entry(v['task'])
    model_entry = registry.model_entry(v['architecture'])
  except ValueError as e:
    raise config_lib.ConfigError(str(e)) from None
  task_config = config_lib.TaskConfig(v['task'],
                                      task_entry.kwargs_from_flags(v))
  task = task_config.build()
  encoding = input_encoding.InputEncoding(bool(v['include_eos']),
                                          v['computation_steps_mult'])
  try:
    model = model_entry.config_from_flags(v, encoding.vocab_size(task),
                                          task.output_size)
  except ValueError as e:
    raise config_lib.ConfigError(str(e)) from None
  phases = tuple(
      config_lib.PhaseConfig(name, steps, overrides)
      for name, steps, overrides in model_entry.training_phases(
          model, v['train_steps'], v['second_training_steps'])
      if steps > 0)
  curriculum = v['curriculum']
  if v['increase_curriculum']:
    if curriculum not in ('uniform', 'regular_increase'):
      raise config_lib.ConfigError(
          f'--increase_curriculum means --curriculum=regular_increase; drop'
          f' one of it and --curriculum={curriculum}.')
    curriculum = 'regular_increase'
  training = config_lib.TrainingConfig(
      phases=phases, seed=v['seed'], num_seeds=v['num_seeds'],
      batch_size=v['batch_size'], learning_rate=v['lr'],
      weight_decay=v['wd'], adam_beta1_inv=v['adam_beta1_inv'],
      curriculum=config_lib.CurriculumConfig(
          kind=curriculum, max_length=v['sequence_length'],
          tau=v['curriculum_tau'],
          initial_length=v['curriculum_initial_length'],
          increase_frequency=v['curriculum_increase_frequency'],
          increase_amount=v['curriculum_increase_amount'],
          sample_all_lengths=v['curriculum_sample_all_lengths']),
      validate=v['validate'], validation_length=v['validation_length'],
      validate_every=v['validate_every'], log_every=v['log_frequency'],
      checkpoint_every=v['checkpoint_every'],
      bucket_width=v['bucket_width'],
      early_stopping_accuracy=v['early_stopping_accuracy'],
      early_stopping_patience=v['early_stopping_patience'])
  config = config_lib.ExperimentConfig(
      task=task_config, architecture=v['architecture'], model=model,
      training=training, encoding=encoding,
      evaluation=config_lib.EvaluationConfig(v['eval_protocol'],
                                             v['test_length'],
                                             v['eval_num_strings']))
  config.validate()
  return config


def given_flags() -> set[str]:
  """The flags set on the command line or by the preset."""
  preset = presets.PRESETS.get(FLAGS.preset, {}) if FLAGS.preset else {}
  return {fl.name for fl in FLAGS.get_key_flags_for_module(__name__)
          if fl.present or fl.name in preset}


def ignored_flag_warnings(values: Mapping[str, Any],
                          given: set[str]) -> list[str]:
  """A warning for each given model or task flag that the chosen
  architecture or task does not read (the original accepts them all)."""
  model_entry = registry.model_entry(values['architecture'])
  task_entry = registry.task_entry(values['task'])
  recorder = _ReadRecorder(values)
  try:
    task = task_entry.build(**task_entry.kwargs_from_flags(recorder))
    encoding = input_encoding.InputEncoding(bool(values['include_eos']),
                                            values['computation_steps_mult'])
    model = model_entry.config_from_flags(
        recorder, encoding.vocab_size(task), task.output_size)
  except ValueError:
    return []
  own = _MODEL_FLAGS | {name for entry in [*registry.MODELS.values(),
                                           *registry.TASKS.values()]
                        for name in [*entry.cli_flags,
                                     *getattr(entry, 'arguments', {})]}
  unread = sorted((given & own) - recorder.read)
  warnings = [f'--{name} is ignored by --architecture={values["architecture"]}'
              f' --task={values["task"]}.' for name in unread]
  if values['dropout'] > 0 and getattr(model, 'apply_dropout', True) is False:
    warnings.append(
        f"--dropout={values['dropout']:g} is ignored by"
        f" --architecture={values['architecture']}, as in the original; pass"
        ' --brt_apply_dropout to use it.')
  return warnings


# The original's flags that configure a model.
_MODEL_FLAGS = {
    'embed_size', 'num_heads', 'num_layers', 'dropout', 'group_size',
    'num_recurrent_calls', 'is_causal', 'norm_type', 'init_type',
    'fix_staircase_size_forward', 'staircase_cache_steps', 'diagonal',
    'chunk_size', 'num_state_vectors', 'recurrent_layer_index',
    'max_sequence_length'}


class _ReadRecorder(Mapping):
  """A read-only view of flag values that remembers which were read."""

  def __init__(self, values: Mapping[str, Any]):
    self._values = values
    self.read: set[str] = set()

  def __getitem__(self, name: str) -> Any:
    self.read.add(name)
    return self._values[name]

  def __iter__(self):
    return iter(self._values)

  def __len__(self) -> int:
    return len(self._values)
