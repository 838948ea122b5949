"""launch/monitoring.py: per-game episode log, HNS summaries, learning curve."""

import csv
import os

import numpy as np
import tensorflow as tf

from agent import popart
from envs import scores
from launch import monitoring


def _record(task, episode_return, actor=0):
  return dict(actor_id=actor, task_id=task, episode_return=episode_return,
              episode_length=10, episode_frames=40)


class EpisodeLogTest(tf.test.TestCase):

  def test_per_game_means_hns_and_summaries(self):
    logdir = self.get_temp_dir()
    games = ['pong', 'breakout', 'seaquest']
    writer = tf.summary.create_file_writer(os.path.join(logdir, 'tb'))
    with writer.as_default():
      log = monitoring.EpisodeLog(logdir, games, window=2)
      log.add([_record(0, -21.0), _record(0, -19.0), _record(0, -17.0),
               _record(1, 10.0)], learner_frames=1000)
      self.assertIsNone(log.hns_summary())  # seaquest has no episode yet
      self.assertIn('seaquest n/a', log.per_game_line())
      log.add([_record(2, 200.0, actor=1)], learner_frames=2000)
      monitoring.write_popart(popart.PopArtState(
          np.array([0.5, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]),
          np.ones(3)), games, 2000)
      log.close()
    writer.flush()
    means = log.game_means()
    self.assertEqual(means['pong'][0], -18.0)  # window 2: -19, -17
    self.assertEqual(means['pong'][2], 2)
    want = [scores.human_normalized_score('pong', -18.0),
            scores.human_normalized_score('breakout', 10.0),
            scores.human_normalized_score('seaquest', 200.0)]
    self.assertAllClose([means[g][1] for g in games], want)
    mean_hns, median_hns = log.hns_summary()
    self.assertAllClose(mean_hns, np.mean(want))
    self.assertAllClose(median_hns, np.median(want))
    line = log.per_game_line()
    self.assertIn('pong -18.0 (HNS', line)
    self.assertIn(f'median HNS {np.median(want):.3f}', line)
    with open(log.path, newline='') as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([r['game'] for r in rows],
                     ['pong'] * 3 + ['breakout', 'seaquest'])
    # TensorBoard got the per-game and PopArt scalars.
    tags = set()
    for name in tf.io.gfile.listdir(os.path.join(logdir, 'tb')):
      for event in tf.compat.v1.train.summary_iterator(
          os.path.join(logdir, 'tb', name)):
        tags.update(v.tag for v in event.summary.value)
    for tag in ('episode/pong/return', 'episode/breakout/hns',
                'episode/mean_hns', 'episode/median_hns',
                'popart/seaquest/mu', 'popart/pong/sigma'):
      self.assertIn(tag, tags)

  def test_resumed_log_starts_from_the_csv_window(self):
    logdir = os.path.join(self.get_temp_dir(), 'resume')
    os.makedirs(logdir)
    log = monitoring.EpisodeLog(logdir, ['pong', 'breakout'], window=2)
    log.add([_record(0, -21.0), _record(0, -19.0), _record(0, -17.0),
             _record(1, 3.0)], learner_frames=100)
    log.close()
    with open(os.path.join(logdir, 'episodes.csv'), 'a') as f:
      f.write('123.0,200,0,0,pong,-1')  # a torn row of a killed run
    resumed = monitoring.EpisodeLog(logdir, ['pong', 'breakout'], window=2)
    self.assertEqual(list(resumed.recent_by_task[0]), [-19.0, -17.0])
    self.assertEqual(list(resumed.recent_by_task[1]), [3.0])
    self.assertEqual(list(resumed.recent_returns), [-17.0, 3.0])
    resumed.close()

  def test_dropped_records_are_reported(self):
    logdir = os.path.join(self.get_temp_dir(), 'dropped')
    os.makedirs(logdir)
    log = monitoring.EpisodeLog(logdir, ['catch'])
    with self.assertLogs(level='WARNING') as logs:
      log.count_dropped(7, learner_frames=10)
    self.assertIn('7 episode records were dropped', logs.output[0])
    self.assertEqual(log.dropped_records, 7)
    log.close()

  def test_non_atari_game_has_no_hns(self):
    log = monitoring.EpisodeLog(self.get_temp_dir(), ['catch'])
    log.add([_record(0, 1.0)], learner_frames=10)
    self.assertEqual(log.game_means(), {'catch': (1.0, None, 1)})
    self.assertIsNone(log.hns_summary())
    self.assertEqual(log.per_game_line(), 'catch 1.0 (1 ep)')
    log.close()

  def test_learning_curve_has_a_panel_per_game(self):
    logdir = self.get_temp_dir()
    log = monitoring.EpisodeLog(logdir, ['pong', 'breakout'])
    log.add([_record(i % 2, float(i)) for i in range(20)], learner_frames=5)
    log.close()
    png = monitoring.plot_learning_curve(log.path,
                                         os.path.join(logdir, 'curve.png'))
    self.assertEqual(png, os.path.join(logdir, 'curve.png'))
    self.assertGreater(os.path.getsize(png), 1000)
    with open(png, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')


if __name__ == '__main__':
  tf.test.main()
