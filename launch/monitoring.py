"""Observability of a training run: progress line, TensorBoard, CSV, plot, watchdog.

Files under the logdir:
  episodes.csv      one row per finished actor episode (appended across resumes)
  tensorboard/      tf.summary scalars (losses, entropy, learning rate, frames/s,
                    episode return and length; per game: episode/<game>/return
                    and /hns, popart/<game>/mu and /sigma; episode/mean_hns and
                    episode/median_hns over games), step = learner frames
  learning_curve.png  episode return vs learner frames (a panel per game),
                    written at the end
Units: `frames` are raw environment frames (agent steps × frame_skip).
"""

import collections
import csv
import os
import re
import threading
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from envs import scores

CSV_FIELDS = ('wall_time', 'learner_frames', 'actor_id', 'task_id', 'game',
              'episode_return', 'episode_length', 'episode_frames')


def _end_torn_row(path: str) -> None:
  """Terminates a last row cut short by a killed process (no newline)."""
  if os.path.exists(path) and os.path.getsize(path):
    with open(path, 'rb+') as f:
      f.seek(-1, os.SEEK_END)
      if f.read(1) != b'\n':
        f.write(b'\n')


class EpisodeLog:
  """Appends episode records to episodes.csv and TensorBoard."""

  def __init__(self, logdir: str, games: Sequence[str], window: int = 100,
               local_dir: Optional[str] = None):
    """Opens LOGDIR/episodes.csv for appending (a resumed run continues it).

    Args:
      logdir: run directory, local or on another TensorFlow filesystem.
      games: game names by task id.
      window: episodes in the recent-return windows.
      local_dir: for a logdir that is not local ('gs://…'), where the
        working copy is appended to (an object store cannot append a row
        cheaply); `sync` copies it to the logdir. Ignored for a local logdir.
    """
    self._remote = None
    if '://' in logdir:
      if local_dir is None:
        raise ValueError(f'EpisodeLog needs a local_dir for {logdir!r}.')
      self._remote = os.path.join(logdir, 'episodes.csv')
      self._path = os.path.join(local_dir, 'episodes.csv')
      os.makedirs(local_dir, exist_ok=True)
      if tf.io.gfile.exists(self._remote):  # resuming: continue its rows
        tf.io.gfile.copy(self._remote, self._path, overwrite=True)
      elif os.path.exists(self._path):
        os.remove(self._path)  # a stale copy of another run
    else:
      self._path = os.path.join(logdir, 'episodes.csv')
    new = not os.path.exists(self._path)
    _end_torn_row(self._path)
    self._file = open(self._path, 'a', newline='')
    self._csv = csv.DictWriter(self._file, CSV_FIELDS)
    if new:
      self._csv.writeheader()
      self._file.flush()
    self._games = list(games)
    self.recent_returns = collections.deque(maxlen=window)
    # Per task: the last `window` returns of that game.
    self.recent_by_task = {i: collections.deque(maxlen=window)
                           for i in range(len(self._games))}
    self.total_episodes = 0
    self.dropped_records = 0  # evicted unread by the episodes table
    if not new:
      self._load_recent()

  def _load_recent(self) -> None:
    """A resumed run's recent window starts from the CSV's last episodes."""
    with open(self._path, newline='') as f:
      rows = collections.deque(csv.DictReader(f),
                               maxlen=self.recent_returns.maxlen * max(
                                   1, len(self._games)))
    for row in rows:
      if row.get(CSV_FIELDS[-1]) is None:
        continue  # a torn last row of a killed run
      try:
        value, task = float(row['episode_return']), int(row['task_id'])
      except (KeyError, TypeError, ValueError):
        continue
      self.recent_returns.append(value)
      if task in self.recent_by_task:
        self.recent_by_task[task].append(value)

  def count_dropped(self, dropped_total: int, learner_frames: int) -> None:
    """Records the episodes table's cumulative count of evicted records.

    Warns when it grows: those episodes are missing from episodes.csv and
    the returns shown (TensorBoard 'episode/dropped_records').
    """
    if dropped_total > self.dropped_records:
      logging.warning(
          '%d episode records were dropped by the full Reverb episodes table '
          '(%d in total since the server started): they are missing from %s '
          'and from the mean returns shown.',
          dropped_total - self.dropped_records, dropped_total, self._path)
    if dropped_total != self.dropped_records:
      tf.summary.scalar('episode/dropped_records', dropped_total,
                        learner_frames)
    self.dropped_records = dropped_total

  @property
  def path(self) -> str:
    """The local file rows are appended to (the logdir's, or a copy)."""
    return self._path

  def sync(self) -> None:
    """Copies the working copy to a non-local logdir (no-op when local)."""
    if self._remote is not None:
      self._file.flush()
      tf.io.gfile.copy(self._path, self._remote, overwrite=True)

  def add(self, records: Sequence[Dict], learner_frames: int) -> None:
    """Appends episode records (replay.episodes.drain_episodes) to the CSV and
    TensorBoard at step `learner_frames` (raw frames consumed by the learner).

    The CSV gets every episode; TensorBoard gets, per call (one drain), the
    mean return and length of the episodes in it ('episode/return',
    'episode/length_agent_steps'), their number ('episode/count') and the
    mean return and HNS per game. Not one scalar per episode: TF 2.15's
    summary writer keeps ~1 KB of memory per scalar written (measured: 10,000
    `tf.summary.scalar` calls, +8 to +11 MB RSS however step and value are
    given, flushed or not), which on Catch's ~200 episodes/s grew the learner
    by ~20 MB a minute (issue 11 item 10).
    """
    now = time.time()
    by_task = collections.defaultdict(list)
    lengths = []
    for r in records:
      task = int(r['task_id'])
      row = dict(wall_time=f'{now:.1f}', learner_frames=learner_frames,
                 actor_id=int(r['actor_id']), task_id=task,
                 game=self._games[task] if task < len(self._games) else task,
                 episode_return=float(r['episode_return']),
                 episode_length=int(r['episode_length']),
                 episode_frames=int(r['episode_frames']))
      self._csv.writerow(row)
      self.recent_returns.append(row['episode_return'])
      lengths.append(row['episode_length'])
      if task in self.recent_by_task:
        self.recent_by_task[task].append(row['episode_return'])
        by_task[task].append(row['episode_return'])
    self.total_episodes += len(records)
    if not records:
      return
    self._file.flush()
    returns = [float(r['episode_return']) for r in records]
    tf.summary.scalar('episode/return', float(np.mean(returns)), learner_frames)
    tf.summary.scalar('episode/length_agent_steps', float(np.mean(lengths)),
                      learner_frames)
    tf.summary.scalar('episode/count', len(records), learner_frames)
    for task, task_returns in by_task.items():
      game, mean = self._games[task], float(np.mean(task_returns))
      tf.summary.scalar(f'episode/{game}/return', mean, learner_frames)
      hns = _hns(game, mean)
      if hns is not None:
        tf.summary.scalar(f'episode/{game}/hns', hns, learner_frames)
    summary = self.hns_summary()
    if summary is not None and len(self._games) > 1:
      tf.summary.scalar('episode/mean_hns', summary[0], learner_frames)
      tf.summary.scalar('episode/median_hns', summary[1], learner_frames)

  def game_means(self) -> Dict[str, Tuple[float, Optional[float], int]]:
    """Per game with episodes: (mean recent return, its HNS or None, count)."""
    result = {}
    for task, returns in self.recent_by_task.items():
      if returns:
        mean = float(np.mean(returns))
        result[self._games[task]] = (mean, _hns(self._games[task], mean),
                                     len(returns))
    return result

  def hns_summary(self) -> Optional[Tuple[float, float]]:
    """(mean, median) over games of the HNS of each game's mean recent
    return; None until every game has an episode (or for non-Atari games)."""
    means = self.game_means()
    values = [hns for _, hns, _ in means.values() if hns is not None]
    if len(means) < len(self._games) or len(values) < len(self._games):
      return None
    return float(np.mean(values)), float(np.median(values))

  def per_game_line(self) -> str:
    """'pong -20.3 (HNS 0.02, 14 ep) | ... | mean HNS .., median HNS ..'."""
    parts = []
    means = self.game_means()
    for game in self._games:
      if game not in means:
        parts.append(f'{game} n/a')
        continue
      mean, hns, count = means[game]
      parts.append(f'{game} {mean:.1f} (' +
                   (f'HNS {hns:.3f}, ' if hns is not None else '') +
                   f'{count} ep)')
    summary = self.hns_summary()
    if summary is not None:
      parts.append(f'mean HNS {summary[0]:.3f}, median HNS {summary[1]:.3f}')
    return ' | '.join(parts)

  def mean_recent_return(self) -> float:
    """Mean return of the last `window` episodes (nan before the first)."""
    return float(np.mean(self.recent_returns)) if self.recent_returns else float('nan')

  def close(self) -> None:
    self._file.close()
    if self._remote is not None:
      tf.io.gfile.copy(self._path, self._remote, overwrite=True)


def _hns(game: str, score: float) -> Optional[float]:
  """Human-normalised score of an Atari-57 game, None for other games."""
  try:
    return scores.human_normalized_score(game, score)
  except ValueError:
    return None


def write_popart(statistics, games: Sequence[str], frames: int) -> None:
  """PopArt μ and σ of each game as 'popart/<game>/{mu,sigma}' at `frames`."""
  for i, game in enumerate(games):
    tf.summary.scalar(f'popart/{game}/mu', float(statistics.mu[i]), frames)
    tf.summary.scalar(f'popart/{game}/sigma', float(statistics.sigma[i]), frames)


class Progress:
  """Formats the periodic progress line and frames/s scalars."""

  def __init__(self, total_frames: int, start_frames: int, start_steps: int):
    self._total = total_frames
    self._last = (time.time(), start_frames, start_steps)

  def line(self, frames: int, learner_steps: int, mean_return: float,
           episodes: int, extra: str = '') -> str:
    """The progress line; rates are over the time since the previous call.

    Args:
      frames: raw frames consumed by the learner so far.
      learner_steps: learner steps so far.
      mean_return: mean return of the `episodes` most recent episodes.
      episodes: how many episodes that mean covers (0: none finished yet).
      extra: appended as is (e.g. live actors).
    """
    now = time.time()
    t0, f0, s0 = self._last
    dt = max(now - t0, 1e-6)
    fps, sps = (frames - f0) / dt, (learner_steps - s0) / dt
    self._last = (now, frames, learner_steps)
    tf.summary.scalar('throughput/frames_per_sec', fps, frames)
    tf.summary.scalar('throughput/learner_steps_per_sec', sps, frames)
    eta = (self._total - frames) / fps if fps > 0 else float('inf')
    return (f'frames {frames:,}/{self._total:,} ({100 * frames / self._total:.2f}%)'
            f' | {fps:,.0f} frames/s | {sps:.2f} learner steps/s'
            + (f' | return {mean_return:.2f} (last {episodes} episodes)'
               if episodes else ' | return n/a (no episode finished yet)')
            + f' | ETA {_duration(eta)}{extra}')


def _duration(seconds: float) -> str:
  if not np.isfinite(seconds):
    return '?'
  seconds = int(seconds)
  d, rem = divmod(seconds, 86400)
  h, rem = divmod(rem, 3600)
  m, s = divmod(rem, 60)
  return (f'{d}d ' if d else '') + f'{h:02d}:{m:02d}:{s:02d}'


def write_metrics(metrics: Dict[str, float], frames: int,
                  games: Sequence[str] = ()) -> None:
  """Learner metrics (losses, entropy, learning rate, ...) as TensorBoard
  scalars 'learner/<name>' at step `frames` (raw frames).

  Per-task metrics 'distral/task_<i>/<x>' are written as 'distral/<game>/<x>'
  with game = games[i] (Distral's KL(π_i‖π0), H(π_i), H(π0) per task).
  """
  for name, value in metrics.items():
    match = _TASK_METRIC.fullmatch(name)
    if match and int(match.group(1)) < len(games):
      if not np.isfinite(value):
        continue  # the task had no step in this batch
      tf.summary.scalar(f'distral/{games[int(match.group(1))]}/{match.group(2)}',
                        value, frames)
    else:
      tf.summary.scalar(f'learner/{name}', value, frames)


_TASK_METRIC = re.compile(r'distral/task_(\d+)/(.+)')


def write_distral_coefficients(alpha: float, beta: float, frames: int) -> None:
  """Distral's α and β as 'distral/alpha' and 'distral/beta' (constants)."""
  tf.summary.scalar('distral/alpha', alpha, frames)
  tf.summary.scalar('distral/beta', beta, frames)


def learner_summary(metrics: Dict[str, float]) -> str:
  """' | entropy H | grad_norm G | lag KL(μ‖π) L [| KL K]' of the latest step.

  The entropy of π (nats per step; ln A is uniform) and the pre-clip global
  gradient norm show a stuck run in its first minutes, the mean KL(μ‖π) of
  the batch the policy lag of the actors; under Distral the mean KL(π_i‖π0)
  too. Empty before the first step.
  """
  parts = []
  for key, label, fmt in (('entropy', 'entropy', '.3f'),
                          ('grad_norm', 'grad_norm', '.3g'),
                          ('behaviour_kl', 'KL(μ‖π)', '.2g'),
                          ('distral/kl', 'KL(π_i‖π0)', '.4f')):
    if key in metrics:
      parts.append(f'{label} {metrics[key]:{fmt}}')
  return ''.join(f' | {p}' for p in parts)


def plot_learning_curve(csv_path: str, png_path: str,
                        title: str = '', window: int = 50) -> Optional[str]:
  """Episode returns vs learner frames (raw and moving average) as a PNG.

  One panel per game of the CSV's `game` column (one panel for one game).
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  series = collections.OrderedDict()  # game -> ([frames], [returns])
  with open(csv_path, newline='') as f:
    for row in csv.DictReader(f):
      try:  # skip a row torn by a killed process
        frame, value = int(row['learner_frames']), float(row['episode_return'])
      except (TypeError, ValueError):
        continue
      frames, returns = series.setdefault(row.get('game') or '', ([], []))
      frames.append(frame)
      returns.append(value)
  if not series:
    logging.info('No episodes in %s yet: no learning curve written.', csv_path)
    return None
  cols = min(3, len(series))
  rows = -(-len(series) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(8 if cols == 1 else 5 * cols,
                                                4.5 if rows == 1 else 3.5 * rows),
                           squeeze=False)
  for ax, (game, (frames, returns)) in zip(axes.flat, series.items()):
    ax.plot(frames, returns, '.', alpha=0.25, label='episode return')
    k = min(window, len(returns))
    smooth = np.convolve(returns, np.ones(k) / k, mode='valid')
    ax.plot(frames[k - 1:], smooth, '-', label=f'mean of {k} episodes')
    ax.set_xlabel('learner frames (raw frames)')
    ax.set_ylabel('episode return')
    ax.set_title(game if len(series) > 1 else title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
  for ax in list(axes.flat)[len(series):]:
    ax.axis('off')
  if len(series) > 1:
    fig.suptitle(title)
  fig.tight_layout()
  with tf.io.gfile.GFile(png_path, 'wb') as f:  # any TF filesystem
    fig.savefig(f, format='png', dpi=100)
  plt.close(fig)
  return png_path


class StallWatchdog:
  """Reports a stalled input pipeline instead of hanging silently.

  A Reverb dataset whose server died (or whose actors all stopped) blocks
  forever inside `next()`. The learner calls `beat()` after every batch; a
  daemon thread logs an error every `stall_secs` without a beat, with what
  `describe()` knows (queue size, live actors).
  """

  def __init__(self, stall_secs: float, describe: Callable[[], str]):
    self._stall_secs = stall_secs
    self._describe = describe
    self._last_beat = time.time()
    self._stop = threading.Event()
    self.stalls = 0
    self._thread = threading.Thread(target=self._run, daemon=True,
                                    name='stall-watchdog')
    self._thread.start()

  def beat(self) -> None:
    """Records that a batch just arrived."""
    self._last_beat = time.time()

  def seconds_since_beat(self) -> float:
    """Seconds since the last batch."""
    return time.time() - self._last_beat

  def _run(self):
    while not self._stop.wait(min(self._stall_secs, 5.0)):
      idle = self.seconds_since_beat()
      if idle >= self._stall_secs * (self.stalls + 1):
        self.stalls += 1
        try:
          what = self._describe()
        except Exception as e:  # pylint: disable=broad-except
          what = f'(could not query the pipeline: {e})'
        logging.error('Input pipeline stalled: no batch for %.0f s. %s',
                      idle, what)
      elif idle < self._stall_secs:
        self.stalls = 0

  def stop(self):
    """Stops the watchdog thread (it is a daemon; this only ends its loop)."""
    self._stop.set()
