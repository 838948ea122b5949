"""One two-replica MirroredStrategy per test process.

Several MirroredStrategy objects in one process can hand out colliding
collective-op instance keys (an all-reduce of one then meets an all-reduce of
another: "Shape mismatch in the collective instance"), so every test that
needs two replicas shares this one, over the two logical CPUs of conftest.py.
"""

import functools

import tensorflow as tf


@functools.lru_cache(maxsize=None)
def two_replica_strategy() -> tf.distribute.MirroredStrategy:
  """MirroredStrategy over the first two logical CPUs (SEED simulate_two_devices)."""
  devices = tf.config.list_logical_devices('CPU')
  if len(devices) < 2:
    raise AssertionError('tests/conftest.py must configure two logical CPUs; '
                         f'got {devices}')
  return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
