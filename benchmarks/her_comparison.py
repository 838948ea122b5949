r"""HER vs no HER at equal frames, through the real pipeline, with a plot.

  python benchmarks/her_comparison.py --env=bit_flipping --arg=15 \
      --frames=800000
  python benchmarks/her_comparison.py --env=goal_gridworld --arg=11

Runs `python -m launch.train` (its Reverb server child process, actor process(es),
learner; configs/her_bitflip.py or configs/her_gridworld.py) twice with the
same config and seed, once with HER (her.relabel_probability = 0.8, strategy
'future') and once without (relabel_probability = 0: the same replay
proportion and replay table, items replayed with their original goals), to
the same `total_frames` (new agent steps consumed by the learner; replayed
unrolls are not counted; frames = agent steps here, no frame skip).

Success of an episode is read from LOGDIR/episodes.csv: with reward −1 per
step and 0 on reaching the goal (envs/goal.py), an episode succeeded iff
return > −length. Prints success rates per frame bin and over the last 10% of
frames, writes RESULTS/<name>/her_vs_no_her.png and summary.json, and
evaluates both exported SavedModels (LOGDIR/policy, loaded with
tf.saved_model.load only) on episodes whose goal the script chooses
(env.reset_with_goal with goals from a separate seeded RNG).
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import matplotlib  # pylint: disable=g-import-not-at-top,wrong-import-position
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from envs import bit_flipping  # pylint: disable=wrong-import-position
from envs import goal_gridworld  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {'bit_flipping': 'configs/her_bitflip.py',
           'goal_gridworld': 'configs/her_gridworld.py'}
ARMS = (('her', 0.8), ('no_her', 0.0))


def train(logdir, config, frames, relabel_probability, extra):
  """Runs launch.train to `frames`; returns its wall time in seconds."""
  cmd = [sys.executable, '-m', 'launch.train', f'--config={config}',
         f'--logdir={logdir}', f'--config.total_frames={frames}',
         f'--config.her.relabel_probability={relabel_probability}'] + extra
  print(' '.join(cmd), flush=True)
  start = time.time()
  with open(os.path.join(os.path.dirname(logdir),
                         os.path.basename(logdir) + '.log'), 'w') as log:
    subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                   check=True)
  return time.time() - start


def read_episodes(logdir):
  """(learner_frames, success) arrays from LOGDIR/episodes.csv."""
  frames, success = [], []
  with open(os.path.join(logdir, 'episodes.csv')) as f:
    for row in csv.DictReader(f):
      frames.append(int(row['learner_frames']))
      success.append(float(row['episode_return']) >
                     -float(row['episode_length']))
  return np.asarray(frames), np.asarray(success, bool)


def binned(frames, success, total, bins):
  """Success rate per frame bin [k·total/bins, (k+1)·total/bins)."""
  edges = np.linspace(0, total, bins + 1)
  rates = []
  for lo, hi in zip(edges[:-1], edges[1:]):
    inside = (frames >= lo) & (frames < hi) if hi < total else frames >= lo
    rates.append(float(success[inside].mean()) if inside.any() else np.nan)
  return (edges[:-1] + edges[1:]) / 2, np.asarray(rates)


def evaluate_policy(policy_dir, env_name, arg, episodes, seed):
  """Success rate of the SavedModel on episodes with goals chosen here."""
  policy = tf.saved_model.load(policy_dir)
  if env_name == 'bit_flipping':
    env = bit_flipping.make_bit_flipping(num_bits=arg, seed=seed + 1)
  else:
    env = goal_gridworld.make_goal_gridworld(size=arg, seed=seed + 1)
  chooser = np.random.default_rng(seed)
  goal_spec = env.observation_spec()['desired_goal']
  successes = 0
  for _ in range(episodes):
    if env_name == 'bit_flipping':
      chosen = chooser.integers(2, size=goal_spec.shape).astype(np.float32)
    else:
      free = np.argwhere(~env.walls)
      chosen = free[chooser.integers(len(free))].astype(np.int32)
    step = env.reset_with_goal(chosen)
    state = policy.initial_state(1)
    prev_action, prev_reward, first = 0, 0.0, True
    while True:
      out = policy.step(
          observation=step.observation['observation'][None],
          prev_action=np.int32([prev_action]),
          prev_reward=np.float32([prev_reward]), first=np.array([first]),
          task_id=np.int32([0]), state=state)
      logits = out['logits'].numpy()[0]
      probs = np.exp(logits - logits.max())
      action = int(chooser.choice(len(probs), p=probs / probs.sum()))
      state, first = out['state'], False
      step = env.step(action)
      prev_action, prev_reward = action, float(step.reward)
      if step.last():
        successes += int(step.discount == 0.0)
        break
  return successes / episodes


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--env', choices=sorted(CONFIGS), default='bit_flipping')
  parser.add_argument('--arg', type=int, default=None,
                      help='num_bits (bit_flipping) or size (goal_gridworld)')
  parser.add_argument('--frames', type=int, default=800_000)
  parser.add_argument('--bins', type=int, default=16)
  parser.add_argument('--eval_episodes', type=int, default=200)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--results', default=os.path.join(ROOT, 'benchmarks',
                                                        'results'))
  parser.add_argument('--skip_training', action='store_true',
                      help='only analyse existing run directories')
  parser.add_argument('override', nargs='*',
                      help='extra --config.x=y flags for both arms')
  args = parser.parse_args()
  arg = args.arg or (15 if args.env == 'bit_flipping' else 11)
  name = f'{args.env}_{arg}_{args.frames}'
  out_dir = os.path.join(args.results, name)
  os.makedirs(out_dir, exist_ok=True)
  config = f'{CONFIGS[args.env]}:{arg}'
  extra = [f'--config.seed={args.seed}'] + args.override
  summary = dict(env=args.env, arg=arg, frames=args.frames, seed=args.seed,
                 config=config, overrides=extra, arms={})
  plt.figure(figsize=(7, 4))
  for arm, probability in ARMS:
    logdir = os.path.join(out_dir, arm)
    if not args.skip_training:
      if os.path.exists(logdir):
        shutil.rmtree(logdir)
      wall = train(logdir, config, args.frames, probability, extra)
    else:
      wall = float('nan')
    frames, success = read_episodes(logdir)
    centres, rates = binned(frames, success, args.frames, args.bins)
    last = frames >= 0.9 * args.frames
    final = float(success[last].mean()) if last.any() else float('nan')
    evaluation = evaluate_policy(os.path.join(logdir, 'policy'), args.env,
                                 arg, args.eval_episodes, args.seed + 100)
    summary['arms'][arm] = dict(
        relabel_probability=probability, wall_secs=round(wall, 1),
        episodes=int(len(success)), final_success_rate=final,
        final_window_episodes=int(last.sum()),
        success_rate_by_bin=[None if np.isnan(r) else round(r, 4)
                             for r in rates],
        bin_centres=centres.tolist(),
        savedmodel_success_rate_chosen_goals=evaluation)
    print(f'{arm:7s} p={probability}: success over the last 10% of frames '
          f'{final:.3f} ({int(last.sum())} episodes); SavedModel on '
          f'{args.eval_episodes} chosen goals {evaluation:.3f}; '
          f'wall {wall:.0f} s', flush=True)
    print('        by frame bin: ' + ' '.join(
        f'{r:.2f}' for r in rates), flush=True)
    plt.plot(centres, rates, marker='o', label=f'{arm} (p={probability})')
  her_rate = summary['arms']['her']['final_success_rate']
  base_rate = summary['arms']['no_her']['final_success_rate']
  if base_rate:
    ratio = her_rate / base_rate
  else:
    ratio = float('inf') if her_rate else float('nan')  # x/0 or 0/0
  summary['ratio_her_over_no_her'] = ratio
  plt.xlabel('frames (new agent steps consumed by the learner)')
  plt.ylabel('episode success rate')
  plt.title(f'{args.env} ({arg}): IMPALA + replay, HER vs no HER')
  plt.ylim(-0.02, 1.02)
  plt.grid(alpha=0.3)
  plt.legend()
  png = os.path.join(out_dir, 'her_vs_no_her.png')
  plt.savefig(png, dpi=100, bbox_inches='tight')
  with open(os.path.join(out_dir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(f'HER/no-HER success ratio (last 10% of frames): '
        f'{summary["ratio_her_over_no_her"]:.2f}; plot {png}', flush=True)


if __name__ == '__main__':
  main()
