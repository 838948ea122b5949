"""Actor episode statistics through the Reverb 'episodes' table.

Actors report each finished episode (`EpisodeReporter.report`); the learner
process drains all pending records without blocking (`drain_episodes`) and
logs them. The table (`replay.tables.make_tables`, schema
`replay.tables.EPISODE_SPEC`) never blocks an actor: past `episodes_capacity`
pending records the oldest are dropped, and the drain counts them
(`drain_episodes_counting_drops`), so a loss is reported, never silent. Only
the learner samples this table, so every record it counts in `server_info()`
can be sampled without waiting.
"""

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import reverb

from replay import tables


class EpisodeReporter:
  """Actor side: inserts one record per finished episode.

  Keeps one Reverb `TrajectoryWriter` (one gRPC stream) for all reports
  instead of opening a stream per record as `reverb.Client.insert` does.
  """

  def __init__(self,
               client: reverb.Client,
               *,
               table: str = tables.EPISODES_TABLE):
    """Creates the reporter.

    Args:
      client: reverb.Client of the server holding `table`.
      table: the episodes table.
    """
    self._table = table
    self._writer = client.trajectory_writer(num_keep_alive_refs=1)

  def report(self, actor_id: int, task_id: int, episode_return: float,
             episode_length: int, episode_frames: int) -> None:
    """Inserts one episode record; returns once the server has stored it.

    Args:
      actor_id: index of the reporting actor (int32).
      task_id: task (e.g. game) index of the episode (int32).
      episode_return: undiscounted sum of unclipped env rewards (float32).
      episode_length: episode length in AGENT STEPS (int64), >= 0.
      episode_frames: episode length in RAW FRAMES (int64), >= 0.

    Raises:
      ValueError: if `episode_length` or `episode_frames` is negative.
    """
    if episode_length < 0:
      raise ValueError(
          f'episode_length must be >= 0 agent steps, got {episode_length}.')
    if episode_frames < 0:
      raise ValueError(
          f'episode_frames must be >= 0 raw frames, got {episode_frames}.')
    record = {
        'actor_id': np.int32(actor_id),
        'task_id': np.int32(task_id),
        'episode_return': np.float32(episode_return),
        'episode_length': np.int64(episode_length),
        'episode_frames': np.int64(episode_frames),
    }
    self._writer.append(record)
    history = self._writer.history
    self._writer.create_item(
        self._table,
        priority=1.0,
        trajectory={field: history[field][-1] for field in record})
    # The table's MinSize limiter never blocks inserts, so this is prompt.
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def invalid_reason(record: Dict[str, Any], num_tasks: int) -> Optional[str]:
  """Why a drained episode record cannot be genuine, or None if it can be.

  The port is unauthenticated (README "Security"): the learner checks what it
  cheaply can before logging a record. A forged record that passes these
  checks cannot be told apart.

  Args:
    record: one record of `drain_episodes_counting_drops`.
    num_tasks: number of tasks (games) of the run; task_id must be below it.
  """
  if not 0 <= record['task_id'] < num_tasks:
    return f'task_id {record["task_id"]} not in [0, {num_tasks})'
  if record['actor_id'] < 0:
    return f'actor_id {record["actor_id"]} < 0'
  if not math.isfinite(record['episode_return']):
    return f'episode_return {record["episode_return"]} is not finite'
  if record['episode_length'] < 0 or record['episode_frames'] < 0:
    return 'a negative episode length'
  return None


def drain_episodes(client: reverb.Client,
                   *,
                   table: str = tables.EPISODES_TABLE,
                   timeout_secs: int = 30) -> List[Dict[str, Any]]:
  """Returns every pending episode record, oldest first, without blocking.

  `drain_episodes_counting_drops` without the count; see there.
  """
  return drain_episodes_counting_drops(client, table=table,
                                       timeout_secs=timeout_secs)[0]


def drain_episodes_counting_drops(
    client: reverb.Client,
    *,
    table: str = tables.EPISODES_TABLE,
    timeout_secs: int = 30) -> Tuple[List[Dict[str, Any]], int]:
  """Every pending episode record, and how many records the table dropped.

  Must be the table's only reader (the learner): it samples exactly the
  `current_size` records counted by `server_info()`, each sampled once and so
  removed; records inserted meanwhile stay for the next call.

  Dropped records are counted exactly from the table's rate-limiter
  statistics: inserts − samples − pending, i.e. the records the full table
  evicted (oldest first) before anyone read them, since the server started.

  Args:
    client: reverb.Client of the server holding `table`.
    table: the episodes table.
    timeout_secs: limit on the `server_info` call, in seconds.

  Returns:
    (records, dropped): records a list of dicts with the keys of
    `replay.tables.EPISODE_SPEC` and Python values (int, or float for
    episode_return), [] when nothing is pending; dropped the number of
    records evicted unread since the server started (cumulative).

  Raises:
    reverb.DeadlineExceededError: if the server does not answer in time.
  """
  info = client.server_info(timeout=timeout_secs)[table]
  stats = info.rate_limiter_info
  dropped = int(stats.insert_stats.completed - stats.sample_stats.completed
                - info.current_size)
  num_pending = info.current_size
  if num_pending == 0:
    return [], max(dropped, 0)
  records = []
  for sample in client.sample(
      table,
      num_samples=num_pending,
      emit_timesteps=False,
      unpack_as_table_signature=True):
    records.append(
        {field: value.item() for field, value in sample.data.items()})
  return records, max(dropped, 0)
