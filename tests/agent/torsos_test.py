"""The deep torso's graph optimises cleanly (grappler's remapper succeeds).

TensorFlow 2.15's remapper (oneDNN fusions on CPU) fails on the pattern
`add → Relu` where the residual `add` also feeds the next block's `add`,
logs "remapper failed: INVALID_ARGUMENT: Mutation::Apply error", and then
leaves the whole function unfused (agent/torsos.py `block_preactivation`).
The log line goes to fd 2, which `capfd` reads. Each case first builds the
same graph with `tf.nn.relu` as a positive control: where that does not
fail either (no oneDNN fusion of this pattern on this machine, dtype or
build), the case is skipped, since there is nothing to tell apart.
"""

import numpy as np
import pytest
import tensorflow as tf

from agent import torsos


def _remapper_log(capfd, dtype):
  """fd 2 output of tracing and running forward and forward+backward."""
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
  return capfd.readouterr().err


@pytest.mark.parametrize('dtype', [None, 'mixed_bfloat16'])
def test_remapper_succeeds_on_forward_and_backward(capfd, monkeypatch, dtype):
  with monkeypatch.context() as patch:
    patch.setattr(torsos, 'block_preactivation', tf.nn.relu)
    control = _remapper_log(capfd, dtype)
  if 'remapper failed' not in control:
    pytest.skip(f'the Relu graph does not fail here either (dtype {dtype})')
  err = _remapper_log(capfd, dtype)
  assert 'remapper failed' not in err, err


@pytest.mark.parametrize('dtype', [tf.float32, tf.bfloat16])
def test_preactivation_is_relu(dtype):
  """Values, and gradients away from 0, equal tf.nn.relu's; dtype kept."""
  x = tf.cast(np.random.RandomState(0).randn(1000).astype(np.float32), dtype)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    ours, relu = torsos.block_preactivation(x), tf.nn.relu(x)
  assert ours.dtype == dtype
  np.testing.assert_array_equal(ours.numpy().astype(np.float32),
                                relu.numpy().astype(np.float32))
  np.testing.assert_array_equal(
      tape.gradient(ours, x).numpy().astype(np.float32),
      tape.gradient(relu, x).numpy().astype(np.float32))
