"""Chooses the learner's tf.distribute strategy (SPEC §8).

TPUStrategy when a TPU name is given, MirroredStrategy over the visible GPUs
(or over several logical CPUs in tests), else the default strategy.
"""

from typing import Optional

import tensorflow as tf


def get_strategy(tpu: Optional[str] = None, use_gpu: bool = False,
                 ) -> tf.distribute.Strategy:
  """Returns a strategy.

  Args:
    tpu: Cloud TPU name or grpc:// address ('local' for a TPU VM); None for none.
    use_gpu: mirror over all visible GPUs.

  Raises:
    ValueError: if both `tpu` and `use_gpu` are set, or `use_gpu` is set and no
      GPU is visible.
  """
  if tpu and use_gpu:
    raise ValueError(f'Set at most one of tpu ({tpu!r}) and use_gpu (True).')
  if tpu:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if use_gpu:
    gpus = tf.config.list_logical_devices('GPU')
    if not gpus:
      raise ValueError('use_gpu=True but TensorFlow sees no GPU; '
                       'drop --use_gpu to train on the CPU.')
    return tf.distribute.MirroredStrategy([d.name for d in gpus])
  return tf.distribute.get_strategy()
