"""A goal-conditioned two-room grid world seen as an image (HER, SPEC §7).

The size × size board (`two_room_walls`, shared with envs/distral_gridworld.py)
has walls on its border and a wall down column size // 2 with one door cell at
row size // 2. Observation: 'observation' uint8 [size, size, 3] (planes
WALL_PLANE, AGENT_PLANE, GOAL_PLANE; 0 or 255; one pixel per cell), so the
convolutional torsos of agent/networks.py are exercised; 'desired_goal' and
'achieved_goal' (= the agent's cell) int32 [2] (row, column). Actions MOVES:
UP, DOWN, LEFT, RIGHT; a move into a wall leaves the agent in place. Start
and goal are distinct free cells drawn uniformly at each reset. Rewards,
termination and truncation: envs/goal.py.
"""

from typing import Optional, Tuple

from dm_env import specs
import numpy as np
import tensorflow as tf

from envs import goal

# Image planes (channel index); values are 0 or 255.
WALL_PLANE, AGENT_PLANE, GOAL_PLANE = 0, 1, 2
# Action index -> (name, (row, column) displacement in cells).
MOVES = (('UP', (-1, 0)), ('DOWN', (1, 0)), ('LEFT', (0, -1)),
         ('RIGHT', (0, 1)))


def two_room_walls(size: int) -> np.ndarray:
  """The two-room layout: two rooms joined by a one-cell door.

  Walls on the border and down column size // 2, except the door cell
  (size // 2, size // 2). The left room is columns [1, size // 2), the right
  room columns (size // 2, size - 1).

  Args:
    size: board side in cells including the outer walls, an int >= 5.

  Returns:
    bool [size, size], True on wall cells; indexed [row, column].

  Raises:
    ValueError: if `size` is not an int >= 5.
  """
  goal.check_int('size', size, 5)
  walls = np.zeros([size, size], bool)
  walls[[0, -1], :] = walls[:, [0, -1]] = True
  walls[:, size // 2] = True
  walls[size // 2, size // 2] = False  # The door.
  return walls


def reward(achieved: tf.Tensor,
           desired: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Grid-world reward r(achieved, desired), vectorised (pure TF).

  Args:
    achieved: int32 [..., 2], the agent's cell (row, column).
    desired: int32 [..., 2], the goal cell; broadcastable.

  Returns:
    (reward float32 [...]: 0 on success else −1, success bool [...]).
  """
  return goal.sparse_reward(achieved, desired)


def with_goal(observation: tf.Tensor, desired_goal: tf.Tensor) -> tf.Tensor:
  """Rewrites the goal plane of grid-world images (pure TF, any leading dims).

  Args:
    observation: uint8 [..., H, W, 3] (wall, agent, goal planes).
    desired_goal: int32 [..., 2], the new goal cell (row, column) g′.

  Returns:
    uint8 [..., H, W, 3]; wall and agent planes unchanged, the goal plane 255
    at g′ and 0 elsewhere.
  """
  observation = tf.convert_to_tensor(observation)
  desired_goal = tf.cast(desired_goal, tf.int32)
  shape = tf.shape(observation)
  rows = tf.range(shape[-3])[:, None]  # [H, 1]
  columns = tf.range(shape[-2])[None, :]  # [1, W]
  at_goal = tf.logical_and(
      tf.equal(rows, desired_goal[..., 0, None, None]),
      tf.equal(columns, desired_goal[..., 1, None, None]))  # [..., H, W]
  goal_plane = tf.cast(at_goal, observation.dtype) * 255  # [..., H, W]
  return tf.concat([observation[..., :GOAL_PLANE], goal_plane[..., None]],
                   axis=-1)  # [..., H, W, 3]


class GoalGridworld(goal.GoalEnvironment):
  """Two rooms joined by a door. Build it with `make_goal_gridworld`."""

  _action_meanings = tuple(name for name, _ in MOVES)

  def __init__(self, *, size: int, seed: int, max_steps: int):
    goal.check_int('size', size, 5)
    super().__init__(seed=seed, max_steps=max_steps)
    self._size = int(size)
    self._walls = two_room_walls(size)
    self._free_cells = np.argwhere(~self._walls).astype(np.int32)  # [F, 2]
    self._position = np.zeros([2], np.int32)
    self._goal = np.zeros([2], np.int32)

  @property
  def game(self) -> str:
    return 'goal_gridworld'

  @property
  def walls(self) -> np.ndarray:
    """bool [size, size], True on wall cells."""
    return self._walls.copy()

  @property
  def achieved_goal(self) -> np.ndarray:
    return self._position.copy()

  def _new_episode(self) -> None:
    start, target = self._rng.choice(len(self._free_cells), 2, replace=False)
    self._position = self._free_cells[start].copy()
    self._goal = self._free_cells[target].copy()

  def _is_valid_goal(self, desired: np.ndarray) -> bool:
    inside = bool(np.all((desired >= 0) & (desired < self._size)))
    return inside and not self._walls[desired[0], desired[1]]

  def _apply(self, action: int) -> None:
    target = self._position + np.array(MOVES[action][1], np.int32)
    if not self._walls[target[0], target[1]]:
      self._position = target

  def _policy_observation(self) -> np.ndarray:
    image = np.zeros([self._size, self._size, 3], np.uint8)
    image[..., WALL_PLANE] = 255 * self._walls
    image[self._position[0], self._position[1], AGENT_PLANE] = 255
    image[self._goal[0], self._goal[1], GOAL_PLANE] = 255
    return image

  def _policy_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray([self._size, self._size, 3], np.uint8, 0, 255,
                              name='observation')

  def _goal_spec(self, name: str) -> specs.BoundedArray:
    return specs.BoundedArray([2], np.int32, 0, self._size - 1, name=name)


def make_goal_gridworld(*, seed: int = 0, size: int = 11,
                        max_steps: Optional[int] = None) -> GoalGridworld:
  """Builds the two-room goal grid world (see the module docstring).

  The default 11×11 board has 73 free cells; the longest shortest path is 16
  steps. One pixel per cell: use the deep torso (3 stride-2 pools); the shallow
  one needs >= 20 pixels per side (size >= 20).

  Args:
    seed: >= 0; seeds start and goal cells (drawn at each reset).
    size: board side in cells including the outer walls, >= 5.
    max_steps: agent steps before truncation, >= 1; None means 4 * size.

  Returns:
    A `GoalGridworld` env: 'observation' uint8 [size, size, 3], goals int32
    [2]; 4 actions.

  Raises:
    ValueError: for an argument out of range.
  """
  goal.check_int('size', size, 5)
  max_steps = 4 * size if max_steps is None else max_steps
  return GoalGridworld(size=size, seed=seed, max_steps=max_steps)
