"""The per-role launchers as separate processes (a cluster on one machine).

launch.reverb_server, launch.actor and launch.learner started on their own,
connected by --reverb_address, train Catch; when the server dies the learner's
watchdog reports the stalled input pipeline instead of hanging silently, and
the learner still saves its state on SIGINT.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import portpicker
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = ['--config=configs/smoke.py', '--config.logging.progress_every_secs=2',
          '--config.logging.stall_warning_secs=4']
# The learner publishes weights once at start only, so when the server dies it
# is waiting for data (the path the watchdog exists for), not publishing.
LEARNER_ARGS = ['--config.learner.publish_every_secs=100000']


class Proc:
  """A subprocess whose combined output is collected by a thread."""

  def __init__(self, *args):
    self.proc = subprocess.Popen([sys.executable, '-m'] + list(args), cwd=ROOT,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    self.lines = []
    threading.Thread(target=self._read, daemon=True).start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line)

  def output(self):
    return ''.join(self.lines)

  def wait_for(self, pattern, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
      if re.search(pattern, self.output()):
        return
      time.sleep(0.5)
    raise AssertionError(f'{pattern!r} not seen in {timeout} s:\n'
                         + self.output()[-4000:])

  def stop(self, sig=signal.SIGKILL):
    if self.proc.poll() is None:
      self.proc.send_signal(sig)
    return self.proc.wait(timeout=120)


def frames(proc):
  found = re.findall(r'frames ([\d,]+)/', proc.output())
  return int(found[-1].replace(',', '')) if found else 0


@pytest.mark.e2e
def test_separate_roles_train_and_watchdog_reports_dead_server(tmp_path):
  port = portpicker.pick_unused_port()
  address = f'localhost:{port}'
  server = Proc('launch.reverb_server', f'--port={port}', *CONFIG)
  learner = actor = None
  try:
    server.wait_for('listening on port', 60)
    learner = Proc('launch.learner', f'--reverb_address={address}',
                   f'--logdir={tmp_path}', *CONFIG, *LEARNER_ARGS)
    # No actor yet: the queue stays empty and the watchdog says so.
    learner.wait_for(r'Input pipeline stalled.*queue holds 0 of 32 unrolls', 90)
    actor = Proc('launch.actor', f'--reverb_address={address}', '--actor_id=0',
                 *CONFIG)
    deadline = time.time() + 120
    while frames(learner) < 3000 and time.time() < deadline:
      time.sleep(1)
    assert frames(learner) >= 3000, learner.output()[-4000:]

    server.stop(signal.SIGKILL)  # the server dies under the learner
    actor.stop(signal.SIGKILL)
    stalls = len(re.findall('Input pipeline stalled', learner.output()))
    learner.wait_for(r'Input pipeline stalled.*could not query the pipeline',
                     60)
    assert len(re.findall('Input pipeline stalled', learner.output())) > stalls
    code = learner.stop(signal.SIGINT)
    # The learner thread is stuck in a Reverb read: the main thread saves the
    # checkpoint and the policy, then exits with 1.
    assert code == 1, learner.output()[-4000:]
    assert 'Saved checkpoint' in learner.output()
    assert os.path.exists(os.path.join(tmp_path, 'policy', 'saved_model.pb'))
  finally:
    for p in (actor, learner, server):
      if p is not None:
        p.stop(signal.SIGKILL)


@pytest.mark.e2e
@pytest.mark.light
def test_reverb_server_with_her_replay_requires_a_checkpoint_dir():
  proc = subprocess.run(
      [sys.executable, '-m', 'launch.reverb_server',
       '--config=configs/her_bitflip.py:8', f'--port={portpicker.pick_unused_port()}'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert '--checkpoint_dir is required with HER replay' in proc.stderr, (
      proc.stderr[-2000:])
