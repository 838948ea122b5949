"""The one-box run's Reverb server as a child process (launch/train.py).

`launch.train` used to embed `reverb.Server` in the learner's process. Each
publish of the weights into a server of the SAME process left 5–11 KiB of
resident memory behind (benchmarks/memory_probe.py row
`weight_publish_in_process`; 0.004 KiB for a server in another process). So
the server runs as its own `python -m launch.reverb_server` process, the
entry point split roles and Kubernetes run too, with this run's exact config
(config.json). In a 60-minute soak of the smoke config it grew 2.6% after
the warm-up, the learner 4.0% (benchmarks/results/soak.md).

The child gets its own session (a terminal's Ctrl-C reaches only the parent,
which stops it after the actors) and PR_SET_PDEATHSIG (it dies with the
parent, even a SIGKILLed one: no orphan holding the port). It inherits the
parent's network namespace (launch/isolation.py), so a fenced run's port is
fenced as before. A server that dies during the run is restarted on the same
port by a watcher thread (its tables restored from the Reverb checkpoint of
HER runs): not by the learner's main loop, which may itself be blocked in a
Reverb call waiting for the server. Learner and actors ride out the outage as
they do in split roles (replay/connection.py).
"""

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, Optional, Sequence

from absl import logging
import reverb

from launch import supervisor as supervisor_lib

_UP_TIMEOUT_SECS = 120.0  # TF import + table creation take ~5–15 s
_QUICK_DEATH_SECS = 20.0  # died this soon after start: the run cannot go on


class ServerStartError(RuntimeError):
  """The server process exited or did not answer at start."""


def free_port() -> int:
  """A TCP port nobody listens on now (the kernel's choice for port 0)."""
  with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET,
                     socket.SOCK_STREAM) as probe:
    probe.bind(('', 0))
    return probe.getsockname()[1]


class ServerProcess:
  """Starts, watches, restarts and stops one `launch.reverb_server` child."""

  def __init__(self, config_args: Sequence[str], port: int, checkpoint_dir: str,
               log_path: str, env: Optional[Dict[str, str]] = None,
               quick_death_secs: float = _QUICK_DEATH_SECS):
    """Args:
      config_args: the --config=… argument(s) of this run (config.json).
      port: TCP port to serve on (> 0; see `free_port`).
      checkpoint_dir: the server's Reverb checkpoint directory (local disk).
      log_path: the child's stdout and stderr are appended here.
      env: environment variables added to the child's environment.
      quick_death_secs: a child that dies sooner than this (seconds) after a
        (re)start is not restarted: `poll` raises.
    """
    self.port = port
    self.address = f'localhost:{port}'
    self._command = [sys.executable, '-m', 'launch.reverb_server',
                     *config_args, f'--port={port}',
                     f'--checkpoint_dir={checkpoint_dir}']
    self._log_path = log_path
    self._env = dict(os.environ, **(env or {}))
    self._proc: Optional[subprocess.Popen] = None
    self._started_at = 0.0
    self._quick_death_secs = quick_death_secs
    self.restarts = 0
    self._lock = threading.Lock()
    self._stopping = threading.Event()
    self._watcher: Optional[threading.Thread] = None
    self._error: Optional[ServerStartError] = None

  @property
  def pid(self) -> Optional[int]:
    return self._proc.pid if self._proc is not None else None

  def _spawn(self) -> None:
    os.makedirs(os.path.dirname(self._log_path) or '.', exist_ok=True)
    with open(self._log_path, 'ab') as log:
      self._proc = subprocess.Popen(
          self._command, stdout=log, stderr=subprocess.STDOUT,
          stdin=subprocess.DEVNULL, env=self._env, start_new_session=True,
          preexec_fn=supervisor_lib.die_with_parent)
    self._started_at = time.time()

  def _tail(self) -> str:
    return supervisor_lib.log_tail(self._log_path)

  def start(self, timeout_secs: float = _UP_TIMEOUT_SECS) -> None:
    """Starts the child, returns once it answers; then watches it.

    From then on a watcher thread restarts the child if it dies (see `poll`).

    Raises:
      ServerStartError: the child exited first (its log's tail in the
        message), or did not answer within `timeout_secs` seconds (then it
        is stopped).
    """
    self._start_and_wait(timeout_secs)
    self._watcher = threading.Thread(target=self._watch, daemon=True,
                                     name='reverb-server-watcher')
    self._watcher.start()

  def _start_and_wait(self, timeout_secs: float = _UP_TIMEOUT_SECS) -> None:
    with self._lock:
      self._spawn()
      proc = self._proc
    client = reverb.Client(self.address)
    deadline = time.time() + timeout_secs
    while True:
      if proc.poll() is not None:
        raise ServerStartError(
            f'the Reverb server process exited with code {proc.returncode} '
            f'at start; last lines of {self._log_path}:\n{self._tail()}')
      try:
        client.server_info(timeout=1)
        break
      except Exception:  # pylint: disable=broad-except
        if time.time() > deadline:
          self._terminate()
          raise ServerStartError(
              f'the Reverb server process did not answer on {self.address} '
              f'within {timeout_secs:.0f} s; see {self._log_path}') from None
        time.sleep(0.2)
    logging.info('Reverb server process %d on %s (log %s).', proc.pid,
                 self.address, self._log_path)

  def _watch(self) -> None:
    """Watcher thread: restarts a dead child; records a fatal death.

    The thread that spawns a child must outlive it (PR_SET_PDEATHSIG fires
    when the spawning thread exits), so restarts happen here.
    """
    while not self._stopping.wait(0.5):
      proc = self._proc
      if proc is None or proc.poll() is None:
        continue
      code, lived = proc.returncode, time.time() - self._started_at
      if lived < self._quick_death_secs:
        self._error = ServerStartError(
            f'the Reverb server process exited with code {code} after '
            f'{lived:.0f} s; last lines of {self._log_path}:\n{self._tail()}')
        return
      logging.warning('The Reverb server process (pid %d) exited with code %d '
                      'after %.0f s; restarting it on port %d. Last lines of '
                      'its log:\n%s', proc.pid, code, lived, self.port,
                      self._tail())
      self.restarts += 1
      try:
        self._start_and_wait()
      except ServerStartError as e:
        self._error = e
        return

  def poll(self) -> None:
    """Raises the watcher's verdict if the child cannot be kept running.

    Raises:
      ServerStartError: it died within `quick_death_secs` of a (re)start,
        or a restart failed.
    """
    if self._error is not None:
      raise self._error

  def _terminate(self, timeout: float = 10.0) -> None:
    with self._lock:
      proc = self._proc
    if proc is None or proc.poll() is not None:
      return
    proc.terminate()
    try:
      proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()

  def stop(self, timeout: float = 10.0) -> None:
    """Ends the watcher; SIGTERM the child, SIGKILL it after `timeout` s."""
    self._stopping.set()
    if self._watcher is not None and self._watcher is not threading.current_thread():
      self._watcher.join(timeout=_UP_TIMEOUT_SECS + timeout)
    self._terminate(timeout)
