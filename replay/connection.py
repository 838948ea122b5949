"""Riding out a Reverb server that goes away: detection, waiting, giving up.

What Reverb 0.14 does when its server dies and comes back on the same
address (measured with a real server killed and restarted): gRPC keeps the
channel and reconnects by itself, so calls without a deadline (the
`variables` push and pull, `TrajectoryWriter` flushes, the dataset's
samplers) block while the server is down and go on once it is back; calls
with a deadline (`Client.server_info(timeout=…)`) fail meanwhile with
`reverb.errors.DeadlineExceededError`, and a call in flight at the moment the
connection drops may fail with `RuntimeError: Connection reset by peer` or
`UNAVAILABLE`. What the restarted server does not have is anything the old one
held: queued unrolls, the published weights, pending episode records (unless
it restored a Reverb checkpoint, HER runs). So the roles (launch/) use this
module to tell a connection fault from a bug (`is_connection_error`), to wait
for the server with a clear log and a deadline (`ServerWatch`), and then
re-publish or re-open what they need.
"""

import time
from typing import Callable, Optional

from absl import logging
import reverb
import tensorflow as tf

# Substrings of the RuntimeError / tf.errors texts gRPC transport faults give.
_TRANSPORT_FAULTS = ('connection reset', 'connection refused', 'socket closed',
                     'failed to connect', 'unavailable', 'deadline exceeded',
                     'broken pipe', 'connection aborted', 'end of file',
                     'transport closing', 'connect failed',
                     # a stream broken mid-insert (TFClient.insert):
                     'error when confirming that all items written')


class ServerUnreachableError(RuntimeError):
  """The Reverb server did not answer within config.replay.reconnect_secs."""


def is_connection_error(error: BaseException) -> bool:
  """True if `error` means the Reverb server is unreachable (not a bug)."""
  if isinstance(error, (reverb.errors.DeadlineExceededError,
                        tf.errors.UnavailableError,
                        tf.errors.DeadlineExceededError, ConnectionError)):
    return True
  return (isinstance(error, (RuntimeError, tf.errors.OpError))
          and any(f in str(error).lower() for f in _TRANSPORT_FAULTS))


def _reason(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f'{type(error).__name__}: {text[0]}' if text else type(error).__name__


class ServerWatch:
  """Tracks whether the Reverb server answers; logs outages; gives up.

  `failed(e)` / `ok()` record each Reverb call's outcome; the first failure
  logs a warning, the first success after failures logs how long the server
  was away, and a failure `deadline_secs` after the first one of an outage
  raises `ServerUnreachableError`. `wait_until_up()` blocks until the server
  answers `server_info` (polled every `poll_secs`, seconds).

  Not thread-safe: one per thread.
  """

  def __init__(self, address: str, deadline_secs: float, *,
               poll_secs: float = 2.0, clock: Callable[[], float] = time.time):
    """Args: address 'host:port'; deadline_secs (> 0, seconds)."""
    if not deadline_secs > 0:
      raise ValueError(f'deadline_secs must be > 0 seconds, got {deadline_secs}')
    self.address, self._deadline = address, deadline_secs
    self._poll, self._clock = poll_secs, clock
    self._down_since: Optional[float] = None
    self._last_report = 0.0
    self._ever_up = False
    self.outages = 0

  @property
  def down(self) -> bool:
    return self._down_since is not None

  def failed(self, error: BaseException) -> None:
    """Records a failed call.

    Raises:
      ServerUnreachableError: if the server has been unreachable for
        `deadline_secs` (the message names the address and the last error).
      error: itself, re-raised, if it is not a connection error.
    """
    if not is_connection_error(error):
      raise error
    now = self._clock()
    if self._down_since is None:
      self._down_since = self._last_report = now
      self.outages += 1
      logging.warning(
          '%s (%s); retrying for up to %.0f s (config.replay.reconnect_secs).',
          f'Lost the Reverb server at {self.address}' if self._ever_up else
          f'Reverb server at {self.address} unreachable', _reason(error),
          self._deadline)
    elif now - self._down_since >= self._deadline:
      raise ServerUnreachableError(
          f'the Reverb server at {self.address} has been unreachable for '
          f'{self._deadline:.0f} s (config.replay.reconnect_secs; last error: '
          f'{_reason(error)}); giving up.') from None
    elif now - self._last_report >= 30:
      self._last_report = now
      logging.warning('Reverb server at %s still unreachable after %.0f s.',
                      self.address, now - self._down_since)

  def ok(self) -> None:
    """Records a successful call (logs a reconnection after an outage)."""
    if self._down_since is not None:
      logging.info('%s the Reverb server at %s after %.0f s.',
                   'Reconnected to' if self._ever_up else 'Connected to',
                   self.address, self._clock() - self._down_since)
      self._down_since = None
    self._ever_up = True

  def wait_until_up(self, client: reverb.Client,
                    should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Blocks until `client`'s server answers; False if `should_stop()`.

    Raises:
      ServerUnreachableError: after `deadline_secs` without an answer.
    """
    while not should_stop():
      try:
        client.server_info(timeout=max(1, int(self._poll)))
      except Exception as e:  # pylint: disable=broad-except
        self.failed(e)
        time.sleep(self._poll)
      else:
        self.ok()
        return True
    return False
