"""Tests for envs/distral_gridworld.py (and goal_gridworld.two_room_walls)."""

import collections

from absl.testing import absltest
from absl.testing import parameterized
import dm_env
from dm_env import test_utils
import numpy as np

from envs import distral_gridworld
from envs import goal_gridworld

_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # UP, DOWN, LEFT, RIGHT
_UP, _DOWN, _LEFT, _RIGHT = range(4)


def _walls_of(observation):
  return observation[..., distral_gridworld.WALL_PLANE] > 0  # [H, W]


def _agent_of(observation):
  cells = np.argwhere(observation[..., distral_gridworld.AGENT_PLANE] > 0)
  assert len(cells) == 1, cells
  return tuple(int(x) for x in cells[0])


def _start(env):
  """Resets `env` and returns its start cell (row, column)."""
  env.reset()
  return tuple(env.position.tolist())


def _pool_sizes(size):
  """(training, held-out) pool sizes: G − H and H = max(1, G // 4)."""
  num_candidates = len(distral_gridworld.candidate_goals(size))
  num_held_out = max(1, num_candidates // 4)
  return num_candidates - num_held_out, num_held_out


def _shortest_path(walls, start, target):
  """Actions of a shortest path (BFS over `walls`, bool [H, W])."""
  previous = {tuple(start): None}
  queue = collections.deque([tuple(start)])
  while queue:
    cell = queue.popleft()
    if cell == tuple(target):
      actions = []
      while previous[cell] is not None:
        cell, action = previous[cell]
        actions.append(action)
      return actions[::-1]
    for action, (d_row, d_column) in enumerate(_MOVES):
      nxt = (cell[0] + d_row, cell[1] + d_column)
      if not walls[nxt] and nxt not in previous:
        previous[nxt] = (cell, action)
        queue.append(nxt)
  raise AssertionError(f'{target} unreachable from {start}')


class DistralGridworldConformanceTest(test_utils.EnvironmentTestMixin,
                                      absltest.TestCase):

  def make_object_under_test(self):
    return distral_gridworld.make_distral_gridworld(goal=(4, 6), seed=0,
                                                    max_steps=10)

  def make_action_sequence(self):
    yield from np.random.default_rng(0).integers(4, size=60).tolist()


class TwoRoomWallsTest(absltest.TestCase):

  def test_layout(self):
    walls = goal_gridworld.two_room_walls(9)
    self.assertEqual((walls.shape, walls.dtype), ((9, 9), bool))
    expected = ['#########'] + ['#...#...#'] * 3 + ['#.......#'] + [
        '#...#...#'] * 3 + ['#########']
    self.assertEqual([''.join('#' if w else '.' for w in row)
                      for row in walls], expected)

  def test_goal_gridworld_uses_it(self):
    env = goal_gridworld.make_goal_gridworld(size=7)
    np.testing.assert_array_equal(env.walls,
                                  goal_gridworld.two_room_walls(7))


class DistralGridworldTest(parameterized.TestCase):

  def test_specs_and_attributes(self):
    env = distral_gridworld.make_distral_gridworld(goal=(2, 7), seed=0)
    spec = env.observation_spec()
    self.assertEqual((spec.shape, spec.dtype, spec.minimum, spec.maximum,
                      spec.name), ((9, 9, 2), np.uint8, 0, 255, 'observation'))
    self.assertEqual(env.action_spec().num_values, 4)
    self.assertEqual((env.game, env.num_actions, env.action_set_name,
                      env.frame_skip, env.max_steps),
                     ('distral_gridworld', 4, 'minimal', 1, 50))
    self.assertEqual(env.action_meanings, ['UP', 'DOWN', 'LEFT', 'RIGHT'])
    self.assertEqual((env.goal.dtype, env.goal.tolist()), (np.int32, [2, 7]))
    observation = env.reset().observation
    self.assertEqual((env.position.dtype, env.position.shape),
                     (np.int32, (2,)))
    np.testing.assert_array_equal(env.achieved_goal, env.position)
    self.assertEqual(_agent_of(observation), tuple(env.position))
    np.testing.assert_array_equal(_walls_of(observation),
                                  goal_gridworld.two_room_walls(9))
    self.assertEqual(set(np.unique(observation).tolist()), {0, 255})

  @parameterized.parameters(5, 6, 9, 11)
  def test_shortest_path_reaches_goal_with_reward_one(self, size):
    goals = distral_gridworld.training_goals(size, _pool_sizes(size)[0])
    goals += distral_gridworld.held_out_goals(size, _pool_sizes(size)[1])
    goals.append((size // 2, size // 2))  # The door is a free cell too.
    goals.append((1, 1))  # So is a left-room cell.
    for seed, goal in enumerate(goals):
      env = distral_gridworld.make_distral_gridworld(size=size, goal=goal,
                                                     seed=seed)
      for _ in range(2):
        step = env.reset()
        path = _shortest_path(_walls_of(step.observation), env.position, goal)
        self.assertNotEmpty(path)  # The start is never the goal.
        steps = [env.step(a) for a in path]
        self.assertEqual([(s.step_type, s.reward, s.discount)
                          for s in steps],
                         [(dm_env.StepType.MID, 0.0, 1.0)] * (len(path) - 1) +
                         [(dm_env.StepType.LAST, 1.0, 0.0)])
        self.assertEqual(env.position.tolist(), list(goal))
        self.assertEqual(_agent_of(steps[-1].observation), tuple(goal))
        self.assertTrue(env.step(0).first())

  def test_longest_path_of_default_board_is_12(self):
    walls = goal_gridworld.two_room_walls(9)
    starts = [c for c in np.argwhere(~walls) if c[1] < 4]
    longest = max(len(_shortest_path(walls, s, g))
                  for s in starts
                  for g in distral_gridworld.candidate_goals(9))
    self.assertEqual(longest, 12)

  def test_walls_block_moves(self):
    env = distral_gridworld.make_distral_gridworld(goal=(7, 7), seed=1)
    for _ in range(5):
      env.reset()
      _, column = env.position.tolist()
      for _ in range(9):
        env.step(_UP)
      self.assertEqual(env.position.tolist(), [1, column])
      for _ in range(9):
        env.step(_LEFT)
      self.assertEqual(env.position.tolist(), [1, 1])
      for _ in range(9):  # Row 1 has no door: stops left of the wall.
        step = env.step(_RIGHT)
      self.assertEqual(env.position.tolist(), [1, 3])
      self.assertEqual(_agent_of(step.observation), (1, 3))

  def test_time_limit_is_a_truncation(self):
    env = distral_gridworld.make_distral_gridworld(goal=(4, 6), seed=2,
                                                   max_steps=7)
    for _ in range(3):
      steps = [env.reset()] + [env.step(_LEFT) for _ in range(7)]
      self.assertEqual([(s.step_type, s.reward, s.discount)
                        for s in steps[1:]],
                       [(dm_env.StepType.MID, 0.0, 1.0)] * 6 +
                       [(dm_env.StepType.LAST, 0.0, 1.0)])
      self.assertTrue(env.step(_LEFT).first())

  def test_observation_has_no_goal_information(self):
    goals = distral_gridworld.training_goals(9, 4)
    envs = [distral_gridworld.make_distral_gridworld(goal=g, seed=7)
            for g in goals]
    self.assertLen({str(e.observation_spec()) for e in envs}, 1)
    actions = np.random.default_rng(3).integers(4, size=400)
    compared = 0
    for _ in range(3):
      steps = [e.reset() for e in envs]
      for action in actions:
        for step in steps[1:]:
          np.testing.assert_array_equal(step.observation,
                                        steps[0].observation)
        compared += 1
        if any(s.last() for s in steps):
          break
        steps = [e.step(int(action)) for e in envs]
    self.assertGreater(compared, 20)

  def test_starts_are_uniform_in_left_room(self):
    env = distral_gridworld.make_distral_gridworld(goal=(4, 6), seed=0)
    starts = collections.Counter(_start(env) for _ in range(2100))
    left_room = {(r, c) for r in range(1, 8) for c in range(1, 4)}
    self.assertEqual(set(starts), left_room)  # All 21, and only them.
    # 100 expected per cell; binomial std ~ 9.8, allow > 4 std.
    self.assertLess(max(abs(n - 100) for n in starts.values()), 45)

  def test_left_room_goal_is_never_a_start(self):
    env = distral_gridworld.make_distral_gridworld(goal=(3, 2), seed=0)
    starts = {_start(env) for _ in range(300)}
    self.assertLen(starts, 20)
    self.assertNotIn((3, 2), starts)

  def test_seeded_and_deterministic(self):
    def trajectory(seed):
      env = distral_gridworld.make_distral_gridworld(goal=(2, 6), seed=seed)
      actions = np.random.default_rng(1).integers(4, size=120)
      steps = [env.reset()] + [env.step(int(a)) for a in actions]
      return [(s.step_type, s.reward, s.discount, s.observation.tolist())
              for s in steps]
    self.assertEqual(trajectory(3), trajectory(3))
    self.assertNotEqual(trajectory(3), trajectory(4))

  def test_invalid_action(self):
    env = distral_gridworld.make_distral_gridworld(goal=(4, 6), seed=0)
    env.reset()
    with self.assertRaisesRegex(ValueError, r'action must be in \[0, 4\)'):
      env.step(4)

  @parameterized.parameters(
      ('size', 4, r'size must be >= 5, got 4'),
      ('size', 9.0, r'size must be an int >= 5, got 9\.0'),
      ('seed', -1, r'seed must be >= 0, got -1'),
      ('max_steps', 0, r'max_steps must be >= 1, got 0'),
      ('max_steps', True, r'max_steps must be an int >= 1, got True'),
      ('goal', (0, 0), r'goal must be a free .* 9x9 board.*got \(0, 0\)'),
      ('goal', (2, 4), r'goal must be a free .*got \(2, 4\)'),
      ('goal', (9, 9), r'goal must be a free .*got \(9, 9\)'),
      ('goal', (-1, 2), r'goal must be a free .*got \(-1, 2\)'),
      ('goal', (2.0, 6.0), r'goal must be a free .*got \(2\.0, 6\.0\)'),
      ('goal', (1, 2, 3), r'goal must be a free .*got \(1, 2, 3\)'))
  def test_invalid_arguments(self, name, value, message):
    kwargs = dict(size=9, goal=(4, 6), seed=0, max_steps=5)
    kwargs[name] = value
    with self.assertRaisesRegex(ValueError, message):
      distral_gridworld.make_distral_gridworld(**kwargs)


class GoalSetsTest(parameterized.TestCase):

  @parameterized.parameters(5, 6, 7, 9, 11)
  def test_candidates_are_the_right_room(self, size):
    candidates = distral_gridworld.candidate_goals(size)
    self.assertEqual(candidates.dtype, np.int32)
    expected = [[r, c] for r in range(1, size - 1)
                for c in range(size // 2 + 1, size - 1)]  # Row-major.
    self.assertEqual(candidates.tolist(), expected)

  @parameterized.parameters(5, 6, 7, 9, 11)
  def test_training_and_held_out_are_disjoint_and_in_right_room(self, size):
    num_train, num_held = _pool_sizes(size)
    train = distral_gridworld.training_goals(size, num_train)
    held = distral_gridworld.held_out_goals(size, num_held)
    self.assertEqual(train, distral_gridworld.training_goals(size, num_train))
    self.assertEqual(held, distral_gridworld.held_out_goals(size, num_held))
    self.assertEmpty(set(train) & set(held))
    self.assertLen(set(train) | set(held), num_train + num_held)
    candidates = {tuple(c) for c in
                  distral_gridworld.candidate_goals(size).tolist()}
    self.assertEqual(set(train) | set(held), candidates)
    for row, column in train + held:
      self.assertIsInstance(row, int)
      self.assertGreater(column, size // 2)
    # Prefixes: task i keeps its goal when more tasks are asked for.
    self.assertEqual(distral_gridworld.training_goals(size, 2), train[:2])
    self.assertEqual(distral_gridworld.held_out_goals(size, 1), held[:1])

  def test_default_board_counts_and_golden_goals(self):
    self.assertLen(distral_gridworld.candidate_goals(9), 21)
    self.assertLen(distral_gridworld.training_goals(9, 16), 16)
    self.assertLen(distral_gridworld.held_out_goals(9, 5), 5)
    # Golden: changing the split silently would change every experiment.
    self.assertEqual(distral_gridworld.training_goals(9, 4),
                     [(4, 6), (7, 5), (6, 6), (2, 6)])

  @parameterized.parameters(
      (distral_gridworld.training_goals, 'num_tasks', 17,
       r'num_tasks must be in \[1, 16\] for size 9, got 17'),
      (distral_gridworld.training_goals, 'num_tasks', 0,
       r'num_tasks must be >= 1, got 0'),
      (distral_gridworld.held_out_goals, 'num_goals', 6,
       r'num_goals must be in \[1, 5\] for size 9, got 6'),
      (distral_gridworld.held_out_goals, 'num_goals', 0,
       r'num_goals must be >= 1, got 0'))
  def test_too_many_goals(self, fn, name, value, message):
    with self.assertRaisesRegex(ValueError, message):
      fn(9, **{name: value})

  def test_too_small_size(self):
    with self.assertRaisesRegex(ValueError, r'size must be >= 5, got 3'):
      distral_gridworld.training_goals(3, 1)

  def test_task_name(self):
    self.assertEqual(distral_gridworld.task_name((2, 7)), 'goal_2_7')
    self.assertEqual(distral_gridworld.task_name(np.array([10, 3])),
                     'goal_10_3')


if __name__ == '__main__':
  absltest.main()
