"""Factories for goal-conditioned runs with HER replay (SPEC §1, §7).

The goal-specific half of launch/builder.py (Acme `builders.py` style): it
reads the ConfigDict and passes explicit keyword arguments to the envs/ and
replay/ constructors. launch/builder.py calls it when `config.env.name` is a
goal-conditioned env, or replay is on. No flags here.

Config fields read (configs/her_bitflip.py, configs/her_gridworld.py):
  env.name ('bit_flipping' | 'goal_gridworld'), env.num_bits / env.size,
  env.max_steps (agent steps before truncation), unroll_length, batch_size,
  network.lstm_size, seed, replay.replay_proportion, replay.replay_size,
  replay.max_in_flight_items, her.strategy, her.relabel_probability.
"""

import functools
import time
from typing import Any, Callable, Dict, List, Tuple

from absl import logging
import ml_collections
import reverb
import tensorflow as tf

from envs import bit_flipping
from envs import goal_gridworld
from replay import her
from replay import her_writer
from replay import mixing
from replay import tables
from replay import writer as writer_lib

GOAL_ENV_NAMES = ('bit_flipping', 'goal_gridworld')
# Per env: (reward_fn, goal_fn) for replay/her.py inside the tf.data map.
_GOAL_FUNCTIONS: Dict[str, Tuple[Callable, Callable]] = {
    'bit_flipping': (bit_flipping.reward, bit_flipping.with_goal),
    'goal_gridworld': (goal_gridworld.reward, goal_gridworld.with_goal),
}


def is_goal_env(config: ml_collections.ConfigDict) -> bool:
  return config.env.name in GOAL_ENV_NAMES


def make_environment(config: ml_collections.ConfigDict, seed: int):
  """The config's goal-conditioned dm_env environment, seeded."""
  env = config.env
  if env.name == 'bit_flipping':
    return bit_flipping.make_bit_flipping(
        num_bits=env.num_bits, seed=seed, max_steps=env.max_steps)
  return goal_gridworld.make_goal_gridworld(
      size=env.size, seed=seed, max_steps=env.max_steps)


def environment_facts(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """Facts as builder.environment_facts, plus the goal spec and episode cap.

  'observation_spec' is the POLICY observation (what the network, the queue
  and the SavedModel see; it holds the desired goal); 'goal_spec' is one goal;
  'max_episode_steps' = env max_steps + 1 stored steps (x_0..x_N).
  """
  env = make_environment(config, seed=0)
  spec = env.observation_spec()
  goal = spec['desired_goal']
  policy = spec['observation']
  return dict(
      observation_spec=tf.TensorSpec(policy.shape, tf.as_dtype(policy.dtype),
                                     'observation'),
      goal_spec=tf.TensorSpec(goal.shape, tf.as_dtype(goal.dtype),
                              'desired_goal'),
      max_episode_steps=env.max_steps + 1,
      num_actions=int(env.action_spec().num_values),
      games=[env.game], action_set=env.action_set_name,
      action_meanings=list(env.action_meanings))


def replay_batch_size(config: ml_collections.ConfigDict) -> int:
  """R, replay unrolls in each GLOBAL batch (0: queue only)."""
  return mixing.replay_batch_size(config.batch_size,
                                  config.replay.replay_proportion)


def replay_tables(config: ml_collections.ConfigDict,
                  facts: Dict[str, Any]) -> List[reverb.Table]:
  """[the 'replay' table] when replay is on, else []."""
  if not replay_batch_size(config):
    return []
  step_spec = writer_lib.step_spec(facts['observation_spec'],
                                   facts['num_actions'],
                                   config.network.lstm_size)
  signature = her_writer.replay_signature(
      step_spec, config.unroll_length, facts['goal_spec'],
      facts['max_episode_steps'])
  return [tables.make_replay_table(signature,
                                   replay_size=config.replay.replay_size)]


def make_writers(config: ml_collections.ConfigDict, facts: Dict[str, Any],
                 client: reverb.Client,
                 num_envs: int) -> List[her_writer.GoalUnrollWriter]:
  """One GoalUnrollWriter per env stream (replay items only if replay is on)."""
  replay = tables.REPLAY_TABLE if replay_batch_size(config) else None
  return [her_writer.GoalUnrollWriter(
      client, unroll_length=config.unroll_length,
      max_episode_steps=facts['max_episode_steps'], replay_table=replay,
      max_in_flight_items=config.replay.max_in_flight_items)
          for _ in range(num_envs)]


def make_relabel_fn(config: ml_collections.ConfigDict):
  """her.relabel with the config's strategy and probability (None if p = 0)."""
  if config.her.relabel_probability == 0:
    return None
  reward_fn, goal_fn = _GOAL_FUNCTIONS[config.env.name]
  return functools.partial(
      her.relabel, strategy=config.her.strategy,
      relabel_probability=config.her.relabel_probability,
      reward_fn=reward_fn, goal_fn=goal_fn)


def make_dataset_fn(config: ml_collections.ConfigDict, server_address: str):
  """input_context -> mixed queue/replay dataset (replay/mixing.py).

  The global batch B holds R = round(replay_proportion · B) replay items;
  each replica gets B/replicas unrolls of which R/replicas are replayed
  (launch/validate.py checks both divide evenly).
  """
  relabel_fn = make_relabel_fn(config)
  global_replay = replay_batch_size(config)

  def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
    return mixing.make_mixed_dataset(
        server_address,
        batch_size=context.get_per_replica_batch_size(config.batch_size),
        replay_batch_size=context.get_per_replica_batch_size(global_replay),
        relabel_fn=relabel_fn,
        seed=config.seed * 1000 + context.input_pipeline_id,
        prefetch_size=1)  # as the queue-only dataset (launch/builder.py)
  return dataset_fn


def make_checkpointer(config: ml_collections.ConfigDict, path: str):
  """A Reverb DefaultCheckpointer at `path` when replay is on, else None.

  A server built with it restores every table (replay contents included)
  from the latest Reverb checkpoint under `path` when it starts.
  """
  if not replay_batch_size(config):
    return None
  return reverb.checkpointers.DefaultCheckpointer(path)


class ReplayCheckpointer:
  """Writes Reverb checkpoints (all tables) on a slow timer, replay runs only.

  `client.checkpoint()` serialises every table on the server, pausing its
  inserts and samples for the duration, hence a slow timer
  (config.replay.checkpoint_every_secs). The server writes where its
  checkpointer points (`make_checkpointer`).
  """

  def __init__(self, client: reverb.Client, config: ml_collections.ConfigDict,
               clock: Callable[[], float] = time.monotonic):
    self._client = client
    self._enabled = bool(replay_batch_size(config))
    self._every_secs = float(config.replay.checkpoint_every_secs)
    self._clock = clock
    self._last = self._clock()

  def log_contents(self) -> None:
    """Logs the replay table's size (e.g. as restored at a resume)."""
    if self._enabled:
      info = self._client.server_info(timeout=5)[tables.REPLAY_TABLE]
      logging.info('Reverb replay table holds %d of %d items.',
                   info.current_size, info.max_size)

  def maybe_checkpoint(self):
    """Checkpoints if the timer expired; returns the path or None.

    A failed checkpoint is logged, not raised: training goes on and the
    next timer expiry tries again.
    """
    if not self._enabled or self._clock() - self._last < self._every_secs:
      return None
    try:
      return self.checkpoint()
    except (RuntimeError, tf.errors.OpError, reverb.errors.ReverbError) as e:
      logging.warning('Reverb checkpoint failed (%s); retrying in %.0f s.', e,
                      self._every_secs)
      return None

  def checkpoint(self):
    """Checkpoints now (replay runs); returns the path or None."""
    if not self._enabled:
      return None
    self._last = self._clock()
    return self._client.checkpoint()
