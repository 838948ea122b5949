"""Factories from a config (configs/*.py) to components (Acme `builders.py`).

The one place that reads the ConfigDict and passes explicit keyword arguments
to library constructors, so the one-box launcher (`launch/train.py`) and the
per-role launchers (`launch/{reverb_server,actor,learner}.py`) build exactly
the same tables, networks, actors and learners. No flags here.
"""

import functools
from typing import Any, Dict, List, Tuple

import ml_collections
import numpy as np
import reverb
import tensorflow as tf

from agent import actor as actor_lib
from agent import distral
from agent import learner as learner_lib
from agent import losses
from agent import networks
from envs import atari
from envs import catch
from envs import distral_gridworld
from launch import console
from launch import goal_builder
from launch import hardware
from replay import datasets
from replay import episodes
from replay import tables
from replay import variables
from replay import writer as writer_lib


def games(config: ml_collections.ConfigDict) -> List[str]:
  """The config's games (task names) in task-id order (task i = games[i]).

  `config.env.game` is one game or a comma-separated list (multi-task); the
  Distral grid world's tasks are its goals (`distral_goals`), named
  'goal_<row>_<column>'.
  """
  if config.env.name == 'distral_gridworld':
    return [distral_gridworld.task_name(g) for g in distral_goals(config)]
  return [g.strip() for g in config.env.game.split(',')]


def distral_goals(config: ml_collections.ConfigDict):
  """Goal cells (row, column) of the Distral grid world's tasks, in task order.

  env.goal_set 'train': training goals [env.task_offset, + env.num_tasks);
  'held_out': the same range of the held-out goals, disjoint from every
  training goal (transfer runs).
  """
  env = config.env
  count = env.task_offset + env.num_tasks
  if env.goal_set == 'held_out':
    return distral_gridworld.held_out_goals(env.size, count)[env.task_offset:]
  return distral_gridworld.training_goals(env.size, count)[env.task_offset:]


DISTRAL_VARIANTS = ('none', 'KL_1col', 'KL_2col', 'KL+ent_1col', 'KL+ent_2col')


def distral_parameterization(config: ml_collections.ConfigDict):
  """'1col' | '2col' of config.distral.variant, or None for 'none'."""
  variant = config.distral.variant
  return None if variant == 'none' else variant.rsplit('_', 1)[1]


def distral_coefficients(config: ml_collections.ConfigDict):
  """(α, β) of config.distral's costs (distral.coefficients), or None."""
  if distral_parameterization(config) is None:
    return None
  alpha, beta = distral.coefficients(config.distral.kl_cost,
                                     config.distral.entropy_cost)
  return float(alpha), float(beta)


def core_state_size(config: ml_collections.ConfigDict) -> int:
  """Width of each of the LSTM state tensors h, c (networks.state_size)."""
  separate = (distral_parameterization(config) is not None
              and config.distral.columns == 'separate')
  return config.network.lstm_size * (2 if separate else 1)


def task_of_environment(config, actor_id: int, env_index: int) -> int:
  """Task id of environment slot `env_index` of actor `actor_id`.

  Round robin over all actors' environments: slot k of actor j plays game
  (j · num_envs_per_actor + k) mod num_games for the whole run.
  """
  return (actor_id * config.num_envs_per_actor + env_index) % len(games(config))


def make_environment(config: ml_collections.ConfigDict, seed: int,
                     task_id: int = 0):
  """The config's dm_env environment of task `task_id` (its game), seeded."""
  if goal_builder.is_goal_env(config):
    return goal_builder.make_environment(config, seed)
  env = config.env
  if env.name == 'catch':
    return catch.make_catch(seed=seed)
  if env.name == 'distral_gridworld':
    return distral_gridworld.make_distral_gridworld(
        size=env.size, goal=distral_goals(config)[task_id], seed=seed,
        max_steps=env.max_steps)
  return atari.make_atari(
      games(config)[task_id], seed=seed, frame_skip=env.frame_skip,
      sticky_action_prob=env.sticky_action_prob, noop_max=env.noop_max,
      max_episode_frames=env.max_episode_frames,
      full_action_space=env.full_action_space)


MULTI_TASK_ENVS = ('atari', 'distral_gridworld')  # task i = games(config)[i]


def environment_facts(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """Observation spec, action count and export metadata of the environment."""
  if goal_builder.is_goal_env(config):
    return goal_builder.environment_facts(config)
  env = make_environment(config, seed=0)
  try:
    spec = env.observation_spec()
    return dict(
        observation_spec=tf.TensorSpec(spec.shape, tf.as_dtype(spec.dtype),
                                       'observation'),
        num_actions=int(env.action_spec().num_values),
        games=(games(config) if config.env.name in MULTI_TASK_ENVS
               else [env.game]),
        action_set=env.action_set_name,
        action_meanings=list(env.action_meanings))
  finally:
    env.close()


def compute_dtype(config, strategy=None) -> Tuple[str, str]:
  """(dtype, reason) config.network.compute_dtype resolves to here.

  `strategy`: the learner's (its devices decide 'auto'); None for a process
  computing on its CPU (actors). See launch/hardware.py.
  """
  return hardware.resolve_compute_dtype(config.network.compute_dtype, strategy)


def make_network_fn(config: ml_collections.ConfigDict, num_actions: int,
                    compute_dtype: str = 'float32'):
  """A no-argument factory of the config's ImpalaNetwork (for strategy scopes).

  One value output per game (task); PopArt normalises them when
  config.learner.popart. Under Distral, π0's head and per-task policy heads
  (config.distral). `compute_dtype`: a resolved dtype ('float32' |
  'bfloat16', see `compute_dtype`).
  """
  alpha, beta = distral_coefficients(config) or (1.0, 1.0)
  return functools.partial(
      networks.ImpalaNetwork, num_actions, num_tasks=len(games(config)),
      torso=config.network.torso, lstm_size=config.network.lstm_size,
      task_one_hot_input=config.network.task_one_hot_input,
      distral_parameterization=distral_parameterization(config),
      distral_columns=config.distral.columns, distral_alpha=alpha,
      distral_beta=beta, compute_dtype=compute_dtype,
      core=config.network.core, head_init=config.network.head_init)


def make_network(config, facts, compute_dtype: str = 'float32'
                 ) -> networks.ImpalaNetwork:
  """The config's ImpalaNetwork with its variables created (no strategy).

  float32 unless told: the server's signatures (float32 variables whatever
  the dtype) do not depend on it; actors and the export pass theirs.
  """
  network = make_network_fn(config, facts['num_actions'], compute_dtype)()
  spec = facts['observation_spec']
  network.create_variables(spec.shape, spec.dtype)
  return network


def make_signature(config, facts):
  """THE queue table signature: T+1 stored steps (replay.writer) of this env.

  Derived only here, from the environment's observation spec, its action count
  and the LSTM size, so server, actors and learner always agree.
  """
  step_spec = writer_lib.step_spec(facts['observation_spec'],
                                   facts['num_actions'],
                                   core_state_size(config))
  return writer_lib.UnrollWriter.signature(step_spec, config.unroll_length)


def make_server(config, facts, port=None,
                checkpoint_dir=None) -> reverb.Server:
  """A Reverb server with the queue, variables and episodes tables.

  Plus the HER 'replay' table when replay is on; then, given `checkpoint_dir`,
  the server restores its tables from the latest Reverb checkpoint there.
  """
  network = make_network(config, facts)
  table_list = tables.make_tables(
      make_signature(config, facts),
      queue_capacity=config.replay.queue_capacity,
      variables_signature=variables.variables_signature(
          network.trainable_variables))
  table_list += goal_builder.replay_tables(config, facts)
  checkpointer = (goal_builder.make_checkpointer(config, checkpoint_dir)
                  if checkpoint_dir else None)
  with console.native_lines_filtered():  # Reverb's start-up INFO lines
    return reverb.Server(table_list, port=port, checkpointer=checkpointer)


def make_loss_fn(config):
  """impala_loss (or popart_impala_loss) with the config's hyper-parameters.

  With Distral on, the loss composes the Distral component (its α, β).
  """
  lc = config.learner
  return functools.partial(
      losses.popart_impala_loss if lc.popart else losses.impala_loss,
      discount=lc.discount, baseline_cost=lc.baseline_cost,
      entropy_cost=lc.entropy_cost,
      reward_clip=lc.reward_clip if lc.reward_clip > 0 else None,
      clip_rho_threshold=lc.clip_rho_threshold,
      clip_pg_rho_threshold=lc.clip_pg_rho_threshold,
      clip_c_threshold=lc.clip_c_threshold, lambda_=lc.lambda_,
      distral_coefficients=distral_coefficients(config))


def agent_steps_per_learner_step(config) -> int:
  """(B − R) · T new agent steps per learner step (× frame_skip = frames).

  R replayed unrolls per batch (HER replay) are not new experience.
  """
  return ((config.batch_size - goal_builder.replay_batch_size(config))
          * config.unroll_length)


def make_learner(config, facts, strategy, server_address, checkpoint_dir):
  """The learner reading batches from the queue at `server_address`."""
  def queue_dataset_fn(context: tf.distribute.InputContext):
    return datasets.make_dataset(
        server_address,
        batch_size=context.get_per_replica_batch_size(config.batch_size),
        # One batch ready while the step runs: AUTOTUNE buffers more, which
        # adds policy lag (issue 10) and grew the learner's RSS (issue 11).
        prefetch_size=1)

  dataset_fn = (goal_builder.make_dataset_fn(config, server_address)
                if goal_builder.replay_batch_size(config) else queue_dataset_fn)
  lc = config.learner
  return learner_lib.Learner(
      make_network=make_network_fn(config, facts['num_actions'],
                                   compute_dtype(config, strategy)[0]),
      observation_spec=facts['observation_spec'],
      dataset_fn=dataset_fn if server_address else None,
      loss_fn=make_loss_fn(config), strategy=strategy,
      learning_rate=lc.learning_rate, total_frames=config.total_frames,
      rmsprop_decay=lc.rmsprop_decay, rmsprop_momentum=lc.rmsprop_momentum,
      rmsprop_epsilon=lc.rmsprop_epsilon, rmsprop_form=lc.rmsprop_form,
      max_grad_norm=lc.max_grad_norm,
      agent_steps_per_step=agent_steps_per_learner_step(config),
      frame_skip=config.env.frame_skip, checkpoint_dir=checkpoint_dir,
      popart_step_size=lc.popart_step_size if lc.popart else None,
      popart_scale_lb=lc.popart_scale_lb, popart_scale_ub=lc.popart_scale_ub,
      jit_compile=lc.jit_compile)


def make_actor(config, facts, server_address: str, actor_id: int):
  """An actor process's Actor: environments, network, writers, clients."""
  n = config.num_envs_per_actor
  # Independent 31-bit seeds per (run seed, actor, env); the last seeds actions.
  seeds = [int(x) & 0x7FFFFFFF for x in np.random.SeedSequence(
      [config.seed, actor_id]).generate_state(n + 1)]
  task_ids = [task_of_environment(config, actor_id, i) for i in range(n)]
  envs = [make_environment(config, seed=seeds[i], task_id=task_ids[i])
          for i in range(n)]
  network = make_network(config, facts, compute_dtype(config)[0])
  writers, subscriber, reporter = make_actor_connections(
      config, facts, server_address, network)
  return actor_lib.Actor(
      envs=envs, network=network, writers=writers,
      variable_subscriber=subscriber, episode_reporter=reporter,
      task_ids=task_ids, actor_id=actor_id,
      update_period=config.actor_update_period,
      frame_skip=config.env.frame_skip, seed=seeds[n],
      observation_key='observation' if goal_builder.is_goal_env(config)
      else None)


def make_actor_connections(config, facts, server_address: str, network):
  """(writers, variable subscriber, episode reporter) of one actor.

  On a new reverb.Client: also what an actor re-creates after it lost the
  server (agent.actor.Actor.reconnect).
  """
  client = reverb.Client(server_address)
  n = config.num_envs_per_actor
  writers = (goal_builder.make_writers(config, facts, client, n)
             if goal_builder.is_goal_env(config) else [
                 writer_lib.UnrollWriter(
                     client, unroll_length=config.unroll_length,
                     max_in_flight_items=config.replay.max_in_flight_items)
                 for _ in range(n)])
  return (writers,
          variables.VariableSubscriber(client, network.trainable_variables),
          episodes.EpisodeReporter(client))


def export_metadata(config, facts, learner) -> Dict[str, Any]:
  """SavedModel metadata: games, action set, frames (raw) and agent steps trained."""
  return dict(games=facts['games'], action_set=facts['action_set'],
              action_meanings=facts['action_meanings'],
              num_actions=facts['num_actions'], num_tasks=len(facts['games']),
              frames_trained=learner.frames,
              agent_steps_trained=learner.agent_steps,
              frame_skip=config.env.frame_skip,
              **distral_metadata(config),
              **({'max_episode_steps': config.env.max_steps}
                 if config.env.name == 'distral_gridworld' else {}))


def distral_metadata(config) -> Dict[str, Any]:
  """Export metadata of Distral: its variant, column layout, α and β."""
  coefficients = distral_coefficients(config)
  if coefficients is None:
    return {}
  return dict(distral_variant=config.distral.variant,
              distral_columns=config.distral.columns,
              distral_alpha=coefficients[0], distral_beta=coefficients[1])
