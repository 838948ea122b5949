"""Actor-side writer for goal-conditioned envs: queue unrolls + HER replay items.

One `GoalUnrollWriter` per environment stream of a goal-conditioned env
(envs/goal.py: observations are dicts with 'observation', 'desired_goal' and
'achieved_goal'). It feeds two Reverb tables:

  * 'queue': exactly what `replay.writer.UnrollWriter` writes for any env (the
    continuous stream of overlapping T+1 unrolls, episode ends folded into the
    next episode's first step), with the policy observation
    `observation['observation']` only. Every unroll reaches the queue exactly
    once, and this is the only table whose limiter blocks the actor.
  * 'replay' (optional): the episode is kept in the writer's own buffer, and
    when it ends (`end_episode`, called by agent/actor.py with the final
    observation x_N) it is cut into the items of the replay/her.py ITEM
    FORMAT: items start at episode steps 0, T, 2T, ... (one step of overlap),
    the last one is cut at x_N and padded (mask=False, first=True, reward 0,
    discount 0, other fields zero), and each carries the achieved goals of the
    WHOLE episode (`episode_achieved_goals`, zero-padded to L =
    max_episode_steps), `episode_length` and `episode_offset`. So items never
    span two episodes, and `final`/`future`/`episode` goals always come from
    the item's own episode (unlike SEED RL's HER).

Blocking (the issue's note): one TrajectoryWriter flushing to both tables
would stall when either table's limiter blocks. The replay items go through a
SEPARATE TrajectoryWriter, and the replay table's MinSize(1) limiter never
blocks inserts (replay.tables.make_replay_table), so the queue alone applies
back-pressure.

Replay items are written once per item (each its own one-step trajectory of
the item's fields), not as references into a shared history: padding and the
per-item episode goals would not fit Reverb's column references, and the
duplicated overlap step costs 1/(T+1) of the replay bytes.

The replay item's `core_state` is the actor's LSTM state before the item's
step 0 under the ORIGINAL goal g. For items starting an episode (offset 0)
the network resets it (first=True), so it is exact; for later items a
relabeled goal g′ makes it a stale state (as R2D2's stored state). Choose
T >= max_steps (one item per episode) to avoid that.
"""

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import reverb
import tensorflow as tf
import tree

from replay import tables
from replay import writer as writer_lib

_CORE_STATE = 'core_state'
_GOAL_FIELDS = ('desired_goal', 'achieved_goal')
_PRIORITY = 1.0  # Uniform sampling: priorities are unused but required.


def replay_signature(step_spec: Mapping[str, Any], unroll_length: int,
                     goal_spec: tf.TensorSpec,
                     max_episode_steps: int) -> Dict[str, Any]:
  """Returns the HER replay item signature (replay/her.py ITEM FORMAT).

  Args:
    step_spec: `replay.writer.step_spec(policy_observation_spec, ...)`.
    unroll_length: T in agent steps, >= 1.
    goal_spec: tf.TensorSpec of ONE goal, e.g. float32 [n] (bit flipping) or
      int32 [2] (grid world).
    max_episode_steps: L, the most stored steps x_0..x_N of an episode (the
      env's max_steps + 1), >= 2.

  Returns:
    The queue signature (`UnrollWriter.signature`) plus desired_goal and
    achieved_goal [T+1, G...], mask bool [T+1], episode_achieved_goals
    [L, G...], episode_length int32 [] and episode_offset int32 [].

  Raises:
    ValueError: for `unroll_length` < 1, `max_episode_steps` < 2 or a
      step_spec without the STEP_FIELDS keys.
  """
  if max_episode_steps < 2:
    raise ValueError('max_episode_steps must be >= 2 (one transition), got '
                     f'{max_episode_steps}.')
  signature = writer_lib.UnrollWriter.signature(step_spec, unroll_length)
  goal_spec = tf.TensorSpec(goal_spec.shape, goal_spec.dtype)
  for field in _GOAL_FIELDS:
    signature[field] = tf.TensorSpec([unroll_length + 1, *goal_spec.shape],
                                     goal_spec.dtype, field)
  signature.update(
      mask=tf.TensorSpec([unroll_length + 1], tf.bool, 'mask'),
      episode_achieved_goals=tf.TensorSpec(
          [max_episode_steps, *goal_spec.shape], goal_spec.dtype,
          'episode_achieved_goals'),
      episode_length=tf.TensorSpec([], tf.int32, 'episode_length'),
      episode_offset=tf.TensorSpec([], tf.int32, 'episode_offset'))
  return signature


class GoalUnrollWriter:
  """Queue unrolls and, optionally, HER replay items of one goal-env stream.

  Protocol (agent/actor.py follows it):

    writer.append(step)        # every stored step; step['observation'] is the
                               # env's observation dict
    writer.end_episode(step)   # once per episode, BEFORE the env is reset:
                               # x_N as a step (action/behaviour_logits unused)
    writer.close()
  """

  def __init__(self, client: reverb.Client, *, unroll_length: int,
               max_episode_steps: int,
               replay_table: Optional[str] = tables.REPLAY_TABLE,
               queue_table: str = tables.QUEUE_TABLE,
               max_in_flight_items: int = 2):
    """Creates the writer; blocks until the server answers `server_info`.

    Args:
      client: reverb.Client of the server holding the tables.
      unroll_length: T, agent steps per unroll (items hold T+1 steps).
      max_episode_steps: L, the most stored steps of an episode (env max_steps
        + 1); a longer episode raises in `append`.
      replay_table: table for HER replay items, or None to write the queue only
        (goal-conditioned runs without replay).
      queue_table: the queue table (see replay.writer.UnrollWriter).
      max_in_flight_items: per table, items allowed to be unconfirmed by the
        server (>= 0).

    Raises:
      ValueError: for bad arguments, a missing or unsigned table, or a replay
        signature that disagrees with `unroll_length`/`max_episode_steps`.
    """
    self._queue = writer_lib.UnrollWriter(
        client, unroll_length=unroll_length, table=queue_table,
        max_in_flight_items=max_in_flight_items)
    self._unroll_length = unroll_length
    self._max_episode_steps = int(max_episode_steps)
    self._max_in_flight_items = max_in_flight_items
    self._replay_table = replay_table
    self._replay = None
    self._spec = None
    if replay_table is not None:
      info = client.server_info()
      if replay_table not in info or not info[replay_table].signature:
        raise ValueError(f'replay_table must name a signed Reverb table; '
                         f'{replay_table!r} not found or unsigned in '
                         f'{sorted(info)}.')
      spec = info[replay_table].signature
      expected = (unroll_length + 1, self._max_episode_steps)
      observed = (spec['mask'].shape[0],
                  spec['episode_achieved_goals'].shape[0])
      if observed != expected:
        raise ValueError(
            f'unroll_length + 1 and max_episode_steps must match the '
            f'{replay_table!r} signature {observed}; got {expected}.')
      self._spec = spec
      self._replay = client.trajectory_writer(num_keep_alive_refs=1)
    self._episode: List[Dict[str, Any]] = []
    self._in_episode = False
    self._num_replay_items = 0

  @property
  def num_items(self) -> int:
    """Queue items (unrolls) created so far."""
    return self._queue.num_items

  @property
  def num_replay_items(self) -> int:
    """Replay items created so far."""
    return self._num_replay_items

  def append(self, step: Mapping[str, Any]) -> None:
    """Appends one stored step (agent/types.py convention) to both streams.

    Args:
      step: dict with the keys of `replay.writer.step_spec`; `observation` is
        the goal env's observation dict ('observation', 'desired_goal',
        'achieved_goal'), numpy values of ONE step.

    Raises:
      ValueError: for a bad step (see UnrollWriter.append), a first step while
        the previous episode was not ended with `end_episode`, or an episode
        longer than max_episode_steps.
    """
    observation = step['observation']
    self._queue.append(dict(step, observation=observation['observation']))
    if self._replay is None:
      return
    if step['first']:
      if self._episode:
        raise ValueError('append got a first step, but end_episode was not '
                         'called for the previous episode (see the '
                         'GoalUnrollWriter protocol).')
      self._in_episode = True
    if self._in_episode:  # Steps before the writer's first episode start
      self._buffer(step)  # cannot make items (no x_0): skipped.

  def end_episode(self, last_step: Mapping[str, Any]) -> None:
    """Ends the episode with its final observation x_N; writes replay items.

    Args:
      last_step: x_N as a step dict (like `append`): its observation dict,
        first=False, the final reward and env discount (0 on success, 1 on
        truncation), prev_action a_{N−1}; action and behaviour_logits are
        unused (e.g. zeros).

    Raises:
      ValueError: if the episode exceeds max_episode_steps stored steps.
    """
    if self._replay is None or not self._in_episode:
      return
    self._buffer(last_step)
    steps, self._episode, self._in_episode = self._episode, [], False
    for item in self._items(steps):
      self._replay.append(item)
      self._replay.create_item(
          self._replay_table, _PRIORITY,
          tree.map_structure(lambda column: column[-1], self._replay.history))
      self._num_replay_items += 1
    # Never blocked by the table (MinSize limiter): waits only for the server
    # to confirm all but max_in_flight_items items.
    self._replay.flush(block_until_num_items=self._max_in_flight_items)

  def _buffer(self, step: Mapping[str, Any]) -> None:
    if len(self._episode) >= self._max_episode_steps:
      raise ValueError(
          f'an episode has more than max_episode_steps='
          f'{self._max_episode_steps} stored steps; set it to the env\'s '
          'max_steps + 1.')
    observation = step['observation']
    stored = {field: step[field] for field in step if field != 'observation'}
    stored['observation'] = observation['observation']
    for field in _GOAL_FIELDS:
      stored[field] = observation[field]
    self._episode.append(stored)

  def _items(self, steps: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The padded replay items of one episode x_0..x_N (her.py contract)."""
    spec, length = self._spec, len(steps)
    horizon = self._unroll_length + 1
    goal_spec = spec['episode_achieved_goals']
    episode_goals = np.zeros(goal_spec.shape, goal_spec.dtype.as_numpy_dtype)
    episode_goals[:length] = [s['achieved_goal'] for s in steps]
    items = []
    for offset in range(0, length - 1, self._unroll_length):
      valid = min(horizon, length - offset)
      window = steps[offset:offset + valid]
      item = {}
      for field, field_spec in spec.items():
        if field == _CORE_STATE or field not in window[0]:
          continue
        column = np.zeros(field_spec.shape, field_spec.dtype.as_numpy_dtype)
        column[:valid] = [s[field] for s in window]
        item[field] = column
      item['first'][valid:] = True  # Padding: first, reward 0, discount 0.
      item[_CORE_STATE] = tuple(
          np.asarray(x, s.dtype.as_numpy_dtype)
          for x, s in zip(window[0][_CORE_STATE], spec[_CORE_STATE]))
      item.update(
          mask=np.arange(horizon) < valid,
          episode_achieved_goals=episode_goals,
          episode_length=np.int32(length),
          episode_offset=np.int32(offset))
      items.append(item)
    return items

  def close(self, timeout_ms: Optional[int] = None) -> None:
    """Sends pending items of both tables, then closes (see UnrollWriter)."""
    try:
      self._queue.close(timeout_ms=timeout_ms)
    finally:
      if self._replay is not None:
        try:
          self._replay.flush(timeout_ms=timeout_ms)
        finally:
          self._replay.close()

  def __enter__(self) -> 'GoalUnrollWriter':
    return self

  def __exit__(self, *unused_exc_info) -> None:
    self.close()
