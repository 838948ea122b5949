"""End-to-end: the real launcher, Reverb server and actor processes on Catch.

Each test runs `python -m launch.train` as a subprocess with configs/smoke.py
(built-in Catch, shallow network) and asserts numbers: returns, counters,
process ids.
"""

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from launch import console

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A uniformly random Catch policy averages about -0.6 (it catches 1 ball in 5);
# the mean of 100 of its episodes stays below -0.3 with overwhelming odds.
RANDOM_POLICY_CEILING = -0.3
# Learned: at least half the balls caught over the last 100 episodes, 0.6
# above the random policy's mean, six of its standard errors. Alone the run
# reaches 0.98-1.00 at 100k frames; beside the suite's other worker it
# reached 0.10-0.28 three times (more policy lag), so 0.3 failed CI twice.
LEARNED_THRESHOLD = 0.0


class Run:
  """A launch.train subprocess whose output is collected by a thread."""

  def __init__(self, logdir, *overrides, config='configs/smoke.py'):
    cmd = [sys.executable, '-m', 'launch.train', f'--config={config}',
           f'--logdir={logdir}', '--config.logging.progress_every_secs=2'
           ] + list(overrides)
    self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    self.lines = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line)

  def output(self):
    return ''.join(self.lines)

  def wait(self, timeout):
    try:
      code = self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # a hung run must not outlive the test
      for p in psutil.Process(self.proc.pid).children(recursive=True):
        p.kill()
      self.proc.kill()
      raise
    self._reader.join(timeout=5)
    return code

  def wait_for(self, predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
      if predicate():
        return
      if self.proc.poll() is not None:
        break
      time.sleep(0.5)
    raise AssertionError(f'Timed out waiting for {what}; output:\n'
                         + self.output()[-4000:])

  def frames(self):
    found = re.findall(r'frames ([\d,]+)/', self.output())
    return int(found[-1].replace(',', '')) if found else 0


def noise_lines(output):
  """Console lines that are neither ours nor a real problem (issue 11.11)."""
  return [line for line in output.splitlines()
          if console.is_known_harmless(line) or line.startswith('[reverb/cc')
          or 'remapper failed' in line or 'Gym has been unmaintained' in line]


def read_episodes(logdir):
  with open(os.path.join(logdir, 'episodes.csv'), newline='') as f:
    return list(csv.DictReader(f))


@pytest.mark.e2e
@pytest.mark.light
def test_bad_config_values_are_rejected_before_anything_starts(tmp_path):
  cases = [
      ('configs/smoke.py', '--config.batch_size=0',
       'config.batch_size must be a positive integer; got 0'),
      ('configs/smoke.py', '--config.unroll_length=0',
       'config.unroll_length must be a positive integer; got 0'),
      ('configs/atari.py', '--config.env.game=pongg', 'did you mean: pong'),
      ('configs/smoke.py', '--config.network.torso=big',
       "config.network.torso must be one of ('deep', 'shallow', 'mlp'); got 'big'"),
  ]
  runs = [(Run(str(tmp_path / f'never_created_{i}'), override, config=config),
           tmp_path / f'never_created_{i}', message)
          for i, (config, override, message) in enumerate(cases)]  # at once
  for run, logdir, message in runs:
    code = run.wait(timeout=120)
    assert code != 0, run.output()
    assert message in run.output(), run.output()[-3000:]
    assert not logdir.exists()


@pytest.mark.e2e
@pytest.mark.fault
def test_learns_catch_and_resumes_from_checkpoint(tmp_path):
  logdir = str(tmp_path / 'catch')
  # One schedule for both runs: the first is stopped with Ctrl-C past 30k
  # frames and the second resumes it to 100k (an earlier version ran the first
  # with total_frames=30000, so its learning rate decayed to 0 by 30k: 0.28
  # over the last 100 episodes once in CI, 0.62 alone). Uninterrupted, this
  # config reaches 0.98 at 100k frames (seed 0, 2026-12-04).
  first = Run(logdir, '--config.total_frames=100000')
  first.wait_for(lambda: first.frames() >= 30000, 240, '30k frames')
  first.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the parent
  assert first.wait(timeout=120) == 0, first.output()[-4000:]
  first_episodes = read_episodes(logdir)
  assert first_episodes
  assert os.path.exists(os.path.join(logdir, 'policy', 'saved_model.pb'))
  assert os.path.exists(os.path.join(logdir, 'learning_curve.png'))
  early = np.mean([float(r['episode_return']) for r in first_episodes[:100]])

  second = Run(logdir, '--config.total_frames=100000')
  assert second.wait(timeout=300) == 0, second.output()[-4000:]
  assert not noise_lines(first.output() + second.output())
  resumed = re.search(r'Resuming at ([\d]+) frames', second.output())
  assert resumed, second.output()[-4000:]
  assert int(resumed.group(1)) >= 30000
  assert 'Reached total_frames=100000' in second.output()

  episodes = read_episodes(logdir)
  frames = [int(r['learner_frames']) for r in episodes]
  assert frames == sorted(frames)  # counters continue across the restart
  assert frames[-1] >= 100000
  late = np.mean([float(r['episode_return']) for r in episodes[-100:]])
  print(f'Catch mean return: first 100 episodes {early:.2f}, last 100 {late:.2f}')
  assert early < RANDOM_POLICY_CEILING + 0.5  # starts near random
  assert late > LEARNED_THRESHOLD


@pytest.mark.e2e
def test_killed_actor_restarts_and_ctrl_c_leaves_no_process(tmp_path):
  logdir = str(tmp_path / 'kill')
  run = Run(logdir, '--config.total_frames=100000000')
  parent = psutil.Process(run.proc.pid)
  try:
    run.wait_for(lambda: run.frames() > 0, 120, 'training to start')
    # launch.train runs fenced in a child process (launch/isolation.py).
    actors = [p for p in parent.children(recursive=True)
              if 'launch.actor' in ' '.join(p.cmdline())]
    assert len(actors) == 2
    victim = actors[0]
    victim.kill()
    run.wait_for(lambda: 'restarting it' in run.output(), 60, 'a restart')
    frames_at_restart = run.frames()
    run.wait_for(lambda: run.frames() > frames_at_restart + 5000, 120,
                 'training to continue after the restart')
    children = [p for p in parent.children(recursive=True)]
    actor_pids = {p.pid for p in children if 'launch.actor' in ' '.join(p.cmdline())}
    assert len(actor_pids) == 2 and victim.pid not in actor_pids
  finally:
    all_children = parent.children(recursive=True)
    run.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the parent
  assert run.wait(timeout=120) == 0, run.output()[-4000:]
  gone, alive = psutil.wait_procs(all_children, timeout=10)
  assert not alive, f'orphans left behind: {alive}'
  assert len(gone) >= 2
  assert 'Saved checkpoint' in run.output()
  assert os.path.exists(os.path.join(logdir, 'policy', 'saved_model.pb'))


@pytest.mark.e2e
def test_a_killed_reverb_server_process_is_restarted_and_training_goes_on(
    tmp_path):
  """The one-box server is a child process (launch/server_process.py)."""
  logdir = str(tmp_path / 'server_kill')
  run = Run(logdir, '--config.total_frames=100000000')
  parent = psutil.Process(run.proc.pid)
  try:
    run.wait_for(lambda: run.frames() > 0, 120, 'training to start')
    servers = [p for p in parent.children(recursive=True)
               if 'launch.reverb_server' in ' '.join(p.cmdline())]
    assert len(servers) == 1
    # A death within 20 s of its start would end the run: wait past that.
    time.sleep(max(0.0, servers[0].create_time() + 21 - time.time()))
    servers[0].kill()
    run.wait_for(lambda: 'restarting it on port' in run.output(), 60,
                 'the server restart')
    frames_at_restart = run.frames()
    run.wait_for(lambda: run.frames() > frames_at_restart + 5000, 180,
                 'training to continue after the server restart')
  finally:
    all_children = parent.children(recursive=True)
    run.proc.send_signal(signal.SIGINT)
  assert run.wait(timeout=120) == 0, run.output()[-4000:]
  _, alive = psutil.wait_procs(all_children, timeout=10)
  assert not alive, f'orphans left behind: {alive}'
  assert 'Saved checkpoint' in run.output()
