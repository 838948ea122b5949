"""Split roles ride out a Reverb server restart (issue 11 item 2).

A real `launch.reverb_server` is killed (SIGKILL) under a training learner and
two actors, and started again on the same port 10 s later: the learner and
the actors reconnect, training goes on to total_frames, and the actors stop
by themselves once the learner has finished. Against an address where no
server ever answers, each role says so within seconds and gives up after
`config.replay.reconnect_secs`.
"""

import re
import signal
import time

import portpicker
import pytest

from tests.launch.roles_e2e_test import Proc, frames

pytestmark = pytest.mark.e2e

CONFIG = ['--config=configs/smoke.py', '--config.logging.progress_every_secs=2',
          '--config.logging.stall_warning_secs=5',
          '--config.replay.reconnect_secs=120']


@pytest.mark.fault
def test_roles_survive_a_10s_server_restart_and_actors_stop_at_the_end(
    tmp_path):
  port = portpicker.pick_unused_port()
  address = f'localhost:{port}'
  total = 9_000
  server = Proc('launch.reverb_server', f'--port={port}', *CONFIG)
  procs = [server]
  try:
    server.wait_for('listening on port', 60)
    learner = Proc('launch.learner', f'--reverb_address={address}',
                   f'--logdir={tmp_path}', *CONFIG,
                   f'--config.total_frames={total}')
    actors = [Proc('launch.actor', f'--reverb_address={address}',
                   f'--actor_id={i}', *CONFIG) for i in range(2)]
    procs += [learner] + actors
    deadline = time.time() + 180
    while frames(learner) < 2000 and time.time() < deadline:
      time.sleep(0.5)
    assert frames(learner) >= 2000, learner.output()[-4000:]

    server.stop(signal.SIGKILL)
    at_kill = frames(learner)
    time.sleep(10)
    assert learner.proc.poll() is None, learner.output()[-4000:]
    for actor in actors:
      assert actor.proc.poll() is None, actor.output()[-4000:]
    server = Proc('launch.reverb_server', f'--port={port}', *CONFIG)
    procs.append(server)

    assert learner.proc.wait(timeout=240) == 0, learner.output()[-4000:]
    assert frames(learner) >= total > at_kill + 1000
    output = learner.output()
    assert 'Lost the Reverb server' in output, output[-4000:]
    assert 'Reconnected to the Reverb server' in output, output[-4000:]
    assert 'Traceback' not in output, output[-4000:]
    # An actor either waits inside gRPC while the server is away or loses
    # its connection and reconnects; either way it stops by itself at the end.
    for actor in actors:
      assert actor.proc.wait(timeout=60) == 0, actor.output()[-4000:]
      assert 'Traceback' not in actor.output(), actor.output()[-4000:]
      assert re.search('learner has finished', actor.output()), (
          actor.output()[-3000:])
  finally:
    for p in procs:
      p.stop(signal.SIGKILL)


@pytest.mark.light
@pytest.mark.parametrize('role', ['launch.actor', 'launch.learner'])
def test_unreachable_server_is_reported_at_once_then_given_up(role, tmp_path):
  address = f'localhost:{portpicker.pick_unused_port()}'  # nothing listens
  args = ['--actor_id=0'] if role == 'launch.actor' else [
      f'--logdir={tmp_path}']
  start = time.time()
  proc = Proc(role, f'--reverb_address={address}', *args,
              '--config=configs/smoke.py', '--config.replay.reconnect_secs=5')
  proc.wait_for(f'Reverb server at {address} unreachable', 40)
  seen_after = time.time() - start
  code = proc.proc.wait(timeout=120)
  output = proc.output()
  assert code != 0
  last = output.strip().splitlines()[-1]
  assert last.startswith(f'error: the Reverb server at {address} has been '
                         'unreachable for 5 s'), output[-3000:]
  assert 'Traceback' not in output, output[-3000:]
  assert seen_after < 30, seen_after  # said within seconds of the start
