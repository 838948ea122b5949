"""Supervision of actor subprocesses for one-box runs (launch/train.py).

Each actor is the same `python -m launch.actor` entry point a cluster would
run. Children get their own session (a terminal's Ctrl-C reaches only the
parent, which shuts them down in order) and PR_SET_PDEATHSIG, so they die with
the parent even if it is SIGKILLed: no orphan processes. A child that exits is
logged with its exit code and the tail of its log, and restarted; one that
keeps dying right after start (a crash loop, e.g. a broken config) stops the
run with that log instead of restarting forever.
"""

import ctypes
import os
import signal
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import logging

_PR_SET_PDEATHSIG = 1
_QUICK_DEATH_SECS = 20.0  # a child dying this soon after start counts as a crash
_MAX_QUICK_DEATHS = 3  # consecutive quick deaths of one actor before giving up


try:  # resolved at import: the forked child must not dlopen (parent is threaded)
  _PRCTL = ctypes.CDLL('libc.so.6', use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: rely on the shutdown path
  _PRCTL = None


def _die_with_parent():
  """preexec_fn: SIGKILL this child when the parent thread exits."""
  if _PRCTL is not None:
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


class CrashLoopError(RuntimeError):
  """An actor keeps dying right after it starts."""


class ActorSupervisor:
  """Starts, restarts and stops `num_actors` actor processes."""

  def __init__(self, command: Callable[[int], Sequence[str]], num_actors: int,
               log_dir: str, env: Optional[Dict[str, str]] = None):
    """Args:
      command: actor_id -> argv of that actor's process.
      num_actors: how many actor processes to keep running.
      log_dir: each actor's stdout/stderr goes to log_dir/actor_<id>.log.
      env: environment variables added to the children's environment.
    """
    self._command, self.num_actors = command, num_actors
    self._log_dir = log_dir
    self._env = dict(os.environ, **(env or {}))
    self._procs: List[Optional[subprocess.Popen]] = [None] * num_actors
    self._started_at = [0.0] * num_actors
    self._quick_deaths = [0] * num_actors
    self.restarts = 0
    os.makedirs(log_dir, exist_ok=True)

  def _log_path(self, i: int) -> str:
    return os.path.join(self._log_dir, f'actor_{i}.log')

  def _spawn(self, i: int) -> None:
    with open(self._log_path(i), 'ab') as log:
      self._procs[i] = subprocess.Popen(
          list(self._command(i)), stdout=log, stderr=subprocess.STDOUT,
          stdin=subprocess.DEVNULL, env=self._env, start_new_session=True,
          preexec_fn=_die_with_parent)
    self._started_at[i] = time.time()
    logging.info('Started actor %d (pid %d, log %s).', i, self._procs[i].pid,
                 self._log_path(i))

  def start(self) -> None:
    for i in range(self.num_actors):
      if self._procs[i] is None:
        self._spawn(i)

  def pids(self) -> List[int]:
    return [p.pid for p in self._procs if p is not None and p.poll() is None]

  def alive(self) -> int:
    return len(self.pids())

  def _tail(self, i: int, lines: int = 15) -> str:
    try:
      with open(self._log_path(i), 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 8192))
        return '\n'.join(f.read().decode(errors='replace').splitlines()[-lines:])
    except OSError:
      return '(no log)'

  def poll(self, stopping: bool = False) -> None:
    """Restarts actors that exited (unless stopping).

    Raises:
      CrashLoopError: an actor died within 20 s of starting 3 times in a row.
    """
    if stopping:
      return
    for i, proc in enumerate(self._procs):
      if proc is None or proc.poll() is None:
        continue
      lived = time.time() - self._started_at[i]
      self._quick_deaths[i] = (self._quick_deaths[i] + 1
                               if lived < _QUICK_DEATH_SECS else 0)
      tail = self._tail(i)
      if self._quick_deaths[i] >= _MAX_QUICK_DEATHS:
        raise CrashLoopError(
            f'Actor {i} died {self._quick_deaths[i]} times within '
            f'{_QUICK_DEATH_SECS:.0f} s of starting (exit code '
            f'{proc.returncode}); last lines of {self._log_path(i)}:\n{tail}')
      logging.warning('Actor %d (pid %d) exited with code %s after %.0f s; '
                      'restarting it. Last lines of its log:\n%s', i, proc.pid,
                      proc.returncode, lived, tail)
      self.restarts += 1
      self._spawn(i)

  def stop(self, timeout: float = 2.0) -> None:
    """SIGTERM every actor, SIGKILL those still alive after `timeout` s.

    Actors hold no state worth saving, so the grace period is short: an actor
    blocked inside a Reverb write cannot run its SIGTERM handler until the
    write returns.
    """
    live = [p for p in self._procs if p is not None and p.poll() is None]
    logging.info('Stopping %d actor processes.', len(live))
    for p in live:
      p.send_signal(signal.SIGTERM)
    deadline = time.time() + timeout
    for p in live:
      try:
        p.wait(timeout=max(0.0, deadline - time.time()))
      except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if live:
      logging.info('Stopped %d actor processes.', len(live))
