"""Multi-task IMPALA with PopArt on several Atari games (Hessel et al. 2018).

One agent (shared torso, LSTM and 18-action policy head; one value output
per game) learns all listed games at once. Defaults follow the PopArt-IMPALA
Atari setup (SPEC §5) on top of configs/atari.py: full 18-action set for every
game, task one-hot into the LSTM, PopArt on (β = 3e-4, σ in [1e-4, 1e6]),
rewards NOT clipped.

Task assignment: environment slot k of actor j plays game
(j · num_envs_per_actor + k) mod num_games for the whole run (round robin
over all actors' environments), so every unroll holds one task. Keep
num_actors · num_envs_per_actor >= num_games (checked) so every game is played.

Config argument: '' (default) = 5 games with very different reward scales;
'atari57' = all 57 games (envs/atari57_human_random_scores.csv); or a
comma-separated list of games.

  python -m launch.train --config=configs/atari_multitask.py --logdir=logs/multitask
  python -m launch.train --config=configs/atari_multitask.py \
      --config.learner.popart=False --logdir=logs/multitask_no_popart
  python -m launch.train --config=configs/atari_multitask.py:atari57 \
      --config.num_actors=32 --logdir=logs/atari57
"""

import ml_collections

from configs import atari
from envs import atari as atari_env

DEFAULT_GAMES = ('pong', 'breakout', 'space_invaders', 'seaquest', 'ms_pacman')


def get_config(games: str = '') -> ml_collections.ConfigDict:
  """Returns the locked multi-task config; `games` is the optional config arg."""
  if games == 'atari57':
    game_list = atari_env.ATARI57_GAMES
  elif games:
    game_list = tuple(g.strip() for g in games.split(','))
  else:
    game_list = DEFAULT_GAMES
  config = atari.get_config()
  config.unlock()
  # The LSTM agent this config was developed and tested with (issue 10
  # changed the single-game Atari defaults only; configs/atari.py).
  atari.use_lstm_agent(config)
  config.env.game = ','.join(game_list)  # task i = i-th game
  config.env.full_action_space = True  # one shared 18-action policy head
  config.network.task_one_hot_input = True
  config.learner.popart = True
  config.learner.reward_clip = 0.0  # unclipped rewards (PopArt's point)
  if len(game_list) > config.num_actors * config.num_envs_per_actor:
    config.num_actors = -(-len(game_list) // config.num_envs_per_actor)
  config.lock()
  return config
