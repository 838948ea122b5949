"""IMPALA actor: N environments, batched inference, unrolls into Reverb.

One actor process steps `len(envs)` dm_env environments in lock-step with one
batched forward pass of the behaviour policy μ per step, writes one continuous
step stream per environment (replay.writer.UnrollWriter makes the T+1 items),
polls the learner's weights and reports finished episodes. Loop (acme/core.py
vocabulary):

    actor.observe_first()            # reset every environment
    while running:
      actor.run_step()               # select_action → env.step → observe
      every `update_period` steps: actor.update()

Stored-step convention (agent/types.py): the step written for x_t carries the
reward/discount of the transition into x_t; when an episode ends the
environment is reset at once and the new first observation carries the
episode's final reward and terminal discount with first=True.

Goal-conditioned environments (envs/goal.py) have dict observations: with
`observation_key='observation'` the network sees only that entry (which holds
the desired goal), and writers receive the whole dict. A writer with an
`end_episode(step)` method (replay.her_writer.GoalUnrollWriter) also gets the
episode's final observation x_N as a step, before the reset, since the stored
stream never holds it as a step of its own.

A run ends for the actor when the learner publishes its final weights
(`learner_finished`): `run` returns, also when a writer is blocked on a full
queue that nobody will read again (writers with a `while_blocked` hook).
After a lost Reverb server, `reconnect` swaps in new writers, subscriber and
reporter; the next `run` starts fresh episodes.

Units: `agent_steps` counts steps of all environments together; one agent
step is `frame_skip` raw frames.
"""

import time
from typing import Callable, Optional, Sequence

from absl import logging
import dm_env
import numpy as np
import tensorflow as tf
import tree

from agent import eager_leak
from agent import networks
from agent import packing


class _LearnerFinished(Exception):
  """Raised through a blocked writer once the learner has finished."""


def _stack(observations):
  """Stacks per-environment observations (arrays or dicts of arrays)."""
  return tree.map_structure(lambda *x: np.stack(x), *observations)


class Actor:
  """Batched actor over several environments of one process."""

  def __init__(self, *, envs: Sequence[dm_env.Environment],
               network: networks.ImpalaNetwork, writers: Sequence,
               variable_subscriber=None, episode_reporter=None,
               task_ids: Optional[Sequence[int]] = None, actor_id: int = 0,
               update_period: int = 50, frame_skip: int = 4, seed: int = 0,
               observation_key: Optional[str] = None):
    """Builds the actor.

    Args:
      envs: the environments (all with the same specs).
      network: the behaviour policy network (variables created).
      writers: one replay.writer.UnrollWriter (or anything with
        `append(step_dict)`/`close()`) per environment.
      variable_subscriber: object with `update(wait) -> Optional[int]` that
        assigns the latest published weights to `network`; None for none.
      episode_reporter: object with `report(actor_id, task_id, episode_return,
        episode_length, episode_frames)`; None for none.
      task_ids: task id of each environment (default all 0).
      actor_id: reported with episodes.
      update_period: agent steps (per environment) between weight polls.
      frame_skip: raw frames per agent step, for the episode frame counts.
      seed: seeds action sampling.
      observation_key: None for array observations; for dict observations
        (goal-conditioned envs: 'observation'), the entry the network sees.

    Raises:
      ValueError: if the number of writers or task ids differs from envs.
    """
    n = len(envs)
    if n < 1 or len(writers) != n:
      raise ValueError(f'Need one writer per environment: {n} envs, '
                       f'{len(writers)} writers.')
    task_ids = [0] * n if task_ids is None else list(task_ids)
    if len(task_ids) != n:
      raise ValueError(f'task_ids has {len(task_ids)} entries for {n} envs.')
    self._envs = list(envs)
    self._network = network
    self._connect(writers, variable_subscriber, episode_reporter)
    self._task_id = np.asarray(task_ids, np.int32)
    self._task_id_tensor = tf.constant(self._task_id)
    self._actor_id, self._update_period = actor_id, int(update_period)
    self._frame_skip = int(frame_skip)
    self._observation_key = observation_key
    self._rng = tf.random.Generator.from_seed(seed)
    self._policy = tf.function(self._policy_step)
    self._input_specs = None  # of the policy call's packed inputs
    self.agent_steps = 0
    self.episodes = 0
    self._steps_since_update = 0

  def _connect(self, writers, subscriber, reporter) -> None:
    if len(writers) != len(self._envs):
      raise ValueError(f'Need one writer per environment: {len(self._envs)} '
                       f'envs, {len(writers)} writers.')
    self._writers = list(writers)
    self._subscriber, self._reporter = subscriber, reporter
    for writer in self._writers:
      if hasattr(writer, 'while_blocked'):
        writer.while_blocked = self._while_blocked

  def reconnect(self, writers: Sequence, variable_subscriber=None,
                episode_reporter=None) -> None:
    """Replaces the Reverb-facing parts (after the server was lost).

    The old ones are dropped, not closed (closing flushes to a server that
    lost their chunks). Episodes in progress are not reported; the next
    `run` resets every environment.

    Raises:
      ValueError: if the number of writers differs from the environments.
    """
    self._connect(writers, variable_subscriber, episode_reporter)
    self._steps_since_update = 0

  @property
  def network(self) -> networks.ImpalaNetwork:
    return self._network

  @property
  def learner_finished(self) -> bool:
    """True once the learner has published its final weights."""
    return bool(getattr(self._subscriber, 'learner_finished', False))

  def _while_blocked(self) -> None:
    """Called by a writer waiting for queue room: stop if training is over."""
    self.update(wait=False)
    if self.learner_finished:
      raise _LearnerFinished()

  def _policy_step(self, packed_inputs, task_id):
    """One batched step of μ on packed inputs; returns packed outputs.

    Inputs and outputs are packed into one tensor each because TF 2.15 on
    Python 3.11 leaks 16–48 bytes per EagerTensor created
    (tensorflow/tensorflow#62551; benchmarks/memory_probe.py): unpacked,
    this call made 11 per batched step (7 inputs, 4 outputs), now 2
    (`task_id` is made once), and `select_action` frees what those two
    leak (agent/eager_leak.py).

    Args:
      packed_inputs: uint8 [bytes], `packing.pack_numpy` of (observation
        [N, ...], step_fields float32 [N, 3]: prev_action, prev_reward,
        first (exact for action ids < 2^24), packed_state float32
        [N, 2·state_size]: h then c), laid out by `self._input_specs`.
      task_id: int32 [N].

    Returns:
      float32 [N, A + 1 + 2·state_size]: the logits, the sampled action,
      then the new state (h then c).
    """
    observation, step_fields, packed_state = packing.unpack(
        packed_inputs, self._input_specs)
    prev_action = tf.cast(step_fields[:, 0], tf.int32)
    first = step_fields[:, 2] > 0.5
    state = tuple(tf.split(packed_state, 2, axis=-1))
    output, state = self._network.step(observation, prev_action,
                                       step_fields[:, 1], first, task_id,
                                       state)
    seeds = self._rng.make_seeds(1)[:, 0]
    action = tf.random.stateless_categorical(output.policy_logits, 1, seeds,
                                             dtype=tf.int32)  # [N, 1]
    logits = tf.cast(output.policy_logits, tf.float32)
    return tf.concat([logits, tf.cast(action, tf.float32)]
                     + [tf.cast(x, tf.float32) for x in state], axis=-1)

  def observe_first(self) -> None:
    """Resets every environment and the per-environment stream state."""
    n = len(self._envs)
    self._observation = _stack([e.reset().observation for e in self._envs])
    self._first = np.ones(n, bool)
    self._reward = np.zeros(n, np.float32)
    self._discount = np.ones(n, np.float32)
    self._prev_action = np.zeros(n, np.int32)
    self._packed_state = np.concatenate(
        [np.asarray(x, np.float32) for x in self._network.initial_state(n)],
        axis=-1)
    self._state = tuple(np.split(self._packed_state, 2, axis=-1))
    self._episode_return = np.zeros(n, np.float64)
    self._episode_length = np.zeros(n, np.int64)

  def select_action(self):
    """Samples a_t ~ μ(·|x_t) for every environment: (actions [N], logits [N, A])."""
    observation = (self._observation if self._observation_key is None else
                   self._observation[self._observation_key])
    step_fields = np.stack([self._prev_action.astype(np.float32),
                            self._reward.astype(np.float32),
                            self._first.astype(np.float32)], axis=-1)
    inputs = (observation, step_fields, self._packed_state)
    if self._input_specs is None:  # fixed at the first call (one trace)
      self._input_specs = packing.spec_of(inputs)
    packed_inputs = tf.constant(packing.pack_numpy(inputs))
    output_tensor = self._policy(packed_inputs, self._task_id_tensor)
    output = output_tensor.numpy()
    # Both EagerTensors die here; TF 2.15 on Python 3.11 would leak ~16 B
    # of each (tensorflow#62551), ~1 MiB a minute per actor on Catch.
    eager_leak.release(packed_inputs, output_tensor)
    num_actions = output.shape[-1] - 1 - self._packed_state.shape[-1]
    self._next_packed_state = np.ascontiguousarray(output[:, num_actions + 1:])
    self._next_state = tuple(np.split(self._next_packed_state, 2, axis=-1))
    return (output[:, num_actions].astype(np.int32),
            np.ascontiguousarray(output[:, :num_actions]))

  def observe(self, actions: np.ndarray, logits: np.ndarray) -> None:
    """Writes the current steps, steps the environments, advances the state."""
    for i, writer in enumerate(self._writers):
      writer.append(dict(
          observation=tree.map_structure(lambda x: x[i], self._observation),
          first=self._first[i],
          reward=self._reward[i], discount=self._discount[i],
          prev_action=self._prev_action[i], action=actions[i],
          behaviour_logits=logits[i], task_id=self._task_id[i],
          core_state=(self._state[0][i], self._state[1][i])))
    observations = []
    for i, env in enumerate(self._envs):
      timestep = env.step(int(actions[i]))
      self._episode_return[i] += timestep.reward
      self._episode_length[i] += 1
      self._reward[i] = timestep.reward
      self._discount[i] = timestep.discount
      self._prev_action[i] = actions[i]
      self._first[i] = False
      if timestep.last():
        self._end_episode(i)
        self._write_last_step(i, timestep, actions[i], logits.shape[-1])
        timestep = env.reset()
        self._first[i] = True
        self._prev_action[i] = 0
      observations.append(timestep.observation)
    self._observation = _stack(observations)
    self._state = self._next_state
    self._packed_state = self._next_packed_state
    self.agent_steps += len(self._envs)

  def _write_last_step(self, i: int, timestep: dm_env.TimeStep,
                       action: int, num_actions: int) -> None:
    """Gives writer i the episode's final observation x_N, if it wants it."""
    end_episode = getattr(self._writers[i], 'end_episode', None)
    if end_episode is None:
      return
    end_episode(dict(
        observation=timestep.observation, first=False,
        reward=np.float32(timestep.reward),
        discount=np.float32(timestep.discount), prev_action=np.int32(action),
        action=np.int32(0),  # x_N has no action of its own; unused.
        behaviour_logits=np.zeros([num_actions], np.float32),
        task_id=self._task_id[i],
        core_state=(self._next_state[0][i], self._next_state[1][i])))

  def _end_episode(self, i: int) -> None:
    """Reports environment i's finished episode (call before its reset)."""
    self.episodes += 1
    if self._reporter is not None:
      length = int(self._episode_length[i])
      # Raw frames as the environment counted them (no-op starts, a shortened
      # last step) when it says; else agent steps × frame_skip.
      frames = int(getattr(self._envs[i], 'episode_frames',
                           length * self._frame_skip))
      self._reporter.report(
          actor_id=self._actor_id, task_id=int(self._task_id[i]),
          episode_return=float(self._episode_return[i]),
          episode_length=length, episode_frames=frames)
    self._episode_return[i] = 0.0
    self._episode_length[i] = 0

  def update(self, wait: bool = False) -> Optional[int]:
    """Pulls the latest published weights; returns their learner step."""
    if self._subscriber is None:
      return None
    return self._subscriber.update(wait=wait)

  def run_step(self) -> None:
    """One batched agent step; polls weights every `update_period` steps."""
    actions, logits = self.select_action()
    self.observe(actions, logits)
    self._steps_since_update += 1
    if self._steps_since_update >= self._update_period:
      self._steps_since_update = 0
      self.update(wait=False)

  def run(self, num_steps: Optional[int] = None,
          should_stop: Callable[[], bool] = lambda: False,
          log_every_secs: float = 60.0) -> None:
    """Acts until `num_steps` batched steps, `should_stop()` or the end.

    The end: the learner has published its final weights
    (`learner_finished`).
    """
    self.observe_first()
    done, last_log, last_steps = 0, time.time(), 0
    while ((num_steps is None or done < num_steps) and not should_stop()
           and not self.learner_finished):
      try:
        self.run_step()
      except _LearnerFinished:
        return
      done += 1
      now = time.time()
      if now - last_log >= log_every_secs:
        rate = (self.agent_steps - last_steps) / (now - last_log)
        logging.info('actor %d: %d agent steps (%.0f steps/s, %.0f frames/s), '
                     '%d episodes', self._actor_id, self.agent_steps, rate,
                     rate * self._frame_skip, self.episodes)
        last_log, last_steps = now, self.agent_steps

  def close(self) -> None:
    for writer in self._writers:
      writer.close()
    for env in self._envs:
      env.close()
