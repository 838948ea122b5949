"""Reverb 'queue' -> time-major `agent.types.Unroll` tf.data pipeline.

Reverb ops (the `TrajectoryDataset` kernel) run on the host CPU; under a
`tf.distribute` strategy build one dataset per input worker with
`strategy.distribute_datasets_from_function` and the PER-REPLICA batch size
(SPEC §8), so the batches reach the replicas (GPU/TPU) already split:

  def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
    return make_dataset(
        server_address,
        batch_size=input_context.get_per_replica_batch_size(global_batch_size))

  dataset = strategy.distribute_datasets_from_function(dataset_fn)

Reference: Acme `datasets/reverb.py::make_reverb_dataset` (interleaved
`TrajectoryDataset.from_table_signature` streams) and Reverb's
`trajectory_dataset.py`.
"""

from typing import Any, Mapping, Optional

import reverb
import tensorflow as tf

from agent import types
from replay import tables


def _time_major(x: tf.Tensor) -> tf.Tensor:
  """[B, T+1, ...] -> [T+1, B, ...]."""
  perm = [1, 0] + list(range(2, x.shape.rank))
  return tf.transpose(x, perm)  # [T+1, B, ...]


def to_time_major_unroll(data: Mapping[str, Any]) -> types.Unroll:
  """Converts a batch of queue items into a time-major `Unroll`.

  Args:
    data: dict keyed by `agent.types.STEP_FIELDS` as batched from the queue
      signature (`UnrollWriter.signature`): every field [B, T+1, ...] except
      core_state (h, c), each float32 [B, lstm_size].

  Returns:
    `Unroll` with every field [T+1, B, ...] and core_state (h, c), each
    float32 [B, lstm_size] (unchanged).
  """
  fields = {
      field: (tuple(data[field]) if field == 'core_state' else
              tf.nest.map_structure(_time_major, data[field]))
      for field in types.STEP_FIELDS
  }
  return types.Unroll(**fields)


def make_dataset(
    server_address: str,
    *,
    batch_size: int,
    table: str = tables.QUEUE_TABLE,
    max_in_flight_samples_per_worker: Optional[int] = None,
    num_parallel_calls: Optional[int] = None,
    prefetch_size: Optional[int] = tf.data.AUTOTUNE,
    rate_limiter_timeout_ms: int = -1,
) -> tf.data.Dataset:
  """Returns a dataset of time-major `agent.types.Unroll` batches.

  Each element: every field [T+1, B, ...] (B = batch_size, T = unroll_length
  in agent steps, dtypes as `replay.writer.step_spec`) except core_state (h, c),
  each float32 [B, lstm_size]. Batches are complete (drop_remainder=True), so
  shapes are static, as TPUs need. Items are read from `table` using its
  signature (`TrajectoryDataset.from_table_signature`), so the table must be
  made by `replay.tables.make_tables`. By default the dataset never ends:
  iterating blocks while the queue is empty. Items prefetched by tf.data or
  requested by Reverb (up to `max_in_flight_samples_per_worker` per stream) have
  already left the queue.

  Must be created inside `strategy.distribute_datasets_from_function` with the
  per-replica batch size (see the module docstring); the Reverb ops run on the
  host CPU.

  Args:
    server_address: 'host:port' of the Reverb server.
    batch_size: B, unrolls per (per-replica) batch, >= 1.
    table: table to read, `QUEUE_TABLE` by default.
    max_in_flight_samples_per_worker: samples requested ahead per stream;
      None means 2 * batch_size (Reverb's rule of thumb, as Acme). Items in
      flight have already left the queue.
    num_parallel_calls: None reads one Reverb stream, which keeps the queue's
      FIFO order (Reverb requires one worker per stream for that). An int n >= 1
      interleaves n streams (Acme style; each batch comes from one stream) for
      throughput with large observations; order across streams is then not
      deterministic and up to n * (B - 1) items can wait in partial batches,
      but each item is still read at most once.
    prefetch_size: batches to prefetch (tf.data.AUTOTUNE by default), or None
      for no prefetch.
    rate_limiter_timeout_ms: -1 (default) waits forever for items, as training
      does. A value >= 0 ends the dataset once a sample request has waited that
      long on an empty queue (tests; draining at shutdown); it also bounds how
      long deleting an iterator blocked on an empty queue takes (~3 s with -1
      in Reverb 0.14).

  Returns:
    tf.data.Dataset of `agent.types.Unroll`.

  Raises:
    ValueError: if `batch_size`, `max_in_flight_samples_per_worker` or
      `num_parallel_calls` is < 1, `rate_limiter_timeout_ms` < -1, or `table`
      is missing or unsigned.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  if max_in_flight_samples_per_worker is None:
    max_in_flight_samples_per_worker = 2 * batch_size
  if max_in_flight_samples_per_worker < 1:
    raise ValueError('max_in_flight_samples_per_worker must be >= 1 or None, '
                     f'got {max_in_flight_samples_per_worker}.')
  if num_parallel_calls is not None and num_parallel_calls < 1:
    raise ValueError(
        f'num_parallel_calls must be >= 1 or None, got {num_parallel_calls}.')

  if rate_limiter_timeout_ms < -1:
    raise ValueError('rate_limiter_timeout_ms must be -1 (no timeout) or >= 0, '
                     f'got {rate_limiter_timeout_ms}.')

  def make_stream(unused_index: Any = None) -> tf.data.Dataset:
    # One worker per stream: with a Fifo sampler more workers race and
    # reorder items (reverb.TrajectoryDataset docstring).
    stream = reverb.TrajectoryDataset.from_table_signature(
        server_address=server_address,
        table=table,
        max_in_flight_samples_per_worker=max_in_flight_samples_per_worker,
        num_workers_per_iterator=1,
        rate_limiter_timeout_ms=rate_limiter_timeout_ms)
    stream = stream.map(lambda sample: sample.data)  # Drop SampleInfo.
    return stream.batch(batch_size, drop_remainder=True)  # [B, T+1, ...]

  if num_parallel_calls is None:
    dataset = make_stream()
  else:
    dataset = tf.data.Dataset.range(num_parallel_calls).interleave(
        make_stream,
        cycle_length=num_parallel_calls,
        num_parallel_calls=num_parallel_calls,
        deterministic=False)
  dataset = dataset.map(
      to_time_major_unroll, num_parallel_calls=tf.data.AUTOTUNE)
  if prefetch_size is not None:
    dataset = dataset.prefetch(prefetch_size)
  return dataset
