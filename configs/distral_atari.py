"""Distral + PopArt on multi-task Atari (Teh et al. 2017; Hessel et al. 2018).

configs/atari_multitask.py (5 games, full 18-action set, PopArt on, rewards
unclipped, deep torso) with Distral's 'KL+ent_2col' variant: a distilled
policy head h0 and per-game heads f_i on the shared torso + LSTM
(`distral.columns='shared'`, the practical choice at Atari scale), π_i =
softmax(α log π0 + β f_i), c_KL = c_ent = 0.005 (α = 0.5, β = 100). The
regulariser is counted in each game's PopArt-normalised units (agent/losses.py),
so every game weighs its KL by the same c_KL. The task one-hot does not enter
the shared LSTM (π0 reads it and must not see the task; the per-game heads
select by task_id); IMPALA's own entropy bonus is 0 (the regularised reward
holds the entropy term).

Config argument: as configs/atari_multitask.py (games); '<games>:<variant>'
chooses another variant.

  python -m launch.train --config=configs/distral_atari.py --logdir=logs/distral_atari
  python -m launch.train --config=configs/distral_atari.py:pong,breakout:KL_2col ...
"""

import ml_collections

from configs import atari_multitask


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """`arg`: '[games][:variant]' (defaults: the 5 games, 'KL+ent_2col')."""
  games, _, variant = arg.partition(':')
  variant = variant or 'KL+ent_2col'
  config = atari_multitask.get_config(games)
  config.unlock()
  config.network.task_one_hot_input = False  # π0 must not see the task
  config.distral.variant = variant
  config.distral.columns = 'shared'
  config.distral.kl_cost = 0.005  # c_KL = α/β
  config.distral.entropy_cost = 0.005 if variant.startswith('KL+ent') else 0.0
  config.learner.entropy_cost = 0.0  # in the regularised reward already
  config.lock()
  return config
