"""Tests for replay/episodes.py against a real in-process Reverb server."""

import time

import reverb
import tensorflow as tf

from replay import episodes
from replay import tables

_CAPACITY = 5


class EpisodesTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.server = reverb.Server(
        tables.make_tables({'x': tf.TensorSpec([], tf.float32)},
                           queue_capacity=1, episodes_capacity=_CAPACITY),
        port=None)
    cls.client = reverb.Client(f'localhost:{cls.server.port}')

  def tearDown(self):
    self.client.reset(tables.EPISODES_TABLE)
    super().tearDown()

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def test_report_drain_round_trip(self):
    reporter = episodes.EpisodeReporter(self.client)
    reporter.report(actor_id=3, task_id=1, episode_return=21.5,
                    episode_length=100, episode_frames=400)
    reporter.report(actor_id=4, task_id=0, episode_return=-3.0,
                    episode_length=7, episode_frames=28)
    self.assertEqual(
        episodes.drain_episodes(self.client),
        [dict(actor_id=3, task_id=1, episode_return=21.5, episode_length=100,
              episode_frames=400),
         dict(actor_id=4, task_id=0, episode_return=-3.0, episode_length=7,
              episode_frames=28)])
    self.assertEqual(episodes.drain_episodes(self.client), [])  # Drained.
    reporter.report(actor_id=5, task_id=2, episode_return=1.0,
                    episode_length=2**40, episode_frames=2**42)  # int64.
    drained = episodes.drain_episodes(self.client)
    self.assertLen(drained, 1)
    self.assertEqual(drained[0]['episode_frames'], 2**42)
    self.assertIsInstance(drained[0]['episode_return'], float)
    reporter.close()

  def test_drain_empty_returns_immediately(self):
    start = time.monotonic()
    self.assertEqual(episodes.drain_episodes(self.client), [])
    self.assertLess(time.monotonic() - start, 2.0)

  def test_reports_beyond_capacity_never_block(self):
    reporter = episodes.EpisodeReporter(self.client)
    num_reports = 4 * _CAPACITY
    start = time.monotonic()
    for i in range(num_reports):
      reporter.report(actor_id=i, task_id=0, episode_return=float(i),
                      episode_length=i, episode_frames=4 * i)
    self.assertLess(time.monotonic() - start, 5.0)
    drained = episodes.drain_episodes(self.client)
    # The oldest records were dropped; the newest _CAPACITY remain in order.
    self.assertEqual([r['actor_id'] for r in drained],
                     list(range(num_reports - _CAPACITY, num_reports)))
    reporter.close()

  def test_drops_are_counted_exactly(self):
    """Nothing is lost silently: evicted records are counted (issue 11)."""
    _, base = episodes.drain_episodes_counting_drops(self.client)
    reporter = episodes.EpisodeReporter(self.client)
    for i in range(3 * _CAPACITY):
      reporter.report(actor_id=0, task_id=0, episode_return=float(i),
                      episode_length=1, episode_frames=4)
    records, dropped = episodes.drain_episodes_counting_drops(self.client)
    self.assertLen(records, _CAPACITY)
    self.assertEqual(dropped - base, 2 * _CAPACITY)
    for i in range(_CAPACITY - 1):  # within capacity: no new drop
      reporter.report(actor_id=0, task_id=0, episode_return=float(i),
                      episode_length=1, episode_frames=4)
    records, dropped_again = episodes.drain_episodes_counting_drops(
        self.client)
    self.assertLen(records, _CAPACITY - 1)
    self.assertEqual(dropped_again, dropped)
    # Every report is accounted for: received + dropped = sent.
    self.assertEqual(_CAPACITY + (_CAPACITY - 1) + dropped_again - base,
                     4 * _CAPACITY - 1)
    reporter.close()

  def test_rejects_negative_lengths(self):
    reporter = episodes.EpisodeReporter(self.client)
    with self.assertRaisesRegex(ValueError, 'episode_length'):
      reporter.report(0, 0, 0.0, episode_length=-1, episode_frames=0)
    with self.assertRaisesRegex(ValueError, 'episode_frames'):
      reporter.report(0, 0, 0.0, episode_length=0, episode_frames=-4)
    reporter.close()


class InvalidReasonTest(tf.test.TestCase):

  def test_only_records_an_actor_can_send_pass(self):
    good = dict(actor_id=3, task_id=1, episode_return=-21.0,
                episode_length=800, episode_frames=3200)
    self.assertIsNone(episodes.invalid_reason(good, num_tasks=2))
    for field, value, reason in [
        ('task_id', 2, 'task_id 2 not in [0, 2)'),
        ('task_id', -1, 'task_id -1'),
        ('actor_id', -5, 'actor_id -5'),
        ('episode_return', float('nan'), 'not finite'),
        ('episode_return', float('inf'), 'not finite'),
        ('episode_length', -1, 'negative'),
        ('episode_frames', -4, 'negative')]:
      self.assertIn(reason, episodes.invalid_reason(
          dict(good, **{field: value}), num_tasks=2))


if __name__ == '__main__':
  tf.test.main()
