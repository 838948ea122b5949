"""End-to-end: Distral on the multi-task grid world, resume and evaluation.

Runs `python -m launch.train --config=configs/distral_gridworld.py` (a few
thousand frames) as a subprocess, checks the per-task outputs and Distral's
TensorBoard scalars, resumes the run (counters and π0 weights restored
exactly), rejects a resume with another variant before anything is written,
and plays the exported policy with `launch.evaluate`, as π_i and with
--distilled (π0) on a held-out goal.
"""

import csv
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.launch.train_e2e_test import Run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ('--config.num_envs_per_actor=8', '--config.batch_size=8',
         '--config.replay.queue_capacity=16', '--config.network.lstm_size=32')
CONFIG = 'configs/distral_gridworld.py:KL+ent_2col'
H0 = 'network/distilled_head/kernel/.ATTRIBUTES/VARIABLE_VALUE'


def checkpoint_values(logdir):
  reader = tf.train.load_checkpoint(os.path.join(logdir, 'checkpoints'))
  return {key: reader.get_tensor(key) for key in (
      H0, 'learner_steps/.ATTRIBUTES/VARIABLE_VALUE',
      'agent_steps/.ATTRIBUTES/VARIABLE_VALUE')}


def tensorboard_tags(logdir):
  tags = set()
  for path in glob.glob(os.path.join(logdir, 'tensorboard', 'events.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.add(value.tag)
  return tags


def evaluate(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-m', 'launch.evaluate', *args],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300, check=False)


@pytest.mark.e2e
def test_distral_gridworld_trains_resumes_and_plays_pi_i_and_pi0(tmp_path):
  logdir = str(tmp_path / 'distral')
  first = Run(logdir, '--config.total_frames=4000', *SMALL, config=CONFIG)
  assert first.wait(timeout=400) == 0, first.output()[-4000:]
  output = first.output()
  assert re.search(r'KL\(π_i‖π0\) \d+\.\d+', output), output[-3000:]
  assert re.search(r'per game \(last \d+ episodes each\): goal_4_6 ', output)
  with open(os.path.join(logdir, 'episodes.csv'), newline='') as f:
    games = {r['game'] for r in csv.DictReader(f)}
  assert games == {'goal_4_6', 'goal_7_5', 'goal_6_6', 'goal_2_6'}
  tags = tensorboard_tags(logdir)
  for tag in ('distral/alpha', 'distral/beta', 'learner/distral/kl',
              'learner/distral/distilled_entropy', 'distral/goal_4_6/kl',
              'distral/goal_2_6/entropy', 'distral/goal_6_6/distilled_entropy',
              'episode/goal_7_5/return'):
    assert tag in tags, sorted(tags)
  saved = checkpoint_values(logdir)
  assert np.abs(saved[H0]).sum() > 0  # π0 was trained (it starts at zero)

  # Another variant for this logdir: one error line, nothing written.
  before = sorted(os.listdir(logdir))
  rejected = Run(logdir, '--config.total_frames=5000', *SMALL,
                 config='configs/distral_gridworld.py:KL+ent_1col')
  assert rejected.wait(timeout=200) != 0
  assert 'config.distral.variant=' in rejected.output(), rejected.output()[-2000:]
  assert sorted(os.listdir(logdir)) == before

  second = Run(logdir, '--config.total_frames=5000', *SMALL, config=CONFIG)
  assert second.wait(timeout=400) == 0, second.output()[-4000:]
  steps = int(saved['learner_steps/.ATTRIBUTES/VARIABLE_VALUE'])
  agent_steps = int(saved['agent_steps/.ATTRIBUTES/VARIABLE_VALUE'])
  assert (f'Restored {os.path.join(logdir, "checkpoints")}/ckpt-{steps}: '
          f'{steps} learner steps, {agent_steps} agent steps') in second.output()
  resumed = checkpoint_values(logdir)
  assert int(resumed['learner_steps/.ATTRIBUTES/VARIABLE_VALUE']) > steps

  policy = tf.saved_model.load(os.path.join(logdir, 'policy'))
  assert policy.distral_variant.numpy().decode() == 'KL+ent_2col'
  np.testing.assert_allclose(policy.distral_alpha.numpy(), 0.5)
  np.testing.assert_allclose(policy.distral_beta.numpy(), 50.0)

  played = evaluate(f'--policy={logdir}/policy', '--games=goal_4_6,goal_2_6',
                    '--episodes=3')
  assert played.returncode == 0, played.stderr[-3000:]
  report = json.load(open(os.path.join(logdir, 'eval_goal_4_6-goal_2_6.json')))
  assert [r['task_id'] for r in report['results']] == [0, 3]
  assert not any(r['distilled'] for r in report['results'])
  held_out = evaluate(f'--policy={logdir}/policy', '--distilled',
                      '--games=goal_2_7', '--episodes=3',
                      f'--output={tmp_path}/pi0.json')
  assert held_out.returncode == 0, held_out.stderr[-3000:]
  report = json.load(open(f'{tmp_path}/pi0.json'))
  assert report['results'][0]['distilled'] is True
  assert report['results'][0]['episodes'] == 3
