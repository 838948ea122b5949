"""Learner input mixing queue unrolls with HER-relabeled replay items.

IMPALA (Espeholt et al. 2018, §5.3.1 "experience replay" ablation): each
learner batch holds a fixed proportion of replayed unrolls; SPEC §1 and §7 put
HER relabeling (replay/her.py) on the replay samples before they reach the
learner.

Mixing choice: the two streams are batched SEPARATELY and concatenated along
the batch axis, so every batch of B unrolls holds exactly R = round(
replay_proportion · B) replay items (columns B−R..B−1) and B−R queue items
(columns 0..B−R−1, in queue FIFO order). Unlike
`tf.data.Dataset.sample_from_datasets` the count is exact, not binomial, and
the queue stream stays a single FIFO reader.

Both streams are mapped to one structure before batching, `types.MaskedUnroll`
(fields of agent/types.py plus `mask`): queue items get mask all True; replay
items keep the mask from relabeling and drop the HER context fields
(desired_goal, achieved_goal, episode_*, relabeled). The relabeled goal is
inside `observation`, which is all the network needs.

Reverb ops run on the host CPU; build it inside
`strategy.distribute_datasets_from_function` with per-replica batch sizes, as
replay/datasets.py.
"""

from typing import Any, Callable, Dict, Mapping, Optional

import reverb
import tensorflow as tf

from agent import types
from replay import tables

# item -> item, e.g. functools.partial(her.relabel, strategy=..., ...) taking
# `seed` as a keyword (a stateless int64 [2] seed per item).
RelabelFn = Callable[..., Dict[str, Any]]


def replay_batch_size(batch_size: int, replay_proportion: float) -> int:
  """R = round(replay_proportion · batch_size), replay items per batch.

  Raises:
    ValueError: if `replay_proportion` is not in [0, 1), or it is > 0 but R
      is 0 or B (the queue must get at least one item per batch, else the
      actors block forever).
  """
  if not 0.0 <= replay_proportion < 1.0:
    raise ValueError('replay_proportion must be in [0, 1); got '
                     f'{replay_proportion}.')
  replay = int(round(replay_proportion * batch_size))
  if replay_proportion > 0 and not 0 < replay < batch_size:
    raise ValueError(
        f'replay_proportion={replay_proportion} of batch_size={batch_size} '
        f'gives {replay} replay items; it must give between 1 and '
        f'{batch_size - 1}.')
  return replay


def _masked(item: Mapping[str, Any], mask: tf.Tensor) -> Dict[str, Any]:
  """One unbatched item as the fields of types.MaskedUnroll."""
  out = {field: item[field] for field in types.STEP_FIELDS}
  out['mask'] = mask
  return out


def queue_item(item: Mapping[str, Any]) -> Dict[str, Any]:
  """A queue item with mask all True (bool [T+1])."""
  num_steps = tf.shape(item['first'])[0]
  return _masked(item, tf.ones([num_steps], tf.bool))


def replay_item(item: Mapping[str, Any]) -> Dict[str, Any]:
  """A (relabeled) replay item reduced to the MaskedUnroll fields."""
  return _masked(item, tf.cast(item['mask'], tf.bool))


def to_time_major(batch: Mapping[str, Any]) -> types.MaskedUnroll:
  """[B, T+1, ...] fields -> `types.MaskedUnroll` of [T+1, B, ...].

  core_state (h, c) stays float32 [B, lstm_size].
  """
  def time_major(x):
    return tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))

  fields = {field: (tuple(batch[field]) if field == 'core_state' else
                    tf.nest.map_structure(time_major, batch[field]))
            for field in types.MaskedUnroll._fields}
  return types.MaskedUnroll(**fields)


def make_mixed_dataset(
    server_address: str,
    *,
    batch_size: int,
    replay_batch_size: int,  # pylint: disable=redefined-outer-name
    relabel_fn: Optional[RelabelFn],
    seed: int,
    queue_table: str = tables.QUEUE_TABLE,
    replay_table: str = tables.REPLAY_TABLE,
    rate_limiter_timeout_ms: int = -1,
    prefetch_size: Optional[int] = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
  """Batches of B−R queue unrolls and R relabeled replay items.

  Args:
    server_address: 'host:port' of the Reverb server.
    batch_size: B, unrolls per (per-replica) batch.
    replay_batch_size: R in [1, B−1], replay items per batch (see
      `replay_batch_size`).
    relabel_fn: maps one replay item (replay/her.py ITEM FORMAT) to its
      relabeled version, called with `seed=` an int64 [2] stateless seed; None
      replays items unchanged.
    seed: seeds the stateless per-item relabel seeds (reproducible draws).
    queue_table, replay_table: table names.
    rate_limiter_timeout_ms: -1 waits forever for items (training); >= 0 ends
      the dataset after an empty wait that long (tests).
    prefetch_size: batches to prefetch, or None.

  Returns:
    tf.data.Dataset of `types.MaskedUnroll`, every field [T+1, B, ...] except
    core_state (h, c) [B, lstm_size]; columns 0..B−R−1 come from the queue
    (mask all True), B−R..B−1 from replay.

  Raises:
    ValueError: unless 1 <= replay_batch_size < batch_size.
  """
  if not 1 <= replay_batch_size < batch_size:
    raise ValueError('replay_batch_size must be in [1, batch_size - 1] = '
                     f'[1, {batch_size - 1}]; got {replay_batch_size}.')
  queue_batch_size = batch_size - replay_batch_size

  def stream(table, num_in_flight):
    dataset = reverb.TrajectoryDataset.from_table_signature(
        server_address=server_address, table=table,
        max_in_flight_samples_per_worker=num_in_flight,
        num_workers_per_iterator=1,  # FIFO order for the queue.
        rate_limiter_timeout_ms=rate_limiter_timeout_ms)
    return dataset.map(lambda sample: sample.data)

  queue = stream(queue_table, 2 * queue_batch_size).map(queue_item)
  replay = stream(replay_table, 2 * replay_batch_size)
  if relabel_fn is not None:
    seeds = tf.data.Dataset.random(seed).batch(2, drop_remainder=True)
    replay = tf.data.Dataset.zip((replay, seeds)).map(
        lambda item, item_seed: relabel_fn(item, seed=item_seed),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  replay = replay.map(replay_item)
  dataset = tf.data.Dataset.zip((
      queue.batch(queue_batch_size, drop_remainder=True),
      replay.batch(replay_batch_size, drop_remainder=True)))
  dataset = dataset.map(
      lambda q, r: to_time_major(tf.nest.map_structure(
          lambda a, b: tf.concat([a, b], axis=0), q, r)),
      num_parallel_calls=tf.data.AUTOTUNE)
  if prefetch_size is not None:
    dataset = dataset.prefetch(prefetch_size)
  return dataset
