"""Supervision of actor subprocesses for one-box runs (launch/train.py).

Each actor is the same `python -m launch.actor` entry point a cluster would
run. Children get their own session (a terminal's Ctrl-C reaches only the
parent, which shuts them down in order) and PR_SET_PDEATHSIG, so they die with
the parent even if it is SIGKILLed: no orphan processes. A child that exits is
logged with its exit code and the tail of its log, and restarted after an
exponential backoff (1, 2, 4, … 60 s while it keeps dying within 20 s of its
start; at once after a long life). The run ends only for an actor that FAILS
(exits non-zero on its own, not killed by a signal) before producing data
(its log has no "acting in" line since that start) three times in a row: a
crash loop such as a broken config, reported with that log. Actors killed
from outside (OOM killer, an operator, a preempted node) are restarted
however often that happens.
"""

import ctypes
import os
import signal
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import logging

from launch import memory

_PR_SET_PDEATHSIG = 1
_QUICK_DEATH_SECS = 20.0  # a death this soon after start backs off further
_MAX_FAILURES_BEFORE_DATA = 3  # consecutive ones of one actor: give up
_MAX_BACKOFF_SECS = 60.0
_ACTING_MARKER = b'acting in'  # launch/actor.py logs it when data flows


try:  # resolved at import: the forked child must not dlopen (parent is threaded)
  _PRCTL = ctypes.CDLL('libc.so.6', use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: rely on the shutdown path
  _PRCTL = None


def die_with_parent():
  """preexec_fn: SIGKILL this child when the parent thread exits."""
  if _PRCTL is not None:
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: str, lines: int = 15) -> str:
  """The last `lines` lines of a child's log file (of its last 8 KiB)."""
  try:
    with open(path, 'rb') as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 8192))
      return '\n'.join(f.read().decode(errors='replace').splitlines()[-lines:])
  except OSError:
    return '(no log)'


class CrashLoopError(RuntimeError):
  """An actor keeps dying right after it starts."""


class ActorSupervisor:
  """Starts, restarts and stops `num_actors` actor processes."""

  def __init__(self, command: Callable[[int], Sequence[str]], num_actors: int,
               log_dir: str, env: Optional[Dict[str, str]] = None,
               backoff_secs: float = 1.0):
    """Args:
      command: actor_id -> argv of that actor's process.
      num_actors: how many actor processes to keep running.
      log_dir: each actor's stdout/stderr goes to log_dir/actor_<id>.log.
      env: environment variables added to the children's environment (on
        top of this process's and `memory.ALLOCATOR_ENV`).
      backoff_secs: first restart delay after a quick death (doubles per
        further quick death, up to 60 s).
    """
    self._command, self.num_actors = command, num_actors
    self._log_dir = log_dir
    # The allocator settings unless the operator's environment has its own.
    self._env = dict(memory.ALLOCATOR_ENV, **os.environ)
    self._env.update(env or {})
    self._procs: List[Optional[subprocess.Popen]] = [None] * num_actors
    self._started_at = [0.0] * num_actors
    self._log_offset = [0] * num_actors  # log size at the latest start
    self._quick_deaths = [0] * num_actors
    self._failures_before_data = [0] * num_actors
    self._restart_at: Dict[int, float] = {}  # actor -> when to respawn
    self._backoff_secs = float(backoff_secs)
    self.restarts = 0
    os.makedirs(log_dir, exist_ok=True)

  def _log_path(self, i: int) -> str:
    return os.path.join(self._log_dir, f'actor_{i}.log')

  def _spawn(self, i: int) -> None:
    try:
      self._log_offset[i] = os.path.getsize(self._log_path(i))
    except OSError:
      self._log_offset[i] = 0
    with open(self._log_path(i), 'ab') as log:
      self._procs[i] = subprocess.Popen(
          list(self._command(i)), stdout=log, stderr=subprocess.STDOUT,
          stdin=subprocess.DEVNULL, env=self._env, start_new_session=True,
          preexec_fn=die_with_parent)
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

  def _tail(self, i: int) -> str:
    return log_tail(self._log_path(i))

  def _produced_data(self, i: int) -> bool:
    """Whether actor i logged that it acts, since its latest start."""
    try:
      with open(self._log_path(i), 'rb') as f:
        f.seek(self._log_offset[i])
        return _ACTING_MARKER in f.read()
    except OSError:
      return False

  def poll(self, stopping: bool = False) -> None:
    """Restarts actors that exited (after their backoff), unless stopping.

    Raises:
      CrashLoopError: an actor failed on its own before producing data 3
        times in a row.
    """
    if stopping:
      return
    now = time.time()
    for i, due in list(self._restart_at.items()):
      if now >= due:
        del self._restart_at[i]
        self.restarts += 1
        self._spawn(i)
    for i, proc in enumerate(self._procs):
      if proc is None or i in self._restart_at or proc.poll() is None:
        continue
      lived = now - self._started_at[i]
      killed = proc.returncode < 0  # by a signal from outside
      produced = self._produced_data(i)
      self._failures_before_data[i] = (
          0 if killed or produced else self._failures_before_data[i] + 1)
      self._quick_deaths[i] = (self._quick_deaths[i] + 1
                               if lived < _QUICK_DEATH_SECS else 0)
      tail = self._tail(i)
      if self._failures_before_data[i] >= _MAX_FAILURES_BEFORE_DATA:
        raise CrashLoopError(
            f'Actor {i} failed {self._failures_before_data[i]} times in a row '
            f'before producing any data (last exit code {proc.returncode}, '
            f'after {lived:.0f} s); last lines of {self._log_path(i)}:\n'
            f'{tail}')
      delay = (0.0 if not self._quick_deaths[i] else min(
          _MAX_BACKOFF_SECS,
          self._backoff_secs * 2 ** (self._quick_deaths[i] - 1)))
      how = (f'was killed by {signal.Signals(-proc.returncode).name}'
             if killed else f'exited with code {proc.returncode}')
      logging.warning('Actor %d (pid %d) %s after %.0f s%s; restarting it in '
                      '%.0f s. Last lines of its log:\n%s', i, proc.pid, how,
                      lived, '' if produced else ' before producing data',
                      delay, tail)
      self._restart_at[i] = now + delay
    for i, due in list(self._restart_at.items()):
      if due <= now:  # no backoff: restart in this poll
        del self._restart_at[i]
        self.restarts += 1
        self._spawn(i)

  def stop(self, timeout: float = 2.0, exit_wait: float = 0.0) -> None:
    """SIGTERM every actor, SIGKILL those still alive after `timeout` s.

    Actors hold no state worth saving, so the grace period is short: an actor
    blocked inside a Reverb write cannot run its SIGTERM handler until the
    write returns.

    Args:
      timeout: seconds between SIGTERM and SIGKILL.
      exit_wait: seconds to wait first for actors to exit by themselves (after
        the learner's final publish they do, once they have polled it); those
        that do log their step and episode counts.
    """
    deadline = time.time() + exit_wait
    while (time.time() < deadline and
           any(p is not None and p.poll() is None for p in self._procs)):
      time.sleep(0.05)
    live = [p for p in self._procs if p is not None and p.poll() is None]
    if not live:
      return
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
