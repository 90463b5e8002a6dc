"""A wandb sweep file: its fixed command flags, its parameters, and trials drawn as wandb draws them.

The published sweeps (`experiments/sweeps/`) are wandb sweep files. wandb
starts each trial as the file's `command` with `${args}` replaced by
`--name=value` for every parameter, each value written as text. Here a
trial is that mapping, `{flag name: text}` (True for a bare flag such as
`--validate`), which the flag parser reads as it reads the command line.
"""

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import yaml

# What the command passes only for wandb's own bookkeeping.
WANDB_FLAGS = ('use_wandb', 'wandb_project', 'wandb_group',
               'wandb_display_name')
METHODS = ('random', 'grid')
DISTRIBUTIONS = ('uniform', 'log_uniform_values', 'int_uniform', 'q_uniform')
FlagText = str | bool  # A flag's value as text, or True for a bare flag.


class SweepFileError(ValueError):
  """A sweep file that cannot be read or that this runner does not handle."""


def as_text(value: Any) -> str:
  """A parameter value as wandb writes it into the command."""
  return str(value)


@dataclasses.dataclass(frozen=True)
class SweepFile:
  """One sweep file, read."""

  path: str
  name: str
  method: str
  metric: Mapping[str, str]
  fixed: Mapping[str, FlagText]  # From `command`, wandb's flags dropped.
  parameters: Mapping[str, Mapping[str, Any]]

  def constant_parameters(self) -> dict[str, str]:
    """The parameters with one possible value (all of them in a `*_best`
    file), as text."""
    constant = {}
    for name, spec in self.parameters.items():
      if 'value' in spec:
        constant[name] = as_text(spec['value'])
      elif 'values' in spec and len(spec['values']) == 1:
        constant[name] = as_text(spec['values'][0])
    return constant

  def is_fixed_setting(self) -> bool:
    return len(self.constant_parameters()) == len(self.parameters)

  def num_grid_trials(self) -> int:
    return math.prod(len(_choices(spec)) for spec in self.parameters.values())

  def trial(self, seed: int, index: int) -> dict[str, FlagText]:
    """Trial `index` (0-based): the fixed flags and one draw of every
    parameter. A random trial depends only on `(seed, index)`, so a
    resumed sweep draws the same trials; a grid enumerates in file order."""
    if self.method == 'grid':
      if index >= self.num_grid_trials():
        raise SweepFileError(
            f'{self.path}: the grid has {self.num_grid_trials()} trials, so'
            f' there is no trial {index + 1}.')
      combos = itertools.product(*(_choices(spec)
                                   for spec in self.parameters.values()))
      values = next(itertools.islice(combos, index, None))
      drawn = dict(zip(self.parameters, map(as_text, values)))
    else:
      rng = np.random.default_rng([seed, index])
      drawn = {name: as_text(_draw(spec, rng))
               for name, spec in self.parameters.items()}
    return {**self.fixed, **drawn}


def load(path: str) -> SweepFile:
  """Reads and checks a sweep file; SweepFileError says what is wrong."""
  if not os.path.isfile(path):
    raise SweepFileError(f'{path} is not a file.')
  try:
    with open(path) as f:
      raw = yaml.safe_load(f)
  except (OSError, yaml.YAMLError) as e:
    reason = ' '.join(str(e).split())[:200]
    raise SweepFileError(f'{path} is not readable YAML ({reason}).') from None
  if not isinstance(raw, dict) or not isinstance(raw.get('parameters'), dict):
    raise SweepFileError(f'{path} has no `parameters` mapping: not a wandb'
                         ' sweep file.')
  method = raw.get('method', 'random')
  if method not in METHODS:
    raise SweepFileError(f'{path}: method {method!r} is not supported; use'
                         f' one of {METHODS}.')
  parameters = {}
  for name, spec in raw['parameters'].items():
    parameters[name] = _checked(path, name, spec, method)
  return SweepFile(
      path=path, name=str(raw.get('name', os.path.basename(path))),
      method=method, metric=dict(raw.get('metric') or {}),
      fixed=_command_flags(path, raw.get('command') or []),
      parameters=parameters)


def _command_flags(path: str, command: list[Any]) -> dict[str, FlagText]:
  """`--name value` and bare `--name` items of `command`, wandb's dropped."""
  flags = {}
  items = [str(item) for item in command
           if not str(item).startswith('${')]  # ${env}, ${program}, ${args}
  i = 0
  while i < len(items):
    item = items[i]
    if not item.startswith('--'):
      raise SweepFileError(f'{path}: command item {item!r} is not a flag.')
    name, has_value, value = item[2:].partition('=')
    if not has_value:
      if i + 1 < len(items) and not items[i + 1].startswith('--'):
        value, i = items[i + 1], i + 1
      else:
        value = True
    if name not in WANDB_FLAGS:
      flags[name] = value
    i += 1
  return flags


def _checked(path: str, name: str, spec: Any, method: str) -> dict[str, Any]:
  where = f'{path}: parameter {name!r}'
  if not isinstance(spec, dict):
    raise SweepFileError(f'{where} must be a mapping.')
  if 'value' in spec:
    return dict(spec)
  if 'values' in spec:
    if not isinstance(spec['values'], list) or not spec['values']:
      raise SweepFileError(f'{where}: `values` must be a non-empty list.')
    return dict(spec)
  distribution = spec.get('distribution')
  if distribution not in DISTRIBUTIONS:
    raise SweepFileError(f'{where}: distribution {distribution!r} is not'
                         f' supported; use value, values or one of'
                         f' {DISTRIBUTIONS}.')
  if method == 'grid':
    raise SweepFileError(f'{where}: a grid needs value or values, not a'
                         ' distribution.')
  try:  # YAML 1.1 reads 1e-5 (no dot) as text.
    low, high = float(spec['min']), float(spec['max'])
    q = float(spec.get('q', 1))
  except (KeyError, TypeError, ValueError):
    raise SweepFileError(f'{where}: {distribution} needs numeric min and'
                         ' max.') from None
  if not low <= high or (distribution == 'log_uniform_values' and low <= 0):
    raise SweepFileError(f'{where}: needs min <= max'
                         + (' and min > 0.' if distribution
                            == 'log_uniform_values' else '.'))
  return {**spec, 'min': low, 'max': high, 'q': q}


def _choices(spec: Mapping[str, Any]) -> list[Any]:
  return [spec['value']] if 'value' in spec else list(spec['values'])


def _draw(spec: Mapping[str, Any], rng: np.random.Generator) -> Any:
  if 'value' in spec:
    return spec['value']
  if 'values' in spec:
    return spec['values'][int(rng.integers(len(spec['values'])))]
  low, high = spec['min'], spec['max']
  distribution = spec['distribution']
  if distribution == 'uniform':
    return float(rng.uniform(low, high))
  if distribution == 'log_uniform_values':
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))
  if distribution == 'int_uniform':
    return int(rng.integers(int(low), int(high) + 1))
  q = spec['q']  # q_uniform: a uniform draw rounded to a multiple of q.
  value = round(rng.uniform(low, high) / q) * q
  return int(value) if float(q).is_integer() else float(value)
