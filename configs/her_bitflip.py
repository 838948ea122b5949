"""IMPALA + HER replay on bit flipping (Andrychowicz et al. 2017, §4.1).

n bits (the config argument, default 15), one action per bit, reward −1 per
step and 0 on reaching the goal, which ends the episode; n agent steps at
most. Each learner batch mixes queue unrolls with `replay_proportion` HER
replay items (IMPALA replay ablation), relabeled with probability 0.8
(k = 4, strategy 'future'). The policy observation is bits ‖ goal, float32
[2n], hence the 'mlp' torso. T = n, so every episode (at most n + 1 stored
steps) is one replay item starting at the episode start (exact LSTM state).
Frames = agent steps (no frame skip); replayed unrolls are not counted.

  python -m launch.train --config=configs/her_bitflip.py --logdir=logs/bits15
  python -m launch.train --config=configs/her_bitflip.py:10 \
      --config.her.relabel_probability=0 --logdir=logs/bits10_no_her
  python -m benchmarks.her_comparison --env=bit_flipping --num_bits=15
"""

import ml_collections

from configs import atari


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: the number of bits n (default 15)."""
  num_bits = int(arg) if arg else 15
  config = atari.get_config()
  config.unlock()
  # The LSTM agent this config was developed and tested with (issue 10
  # changed the single-game Atari defaults only; configs/atari.py).
  atari.use_lstm_agent(config)
  config.env.name = 'bit_flipping'
  config.env.game = 'bit_flipping'
  config.env.frame_skip = 1  # agent steps == frames
  config.env.num_bits = num_bits
  config.env.max_steps = num_bits  # HER §4.1: any goal is n flips away
  config.network.torso = 'mlp'
  config.network.lstm_size = 64
  config.num_actors = 1
  config.num_envs_per_actor = 32
  config.actor_update_period = 10
  config.unroll_length = num_bits  # T >= max_steps: one item per episode
  config.batch_size = 32
  config.total_frames = 2_000_000  # new agent steps consumed by the learner
  config.learner.learning_rate = 1e-3
  config.learner.discount = 0.98
  config.learner.entropy_cost = 0.01
  config.learner.publish_every_secs = 0.5
  config.replay.queue_capacity = 64
  config.replay.replay_proportion = 0.5  # R = 16 of B = 32
  config.replay.replay_size = 20_000  # unrolls (= episodes here)
  config.logging.progress_every_secs = 10.0
  config.logging.checkpoint_every_secs = 120.0
  config.logging.recent_episodes = 500
  config.lock()
  return config
