r"""Learning in float32 vs bfloat16 at equal frames, with seeds.

Runs the real `launch.train` (one process per run, one after the other: never
two at once on a shared machine) for every --dtypes × --seeds, each with
`--config.network.compute_dtype=<dtype> --config.seed=<seed>`, then compares
them at the frames every run reached (launch.compare_runs): the mean episode
return of the last --last episodes of each run before that point, mean ± std
over seeds per dtype, and a plot (one line per run).

A run ends at the config's total_frames (--frames, optional) or after
--minutes of wall time (SIGINT: the run saves and exits cleanly), whichever
comes first. Runs whose logdir already holds a finished run are reused.

  python benchmarks/dtype_comparison.py --config=configs/smoke.py --seeds=3 \
      --frames=200000 --root=logs/dtype_catch                    # ~8 min
  python benchmarks/dtype_comparison.py --config=configs/atari.py --seeds=1 \
      --minutes=20 --root=logs/dtype_pong                        # 40 min

Frames are learner frames (raw Atari frames = agent steps × frame skip; on
Catch frames = agent steps). Writes ROOT/dtype_comparison.png and
ROOT/summary.md.
"""

import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import compare_runs  # pylint: disable=wrong-import-position

_CONFIG = flags.DEFINE_string('config', 'configs/smoke.py', 'Config file.')
_ROOT = flags.DEFINE_string('root', 'logs/dtype_comparison',
                            'Directory of the runs, plot and summary.')
_DTYPES = flags.DEFINE_list('dtypes', ['float32', 'bfloat16'],
                            'Compute dtypes compared.')
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per dtype.', lower_bound=1)
_FRAMES = flags.DEFINE_integer('frames', None, 'total_frames of every run '
                               '(default: the config\'s).', lower_bound=1)
_MINUTES = flags.DEFINE_float('minutes', None, 'Wall-time limit per run.',
                              lower_bound=0.5)
_LAST = flags.DEFINE_integer('last_episodes', 100, 'Episodes averaged per run.',
                             lower_bound=1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(logdir: str, dtype: str, seed: int) -> None:
  """One launch.train run into `logdir`; reused if it already finished."""
  if os.path.exists(os.path.join(logdir, 'learning_curve.png')):
    print(f'  reuse {logdir}', flush=True)
    return
  command = [sys.executable, '-m', 'launch.train', f'--config={_CONFIG.value}',
             f'--logdir={logdir}', f'--config.network.compute_dtype={dtype}',
             f'--config.seed={seed}']
  if _FRAMES.value:
    command.append(f'--config.total_frames={_FRAMES.value}')
  print('  ' + ' '.join(command[2:]), flush=True)
  os.makedirs(logdir, exist_ok=True)
  start = time.time()
  with open(logdir + '.log', 'w') as log:
    proc = subprocess.Popen(command, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
      proc.wait(timeout=_MINUTES.value * 60 if _MINUTES.value else None)
    except subprocess.TimeoutExpired:
      proc.send_signal(signal.SIGINT)  # Ctrl-C: save, export, plot, exit
      proc.wait(timeout=300)
  if proc.returncode:
    raise RuntimeError(f'{logdir}: launch.train exited {proc.returncode} '
                       f'(see {logdir}.log)')
  print(f'  done in {time.time() - start:.0f} s', flush=True)


def main(argv):
  del argv
  runs = {}
  for seed in range(_SEEDS.value):  # dtypes alternate: drift hits both
    for dtype in _DTYPES.value:
      logdir = os.path.join(_ROOT.value, f'{dtype}_seed{seed}')
      _run(logdir, dtype, seed)
      runs[(dtype, seed)] = compare_runs.read_episodes(logdir)
  labels = [f'{dtype} seed {seed}' for dtype, seed in runs]
  episodes = list(runs.values())
  frames = compare_runs.common_frames(episodes)
  png = compare_runs.plot(episodes, labels, frames,
                          os.path.join(_ROOT.value, 'dtype_comparison.png'),
                          window=50)
  summaries = [compare_runs.summarize(e, frames, _LAST.value) for e in episodes]
  lines = [f'# float32 vs bfloat16: {_CONFIG.value}, {frames:,} learner frames '
           f'per run (the frames every run reached)', '',
           f'Mean return of the last {_LAST.value} episodes of each run at '
           f'<= {frames:,} frames; plot: {png}', '', '```']
  lines += compare_runs.table(summaries, labels)
  lines += ['```', '', '| dtype | per seed | mean ± std over seeds |',
            '| --- | --- | --- |']
  for dtype in _DTYPES.value:
    values = []
    for (d, _), summary in zip(runs, summaries):
      if d == dtype:
        values.append(np.mean([g['mean_return'] for g in
                               summary['games'].values()]))
    lines.append(f'| {dtype} | {", ".join(f"{v:.2f}" for v in values)} | '
                 f'{np.mean(values):.2f} ± {np.std(values):.2f} |')
  text = '\n'.join(lines) + '\n'
  with open(os.path.join(_ROOT.value, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  app.run(main)
