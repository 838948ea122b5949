"""Config validation: reject bad values before anything starts.

Called by every launcher right after flag parsing, before a Reverb server,
checkpoint directory or subprocess exists. Every error is a ValueError that
names the config field, the allowed values and the received value.
"""

import json
import math
import numbers
import os

import ml_collections

from agent import networks
from agent import optimizers
from envs import atari
from launch import builder
from launch import goal_builder
from launch import hardware
from replay import her

ENV_NAMES = ('atari', 'catch', 'distral_gridworld') + goal_builder.GOAL_ENV_NAMES
TORSOS = ('deep', 'shallow', 'mlp')
GOAL_SETS = ('train', 'held_out')  # Distral grid world goals


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
  if not math.isfinite(value):  # NaN and ±inf pass every comparison below
    _fail(field, f'{allowed} (a finite number)', value)
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
  for field, choices in (('core', networks.CORES),
                         ('head_init', networks.HEAD_INITS)):
    if config.network[field] not in choices:
      _fail(f'network.{field}', f'one of {choices}', config.network[field])
  if config.network.core == 'feedforward' and config.network.task_one_hot_input:
    _fail('network.task_one_hot_input', "False with network.core="
          "'feedforward' (the one-hot is an LSTM input)", True)
  if (config.network.core == 'feedforward' and
      config.distral.variant != 'none' and
      config.distral.columns == 'separate'):
    _fail('distral.columns', "'shared' with network.core='feedforward'",
          config.distral.columns)
  if config.learner.rmsprop_form not in optimizers.FORMS:
    _fail('learner.rmsprop_form', f'one of {optimizers.FORMS}',
          config.learner.rmsprop_form)
  if config.network.compute_dtype not in hardware.COMPUTE_DTYPE_CHOICES:
    _fail('network.compute_dtype', f'one of {hardware.COMPUTE_DTYPE_CHOICES}',
          config.network.compute_dtype)
  if not isinstance(config.learner.jit_compile, bool):
    _fail('learner.jit_compile', 'True or False', config.learner.jit_compile)
  for field in ('network.lstm_size', 'num_actors', 'num_envs_per_actor',
                'actor_update_period', 'actor_tf_threads', 'unroll_length',
                'batch_size', 'total_frames', 'replay.queue_capacity',
                'replay.max_in_flight_items', 'logging.recent_episodes'):
    _positive_int(config, field)
  if config.env.name == 'distral_gridworld':
    _validate_distral_gridworld(config)
  num_games = len(builder.games(config))
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
  # A batch applies the SUM of its targets' EMA steps (SPEC §5): β n <= 1
  # for n up to B·T targets of one task, or the statistics overshoot.
  steps = config.batch_size * config.unroll_length
  if config.learner.popart and config.learner.popart_step_size * steps > 1.0:
    _fail(learner + 'popart_step_size',
          f'<= 1 / (batch_size × unroll_length) = {1.0 / steps:.3g} (a batch '
          'sums one EMA step per target)', config.learner.popart_step_size)
  _number(config, learner + 'popart_scale_lb', 0.0, float('inf'), '> 0',
          low_open=True)
  _number(config, learner + 'popart_scale_ub', config.learner.popart_scale_lb,
          float('inf'), '>= learner.popart_scale_lb')
  _number(config, learner + 'publish_every_secs', 0.0, float('inf'),
          '>= 0 seconds (0 = every learner step)')
  for field in ('progress_every_secs', 'checkpoint_every_secs', 'stall_warning_secs'):
    _number(config, 'logging.' + field, 0.0, float('inf'), '> 0 seconds', low_open=True)
  _validate_goal_and_replay(config, num_replicas)
  _validate_distral(config, num_games)


def _validate_distral_gridworld(config):
  """The Distral grid world's board, tasks and episode cap (envs/)."""
  size = config.env.size
  if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 5:
    _fail('env.size', 'an integer >= 5', size)
  _positive_int(config, 'env.num_tasks')
  offset = config.env.task_offset
  if isinstance(offset, bool) or not isinstance(offset, numbers.Integral) or offset < 0:
    _fail('env.task_offset', 'a non-negative integer', offset)
  _positive_int(config, 'env.max_steps')
  if config.env.goal_set not in GOAL_SETS:
    _fail('env.goal_set', f'one of {GOAL_SETS}', config.env.goal_set)
  try:
    builder.distral_goals(config)
  except ValueError as e:
    raise ValueError(f'config.env.num_tasks: {e}') from None
  if config.env.frame_skip != 1:
    _fail('env.frame_skip', '1 for the grid world', config.env.frame_skip)


# Fields a warm-start prior run must share with this one: π0's parameters
# (h0 and the torso/LSTM it reads) have their shapes and meaning from them.
PRIOR_FIXED_FIELDS = ('distral.columns', 'network.torso', 'network.lstm_size',
                      'env.name', 'env.full_action_space', 'env.size')


def _validate_prior(config, prior):
  """The Distral run whose π0 warm-starts this one (distral.prior_logdir)."""
  recorded = os.path.join(prior, 'config.json')
  if not (os.path.isfile(os.path.join(prior, 'checkpoints', 'checkpoint'))
          and os.path.isfile(recorded)):
    _fail('distral.prior_logdir', "'' or the LOGDIR of a Distral run with "
          'checkpoints and config.json', prior)
  with open(recorded) as f:
    old = json.load(f)
  if old.get('distral', {}).get('variant', 'none') == 'none':
    _fail('distral.prior_logdir', 'the LOGDIR of a Distral run (its '
          "distral.variant is 'none': it has no π0)", prior)
  new = json.loads(config.to_json())
  for field in PRIOR_FIXED_FIELDS:
    before, now = _json_field(old, field), _json_field(new, field)
    if before != now:
      _fail('distral.prior_logdir', f'a run with config.{field}={now!r} like '
            f'this one (π0 is taken from it); {prior} has {before!r}', prior)


def _json_field(tree, field):
  for part in field.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _validate_distral(config, num_tasks):
  """Distral's variant, costs and the settings it cannot combine with (§6)."""
  variant = config.distral.variant
  if variant not in builder.DISTRAL_VARIANTS:
    _fail('distral.variant', f'one of {builder.DISTRAL_VARIANTS}', variant)
  if config.distral.columns not in networks.DISTRAL_COLUMNS:
    _fail('distral.columns', f'one of {networks.DISTRAL_COLUMNS}',
          config.distral.columns)
  for field in ('kl_cost', 'entropy_cost'):
    _number(config, 'distral.' + field, 0.0, float('inf'), 'a finite number >= 0')
  prior = config.distral.prior_logdir
  if not isinstance(prior, str):
    _fail('distral.prior_logdir', "a run directory or '' (none)", prior)
  if variant == 'none':
    if prior:
      _fail('distral.prior_logdir', "'' when distral.variant is 'none'", prior)
    return
  if prior:
    _validate_prior(config, prior)
  kl_cost, entropy_cost = config.distral.kl_cost, config.distral.entropy_cost
  if kl_cost == 0:
    _fail('distral.kl_cost', f'> 0 under distral.variant={variant!r} (c_KL = 0 '
          "leaves no KL to π0; use variant 'none' and learner.entropy_cost)",
          kl_cost)
  if variant.startswith('KL_') and entropy_cost != 0:
    _fail('distral.entropy_cost', f'0 for {variant!r} (the KL variants have '
          "α = 1; use 'KL+ent_*' for an entropy term)", entropy_cost)
  if variant.startswith('KL+ent') and entropy_cost == 0:
    _fail('distral.entropy_cost', f'> 0 for {variant!r} (the paper uses '
          "c_ent = c_KL, α = 0.5; use 'KL_*' for c_ent = 0)", entropy_cost)
  if num_tasks < 2:
    _fail('distral.variant', "'none' with a single task (Distral shares "
          'behaviour between >= 2 tasks; list several games or tasks)', variant)
  if config.replay.replay_proportion > 0:
    _fail('distral.variant', "'none' when replay.replay_proportion > 0 (HER "
          'replay items with Distral are not supported)', variant)
  if config.distral.columns == 'shared' and config.network.task_one_hot_input:
    _fail('network.task_one_hot_input', "False with distral.columns='shared' "
          '(π0 reads the shared LSTM and must not see the task; the task heads '
          "select by task_id), or use distral.columns='separate'", True)


def _validate_goal_and_replay(config, num_replicas):
  """Goal-env fields, the 'mlp' torso and the HER replay fields (SPEC §7)."""
  goal_env = config.env.name in goal_builder.GOAL_ENV_NAMES
  if goal_env:
    if config.env.name == 'bit_flipping':
      _positive_int(config, 'env.num_bits')
    else:
      size = config.env.size
      if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 5:
        _fail('env.size', 'an integer >= 5', size)
    _positive_int(config, 'env.max_steps')
    if config.env.frame_skip != 1:
      _fail('env.frame_skip', '1 for goal-conditioned envs', config.env.frame_skip)
  vector_env = config.env.name == 'bit_flipping'
  if vector_env != (config.network.torso == 'mlp'):
    _fail('network.torso', "'mlp' for bit_flipping (vector observations) and "
          "'deep' or 'shallow' for image observations", config.network.torso)
  _number(config, 'replay.replay_proportion', 0.0, 1.0, 'in [0, 1)')
  proportion = config.replay.replay_proportion
  if proportion >= 1.0:
    _fail('replay.replay_proportion', 'in [0, 1)', proportion)
  _positive_int(config, 'replay.replay_size')
  _number(config, 'replay.checkpoint_every_secs', 0.0, float('inf'), '> 0 seconds',
          low_open=True)
  _number(config, 'replay.reconnect_secs', 0.0, float('inf'), '> 0 seconds',
          low_open=True)
  if config.her.strategy not in her.STRATEGIES:
    _fail('her.strategy', f'one of {her.STRATEGIES}', config.her.strategy)
  _number(config, 'her.relabel_probability', 0.0, 1.0, 'in [0, 1]')
  if proportion == 0:
    return
  if not goal_env:
    _fail('replay.replay_proportion', '0 unless env.name is one of '
          f'{goal_builder.GOAL_ENV_NAMES} (replay holds HER items)', proportion)
  if config.learner.popart:
    _fail('learner.popart', 'False when replay.replay_proportion > 0 (PopArt '
          'statistics would count the padded steps of replay items)', True)
  replay = int(round(proportion * config.batch_size))
  if not 0 < replay < config.batch_size:
    _fail('replay.replay_proportion', 'such that round(replay_proportion * '
          f'batch_size) is in [1, {config.batch_size - 1}]', proportion)
  if replay % num_replicas:
    _fail('replay.replay_proportion', 'such that round(replay_proportion * '
          f'batch_size) = {replay} is divisible by the number of replicas '
          f'({num_replicas})', proportion)
