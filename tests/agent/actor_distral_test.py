"""A Distral actor writes π_i's logits (its environment's task) to Reverb."""

import numpy as np
import reverb
import tensorflow as tf

from agent import actor as actor_lib
from agent import networks
from envs import distral_gridworld
from replay import datasets
from replay import tables
from replay import variables
from replay import writer as writer_lib

T, LSTM, A = 4, 16, 4
GOALS = distral_gridworld.training_goals(9, 2)
OBS_SPEC = tf.TensorSpec([9, 9, 2], tf.uint8, 'observation')


class DistralActorTest(tf.test.TestCase):

  def test_behaviour_logits_are_the_task_policy_of_each_environment(self):
    network = networks.ImpalaNetwork(
        A, num_tasks=2, torso='deep', lstm_size=LSTM,
        distral_parameterization='2col', distral_columns='separate',
        distral_alpha=0.5, distral_beta=20.0)
    network.create_variables(OBS_SPEC.shape, OBS_SPEC.dtype)
    rng = np.random.RandomState(0)
    for v in network.trainable_variables:
      v.assign(0.1 * rng.randn(*v.shape).astype(np.float32))
    signature = writer_lib.UnrollWriter.signature(
        writer_lib.step_spec(OBS_SPEC, A, network.state_size), T)
    server = reverb.Server(tables.make_tables(
        signature, queue_capacity=100,
        variables_signature=variables.variables_signature(
            network.trainable_variables)), port=None)
    try:
      address = f'localhost:{server.port}'
      client = reverb.Client(address)
      envs = [distral_gridworld.make_distral_gridworld(goal=GOALS[i % 2],
                                                       seed=i)
              for i in range(4)]
      actor = actor_lib.Actor(
          envs=envs, network=network,
          writers=[writer_lib.UnrollWriter(client, unroll_length=T)
                   for _ in envs], task_ids=[0, 1, 0, 1], seed=1)
      actor.run(num_steps=T + 1)
      unroll = next(iter(datasets.make_dataset(
          address, batch_size=4, rate_limiter_timeout_ms=5000)))
      self.assertEqual(unroll.core_state[0].shape, [4, 2 * LSTM])
      outputs, _ = network.unroll(
          unroll.observation, unroll.prev_action, unroll.reward, unroll.first,
          unroll.task_id, unroll.core_state)
      self.assertAllClose(unroll.behaviour_logits, outputs.policy_logits,
                          atol=1e-4)
      # Not π0's: the task policies differ from it here.
      self.assertGreater(float(tf.reduce_max(tf.abs(
          tf.nn.log_softmax(outputs.policy_logits) -
          tf.nn.log_softmax(outputs.distilled_logits)))), 1e-3)
      self.assertCountEqual(np.unique(unroll.task_id.numpy()), [0, 1])
    finally:
      server.stop()


if __name__ == '__main__':
  tf.test.main()
