"""Tests for replay/connection.py: error classes, outage log, deadline."""

import reverb
import tensorflow as tf

from absl.testing import absltest
from replay import connection


class FakeClock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


class ConnectionTest(absltest.TestCase):

  def test_connection_errors_are_told_from_bugs(self):
    for error in [reverb.errors.DeadlineExceededError('ServerInfo timeout'),
                  RuntimeError('Connection reset by peer'),
                  RuntimeError('Socket closed'),
                  tf.errors.UnavailableError(None, None, 'failed to connect'),
                  ConnectionRefusedError()]:
      self.assertTrue(connection.is_connection_error(error), error)
    for error in [RuntimeError('shape mismatch'), ValueError('x'),
                  tf.errors.InvalidArgumentError(None, None, 'bad shape')]:
      self.assertFalse(connection.is_connection_error(error), error)

  def test_outage_is_logged_once_and_given_up_after_the_deadline(self):
    clock = FakeClock()
    watch = connection.ServerWatch('h:1', 60.0, clock=clock)
    watch.ok()
    lost = RuntimeError('Connection reset by peer')
    with self.assertLogs(logger='absl', level='WARNING') as logs:
      watch.failed(lost)
      clock.now += 10
      watch.failed(lost)  # within the deadline, within 30 s: not logged
    self.assertLen(logs.records, 1)
    self.assertIn('Lost the Reverb server at h:1', logs.output[0])
    self.assertTrue(watch.down)
    clock.now += 49
    watch.failed(lost)  # 59 s: still retrying
    clock.now += 1
    with self.assertRaisesRegex(connection.ServerUnreachableError,
                                'h:1 has been unreachable for 60 s'):
      watch.failed(lost)

  def test_recovery_resets_the_deadline(self):
    clock = FakeClock()
    watch = connection.ServerWatch('h:1', 60.0, clock=clock)
    lost = reverb.errors.DeadlineExceededError('timeout')
    watch.failed(lost)
    clock.now += 50
    with self.assertLogs(logger='absl', level='INFO') as logs:
      watch.ok()
    self.assertIn('Connected to the Reverb server at h:1 after 50 s',
                  logs.output[0])
    self.assertFalse(watch.down)
    clock.now += 50
    watch.failed(lost)  # a new outage: its own 60 s
    clock.now += 59
    watch.failed(lost)
    self.assertEqual(watch.outages, 2)

  def test_a_bug_is_reraised(self):
    watch = connection.ServerWatch('h:1', 60.0)
    with self.assertRaisesRegex(ValueError, 'not a connection fault'):
      watch.failed(ValueError('not a connection fault'))
    self.assertFalse(watch.down)

  def test_wait_until_up_gives_up_on_a_port_nobody_serves(self):
    import portpicker  # pylint: disable=g-import-not-at-top
    address = f'localhost:{portpicker.pick_unused_port()}'
    watch = connection.ServerWatch(address, 2.0, poll_secs=1.0)
    with self.assertRaises(connection.ServerUnreachableError):
      watch.wait_until_up(reverb.Client(address))


if __name__ == '__main__':
  absltest.main()
