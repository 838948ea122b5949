"""The deep torso's graph optimises cleanly (grappler's remapper succeeds).

TensorFlow 2.15's remapper (oneDNN fusions on CPU) fails on the pattern
`add → relu` where the residual `add` also feeds the next block's `add`, logs
"remapper failed: INVALID_ARGUMENT: Mutation::Apply error", and then leaves
the whole function unfused (agent/torsos.py). The log line goes to fd 2,
which `capfd` reads.
"""

import numpy as np
import pytest
import tensorflow as tf

from agent import torsos


@pytest.mark.parametrize('dtype', [None, 'mixed_bfloat16'])
def test_remapper_succeeds_on_forward_and_backward(capfd, dtype):
  torso = torsos.DeepTorso(dtype=dtype)
  x = tf.random.uniform([4, 84, 84, 4], seed=0)
  torso(x[:1])

  @tf.function
  def forward(x):
    return torso(x)

  @tf.function
  def forward_backward(x):
    with tf.GradientTape() as tape:
      y = tf.reduce_sum(tf.cast(torso(x), tf.float32))
    return tape.gradient(y, torso.trainable_variables)

  capfd.readouterr()
  forward(x)
  forward_backward(x)
  err = capfd.readouterr().err
  assert 'remapper failed' not in err, err


def test_preactivation_is_relu():
  """The block input's activation (`tf.maximum(x, 0)`) equals tf.nn.relu."""
  x = tf.constant(np.random.RandomState(0).randn(1000).astype(np.float32))
  np.testing.assert_array_equal(torsos.block_preactivation(x), tf.nn.relu(x))
