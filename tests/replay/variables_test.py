"""Tests for replay/variables.py against a real in-process Reverb server."""

import time

import numpy as np
import reverb
import tensorflow as tf

from replay import tables
from replay import variables as variables_lib


def make_variables(seed=None):
  """A small network-like list: float kernel, float bias, int32 counter."""
  rng = np.random.default_rng(seed)
  init = (lambda shape: rng.standard_normal(shape).astype(np.float32)
          ) if seed is not None else (lambda shape: np.zeros(shape, np.float32))
  return [
      tf.Variable(init([3, 2]), name='kernel'),
      tf.Variable(init([2]), name='bias'),
      tf.Variable(np.arange(4, dtype=np.int32) * (seed or 0), name='count'),
  ]


class VariablesTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    signature = variables_lib.variables_signature(make_variables())
    cls.server = reverb.Server(
        tables.make_tables({'x': tf.TensorSpec([], tf.float32)},
                           queue_capacity=1, variables_signature=signature),
        port=None)
    cls.client = reverb.Client(f'localhost:{cls.server.port}')

  def tearDown(self):
    self.client.reset(tables.VARIABLES_TABLE)
    super().tearDown()

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def test_signature(self):
    signature = variables_lib.variables_signature(make_variables())
    self.assertEqual(signature['learner_step'],
                     tf.TensorSpec([], tf.int64, name='learner_step'))
    self.assertEqual([(s.shape, s.dtype) for s in signature['variables']],
                     [([3, 2], tf.float32), ([2], tf.float32), ([4], tf.int32)])
    with self.assertRaisesRegex(ValueError, 'variables'):
      variables_lib.variables_signature([])

  def test_update_before_publish_returns_none_promptly(self):
    subscriber = variables_lib.VariableSubscriber(self.client, make_variables())
    start = time.monotonic()
    self.assertIsNone(subscriber.update(wait=False))
    self.assertLess(time.monotonic() - start, 2.0)

  def test_publish_update_round_trip_is_exact(self):
    learner_variables = make_variables(seed=1)
    step = tf.Variable(42, dtype=tf.int64)
    publisher = variables_lib.VariablePublisher(
        self.client.server_address, learner_variables, step)
    actor_variables = make_variables()
    subscriber = variables_lib.VariableSubscriber(self.client, actor_variables)
    publisher.publish()
    self.assertEqual(subscriber.update(wait=False), 42)
    for learner, actor in zip(learner_variables, actor_variables):
      self.assertAllEqual(learner, actor)  # Bit-exact, dtype kept.
      self.assertEqual(learner.dtype, actor.dtype)

  def test_final_publish_tells_subscribers_the_learner_finished(self):
    learner_variables = make_variables(seed=1)
    step = tf.Variable(42, dtype=tf.int64)
    publisher = variables_lib.VariablePublisher(self.client, learner_variables,
                                                step)
    subscriber = variables_lib.VariableSubscriber(self.client, make_variables())
    publisher.publish()
    self.assertEqual(subscriber.update(), 42)
    self.assertFalse(subscriber.learner_finished)
    step.assign(43)
    publisher.publish(final=True)
    self.assertEqual(subscriber.update(), 43)  # the step, decoded
    self.assertTrue(subscriber.learner_finished)

  def test_non_finite_weights_are_rejected_and_current_ones_kept(self):
    # Anyone reaching the port can insert an item of the right signature.
    forged = make_variables(seed=3)
    forged[0].assign(np.full([3, 2], np.nan, np.float32))
    forged[1].assign([np.inf, 0.0])
    variables_lib.VariablePublisher(
        self.client, forged, tf.Variable(9, dtype=tf.int64)).publish()
    actor_variables = make_variables(seed=4)
    before = [v.numpy() for v in actor_variables]
    subscriber = variables_lib.VariableSubscriber(self.client, actor_variables)
    self.assertIsNone(subscriber.update())
    self.assertEqual(subscriber.rejected, 1)
    for value, variable in zip(before, actor_variables):
      self.assertAllEqual(value, variable)

  def test_newer_publish_wins(self):
    learner_variables = make_variables(seed=1)
    step = tf.Variable(1, dtype=tf.int64)
    publisher = variables_lib.VariablePublisher(
        self.client, learner_variables, step)
    publisher.publish()
    new_values = make_variables(seed=2)
    for variable, value in zip(learner_variables, new_values):
      variable.assign(value)
    step.assign(2)
    publisher.publish()
    self.assertEqual(
        self.client.server_info(timeout=5)[tables.VARIABLES_TABLE].current_size,
        1)
    actor_variables = make_variables()
    subscriber = variables_lib.VariableSubscriber(self.client, actor_variables)
    for _ in range(3):  # Sampling does not consume the published item.
      self.assertEqual(subscriber.update(wait=True), 2)
    for expected, actor in zip(new_values, actor_variables):
      self.assertAllEqual(expected, actor)

  def test_poll_without_a_new_publish_pulls_nothing(self):
    learner_variables = make_variables(seed=1)
    step = tf.Variable(5, dtype=tf.int64)
    publisher = variables_lib.VariablePublisher(self.client, learner_variables,
                                                step)
    publisher.publish()
    actor_variables = make_variables()
    subscriber = variables_lib.VariableSubscriber(self.client, actor_variables)
    self.assertEqual(subscriber.update(wait=False), 5)
    actor_variables[1].assign([7.0, 7.0])  # a pull would overwrite this
    self.assertEqual(subscriber.update(wait=False), 5)
    self.assertAllEqual(actor_variables[1], [7.0, 7.0])
    step.assign(6)
    publisher.publish()
    self.assertEqual(subscriber.update(wait=False), 6)
    self.assertAllEqual(actor_variables[1], learner_variables[1])

  def test_int32_step_counter_is_published_as_int64(self):
    step = tf.Variable(7, dtype=tf.int32)
    variables_lib.VariablePublisher(self.client, make_variables(1),
                                    step).publish()
    subscriber = variables_lib.VariableSubscriber(self.client, make_variables())
    self.assertEqual(subscriber.update(), 7)

  def test_mismatched_variables_raise(self):
    wrong_shape = make_variables()
    wrong_shape[1] = tf.Variable(tf.zeros([5]))
    with self.assertRaisesRegex(ValueError, r'variables\[1\]'):
      variables_lib.VariableSubscriber(self.client, wrong_shape)
    with self.assertRaisesRegex(ValueError, 'variables must have 3'):
      variables_lib.VariablePublisher(
          self.client, make_variables()[:2], tf.Variable(0, dtype=tf.int64))
    with self.assertRaisesRegex(ValueError, 'table'):
      variables_lib.VariableSubscriber(
          self.client, make_variables(), table='nope')


if __name__ == '__main__':
  tf.test.main()
