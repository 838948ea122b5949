"""The one-box run's Reverb port is unreachable from another host (issue 11 item 1).

The "other host" is a network namespace the test makes, joined to this one by
a veth pair on a documentation range (RFC 5737) this machine does not route
yet (this side .1, the other .2). A control first shows the path is real: a standalone
`launch.reverb_server` (which has to listen on all addresses, for a cluster)
IS reachable from there. Then a `launch.train` run, on its default
--network_isolation=auto, is not, while it trains to the end. Needs root and
iproute2 (`ip netns`); skipped with the reason otherwise.
"""

import os
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
pytestmark = pytest.mark.e2e

_RANGES = ('198.51.100', '203.0.113', '192.0.2')  # RFC 5737 TEST-NET-2, 3, 1


def _ip(*args, netns=None):
  prefix = ['ip', 'netns', 'exec', netns] if netns else []
  return subprocess.run(prefix + ['ip'] + list(args), capture_output=True,
                        text=True, check=False)


@pytest.fixture
def other_host():
  """(network namespace, address of this host as seen from there)."""
  if os.geteuid() != 0:
    pytest.skip('making a network namespace with a veth pair needs root')
  routes = _ip('-4', 'route').stdout + _ip('-4', 'addr').stdout
  free = [r for r in _RANGES if r + '.' not in routes]
  if not free:
    pytest.skip(f'every RFC 5737 range is in use here: {routes}')
  prefix = free[0]
  name, suffix = f'tfimpala{os.getpid()}', str(os.getpid())[-6:]
  here, there = f'vh{suffix}', f'vt{suffix}'
  made = _ip('netns', 'add', name)
  if made.returncode:
    pytest.skip(f'cannot make a network namespace: {made.stderr.strip()}')
  try:
    for args, netns in [
        (('link', 'add', here, 'type', 'veth', 'peer', 'name', there), None),
        (('link', 'set', there, 'netns', name), None),
        (('addr', 'add', f'{prefix}.1/24', 'dev', here), None),
        (('link', 'set', here, 'up'), None),
        (('addr', 'add', f'{prefix}.2/24', 'dev', there), name),
        (('link', 'set', there, 'up'), name),
        (('link', 'set', 'lo', 'up'), name)]:
      result = _ip(*args, netns=netns)
      if result.returncode:
        pytest.skip(f'cannot set up the veth pair (ip {" ".join(args)}): '
                    f'{result.stderr.strip()}')
    yield name, f'{prefix}.1'
  finally:
    _ip('link', 'del', here)
    _ip('netns', 'del', name)


def _connects_from(other_host, port) -> bool:
  netns, address = other_host
  probe = subprocess.run(
      ['ip', 'netns', 'exec', netns, sys.executable, '-c',
       'import socket\n'
       f'socket.create_connection(("{address}", {port}), timeout=5)'],
      capture_output=True, text=True, check=False)
  return probe.returncode == 0


def _free_port():
  with socket.socket() as s:
    s.bind(('', 0))
    return s.getsockname()[1]


def _wait_for(path, text, proc, timeout=120.0):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.exists(path) and text in open(path).read():
      return
    assert proc.poll() is None, open(path).read()[-3000:]
    time.sleep(0.2)
  raise AssertionError(f'{text!r} not in {path}: {open(path).read()[-3000:]}')


@pytest.mark.fault
def test_train_port_unreachable_from_another_host(other_host, tmp_path):
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
  # Control: a server on all addresses is reachable from the other host.
  port = _free_port()
  log = tmp_path / 'server.log'
  with open(log, 'w') as out:
    server = subprocess.Popen(
        [sys.executable, '-m', 'launch.reverb_server',
         '--config=configs/smoke.py', f'--port={port}'],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
  try:
    _wait_for(log, 'listening on port', server)
    assert _connects_from(other_host, port)
    assert 'unauthenticated' in log.read_text()  # its start-up warning
  finally:
    server.kill()
    server.wait()

  port = _free_port()
  log = tmp_path / 'train.log'
  logdir = tmp_path / 'run'
  with open(log, 'w') as out:
    train = subprocess.Popen(
        [sys.executable, '-m', 'launch.train', '--config=configs/smoke.py',
         f'--logdir={logdir}', f'--reverb_port={port}',
         '--config.total_frames=4000'],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
  try:
    _wait_for(log, 'learner steps/s', train)  # server up, actors connected
    assert not _connects_from(other_host, port)
    assert train.wait(timeout=240) == 0, log.read_text()[-3000:]
  finally:
    if train.poll() is None:
      train.kill()
  output = log.read_text()
  assert "in this run's private network namespace" in output
  assert 'Done.' in output
  assert (logdir / 'policy' / 'saved_model.pb').exists()
