"""JAX's persistent compilation cache, on by default: a rerun loads its
compiled programs from disk instead of compiling them again.

The command-line tools take `--compilation_cache_dir` (empty turns the cache
off); `run.train_and_evaluate` turns on the default folder when nothing has
configured JAX's cache. Every program is cached however fast it compiled
(JAX's own default skips programs under a second, most of ours). Tracing and
lowering still run on every start; only XLA's compilation is saved.
"""

import os

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cache

from experiments import config as config_lib

DEFAULT_DIR = os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
    'recurrent_transformers_lengthgen', 'jax')
MAX_SIZE_BYTES = 2 * 2**30  # Least recently used programs go past this.

_configured = False


def enable(path: str) -> None:
  """Caches compiled programs in `path` (created if needed); '' turns the
  cache off. ConfigError when the folder cannot be created or written."""
  global _configured
  _configured = True
  if not path:
    jax.config.update('jax_enable_compilation_cache', False)
    jax_cache.reset_cache()
    return
  try:
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK):
      raise OSError('not writable')
  except OSError as e:
    raise config_lib.ConfigError(
        f'cannot use the compilation cache folder {path}: {e} (pass'
        ' --compilation_cache_dir=OTHER, or --compilation_cache_dir= to turn'
        ' the cache off).') from None
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  jax.config.update('jax_compilation_cache_max_size', MAX_SIZE_BYTES)
  # JAX decides once, at its first compilation, whether to use the cache;
  # anything compiled before this call (at import) must not fix that.
  jax_cache.reset_cache()


def enable_default() -> None:
  """The default folder, unless a tool, the user or JAX's own environment
  variables configured the cache already."""
  if _configured or jax.config.jax_compilation_cache_dir is not None:
    return
  enable(DEFAULT_DIR)
