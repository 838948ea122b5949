"""Distral on the multi-task two-room grid world (Teh et al. 2017; SPEC §6).

envs/distral_gridworld.py: a size × size board (default 9) of two rooms
joined by a door; task i = reach the i-th training goal cell (in the right
room) from a random start in the left room; +1 on arrival, which ends the
episode, at most `max_steps` agent steps. The goal is NOT observed: the task
policy π_i knows its task through its own head (selected by task_id); the
distilled policy π0 is blind to it and learns what the tasks share (walk to
the door). Frames = agent steps (no frame skip).

Config argument: a Distral variant ('KL+ent_2col' by default, 'KL_2col',
'KL+ent_1col', 'KL_1col'), or 'none' (the shared multi-task baseline: one
policy head for all tasks, which knows the task through the task one-hot
LSTM input), optionally followed by ':separate' for a π0 column of its own.
Costs: c_KL = 0.01 and, for 'KL+ent', c_ent = c_KL (the paper's α = 0.5), so
α = 0.5, β = 50 (KL+ent) or α = 1, β = 100 (KL). IMPALA's own entropy bonus
(learner.entropy_cost) is 0 under Distral: the regularised reward
c_KL log π0 − (c_KL + c_ent) log π_i already holds the entropy term c_ent·H
(KL+ent) or none at all (KL: pure KL(π_i‖π0), no net entropy bonus, as in
the paper), and an extra bonus would change the variant being compared; the
baseline keeps 0.01.

  python -m launch.train --config=configs/distral_gridworld.py --logdir=logs/distral
  python -m launch.train --config=configs/distral_gridworld.py:KL_1col --logdir=...
  python -m launch.train --config=configs/distral_gridworld.py:KL+ent_2col:separate ...
  python -m launch.train --config=configs/distral_gridworld.py:none --logdir=...
  python benchmarks/distral_comparison.py        # every variant, seeds, plots
"""

import ml_collections

from configs import atari


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: '<variant>[:shared|:separate]' (default 'KL+ent_2col')."""
  variant, _, columns = (arg or 'KL+ent_2col').partition(':')
  config = atari.get_config()
  config.unlock()
  # The LSTM agent this config was developed and tested with (issue 10
  # changed the single-game Atari defaults only; configs/atari.py).
  atari.use_lstm_agent(config)
  config.env.name = 'distral_gridworld'
  config.env.game = 'distral_gridworld'
  config.env.frame_skip = 1  # agent steps == frames
  config.env.size = 9
  config.env.num_tasks = 4  # tasks = training goals [task_offset, +num_tasks)
  config.env.task_offset = 0  # e.g. per-task experts: num_tasks 1, offset i
  config.env.goal_set = 'train'  # 'train' | 'held_out' (transfer runs)
  config.env.max_steps = 50  # agent steps; the longest shortest path is 12
  config.network.torso = 'deep'  # one pixel per cell: 3 stride-2 pools fit
  config.network.lstm_size = 64
  config.num_actors = 1
  config.num_envs_per_actor = 32
  config.actor_update_period = 10
  config.unroll_length = 20
  config.batch_size = 32
  config.total_frames = 400_000  # agent steps consumed by the learner
  config.learner.learning_rate = 1e-3
  config.learner.discount = 0.95
  config.learner.reward_clip = 0.0  # rewards are 0 or 1
  config.learner.publish_every_secs = 0.5
  config.replay.queue_capacity = 64
  config.distral.variant = variant
  config.distral.columns = columns or 'shared'
  config.distral.kl_cost = 0.01  # c_KL = α/β
  config.distral.entropy_cost = 0.01 if variant.startswith('KL+ent') else 0.0
  if variant == 'none':  # the shared multi-task baseline
    config.network.task_one_hot_input = True
    config.learner.entropy_cost = 0.01
  else:
    config.learner.entropy_cost = 0.0  # in the reward already (docstring)
  config.logging.progress_every_secs = 10.0
  config.logging.checkpoint_every_secs = 120.0
  config.logging.recent_episodes = 400
  config.lock()
  return config
