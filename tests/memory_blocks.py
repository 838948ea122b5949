"""Counting live Python memory blocks, to test for per-call leaks.

A leak leaves at least one block behind per call; a one-off allocation (a
cache filled once, a buffer grown once) leaves a few, however large. So tests
assert blocks left per call, measured with tracemalloc, not bytes.
"""

import gc
import tracemalloc
from typing import Callable


def _live_blocks() -> int:
  snapshot = tracemalloc.take_snapshot().filter_traces(
      [tracemalloc.Filter(False, tracemalloc.__file__)])
  return sum(s.count for s in snapshot.statistics('filename'))


def blocks_left_per_call(fn: Callable[[], object], calls: int,
                         warmup: int = 50) -> float:
  """Python memory blocks still allocated after `calls` calls, per call.

  Calls `fn` `warmup` times first; collects garbage before both counts (a
  `tf.function` call leaves reference cycles behind, which are no leak).
  """
  for _ in range(warmup):
    fn()
  gc.collect()
  tracemalloc.start()
  try:
    before = _live_blocks()
    for _ in range(calls):
      fn()
    gc.collect()
    return (_live_blocks() - before) / calls
  finally:
    tracemalloc.stop()
