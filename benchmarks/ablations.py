r"""Ablations at equal frames: config variants × seeds through launch.train.

Each --variant is NAME=OVERRIDES, OVERRIDES a comma-separated list of
`field=value` config overrides (empty: the config as it is). Every variant ×
seed is one real `launch.train` run (seeds outermost so that machine drift
hits every variant), then launch.compare_runs compares them at the frames
every run reached: the mean return of each run's last --last_episodes
episodes before that point, mean ± std over seeds per variant, and one plot.

By default one run at a time. --parallel=N runs up to N at once: they share
the machine's cores, so a run's frames per second (and, with --minutes, the
frames it reaches) mean nothing, but the comparison is at equal learner
frames, which sharing does not change beyond actor timing (policy lag).

  python benchmarks/ablations.py --config=configs/atari.py \
      --config_overrides=network.torso=shallow --seeds=2 --minutes=15 \
      --variant=default= \
      --variant=pytorch_rmsprop=learner.rmsprop_form=pytorch \
      --variant=feedforward=network.core=feedforward,network.head_init=orthogonal \
      --root=logs/ablations_pong

A run ends at --frames (config.total_frames, which also sets the learning
rate's decay) or after --minutes of wall time (SIGINT: the run saves and
exits cleanly), whichever comes first. A logdir that already holds a finished
run is reused, so an interrupted sweep resumes where it stopped. Frames are
learner frames (raw Atari frames = agent steps × frame skip). Writes
ROOT/ablations.png and ROOT/summary.md.
"""

import os
import signal
import subprocess
import sys
import time
from typing import Optional, Sequence

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import compare_runs  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_train(logdir: str, config: str, overrides: Sequence[str],
                frames: Optional[int] = None,
                minutes: Optional[float] = None) -> Optional[dict]:
  """Starts one launch.train run into `logdir` (LOGDIR.log: its output).

  Returns:
    A handle for `wait_train`, or None if `logdir` already holds a finished
    run (its learning_curve.png), which is then reused.
  """
  if os.path.exists(os.path.join(logdir, 'learning_curve.png')):
    print(f'  reuse {logdir}', flush=True)
    return None
  command = [sys.executable, '-m', 'launch.train', f'--config={config}',
             f'--logdir={logdir}'] + [f'--config.{o}' for o in overrides]
  if frames:
    command.append(f'--config.total_frames={frames}')
  print('  ' + ' '.join(command[2:]), flush=True)
  os.makedirs(logdir, exist_ok=True)
  log = open(logdir + '.log', 'w')  # pylint: disable=consider-using-with
  proc = subprocess.Popen(command, cwd=REPO, stdout=log,
                          stderr=subprocess.STDOUT)
  start = time.time()
  return dict(logdir=logdir, proc=proc, log=log, start=start,
              deadline=start + minutes * 60 if minutes else None)


def wait_train(handle: Optional[dict]) -> None:
  """Waits for a run of `start_train`; SIGINT at its deadline.

  Raises:
    RuntimeError: if launch.train exits with an error.
  """
  if handle is None:
    return
  proc, deadline = handle['proc'], handle['deadline']
  try:
    proc.wait(timeout=max(0.0, deadline - time.time()) if deadline else None)
  except subprocess.TimeoutExpired:
    proc.send_signal(signal.SIGINT)  # Ctrl-C: save, export, plot, exit
    proc.wait(timeout=300)
  handle['log'].close()
  if proc.returncode:
    raise RuntimeError(f'{handle["logdir"]}: launch.train exited '
                       f'{proc.returncode} (see {handle["logdir"]}.log)')
  print(f'  done in {time.time() - handle["start"]:.0f} s: '
        f'{handle["logdir"]}', flush=True)


def run_train(logdir: str, config: str, overrides: Sequence[str],
              frames: Optional[int] = None,
              minutes: Optional[float] = None) -> None:
  """One launch.train run into `logdir`, to its end (see start_train).

  Raises:
    RuntimeError: if launch.train exits with an error.
  """
  wait_train(start_train(logdir, config, overrides, frames, minutes))


def run_all(jobs: Sequence[tuple], parallel: int) -> None:
  """Runs (logdir, config, overrides, frames, minutes) jobs, `parallel` at once.

  Jobs start in order; when `parallel` are running, the oldest is waited for
  before the next starts (with --minutes it has the earliest deadline; with
  only --frames a younger run may end first and its slot waits).

  Raises:
    RuntimeError: if a run exits with an error (the others still running are
      first stopped with SIGINT, so they save, and waited for).
  """
  running = []
  try:
    for job in jobs:
      if len(running) == parallel:
        wait_train(running.pop(0))
      handle = start_train(*job)
      if handle is not None:  # None: a finished run, reused
        running.append(handle)
    while running:
      wait_train(running.pop(0))
  finally:
    for handle in running:
      if handle['proc'].poll() is None:
        handle['proc'].send_signal(signal.SIGINT)
        handle['proc'].wait(timeout=300)


def compare(runs, title: str, root: str, png_name: str, last: int,
            group_label: str) -> str:
  """Markdown summary of {(group, seed): logdir} at their common frames.

  Writes the plot ROOT/PNG_NAME and returns the text (a per-run table and
  mean ± std over seeds per group).
  """
  episodes = {key: compare_runs.read_episodes(d) for key, d in runs.items()}
  labels = [f'{group} seed {seed}' for group, seed in episodes]
  frames = compare_runs.common_frames(list(episodes.values()))
  png = compare_runs.plot(list(episodes.values()), labels, frames,
                          os.path.join(root, png_name), window=50)
  summaries = [compare_runs.summarize(e, frames, last)
               for e in episodes.values()]
  lines = [f'# {title}, {frames:,} learner frames per run (the frames every '
           'run reached)', '', f'Mean return of the last {last} episodes of '
           f'each run at <= {frames:,} frames; plot: {png}', '', '```']
  lines += compare_runs.table(summaries, labels)
  lines += ['```', '', f'| {group_label} | per seed | mean ± std over seeds |',
            '| --- | --- | --- |']
  groups = list(dict.fromkeys(group for group, _ in episodes))
  for group in groups:
    values = [np.mean([g['mean_return'] for g in s['games'].values()])
              for (g_, _), s in zip(episodes, summaries) if g_ == group]
    lines.append(f'| {group} | {", ".join(f"{v:.2f}" for v in values)} | '
                 f'{np.mean(values):.2f} ± {np.std(values):.2f} |')
  return '\n'.join(lines) + '\n'


# Shared with benchmarks/dtype_comparison.py, which sets its own defaults.
CONFIG = flags.DEFINE_string('config', 'configs/atari.py', 'Config file.')
OVERRIDES = flags.DEFINE_list('config_overrides', [],
                               'field=value overrides of every run.')
VARIANTS = flags.DEFINE_multi_string(
    'variant', [], 'NAME=field=value,field=value (repeat the flag).')
ROOT = flags.DEFINE_string('root', 'logs/ablations',
                            'Directory of the runs, plot and summary.')
SEEDS = flags.DEFINE_integer('seeds', 2, 'Seeds per variant.', lower_bound=1)
FRAMES = flags.DEFINE_integer('frames', None, 'total_frames of every run '
                               "(default: the config's).", lower_bound=1)
MINUTES = flags.DEFINE_float('minutes', None, 'Wall-time limit per run.',
                              lower_bound=0.5)
LAST = flags.DEFINE_integer('last_episodes', 100, 'Episodes averaged per run.',
                             lower_bound=1)
PARALLEL = flags.DEFINE_integer(
    'parallel', 1, 'Runs at once (they share the cores: compare at equal '
    'frames only).', lower_bound=1)


def parse_variant(text: str):
  """'name=a=1,b=2' -> ('name', ['a=1', 'b=2']).

  Raises:
    ValueError: without a name, or an override without '='.
  """
  name, sep, rest = text.partition('=')
  if not name or not sep:
    raise ValueError(f'--variant must be NAME=OVERRIDES; got {text!r}')
  overrides = [o for o in rest.split(',') if o]
  for o in overrides:
    if '=' not in o:
      raise ValueError(f'--variant {name}: override {o!r} is not field=value')
  return name, overrides


def main(argv):
  del argv
  variants = [parse_variant(v) for v in VARIANTS.value]
  if not variants:
    raise app.UsageError('give at least one --variant=NAME=OVERRIDES')
  runs, jobs = {}, []
  for seed in range(SEEDS.value):
    for name, overrides in variants:
      logdir = os.path.join(ROOT.value, f'{name}_seed{seed}')
      jobs.append((logdir, CONFIG.value,
                   list(OVERRIDES.value) + overrides + [f'seed={seed}'],
                   FRAMES.value, MINUTES.value))
      runs[(name, seed)] = logdir
  run_all(jobs, PARALLEL.value)
  text = compare(runs, f'Ablations of {CONFIG.value}', ROOT.value,
                 'ablations.png', LAST.value, 'variant')
  with open(os.path.join(ROOT.value, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  app.run(main)
