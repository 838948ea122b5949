"""Config validation: every bad value is named with its allowed values."""

from absl.testing import absltest
from absl.testing import parameterized

from configs import atari
from configs import atari_multitask
from configs import smoke
from launch import builder
from launch import validate


def _with(config, field, value):
  config = config.copy_and_resolve_references()
  target = config
  *path, last = field.split('.')
  for part in path:
    target = target[part]
  with config.unlocked():
    target[last] = value
  return config


class ValidateTest(parameterized.TestCase):

  def test_shipped_configs_are_valid(self):
    validate.validate_config(atari.get_config())
    validate.validate_config(atari.get_config('breakout'))
    validate.validate_config(smoke.get_config())
    validate.validate_config(atari_multitask.get_config())
    validate.validate_config(atari_multitask.get_config('pong,breakout'))
    config = atari_multitask.get_config('atari57')
    validate.validate_config(config)
    self.assertLen(builder.games(config), 57)
    self.assertGreaterEqual(config.num_actors * config.num_envs_per_actor, 57)

  def test_multitask_defaults(self):
    config = atari_multitask.get_config()
    self.assertEqual(builder.games(config), list(atari_multitask.DEFAULT_GAMES))
    self.assertTrue(config.learner.popart)
    self.assertEqual(config.learner.reward_clip, 0.0)
    self.assertTrue(config.env.full_action_space)
    # Round robin over all actors' environments: every game is played.
    tasks = [builder.task_of_environment(config, j, k)
             for j in range(config.num_actors)
             for k in range(config.num_envs_per_actor)]
    self.assertEqual(tasks[:6], [0, 1, 2, 3, 4, 0])
    self.assertEqual(sorted(set(tasks)), [0, 1, 2, 3, 4])
    self.assertLessEqual(max(tasks.count(i) for i in range(5)) -
                         min(tasks.count(i) for i in range(5)), 1)

  @parameterized.named_parameters(
      ('unknown', 'env.game', 'pong,pongg', "config.env.game: Unknown Atari game 'pongg'"),
      ('duplicate', 'env.game', 'pong,breakout,pong', 'config.env.game must be a list of distinct games'),
      ('action_set', 'env.full_action_space', False, 'config.env.full_action_space must be True when several games share one policy head'),
      ('popart_beta', 'learner.popart_step_size', 0.0, 'config.learner.popart_step_size must be in (0, 1]; got 0.0'),
      ('popart_beta_batch', 'learner.popart_step_size', 0.01, 'config.learner.popart_step_size must be <= 1 / (batch_size × unroll_length) = 0.00156'),
      ('popart_lb', 'learner.popart_scale_lb', -1.0, 'config.learner.popart_scale_lb must be > 0; got -1.0'),
      ('popart_ub', 'learner.popart_scale_ub', 1e-5, 'config.learner.popart_scale_ub must be >= learner.popart_scale_lb; got 1e-05'),
      ('few_envs', 'num_envs_per_actor', 2, 'config.num_actors must be such that num_actors × num_envs_per_actor >= the 5 games'),
  )
  def test_bad_multitask_value_is_named(self, field, value, message):
    with self.assertRaises(ValueError) as raised:
      validate.validate_config(_with(atari_multitask.get_config(), field, value))
    self.assertIn(message, str(raised.exception))

  @parameterized.named_parameters(
      ('batch_size', 'batch_size', 0, 'config.batch_size must be a positive integer; got 0'),
      ('unroll', 'unroll_length', 0, 'config.unroll_length must be a positive integer; got 0'),
      ('frames', 'total_frames', -5, 'config.total_frames must be a positive integer; got -5'),
      ('bool_size', 'num_envs_per_actor', True, 'config.num_envs_per_actor must be a positive integer'),
      ('nan_lr', 'learner.learning_rate', float('nan'), 'config.learner.learning_rate must be > 0 (a finite number); got nan'),
      ('inf_clip', 'learner.max_grad_norm', float('inf'), 'config.learner.max_grad_norm must be > 0 (a finite number); got inf'),
      ('env', 'env.name', 'mujoco', "config.env.name must be one of ('atari', 'catch', 'distral_gridworld', 'bit_flipping', 'goal_gridworld'); got 'mujoco'"),
      ('game', 'env.game', 'pongg', "config.env.game: Unknown Atari game 'pongg'; did you mean: pong?"),
      ('torso', 'network.torso', 'big', "config.network.torso must be one of ('deep', 'shallow', 'mlp')"),
      ('core', 'network.core', 'gru', "config.network.core must be one of ('lstm', 'feedforward'); got 'gru'"),
      ('head_init', 'network.head_init', 'zeros', "config.network.head_init must be one of ('glorot_uniform', 'orthogonal'); got 'zeros'"),
      ('rmsprop_form', 'learner.rmsprop_form', 'adam', "config.learner.rmsprop_form must be one of ('keras', 'tf1', 'pytorch'); got 'adam'"),
      ('sticky', 'env.sticky_action_prob', 1.5, 'config.env.sticky_action_prob must be in [0, 1]; got 1.5'),
      ('noop', 'env.noop_max', -1, 'config.env.noop_max must be a non-negative integer; got -1'),
      ('lr', 'learner.learning_rate', 0.0, 'config.learner.learning_rate must be > 0; got 0.0'),
      ('decay', 'learner.rmsprop_decay', 1.0, 'config.learner.rmsprop_decay must be in [0, 1); got 1.0'),
      ('discount', 'learner.discount', 1.1, 'config.learner.discount must be in [0, 1]; got 1.1'),
      ('entropy', 'learner.entropy_cost', -0.1, 'config.learner.entropy_cost must be >= 0'),
      ('rho', 'learner.clip_rho_threshold', 0.0, 'config.learner.clip_rho_threshold must be > 0'),
      ('lambda', 'learner.lambda_', 2.0, 'config.learner.lambda_ must be in [0, 1]; got 2.0'),
      ('queue', 'replay.queue_capacity', 4, 'config.replay.queue_capacity must be at least the per-replica batch size (32); got 4'),
      ('stall', 'logging.stall_warning_secs', 0.0, 'config.logging.stall_warning_secs must be > 0 seconds'),
  )
  def test_bad_value_is_named(self, field, value, message):
    with self.assertRaises(ValueError) as raised:
      validate.validate_config(_with(atari.get_config(), field, value))
    self.assertIn(message, str(raised.exception))

  def test_batch_must_split_across_replicas(self):
    config = _with(atari.get_config(), 'batch_size', 30)
    validate.validate_config(config, num_replicas=2)
    with self.assertRaisesRegex(
        ValueError, r'config.batch_size must be divisible by the number of '
        r'replicas \(4\); got 30'):
      validate.validate_config(config, num_replicas=4)


if __name__ == '__main__':
  absltest.main()
