"""launch/goal_builder.py through launch/builder.py: HER configs, validation,
Reverb replay checkpoint/restore, counters on resume, goal-conditioned export.

Real in-process Reverb servers, real bit flipping, the default strategy.
"""

import os

from absl.testing import parameterized
import numpy as np
import reverb
import tensorflow as tf

from configs import atari
from configs import her_bitflip
from configs import her_gridworld
from envs import bit_flipping
from launch import builder
from launch import goal_builder
from launch import learner_loop
from launch import validate
from replay import tables

N = 4  # bits


def _config(**overrides):
  config = her_bitflip.get_config(str(N))
  with config.unlocked():
    config.num_envs_per_actor = 4
    config.batch_size = 4
    config.network.lstm_size = 16
    config.replay.queue_capacity = 1000
    for field, value in overrides.items():
      target = config
      *path, last = field.split('.')
      for part in path:
        target = target[part]
      target[last] = value
  return config


class GoalConfigTest(parameterized.TestCase):

  def test_shipped_configs_are_valid(self):
    for config in (her_bitflip.get_config(), her_bitflip.get_config('10'),
                   her_gridworld.get_config(), her_gridworld.get_config('7')):
      validate.validate_config(config)
      validate.validate_config(config, num_replicas=2)
    self.assertEqual(her_bitflip.get_config().env.num_bits, 15)

  def test_frames_count_only_new_queue_steps(self):
    config = her_bitflip.get_config()  # B = 32, R = 16, T = 15
    self.assertEqual(builder.agent_steps_per_learner_step(config), 16 * 15)
    with config.unlocked():
      config.replay.replay_proportion = 0.0
    self.assertEqual(builder.agent_steps_per_learner_step(config), 32 * 15)

  @parameterized.named_parameters(
      ('proportion_one', 'replay.replay_proportion', 1.0,
       r'config.replay.replay_proportion must be in \[0, 1\); got 1.0'),
      ('proportion_rounds_to_zero', 'replay.replay_proportion', 0.01,
       r'replay_proportion must be such that round\(replay_proportion \* '
       r'batch_size\) is in \[1, 31\]; got 0.01'),
      ('strategy', 'her.strategy', 'random',
       r"config.her.strategy must be one of \('final', 'future', 'episode'\); "
       "got 'random'"),
      ('relabel_probability', 'her.relabel_probability', 1.5,
       r'config.her.relabel_probability must be in \[0, 1\]; got 1.5'),
      ('replay_size', 'replay.replay_size', 0,
       'config.replay.replay_size must be a positive integer; got 0'),
      ('num_bits', 'env.num_bits', 0,
       'config.env.num_bits must be a positive integer; got 0'),
      ('torso', 'network.torso', 'deep',
       "config.network.torso must be 'mlp' for bit_flipping"),
      ('frame_skip', 'env.frame_skip', 4,
       'config.env.frame_skip must be 1 for goal-conditioned envs; got 4'),
      ('popart_with_replay', 'learner.popart', True,
       'config.learner.popart must be False when replay.replay_proportion > 0'),
  )
  def test_bad_values_are_named(self, field, value, message):
    config = her_bitflip.get_config()
    target = config
    *path, last = field.split('.')
    for part in path:
      target = target[part]
    with config.unlocked():
      target[last] = value
    with self.assertRaisesRegex(ValueError, message):
      validate.validate_config(config)

  def test_replay_needs_a_goal_env_and_divides_across_replicas(self):
    config = atari.get_config()
    with config.unlocked():
      config.replay.replay_proportion = 0.5
    with self.assertRaisesRegex(ValueError, 'config.replay.replay_proportion '
                                'must be 0 unless env.name is one of'):
      validate.validate_config(config)
    config = her_bitflip.get_config()
    with config.unlocked():
      config.replay.replay_proportion = 3 / 32  # R = 3
    validate.validate_config(config)
    with self.assertRaisesRegex(ValueError, 'divisible by the number of '
                                r'replicas \(2\)'):
      validate.validate_config(config, num_replicas=2)


class ReplayResumeTest(tf.test.TestCase):

  def test_replay_contents_and_counters_survive_a_restart(self):
    config = _config()
    validate.validate_config(config)
    facts = builder.environment_facts(config)
    self.assertEqual(facts['max_episode_steps'], N + 1)
    logdir = self.get_temp_dir()
    reverb_dir = os.path.join(logdir, 'reverb')
    checkpoint_dir = os.path.join(logdir, 'checkpoints')

    server = builder.make_server(config, facts, checkpoint_dir=reverb_dir)
    address = f'localhost:{server.port}'
    actor = builder.make_actor(config, facts, address, actor_id=0)
    actor.run(num_steps=60)  # No weights published: initial policy.
    client = reverb.Client(address)
    before = client.server_info(timeout=5)
    self.assertGreater(before[tables.REPLAY_TABLE].current_size, 10)
    learner = builder.make_learner(config, facts, tf.distribute.get_strategy(),
                                   address, checkpoint_dir)
    for _ in range(3):
      metrics = learner.step()
    # Mixed batches: the masked loss ran (replay items may be padded).
    self.assertBetween(metrics['valid_fraction'], 0.5, 1.0)
    learner.save()
    # A shutdown checkpoint, as launch/learner_loop.py writes one.
    saver = goal_builder.ReplayCheckpointer(client, config)
    self.assertIsNone(saver.maybe_checkpoint())  # Slow timer not expired.
    path = saver.checkpoint()
    self.assertStartsWith(path, reverb_dir)
    replay_size = client.server_info(timeout=5)[
        tables.REPLAY_TABLE].current_size
    del learner, actor
    server.stop()

    restarted = builder.make_server(config, facts, checkpoint_dir=reverb_dir)
    try:
      info = reverb.Client(f'localhost:{restarted.port}').server_info(
          timeout=5)
      self.assertEqual(info[tables.REPLAY_TABLE].current_size, replay_size)
      learner = builder.make_learner(config, facts,
                                     tf.distribute.get_strategy(), None,
                                     checkpoint_dir)
      self.assertTrue(learner.restore())
      self.assertEqual(learner.learner_steps, 3)
      # (B − R) · T = (4 − 2) · 4 new agent steps per learner step.
      self.assertEqual(learner.agent_steps, 3 * 2 * N)
    finally:
      restarted.stop()

  def test_slow_timer(self):
    config = _config()  # replay.checkpoint_every_secs = 600
    facts = builder.environment_facts(config)
    reverb_dir = os.path.join(self.get_temp_dir(), 'reverb_timer')
    server = builder.make_server(config, facts, checkpoint_dir=reverb_dir)
    try:
      now = [1000.0]
      saver = goal_builder.ReplayCheckpointer(
          reverb.Client(f'localhost:{server.port}'), config,
          clock=lambda: now[0])
      now[0] += 599.0
      self.assertIsNone(saver.maybe_checkpoint())
      now[0] += 2.0
      self.assertStartsWith(saver.maybe_checkpoint(), reverb_dir)
      now[0] += 10.0
      self.assertIsNone(saver.maybe_checkpoint())  # Timer restarted.
      self.assertLen(os.listdir(reverb_dir), 1)
    finally:
      server.stop()

  def test_queue_only_runs_write_no_reverb_checkpoint(self):
    config = _config(**{'replay.replay_proportion': 0.0})
    facts = builder.environment_facts(config)
    reverb_dir = os.path.join(self.get_temp_dir(), 'reverb_off')
    server = builder.make_server(config, facts, checkpoint_dir=reverb_dir)
    try:
      client = reverb.Client(f'localhost:{server.port}')
      self.assertNotIn(tables.REPLAY_TABLE, client.server_info(timeout=5))
      self.assertIsNone(goal_builder.ReplayCheckpointer(
          client, config).checkpoint())
      self.assertFalse(os.path.exists(reverb_dir))
    finally:
      server.stop()


class GoalExportTest(tf.test.TestCase):

  def test_savedmodel_evaluates_with_a_chosen_goal(self):
    # float32: the exported graph and the eager network then agree to 1e-5
    # (bfloat16 rounding differs between them; precision_test covers it).
    config = _config(**{'network.compute_dtype': 'float32'})
    facts = builder.environment_facts(config)
    learner = builder.make_learner(config, facts, tf.distribute.get_strategy(),
                                   None, None)
    rng = np.random.default_rng(0)
    for v in learner.network.trainable_variables:
      v.assign(v + 0.3 * rng.normal(size=v.shape).astype(np.float32))
    path = learner_loop.export_policy(config, facts, learner,
                                      self.get_temp_dir())
    policy = tf.saved_model.load(path)
    self.assertEqual([g.decode() for g in policy.games.numpy()],
                     ['bit_flipping'])
    self.assertEqual(list(policy.observation_shape.numpy()), [2 * N])

    env = bit_flipping.make_bit_flipping(num_bits=N, seed=5)
    chosen = np.float32([1, 0, 1, 1])
    step = env.reset_with_goal(chosen)
    observation = step.observation['observation'][None]
    np.testing.assert_array_equal(observation[0, N:], chosen)
    state = policy.initial_state(1)
    inputs = dict(prev_action=np.int32([0]), prev_reward=np.float32([0.0]),
                  first=np.array([True]), task_id=np.int32([0]))
    out = policy.step(observation=observation, state=state, **inputs)
    live, _ = learner.network.step(observation, inputs['prev_action'],
                                   inputs['prev_reward'], inputs['first'],
                                   inputs['task_id'],
                                   learner.network.initial_state(1))
    self.assertAllClose(out['logits'], live.policy_logits, atol=1e-5)
    # The goal inside the observation conditions the policy.
    other = bit_flipping.with_goal(observation, 1.0 - chosen[None]).numpy()
    out_other = policy.step(observation=other, state=state, **inputs)
    self.assertNotAllClose(out['logits'], out_other['logits'])

    # A whole episode for the chosen goal, acting with the SavedModel only.
    length = 0
    while not step.last():
      np.testing.assert_array_equal(step.observation['desired_goal'], chosen)
      out = policy.step(observation=step.observation['observation'][None],
                        state=state, **inputs)
      state = out['state']
      action = int(out['action'].numpy()[0])
      self.assertIn(action, range(N))
      inputs.update(prev_action=np.int32([action]), first=np.array([False]))
      step = env.step(action)
      inputs['prev_reward'] = np.float32([step.reward])
      length += 1
    self.assertLessEqual(length, N)
    reached = np.array_equal(step.observation['achieved_goal'], chosen)
    self.assertEqual(step.discount == 0.0, reached)


if __name__ == '__main__':
  tf.test.main()
