"""Config validation: every bad value is named with its allowed values."""

from absl.testing import absltest
from absl.testing import parameterized

from configs import atari
from configs import smoke
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

  @parameterized.named_parameters(
      ('batch_size', 'batch_size', 0, 'config.batch_size must be a positive integer; got 0'),
      ('unroll', 'unroll_length', 0, 'config.unroll_length must be a positive integer; got 0'),
      ('frames', 'total_frames', -5, 'config.total_frames must be a positive integer; got -5'),
      ('bool_size', 'num_envs_per_actor', True, 'config.num_envs_per_actor must be a positive integer'),
      ('env', 'env.name', 'mujoco', "config.env.name must be one of ('atari', 'catch', 'bit_flipping', 'goal_gridworld'); got 'mujoco'"),
      ('game', 'env.game', 'pongg', "config.env.game: Unknown Atari game 'pongg'; did you mean: pong?"),
      ('torso', 'network.torso', 'big', "config.network.torso must be one of ('deep', 'shallow', 'mlp')"),
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
