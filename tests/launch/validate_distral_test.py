"""Distral config validation and the resume check of its variant (SPEC §6)."""

import json
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import tensorflow as tf

from configs import atari
from configs import distral_atari
from configs import distral_gridworld
from configs import her_gridworld
from launch import builder
from launch import run_setup
from launch import validate
from tests.launch.validate_test import _with

VARIANTS = ('KL_1col', 'KL_2col', 'KL+ent_1col', 'KL+ent_2col')



def _real_checkpoint(logdir):
  """A tiny readable checkpoint (check_logdir reads its tensors)."""
  tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)),
                             os.path.join(logdir, 'checkpoints'), 1).save()


class DistralValidateTest(parameterized.TestCase):

  def test_shipped_configs_are_valid(self):
    for variant in VARIANTS + ('none',):
      for columns in ('', ':separate'):
        config = distral_gridworld.get_config(variant + columns)
        validate.validate_config(config)
    config = distral_atari.get_config()
    validate.validate_config(config)
    self.assertTrue(config.learner.popart)
    self.assertEqual(config.distral.variant, 'KL+ent_2col')
    self.assertEqual(builder.distral_coefficients(config), (0.5, 100.0))
    validate.validate_config(distral_atari.get_config('pong,breakout:KL_2col'))

  def test_gridworld_tasks_and_coefficients(self):
    config = distral_gridworld.get_config()
    self.assertEqual(builder.games(config),
                     ['goal_4_6', 'goal_7_5', 'goal_6_6', 'goal_2_6'])
    self.assertEqual(builder.distral_coefficients(config), (0.5, 50.0))
    self.assertEqual(builder.distral_coefficients(
        distral_gridworld.get_config('KL_2col')), (1.0, 100.0))
    self.assertIsNone(builder.distral_coefficients(
        distral_gridworld.get_config('none')))
    expert = _with(_with(config, 'env.num_tasks', 1), 'env.task_offset', 2)
    self.assertEqual(builder.games(expert), ['goal_6_6'])
    held_out = _with(config, 'env.goal_set', 'held_out')
    self.assertEmpty(set(builder.games(held_out)) & set(builder.games(config)))
    self.assertEqual(builder.core_state_size(
        distral_gridworld.get_config('KL_1col:separate')), 2 * 64)

  @parameterized.named_parameters(
      ('unknown_variant', 'distral.variant', 'KL_3col',
       "config.distral.variant must be one of ('none', 'KL_1col', 'KL_2col', "
       "'KL+ent_1col', 'KL+ent_2col'); got 'KL_3col'"),
      ('negative_kl', 'distral.kl_cost', -0.1,
       'config.distral.kl_cost must be a finite number >= 0; got -0.1'),
      ('nan_kl', 'distral.kl_cost', float('nan'),
       'config.distral.kl_cost must be a finite number >= 0 (a finite number); got nan'),
      ('inf_ent', 'distral.entropy_cost', float('inf'),
       'config.distral.entropy_cost must be a finite number >= 0 (a finite number); got inf'),
      ('negative_ent', 'distral.entropy_cost', -1.0,
       'config.distral.entropy_cost must be a finite number >= 0; got -1.0'),
      ('zero_kl', 'distral.kl_cost', 0.0,
       "config.distral.kl_cost must be > 0 under distral.variant='KL+ent_2col'"),
      ('columns', 'distral.columns', 'both',
       "config.distral.columns must be one of ('shared', 'separate'); got 'both'"),
      ('one_task', 'env.num_tasks', 1,
       "config.distral.variant must be 'none' with a single task"),
      ('too_many_tasks', 'env.num_tasks', 40,
       'config.env.num_tasks: num_tasks must be in [1, 16]'),
      ('goal_set', 'env.goal_set', 'test',
       "config.env.goal_set must be one of ('train', 'held_out'); got 'test'"),
      ('one_hot', 'network.task_one_hot_input', True,
       "config.network.task_one_hot_input must be False with "
       "distral.columns='shared'"),
      ('prior', 'distral.prior_logdir', '/nonexistent/run',
       "config.distral.prior_logdir must be '' or the LOGDIR of a Distral run"),
  )
  def test_bad_value_is_named(self, field, value, message):
    with self.assertRaises(ValueError) as raised:
      validate.validate_config(_with(distral_gridworld.get_config(), field,
                                     value))
    self.assertIn(message, str(raised.exception))

  def test_cost_must_fit_the_variant(self):
    config = _with(distral_gridworld.get_config('KL_2col'),
                   'distral.entropy_cost', 0.01)
    with self.assertRaisesRegex(ValueError, r"config.distral.entropy_cost "
                                r"must be 0 for 'KL_2col'"):
      validate.validate_config(config)
    config = _with(distral_gridworld.get_config(), 'distral.entropy_cost', 0.0)
    with self.assertRaisesRegex(ValueError, r"config.distral.entropy_cost "
                                r"must be > 0 for 'KL\+ent_2col'"):
      validate.validate_config(config)
    both_zero = _with(_with(distral_gridworld.get_config('KL_2col'),
                            'distral.kl_cost', 0.0), 'distral.entropy_cost', 0.0)
    with self.assertRaisesRegex(ValueError, 'config.distral.kl_cost must be > 0'):
      validate.validate_config(both_zero)

  def test_single_game_and_her_replay_are_rejected(self):
    single = _with(atari.get_config(), 'distral.variant', 'KL_2col')
    with self.assertRaisesRegex(ValueError, "'none' with a single task"):
      validate.validate_config(single)
    her = _with(her_gridworld.get_config(), 'distral.variant', 'KL_2col')
    with self.assertRaisesRegex(ValueError, r'config.distral.variant must be '
                                r"'none' (with a single task|when replay)"):
      validate.validate_config(her)

  @parameterized.named_parameters(
      ('variant', 'distral.variant', 'KL+ent_1col'),
      ('columns', 'distral.columns', 'separate'))
  def test_resume_with_another_variant_or_columns_is_rejected(self, field,
                                                              value):
    logdir = tempfile.mkdtemp()
    config = distral_gridworld.get_config()
    run_setup.prepare_logdir(logdir, config)
    _real_checkpoint(logdir)
    run_setup.check_logdir(logdir, config)  # same config: fine
    with self.assertRaisesRegex(ValueError, f'config.{field}='):
      run_setup.check_logdir(logdir, _with(config, field, value))
    with open(os.path.join(logdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['distral']['variant'], 'KL+ent_2col')

  def test_resume_of_a_run_from_before_distral_with_distral_is_rejected(self):
    logdir = tempfile.mkdtemp()
    config = distral_gridworld.get_config('none')
    run_setup.prepare_logdir(logdir, config)
    with open(os.path.join(logdir, 'config.json')) as f:
      recorded = json.load(f)
    del recorded['distral']  # as written before Distral existed
    with open(os.path.join(logdir, 'config.json'), 'w') as f:
      json.dump(recorded, f)
    _real_checkpoint(logdir)
    run_setup.check_logdir(logdir, config)  # still Distral off: fine
    distral_on = _with(distral_gridworld.get_config(),
                       'network.task_one_hot_input', True)
    distral_on = _with(distral_on, 'distral.columns', 'separate')
    with self.assertRaisesRegex(ValueError, "config.distral.variant='none'"):
      run_setup.check_logdir(logdir, distral_on)

  def test_prior_must_be_a_distral_run_of_the_same_layout(self):
    prior = tempfile.mkdtemp()
    run_setup.prepare_logdir(prior, distral_gridworld.get_config(
        'KL+ent_2col:separate'))
    _real_checkpoint(prior)
    same = _with(distral_gridworld.get_config('KL+ent_2col:separate'),
                 'distral.prior_logdir', prior)
    validate.validate_config(same)
    other = _with(distral_gridworld.get_config(), 'distral.prior_logdir', prior)
    with self.assertRaisesRegex(ValueError, "config.distral.columns='shared' "
                                "like this one"):
      validate.validate_config(other)
    baseline = tempfile.mkdtemp()
    run_setup.prepare_logdir(baseline, distral_gridworld.get_config('none'))
    _real_checkpoint(baseline)
    with self.assertRaisesRegex(ValueError, 'it has no π0'):
      validate.validate_config(_with(distral_gridworld.get_config(),
                                     'distral.prior_logdir', baseline))


if __name__ == '__main__':
  absltest.main()
