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
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import ablations  # pylint: disable=wrong-import-position

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


def main(argv):
  del argv
  runs = {}
  for seed in range(_SEEDS.value):  # dtypes alternate: drift hits both
    for dtype in _DTYPES.value:
      logdir = os.path.join(_ROOT.value, f'{dtype}_seed{seed}')
      ablations.run_train(
          logdir, _CONFIG.value,
          [f'network.compute_dtype={dtype}', f'seed={seed}'], _FRAMES.value,
          _MINUTES.value)
      runs[(dtype, seed)] = logdir
  text = ablations.compare(runs, f'float32 vs bfloat16: {_CONFIG.value}',
                           _ROOT.value, 'dtype_comparison.png', _LAST.value,
                           'dtype')
  with open(os.path.join(_ROOT.value, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  app.run(main)
