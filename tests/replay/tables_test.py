"""Tests for replay/tables.py against a real in-process Reverb server."""

from absl.testing import parameterized
import numpy as np
import reverb
import tensorflow as tf

from replay import tables

_SIGNATURE = {'x': tf.TensorSpec([2], tf.float32)}
_VARIABLES_SIGNATURE = {'v': tf.TensorSpec([], tf.int64)}
_QUEUE_CAPACITY = 3
_EPISODES_CAPACITY = 4


class MakeTablesTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tables = tables.make_tables(
        _SIGNATURE,
        queue_capacity=_QUEUE_CAPACITY,
        variables_signature=_VARIABLES_SIGNATURE,
        episodes_capacity=_EPISODES_CAPACITY)
    cls.server = reverb.Server(cls.tables, port=None)
    cls.client = reverb.Client(f'localhost:{cls.server.port}')

  def tearDown(self):
    for name in (tables.QUEUE_TABLE, tables.VARIABLES_TABLE,
                 tables.EPISODES_TABLE):
      self.client.reset(name)
    super().tearDown()

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def insert(self, name, data):
    """Inserts one item made of one (squeezed) step, as the signatures say."""
    with self.client.trajectory_writer(num_keep_alive_refs=1) as writer:
      writer.append(data)
      writer.create_item(name, 1.0, {k: writer.history[k][-1] for k in data})

  def info(self, name):
    return self.client.server_info(timeout=5)[name]

  def sample_values(self, name, num_samples, field):
    return [
        sample.data[field].item() for sample in self.client.sample(
            name, num_samples, emit_timesteps=False,
            unpack_as_table_signature=True)
    ]

  def test_names_and_signatures(self):
    info = self.client.server_info(timeout=5)
    self.assertCountEqual(
        info, [tables.QUEUE_TABLE, tables.VARIABLES_TABLE,
               tables.EPISODES_TABLE])
    self.assertEqual(info[tables.QUEUE_TABLE].signature, _SIGNATURE)
    self.assertEqual(info[tables.VARIABLES_TABLE].signature,
                     _VARIABLES_SIGNATURE)
    self.assertEqual(info[tables.EPISODES_TABLE].signature,
                     tables.EPISODE_SPEC)
    self.assertEqual(info[tables.QUEUE_TABLE].max_size, _QUEUE_CAPACITY)
    self.assertEqual(info[tables.VARIABLES_TABLE].max_size, 1)
    self.assertEqual(info[tables.EPISODES_TABLE].max_size, _EPISODES_CAPACITY)

  def test_queue_is_fifo_and_samples_each_item_once(self):
    for i in range(_QUEUE_CAPACITY):
      self.insert(tables.QUEUE_TABLE, {'x': np.full([2], i, np.float32)})
    # A full queue refuses (blocks) further inserts rather than dropping.
    queue = self.tables[0]
    self.assertEqual(queue.name, tables.QUEUE_TABLE)
    self.assertFalse(queue.can_insert(1))
    self.assertTrue(queue.can_sample(_QUEUE_CAPACITY))
    values = [
        sample.data['x'].tolist() for sample in self.client.sample(
            tables.QUEUE_TABLE, _QUEUE_CAPACITY, emit_timesteps=False,
            unpack_as_table_signature=True)
    ]
    self.assertEqual(values, [[i, i] for i in range(_QUEUE_CAPACITY)])
    self.assertEqual(self.info(tables.QUEUE_TABLE).current_size, 0)

  def test_variables_keeps_latest_and_is_sampled_repeatedly(self):
    for v in (1, 2, 3):
      self.insert(tables.VARIABLES_TABLE, {'v': np.int64(v)})
    self.assertEqual(self.info(tables.VARIABLES_TABLE).current_size, 1)
    self.assertEqual(
        self.sample_values(tables.VARIABLES_TABLE, 5, 'v'), [3] * 5)
    self.assertEqual(self.info(tables.VARIABLES_TABLE).current_size, 1)

  def test_episodes_drops_oldest_when_full(self):
    record = {name: np.zeros([], spec.dtype.as_numpy_dtype)
              for name, spec in tables.EPISODE_SPEC.items()}
    for i in range(_EPISODES_CAPACITY + 2):  # Never blocks.
      self.insert(tables.EPISODES_TABLE, {**record, 'actor_id': np.int32(i)})
    self.assertEqual(
        self.info(tables.EPISODES_TABLE).current_size, _EPISODES_CAPACITY)
    self.assertEqual(
        self.sample_values(tables.EPISODES_TABLE, _EPISODES_CAPACITY,
                           'actor_id'), [2, 3, 4, 5])
    self.assertEqual(self.info(tables.EPISODES_TABLE).current_size, 0)

  @parameterized.named_parameters(
      ('QueueZero', dict(queue_capacity=0), 'queue_capacity'),
      ('QueueFloat', dict(queue_capacity=2.5), 'queue_capacity'),
      ('EpisodesZero', dict(queue_capacity=1, episodes_capacity=0),
       'episodes_capacity'),
  )
  def test_rejects_bad_capacity(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      tables.make_tables(_SIGNATURE, **kwargs)


class ReplayTableTest(tf.test.TestCase):

  def test_uniform_reuse_fifo_eviction_and_inserts_never_block(self):
    server = reverb.Server(
        [tables.make_replay_table(_SIGNATURE, replay_size=3)], port=None)
    try:
      client = reverb.Client(f'localhost:{server.port}')
      with client.trajectory_writer(num_keep_alive_refs=1) as writer:
        for i in range(7):  # Nothing samples: inserts still go through.
          writer.append({'x': np.float32([i, i])})
          writer.create_item(tables.REPLAY_TABLE, 1.0,
                             {'x': writer.history['x'][-1]})
          writer.flush(block_until_num_items=0, timeout_ms=5000)
      info = client.server_info(timeout=5)[tables.REPLAY_TABLE]
      self.assertEqual((info.name, info.max_size, info.current_size),
                       (tables.REPLAY_TABLE, 3, 3))
      self.assertEqual(info.signature, _SIGNATURE)
      # The 3 newest items, each sampled many times (uniform, with reuse).
      values = [int(s.data['x'][0]) for s in client.sample(
          tables.REPLAY_TABLE, 300, emit_timesteps=False,
          unpack_as_table_signature=True)]
      self.assertEqual(set(values), {4, 5, 6})
      for v in (4, 5, 6):
        self.assertGreater(values.count(v), 60)  # ~100 each
      self.assertEqual(
          client.server_info(timeout=5)[tables.REPLAY_TABLE].current_size, 3)
    finally:
      server.stop()

  def test_rejects_bad_replay_size(self):
    with self.assertRaisesRegex(ValueError, 'replay_size'):
      tables.make_replay_table(_SIGNATURE, replay_size=0)


if __name__ == '__main__':
  tf.test.main()
