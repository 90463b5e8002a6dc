"""The original CLI's flags, with its names, meanings and defaults.

Importing this module defines them, so the original README command and every
published sweep file (`../shared/seed_sweeps/`) parse unchanged. Only entry
points import it; library code never reads flags.
"""

from absl import flags

from experiments import constants
from experiments import model_factory

BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Training batch size.')
SEQUENCE_LENGTH = flags.DEFINE_integer(
    'sequence_length', 40, 'Longest training length (uniform over 1..this).')
TASK = flags.DEFINE_string(
    'task', 'parity_check', f'Task: one of {sorted(constants.TASK_BUILDERS)}.')
ARCHITECTURE = flags.DEFINE_string(
    'architecture', 'rnn',
    f'Model: one of {model_factory.ARCHITECTURES} (my_staircase is the'
    ' original name of the staircase model).')
COMPUTATION_STEPS_MULT = flags.DEFINE_integer(
    'computation_steps_mult', 0,
    'Computation tokens appended per input token (needs include_eos).')
SEED = flags.DEFINE_integer('seed', None, 'Seed; random when unset.')
LR = flags.DEFINE_float('lr', 1e-5, 'AdamW learning rate.')
WD = flags.DEFINE_float('wd', 0.0, 'Decoupled weight decay (every parameter).')
ADAM_BETA1_INV = flags.DEFINE_float('adam_beta1_inv', 0.1,
                                    'AdamW b1 = 1 - adam_beta1_inv.')
TRAIN_STEPS = flags.DEFINE_integer(
    'train_steps', 0, 'Steps in the first phase (parallel mode for staircase).')
TEST_LENGTH = flags.DEFINE_integer('test_length', 500,
                                   'Longest evaluation length.')
NUM_LAYERS = flags.DEFINE_integer(
    'num_layers', None, 'Layers (Transformer) or total layer applications.')
EMBED_SIZE = flags.DEFINE_integer('embed_size', 32,
                                  'Model width (RNN hidden size).')
INCLUDE_EOS = flags.DEFINE_integer(
    'include_eos', 1, '1: append an end marker and read the answer there.')
NUM_HEADS = flags.DEFINE_integer('num_heads', 4, 'Attention heads.')
DROPOUT = flags.DEFINE_float('dropout', 0.0, 'Dropout rate.')
GROUP_SIZE = flags.DEFINE_integer('group_size', 1,
                                  'Distinct layers in the shared group.')
NUM_RECURRENT_CALLS = flags.DEFINE_integer(
    'num_recurrent_calls', None,
    'Passes of every token through the group (num_layers / group_size).')
IS_CAUSAL = flags.DEFINE_integer('is_causal', 0, '1: causal attention mask.')
NORM_TYPE = flags.DEFINE_string('norm_type', 'prenorm', 'prenorm or postnorm.')
INIT_TYPE = flags.DEFINE_string(
    'init_type', 'pytorch',
    "'pytorch': the original's initialisation (identical initial weights for"
    " the layers of a stack); 'independent': each layer drawn separately.")
LOAD_PRETRAIN = flags.DEFINE_bool('load_pretrain', False,
                                  'Unsupported in the original; rejected.')
FIX_STAIRCASE_SIZE_FORWARD = flags.DEFINE_integer(
    'fix_staircase_size_forward', -1, 'Staircase chunk size C.')
STAIRCASE_CACHE_STEPS = flags.DEFINE_integer(
    'staircase_cache_steps', 0,
    'Finished chunks kept as extra keys/values: 0 none, k the last k, -1 all.')
SECOND_TRAINING_STEPS = flags.DEFINE_integer(
    'second_training_steps', 0,
    'Steps after the switch to staircase mode (staircase model).')
DIAGONAL = flags.DEFINE_bool(
    'diagonal', False, 'Staircase: also attend to same-depth earlier states.')
CHUNK_SIZE = flags.DEFINE_integer('chunk_size', None,
                                  'Block-recurrent Transformer block width.')
NUM_STATE_VECTORS = flags.DEFINE_integer(
    'num_state_vectors', None, 'Block-recurrent Transformer state vectors.')
RECURRENT_LAYER_INDEX = flags.DEFINE_integer(
    'recurrent_layer_index', None,
    'Block-recurrent Transformer recurrent layer (1-based).')
NUM_PARITY_AUTOMATA = flags.DEFINE_integer(
    'num_parity_automata', 2, 'parallel_parity_check: number of automata.')
EXPLICIT_TOKENS_PARITY = flags.DEFINE_bool(
    'explicit_tokens_parity', True,
    'parallel_parity_check: a separate pair of symbols per automaton.')
USE_WANDB = flags.DEFINE_bool('use_wandb', False,
                              'Log to Weights & Biases (optional dependency).')
WANDB_DISPLAY_NAME = flags.DEFINE_string('wandb_display_name', None,
                                         'wandb run name.')
WANDB_GROUP = flags.DEFINE_string('wandb_group', None, 'wandb group.')
WANDB_PROJECT = flags.DEFINE_string('wandb_project', None, 'wandb project.')
INCREASE_CURRICULUM = flags.DEFINE_bool(
    'increase_curriculum', False, 'Regularly increasing length curriculum.')
VALIDATE = flags.DEFINE_bool('validate', False,
                             'Validate every 1000 steps on lengths 1..'
                             'validation_length; keep the best checkpoint.')
VALIDATION_LENGTH = flags.DEFINE_integer(
    'validation_length', None, 'Longest validation length (sequence_length).')
PROFILE_MODEL = flags.DEFINE_bool('profile_model', False,
                                  'Print milliseconds per step.')
OUT_DIR = flags.DEFINE_string('out_dir', 'out', 'Results folder.')


def model_flags() -> model_factory.ModelFlags:
  """The model flags' values (read only from entry points' main())."""
  return model_factory.ModelFlags(
      architecture=ARCHITECTURE.value, embed_size=EMBED_SIZE.value,
      num_heads=NUM_HEADS.value, num_layers=NUM_LAYERS.value,
      dropout=DROPOUT.value, group_size=GROUP_SIZE.value,
      num_recurrent_calls=NUM_RECURRENT_CALLS.value,
      is_causal=bool(IS_CAUSAL.value), norm_type=NORM_TYPE.value,
      init_type=INIT_TYPE.value,
      fix_staircase_size_forward=FIX_STAIRCASE_SIZE_FORWARD.value,
      staircase_cache_steps=STAIRCASE_CACHE_STEPS.value,
      diagonal=DIAGONAL.value)


def task_kwargs() -> dict[str, object]:
  """Task-specific constructor arguments for the chosen task."""
  if TASK.value == 'parallel_parity_check':
    return {'num_automata': NUM_PARITY_AUTOMATA.value,
            'explicit_tokens': EXPLICIT_TOKENS_PARITY.value}
  return {}
