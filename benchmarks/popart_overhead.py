r"""Cost of PopArt in the learner step: PopArt on vs off, same network and batch.

  python benchmarks/popart_overhead.py [--rounds=5] [--steps_per_round=4]

Builds two learners from configs/atari_multitask.py (5 games, deep ResNet,
LSTM 256, 18 actions, T=20, B=32, float32, default strategy on this machine's
CPUs): one with PopArt (popart_impala_loss, ART increments, POP rescaling of
the value head), one without (impala_loss, unclipped rewards). Both train on
the same in-memory batch (no Reverb), each unroll column playing one of the
5 tasks. Timing alternates between the two in rounds of `steps_per_round`
learner steps, so machine-load drift hits both alike; reported per-step times
are medians over rounds. One learner step consumes T·B = 640 agent steps =
2,560 raw frames. Results also go to benchmarks/results/popart_overhead.json.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from agent import types  # pylint: disable=wrong-import-position
from configs import atari_multitask  # pylint: disable=wrong-import-position
from launch import builder  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_batch(config, facts, seed: int = 0) -> types.Unroll:
  """A time-major batch [T+1, B]; column b plays task b mod num_tasks."""
  t, b = config.unroll_length, config.batch_size
  num_tasks = len(builder.games(config))
  rng = np.random.RandomState(seed)
  spec, num_actions = facts['observation_spec'], facts['num_actions']
  lstm = builder.core_state_size(config)  # 2 columns with a separate Distral π0
  task_id = np.tile(np.arange(b, dtype=np.int32) % num_tasks, (t + 1, 1))
  return types.Unroll(
      observation=rng.randint(0, 256, (t + 1, b) + tuple(spec.shape)
                              ).astype(np.uint8),
      first=rng.rand(t + 1, b) < 0.01,
      reward=(rng.randn(t + 1, b) * 10.0 ** task_id).astype(np.float32),
      discount=np.ones((t + 1, b), np.float32),
      prev_action=rng.randint(0, num_actions, (t + 1, b)).astype(np.int32),
      action=rng.randint(0, num_actions, (t + 1, b)).astype(np.int32),
      behaviour_logits=rng.randn(t + 1, b, num_actions).astype(np.float32),
      task_id=task_id,
      core_state=(np.zeros((b, lstm), np.float32),
                  np.zeros((b, lstm), np.float32)))


def time_learners(learners, batches, rounds: int, steps_per_round: int):
  """Seconds per learner step of each learner, per round.

  Rounds alternate between the learners, so machine-load drift hits all
  alike. Returns {name: [seconds per step in round r]}.
  """
  times = {name: [] for name in learners}
  for _ in range(rounds):
    for name, learner in learners.items():
      start = time.perf_counter()
      for _ in range(steps_per_round):
        learner.step_on(batches[name])
      times[name].append((time.perf_counter() - start) / steps_per_round)
  return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps_per_round', type=int, default=4)
  args = parser.parse_args()
  config = atari_multitask.get_config()
  facts = builder.environment_facts(config)
  batch = make_batch(config, facts)
  strategy = tf.distribute.get_strategy()
  learners = {}
  for name, popart in (('popart_on', True), ('popart_off', False)):
    variant = config.copy_and_resolve_references()
    with variant.unlocked():
      variant.learner.popart = popart
    learners[name] = builder.make_learner(variant, facts, strategy, None, None)
    for _ in range(2):  # trace + warm up
      learners[name].step_on(batch)
  times = time_learners(learners, {name: batch for name in learners},
                        args.rounds, args.steps_per_round)
  t, b = config.unroll_length, config.batch_size
  skip = config.env.frame_skip
  results = dict(games=builder.games(config), torso=config.network.torso,
                 unroll_length=t, batch_size=b, cpus=os.cpu_count(),
                 rounds=args.rounds, steps_per_round=args.steps_per_round)
  print(f'# {len(builder.games(config))} games, {config.network.torso} network, '
        f'T={t}, B={b}, {facts["num_actions"]} actions, float32, '
        f'{os.cpu_count()} CPUs; medians over {args.rounds} rounds of '
        f'{args.steps_per_round} steps', flush=True)
  for name, values in times.items():
    median = float(np.median(values))
    results[name] = dict(seconds_per_step=median, per_round=values,
                         agent_steps_per_sec=t * b / median)
    print(f'{name:10s}: {median * 1000:8.1f} ms/step = {t * b / median:7,.0f} '
          f'agent steps/s = {t * b * skip / median:7,.0f} frames/s', flush=True)
  overhead = (results['popart_on']['seconds_per_step'] /
              results['popart_off']['seconds_per_step'] - 1.0)
  results['overhead'] = overhead
  print(f'PopArt overhead: {100 * overhead:+.1f}% of the learner step '
        '(aim: < 5%)', flush=True)
  out = os.path.join(ROOT, 'benchmarks', 'results', 'popart_overhead.json')
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, 'w') as f:
    json.dump(results, f, indent=2)
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
