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
MAX_SEQUENCE_LENGTH = flags.DEFINE_integer(
    'max_sequence_length', 512,
    'Block-recurrent Transformer: must be a multiple of --chunk_size (the'
    " original's only use of it); never limits the input length.")
BRT_VARIANT = flags.DEFINE_string(
    'brt_variant', 'seed',
    "Block-recurrent Transformer: 'seed' (the original's model, quirks"
    " included) or 'meliad' (Hutchins et al.'s configuration, rotary instead"
    ' of the T5 bias). The --brt_* flags below override single choices.')
_BRT_HELP = {
    'token_window': "'block_xl': the previous block and the causal current"
                    " block, self included (seed); 'sliding_exclusive': the C"
                    ' tokens strictly before the query (meliad).',
    'first_block_memory': "'absent': the first block has no memory (seed);"
                          " 'zeros': a zero memory it attends to (meliad).",
    'kv_heads': "'1': one key/value head shared by all heads (seed); 'all':"
                ' one per head (meliad).',
    'position': "'rope_xpos' (seed), 'rope' (meliad, for its T5 bias) or"
                " 'none'.",
    'qk_norm': "Where queries/keys are l2-normalised: 'recurrent_layer'"
               " (seed), 'all_layers' (meliad) or 'none'.",
    'qk_temperature': "Logit scale with the l2 norm: 'inv_sqrt_dh' (seed),"
                      " 'fixed8' (the package's unused setting) or"
                      " 'learned_per_head' (meliad).",
    'norm': "'layernorm' (mean-centred, eps 1e-5; seed) or 'rmsnorm' (eps"
            ' 1e-6; meliad).',
    'ffn': "'geglu' (hidden 8D/3; seed) or 'relu' (hidden 4D; meliad).",
    'state_out': "State update: 'two_linear' (seed) or 'one_linear'"
                 ' (meliad).',
    'state_cross_span': "What the state attends to: 'block' (seed) or"
                        " 'block_and_memory' (meliad).",
}
BRT_CHOICES = {
    name: flags.DEFINE_string(f'brt_{name}', None,
                              f'Block-recurrent Transformer: {help_text}'
                              ' Unset: the --brt_variant value.')
    for name, help_text in _BRT_HELP.items()}
BRT_INIT_STATE_STD = flags.DEFINE_float(
    'brt_init_state_std', None,
    'Block-recurrent Transformer: std of the learned initial state (unset:'
    ' the variant: 1/sqrt(embed_size) for seed, 0.1 for meliad).')
BRT_APPLY_DROPOUT = flags.DEFINE_bool(
    'brt_apply_dropout', None,
    'Block-recurrent Transformer: apply --dropout (the original ignores it)'
    ' on the normalised attention input, the attention weights, the FFN'
    ' output and before the output projection. Unset: the variant (meliad'
    ' on).')
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
      diagonal=DIAGONAL.value, chunk_size=CHUNK_SIZE.value,
      num_state_vectors=NUM_STATE_VECTORS.value,
      recurrent_layer_index=RECURRENT_LAYER_INDEX.value,
      max_sequence_length=MAX_SEQUENCE_LENGTH.value,
      brt_variant=BRT_VARIANT.value, brt_options=_brt_options())


def _brt_options() -> tuple[tuple[str, object], ...]:
  """The --brt_* flags that were given, as config fields."""
  options = [(name, holder.value) for name, holder in BRT_CHOICES.items()]
  options += [('init_state_std', BRT_INIT_STATE_STD.value),
              ('apply_dropout', BRT_APPLY_DROPOUT.value)]
  return tuple((name, value) for name, value in options if value is not None)


def task_kwargs() -> dict[str, object]:
  """Task-specific constructor arguments for the chosen task."""
  if TASK.value == 'parallel_parity_check':
    return {'num_automata': NUM_PARITY_AUTOMATA.value,
            'explicit_tokens': EXPLICIT_TOKENS_PARITY.value}
  return {}
