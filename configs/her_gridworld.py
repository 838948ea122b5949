"""IMPALA + HER replay on the two-room goal grid world (envs/goal_gridworld.py).

A size × size image (default 11: two 9×4 rooms and a door) with the goal cell
as its third plane, 4 actions, reward −1 per step and 0 on reaching the goal,
which ends the episode; 4·size agent steps at most. The deep (ResNet) torso
sees the image, so the convolutional path is exercised. Each learner batch
mixes queue unrolls with `replay_proportion` HER replay items relabeled with
probability 0.8 (k = 4, strategy 'future'). Frames = agent steps (no frame
skip); replayed unrolls are not counted.

  python -m launch.train --config=configs/her_gridworld.py --logdir=logs/grid
  python -m launch.train --config=configs/her_gridworld.py:7 \
      --config.her.relabel_probability=0 --logdir=logs/grid7_no_her
  python -m benchmarks.her_comparison --env=goal_gridworld
"""

import ml_collections

from configs import atari


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: the board size in cells (default 11)."""
  size = int(arg) if arg else 11
  config = atari.get_config()
  config.unlock()
  # The LSTM agent this config was developed and tested with (issue 10
  # changed the single-game Atari defaults only; configs/atari.py).
  atari.use_lstm_agent(config)
  config.env.name = 'goal_gridworld'
  config.env.game = 'goal_gridworld'
  config.env.frame_skip = 1  # agent steps == frames
  config.env.size = size
  config.env.max_steps = 4 * size
  config.network.torso = 'deep'  # one pixel per cell: 3 stride-2 pools fit
  config.network.lstm_size = 64
  config.num_actors = 1
  config.num_envs_per_actor = 32
  config.actor_update_period = 10
  config.unroll_length = 20
  config.batch_size = 32
  config.total_frames = 2_000_000  # new agent steps consumed by the learner
  config.learner.learning_rate = 1e-3
  config.learner.discount = 0.98
  config.learner.entropy_cost = 0.01
  config.learner.publish_every_secs = 0.5
  config.replay.queue_capacity = 64
  config.replay.replay_proportion = 0.5  # R = 16 of B = 32
  config.replay.replay_size = 20_000  # unrolls
  config.logging.progress_every_secs = 10.0
  config.logging.checkpoint_every_secs = 120.0
  config.logging.recent_episodes = 500
  config.lock()
  return config
