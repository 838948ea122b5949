"""Which compute dtype the hardware runs faster (config.network.compute_dtype).

'auto' resolves to bfloat16 where the learner's (or actor's) devices compute
it natively at a higher rate than float32, else float32:
  * TPUs (every generation computes bfloat16 in its matrix units);
  * GPUs of compute capability >= 8.0 (Ampere and later: bfloat16 tensor
    cores);
  * CPUs with AMX-BF16 (Intel Sapphire Rapids and later), read from
    /proc/cpuinfo's flags; oneDNN, which TensorFlow's x86 builds use, runs
    bfloat16 convolutions and matmuls on its tile units.
AVX512-BF16 alone is not enough: on a 2-vCPU Xeon VM exposing AVX512-BF16
and AVX512-FP16 but not AMX (2026-12-02, benchmarks/throughput.py), the
bfloat16 matmul peak was 0.58-0.59× the float32 one and the deep learner
step 0.80-0.94× as fast (two runs), so such CPUs compute in float32.
"""

import functools
from typing import Optional, Tuple

import tensorflow as tf

from agent import precision

COMPUTE_DTYPE_CHOICES = ('auto',) + precision.COMPUTE_DTYPES
_CPU_FLAGS = {'amx_bf16': 'AMX-BF16', 'avx512_bf16': 'AVX512-BF16'}


@functools.lru_cache(maxsize=None)
def cpu_bfloat16_flags(cpuinfo: str = '/proc/cpuinfo') -> Tuple[str, ...]:
  """Names of this CPU's bfloat16 instruction sets (AMX-BF16, AVX512-BF16)."""
  try:
    with open(cpuinfo) as f:
      for line in f:
        if line.startswith('flags'):
          flags = set(line.split(':', 1)[1].split())
          return tuple(name for flag, name in _CPU_FLAGS.items()
                       if flag in flags)
  except OSError:
    pass
  return ()


def _gpu_capabilities():
  """Compute capabilities (major, minor) of the visible GPUs."""
  capabilities = []
  for gpu in tf.config.list_physical_devices('GPU'):
    details = tf.config.experimental.get_device_details(gpu)
    capabilities.append(tuple(details.get('compute_capability', (0, 0))))
  return capabilities


def resolve_compute_dtype(requested: str,
                          strategy: Optional[tf.distribute.Strategy] = None
                          ) -> Tuple[str, str]:
  """(compute dtype, why) for config.network.compute_dtype `requested`.

  Args:
    requested: 'auto', 'float32' or 'bfloat16'.
    strategy: the learner's strategy (its devices decide 'auto'); None for
      a process computing on its CPU (actors).

  Returns:
    ('float32' | 'bfloat16', a short human-readable reason for the log).

  Raises:
    ValueError: for a `requested` not in COMPUTE_DTYPE_CHOICES.
  """
  if requested not in COMPUTE_DTYPE_CHOICES:
    raise ValueError('config.network.compute_dtype must be one of '
                     f'{COMPUTE_DTYPE_CHOICES}; got {requested!r}.')
  if requested != 'auto':
    return requested, f'config.network.compute_dtype={requested!r}'
  if isinstance(strategy, (tf.distribute.TPUStrategy,
                           tf.distribute.experimental.TPUStrategy)):
    return 'bfloat16', 'auto: TPU'
  if strategy is None:
    on_gpu = False  # actors compute on their CPU
  elif isinstance(strategy, tf.distribute.MirroredStrategy):
    on_gpu = any('GPU' in d.upper() for d in strategy.extended.worker_devices)
  else:  # the default strategy places ops on GPU:0 when one is visible
    on_gpu = bool(tf.config.list_logical_devices('GPU'))
  if on_gpu:
    capabilities = _gpu_capabilities()
    if capabilities and min(capabilities) >= (8, 0):
      return 'bfloat16', (f'auto: GPUs of compute capability '
                          f'{min(capabilities)[0]}.{min(capabilities)[1]}')
    return 'float32', f'auto: GPUs of compute capability {capabilities} < 8.0'
  flags = cpu_bfloat16_flags()
  if 'AMX-BF16' in flags:
    return 'bfloat16', 'auto: CPU has AMX-BF16'
  if flags:
    return 'float32', (f'auto: CPU has {"/".join(flags)} but no AMX-BF16, '
                       'where bfloat16 measured slower than float32')
  return 'float32', 'auto: CPU has no bfloat16 instructions'

