"""Multi-task two-room grid world for Distral (Teh et al. 2017).

Teh et al. 2017 ("Distral: Robust Multitask Reinforcement Learning", the
grid-world experiment of §4) illustrate Distral on two rooms joined by a
corridor, with tasks that differ only in where the goal is. Here a TASK is one
fixed goal cell in the two-room layout of envs/goal_gridworld.py
(`two_room_walls`); the episode starts on a uniformly random free cell of the
LEFT room, so every task shares "walk to the door and through it" (the
behaviour the distilled policy π0 can learn once for all tasks) and then needs
a task-specific last leg in the right room.

The goal is NOT in the observation: all tasks render identically, and the
agent knows its task only through the task id that the learner gives the
network (per-task value/policy heads, or the task one-hot input). So one
policy cannot solve several tasks from pixels alone, and what π0 shares is
exactly the task-independent part of the behaviour.

Board (size 9; `#` wall, `.` free, `D` the door (4, 4), `S` a start cell, `G`
one goal; S and G are not drawn, only walls and the agent are):

    # # # # # # # # #
    # . . . # . . . #
    # . . . # . . G #
    # . S . # . . . #
    # . . . D . . . #
    # . . . # . . . #
    # . . . # . . . #
    # . . . # . . . #
    # # # # # # # # #

Observation: uint8 [size, size, 2], planes WALL_PLANE and AGENT_PLANE, 0 or
255, one pixel per cell, indexed [row, column, plane]. Actions
goal_gridworld.MOVES: UP, DOWN, LEFT, RIGHT; a move into a wall leaves the
agent in place. Reward +1.0 on arriving in the goal cell, which ends the
episode (termination, discount 0); 0.0 otherwise. After `max_steps` agent
steps without success the episode ends with discount 1 (truncation). No frame
skip: one agent step = one frame. Deterministic given `seed` (numpy PCG64, one
draw per reset).

Task sets: `candidate_goals(size)` are the right room's free cells; a fixed
permutation of them (np.random.default_rng(0)) is split once into a training
pool (the first G − H) and a held-out pool (the last H = max(1, G // 4)), so
`training_goals` and `held_out_goals` are disjoint for any counts asked for.
Size 9: G = 21 candidates, up to 16 training tasks and 5 held-out goals.
"""

import re
from typing import List, Optional, Sequence, Tuple

import dm_env
from dm_env import specs
import numpy as np

from envs import base
from envs import goal as goal_lib
from envs import goal_gridworld

# Image planes (channel index); values are 0 or 255.
WALL_PLANE, AGENT_PLANE = 0, 1
_MOVES = goal_gridworld.MOVES
_SPLIT_SEED = 0  # Seed of the fixed permutation of the candidate goals.

Cell = Tuple[int, int]  # (row, column).


def candidate_goals(size: int) -> np.ndarray:
  """Free cells of the right room (columns > size // 2), row-major.

  Args:
    size: board side in cells including the outer walls, an int >= 5.

  Returns:
    int32 [G, 2], (row, column) per cell; G = (size − 2) ·
    (size − 2 − size // 2) (21 for size 9). The door is not included.

  Raises:
    ValueError: if `size` is not an int >= 5.
  """
  walls = goal_gridworld.two_room_walls(size)
  cells = np.argwhere(~walls).astype(np.int32)  # [F, 2], row-major.
  return cells[cells[:, 1] > size // 2]  # [G, 2]


def _goal_pools(size: int) -> Tuple[np.ndarray, np.ndarray]:
  """(training pool int32 [G − H, 2], held-out pool int32 [H, 2])."""
  candidates = candidate_goals(size)  # [G, 2]
  order = np.random.default_rng(_SPLIT_SEED).permutation(len(candidates))
  num_held_out = max(1, len(candidates) // 4)
  shuffled = candidates[order]  # [G, 2]
  return shuffled[:-num_held_out], shuffled[-num_held_out:]


def _take(pool: np.ndarray, name: str, count: int, size: int) -> List[Cell]:
  goal_lib.check_int(name, count, 1)
  if count > len(pool):
    raise ValueError(f'{name} must be in [1, {len(pool)}] for size {size}, '
                     f'got {count}')
  return [(int(row), int(column)) for row, column in pool[:count]]


def training_goals(size: int, num_tasks: int) -> List[Cell]:
  """The goals of tasks 0 .. num_tasks − 1 (task i = goal i).

  A prefix of the fixed training pool: task i keeps its goal when num_tasks
  grows. Disjoint from every `held_out_goals(size, ·)`.

  Args:
    size: board side in cells, an int >= 5.
    num_tasks: number of training tasks, in [1, G − H] (16 for size 9).

  Returns:
    num_tasks distinct (row, column) cells of the right room.

  Raises:
    ValueError: if `size` or `num_tasks` is out of range.
  """
  return _take(_goal_pools(size)[0], 'num_tasks', num_tasks, size)


def held_out_goals(size: int, num_goals: int) -> List[Cell]:
  """Goals never trained on, for evaluating transfer.

  A prefix of the fixed held-out pool; disjoint from every
  `training_goals(size, ·)`.

  Args:
    size: board side in cells, an int >= 5.
    num_goals: number of held-out goals, in [1, H] (5 for size 9).

  Returns:
    num_goals distinct (row, column) cells of the right room.

  Raises:
    ValueError: if `size` or `num_goals` is out of range.
  """
  return _take(_goal_pools(size)[1], 'num_goals', num_goals, size)


def task_name(goal: Sequence[int]) -> str:
  """'goal_<row>_<column>', e.g. 'goal_2_7' (a game name for the logs)."""
  row, column = (int(x) for x in goal)
  return f'goal_{row}_{column}'


def goal_of_task(name: str) -> Optional[Cell]:
  """The goal cell of a task name 'goal_<row>_<column>', or None if not one."""
  match = re.fullmatch(r'goal_(\d+)_(\d+)', name)
  return None if match is None else (int(match.group(1)), int(match.group(2)))


def _check_goal(goal: Sequence[int], walls: np.ndarray) -> np.ndarray:
  """`goal` as int32 [2]; ValueError unless it is a free cell of the board."""
  size = walls.shape[0]
  array = np.asarray(goal)
  message = (f'goal must be a free (non-wall) cell (row, column) of the '
             f'{size}x{size} board, rows and columns in [1, {size - 2}], '
             f'got {goal!r}')
  if array.shape != (2,) or array.dtype.kind not in 'iu':
    raise ValueError(message)
  if not (np.all(array >= 0) and np.all(array < size)) or walls[tuple(array)]:
    raise ValueError(message)
  return array.astype(np.int32)


class DistralGridworld(base.DiscreteActionEnvironment):
  """One Distral task: two rooms, one fixed unobserved goal.

  Build it with `make_distral_gridworld`.
  """

  def __init__(self, *, size: int, goal: Sequence[int], seed: int,
               max_steps: int):
    self._walls = goal_gridworld.two_room_walls(size)  # Checks size.
    self._goal = _check_goal(goal, self._walls)
    goal_lib.check_int('seed', seed, 0)
    goal_lib.check_int('max_steps', max_steps, 1)
    self._size, self._max_steps = int(size), int(max_steps)
    free = np.argwhere(~self._walls).astype(np.int32)  # [F, 2]
    left = free[free[:, 1] < size // 2]  # [L, 2], the left room.
    # A goal in the left room is never a start cell.
    self._start_cells = left[np.any(left != self._goal, axis=1)]  # [S, 2]
    self._wall_image = (255 * self._walls).astype(np.uint8)  # [size, size]
    self._rng = np.random.default_rng(seed)
    self._position = self._start_cells[0].copy()
    self._steps = 0
    self._reset_next_step = True

  # Read-only attributes, as on envs.atari.AtariEnv.
  @property
  def game(self) -> str:
    return 'distral_gridworld'

  @property
  def num_actions(self) -> int:
    return len(_MOVES)

  @property
  def action_set_name(self) -> str:
    return 'minimal'

  @property
  def action_meanings(self) -> List[str]:
    return [name for name, _ in _MOVES]

  @property
  def frame_skip(self) -> int:
    return 1

  @property
  def max_steps(self) -> int:
    """Agent steps after the FIRST step before a truncation."""
    return self._max_steps

  @property
  def goal(self) -> np.ndarray:
    """int32 [2], the task's goal cell (row, column); never observed."""
    return self._goal.copy()

  @property
  def position(self) -> np.ndarray:
    """int32 [2], the agent's cell (row, column)."""
    return self._position.copy()

  @property
  def achieved_goal(self) -> np.ndarray:
    """int32 [2], the cell the agent achieves: `position`."""
    return self._position.copy()

  @property
  def walls(self) -> np.ndarray:
    """bool [size, size], True on wall cells."""
    return self._walls.copy()

  # dm_env.Environment.
  def observation_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray([self._size, self._size, 2], np.uint8, 0, 255,
                              name='observation')

  def reset(self) -> dm_env.TimeStep:
    index = self._rng.integers(len(self._start_cells))
    self._position = self._start_cells[index].copy()
    self._steps = 0
    self._reset_next_step = False
    return dm_env.restart(self._observation())

  def step(self, action: int) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    index = self._action_index(action)
    target = self._position + np.array(_MOVES[index][1], np.int32)  # [2]
    if not self._walls[target[0], target[1]]:
      self._position = target
    self._steps += 1
    observation = self._observation()
    if np.array_equal(self._position, self._goal):
      self._reset_next_step = True
      return dm_env.termination(np.float32(1.0), observation)
    if self._steps >= self._max_steps:
      self._reset_next_step = True
      return dm_env.truncation(np.float32(0.0), observation,
                               np.float32(1.0))
    return dm_env.transition(np.float32(0.0), observation, np.float32(1.0))

  def _observation(self) -> np.ndarray:
    """uint8 [size, size, 2]: the wall plane and the agent plane."""
    image = np.zeros([self._size, self._size, 2], np.uint8)
    image[..., WALL_PLANE] = self._wall_image
    image[self._position[0], self._position[1], AGENT_PLANE] = 255
    return image


def make_distral_gridworld(*, size: int = 9, goal: Sequence[int], seed: int,
                           max_steps: int = 50) -> DistralGridworld:
  """Builds one task of the Distral grid world (see the module docstring).

  The longest shortest path from a left-room start to a right-room goal of
  the 9×9 board is 12 steps, so max_steps = 50 leaves room to explore.

  Args:
    size: board side in cells including the outer walls, an int >= 5.
    goal: the task's goal cell (row, column), any free cell of the board
      (usually one of `training_goals` or `held_out_goals`).
    seed: >= 0; seeds the start cell (one draw per reset).
    max_steps: agent steps before truncation, an int >= 1.

  Returns:
    A `DistralGridworld`: observation uint8 [size, size, 2], 4 actions.

  Raises:
    ValueError: for an argument out of range (the message names it).
  """
  return DistralGridworld(size=size, goal=goal, seed=seed,
                          max_steps=max_steps)
