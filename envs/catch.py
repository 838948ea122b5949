"""Catch (bsuite, Osband et al. 2020, "Behaviour Suite for RL" §A.1) as pixels.

A tiny deterministic-given-seed dm_env.Environment for fast end-to-end learning
tests of the whole pipeline. A ball starts in row 0 at a uniformly random
column and falls one row per agent step; the paddle sits in the bottom row,
starting in the middle column, and moves left / stays / moves right (clipped at
the walls) before the ball falls. When the ball reaches the bottom row, after
exactly `rows - 1` agent steps, the episode terminates (discount 0) with reward
+1 if the paddle is under the ball and -1 otherwise; all other rewards are 0.

The board is rendered as an image so that the Atari torsos apply: uint8
[rows * pixels_per_cell, columns * pixels_per_cell, 1], 255 on the ball and the
paddle cells, 0 elsewhere. The default 40×20×1 fits the IMPALA shallow torso
(8×8 stride 4 VALID -> 9×4, then 4×4 stride 2 VALID -> 3×1); that torso needs
at least 20 pixels per side. There is no frame skip: one agent step = one
frame.
"""

from typing import List

import dm_env
from dm_env import specs
import numpy as np

from envs import base

_ACTION_MEANINGS = ('LEFT', 'STAY', 'RIGHT')  # Paddle moves by action - 1.


class Catch(base.DiscreteActionEnvironment):
  """bsuite Catch rendered as an image. Build it with `make_catch`."""

  def __init__(self, *, seed: int, rows: int, columns: int,
               pixels_per_cell: int):
    for name, value, minimum in (('seed', seed, 0), ('rows', rows, 2),
                                 ('columns', columns, 1),
                                 ('pixels_per_cell', pixels_per_cell, 1)):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
      if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    self._rows, self._columns = int(rows), int(columns)
    self._ppc = int(pixels_per_cell)
    self._rng = np.random.default_rng(seed)
    self._ball_row = self._ball_column = self._paddle_column = 0
    self._reset_next_step = True

  # Read-only attributes, as on envs.atari.AtariEnv.
  @property
  def game(self) -> str:
    return 'catch'

  @property
  def num_actions(self) -> int:
    return len(_ACTION_MEANINGS)

  @property
  def action_set_name(self) -> str:
    return 'minimal'

  @property
  def action_meanings(self) -> List[str]:
    return list(_ACTION_MEANINGS)

  @property
  def frame_skip(self) -> int:
    return 1

  @property
  def episode_length(self) -> int:
    """Agent steps per episode after the FIRST step: rows - 1."""
    return self._rows - 1

  @property
  def ball_column(self) -> int:
    return self._ball_column

  @property
  def paddle_column(self) -> int:
    return self._paddle_column

  # dm_env.Environment.
  def observation_spec(self) -> specs.BoundedArray:
    shape = (self._rows * self._ppc, self._columns * self._ppc, 1)
    return specs.BoundedArray(shape, np.uint8, 0, 255, name='observation')

  def reset(self) -> dm_env.TimeStep:
    self._ball_row = 0
    self._ball_column = int(self._rng.integers(self._columns))
    self._paddle_column = self._columns // 2
    self._reset_next_step = False
    return dm_env.restart(self._observation())

  def step(self, action: int) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    index = self._action_index(action)
    self._paddle_column = min(max(self._paddle_column + index - 1, 0),
                              self._columns - 1)
    self._ball_row += 1
    observation = self._observation()
    if self._ball_row == self._rows - 1:
      self._reset_next_step = True
      caught = self._ball_column == self._paddle_column
      return dm_env.TimeStep(dm_env.StepType.LAST,
                             np.float32(1.0 if caught else -1.0),
                             np.float32(0.0), observation)  # Termination.
    return dm_env.transition(np.float32(0.0), observation, np.float32(1.0))

  def _observation(self) -> np.ndarray:
    """uint8 [rows * ppc, columns * ppc, 1]: 255 on ball and paddle."""
    board = np.zeros([self._rows, self._columns], np.uint8)
    board[self._ball_row, self._ball_column] = 255
    board[self._rows - 1, self._paddle_column] = 255
    image = np.repeat(np.repeat(board, self._ppc, axis=0), self._ppc, axis=1)
    return image[..., None]


def make_catch(*, seed: int = 0, rows: int = 10, columns: int = 5,
               pixels_per_cell: int = 4) -> Catch:
  """Builds Catch (see module docstring).

  Args:
    seed: >= 0; seeds the ball's starting column (one draw per episode).
    rows: board rows, >= 2; an episode lasts rows - 1 agent steps.
    columns: board columns, >= 1; the paddle starts at columns // 2.
    pixels_per_cell: side of one board cell in pixels, >= 1.

  Returns:
    A `Catch` environment; observation uint8 [rows * pixels_per_cell,
    columns * pixels_per_cell, 1] (default [40, 20, 1]), 3 actions.

  Raises:
    ValueError: for an argument out of range.
  """
  return Catch(seed=seed, rows=rows, columns=columns,
               pixels_per_cell=pixels_per_cell)
