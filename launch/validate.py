"""Config validation: reject bad values before anything starts.

Called by every launcher right after flag parsing, before a Reverb server,
checkpoint directory or subprocess exists. Every error is a ValueError that
names the config field, the allowed values and the received value.
"""

import numbers

import ml_collections

from envs import atari

ENV_NAMES = ('atari', 'catch')
TORSOS = ('deep', 'shallow')


def _fail(field, allowed, value):
  raise ValueError(f'config.{field} must be {allowed}; got {value!r}')


def _positive_int(config, field):
  value = _get(config, field)
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
    _fail(field, 'a positive integer', value)


def _number(config, field, low, high, allowed, low_open=False):
  value = _get(config, field)
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    _fail(field, allowed, value)
  if value < low or value > high or (low_open and value == low):
    _fail(field, allowed, value)


def _get(config, field):
  value = config
  for part in field.split('.'):
    value = value[part]
  return value


def validate_config(config: ml_collections.ConfigDict, *,
                    num_replicas: int = 1) -> None:
  """Checks a training config (configs/*.py).

  Args:
    config: the ConfigDict of configs/atari.py (or a variant).
    num_replicas: replicas of the learner's tf.distribute strategy; the global
      batch must split evenly across them.

  Raises:
    ValueError: naming the first offending field, its allowed values and the
      value received.
  """
  seed = config.seed
  if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not (
      0 <= seed < 2**31):
    _fail('seed', 'an integer in [0, 2**31)', seed)
  if config.env.name not in ENV_NAMES:
    _fail('env.name', f'one of {ENV_NAMES}', config.env.name)
  if config.env.name == 'atari':
    if not isinstance(config.env.game, str) or not config.env.game.strip():
      _fail('env.game', 'an Atari-57 game or a comma-separated list of them',
            config.env.game)
    game_list = [g.strip() for g in config.env.game.split(',')]
    for game in game_list:
      try:
        atari.validate_game(game)
      except ValueError as e:
        raise ValueError(f'config.env.game: {e}') from None
    if len(set(game_list)) != len(game_list):
      _fail('env.game', 'a list of distinct games (task i = i-th game)',
            config.env.game)
    if len(game_list) > 1 and config.env.full_action_space is not True:
      _fail('env.full_action_space',
            'True when several games share one policy head',
            config.env.full_action_space)
    _number(config, 'env.sticky_action_prob', 0.0, 1.0, 'in [0, 1]')
    _positive_int(config, 'env.max_episode_frames')
    noop_max = config.env.noop_max
    if (isinstance(noop_max, bool) or not isinstance(noop_max, numbers.Integral)
        or noop_max < 0):
      _fail('env.noop_max', 'a non-negative integer', noop_max)
    if not isinstance(config.env.full_action_space, bool):
      _fail('env.full_action_space', 'True or False',
            config.env.full_action_space)
  _positive_int(config, 'env.frame_skip')
  if config.network.torso not in TORSOS:
    _fail('network.torso', f'one of {TORSOS}', config.network.torso)
  for field in ('network.lstm_size', 'num_actors', 'num_envs_per_actor',
                'actor_update_period', 'actor_tf_threads', 'unroll_length',
                'batch_size', 'total_frames', 'replay.queue_capacity',
                'replay.max_in_flight_items', 'logging.recent_episodes'):
    _positive_int(config, field)
  num_games = len(config.env.game.split(',')) if config.env.name == 'atari' else 1
  if num_games > config.num_actors * config.num_envs_per_actor:
    _fail('num_actors',
          f'such that num_actors × num_envs_per_actor >= the {num_games} games '
          '(each environment plays one game)', config.num_actors)
  if config.batch_size % num_replicas:
    _fail('batch_size', f'divisible by the number of replicas ({num_replicas})',
          config.batch_size)
  if config.replay.queue_capacity < config.batch_size // num_replicas:
    _fail('replay.queue_capacity',
          f'at least the per-replica batch size ({config.batch_size // num_replicas})',
          config.replay.queue_capacity)
  learner = 'learner.'
  _number(config, learner + 'learning_rate', 0.0, float('inf'), '> 0', low_open=True)
  _number(config, learner + 'rmsprop_decay', 0.0, 1.0, 'in [0, 1)')
  if config.learner.rmsprop_decay >= 1.0:
    _fail(learner + 'rmsprop_decay', 'in [0, 1)', config.learner.rmsprop_decay)
  _number(config, learner + 'rmsprop_momentum', 0.0, 1.0, 'in [0, 1]')
  _number(config, learner + 'rmsprop_epsilon', 0.0, float('inf'), '> 0', low_open=True)
  _number(config, learner + 'max_grad_norm', 0.0, float('inf'), '> 0', low_open=True)
  _number(config, learner + 'discount', 0.0, 1.0, 'in [0, 1]')
  for field in ('baseline_cost', 'entropy_cost', 'reward_clip'):
    _number(config, learner + field, 0.0, float('inf'), '>= 0 (reward_clip 0 = off)')
  for field in ('clip_rho_threshold', 'clip_pg_rho_threshold', 'clip_c_threshold'):
    _number(config, learner + field, 0.0, float('inf'), '> 0', low_open=True)
  _number(config, learner + 'lambda_', 0.0, 1.0, 'in [0, 1]')
  for field in ('learner.popart', 'network.task_one_hot_input'):
    if not isinstance(_get(config, field), bool):
      _fail(field, 'True or False', _get(config, field))
  _number(config, learner + 'popart_step_size', 0.0, 1.0, 'in (0, 1]',
          low_open=True)
  _number(config, learner + 'popart_scale_lb', 0.0, float('inf'), '> 0',
          low_open=True)
  _number(config, learner + 'popart_scale_ub', config.learner.popart_scale_lb,
          float('inf'), '>= learner.popart_scale_lb')
  _number(config, learner + 'publish_every_secs', 0.0, float('inf'),
          '>= 0 seconds (0 = every learner step)')
  for field in ('progress_every_secs', 'checkpoint_every_secs', 'stall_warning_secs'):
    _number(config, 'logging.' + field, 0.0, float('inf'), '> 0 seconds', low_open=True)
