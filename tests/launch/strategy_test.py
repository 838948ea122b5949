"""get_strategy: default on CPU, clear errors for impossible requests."""

import tensorflow as tf

from launch import strategy


class StrategyTest(tf.test.TestCase):

  def test_default_strategy_on_cpu(self):
    chosen = strategy.get_strategy()
    self.assertIs(chosen, tf.distribute.get_strategy())
    self.assertEqual(chosen.num_replicas_in_sync, 1)

  def test_tpu_and_gpu_together_are_rejected(self):
    with self.assertRaisesRegex(ValueError, 'at most one of tpu'):
      strategy.get_strategy(tpu='my-tpu', use_gpu=True)

  def test_gpu_requested_without_gpu(self):
    if tf.config.list_logical_devices('GPU'):
      self.skipTest('this machine has a GPU')
    with self.assertRaisesRegex(ValueError, 'sees no GPU'):
      strategy.get_strategy(use_gpu=True)


if __name__ == '__main__':
  tf.test.main()
