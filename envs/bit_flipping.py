"""Bit flipping (HER, Andrychowicz et al. 2017, §4.1) as a dm_env.

n bits and an n-bit goal; action i flips bit i. Sparse reward 0 on success,
−1 otherwise; success ends the episode (conventions in envs/goal.py). With a
random policy a specific goal of n >= 15 bits is practically never reached,
which is the regime where HER matters.

Observation: 'observation' float32 [2n] = bits ‖ goal, 'desired_goal' and
'achieved_goal' (= the bits) float32 [n], all in {0, 1}.
"""

from typing import Optional, Tuple

from dm_env import specs
import numpy as np
import tensorflow as tf

from envs import goal


def reward(achieved: tf.Tensor,
           desired: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Bit-flipping reward r(achieved, desired), vectorised (pure TF).

  Args:
    achieved: float32 [..., num_bits] in {0, 1}, achieved goal (the bits).
    desired: float32 [..., num_bits], desired goal g; broadcastable.

  Returns:
    (reward float32 [...]: 0 on success else −1, success bool [...]).
  """
  return goal.sparse_reward(achieved, desired)


def with_goal(observation: tf.Tensor, desired_goal: tf.Tensor) -> tf.Tensor:
  """Replaces the goal half of bit-flipping policy observations (pure TF).

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


class BitFlipping(goal.GoalEnvironment):
  """HER bit flipping (§4.1). Build it with `make_bit_flipping`."""

  def __init__(self, *, num_bits: int, seed: int, max_steps: int):
    goal.check_int('num_bits', num_bits, 1)
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

  def _is_valid_goal(self, desired: np.ndarray) -> bool:
    return bool(np.all((desired == 0) | (desired == 1)))

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


def make_bit_flipping(*, num_bits: int = 15, seed: int = 0,
                      max_steps: Optional[int] = None) -> BitFlipping:
  """Builds bit flipping (see the module docstring).

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
  goal.check_int('num_bits', num_bits, 1)
  max_steps = num_bits if max_steps is None else max_steps
  return BitFlipping(num_bits=num_bits, seed=seed, max_steps=max_steps)
