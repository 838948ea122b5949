"""Torn checkpoints (issue 11 item 3): fall back, set aside, keep the good.

Real checkpoints written by the Learner, then really truncated on disk.
"""

import functools
import os

import numpy as np
import pytest
import tensorflow as tf

from agent import learner as learner_lib
from agent import losses
from agent import networks
from launch import run_setup


def _learner(directory):
  return learner_lib.Learner(
      make_network=functools.partial(networks.ImpalaNetwork, 3,
                                     torso='shallow', lstm_size=16),
      observation_spec=tf.TensorSpec([40, 20, 1], tf.float32),
      dataset_fn=None, loss_fn=losses.impala_loss,
      strategy=tf.distribute.get_strategy(), checkpoint_dir=directory,
      max_checkpoints_to_keep=3)


def _save_at(learner, steps):
  learner._learner_steps.assign(steps)  # pylint: disable=protected-access
  learner.network.value_head.bias.assign([float(steps)])
  return learner.save()


def _truncate(path, how):
  (data,) = tf.io.gfile.glob(path + '.data-*')
  size = os.path.getsize(data)
  with open(data, 'r+b') as f:
    f.truncate({'half': size // 2, 'minus_100': size - 100, 'empty': 0}[how])


@pytest.mark.fault
@pytest.mark.parametrize('how', ['half', 'minus_100', 'empty'])
def test_torn_newest_checkpoint_falls_back_and_is_set_aside(tmp_path, how):
  directory = str(tmp_path / 'checkpoints')
  writer = _learner(directory)
  paths = [_save_at(writer, steps) for steps in (10, 20, 30)]
  _truncate(paths[-1], how)

  assert run_setup.readable_checkpoints(directory) == paths[:2]
  learner = _learner(directory)
  assert learner.restore()
  assert learner.learner_steps == 20
  np.testing.assert_array_equal(learner.network.value_head.bias.numpy(), 20.)
  corrupt = os.listdir(os.path.join(directory, 'corrupt'))
  assert sorted(corrupt) == sorted(
      os.path.basename(p) for p in tf.io.gfile.glob(
          os.path.join(directory, 'corrupt', 'ckpt-30.*')))
  assert any(name.startswith('ckpt-30.data') for name in corrupt)
  state = tf.train.get_checkpoint_state(directory)
  assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
      'ckpt-10', 'ckpt-20']
  # The set-aside checkpoint holds no keep-slot: two more saves keep ckpt-20.
  _save_at(learner, 40)
  _save_at(learner, 50)
  kept = [os.path.basename(p) for p in
          tf.train.get_checkpoint_state(directory).all_model_checkpoint_paths]
  assert kept == ['ckpt-20', 'ckpt-40', 'ckpt-50']


def test_no_readable_checkpoint_is_an_error_before_anything_moves(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  writer = _learner(directory)
  paths = [_save_at(writer, steps) for steps in (10, 20)]
  for path in paths:
    _truncate(path, 'half')
  before = sorted(os.listdir(directory))
  assert run_setup.readable_checkpoints(directory) == []
  with pytest.raises(ValueError, match='none of them can be read'):
    run_setup.check_logdir(str(tmp_path), None)
  assert sorted(os.listdir(directory)) == before  # nothing moved or deleted
  # The learner itself (split roles) also refuses, with the files kept.
  with pytest.raises(ValueError, match='could be restored'):
    _learner(directory).restore()
  assert len(os.listdir(os.path.join(directory, 'corrupt'))) == 4
