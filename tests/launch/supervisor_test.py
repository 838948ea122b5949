"""launch/supervisor.py with real child processes (issue 11 item 6).

Actors killed from outside are restarted however often; an actor that fails
on its own before producing data three times in a row ends the run.
"""

import os
import signal
import sys
import time

import pytest

from launch import supervisor as supervisor_lib

_ACTS = ('import time; print("Actor 0: got weights of learner step 0; '
         'acting in 16 environments.", flush=True); time.sleep(600)')
_FAILS = 'import sys; print("bad config", flush=True); sys.exit(1)'
_ACTS_THEN_FAILS = ('import sys; print("acting in 1 environments", '
                    'flush=True); sys.exit(1)')


def _supervisor(tmp_path, script):
  return supervisor_lib.ActorSupervisor(
      lambda i: [sys.executable, '-c', script], 1, str(tmp_path / 'actors'),
      backoff_secs=0.05)


def _poll_until(sup, condition, timeout=30.0):
  deadline = time.time() + timeout
  while time.time() < deadline:
    sup.poll()
    if condition():
      return
    time.sleep(0.02)
  raise AssertionError('condition not reached')


@pytest.mark.fault
def test_five_external_kills_in_quick_succession_are_restarted(tmp_path):
  sup = _supervisor(tmp_path, _ACTS)
  sup.start()
  try:
    for kill in range(5):
      _poll_until(sup, lambda: sup.alive() == 1)
      pid = sup.pids()[0]
      os.kill(pid, signal.SIGKILL)
      _poll_until(sup, lambda: sup.pids() and sup.pids()[0] != pid)
    assert sup.restarts == 5
  finally:
    sup.stop()


def test_failing_before_data_three_times_ends_the_run(tmp_path):
  sup = _supervisor(tmp_path, _FAILS)
  sup.start()
  with pytest.raises(supervisor_lib.CrashLoopError,
                     match='failed 3 times in a row before producing any data'
                     '(.|\n)*bad config'):
    _poll_until(sup, lambda: False)
  assert sup.restarts == 2


def test_failures_after_producing_data_back_off_but_continue(tmp_path):
  sup = _supervisor(tmp_path, _ACTS_THEN_FAILS)
  sup.start()
  try:
    _poll_until(sup, lambda: sup.restarts >= 5)  # no CrashLoopError
  finally:
    sup.stop()
  # Quick deaths back off exponentially: 0.05, 0.1, 0.2, 0.4 s ...
  assert sup._quick_deaths[0] >= 5  # pylint: disable=protected-access


_PRINTS_ARENAS = ('import os, time; print("arenas", os.environ.get('
                  '"MALLOC_ARENA_MAX"), flush=True); time.sleep(600)')


@pytest.mark.parametrize('operator_value, expected', [(None, '2'), ('4', '4')])
def test_actors_get_the_allocator_settings_unless_the_operator_set_them(
    tmp_path, monkeypatch, operator_value, expected):
  if operator_value is None:
    monkeypatch.delenv('MALLOC_ARENA_MAX', raising=False)
  else:
    monkeypatch.setenv('MALLOC_ARENA_MAX', operator_value)
  sup = _supervisor(tmp_path, _PRINTS_ARENAS)
  sup.start()
  log = tmp_path / 'actors' / 'actor_0.log'
  try:
    _poll_until(sup, lambda: log.exists() and b'arenas' in log.read_bytes())
  finally:
    sup.stop()
  assert f'arenas {expected}' in log.read_text()
