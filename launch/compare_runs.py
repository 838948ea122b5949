r"""Compares training runs side by side at the same learner frames.

Reads each run's LOGDIR/episodes.csv (launch/monitoring.py), keeps episodes
up to the frames every run reached (the smallest final learner frame count,
or --max_frames), prints per game the mean return and human-normalised score
(HNS) of each run's last --last episodes before that point and the mean and
median HNS over games, and plots a panel per game (moving average of episode
return vs learner frames, one line per run) plus one panel of mean HNS.

  python -m launch.compare_runs \
      --runs=logs/mt_popart,logs/mt_no_popart --labels="PopArt,no PopArt" \
      --png=logs/popart_vs_no_popart.png

Units: learner frames are raw Atari frames consumed by the learner (agent
steps × frame skip), the x axis of every panel.
"""

import collections
import csv
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

from envs import scores

_RUNS = flags.DEFINE_list('runs', None, 'Run directories (LOGDIRs) to compare.')
_LABELS = flags.DEFINE_list('labels', None,
                            'One label per run (default: directory names).')
# Not --output: launch.evaluate defines that flag, and both modules may be
# imported by one process (the test suite).
_PNG = flags.DEFINE_string('png', None, 'PNG path (a JSON is written beside '
                           'it); default: compare_runs.png in the first run '
                           'directory.')
_MAX_FRAMES = flags.DEFINE_integer(
    'max_frames', None, 'Compare up to these learner frames (default: the '
    'frames every run reached).', lower_bound=1)
_LAST = flags.DEFINE_integer('last', 100, 'Episodes per game averaged for the '
                             'table.', lower_bound=1)
_WINDOW = flags.DEFINE_integer('window', 20, 'Moving-average window of the '
                               'plot (episodes).', lower_bound=1)
Episodes = Dict[str, Tuple[np.ndarray, np.ndarray]]  # game -> (frames, returns)


def read_episodes(logdir: str) -> Episodes:
  """Per game: learner frames (int64 [N]) and episode returns (float64 [N]).

  Raises:
    ValueError: if LOGDIR/episodes.csv does not exist or has no episode.
  """
  path = os.path.join(logdir, 'episodes.csv')
  if not os.path.exists(path):
    raise ValueError(f'--runs: {logdir} has no episodes.csv (not a run directory?)')
  series = collections.OrderedDict()
  with open(path, newline='') as f:
    for row in csv.DictReader(f):
      try:  # a row torn by a killed process is skipped
        frame, value = int(row['learner_frames']), float(row['episode_return'])
      except (TypeError, ValueError):
        continue
      frames, returns = series.setdefault(row['game'], ([], []))
      frames.append(frame)
      returns.append(value)
  if not series:
    raise ValueError(f'--runs: {path} holds no episode yet.')
  return collections.OrderedDict(
      (g, (np.asarray(f, np.int64), np.asarray(r, np.float64)))
      for g, (f, r) in series.items())


def _hns(game: str, value: float) -> Optional[float]:
  try:
    return scores.human_normalized_score(game, value)
  except ValueError:
    return None


def common_frames(runs: Sequence[Episodes]) -> int:
  """The learner frames every run reached (min over runs of their last)."""
  return int(min(max(f[-1] for f, _ in run.values()) for run in runs))


def summarize(run: Episodes, max_frames: int, last: int) -> Dict:
  """Per game mean return/HNS of the `last` episodes at <= max_frames.

  Returns:
    dict(games={game: dict(mean_return, hns, episodes)}, mean_hns,
    median_hns); HNS entries are None for non-Atari games, the summaries None
    unless every game has an HNS.
  """
  games = {}
  for game, (frames, returns) in run.items():
    kept = returns[frames <= max_frames][-last:]
    if not len(kept):
      games[game] = dict(mean_return=None, hns=None, episodes=0)
      continue
    mean = float(kept.mean())
    games[game] = dict(mean_return=mean, hns=_hns(game, mean),
                       episodes=int(len(kept)))
  values = [g['hns'] for g in games.values()]
  ok = all(v is not None for v in values) and values
  return dict(games=games, mean_hns=float(np.mean(values)) if ok else None,
              median_hns=float(np.median(values)) if ok else None)


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
  """Trailing mean of up to `window` values at every point (same length)."""
  csum = np.concatenate([[0.0], np.cumsum(x)])
  idx = np.arange(1, len(x) + 1)
  start = np.maximum(0, idx - window)
  return (csum[idx] - csum[start]) / (idx - start)


def _mean_hns_curve(run: Episodes, max_frames: int, points: int = 50):
  """Mean over games of the HNS of each game's last 20 episodes, vs frames."""
  grid = np.linspace(0, max_frames, points + 1)[1:]
  curve = []
  for x in grid:
    values = []
    for game, (frames, returns) in run.items():
      kept = returns[frames <= x][-20:]
      hns = _hns(game, kept.mean()) if len(kept) else None
      if hns is None:
        break
      values.append(hns)
    curve.append(np.mean(values) if len(values) == len(run) else np.nan)
  return grid, np.asarray(curve)


def plot(runs: Sequence[Episodes], labels: Sequence[str], max_frames: int,
         path: str, window: int) -> str:
  """Writes the comparison PNG: a panel per game and a mean-HNS panel."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  games = list(collections.OrderedDict.fromkeys(g for r in runs for g in r))
  panels = len(games) + 1
  cols = min(3, panels)
  rows = -(-panels // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows),
                           squeeze=False)
  for ax, game in zip(axes.flat, games):
    for run, label in zip(runs, labels):
      if game not in run:
        continue
      frames, returns = run[game]
      keep = frames <= max_frames
      frames, returns = frames[keep], returns[keep]
      if not len(returns):
        continue
      ax.plot(frames, _smooth(returns, window), '-', marker='.',
              markersize=3, label=label)
    ax.set_title(game)
    ax.set_xlabel('learner frames (raw)')
    ax.set_ylabel(f'return (mean of {window} episodes)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
  ax = axes.flat[len(games)]
  for run, label in zip(runs, labels):
    grid, curve = _mean_hns_curve(run, max_frames)
    ax.plot(grid, curve, label=label)
  ax.set_title('mean HNS over games (last 20 episodes each)')
  ax.set_xlabel('learner frames (raw)')
  ax.grid(alpha=0.3)
  ax.legend(fontsize='small')
  for ax in list(axes.flat)[panels:]:
    ax.axis('off')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def table(summaries: Sequence[Dict], labels: Sequence[str]) -> List[str]:
  """Rows: game | per run 'return (HNS)'; then mean and median HNS."""
  games = list(collections.OrderedDict.fromkeys(
      g for s in summaries for g in s['games']))
  width = max(12, *(len(label) for label in labels))
  lines = ['game            ' + ''.join(f'{label:>{width + 12}s}'
                                        for label in labels)]
  for game in games:
    cells = []
    for s in summaries:
      g = s['games'].get(game)
      if not g or g['mean_return'] is None:
        cells.append('n/a')
      else:
        hns = f' (HNS {g["hns"]:.3f})' if g['hns'] is not None else ''
        cells.append(f'{g["mean_return"]:.1f}{hns}')
    lines.append(f'{game:16s}' + ''.join(f'{c:>{width + 12}s}' for c in cells))
  for key in ('mean_hns', 'median_hns'):
    cells = [f'{s[key]:.3f}' if s[key] is not None else 'n/a' for s in summaries]
    lines.append(f'{key:16s}' + ''.join(f'{c:>{width + 12}s}' for c in cells))
  return lines


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  dirs = _RUNS.value
  labels = _LABELS.value or [os.path.basename(d.rstrip('/')) for d in dirs]
  if len(labels) != len(dirs):
    raise app.UsageError(f'--labels has {len(labels)} entries for '
                         f'{len(dirs)} --runs.')
  try:
    runs = [read_episodes(d) for d in dirs]
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  max_frames = _MAX_FRAMES.value or common_frames(runs)
  summaries = [summarize(r, max_frames, _LAST.value) for r in runs]
  print(f'At {max_frames:,} learner frames (raw), last {_LAST.value} episodes '
        'per game:')
  print('\n'.join(table(summaries, labels)))
  output = _PNG.value or os.path.join(dirs[0], 'compare_runs.png')
  plot(runs, labels, max_frames, output, _WINDOW.value)
  with open(os.path.splitext(output)[0] + '.json', 'w') as f:
    json.dump(dict(max_frames=max_frames, runs=dirs, labels=labels,
                   summaries=summaries), f, indent=2)
  print(f'Plot: {output}')


if __name__ == '__main__':
  # Here, not at import: benchmarks import this module's functions.
  flags.mark_flags_as_required(['runs'])
  app.run(main)
