"""launch/compare_runs.py: runs compared at the frames all of them reached."""

import os

import numpy as np
import tensorflow as tf

from envs import scores
from launch import compare_runs
from launch import monitoring


def _write_run(logdir, returns_by_frames):
  """returns_by_frames: [(learner_frames, task_id, return)]."""
  os.makedirs(logdir, exist_ok=True)
  log = monitoring.EpisodeLog(logdir, ['pong', 'breakout'])
  for frames, task, value in returns_by_frames:
    log.add([dict(actor_id=0, task_id=task, episode_return=value,
                  episode_length=5, episode_frames=20)], frames)
  log.close()


class CompareRunsTest(tf.test.TestCase):

  def test_summaries_at_common_frames_table_and_plot(self):
    root = self.get_temp_dir()
    a, b = os.path.join(root, 'a'), os.path.join(root, 'b')
    _write_run(a, [(100, 0, -21.0), (200, 1, 2.0), (300, 0, -19.0),
                   (900, 0, 21.0)])  # beyond b's last frames: excluded
    _write_run(b, [(100, 0, -20.0), (150, 1, 4.0), (400, 1, 6.0)])
    runs = [compare_runs.read_episodes(a), compare_runs.read_episodes(b)]
    self.assertEqual(compare_runs.common_frames(runs), 400)
    s_a = compare_runs.summarize(runs[0], 400, last=100)
    s_b = compare_runs.summarize(runs[1], 400, last=1)
    self.assertEqual(s_a['games']['pong']['mean_return'], -20.0)
    self.assertEqual(s_a['games']['pong']['episodes'], 2)
    self.assertEqual(s_b['games']['breakout']['mean_return'], 6.0)  # last 1
    want = [scores.human_normalized_score('pong', -20.0),
            scores.human_normalized_score('breakout', 2.0)]
    self.assertAllClose(s_a['games']['pong']['hns'], want[0])
    self.assertAllClose(s_a['mean_hns'], np.mean(want))
    self.assertAllClose(s_a['median_hns'], np.median(want))
    lines = compare_runs.table([s_a, s_b], ['A', 'B'])
    self.assertIn('pong', lines[1])
    self.assertIn(f'{np.mean(want):.3f}', lines[-2])
    png = compare_runs.plot(runs, ['A', 'B'], 400,
                            os.path.join(root, 'cmp.png'), window=2)
    with open(png, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')

  def test_smooth_is_a_trailing_mean(self):
    got = compare_runs._smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2)
    self.assertAllClose(got, [1.0, 2.0, 4.0, 6.0])

  def test_missing_run_is_a_clear_error(self):
    with self.assertRaisesRegex(ValueError, 'has no episodes.csv'):
      compare_runs.read_episodes(os.path.join(self.get_temp_dir(), 'nope'))


if __name__ == '__main__':
  tf.test.main()
