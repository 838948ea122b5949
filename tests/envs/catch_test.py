"""Tests for envs/catch.py."""

from absl.testing import absltest
from absl.testing import parameterized
import dm_env
from dm_env import test_utils
import numpy as np

from envs import catch


def _tracking_action(observation, pixels_per_cell=4):
  """Moves the paddle (bottom row) under the ball, read from pixels only."""
  board = observation[::pixels_per_cell, ::pixels_per_cell, 0] > 0
  ball_column = int(np.argmax(board[:-1].any(axis=0)))
  paddle_column = int(np.argmax(board[-1]))
  return 1 + int(np.sign(ball_column - paddle_column))


class CatchConformanceTest(test_utils.EnvironmentTestMixin, absltest.TestCase):

  def make_object_under_test(self):
    return catch.make_catch()

  def make_action_sequence(self):
    yield from np.random.default_rng(0).integers(3, size=40).tolist()


class CatchTest(parameterized.TestCase):

  def test_defaults(self):
    env = catch.make_catch()
    spec = env.observation_spec()
    self.assertEqual((spec.shape, spec.dtype), ((40, 20, 1), np.uint8))
    self.assertEqual(env.action_spec().num_values, 3)
    self.assertEqual((env.game, env.num_actions, env.action_set_name,
                      env.frame_skip), ('catch', 3, 'minimal', 1))
    self.assertEqual(env.action_meanings, ['LEFT', 'STAY', 'RIGHT'])
    observation = env.reset().observation
    self.assertEqual(observation.shape, (40, 20, 1))
    # Ball (one cell) and paddle (one cell): 2 cells of 4x4 pixels at 255.
    self.assertEqual(int((observation == 255).sum()), 2 * 16)
    self.assertEqual(int(((observation != 0) & (observation != 255)).sum()), 0)
    # The default image fits the shallow torso: 8x8/4 VALID then 4x4/2 VALID.
    height, width = (40 - 8) // 4 + 1, (20 - 8) // 4 + 1
    self.assertEqual(((height - 4) // 2 + 1, (width - 4) // 2 + 1), (3, 1))

  @parameterized.parameters((10, 5), (6, 3), (12, 7))
  def test_episode_length_is_rows_minus_one(self, rows, columns):
    env = catch.make_catch(rows=rows, columns=columns)
    for _ in range(3):
      self.assertTrue(env.reset().first())
      types = [env.step(1).step_type for _ in range(rows - 1)]
      self.assertEqual(types, [dm_env.StepType.MID] * (rows - 2) +
                       [dm_env.StepType.LAST])

  def test_tracking_policy_always_catches(self):
    for seed in range(20):
      env = catch.make_catch(seed=seed)
      step = env.reset()
      rewards = []
      while not step.last():
        step = env.step(_tracking_action(step.observation))
        rewards.append(float(step.reward))
      self.assertEqual(rewards, [0.0] * 8 + [1.0])
      self.assertEqual(step.discount, 0.0)

  def test_stay_policy_return_matches_analytic_value(self):
    # The paddle stays in column 2 of 5; P(catch) = 1/5, so the expected
    # return is 1/5 * (+1) + 4/5 * (-1) = -0.6. Std of one return is 0.8, so
    # over 1000 episodes the mean's std is ~0.025; allow 4 std.
    returns = []
    for seed in range(100):
      env = catch.make_catch(seed=seed)
      for _ in range(10):
        step = env.reset()
        while not step.last():
          step = env.step(1)
        returns.append(float(step.reward))
    self.assertSetEqual(set(returns), {-1.0, 1.0})
    self.assertAlmostEqual(np.mean(returns), -0.6, delta=0.1)

  def test_seeded_and_deterministic(self):
    def ball_columns(seed):
      env = catch.make_catch(seed=seed)
      columns = []
      for _ in range(20):
        env.reset()
        columns.append(env.ball_column)
      return columns
    self.assertEqual(ball_columns(3), ball_columns(3))
    self.assertNotEqual(ball_columns(3), ball_columns(4))
    self.assertEqual(set(ball_columns(3)) | set(ball_columns(4)),
                     set(range(5)))

  def test_paddle_moves_and_clips_at_walls(self):
    env = catch.make_catch()
    env.reset()
    self.assertEqual(env.paddle_column, 2)
    for expected in (1, 0, 0):
      env.step(0)
      self.assertEqual(env.paddle_column, expected)
    observation = env.step(2).observation
    self.assertEqual(env.paddle_column, 1)
    self.assertEqual(int(observation[39, 4:8, 0].min()), 255)

  @parameterized.parameters(('rows', 1), ('columns', 0),
                            ('pixels_per_cell', 0), ('seed', -1))
  def test_invalid_arguments(self, name, value):
    with self.assertRaisesRegex(ValueError,
                                rf'{name} must be >= .*got {value}'):
      catch.make_catch(**{name: value})

  def test_invalid_action(self):
    env = catch.make_catch()
    env.reset()
    with self.assertRaisesRegex(ValueError, r'action must be in \[0, 3\)'):
      env.step(3)


if __name__ == '__main__':
  absltest.main()
