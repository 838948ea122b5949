r"""Distral on the multi-task grid world: variants, baselines and transfer.

Runs the real `launch.train` (configs/distral_gridworld.py, one process per
run, one after the other: never two at once on a shared machine) for

  KL+ent_2col, KL_2col, KL+ent_1col   Distral (Teh et al. 2017, SPEC §6)
  shared                              one shared policy, Distral off (task
                                      one-hot input; the paper's multitask
                                      baseline)
  experts                             one network per task: K single-task
                                      runs of frames/K each

with --seeds seeds each, all at equal frames: every arm consumes --frames
agent steps in total, i.e. frames/K per task (experts: frames/K each). Then
the transfer runs on held-out goals (env.goal_set='held_out'), KL+ent_2col for
--transfer_frames: from scratch vs with π0 warm-started from the seed's
trained KL+ent_2col run (config.distral.prior_logdir; π0 is then both the
starting task policy, since f_i = 0 at the start, and the prior the KL pulls
toward).

Measure: success rate = mean episode return (reward 1 on reaching the goal,
0 on truncation), per task, averaged over tasks; binned by frames PER TASK
(learner frames / number of tasks of the run). The table gives the mean ± std
over seeds of the success rate in the last --last_fraction of the frames and
the frames per task at which the task-averaged success first reaches 0.8.
Frames = agent steps (no frame skip). Runs whose logdir already holds a
finished run are reused (the script resumes after an interruption).

  python benchmarks/distral_comparison.py                      # ~1 h on 2 cores
  python benchmarks/distral_comparison.py --seeds=1 --frames=100000 \
      --root=/tmp/distral_quick
Writes ROOT/distral_comparison.png, ROOT/distral_transfer.png and
ROOT/summary.md (the tables).
"""

import collections
import csv
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

_ROOT = flags.DEFINE_string('root', 'logs/distral_comparison',
                            'Directory of the runs, plots and summary.')
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per arm.', lower_bound=1)
_FRAMES = flags.DEFINE_integer('frames', 200_000, 'Agent steps per arm, all '
                               'tasks together.', lower_bound=1000)
_TRANSFER_FRAMES = flags.DEFINE_integer(
    'transfer_frames', 100_000, 'Agent steps of each transfer run (0: skip).',
    lower_bound=0)
_NUM_TASKS = flags.DEFINE_integer('num_tasks', 4, 'Training goals (tasks).',
                                  lower_bound=2)
_ARMS = flags.DEFINE_list(
    'arms', ['KL+ent_2col', 'KL_2col', 'KL+ent_1col', 'shared', 'experts'],
    'Arms to run.')
_LAST_FRACTION = flags.DEFINE_float('last_fraction', 0.2, 'Share of the frames '
                                    'at the end averaged in the table.')
_BINS = flags.DEFINE_integer('bins', 10, 'Frame bins of the curves.')
_TIMEOUT = flags.DEFINE_integer('run_timeout_secs', 1800, 'Per-run timeout.')
_KL_COST = flags.DEFINE_float('kl_cost', None, 'c_KL of the Distral arms '
                              '(default: the config\'s 0.01).')
_ENTROPY_COST = flags.DEFINE_float(
    'entropy_cost', None, "c_ent of the 'KL+ent' arms (default: the "
    "config's, = c_KL).")

CONFIG = 'configs/distral_gridworld.py'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Curve = Tuple[np.ndarray, np.ndarray]  # (frames per task, success) per bin


def _run(logdir: str, config_arg: str, overrides: Dict[str, object]) -> None:
  """One launch.train run into `logdir`; reused if it already finished."""
  if os.path.exists(os.path.join(logdir, 'learning_curve.png')):
    print(f'  reuse {logdir}', flush=True)
    return
  command = [sys.executable, '-m', 'launch.train',
             f'--config={CONFIG}:{config_arg}' if config_arg else
             f'--config={CONFIG}', f'--logdir={logdir}']
  command += [f'--config.{k}={v}' for k, v in overrides.items()]
  start = time.time()
  print('  ' + ' '.join(command[2:]), flush=True)
  os.makedirs(logdir, exist_ok=True)
  with open(os.path.join(os.path.dirname(logdir),
                         os.path.basename(logdir) + '.log'), 'w') as log:
    result = subprocess.run(command, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, timeout=_TIMEOUT.value,
                            check=False)
  if result.returncode:
    raise RuntimeError(f'{logdir}: launch.train exited {result.returncode} '
                       f'(see {logdir}.log)')
  print(f'  done in {time.time() - start:.0f} s', flush=True)


def _cost_overrides(variant: str) -> Dict[str, float]:
  """--kl_cost/--entropy_cost as config overrides of a Distral arm."""
  overrides = {}
  if _KL_COST.value is not None:
    overrides['distral.kl_cost'] = _KL_COST.value
  if _ENTROPY_COST.value is not None and variant.startswith('KL+ent'):
    overrides['distral.entropy_cost'] = _ENTROPY_COST.value
  return overrides


def _episodes(logdir: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """Per task: (learner frames, returns) of the run's episodes.csv."""
  series = collections.defaultdict(lambda: ([], []))
  with open(os.path.join(logdir, 'episodes.csv')) as f:
    for row in csv.DictReader(f):
      frames, returns = series[row['game']]
      frames.append(int(row['learner_frames']))
      returns.append(float(row['episode_return']))
  return {k: (np.array(f), np.array(r)) for k, (f, r) in series.items()}


def _task_curves(logdir: str, edges: np.ndarray) -> Dict[str, np.ndarray]:
  """Per task: mean return in each frames-per-task bin (NaN if empty)."""
  tasks = _episodes(logdir)
  curves = {}
  for task, (frames, returns) in tasks.items():
    per_task = frames / len(tasks)
    index = np.clip(np.digitize(per_task, edges) - 1, 0, len(edges) - 2)
    curves[task] = np.array([returns[index == b].mean() if np.any(index == b)
                             else np.nan for b in range(len(edges) - 1)])
  return curves


def _seed_curve(logdirs: Sequence[str], edges: np.ndarray) -> np.ndarray:
  """Task-averaged success per bin of one seed (one run, or K experts)."""
  curves = {}
  for logdir in logdirs:
    curves.update(_task_curves(logdir, edges))
  stacked = np.stack(list(curves.values()))  # [tasks, bins]
  return np.nanmean(stacked, axis=0)


def _summary(name: str, curves: List[np.ndarray], centers: np.ndarray,
             last_fraction: float) -> Dict[str, object]:
  curves = np.stack(curves)  # [seeds, bins]
  last = centers >= centers[-1] * (1.0 - last_fraction) - 1e-9
  final = np.nanmean(curves[:, last], axis=1)  # [seeds]
  reach = []
  for curve in curves:
    hit = np.nonzero(curve >= 0.8)[0]
    reach.append(centers[hit[0]] if len(hit) else np.nan)
  return dict(arm=name, final_mean=float(final.mean()),
              final_std=float(final.std()), finals=final.tolist(),
              reach=reach)


def _plot(results, centers, path, title):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name, curves in results.items():
    curves = np.stack(curves)
    with np.errstate(all='ignore'):  # bins without episodes are NaN
      mean, std = np.nanmean(curves, 0), np.nanstd(curves, 0)
    ok = np.isfinite(mean)  # episodes arrive in drains: skip empty bins
    ax.plot(centers[ok], mean[ok], marker='.', label=f'{name} '
            f'({len(curves)} seeds)')
    ax.fill_between(centers[ok], (mean - std)[ok], (mean + std)[ok],
                    alpha=0.2)
  ax.set_xlabel('frames per task (agent steps)')
  ax.set_ylabel('success rate (mean return)')
  ax.set_ylim(-0.02, 1.02)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc='lower right', fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _table(rows, last_fraction) -> str:
  lines = [f'| arm | success, last {last_fraction:.0%} of frames (mean ± std '
           'over seeds) | per seed | frames per task to 0.8 (per seed) |',
           '|---|---|---|---|']
  for r in rows:
    reach = ', '.join('never' if np.isnan(x) else f'{x:,.0f}'
                      for x in r['reach'])
    finals = ', '.join(f'{x:.3f}' for x in r['finals'])
    lines.append(f"| {r['arm']} | {r['final_mean']:.3f} ± {r['final_std']:.3f}"
                 f' | {finals} | {reach} |')
  return '\n'.join(lines)


def main(argv):
  del argv
  root = os.path.abspath(_ROOT.value)
  os.makedirs(root, exist_ok=True)
  k, frames = _NUM_TASKS.value, _FRAMES.value
  per_task = frames // k
  edges = np.linspace(0, per_task, _BINS.value + 1)
  centers = 0.5 * (edges[1:] + edges[:-1])
  results = collections.OrderedDict()
  started = time.time()
  for arm in _ARMS.value:
    print(f'arm {arm}', flush=True)
    results[arm] = []
    for seed in range(_SEEDS.value):
      base = dict(seed=seed, total_frames=frames)
      base['env.num_tasks'] = k
      if arm == 'experts':
        logdirs = []
        for task in range(k):
          logdir = os.path.join(root, f'experts_task{task}_seed{seed}')
          overrides = dict(base, total_frames=per_task)
          overrides['env.num_tasks'] = 1
          overrides['env.task_offset'] = task
          _run(logdir, 'none', overrides)
          logdirs.append(logdir)
      else:
        logdir = os.path.join(root, f'{arm}_seed{seed}')
        overrides = dict(base)
        if arm != 'shared':
          overrides.update(_cost_overrides(arm))
        _run(logdir, 'none' if arm == 'shared' else arm, overrides)
        logdirs = [logdir]
      results[arm].append(_seed_curve(logdirs, edges))
  rows = [_summary(arm, curves, centers, _LAST_FRACTION.value)
          for arm, curves in results.items()]
  plot = _plot(results, centers, os.path.join(root, 'distral_comparison.png'),
               f'Distral grid world, {k} tasks, {frames:,} frames per arm')
  report = [f'# Distral grid-world comparison\n',
            f'{k} tasks (training goals), {frames:,} agent steps per arm '
            f'({per_task:,} per task), {_SEEDS.value} seeds; plot: {plot}\n',
            _table(rows, _LAST_FRACTION.value)]

  if _TRANSFER_FRAMES.value and 'KL+ent_2col' in results:
    print('transfer to held-out goals', flush=True)
    transfer = collections.OrderedDict([('from scratch', []),
                                        ('π0 from training', [])])
    t_frames = _TRANSFER_FRAMES.value
    t_edges = np.linspace(0, t_frames // k, _BINS.value + 1)
    t_centers = 0.5 * (t_edges[1:] + t_edges[:-1])
    for seed in range(_SEEDS.value):
      base = dict(seed=seed, total_frames=t_frames)
      base['env.num_tasks'] = min(k, 5)
      base['env.goal_set'] = 'held_out'
      scratch = os.path.join(root, f'transfer_scratch_seed{seed}')
      _run(scratch, 'KL+ent_2col', base)
      prior = os.path.join(root, f'transfer_prior_seed{seed}')
      overrides = dict(base)
      overrides['distral.prior_logdir'] = os.path.join(
          root, f'KL+ent_2col_seed{seed}')
      _run(prior, 'KL+ent_2col', overrides)
      transfer['from scratch'].append(_seed_curve([scratch], t_edges))
      transfer['π0 from training'].append(_seed_curve([prior], t_edges))
    t_rows = [_summary(arm, curves, t_centers, _LAST_FRACTION.value)
              for arm, curves in transfer.items()]
    t_plot = _plot(transfer, t_centers,
                   os.path.join(root, 'distral_transfer.png'),
                   f'Transfer to held-out goals, {t_frames:,} frames')
    report += [f'\n## Transfer to held-out goals\n',
               f'KL+ent_2col, {t_frames:,} agent steps, {_SEEDS.value} seeds; '
               f'plot: {t_plot}\n', _table(t_rows, _LAST_FRACTION.value)]
  text = '\n'.join(report) + '\n'
  with open(os.path.join(root, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)
  print(f'total {time.time() - started:.0f} s', flush=True)


if __name__ == '__main__':
  app.run(main)
