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

# --config, --root, --seeds, --frames, --minutes, --last_episodes: the
# flags of benchmarks/ablations.py, with this script's defaults.
flags.set_default(ablations.CONFIG, 'configs/smoke.py')
flags.set_default(ablations.ROOT, 'logs/dtype_comparison')
flags.set_default(ablations.SEEDS, 3)
_DTYPES = flags.DEFINE_list('dtypes', ['float32', 'bfloat16'],
                            'Compute dtypes compared.')


def main(argv):
  del argv
  root, config = ablations.ROOT.value, ablations.CONFIG.value
  runs = {}
  for seed in range(ablations.SEEDS.value):  # dtypes alternate: drift hits both
    for dtype in _DTYPES.value:
      logdir = os.path.join(root, f'{dtype}_seed{seed}')
      ablations.run_train(logdir, config,
                          [f'network.compute_dtype={dtype}', f'seed={seed}'],
                          ablations.FRAMES.value, ablations.MINUTES.value)
      runs[(dtype, seed)] = logdir
  text = ablations.compare(runs, f'float32 vs bfloat16: {config}', root,
                           'dtype_comparison.png', ablations.LAST.value, 'dtype')
  with open(os.path.join(root, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  app.run(main)
