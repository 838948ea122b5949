"""Tests for envs/atari.py on the real emulator (ale-py), and tests/fakes.py."""

from absl.testing import absltest
from absl.testing import parameterized
import ale_py
from ale_py import roms
import cv2
import dm_env
from dm_env import test_utils
import numpy as np

from envs import atari
from envs import scores
from tests import fakes

# ITU-R 601 luma, which ALE uses for its grayscale palette.
_LUMA = np.array([0.299, 0.587, 0.114])


def _random_actions(num_actions, count, seed=0):
  return np.random.default_rng(seed).integers(num_actions, size=count).tolist()


class PongConformanceTest(test_utils.EnvironmentTestMixin, absltest.TestCase):

  def make_object_under_test(self):
    # 400 raw frames = 100 agent steps, so the sequence crosses an episode end.
    return atari.make_atari('pong', max_episode_frames=400)

  def make_action_sequence(self):
    yield from _random_actions(6, 130)


class FakeAtariConformanceTest(test_utils.EnvironmentTestMixin,
                               absltest.TestCase):

  def make_object_under_test(self):
    return fakes.FakeAtari(episode_length=5)

  def make_action_sequence(self):
    yield from _random_actions(6, 20)


class FakeAtariTest(absltest.TestCase):

  def test_specs_and_attributes_match_make_atari(self):
    env, fake = atari.make_atari('pong'), fakes.FakeAtari(num_actions=6)
    for name in ('observation_spec', 'action_spec', 'reward_spec',
                 'discount_spec'):
      self.assertEqual(repr(getattr(env, name)()), repr(getattr(fake, name)()))
    for name in ('num_actions', 'action_set_name', 'frame_skip'):
      self.assertEqual(getattr(env, name), getattr(fake, name), name)
    self.assertLen(fake.action_meanings, 6)
    self.assertEqual(fake.action_meanings[:2], env.action_meanings[:2])

  def test_episode_length_rewards_and_determinism(self):
    runs = []
    for _ in range(2):
      env = fakes.FakeAtari(episode_length=7, seed=3)
      steps = [env.reset()] + [env.step(0) for _ in range(7)]
      self.assertEqual([s.step_type for s in steps],
                       [dm_env.StepType.FIRST] + [dm_env.StepType.MID] * 6 +
                       [dm_env.StepType.LAST])
      self.assertEqual(steps[-1].discount, 0.0)
      self.assertTrue({s.reward for s in steps[1:]} <= {-1.0, 0.0, 1.0})
      # Newest last: the previous newest frame moves one slot left.
      np.testing.assert_array_equal(steps[2].observation[..., -2],
                                    steps[1].observation[..., -1])
      runs.append(steps)
    for a, b in zip(*runs):
      np.testing.assert_array_equal(a.observation, b.observation)
      self.assertEqual(a.reward, b.reward)


class AtariPreprocessingTest(parameterized.TestCase):

  def test_default_specs(self):
    env = atari.make_atari('pong')
    spec = env.observation_spec()
    self.assertEqual((spec.shape, spec.dtype, spec.name), ((84, 84, 4),
                                                           np.uint8,
                                                           'observation'))
    self.assertEqual((spec.minimum, spec.maximum), (0, 255))
    self.assertEqual(env.action_spec().num_values, 6)
    self.assertEqual(env.reward_spec().dtype, np.float32)
    self.assertEqual(env.discount_spec().maximum, 1.0)
    self.assertEqual(env.frame_skip, 4)
    env.reset()
    step = env.step(0)
    self.assertEqual(step.observation.shape, (84, 84, 4))
    self.assertEqual(step.observation.dtype, np.uint8)
    self.assertEqual(np.asarray(step.reward).dtype, np.float32)

  @parameterized.parameters('space_invaders', 'pong')
  def test_frames_match_independent_emulator(self, game):
    seed, num_steps = 5, 60
    env = atari.make_atari(game, seed=seed, sticky_action_prob=0.0,
                           noop_max=0)
    ale = ale_py.ALEInterface()
    ale.setInt('random_seed', seed)
    ale.setFloat('repeat_action_probability', 0.0)
    ale.loadROM(roms.get_rom_path(game))
    ale.reset_game()
    action_set = ale.getMinimalActionSet()

    def gray(rgb):  # uint8 [210, 160]
      return np.round(rgb.astype(np.float64) @ _LUMA).astype(np.uint8)

    def resize(frame):  # uint8 [84, 84]
      return cv2.resize(frame, (84, 84), interpolation=cv2.INTER_AREA)

    expected = [np.zeros([84, 84], np.uint8)] * 3
    expected.append(resize(gray(ale.getScreenRGB())))
    step = env.reset()
    np.testing.assert_array_equal(step.observation, np.stack(expected, -1))
    pool_mattered = 0
    for action in _random_actions(len(action_set), num_steps):
      reward, raw = 0, []
      for _ in range(4):
        reward += ale.act(action_set[action])
        raw.append(gray(ale.getScreenRGB()))
      expected.append(resize(np.maximum(raw[-2], raw[-1])))
      pool_mattered += not np.array_equal(expected[-1], resize(raw[-1]))
      step = env.step(action)
      self.assertEqual(step.step_type, dm_env.StepType.MID)
      self.assertEqual(step.reward, reward)
      np.testing.assert_array_equal(step.observation[..., -1], expected[-1])
      np.testing.assert_array_equal(step.observation,
                                    np.stack(expected[-4:], -1))
    self.assertGreater(pool_mattered, 0)  # The comparison sees the max-pool.

  def test_sticky_action_probability_read_back(self):
    self.assertAlmostEqual(
        atari.make_atari('pong').ale.getFloat('repeat_action_probability'),
        0.25)
    self.assertEqual(
        atari.make_atari('pong', sticky_action_prob=0.0).ale.getFloat(
            'repeat_action_probability'), 0.0)
    self.assertEqual(atari.make_atari('pong').ale.getInt('frame_skip'), 1)

  def test_noop_starts(self):
    counts = []
    for seed in range(8):
      env = atari.make_atari('pong', seed=seed)
      for _ in range(2):
        env.reset()
        self.assertBetween(env.noop_count, 0, 30)
        self.assertEqual(env.episode_frames, env.noop_count)
        self.assertEqual(env.ale.getEpisodeFrameNumber(), env.noop_count)
        counts.append(env.noop_count)
    self.assertGreater(len(set(counts)), 4)
    env = atari.make_atari('pong', noop_max=0)
    env.reset()
    self.assertEqual(env.ale.getEpisodeFrameNumber(), 0)

  @parameterized.parameters((0, 0), (30, 1), (30, 2))
  def test_raw_frame_cap_truncates(self, noop_max, seed):
    env = atari.make_atari('pong', seed=seed, noop_max=noop_max,
                           max_episode_frames=400)
    env.reset()
    expected_steps = -(-(400 - env.noop_count) // 4)  # ceil, agent steps.
    if noop_max == 0:
      self.assertEqual(expected_steps, 100)
    for t in range(1, expected_steps + 1):
      step = env.step(t % 6)
      self.assertEqual(step.last(), t == expected_steps, t)
    self.assertEqual(step.discount, 1.0)
    self.assertEqual(env.episode_frames, 400)
    self.assertTrue(env.step(0).first())

  def test_game_over_terminates_with_zero_discount(self):
    env = atari.make_atari('pong', noop_max=0)
    env.reset()
    for t in range(1, 2000):
      step = env.step(0)  # NOOP loses 21 points, long before the cap.
      if step.last():
        break
    self.assertTrue(step.last())
    self.assertEqual(step.discount, 0.0)
    env.discount_spec().validate(step.discount)  # float32, not float64.
    env.reward_spec().validate(step.reward)
    self.assertTrue(env.ale.game_over())
    self.assertLess(t * 4, 108_000)

  def _play_until_life_lost(self, env):
    """FIREs (launches the ball), then waits; returns (agent steps, step)."""
    env.reset()
    lives = env.ale.lives()
    for t in range(1, 500):
      step = env.step(1 if t % 50 == 1 else 0)
      if step.last() or env.ale.lives() < lives:
        return t, step, lives
    self.fail('Breakout did not lose a life within 500 agent steps')

  def test_life_loss_is_not_terminal_by_default(self):
    env = atari.make_atari('breakout')
    _, step, lives = self._play_until_life_lost(env)
    self.assertEqual(env.ale.lives(), lives - 1)
    self.assertEqual(step.step_type, dm_env.StepType.MID)
    self.assertEqual(step.discount, 1.0)

  def test_terminal_on_life_loss(self):
    env = atari.make_atari('breakout', terminal_on_life_loss=True)
    _, step, lives = self._play_until_life_lost(env)
    self.assertEqual(env.ale.lives(), lives - 1)
    self.assertTrue(step.last())
    self.assertEqual(step.discount, 0.0)
    frames = env.episode_frames
    self.assertTrue(env.reset().first())  # Next life of the same game.
    self.assertEqual(env.ale.lives(), lives - 1)
    self.assertEqual(env.episode_frames, frames)

  @parameterized.parameters((False, 'minimal', 6), (True, 'full', 18))
  def test_action_sets(self, full, name, num_actions):
    env = atari.make_atari('pong', full_action_space=full)
    self.assertEqual(env.num_actions, num_actions)
    self.assertEqual(env.action_spec().num_values, num_actions)
    self.assertEqual(env.action_set_name, name)
    self.assertEqual(env.action_meanings[:2], ['NOOP', 'FIRE'])
    if full:
      self.assertEqual(env.action_meanings, list(ale_py.Action.__members__))
    else:
      self.assertEqual(env.action_meanings, ['NOOP', 'FIRE', 'RIGHT', 'LEFT',
                                             'RIGHTFIRE', 'LEFTFIRE'])
    with self.assertRaisesRegex(ValueError, rf'action must be in \[0, '
                                rf'{num_actions}\), got {num_actions}'):
      env.reset()
      env.step(num_actions)

  def test_full_action_set_has_18_actions_in_every_game(self):
    # Skiing's legal set in ale-py 0.12 has 9 actions; a multi-task policy
    # head needs the same 18 everywhere (envs/atari.py).
    for game in ('skiing', 'pong', 'montezuma_revenge'):
      env = atari.make_atari(game, full_action_space=True)
      self.assertEqual(env.action_meanings, list(ale_py.Action.__members__),
                       game)
      env.reset()
      for action in range(18):  # ALE accepts every one of them
        env.step(action)
      env.close()

  def _rollout(self, seed, actions, **kwargs):
    env = atari.make_atari('pong', seed=seed, **kwargs)
    steps = [env.reset()] + [env.step(a) for a in actions]
    return (np.stack([s.observation for s in steps]),
            np.array([s.reward or 0.0 for s in steps]))

  def test_determinism_and_seed_divergence(self):
    actions = _random_actions(6, 150)
    obs_a, rewards_a = self._rollout(7, actions)
    obs_b, rewards_b = self._rollout(7, actions)
    obs_c, _ = self._rollout(8, actions)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rewards_a, rewards_b)
    self.assertFalse(np.array_equal(obs_a, obs_c))

  def test_seed_drives_sticky_actions(self):
    # Without no-ops the only randomness is ALE's sticky actions (its seed).
    actions = _random_actions(6, 100)
    sticky = [self._rollout(s, actions, noop_max=0)[0] for s in (7, 8)]
    self.assertFalse(np.array_equal(*sticky))
    plain = [self._rollout(s, actions, noop_max=0, sticky_action_prob=0.0)[0]
             for s in (7, 8)]
    np.testing.assert_array_equal(*plain)

  def test_unknown_game_suggests_close_name(self):
    with self.assertRaisesRegex(
        ValueError, r"Unknown Atari game 'pongg'; did you mean: pong\? "
        r'\(57 games'):
      atari.make_atari('pongg')
    self.assertEqual(atari.validate_game('MontezumaRevenge'),
                     'montezuma_revenge')
    self.assertEqual(atari.make_atari('SpaceInvaders').game, 'space_invaders')

  @parameterized.parameters(
      ('frame_skip', 0), ('sticky_action_prob', 1.5),
      ('sticky_action_prob', -0.1), ('noop_max', -1),
      ('max_episode_frames', 3), ('frame_stack', 0), ('screen_size', 0),
      ('seed', -1), ('seed', 2**31), ('frame_skip', 2.0))
  def test_invalid_arguments(self, name, value):
    with self.assertRaisesRegex(ValueError, rf'{name} .*got {value}'):
      atari.make_atari('pong', **{name: value})

  def test_catalogue_is_the_csv_and_maps_to_rom_ids(self):
    self.assertLen(atari.ATARI57_GAMES, 57)
    self.assertEqual(list(atari.ATARI57_GAMES), sorted(scores.HUMAN_SCORES))
    rom_ids = set(roms.get_all_rom_ids())
    for game in atari.ATARI57_GAMES:
      self.assertIn(atari._ROM_ID_OVERRIDES.get(game, game), rom_ids)

  def test_every_atari57_game_constructs_and_resets(self):
    for game in atari.ATARI57_GAMES:
      env = atari.make_atari(game)
      self.assertEqual(env.game, game)
      step = env.reset()
      self.assertTrue(step.first(), game)
      self.assertEqual(step.observation.shape, (84, 84, 4), game)
      self.assertGreater(step.observation[..., -1].max(), 0, game)
      self.assertTrue(env.step(0).mid(), game)
      env.close()


if __name__ == '__main__':
  absltest.main()
