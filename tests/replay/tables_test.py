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


if __name__ == '__main__':
  tf.test.main()
