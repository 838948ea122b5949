r"""Cost of Distral in the learner step: on (both column layouts) vs off.

  python benchmarks/distral_overhead.py [--rounds=5] [--steps_per_round=3]

Builds learners from configs/distral_atari.py (5 games, deep ResNet, LSTM 256,
18 actions, T=20, B=32, PopArt on, float32, default strategy on this
machine's CPUs): plain multi-task PopArt-IMPALA (distral.variant 'none'),
Distral KL+ent_2col with π0's head on the shared torso + LSTM ('shared'), and
with π0 in a column of its own ('separate': a second torso and LSTM). All
train on the same in-memory batch (no Reverb; column b plays task b mod 5).
Timing alternates between the learners in rounds of `steps_per_round`
learner steps, so machine-load drift hits all alike; per-step times are
medians over rounds. One learner step consumes T·B = 640 agent steps = 2,560
raw frames. Run it on an otherwise idle machine. Results also go to
benchmarks/results/distral_overhead.json.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import popart_overhead  # pylint: disable=wrong-import-position
from configs import distral_atari  # pylint: disable=wrong-import-position
from launch import builder  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARMS = (('distral_off', 'none', 'shared'),
        ('distral_shared', 'KL+ent_2col', 'shared'),
        ('distral_separate', 'KL+ent_2col', 'separate'))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps_per_round', type=int, default=3)
  args = parser.parse_args()
  config = distral_atari.get_config()
  facts = builder.environment_facts(config)
  strategy = tf.distribute.get_strategy()
  learners, batches = {}, {}
  for name, variant, columns in ARMS:
    arm = config.copy_and_resolve_references()
    with arm.unlocked():
      arm.distral.variant = variant
      arm.distral.columns = columns
      if variant == 'none':
        arm.distral.entropy_cost = 0.0
        arm.learner.entropy_cost = 0.01
    batches[name] = popart_overhead.make_batch(arm, facts)
    learners[name] = builder.make_learner(arm, facts, strategy, None, None)
    for _ in range(2):  # trace + warm up
      learners[name].step_on(batches[name])
  times = popart_overhead.time_learners(learners, batches, args.rounds,
                                        args.steps_per_round)
  t, b = config.unroll_length, config.batch_size
  skip = config.env.frame_skip
  results = dict(games=builder.games(config), torso=config.network.torso,
                 unroll_length=t, batch_size=b, cpus=os.cpu_count(),
                 rounds=args.rounds, steps_per_round=args.steps_per_round)
  print(f'# {len(builder.games(config))} games, {config.network.torso} '
        f'network, T={t}, B={b}, {facts["num_actions"]} actions, PopArt on, '
        f'float32, {os.cpu_count()} CPUs; medians over {args.rounds} rounds '
        f'of {args.steps_per_round} steps', flush=True)
  for name, values in times.items():
    median = float(np.median(values))
    results[name] = dict(seconds_per_step=median, per_round=values,
                         agent_steps_per_sec=t * b / median)
    print(f'{name:17s}: {median * 1000:8.1f} ms/step = '
          f'{t * b / median:7,.0f} agent steps/s = '
          f'{t * b * skip / median:7,.0f} frames/s', flush=True)
  off = results['distral_off']['seconds_per_step']
  for name in ('distral_shared', 'distral_separate'):
    overhead = results[name]['seconds_per_step'] / off - 1.0
    results[name]['overhead'] = overhead
    print(f'{name} overhead: {100 * overhead:+.1f}% of the learner step'
          + (' (aim: < 10%)' if name == 'distral_shared' else ''), flush=True)
  out = os.path.join(ROOT, 'benchmarks', 'results', 'distral_overhead.json')
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, 'w') as f:
    json.dump(results, f, indent=2)
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
