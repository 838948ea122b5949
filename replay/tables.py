"""Reverb tables of the IMPALA pipeline: 'queue', 'variables', 'episodes', 'replay'.

Built once by the process that owns the Reverb server (`launch/train.py` or
`launch/reverb_server.py`), as Acme's `builder.make_replay_tables` and
TF-Agents' `sac_reverb_server.py` do:

  * 'queue' (`QUEUE_TABLE`): the on-policy unrolls of `replay.writer`. A FIFO
    queue: each item is sampled exactly once, in insertion order, and writers
    BLOCK when it is full (back-pressure on the actors; nothing is dropped).
  * 'variables' (`VARIABLES_TABLE`): the learner's latest weights
    (`replay.variables`). One item; a new publish evicts the old one; actors
    sample it any number of times.
  * 'episodes' (`EPISODES_TABLE`): one record per finished actor episode
    (`replay.episodes`, schema `EPISODE_SPEC`). Never blocks an actor: when it
    holds `episodes_capacity` records the OLDEST record is dropped on insert,
    so statistics are lost (not delayed) if the learner stops draining it.
  * 'replay' (`REPLAY_TABLE`, optional, `make_replay_table`): HER replay
    items of goal-conditioned envs (`replay.her_writer`). Uniform sampling
    with replacement, the oldest item removed beyond `replay_size`, and a
    MinSize(1) limiter: inserts NEVER block, so the queue stays the only
    table that applies back-pressure to the actors.

Example:

  signature = writer.UnrollWriter.signature(
      writer.step_spec(obs_spec, num_actions), unroll_length=20)
  server = reverb.Server(
      make_tables(signature, queue_capacity=64,
                  variables_signature=variables.variables_signature(vs)),
      port=8000)
"""

from typing import Any, List, Optional

import reverb
import tensorflow as tf

QUEUE_TABLE = 'queue'
VARIABLES_TABLE = 'variables'
EPISODES_TABLE = 'episodes'
REPLAY_TABLE = 'replay'

# One finished episode as reported by an actor (`replay.episodes`).
#   actor_id:       int32   [] index of the actor process (or env stream).
#   task_id:        int32   [] task (e.g. game) index of the episode.
#   episode_return: float32 [] undiscounted sum of unclipped env rewards.
#   episode_length: int64   [] length in AGENT STEPS.
#   episode_frames: int64   [] length in RAW FRAMES (agent steps x frame_skip).
EPISODE_SPEC = {
    'actor_id': tf.TensorSpec([], tf.int32, name='actor_id'),
    'task_id': tf.TensorSpec([], tf.int32, name='task_id'),
    'episode_return': tf.TensorSpec([], tf.float32, name='episode_return'),
    'episode_length': tf.TensorSpec([], tf.int64, name='episode_length'),
    'episode_frames': tf.TensorSpec([], tf.int64, name='episode_frames'),
}


def _check_capacity(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(
        f'{name} must be an integer >= 1 (number of items), got {value!r}.')


def make_tables(
    signature: Any,
    *,
    queue_capacity: int,
    variables_signature: Optional[Any] = None,
    episodes_capacity: int = 100_000,
) -> List[reverb.Table]:
  """Returns the [queue, variables, episodes] tables for a `reverb.Server`.

  Args:
    signature: nest of tf.TensorSpec of one unroll item, i.e.
      `replay.writer.UnrollWriter.signature(step_spec, unroll_length)`. The
      queue validates every inserted item against it and
      `replay.datasets.make_dataset` reads the dtypes/shapes from it.
    queue_capacity: maximum number of unrolls (items) held by 'queue'. When the
      queue is full, `UnrollWriter.append` blocks (in its flush) until the
      learner samples. IMPALA keeps it small (a few batches) so that the
      behaviour policy μ stays close to the target policy π.
    variables_signature: signature of the 'variables' item, from
      `replay.variables.variables_signature(variables)`. Required by
      `VariablePublisher` / `VariableSubscriber` (TF-Agents'
      `ReverbVariableContainer` refuses a signature-less table); None only
      for servers that never carry weights (e.g. data-layer tests).
    episodes_capacity: maximum number of pending episode records in
      'episodes'; beyond it the oldest records are dropped, never blocking.

  Returns:
    [queue, variables, episodes] reverb.Table objects, named `QUEUE_TABLE`,
    `VARIABLES_TABLE` and `EPISODES_TABLE`.

  Raises:
    ValueError: if `queue_capacity` or `episodes_capacity` is not an int >= 1.
  """
  _check_capacity('queue_capacity', queue_capacity)
  _check_capacity('episodes_capacity', episodes_capacity)
  # Fifo sampler and remover, max_times_sampled=1 and a Queue(max_size) rate
  # limiter: inserts block when full, samples block when empty.
  queue = reverb.Table.queue(
      QUEUE_TABLE, max_size=queue_capacity, signature=signature)
  variables = reverb.Table(
      name=VARIABLES_TABLE,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=1,
      max_times_sampled=0,  # Unlimited: every actor reads the same item.
      rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=variables_signature)
  episodes = reverb.Table(
      name=EPISODES_TABLE,
      sampler=reverb.selectors.Fifo(),
      remover=reverb.selectors.Fifo(),  # Drops the oldest record when full.
      max_size=episodes_capacity,
      max_times_sampled=1,
      # MinSize never blocks inserts; samples wait for one record, but
      # `replay.episodes.drain_episodes` only asks for records that exist.
      rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=EPISODE_SPEC)
  return [queue, variables, episodes]


def make_replay_table(signature: Any, *, replay_size: int) -> reverb.Table:
  """Returns the HER 'replay' table (IMPALA replay ablation; SPEC §1, §7).

  Args:
    signature: nest of tf.TensorSpec of one replay item,
      `replay.her_writer.replay_signature(...)`.
    replay_size: maximum number of items (unrolls) kept; beyond it the OLDEST
      item is removed on insert (FIFO remover).

  Returns:
    reverb.Table named `REPLAY_TABLE`: Uniform sampler (items may be sampled
    any number of times), Fifo remover, MinSize(1) rate limiter (inserts never
    block; samples wait until one item exists).

  Raises:
    ValueError: if `replay_size` is not an int >= 1.
  """
  _check_capacity('replay_size', replay_size)
  return reverb.Table(
      name=REPLAY_TABLE,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=replay_size,
      max_times_sampled=0,  # Unlimited re-use.
      rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=signature)
