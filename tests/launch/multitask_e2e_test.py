"""End-to-end: multi-task PopArt training on two real Atari games.

Runs `python -m launch.train --config=configs/atari_multitask.py:pong,breakout`
(shallow network, a few thousand frames) as a subprocess, then checks the
per-game outputs, that the checkpoint and the exported policy hold the same
PopArt statistics, and that a restart resumes them.
"""

import ast
import csv
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.launch.train_e2e_test import Run

SMALL = ('--config.network.torso=shallow', '--config.network.lstm_size=64',
         '--config.num_actors=1', '--config.num_envs_per_actor=4',
         '--config.batch_size=4', '--config.replay.queue_capacity=8',
         '--config.learner.popart_step_size=0.01',
         # Short episodes (500 agent steps) so both games finish some.
         '--config.env.max_episode_frames=2000')
CONFIG = 'configs/atari_multitask.py:pong,breakout'


def popart_in_checkpoint(logdir):
  reader = tf.train.load_checkpoint(os.path.join(logdir, 'checkpoints'))
  return {field: reader.get_tensor(f'popart/{field}/.ATTRIBUTES/VARIABLE_VALUE')
          for field in ('mu', 'sigma', 'nu')}


@pytest.mark.e2e
def test_two_games_with_popart_train_export_and_resume(tmp_path):
  logdir = str(tmp_path / 'multitask')
  first = Run(logdir, '--config.total_frames=12000', *SMALL, config=CONFIG)
  assert first.wait(timeout=400) == 0, first.output()[-4000:]
  output = first.output()
  assert re.search(r'per game \(last \d+ episodes each\): pong ', output), (
      output[-3000:])
  with open(os.path.join(logdir, 'episodes.csv'), newline='') as f:
    rows = list(csv.DictReader(f))
  assert {r['game'] for r in rows} == {'pong', 'breakout'}
  assert {(r['game'], r['task_id']) for r in rows} == {('pong', '0'),
                                                       ('breakout', '1')}

  saved = popart_in_checkpoint(logdir)
  assert saved['mu'].shape == (2,)
  assert np.all(saved['sigma'] > 0) and not np.all(saved['mu'] == 0)
  policy = tf.saved_model.load(os.path.join(logdir, 'policy'))
  assert [g.decode() for g in policy.games.numpy()] == ['pong', 'breakout']
  assert int(policy.num_actions.numpy()) == 18
  np.testing.assert_array_equal(policy.popart_mu.numpy(), saved['mu'])
  np.testing.assert_array_equal(policy.popart_sigma.numpy(), saved['sigma'])

  second = Run(logdir, '--config.total_frames=16000', *SMALL, config=CONFIG)
  assert second.wait(timeout=400) == 0, second.output()[-4000:]
  assert re.search(r'Resuming at 1\d{4} frames', second.output()), (
      second.output()[-3000:])
  restored = re.search(r'Restored PopArt statistics: (\{.*\})', second.output())
  assert restored, second.output()[-3000:]
  restored = ast.literal_eval(restored.group(1))
  for field in ('mu', 'sigma', 'nu'):  # exactly the saved float32 values
    np.testing.assert_array_equal(np.float32(restored[field]), saved[field])
