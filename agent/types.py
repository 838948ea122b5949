"""Shared data types of the IMPALA pipeline.

Conventions (SEED RL / IMPALA): every stored agent step t holds the observation
x_t the agent saw, and the reward r and discount of the transition INTO x_t
(x_{t-1} --a_{t-1}--> x_t). When an episode ends, the actor resets the
environment at once and stores the new episode's first observation with
`first=True`, carrying the final reward and the terminal discount of the episode
that just ended. So for an unroll of T+1 steps the learner uses `action[:-1]`,
`behaviour_logits[:-1]`, `reward[1:]`, `discount[1:]` and `first[1:]`.

Units: one agent step = `frame_skip` raw Atari frames (4 by default). Counters
say which they count.
"""

import collections
from typing import Any, Mapping, Tuple

import tensorflow as tf

# LSTM core state: (h, c), each float32 [B, state_size] (= lstm_size, or
# 2·lstm_size with a separate Distral π0 column; agent/networks.py).
CoreState = Tuple[tf.Tensor, tf.Tensor]
Nest = Any
Metrics = Mapping[str, tf.Tensor]

# Network output at one or more steps.
#   policy_logits: float32 [..., num_actions], target policy π logits.
#   values: float32 [..., num_tasks], one (normalised under PopArt) value per task.
AgentOutput = collections.namedtuple('AgentOutput', 'policy_logits values')

# Network output under Distral (Teh et al. 2017; SPEC §6): policy_logits are
# the task policy π_i's logits (either parameterisation), plus
#   distilled_logits: float32 [..., num_actions], h0, logits of the distilled
#                     policy π0 (the same for every task).
DistralOutput = collections.namedtuple(
    'DistralOutput', AgentOutput._fields + ('distilled_logits',))

# One time-major batch of unrolls as the learner receives it (T = unroll_length).
#   observation:      env observation [T+1, B, ...] (Atari: uint8 [T+1, B, 84, 84, 4])
#   first:            bool    [T+1, B]  x_t starts an episode (LSTM state is reset there)
#   reward:           float32 [T+1, B]  reward of the transition into x_t (unclipped)
#   discount:         float32 [T+1, B]  env discount of the transition into x_t (0 = terminal)
#   prev_action:      int32   [T+1, B]  a_{t-1} (0 at episode starts)
#   action:           int32   [T+1, B]  a_t taken by the behaviour policy μ
#   behaviour_logits: float32 [T+1, B, num_actions]  μ logits at x_t
#   task_id:          int32   [T+1, B]
#   core_state:       CoreState, each float32 [B, lstm_size]: the actor's LSTM state
#                     before step 0 of the unroll
Unroll = collections.namedtuple(
    'Unroll', 'observation first reward discount prev_action action '
    'behaviour_logits task_id core_state')

# Field names of one step as written to Reverb (each a key of the step dict; the
# same names as Unroll, without the time/batch dimensions).
STEP_FIELDS = Unroll._fields

# An Unroll with a per-step validity mask, for batches that mix queue unrolls
# with HER replay items (replay/her.py, replay/mixing.py):
#   mask: bool [T+1, B], False on padding steps after an episode's (or a
#         relabeled goal's) end; queue unrolls are all True. Transition s
#         (x_s -> x_{s+1}) exists iff mask[s+1] (agent/losses.py).
MaskedUnroll = collections.namedtuple('MaskedUnroll', Unroll._fields + ('mask',))
