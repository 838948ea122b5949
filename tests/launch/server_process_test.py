"""launch/server_process.py with a real `launch.reverb_server` child.

The one-box run's Reverb server is its own process: it answers at start, is
restarted on the same port after a kill, says why when it cannot start, and
is gone after `stop`.
"""

import os
import signal
import socket
import time

import psutil
import pytest
import reverb

from launch import server_process
from replay import tables

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
SMOKE = ['--config=' + os.path.join(REPO, 'configs', 'smoke.py')]


def _server(tmp_path, config_args=SMOKE, **kwargs):
  return server_process.ServerProcess(
      config_args, server_process.free_port(),
      checkpoint_dir=str(tmp_path / 'reverb'),
      log_path=str(tmp_path / 'reverb_server.log'), **kwargs)


def _tables(address):
  return set(reverb.Client(address).server_info(timeout=5))


def _wait_until(condition, timeout=120.0):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if condition():
      return
    time.sleep(0.1)
  raise AssertionError('condition not reached')


def _answers(address):
  try:
    reverb.Client(address).server_info(timeout=1)
    return True
  except Exception:  # pylint: disable=broad-except
    return False


def test_free_port_can_be_bound_again():
  port = server_process.free_port()
  assert 0 < port < 65536
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:
    again.bind(('', port))  # released: the server child can take it
    again.listen()


def test_serves_the_run_tables_restarts_after_a_kill_and_stops(tmp_path,
                                                               monkeypatch):
  monkeypatch.chdir(REPO)  # `python -m launch.reverb_server`
  server = _server(tmp_path, quick_death_secs=0.0)
  server.start()
  try:
    assert {tables.QUEUE_TABLE, tables.VARIABLES_TABLE,
            tables.EPISODES_TABLE} <= _tables(server.address)
    first = psutil.Process(server.pid)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    _wait_until(lambda: server.restarts == 1 and server.pid != first.pid)
    # The watcher restarted it on the same port, whoever polls or not.
    _wait_until(lambda: _answers(server.address))
    assert tables.QUEUE_TABLE in _tables(server.address)
    server.poll()  # alive: nothing to raise
    assert server.restarts == 1
  finally:
    pid = server.pid
    server.stop()
  assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == 'zombie'


def test_a_server_that_dies_at_once_is_an_error_not_a_restart(tmp_path,
                                                             monkeypatch):
  monkeypatch.chdir(REPO)
  server = _server(tmp_path)  # 20 s: a kill right after start is fatal
  server.start()
  try:
    psutil.Process(server.pid).send_signal(signal.SIGKILL)
    psutil.Process(server.pid).wait(timeout=10)
    def raised():
      try:
        server.poll()
      except server_process.ServerStartError as e:
        assert 'exited with' in str(e)
        return True
      return False
    _wait_until(raised)
    assert server.restarts == 0
  finally:
    server.stop()


def test_a_server_that_cannot_start_says_why(tmp_path, monkeypatch):
  monkeypatch.chdir(REPO)
  server = _server(tmp_path, config_args=[
      '--config=' + os.path.join(REPO, 'configs', 'smoke.py'),
      '--config.replay.queue_capacity=-3'])
  with pytest.raises(server_process.ServerStartError) as raised:
    server.start()
  message = str(raised.value)
  assert 'exited with code' in message
  assert 'queue_capacity' in message  # the tail of its log: the cause
