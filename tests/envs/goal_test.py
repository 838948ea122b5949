"""Tests for envs/goal.py, envs/bit_flipping.py and envs/goal_gridworld.py."""

import collections

from absl.testing import absltest
from absl.testing import parameterized
import dm_env
from dm_env import test_utils
import numpy as np
import tensorflow as tf

from envs import bit_flipping
from envs import goal_gridworld

_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # UP, DOWN, LEFT, RIGHT


def _bit_oracle(observation):
  """Flips the first bit that differs from the goal."""
  return int(np.argmax(observation['achieved_goal'] !=
                       observation['desired_goal']))


def _bit_avoider(observation):
  """Flips a bit that already matches (or bit 0): never reaches the goal."""
  same = observation['achieved_goal'] == observation['desired_goal']
  return int(np.argmax(same)) if same.any() else 0


def _grid_next(walls, cell, action):
  target = (cell[0] + _MOVES[action][0], cell[1] + _MOVES[action][1])
  return tuple(cell) if walls[target] else target


def _grid_oracle(observation):
  """First move of a shortest path (BFS over the wall plane of the image)."""
  walls = observation['observation'][..., goal_gridworld.WALL_PLANE] > 0
  start = tuple(observation['achieved_goal'])
  target = tuple(observation['desired_goal'])
  first_move = {start: None}
  queue = collections.deque([start])
  while queue:
    cell = queue.popleft()
    if cell == target:
      return first_move[cell]
    for action in range(4):
      nxt = _grid_next(walls, cell, action)
      if nxt not in first_move:
        first_move[nxt] = action if first_move[cell] is None else first_move[
            cell]
        queue.append(nxt)
  raise AssertionError(f'goal {target} unreachable from {start}')


def _grid_avoider(observation):
  """A move that does not enter the goal cell (staying put is allowed)."""
  walls = observation['observation'][..., goal_gridworld.WALL_PLANE] > 0
  cell = tuple(observation['achieved_goal'])
  target = tuple(observation['desired_goal'])
  return next(a for a in range(4) if _grid_next(walls, cell, a) != target)


def _run_episode(env, policy):
  step = env.reset()
  steps = [step]
  while not step.last():
    step = env.step(policy(step.observation))
    steps.append(step)
  return steps


class BitFlippingConformanceTest(test_utils.EnvironmentTestMixin,
                                 absltest.TestCase):

  def make_object_under_test(self):
    return bit_flipping.make_bit_flipping(num_bits=4)

  def make_action_sequence(self):
    yield from np.random.default_rng(0).integers(4, size=60).tolist()


class GoalGridworldConformanceTest(test_utils.EnvironmentTestMixin,
                                   absltest.TestCase):

  def make_object_under_test(self):
    return goal_gridworld.make_goal_gridworld(size=7, max_steps=10)

  def make_action_sequence(self):
    yield from np.random.default_rng(0).integers(4, size=60).tolist()


_ENVS = (('bit_flipping', bit_flipping.make_bit_flipping, _bit_oracle, _bit_avoider),
         ('goal_gridworld', goal_gridworld.make_goal_gridworld, _grid_oracle,
          _grid_avoider))


class GoalEnvTest(parameterized.TestCase):

  def test_bit_flipping_defaults(self):
    env = bit_flipping.make_bit_flipping()
    self.assertEqual((env.game, env.num_actions, env.action_set_name,
                      env.frame_skip, env.max_steps),
                     ('bit_flipping', 15, 'minimal', 1, 15))
    self.assertEqual(env.action_meanings[:2], ['FLIP_0', 'FLIP_1'])
    spec = env.observation_spec()
    self.assertEqual({k: (s.shape, s.dtype) for k, s in spec.items()},
                     {'observation': ((30,), np.float32),
                      'desired_goal': ((15,), np.float32),
                      'achieved_goal': ((15,), np.float32)})
    observation = env.reset().observation
    np.testing.assert_array_equal(
        observation['observation'],
        np.concatenate([observation['achieved_goal'],
                        observation['desired_goal']]))
    self.assertFalse(np.array_equal(observation['achieved_goal'],
                                    observation['desired_goal']))

  def test_goal_gridworld_defaults_and_layout(self):
    env = goal_gridworld.make_goal_gridworld()
    self.assertEqual((env.game, env.num_actions, env.action_set_name,
                      env.frame_skip, env.max_steps),
                     ('goal_gridworld', 4, 'minimal', 1, 44))
    self.assertEqual(env.action_meanings, ['UP', 'DOWN', 'LEFT', 'RIGHT'])
    spec = env.observation_spec()
    self.assertEqual({k: (s.shape, s.dtype) for k, s in spec.items()},
                     {'observation': ((11, 11, 3), np.uint8),
                      'desired_goal': ((2,), np.int32),
                      'achieved_goal': ((2,), np.int32)})
    # Two 9x4 rooms joined by one door cell in column 5.
    self.assertEqual(int((~env.walls).sum()), 2 * 9 * 4 + 1)
    self.assertEqual(np.argwhere(~env.walls[:, 5]).tolist(), [[5]])
    for _ in range(20):
      observation = env.reset().observation
      image = observation['observation']
      self.assertEqual(set(np.unique(image)), {0, 255})
      np.testing.assert_array_equal(image[..., goal_gridworld.WALL_PLANE] > 0,
                                    env.walls)
      for plane, cell in ((goal_gridworld.AGENT_PLANE, observation['achieved_goal']),
                          (goal_gridworld.GOAL_PLANE, observation['desired_goal'])):
        self.assertEqual(np.argwhere(image[..., plane]).tolist(),
                         [cell.tolist()])
        self.assertFalse(env.walls[tuple(cell)])
      self.assertNotEqual(observation['achieved_goal'].tolist(),
                          observation['desired_goal'].tolist())

  @parameterized.named_parameters(*[(name, make) for name, make, _, _ in _ENVS])
  def test_seeded_and_deterministic(self, make):
    def trajectory(seed):
      env = make(seed=seed)
      actions = np.random.default_rng(1).integers(env.num_actions, size=80)
      steps = [env.reset()] + [env.step(int(a)) for a in actions]
      return [(s.step_type, s.reward, s.discount,
               {k: v.tolist() for k, v in s.observation.items()})
              for s in steps]
    self.assertEqual(trajectory(3), trajectory(3))
    self.assertNotEqual(trajectory(3), trajectory(4))

  @parameterized.named_parameters(*_ENVS)
  def test_success_ends_with_reward_zero_and_discount_zero(
      self, make, oracle, unused_avoider):
    for seed in range(10):
      env = make(seed=seed)
      for _ in range(3):
        steps = _run_episode(env, oracle)
        last = steps[-1]
        self.assertEqual((last.step_type, last.reward, last.discount),
                         (dm_env.StepType.LAST, 0.0, 0.0))
        np.testing.assert_array_equal(last.observation['achieved_goal'],
                                      last.observation['desired_goal'])
        self.assertLessEqual(len(steps) - 1, env.max_steps)
        for step in steps[1:-1]:
          self.assertEqual((step.step_type, step.reward, step.discount),
                           (dm_env.StepType.MID, -1.0, 1.0))

  @parameterized.named_parameters(*_ENVS)
  def test_time_limit_is_a_truncation(self, make, unused_oracle, avoider):
    env = make(seed=5, max_steps=7)
    for _ in range(3):
      steps = _run_episode(env, avoider)
      self.assertLen(steps, 8)
      self.assertEqual([(s.step_type, s.reward, s.discount)
                        for s in steps[1:]],
                       [(dm_env.StepType.MID, -1.0, 1.0)] * 6 +
                       [(dm_env.StepType.LAST, -1.0, 1.0)])
      self.assertTrue(env.step(0).first())

  @parameterized.named_parameters(
      ('bit_flipping', bit_flipping.make_bit_flipping, bit_flipping.reward),
      ('goal_gridworld', goal_gridworld.make_goal_gridworld, goal_gridworld.reward))
  def test_vectorised_reward_fn_equals_env_reward(self, make, reward_fn):
    env = make(seed=0, **({'num_bits': 3} if make is bit_flipping.make_bit_flipping
                          else {'size': 5}))
    rng = np.random.default_rng(0)
    achieved, desired, rewards, successes = [], [], [], []
    step = env.reset()
    while len(rewards) < 200:
      step = env.step(int(rng.integers(env.num_actions)))
      if step.first():
        continue
      achieved.append(step.observation['achieved_goal'])
      desired.append(step.observation['desired_goal'])
      rewards.append(step.reward)
      successes.append(step.last() and step.discount == 0.0)
    self.assertGreater(sum(successes), 5)  # Both cases are covered.
    achieved = np.reshape(achieved, [20, 10, -1])  # [..., G] leading [20, 10]
    desired = np.reshape(desired, [20, 10, -1])
    reward, success = tf.function(reward_fn)(achieved, desired)
    self.assertEqual((reward.dtype, success.dtype), (tf.float32, tf.bool))
    np.testing.assert_array_equal(reward.numpy().ravel(), rewards)
    np.testing.assert_array_equal(success.numpy().ravel(), successes)

  def test_gridworld_with_goal_rewrites_only_the_goal_plane(self):
    env = goal_gridworld.make_goal_gridworld(seed=2)
    observations = [env.reset().observation for _ in range(6)]
    images = np.stack([o['observation'] for o in observations]).reshape(
        [2, 3, 11, 11, 3])  # [2, 3, H, W, C]
    originals = np.stack([o['desired_goal'] for o in observations]).reshape(
        [2, 3, 2])
    new_goals = np.stack([o['achieved_goal'] for o in observations]).reshape(
        [2, 3, 2])
    rewrite = tf.function(goal_gridworld.with_goal)
    rewritten = rewrite(images, new_goals).numpy()
    self.assertEqual(rewritten.dtype, np.uint8)
    np.testing.assert_array_equal(rewritten[..., :goal_gridworld.GOAL_PLANE],
                                  images[..., :goal_gridworld.GOAL_PLANE])
    for index in np.ndindex(2, 3):
      plane = rewritten[index][..., goal_gridworld.GOAL_PLANE]
      self.assertEqual(np.argwhere(plane == 255).tolist(),
                       [new_goals[index].tolist()])
      self.assertEqual(int((plane != 0).sum()), 1)
    # Writing the env's own goal back gives the env's observation exactly.
    np.testing.assert_array_equal(rewrite(rewritten, originals), images)

  def test_bit_flipping_with_goal(self):
    env = bit_flipping.make_bit_flipping(num_bits=5)
    observation = env.reset().observation
    new_goal = 1.0 - observation['desired_goal']
    rewritten = bit_flipping.with_goal(
        observation['observation'][None], new_goal[None]).numpy()[0]
    np.testing.assert_array_equal(
        rewritten, np.concatenate([observation['achieved_goal'], new_goal]))

  @parameterized.parameters(
      (bit_flipping.make_bit_flipping, 'num_bits', 0),
      (bit_flipping.make_bit_flipping, 'max_steps', 0),
      (bit_flipping.make_bit_flipping, 'seed', -1),
      (goal_gridworld.make_goal_gridworld, 'size', 4),
      (goal_gridworld.make_goal_gridworld, 'max_steps', 0),
      (goal_gridworld.make_goal_gridworld, 'seed', -1))
  def test_invalid_arguments(self, make, name, value):
    with self.assertRaisesRegex(ValueError,
                                rf'{name} must be >= .*got {value}'):
      make(**{name: value})

  @parameterized.named_parameters(*_ENVS)
  def test_reset_with_goal_plays_for_the_chosen_goal(self, make, oracle,
                                                     unused_avoider):
    env = make(seed=4)
    chosen = env.reset().observation['achieved_goal']  # A reachable goal.
    for _ in range(5):
      step = env.reset_with_goal(chosen)
      self.assertTrue(step.first())
      np.testing.assert_array_equal(step.observation['desired_goal'], chosen)
      self.assertFalse(np.array_equal(step.observation['achieved_goal'],
                                      chosen))
      steps = [step]
      while not steps[-1].last():
        steps.append(env.step(oracle(steps[-1].observation)))
      np.testing.assert_array_equal(steps[-1].observation['achieved_goal'],
                                    chosen)
      self.assertEqual(steps[-1].discount, 0.0)
    with self.assertRaisesRegex(ValueError, 'goal must be a valid goal'):
      env.reset_with_goal(np.full([7], 3))

  @parameterized.named_parameters(*[(name, make) for name, make, _, _ in _ENVS])
  def test_invalid_action(self, make):
    env = make()
    env.reset()
    with self.assertRaisesRegex(ValueError, r'action must be in \[0, '):
      env.step(env.num_actions)


if __name__ == '__main__':
  absltest.main()
