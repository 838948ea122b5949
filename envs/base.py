"""Specs every environment of this project shares (dm_env conventions).

Actions are one discrete index, rewards float32 scalars, discounts float32 in
[0, 1] (0 = termination, 1 = truncation or mid-episode), as the Reverb step
spec (replay/writer.py) expects.
"""

import dm_env
from dm_env import specs
import numpy as np


class DiscreteActionEnvironment(dm_env.Environment):
  """dm_env.Environment with `num_actions` discrete actions and float32 specs.

  Subclasses define `num_actions`, `observation_spec`, `reset` and `step`.
  """

  num_actions: int

  def _action_index(self, action) -> int:
    """`action` as an index; ValueError naming [0, num_actions) otherwise."""
    index = int(action)
    if not 0 <= index < self.num_actions:
      meanings = getattr(self, 'action_meanings', None)
      named = f' (actions: {", ".join(meanings)})' if meanings else ''
      raise ValueError(f'action must be in [0, {self.num_actions}), '
                       f'got {action!r}{named}')
    return index

  def action_spec(self) -> specs.DiscreteArray:
    return specs.DiscreteArray(self.num_actions, name='action')

  def reward_spec(self) -> specs.Array:
    return specs.Array((), np.float32, name='reward')

  def discount_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((), np.float32, 0.0, 1.0, name='discount')
