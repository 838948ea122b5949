"""Keeps long-running processes' heap lower: glibc allocator settings.

Part of what the 60-minute soaks measured (issue 11 item 10,
benchmarks/results/soak.md) was memory that the processes had already freed:
glibc's malloc keeps freed pages of its per-thread arenas (by default up to
8 per core) instead of returning them. `malloc_trim(0)` in a running actor
gave back 44 MiB; Python's `gc.collect()` freed nothing. Two standard glibc
facilities lower it (man 3 mallopt, man 3 malloc_trim). In the 60-minute soak
of commit 93fc901 they held each actor ~170 MiB below the previous soak's at
every minute, but its growth of ~1.1 MiB/min stayed: that part was live
memory, which these settings do not touch (it was TensorFlow's EagerTensor
leak, freed by agent/eager_leak.py since).

- `MALLOC_ARENA_MAX=2` in the environment of each actor process
  (`ALLOCATOR_ENV`; glibc reads it at start, so it is set by whoever starts the
  process: launch/supervisor.py on one box, the Kubernetes manifests on a
  cluster). An actor's threads then share two arenas. In one soak run of 4
  actors side by side it held an actor at ~560 MiB against ~670 MiB with the
  default, at the same agent steps/s.
- `start_trimming()`: a daemon thread that calls `malloc_trim(0)` every
  `TRIM_PERIOD_SECS`, returning the free pages of every arena to the OS
  (between calls it only sleeps). Actors, learner and Reverb server run it.

`MALLOC_TRIM_THRESHOLD_` (as Dask sets for its workers) also held the growth
but cost an actor ~14% of its agent steps/s in the same run, so it is not used.
Neither facility exists outside glibc: elsewhere (macOS, musl) `trim()` is a
no-op that returns False and the variable is ignored.
"""

import ctypes
import threading
from typing import Optional

from absl import logging

ALLOCATOR_ENV = {'MALLOC_ARENA_MAX': '2'}
TRIM_PERIOD_SECS = 60.0

try:  # resolved at import, not in a forked child
  _MALLOC_TRIM = ctypes.CDLL('libc.so.6').malloc_trim
  _MALLOC_TRIM.argtypes = [ctypes.c_size_t]
  _MALLOC_TRIM.restype = ctypes.c_int
except (OSError, AttributeError):  # not glibc
  _MALLOC_TRIM = None


def trim() -> bool:
  """Returns freed heap pages of all arenas to the OS (glibc malloc_trim(0)).

  Returns:
    True if memory was released, False if there was none to release or the C
    library is not glibc.
  """
  return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


def start_trimming(period_secs: float = TRIM_PERIOD_SECS,
                   stop: Optional[threading.Event] = None
                   ) -> Optional[threading.Thread]:
  """Starts a daemon thread that calls `trim()` every `period_secs` seconds.

  Args:
    period_secs: seconds between trims (wall clock), > 0.
    stop: the thread ends once this is set (default: with the process).

  Returns:
    The thread, or None where `trim()` is not available (not glibc).

  Raises:
    ValueError: period_secs is not a finite number > 0.
  """
  if not 0 < period_secs < float('inf'):
    raise ValueError(f'period_secs must be a finite number > 0; got '
                     f'{period_secs!r}')
  if _MALLOC_TRIM is None:
    logging.info('Not glibc: freed heap memory is left to the C library.')
    return None

  if stop is None:
    stop = threading.Event()

  def loop():
    while not stop.wait(period_secs):
      trim()

  thread = threading.Thread(target=loop, name='malloc_trim', daemon=True)
  thread.start()
  return thread
