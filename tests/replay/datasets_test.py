"""Tests for replay/datasets.py: UnrollWriter -> Reverb -> time-major Unroll."""

from absl.testing import parameterized
import numpy as np
import reverb
import tensorflow as tf

from agent import types
from replay import datasets
from replay import tables
from replay import writer as writer_lib
from tests import strategies

_OBS_SPEC = tf.TensorSpec([8, 8, 2], tf.uint8)
_NUM_ACTIONS = 3
_LSTM_SIZE = 4
_T = 3  # unroll_length, agent steps.
_B = 2  # batch_size.
_NUM_ITEMS = 2 * _B
# Ends a dataset whose queue stays empty this long instead of hanging a test.
_TIMEOUT_MS = 1000


def make_step(i):
  """Step i of the stream, with i encoded in every field."""
  return {
      'observation': np.full([8, 8, 2], i, np.uint8),
      'first': i % 5 == 0,
      'reward': np.float32(i),
      'discount': np.float32(0.0 if i % 5 == 0 else 1.0),
      'prev_action': np.int32(i),
      'action': np.int32(i + 1),
      'behaviour_logits': np.arange(_NUM_ACTIONS, dtype=np.float32) + i,
      'task_id': np.int32(i % 2),
      'core_state': (np.full([_LSTM_SIZE], i, np.float32),
                     np.full([_LSTM_SIZE], -i, np.float32)),
  }


class MakeDatasetTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.step_spec = writer_lib.step_spec(_OBS_SPEC, _NUM_ACTIONS, _LSTM_SIZE)
    signature = writer_lib.UnrollWriter.signature(cls.step_spec, _T)
    cls.server = reverb.Server(
        tables.make_tables(signature, queue_capacity=100), port=None)
    cls.address = f'localhost:{cls.server.port}'
    cls.client = reverb.Client(cls.address)

  def tearDown(self):
    self.client.reset(tables.QUEUE_TABLE)
    super().tearDown()

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def write_items(self, num_items):
    with writer_lib.UnrollWriter(self.client, unroll_length=_T) as writer:
      for i in range(num_items * _T + 1):
        writer.append(make_step(i))

  def expected_batch(self, item_indices):
    """Time-major Unroll of items `item_indices` (item k starts at step kT)."""
    starts = [k * _T for k in item_indices]
    steps = [[make_step(s + t) for s in starts] for t in range(_T + 1)]
    fields = {
        field: np.stack([np.stack([step[field] for step in row])
                         for row in steps])  # [T+1, B, ...]
        for field in types.STEP_FIELDS if field != 'core_state'
    }
    fields['core_state'] = tuple(
        np.stack([make_step(s)['core_state'][j] for s in starts])  # [B, L]
        for j in range(2))
    return types.Unroll(**fields)

  def test_time_major_shapes_dtypes_and_values(self):
    self.write_items(_NUM_ITEMS)
    dataset = datasets.make_dataset(
        self.address, batch_size=_B, rate_limiter_timeout_ms=_TIMEOUT_MS)
    spec = dataset.element_spec
    self.assertIsInstance(spec, types.Unroll)
    self.assertEqual(spec.observation.shape, [_T + 1, _B, 8, 8, 2])
    self.assertEqual(spec.observation.dtype, tf.uint8)
    self.assertEqual(spec.behaviour_logits.shape, [_T + 1, _B, _NUM_ACTIONS])
    for field in ('first', 'reward', 'discount', 'prev_action', 'action',
                  'task_id'):
      self.assertEqual(getattr(spec, field).shape, [_T + 1, _B], field)
      self.assertEqual(getattr(spec, field).dtype,
                       self.step_spec[field].dtype, field)
    for state_spec in spec.core_state:
      self.assertEqual(state_spec.shape, [_B, _LSTM_SIZE])
      self.assertEqual(state_spec.dtype, tf.float32)

    iterator = iter(dataset)
    for batch_index in range(_NUM_ITEMS // _B):
      batch = next(iterator)
      expected = self.expected_batch(
          range(batch_index * _B, (batch_index + 1) * _B))
      tf.nest.map_structure(self.assertAllEqual, expected, batch)
    with self.assertRaises(StopIteration):  # Queue empty: nothing left.
      next(iterator)
    self.assertEqual(
        self.client.server_info(timeout=5)[tables.QUEUE_TABLE].current_size, 0)

  def test_interleaved_streams_read_each_item_at_most_once(self):
    num_streams = 2
    num_items = 4 * _B
    self.write_items(num_items)
    dataset = datasets.make_dataset(
        self.address, batch_size=_B, num_parallel_calls=num_streams,
        rate_limiter_timeout_ms=_TIMEOUT_MS)
    batches = list(dataset)  # Ends when the queue stays empty.
    # Each stream batches on its own, so up to num_streams * (B - 1) items
    # can be left in partial batches and dropped at the end.
    self.assertGreaterEqual(
        len(batches) * _B, num_items - num_streams * (_B - 1))
    starts = np.concatenate([b.prev_action[0].numpy() for b in batches])
    self.assertLen(set(starts.tolist()), len(starts))
    for batch in batches:
      start_items = [s // _T for s in batch.prev_action[0].numpy().tolist()]
      self.assertTrue(all(0 <= k < num_items for k in start_items))
      tf.nest.map_structure(self.assertAllEqual,
                            self.expected_batch(start_items), batch)

  def test_distribute_datasets_from_function(self):
    devices = tf.config.list_logical_devices('CPU')
    if len(devices) < 2:
      self.skipTest('needs the 2 logical CPUs of tests/conftest.py')
    strategy = strategies.two_replica_strategy()
    self.write_items(2 * _B)
    global_batch_size = strategy.num_replicas_in_sync * _B

    def dataset_fn(input_context):
      return datasets.make_dataset(
          self.address,
          batch_size=input_context.get_per_replica_batch_size(
              global_batch_size),
          rate_limiter_timeout_ms=_TIMEOUT_MS)

    batch = next(iter(strategy.distribute_datasets_from_function(dataset_fn)))
    per_replica = strategy.experimental_local_results(batch)
    self.assertLen(per_replica, 2)
    starts = []
    for unroll in per_replica:
      self.assertEqual(unroll.observation.shape, [_T + 1, _B, 8, 8, 2])
      self.assertEqual(unroll.core_state[0].shape, [_B, _LSTM_SIZE])
      starts.extend(unroll.prev_action[0].numpy().tolist())
    self.assertCountEqual(starts, [k * _T for k in range(2 * _B)])

  def test_to_time_major_unroll_graph_mode(self):
    data = {
        field: tf.zeros([_B, _T + 1, 5]) for field in types.STEP_FIELDS
        if field != 'core_state'
    }
    data['core_state'] = (tf.zeros([_B, _LSTM_SIZE]), tf.ones([_B, _LSTM_SIZE]))
    unroll = tf.function(datasets.to_time_major_unroll)(data)
    self.assertEqual(unroll.reward.shape, [_T + 1, _B, 5])
    self.assertAllEqual(unroll.core_state[1], tf.ones([_B, _LSTM_SIZE]))

  @parameterized.named_parameters(
      ('BatchSize', dict(batch_size=0), 'batch_size'),
      ('InFlight', dict(batch_size=1, max_in_flight_samples_per_worker=0),
       'max_in_flight_samples_per_worker'),
      ('ParallelCalls', dict(batch_size=1, num_parallel_calls=0),
       'num_parallel_calls'),
      ('Timeout', dict(batch_size=1, rate_limiter_timeout_ms=-2),
       'rate_limiter_timeout_ms'),
  )
  def test_rejects_bad_arguments(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      datasets.make_dataset(self.address, **kwargs)


if __name__ == '__main__':
  tf.test.main()
