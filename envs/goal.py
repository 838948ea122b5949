"""Shared episode logic of the goal-conditioned environments (HER).

Andrychowicz et al. 2017 ("Hindsight Experience Replay"); SPEC §7. The two
tasks live in envs/bit_flipping.py (HER §4.1) and envs/goal_gridworld.py (two
rooms seen as an image, for the convolutional torsos).

Observation (both envs, the convention of Gym's GoalEnv): a dict
  'observation':   the policy input; it CONTAINS the desired goal.
  'desired_goal':  the goal g of the episode (constant within an episode).
  'achieved_goal': the goal that the current state x_t achieves (every step,
                   the FIRST one included): what HER relabels with.

Rewards are sparse, r = 0 on success and −1 otherwise (HER §4.1; SPEC §7 allows
1/0 too: we take 0/−1 so that a step that does not reach the goal always costs
the same). Reaching the goal ends the episode (discount 0, termination); after
`max_steps` agent steps without success the episode ends with discount 1
(truncation). The reward of a step is that of the state it arrives in:
r = reward_fn(achieved_goal(x_{t+1}), g).

Each env module has pure-TF helpers with any leading batch dims [...], usable
inside a tf.data map (replay/her.py): `reward` (achieved, desired) ->
(reward float32 [...], success bool [...]) and `with_goal` (policy
observation, desired goal) -> the policy observation conditioned on the new
goal.

No frame skip: one agent step = one frame. Both envs are deterministic given
`seed` (numpy PCG64, draws only at reset).
"""

from typing import Dict, List, Tuple

import dm_env
from dm_env import specs
import numpy as np
import tensorflow as tf

from envs import base

OBSERVATION_KEYS = ('observation', 'desired_goal', 'achieved_goal')


def check_int(name: str, value: int, minimum: int) -> None:
  """Raises ValueError unless `value` is an int >= `minimum`."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
  if value < minimum:
    raise ValueError(f'{name} must be >= {minimum}, got {value}')


def sparse_reward(achieved: tf.Tensor,
                  desired: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """0 where every goal component matches, else −1 (reduces the last axis).

  Args:
    achieved: [..., G] achieved goals.
    desired: [..., G] desired goals, same dtype; broadcastable.

  Returns:
    (reward float32 [...]: 0 on success else −1, success bool [...]).
  """
  success = tf.reduce_all(tf.equal(achieved, desired), axis=-1)  # [...]
  return tf.where(success, 0.0, -1.0), success


class GoalEnvironment(base.DiscreteActionEnvironment):
  """Shared episode logic: time limit, sparse reward, reset-after-LAST.

  Subclasses define `_action_meanings`, `_goal` (numpy), `achieved_goal`,
  `game`, `_new_episode()`, `_apply(action)`, `_policy_observation()`,
  `_policy_spec()`, `_goal_spec(name)` and `_is_valid_goal(goal)`.
  """

  _action_meanings: Tuple[str, ...] = ()

  def __init__(self, *, seed: int, max_steps: int):
    check_int('seed', seed, 0)
    check_int('max_steps', max_steps, 1)
    self._rng = np.random.default_rng(seed)
    self._max_steps = int(max_steps)
    self._steps = 0
    self._reset_next_step = True

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

  def reset_with_goal(self, goal: np.ndarray) -> dm_env.TimeStep:
    """Starts an episode whose desired goal is `goal` (evaluation).

    The start state is drawn as by `reset` (from the same RNG), redrawn while
    it already achieves `goal`.

    Args:
      goal: a desired goal of `observation_spec()['desired_goal']`'s shape.

    Returns:
      The FIRST time step.

    Raises:
      ValueError: if `goal` has the wrong shape or is not a reachable goal.
    """
    spec = self._goal_spec('desired_goal')
    goal = np.asarray(goal, spec.dtype)
    if goal.shape != spec.shape or not self._is_valid_goal(goal):
      raise ValueError(f'goal must be a valid goal of shape {spec.shape} '
                       f'(see {type(self).__name__}); got {goal!r}')
    self._new_episode()
    while np.array_equal(self.achieved_goal, goal):
      self._new_episode()
    self._goal = goal.copy()
    self._steps = 0
    self._reset_next_step = False
    return dm_env.restart(self._observation())

  def step(self, action: int) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    index = self._action_index(action)
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
