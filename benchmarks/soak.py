r"""Memory soak: one long launch.train run, learner and actor RSS sampled.

  python benchmarks/soak.py --minutes=60 --logdir=logs/soak

Runs `launch.train` on --config (default: the smoke config, Catch, with
total_frames raised so that it does not end on its own) for --minutes of
wall time, then stops it with SIGINT (a clean shutdown: final checkpoint and
export). Every --every_secs it reads the resident set size (RSS, MiB) of the
learner process (`launch.train`: learner thread, weight publisher, episode
drain, summaries), of the Reverb server process (`launch.reverb_server`,
launch/server_process.py) and of each actor process, prints one line and
appends it to LOGDIR/soak_rss.csv. At the end it prints the growth of each series from the
first sample after --warmup_minutes to the last one, in MiB and percent, and
the slope in MiB per minute of a least-squares line over the same window.

RSS is read from /proc through psutil: Linux (and macOS) only. The learner
process is the one that runs `launch.train`'s loop: the child that the
private network namespace re-runs it in (launch/isolation.py), if any.
"""

import csv
import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np
import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = flags.DEFINE_string('config', 'configs/smoke.py', 'Config file.')
_OVERRIDES = flags.DEFINE_list(
    'config_overrides', ['total_frames=10000000000'],
    'field=value overrides passed as --config.field=value.')
_LOGDIR = flags.DEFINE_string('logdir', 'logs/soak',
                              'Run directory (must not hold a run yet).')
_MINUTES = flags.DEFINE_float('minutes', 60.0, 'Wall-clock length of the run.')
_EVERY = flags.DEFINE_float('every_secs', 30.0, 'Seconds between samples.')
_WARMUP = flags.DEFINE_float('warmup_minutes', 5.0,
                             'Samples before this are not in the growth.')


def _rss_mib(process: psutil.Process) -> float:
  return process.memory_info().rss / 2**20


def _learner(train: psutil.Process) -> psutil.Process:
  """The process running the learner: `train` or its fenced child.

  With --network_isolation (launch/isolation.py) `launch.train` re-runs itself
  in a child process; that child holds the server, learner and actors.
  """
  for child in train.children(recursive=False):
    if 'launch.train' in ' '.join(child.cmdline()):
      return child
  return train


def _actors(learner: psutil.Process) -> list[psutil.Process]:
  return _children(learner, 'launch.actor')


def _children(parent: psutil.Process, module: str) -> list[psutil.Process]:
  return sorted((p for p in parent.children(recursive=False)
                 if module in ' '.join(p.cmdline())), key=lambda p: p.pid)


def _server_rss_mib(learner: psutil.Process) -> float:
  """RSS of the Reverb server child (NaN if there is none, as before 2026-12)."""
  servers = _children(learner, 'launch.reverb_server')
  return _rss_mib(servers[0]) if servers else float('nan')


def _growth(minutes: np.ndarray, rss: np.ndarray, warmup: float) -> str:
  window = minutes >= warmup
  if window.sum() < 2:
    return 'not enough samples after the warm-up'
  t, y = minutes[window], rss[window]
  slope = np.polyfit(t, y, 1)[0]
  return (f'{y[0]:.0f} → {y[-1]:.0f} MiB ({y[-1] - y[0]:+.0f} MiB, '
          f'{100 * (y[-1] / y[0] - 1):+.1f}%) from {t[0]:.1f} to {t[-1]:.1f} '
          f'min; slope {slope:+.2f} MiB/min')


def main(argv):
  del argv
  if os.path.exists(os.path.join(_LOGDIR.value, 'config.json')):
    sys.exit(f'error: --logdir={_LOGDIR.value} already holds a run; '
             'give a new directory')
  os.makedirs(_LOGDIR.value, exist_ok=True)
  command = [sys.executable, '-m', 'launch.train', f'--config={_CONFIG.value}',
             f'--logdir={_LOGDIR.value}'] + [
                 f'--config.{o}' for o in _OVERRIDES.value]
  print(' '.join(command), flush=True)
  log = open(os.path.join(_LOGDIR.value, 'train.log'), 'w')
  proc = subprocess.Popen(command, cwd=REPO, stdout=log,
                          stderr=subprocess.STDOUT)
  train = psutil.Process(proc.pid)
  csv_path = os.path.join(_LOGDIR.value, 'soak_rss.csv')
  start = time.monotonic()
  samples = []  # (minutes, learner MiB, [actor MiB...], server MiB)
  try:
    with open(csv_path, 'w', newline='') as f:
      out = csv.writer(f)
      out.writerow(['minutes', 'learner_rss_mib', 'actor_rss_mib',
                    'server_rss_mib'])
      while (time.monotonic() - start) < 60 * _MINUTES.value:
        try:
          time.sleep(_EVERY.value)
        except KeyboardInterrupt:  # Ctrl-C: stop the run, keep the summary
          print('interrupted: stopping launch.train', flush=True)
          break
        if proc.poll() is not None:
          sys.exit(f'error: launch.train exited with {proc.returncode}; '
                   f'see {log.name}')
        minutes = (time.monotonic() - start) / 60
        try:
          learner = _learner(train)
          actors = [_rss_mib(a) for a in _actors(learner)]
          row = (minutes, _rss_mib(learner), actors, _server_rss_mib(learner))
        except psutil.Error:  # an actor restarting between the two reads
          continue
        samples.append(row)
        out.writerow([f'{minutes:.2f}', f'{row[1]:.1f}',
                      ' '.join(f'{a:.1f}' for a in actors), f'{row[3]:.1f}'])
        f.flush()
        print(f'{minutes:6.1f} min  learner {row[1]:7.1f} MiB  server '
              f'{row[3]:7.1f} MiB  actors ' +
              ' '.join(f'{a:6.1f}' for a in actors) + ' MiB', flush=True)
  finally:
    if proc.poll() is None:
      proc.send_signal(signal.SIGINT)
      proc.wait(timeout=300)
    log.close()
  minutes = np.array([s[0] for s in samples])
  print(f'\nsamples: {csv_path} (every {_EVERY.value:.0f} s; '
        f'growth after a {_WARMUP.value:.0f}-minute warm-up)')
  print('learner: ' + _growth(minutes, np.array([s[1] for s in samples]),
                              _WARMUP.value))
  print('server: ' + _growth(minutes, np.array([s[3] for s in samples]),
                             _WARMUP.value))
  num_actors = min(len(s[2]) for s in samples) if samples else 0
  for i in range(num_actors):
    print(f'actor {i}: ' + _growth(
        minutes, np.array([s[2][i] for s in samples]), _WARMUP.value))
  print(f'launch.train exited with {proc.returncode} (log: {log.name})')


if __name__ == '__main__':
  app.run(main)
