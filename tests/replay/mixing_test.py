"""Tests for replay/mixing.py: exact queue/replay mix on a real Reverb server."""

import functools

from absl.testing import parameterized
import numpy as np
import reverb
import tensorflow as tf

from agent import losses
from agent import networks
from agent import types
from envs import bit_flipping
from replay import her
from replay import her_writer
from replay import mixing
from replay import tables
from replay import writer as writer_lib

N, T, LSTM = 5, 5, 8  # bits, unroll length (>= max_steps: 1 item/episode)
L = N + 1
OBS_SPEC = tf.TensorSpec([2 * N], tf.float32, 'observation')
STEP_SPEC = writer_lib.step_spec(OBS_SPEC, N, LSTM)


def _write_random_episodes(client, num_steps, seed=0):
  """A random policy's stream through GoalUnrollWriter (one env)."""
  env = bit_flipping.make_bit_flipping(num_bits=N, seed=seed)
  rng = np.random.default_rng(seed)
  step_fields = lambda obs, first, reward, discount, prev, action, i: dict(
      observation=obs, first=first, reward=np.float32(reward),
      discount=np.float32(discount), prev_action=np.int32(prev),
      action=np.int32(action), behaviour_logits=np.zeros([N], np.float32),
      task_id=np.int32(0),
      core_state=(np.full([LSTM], i, np.float32),) * 2)
  with her_writer.GoalUnrollWriter(client, unroll_length=T,
                                   max_episode_steps=L) as writer:
    timestep, first, prev, reward, discount = env.reset(), True, 0, 0.0, 1.0
    for i in range(num_steps):
      action = int(rng.integers(N))
      writer.append(step_fields(timestep.observation, first, reward, discount,
                                prev, action, i))
      timestep = env.step(action)
      reward, discount, prev, first = (timestep.reward, timestep.discount,
                                       action, False)
      if timestep.last():
        writer.end_episode(step_fields(timestep.observation, False, reward,
                                       discount, action, 0, i))
        timestep, first, prev = env.reset(), True, 0
    return writer.num_items, writer.num_replay_items


class MixingTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.server = reverb.Server([
        tables.make_tables(writer_lib.UnrollWriter.signature(STEP_SPEC, T),
                           queue_capacity=1000)[0],
        tables.make_replay_table(her_writer.replay_signature(
            STEP_SPEC, T, tf.TensorSpec([N], tf.float32), L),
                                 replay_size=1000)], port=None)
    self.address = f'localhost:{self.server.port}'

  def tearDown(self):
    self.server.stop()
    super().tearDown()

  @parameterized.parameters((8, 0.25, 2), (8, 0.5, 4), (6, 0.1, 1),
                            (4, 0.7, 3))
  def test_replay_batch_size(self, batch_size, proportion, expected):
    self.assertEqual(mixing.replay_batch_size(batch_size, proportion),
                     expected)

  @parameterized.parameters((4, 1.0), (4, -0.1), (4, 0.05), (2, 0.9))
  def test_bad_replay_proportion(self, batch_size, proportion):
    with self.assertRaisesRegex(ValueError, 'replay_proportion'):
      mixing.replay_batch_size(batch_size, proportion)

  def test_batches_hold_exact_mix_and_every_queue_item_once(self):
    client = reverb.Client(self.address)
    num_queue, num_replay = _write_random_episodes(client, num_steps=121)
    self.assertEqual(num_queue, 24)
    self.assertGreater(num_replay, 5)
    batch_size, replay = 6, 2
    relabel = functools.partial(
        her.relabel, strategy='final', relabel_probability=1.0,
        reward_fn=bit_flipping.reward, goal_fn=bit_flipping.with_goal)
    dataset = mixing.make_mixed_dataset(
        self.address, batch_size=batch_size, replay_batch_size=replay,
        relabel_fn=relabel, seed=3, rate_limiter_timeout_ms=1000)
    batches = list(dataset)
    self.assertLen(batches, num_queue // (batch_size - replay))
    queue_steps = []
    for batch in batches:
      self.assertIsInstance(batch, types.MaskedUnroll)
      self.assertEqual(batch.observation.shape, [T + 1, batch_size, 2 * N])
      self.assertEqual(batch.core_state[0].shape, [batch_size, LSTM])
      mask = batch.mask.numpy()
      self.assertTrue(mask[:, :batch_size - replay].all())
      queue_steps += batch.core_state[0].numpy()[:batch_size - replay,
                                                 0].tolist()
      # Replay columns: relabeled with the final achieved goal, so the last
      # valid step reaches the goal and is terminal.
      for b in range(batch_size - replay, batch_size):
        valid = int(mask[:, b].sum())
        self.assertTrue(mask[:valid, b].all() and not mask[valid:, b].any())
        goal = batch.observation.numpy()[0, b, N:]
        self.assertAllEqual(batch.observation.numpy()[valid - 1, b, :N], goal)
        self.assertEqual(batch.discount.numpy()[valid - 1, b], 0.0)
        self.assertEqual(batch.reward.numpy()[valid - 1, b], 0.0)
    # FIFO: unroll k starts at stream step k·T; each exactly once.
    self.assertEqual(queue_steps, [float(k * T) for k in range(len(
        queue_steps))])

    # The loss accepts the mixed batch.
    network = networks.ImpalaNetwork(N, torso='mlp', lstm_size=LSTM)
    batch = batches[0]
    outputs, _ = network.unroll(batch.observation, batch.prev_action,
                                batch.reward, batch.first, batch.task_id,
                                batch.core_state)
    loss, metrics = losses.impala_loss(outputs, batch)
    self.assertTrue(np.isfinite(loss.numpy()))
    self.assertAllClose(metrics['valid_fraction'],
                        batch.mask.numpy()[1:].mean())

  def test_without_relabel_replays_items_unchanged(self):
    client = reverb.Client(self.address)
    _write_random_episodes(client, num_steps=40, seed=1)
    dataset = mixing.make_mixed_dataset(
        self.address, batch_size=3, replay_batch_size=1, relabel_fn=None,
        seed=0, rate_limiter_timeout_ms=1000)
    batch = next(iter(dataset))
    observation = batch.observation.numpy()[:, 2]
    mask = batch.mask.numpy()[:, 2]
    goals = observation[mask, N:]
    self.assertAllEqual(goals, np.repeat(goals[:1], len(goals), axis=0))

  def test_bad_replay_batch_size(self):
    with self.assertRaisesRegex(ValueError, 'replay_batch_size'):
      mixing.make_mixed_dataset(self.address, batch_size=4,
                                replay_batch_size=4, relabel_fn=None, seed=0)


if __name__ == '__main__':
  tf.test.main()
