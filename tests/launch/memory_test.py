"""launch/memory.py: freed heap pages go back to the OS (issue 11 item 10).

The fragmentation it bounds is made for real: a thread (its own glibc arena)
mallocs and touches 160 MiB in 1 KiB blocks, then frees all but the last
block, which pins the arena's top so that free() alone cannot shrink it.
"""

import ctypes
import threading
import time

import psutil
import pytest

from launch import memory

_LIBC = ctypes.CDLL('libc.so.6')
_LIBC.malloc.restype = ctypes.c_void_p
_LIBC.malloc.argtypes = [ctypes.c_size_t]
_LIBC.free.argtypes = [ctypes.c_void_p]
_BLOCK, _BLOCKS = 1024, 160 * 1024  # 160 MiB
_MIB = 2**20

glibc = pytest.mark.skipif(memory._MALLOC_TRIM is None,  # pylint: disable=protected-access
                           reason='malloc_trim is glibc only')


def _rss_mib() -> float:
  return psutil.Process().memory_info().rss / _MIB


def _fragment_in_a_thread():
  """Leaves ~160 MiB freed but resident; returns the pinning block to free."""
  kept = []

  def work():
    blocks = [_LIBC.malloc(_BLOCK) for _ in range(_BLOCKS)]
    for block in blocks:
      ctypes.memset(block, 1, _BLOCK)  # resident
    for block in blocks[:-1]:
      _LIBC.free(block)
    kept.append(blocks[-1])

  thread = threading.Thread(target=work)
  thread.start()
  thread.join()
  return kept[0]


@glibc
def test_trim_returns_the_freed_pages_that_free_kept():
  before = _rss_mib()
  pin = _fragment_in_a_thread()
  try:
    fragmented = _rss_mib()
    assert fragmented - before > 100  # free() kept them resident
    assert memory.trim()
    assert fragmented - _rss_mib() > 100
  finally:
    _LIBC.free(pin)


@glibc
def test_the_trimming_thread_trims_periodically():
  pin = _fragment_in_a_thread()
  try:
    fragmented = _rss_mib()
    stop = threading.Event()
    thread = memory.start_trimming(period_secs=0.1, stop=stop)
    assert thread.daemon and thread.is_alive()
    deadline = time.time() + 10
    while fragmented - _rss_mib() < 100 and time.time() < deadline:
      time.sleep(0.05)
    assert fragmented - _rss_mib() > 100
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
  finally:
    _LIBC.free(pin)


@pytest.mark.parametrize('period', [0, -1, float('nan'), float('inf')])
def test_a_bad_period_is_a_clear_error(period):
  with pytest.raises(ValueError, match='period_secs must be a finite number '
                     '> 0; got'):
    memory.start_trimming(period)
