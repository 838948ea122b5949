"""Fences a one-box run's Reverb port: a private network namespace.

Reverb 0.14's `reverb.Server(tables, port)` binds the wildcard address
(`[::]:PORT`, every IPv4 and IPv6 address) and serves unauthenticated,
insecure gRPC: anyone who can reach the host can read the weights from the
`variables` table and insert items. It takes no bind address, so the fence
is the operating system's: `launch.train` runs its whole process tree
(Reverb server, learner, actor processes) in a new Linux network namespace
whose only interface is loopback (network_namespaces(7)). Inside, the server
and actors talk over `localhost` as before; outside, the port does not exist,
not even on the host's own loopback.

Without root this needs an unprivileged user namespace (user_namespaces(7)):
the child maps the caller's uid and gid to 0 inside, which gives it
CAP_NET_ADMIN over its own network namespace only (enough to bring `lo` up)
and nothing outside; files it writes belong to the caller as usual. Where the
kernel forbids that (e.g. `kernel.unprivileged_userns_clone=0`, or Ubuntu's
`kernel.apparmor_restrict_unprivileged_userns=1`), `available()` says why.

Linux only. A process in such a namespace has no network at all, so a run
that needs one (a Cloud TPU learner, a logdir on cloud storage) cannot be
fenced this way; see README "Security" for fencing with a firewall instead.
"""

import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
from typing import Optional, Sequence

from absl import flags

# Set in the environment of the fenced child, so that it does not fence again.
ENV_MARKER = 'TF_IMPALA_PRIVATE_NETWORK'

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_PR_SET_PDEATHSIG = 1


def inside() -> bool:
  """True in a process that `run_fenced` started (or its children)."""
  return os.environ.get(ENV_MARKER) == '1'


def _unshare(flags: int) -> None:
  libc = ctypes.CDLL(None, use_errno=True)
  if libc.unshare(flags) != 0:
    err = ctypes.get_errno()
    raise OSError(err, f'unshare: {os.strerror(err)}')


def _write(path: str, text: str) -> None:
  with open(path, 'w') as f:
    f.write(text)


def _loopback_up() -> None:
  """Brings `lo` up (a new network namespace starts with it down)."""
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    request = struct.pack('16sH14x', b'lo', 0)
    flags = struct.unpack('16sH14x',
                          fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, request))[1]
    fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS,
                struct.pack('16sH14x', b'lo', flags | _IFF_UP))


def _enter() -> None:
  """In a single-threaded (just forked) process: new netns with `lo` up."""
  uid, gid = os.geteuid(), os.getegid()
  if uid == 0:
    _unshare(_CLONE_NEWNET)
  else:
    _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    _write('/proc/self/setgroups', 'deny')
    _write('/proc/self/uid_map', f'{uid} {uid} 1')
    _write('/proc/self/gid_map', f'{gid} {gid} 1')
  _loopback_up()


def _enter_in_child() -> None:
  # preexec_fn: exceptions reach the parent as SubprocessError; keep errno.
  try:
    # If the parent dies (kill -9), the run gets SIGTERM: a clean stop.
    if ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
      raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG)')
    _enter()
  except OSError as e:
    os.write(2, f'private network namespace: {e}\n'.encode())
    os._exit(126)


def available() -> Optional[str]:
  """None if `run_fenced` can work here, else the reason it cannot.

  Tries it for real: a short child process enters a private network
  namespace and brings its loopback up.
  """
  if not sys.platform.startswith('linux'):
    return f'network namespaces are Linux-only (this is {sys.platform})'
  try:
    probe = subprocess.run(
        [sys.executable, '-c', 'pass'], preexec_fn=_enter_in_child,
        capture_output=True, text=True, timeout=30, check=False)
  except (OSError, subprocess.SubprocessError) as e:
    return str(e)
  if probe.returncode != 0:
    reason = probe.stderr.strip().splitlines()
    reason = reason[-1] if reason else f'exit status {probe.returncode}'
    if 'Operation not permitted' in reason or 'EPERM' in reason:
      reason += (' (unprivileged user namespaces are disabled: see sysctl '
                 'kernel.unprivileged_userns_clone / '
                 'kernel.apparmor_restrict_unprivileged_userns)')
    return reason
  return None


def run_fenced(argv: Sequence[str]) -> int:
  """Runs `argv` in a private network namespace; returns its exit status.

  The child inherits stdin/stdout/stderr and the environment (plus
  ENV_MARKER=1). This parent forwards SIGINT, SIGTERM and SIGHUP to it, so
  that `kill PID`, `timeout` and Ctrl-C stop the run cleanly (a Ctrl-C in a
  terminal reaches the child twice, directly and forwarded, within a
  millisecond: its stop handler takes both as one request); if the parent
  is killed outright, the child gets SIGTERM.

  Raises:
    OSError: if the namespace cannot be made (check `available()` first).
  """
  env = dict(os.environ, **{ENV_MARKER: '1'})
  child = subprocess.Popen(list(argv), env=env, preexec_fn=_enter_in_child)
  forward = lambda signum, frame: child.send_signal(signum)
  signal.signal(signal.SIGINT, forward)
  signal.signal(signal.SIGTERM, forward)
  signal.signal(signal.SIGHUP, forward)
  while True:
    try:
      return child.wait()
    except InterruptedError:
      continue


MODES = ('auto', 'netns', 'off')
HELP = ('Fence the unauthenticated Reverb port: netns runs the whole run in a '
        'private network namespace with loopback only (launch/isolation.py); '
        'auto does so where the OS allows it and the run needs no network '
        '(no --tpu, a local --logdir), else warns; off never does (warns).')


def fence_or_reason(argv: Sequence[str], module: str) -> Optional[str]:
  """Re-runs `python -m module argv[1:]` fenced, or says why not.

  For the very top of a launcher, before TensorFlow is imported (so that the
  fenced child is the only process paying for it): reads only
  --network_isolation, --tpu and --logdir from `argv` (absl, known flags
  only; the launcher's own parser still validates all of them). If the run
  is to be fenced, this process runs it with `run_fenced` and exits with its
  status: it never returns.

  Returns:
    None when already fenced (or --help), else why the run is not fenced
    (for the launcher to warn with `EXPOSED`).

  Raises:
    SystemExit: `error: …` when --network_isolation=netns cannot be done.
  """
  if inside():
    return None
  values = flags.FlagValues()
  flags.DEFINE_enum('network_isolation', 'auto', MODES, HELP,
                    flag_values=values)
  flags.DEFINE_string('tpu', None, '', flag_values=values)
  flags.DEFINE_string('logdir', None, '', flag_values=values)
  try:
    values(list(argv), known_only=True)
  except flags.Error:
    return 'of a bad flag'  # the launcher's parser reports it
  if any(a.lstrip('-').split('=')[0] in ('help', 'helpfull', 'helpshort')
         for a in argv[1:]):
    return None
  mode, logdir = values.network_isolation, values.logdir or ''
  if mode == 'off':
    return 'of --network_isolation=off'
  needs_network = ('of --tpu (a Cloud TPU learner is reached over the '
                   'network)' if values.tpu else
                   f'of --logdir={logdir} (not on a local disk)'
                   if '://' in logdir else None)
  reason = needs_network or available()
  if reason is None:
    print('Running in a private network namespace (loopback only): the '
          'Reverb port is unreachable from outside this run.', file=sys.stderr,
          flush=True)
    sys.exit(run_fenced([sys.executable, '-m', module] + list(argv[1:])))
  if mode == 'netns':
    sys.exit(f'error: --network_isolation=netns cannot be done here: '
             f'{reason}; allowed: --network_isolation=auto or off (and fence '
             'the port with a firewall, README "Security").')
  return reason if needs_network else f'no private network namespace ({reason})'


EXPOSED = ("The run's Reverb server listens on ALL network addresses, "
           'unauthenticated, because %s: anyone who can reach this host can '
           'read the weights and insert data. Fence the port with a firewall '
           '(README "Security").')
