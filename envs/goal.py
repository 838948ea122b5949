"""Goal-conditioned dm_env environments for HER (Andrychowicz et al. 2017).

Two tasks: bit flipping (HER §4.1: n bits, action i flips bit i) and a
two-room grid world seen as an image, so that the convolutional torsos of
agent/networks.py are exercised.

Observation (both envs, the convention of Gym's GoalEnv): a dict
  'observation':   the policy input; it CONTAINS the desired goal.
  'desired_goal':  the goal g of the episode (constant within an episode).
  'achieved_goal': the goal that the current state x_t achieves (every step,
                   the FIRST one included): what HER relabels with.
Goals of the grid world are int32 [2] cell coordinates (row, column).

Rewards are sparse, r = 0 on success and −1 otherwise (HER §4.1; SPEC §7 allows
1/0 too: we take 0/−1 so that a step that does not reach the goal always costs
the same). Reaching the goal ends the episode (discount 0, termination); after
`max_steps` agent steps without success the episode ends with discount 1
(truncation). The reward of a step is that of the state it arrives in:
r = reward_fn(achieved_goal(x_{t+1}), g).

For relabeling inside a tf.data map, each env has pure-TF helpers with any
leading batch dims [...]: `bit_flipping_reward` / `gridworld_reward` (achieved,
desired) -> (reward float32 [...], success bool [...]), and
`bit_flipping_with_goal` / `gridworld_with_goal` (policy observation, desired
goal) -> the policy observation conditioned on the new goal.

No frame skip: one agent step = one frame. Both envs are deterministic given
`seed` (numpy PCG64, draws only at reset).
"""

from typing import Dict, List, Optional, Tuple

import dm_env
from dm_env import specs
import numpy as np
import tensorflow as tf

from envs import base

# Grid world image planes (channel index); values are 0 or 255.
WALL_PLANE, AGENT_PLANE, GOAL_PLANE = 0, 1, 2
_MOVES = (('UP', (-1, 0)), ('DOWN', (1, 0)), ('LEFT', (0, -1)),
          ('RIGHT', (0, 1)))


def _check_int(name: str, value: int, minimum: int) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
  if value < minimum:
    raise ValueError(f'{name} must be >= {minimum}, got {value}')


def _sparse_reward(achieved: tf.Tensor,
                   desired: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """0 where every goal component matches, else −1 (reduces the last axis)."""
  success = tf.reduce_all(tf.equal(achieved, desired), axis=-1)  # [...]
  return tf.where(success, 0.0, -1.0), success


def bit_flipping_reward(achieved: tf.Tensor,
                        desired: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Bit-flipping reward r(achieved, desired), vectorised.

  Args:
    achieved: float32 [..., num_bits] in {0, 1}, achieved goal (the bits).
    desired: float32 [..., num_bits], desired goal g; broadcastable.

  Returns:
    (reward float32 [...]: 0 on success else −1, success bool [...]).
  """
  return _sparse_reward(achieved, desired)


def gridworld_reward(achieved: tf.Tensor,
                     desired: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Grid-world reward r(achieved, desired), vectorised.

  Args:
    achieved: int32 [..., 2], the agent's cell (row, column).
    desired: int32 [..., 2], the goal cell; broadcastable.

  Returns:
    (reward float32 [...]: 0 on success else −1, success bool [...]).
  """
  return _sparse_reward(achieved, desired)


def bit_flipping_with_goal(observation: tf.Tensor,
                           desired_goal: tf.Tensor) -> tf.Tensor:
  """Replaces the goal half of bit-flipping policy observations.

  Args:
    observation: float32 [..., 2 * num_bits], bits ‖ goal.
    desired_goal: [..., num_bits], the new goal g′ (same leading dims); cast to
      the observation's dtype.

  Returns:
    float32 [..., 2 * num_bits], bits ‖ g′.
  """
  observation = tf.convert_to_tensor(observation)
  desired_goal = tf.convert_to_tensor(desired_goal)
  num_bits = desired_goal.shape[-1]
  bits = observation[..., :num_bits]  # [..., num_bits]
  return tf.concat([bits, tf.cast(desired_goal, observation.dtype)], axis=-1)


def gridworld_with_goal(observation: tf.Tensor,
                        desired_goal: tf.Tensor) -> tf.Tensor:
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


class _GoalEnv(base.DiscreteActionEnvironment):
  """Shared episode logic: time limit, sparse reward, reset-after-LAST."""

  _action_meanings: Tuple[str, ...] = ()

  def __init__(self, *, seed: int, max_steps: int):
    _check_int('seed', seed, 0)
    _check_int('max_steps', max_steps, 1)
    self._rng = np.random.default_rng(seed)
    self._max_steps = int(max_steps)
    self._steps = 0
    self._reset_next_step = True

  # Subclasses define `_action_meanings`, `_goal` (numpy), `achieved_goal`,
  # `_new_episode()`, `_apply(action)`, `_policy_observation()`,
  # `_policy_spec()` and `_goal_spec(name)`.

  @property
  def desired_goal(self) -> np.ndarray:
    return self._goal.copy()

  # Read-only attributes, as on envs.atari.AtariEnv.
  @property
  def num_actions(self) -> int:
    return len(self._action_meanings)

  @property
  def action_set_name(self) -> str:
    return 'minimal'

  @property
  def action_meanings(self) -> List[str]:
    return list(self._action_meanings)

  @property
  def frame_skip(self) -> int:
    return 1

  @property
  def max_steps(self) -> int:
    """Agent steps after the FIRST step before a truncation."""
    return self._max_steps

  # dm_env.Environment.
  def observation_spec(self) -> Dict[str, specs.BoundedArray]:
    return {'observation': self._policy_spec(),
            'desired_goal': self._goal_spec('desired_goal'),
            'achieved_goal': self._goal_spec('achieved_goal')}

  def reset(self) -> dm_env.TimeStep:
    self._new_episode()
    self._steps = 0
    self._reset_next_step = False
    return dm_env.restart(self._observation())

  def step(self, action: int) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    index = int(action)
    if not 0 <= index < self.num_actions:
      raise ValueError(f'action must be in [0, {self.num_actions}), '
                       f'got {action!r}')
    self._apply(index)
    self._steps += 1
    observation = self._observation()
    if np.array_equal(self.achieved_goal, self._goal):
      self._reset_next_step = True
      return dm_env.TimeStep(dm_env.StepType.LAST, np.float32(0.0),
                             np.float32(0.0), observation)  # Termination.
    if self._steps >= self._max_steps:
      self._reset_next_step = True
      return dm_env.truncation(np.float32(-1.0), observation,
                               np.float32(1.0))
    return dm_env.transition(np.float32(-1.0), observation, np.float32(1.0))

  def _observation(self) -> Dict[str, np.ndarray]:
    return {'observation': self._policy_observation(),
            'desired_goal': self.desired_goal,
            'achieved_goal': self.achieved_goal}


class BitFlipping(_GoalEnv):
  """HER bit flipping (§4.1). Build it with `make_bit_flipping`.

  Observation: 'observation' float32 [2n] = bits ‖ goal, 'desired_goal' and
  'achieved_goal' (= the bits) float32 [n], all in {0, 1}.
  """

  def __init__(self, *, num_bits: int, seed: int, max_steps: int):
    _check_int('num_bits', num_bits, 1)
    super().__init__(seed=seed, max_steps=max_steps)
    self._num_bits = int(num_bits)
    self._action_meanings = tuple(f'FLIP_{i}' for i in range(num_bits))
    self._bits = np.zeros([num_bits], np.float32)
    self._goal = np.zeros([num_bits], np.float32)

  @property
  def game(self) -> str:
    return 'bit_flipping'

  @property
  def achieved_goal(self) -> np.ndarray:
    return self._bits.copy()

  def _new_episode(self) -> None:
    # The goal is redrawn until it differs from the start (no 0-step success).
    self._bits = self._rng.integers(2, size=self._num_bits).astype(np.float32)
    self._goal = self._bits
    while np.array_equal(self._goal, self._bits):
      self._goal = self._rng.integers(
          2, size=self._num_bits).astype(np.float32)

  def _apply(self, action: int) -> None:
    self._bits[action] = 1.0 - self._bits[action]

  def _policy_observation(self) -> np.ndarray:
    return np.concatenate([self._bits, self._goal])

  def _policy_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray([2 * self._num_bits], np.float32, 0.0, 1.0,
                              name='observation')

  def _goal_spec(self, name: str) -> specs.BoundedArray:
    return specs.BoundedArray([self._num_bits], np.float32, 0.0, 1.0,
                              name=name)


class GoalGridworld(_GoalEnv):
  """Two rooms joined by a door. Build it with `make_goal_gridworld`.

  The size × size board has walls on its border and a wall down column
  size // 2 with one door cell at row size // 2. Observation: 'observation'
  uint8 [size, size, 3] (planes WALL_PLANE, AGENT_PLANE, GOAL_PLANE; 0 or
  255; one pixel per cell), 'desired_goal' and 'achieved_goal' (= the agent's
  cell) int32 [2] (row, column). Actions UP, DOWN, LEFT, RIGHT; a move into a
  wall leaves the agent in place. Start and goal are distinct free cells drawn
  uniformly at each reset.
  """

  _action_meanings = tuple(name for name, _ in _MOVES)

  def __init__(self, *, size: int, seed: int, max_steps: int):
    _check_int('size', size, 5)
    super().__init__(seed=seed, max_steps=max_steps)
    self._size = int(size)
    walls = np.zeros([size, size], bool)
    walls[[0, -1], :] = walls[:, [0, -1]] = True
    walls[:, size // 2] = True
    walls[size // 2, size // 2] = False  # The door.
    self._walls = walls
    self._free_cells = np.argwhere(~walls).astype(np.int32)  # [F, 2]
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
    start, goal = self._rng.choice(len(self._free_cells), 2, replace=False)
    self._position = self._free_cells[start].copy()
    self._goal = self._free_cells[goal].copy()

  def _apply(self, action: int) -> None:
    target = self._position + np.array(_MOVES[action][1], np.int32)
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


def make_bit_flipping(*, num_bits: int = 15, seed: int = 0,
                      max_steps: Optional[int] = None) -> BitFlipping:
  """Builds bit flipping (see module docstring and `BitFlipping`).

  Args:
    num_bits: n >= 1, bits of state and goal; also the number of actions.
    seed: >= 0; seeds start bits and goal (drawn at each reset, goal != start).
    max_steps: agent steps before truncation, >= 1; None means num_bits (HER
      §4.1: every goal is reachable in at most n flips).

  Returns:
    A `BitFlipping` env: observation dict as in the module docstring with
    'observation' float32 [2 * num_bits]; num_bits actions.

  Raises:
    ValueError: for an argument out of range.
  """
  _check_int('num_bits', num_bits, 1)
  max_steps = num_bits if max_steps is None else max_steps
  return BitFlipping(num_bits=num_bits, seed=seed, max_steps=max_steps)


def make_goal_gridworld(*, seed: int = 0, size: int = 11,
                        max_steps: Optional[int] = None) -> GoalGridworld:
  """Builds the two-room goal grid world (see `GoalGridworld`).

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
  _check_int('size', size, 5)
  max_steps = 4 * size if max_steps is None else max_steps
  return GoalGridworld(size=size, seed=seed, max_steps=max_steps)
