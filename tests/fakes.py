"""Fake environments for agent/replay tests that must not need the emulator.

`FakeAtari` has exactly the specs of `envs.atari.make_atari(game)` with the
default preprocessing (observation uint8 [84, 84, 4] 'observation' in 0..255,
action DiscreteArray(num_actions, 'action'), reward float32 scalar 'reward',
discount float32 scalar in [0, 1] 'discount') and the same read-only
attributes, in the spirit of Acme's `fakes.fake_atari_wrapped`.
"""

from typing import List

import dm_env
from dm_env import specs
import numpy as np

from envs import base

# ale_py.Action names in ALE order (the full 18-action set).
_ALE_ACTION_NAMES = (
    'NOOP', 'FIRE', 'UP', 'RIGHT', 'LEFT', 'DOWN', 'UPRIGHT', 'UPLEFT',
    'DOWNRIGHT', 'DOWNLEFT', 'UPFIRE', 'RIGHTFIRE', 'LEFTFIRE', 'DOWNFIRE',
    'UPRIGHTFIRE', 'UPLEFTFIRE', 'DOWNRIGHTFIRE', 'DOWNLEFTFIRE')
_SCREEN_SIZE = 84
_FRAME_STACK = 4
_FRAME_SKIP = 4


class FakeAtari(base.DiscreteActionEnvironment):
  """Cheap deterministic stand-in for an `envs.atari.AtariEnv`.

  Each episode: a FIRST step, then `episode_length` agent steps whose last is
  LAST with discount 0 (termination). Every step appends one pseudo-random
  uint8 [84, 84] frame to the stack (newest last, zeros before the episode's
  first frame, as AtariEnv). Rewards are drawn uniformly from {-1, 0, 1}
  (float32). All draws come from one numpy RNG seeded with `seed`, so the same
  seed gives the same sequence of episodes whatever the actions.
  """

  def __init__(self, num_actions: int = 6, episode_length: int = 50,
               seed: int = 0):
    for name, value, minimum in (('num_actions', num_actions, 1),
                                 ('episode_length', episode_length, 1),
                                 ('seed', seed, 0)):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
      if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    self._num_actions = int(num_actions)
    self._episode_length = int(episode_length)
    self._rng = np.random.default_rng(seed)
    self._stack = np.zeros([_SCREEN_SIZE, _SCREEN_SIZE, _FRAME_STACK],
                           np.uint8)
    self._steps = 0  # Agent steps since the FIRST step.
    self._reset_next_step = True

  @property
  def game(self) -> str:
    return 'fake_atari'

  @property
  def num_actions(self) -> int:
    return self._num_actions

  @property
  def action_set_name(self) -> str:
    return 'full' if self._num_actions == len(_ALE_ACTION_NAMES) else 'minimal'

  @property
  def action_meanings(self) -> List[str]:
    return [_ALE_ACTION_NAMES[i] if i < len(_ALE_ACTION_NAMES) else
            f'ACTION_{i}' for i in range(self._num_actions)]

  @property
  def frame_skip(self) -> int:
    return _FRAME_SKIP

  @property
  def episode_length(self) -> int:
    """Agent steps per episode after the FIRST step."""
    return self._episode_length

  def observation_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(self._stack.shape, np.uint8, 0, 255,
                              name='observation')

  def reset(self) -> dm_env.TimeStep:
    self._steps = 0
    self._reset_next_step = False
    self._stack[...] = 0
    return dm_env.restart(self._push_frame())

  def step(self, action: int) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    if not 0 <= int(action) < self._num_actions:
      raise ValueError(
          f'action must be in [0, {self._num_actions}), got {action!r}')
    self._steps += 1
    observation = self._push_frame()
    reward = np.float32(self._rng.integers(-1, 2))
    if self._steps >= self._episode_length:
      self._reset_next_step = True
      return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(0.0),
                             observation)  # Termination.
    return dm_env.transition(reward, observation, np.float32(1.0))

  def _push_frame(self) -> np.ndarray:
    self._stack[..., :-1] = self._stack[..., 1:]
    self._stack[..., -1] = self._rng.integers(
        0, 256, size=(_SCREEN_SIZE, _SCREEN_SIZE), dtype=np.uint8)
    return self._stack.copy()
