"""Smoke config (`runlocal`): IMPALA on the built-in Catch, tiny and CPU-only.

Learns Catch (return -1 → +1) in about a minute on 2 cores; used by the
end-to-end test.
  python -m launch.train --config=configs/smoke.py --logdir=logs/smoke
"""

import ml_collections

from configs import atari


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  del arg
  config = atari.get_config()
  config.unlock()
  # The LSTM agent this config was developed and tested with (issue 10
  # changed the single-game Atari defaults only; configs/atari.py).
  atari.use_lstm_agent(config)
  config.env.name = 'catch'
  config.env.game = 'catch'
  config.env.frame_skip = 1  # Catch has no frame skip: frames == agent steps
  config.network.torso = 'shallow'
  config.network.lstm_size = 256
  config.num_actors = 2
  config.num_envs_per_actor = 8
  config.actor_update_period = 10
  config.unroll_length = 9  # one Catch episode
  config.batch_size = 16
  config.total_frames = 200_000
  config.learner.learning_rate = 2e-3
  config.learner.entropy_cost = 0.005
  config.learner.publish_every_secs = 0.2
  config.replay.queue_capacity = 32
  config.logging.progress_every_secs = 5.0
  config.logging.checkpoint_every_secs = 60.0
  config.logging.stall_warning_secs = 30.0
  config.logging.recent_episodes = 200
  config.lock()
  return config
