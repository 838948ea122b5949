"""Tests for replay/writer.py against a real in-process Reverb server."""

import threading
import time

from absl.testing import parameterized
import numpy as np
import reverb
import tensorflow as tf
import tree

from agent import types
from replay import tables
from replay import writer as writer_lib

_OBS_SPEC = tf.TensorSpec([8, 8, 2], tf.uint8)
_NUM_ACTIONS = 3
_LSTM_SIZE = 4
_STEP_SPEC = writer_lib.step_spec(_OBS_SPEC, _NUM_ACTIONS, _LSTM_SIZE)
_UNROLL_LENGTHS = (1, 3, 4)
_SMALL_QUEUE = 'small_queue'  # T=1, capacity 2.
_SMALL_CAPACITY = 2
_GOAL_QUEUE = 'goal_queue'  # T=2, nested (goal-conditioned) observation.
_GOAL_STEP_SPEC = writer_lib.step_spec(
    {'image': _OBS_SPEC, 'desired_goal': tf.TensorSpec([2], tf.float32)},
    _NUM_ACTIONS, _LSTM_SIZE)


def _table(unroll_length):
  return f'queue_t{unroll_length}'


def make_step(i, first=False, discount=1.0):
  """Step i of a stream; i is encoded in every field, so items are checkable."""
  return {
      'observation': np.full([8, 8, 2], i % 256, np.uint8),
      'first': first,
      'reward': float(i),  # Python float: cast to float32 by the writer.
      'discount': discount,
      'prev_action': np.int32(i),
      'action': np.int32(i + 1),
      'behaviour_logits': np.full([_NUM_ACTIONS], i, np.float32),
      'task_id': np.int32(i % 2),
      'core_state': (np.full([_LSTM_SIZE], i, np.float32),
                     np.full([_LSTM_SIZE], -i, np.float32)),
  }


def make_stream(num_steps, boundaries=()):
  """Steps 0..num_steps-1; a new episode's first step at each boundary."""
  return [
      make_step(i, first=(i == 0 or i in boundaries),
                discount=0.0 if i in boundaries else 1.0)
      for i in range(num_steps)
  ]


def expected_item(stream, step_indices):
  """The item covering `step_indices` as the queue signature describes it."""
  steps = [stream[i] for i in step_indices]
  stack = lambda *values: np.stack([np.asarray(v) for v in values])
  item = {
      field: tree.map_structure(stack, *[s[field] for s in steps])
      for field in types.STEP_FIELDS if field != 'core_state'
  }
  item['core_state'] = stream[step_indices[0]]['core_state']
  return item


# Named table-driven cases (Acme adders/reverb/test_cases.py style): the items
# a stream must produce, as lists of the stream's step indices.
TEST_CASES = [
    dict(testcase_name='OneUnroll', unroll_length=3, num_steps=4,
         boundaries=(), expected_steps=[[0, 1, 2, 3]]),
    dict(testcase_name='TooShortForAnItem', unroll_length=3, num_steps=3,
         boundaries=(), expected_steps=[]),
    dict(testcase_name='ConsecutiveUnrollsShareOneStep', unroll_length=3,
         num_steps=10, boundaries=(),
         expected_steps=[[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]),
    dict(testcase_name='IncompleteTailNotWritten', unroll_length=3,
         num_steps=9, boundaries=(),
         expected_steps=[[0, 1, 2, 3], [3, 4, 5, 6]]),
    dict(testcase_name='UnrollLengthOne', unroll_length=1, num_steps=4,
         boundaries=(), expected_steps=[[0, 1], [1, 2], [2, 3]]),
    dict(testcase_name='EpisodeBoundaryInsideUnroll', unroll_length=4,
         num_steps=9, boundaries=(2,),
         expected_steps=[[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]]),
    dict(testcase_name='EpisodeBoundaryOnSharedStep', unroll_length=3,
         num_steps=7, boundaries=(3,),
         expected_steps=[[0, 1, 2, 3], [3, 4, 5, 6]]),
    dict(testcase_name='EpisodesShorterThanAnUnroll', unroll_length=4,
         num_steps=9, boundaries=(1, 3, 4, 7),
         expected_steps=[[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]]),
]


class UnrollWriterTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    server_tables = []
    for t in _UNROLL_LENGTHS:
      signature = writer_lib.UnrollWriter.signature(_STEP_SPEC, t)
      queue = tables.make_tables(signature, queue_capacity=100)[0]
      server_tables.append(queue.replace(name=_table(t)))
    small = tables.make_tables(
        writer_lib.UnrollWriter.signature(_STEP_SPEC, 1),
        queue_capacity=_SMALL_CAPACITY)[0]
    server_tables.append(small.replace(name=_SMALL_QUEUE))
    goal = tables.make_tables(
        writer_lib.UnrollWriter.signature(_GOAL_STEP_SPEC, 2),
        queue_capacity=10)[0]
    server_tables.append(goal.replace(name=_GOAL_QUEUE))
    cls.table_names = [table.name for table in server_tables]
    cls.server = reverb.Server(server_tables, port=None)
    cls.client = reverb.Client(f'localhost:{cls.server.port}')

  def tearDown(self):
    for name in self.table_names:
      self.client.reset(name)
    super().tearDown()

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def num_items(self, table):
    return self.client.server_info(timeout=5)[table].current_size

  def items(self, table):
    """Samples (and so removes) every item of `table`, in FIFO order."""
    num_items = self.num_items(table)
    if not num_items:
      return []
    return [
        sample.data for sample in self.client.sample(
            table, num_items, emit_timesteps=False,
            unpack_as_table_signature=True)
    ]

  def test_step_spec_fields(self):
    self.assertEqual(tuple(_STEP_SPEC), types.STEP_FIELDS)
    self.assertEqual(_STEP_SPEC['observation'], _OBS_SPEC)
    self.assertEqual(_STEP_SPEC['behaviour_logits'].shape, [_NUM_ACTIONS])
    self.assertEqual(_STEP_SPEC['core_state'][1].shape, [_LSTM_SIZE])

  def test_signature_time_dims(self):
    signature = writer_lib.UnrollWriter.signature(_STEP_SPEC, 5)
    self.assertEqual(signature['observation'].shape, [6, 8, 8, 2])
    self.assertEqual(signature['first'].shape, [6])
    self.assertEqual(signature['behaviour_logits'].shape, [6, _NUM_ACTIONS])
    for spec in signature['core_state']:  # Once per item, no time dim.
      self.assertEqual(spec.shape, [_LSTM_SIZE])
      self.assertEqual(spec.dtype, tf.float32)

  @parameterized.named_parameters(*TEST_CASES)
  def test_items(self, unroll_length, num_steps, boundaries, expected_steps):
    table = _table(unroll_length)
    stream = make_stream(num_steps, boundaries)
    with writer_lib.UnrollWriter(
        self.client, unroll_length=unroll_length, table=table) as writer:
      for step in stream:
        # Every written step is compatible with the one step spec.
        tree.map_structure(
            lambda spec, value: self.assertTrue(
                spec.is_compatible_with(tf.convert_to_tensor(value))),
            _STEP_SPEC, step)
        writer.append(step)
    self.assertEqual(writer.num_items, len(expected_steps))

    observed = self.items(table)
    self.assertLen(observed, len(expected_steps))
    signature = writer_lib.UnrollWriter.signature(_STEP_SPEC, unroll_length)
    for indices, item in zip(expected_steps, observed):
      tree.map_structure(self.assertAllEqual, expected_item(stream, indices),
                         item)
      tree.map_structure(
          lambda spec, value: self.assertTrue(
              spec.is_compatible_with(tf.convert_to_tensor(value))),
          signature, item)
      # Episode starts: first=True with the terminal discount of the episode
      # that ended, at the step where the new episode's observation is stored.
      for t, i in enumerate(indices):
        self.assertEqual(item['first'][t], i == 0 or i in boundaries)
        self.assertEqual(item['discount'][t], 0.0 if i in boundaries else 1.0)
    # Consecutive items share exactly one step.
    for previous, current in zip(observed, observed[1:]):
      self.assertEqual(previous['prev_action'][-1], current['prev_action'][0])
      self.assertEqual(previous['prev_action'][0] + unroll_length,
                       current['prev_action'][0])

  def test_full_queue_blocks_writer_and_drops_nothing(self):
    num_items = 6  # > _SMALL_CAPACITY + in-flight items.
    stream = make_stream(num_items + 1)
    writer = writer_lib.UnrollWriter(
        self.client, unroll_length=1, table=_SMALL_QUEUE,
        max_in_flight_items=1)
    done = threading.Event()
    num_appended = []

    def write():
      for step in stream:
        writer.append(step)
        num_appended.append(1)
      writer.close()
      done.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    self.assertFalse(done.wait(timeout=1.0), 'writer did not block')
    self.assertLess(len(num_appended), len(stream))  # Blocked in append.
    self.assertEqual(self.num_items(_SMALL_QUEUE), _SMALL_CAPACITY)

    observed = []
    deadline = time.monotonic() + 20
    while len(observed) < num_items and time.monotonic() < deadline:
      observed.extend(self.items(_SMALL_QUEUE))
      time.sleep(0.01)
    self.assertTrue(done.wait(timeout=10), 'writer did not finish')
    thread.join()
    # FIFO, each item exactly once, none dropped.
    self.assertEqual([item['prev_action'].tolist() for item in observed],
                     [[i, i + 1] for i in range(num_items)])
    self.assertEqual(self.num_items(_SMALL_QUEUE), 0)

  def test_nested_observation(self):
    stream = []
    for i in range(5):
      step = make_step(i)
      step['observation'] = {'image': step['observation'],
                             'desired_goal': np.full([2], -i, np.float32)}
      stream.append(step)
    with writer_lib.UnrollWriter(
        self.client, unroll_length=2, table=_GOAL_QUEUE) as writer:
      for step in stream:
        writer.append(step)
    observed = self.items(_GOAL_QUEUE)
    self.assertLen(observed, 2)
    for indices, item in zip([[0, 1, 2], [2, 3, 4]], observed):
      tree.map_structure(self.assertAllEqual, expected_item(stream, indices),
                         item)
    self.assertEqual(observed[1]['observation']['desired_goal'].shape, (3, 2))

  @parameterized.named_parameters(
      ('MissingField', 'core_state', None, 'core_state'),
      ('ObservationDtype', 'observation', np.zeros([8, 8, 2], np.float32),
       'observation'),
      ('LogitsShape', 'behaviour_logits', np.zeros([4], np.float32),
       'behaviour_logits'),
      ('CoreStateShape', 'core_state',
       (np.zeros([4], np.float32), np.zeros([5], np.float32)), 'core_state/1'),
  )
  def test_append_rejects_bad_step(self, field, value, message):
    writer = writer_lib.UnrollWriter(
        self.client, unroll_length=3, table=_table(3))
    step = make_step(0)
    if value is None:
      del step[field]
    else:
      step[field] = value
    with self.assertRaisesRegex(ValueError, message):
      writer.append(step)
    writer.close()

  def test_constructor_validates(self):
    with self.assertRaisesRegex(ValueError, 'unroll_length'):
      writer_lib.UnrollWriter(self.client, unroll_length=0, table=_table(3))
    with self.assertRaisesRegex(ValueError, 'unroll_length'):
      writer_lib.UnrollWriter(self.client, unroll_length=4, table=_table(3))
    with self.assertRaisesRegex(ValueError, 'max_in_flight_items'):
      writer_lib.UnrollWriter(self.client, unroll_length=3, table=_table(3),
                              max_in_flight_items=-1)
    with self.assertRaisesRegex(ValueError, 'table'):
      writer_lib.UnrollWriter(self.client, unroll_length=3, table='nope')


if __name__ == '__main__':
  tf.test.main()
