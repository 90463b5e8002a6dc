"""CLI: re-evaluate a saved run at other lengths or with another protocol.

  python experiments/evaluate.py --run_dir=out/<run_name> --test_length=1000 \
    --eval_protocol=seed

Reads everything else from the run's config.json, restores the evaluated
checkpoint (the best-validated one when the run validated, else the latest)
and writes eval_<protocol>_L<test_length>.json and its plot into the run
folder (each seed's folder for a --num_seeds run, plus
summary_eval_<protocol>_L<test_length>.json/.md over the seeds). Runs on one
process.
"""

# Before anything runs JAX: CPU compiler settings (see the module).
from experiments import xla_cpu_flags  # pylint: disable=unused-import,g-bad-import-order

from collections.abc import Sequence

from absl import flags

from experiments import cli
from experiments import config
from experiments import run

_RUN_DIR = flags.DEFINE_string('run_dir', None, 'A run folder of example.py.')
_TEST_LENGTH = flags.DEFINE_integer(
    'test_length', None, 'Longest evaluation length (default: the run\'s).',
    lower_bound=1)
_EVAL_PROTOCOL = flags.DEFINE_enum(
    'eval_protocol', None, list(config.PROTOCOLS),
    "Evaluation protocol (default: the run's); see example.py --helpfull.")
_NUM_STRINGS = flags.DEFINE_integer(
    'eval_num_strings', None,
    "Strings scored per length, a multiple of 64 (default: the run's).",
    lower_bound=1)
_CHECKPOINT = flags.DEFINE_enum(
    'checkpoint', 'auto', ['auto', 'best', 'latest'],
    "Which checkpoint: 'auto' is best when the run validated, else latest.")
flags.mark_flag_as_required('run_dir')


def main(argv: Sequence[str]) -> None:
  del argv  # cli.call rejects extra arguments.
  result = run.evaluate_run(_RUN_DIR.value, test_length=_TEST_LENGTH.value,
                            protocol=_EVAL_PROTOCOL.value,
                            num_strings=_NUM_STRINGS.value,
                            checkpoint=_CHECKPOINT.value)
  cli.print_result(result)


if __name__ == '__main__':
  cli.run(main)
