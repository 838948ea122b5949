"""IMPALA on one Atari game (Espeholt et al. 2018, Atari experiments).

The paper's single-game Atari setup (SPEC §2-4): deep ResNet torso, unroll
T=20, batch B=32, γ=0.99, baseline cost 0.5, entropy cost 0.01, RMSProp (lr
6e-4 linearly decayed to 0, decay 0.99, momentum 0, ε 0.01), global gradient
norm clip 40, reward clipping to [-1, 1], 200M raw frames, except where
issue 10's measurements on Pong led elsewhere (`AGENT_DEPARTURES`):

  network.core = 'feedforward'   (paper: 'lstm' 256 with a_{t-1}, r_{t-1})
  network.head_init = 'orthogonal' (policy gain 0.01, value 1; paper/Keras:
                                  glorot_uniform)
  learner.rmsprop_form = 'pytorch' (ε outside the root; paper: TF1 RMSProp,
                                  ε inside, accumulator from 1)
  replay.queue_capacity = 32, replay.max_in_flight_items = 1,
  actor_update_period = 10       (paper code: 64, 2, 50: less policy lag)

Evidence (benchmarks/results/pong_learning.md), deep network, 2-core VMs:
with the paper's LSTM, Keras RMSProp and glorot heads, one hour of Pong
(6.5M frames, an earlier session) ended at -20.3 with the policy entropy at
ln 6; a shallow-torso run of that agent had 72% of its torso units dead and
a value output constant across states (std < 1e-4) after 0.8M frames. With
the departures above (Cleanba's IMPALA recipe) the value varies across
states (std 0.22 at 0.65M frames, 37% dead units) and Pong learns: one hour
of `make train` on a VM with AMX (bfloat16, 11.67M frames) went from -20.45
(first million frames) to +4.46 (last 100 episodes); in float32 without AMX
the hour (6.13M frames) reached -8.34. Breakout reached +12.2 in 30 minutes
(2.96M frames; random play 1.7). Ablations at 2.49M frames (last 100
episodes, mean ± std over 2 seeds): today's defaults -18.90 ± 0.20, the
pre-issue-10 agent -20.35 ± 0.07, today's defaults with the paper's LSTM
core -20.09 (1 seed); the other departures were not ablated one at a time.

The paper's values: `configs/atari.py:GAME,paper` (e.g. `:pong,paper`).

Run (fresh or resumed; the same --logdir resumes):
  python -m launch.train --config=configs/atari.py --logdir=logs/pong
  python -m launch.train --config=configs/atari.py:breakout --logdir=logs/breakout
  python -m launch.train --config=configs/atari.py:pong,paper --logdir=...
  python -m launch.train --config=configs/atari.py --config.num_actors=4 --logdir=...
"""

import ml_collections

# Where the defaults depart from the paper's agent (module docstring), and
# the paper's values (those of the original scalable_agent code).
AGENT_DEPARTURES = {
    'network.core': ('feedforward', 'lstm'),
    'network.head_init': ('orthogonal', 'glorot_uniform'),
    'learner.rmsprop_form': ('pytorch', 'tf1'),
    'replay.queue_capacity': (32, 64),
    'replay.max_in_flight_items': (1, 2),
    'actor_update_period': (10, 50),
}


def use_lstm_agent(config: ml_collections.ConfigDict,
                   rmsprop_form: str = 'keras') -> None:
  """Sets the paper's agent fields of AGENT_DEPARTURES (unlocked config).

  rmsprop_form 'tf1' is the paper's optimizer; 'keras' (the default here) is
  what the configs built on this one (Catch, HER, Distral, multi-task) were
  developed and tested with before issue 10.
  """
  for field, (_, paper) in AGENT_DEPARTURES.items():
    node = config
    *parents, leaf = field.split('.')
    for part in parents:
      node = node[part]
    node[leaf] = paper
  config.learner.rmsprop_form = rmsprop_form


def get_config(arg: str = 'pong') -> ml_collections.ConfigDict:
  """The locked IMPALA Atari config; arg 'GAME' or 'GAME,paper'.

  Raises:
    ValueError: for an arg other than GAME or GAME,paper.
  """
  game, _, variant = (arg or 'pong').partition(',')
  if variant not in ('', 'paper'):
    raise ValueError(f"configs/atari.py takes GAME or GAME,paper; got {arg!r}")
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.env = ml_collections.ConfigDict()
  config.env.name = 'atari'  # 'atari' | 'catch'
  # One of the 57 games of envs/atari57_...csv, or several comma-separated
  # (multi-task: task i = i-th game; configs/atari_multitask.py).
  config.env.game = game or 'pong'
  config.env.frame_skip = 4  # raw frames per agent step
  config.env.sticky_action_prob = 0.25  # Machado et al. 2018
  config.env.noop_max = 30  # up to this many no-op raw frames at episode start
  config.env.max_episode_frames = 108_000  # raw frames (30 minutes of play)
  config.env.full_action_space = False  # minimal action set for one game

  config.network = ml_collections.ConfigDict()
  config.network.torso = 'deep'  # 'deep' (IMPALA ResNet) | 'shallow'
  config.network.lstm_size = 256
  # 'lstm' (the paper) | 'feedforward' (heads on the torso; agent/networks.py)
  config.network.core = 'feedforward'
  # 'glorot_uniform' (Keras default) | 'orthogonal' (policy gain 0.01, value 1)
  config.network.head_init = 'orthogonal'
  config.network.task_one_hot_input = False  # one_hot(task_id) into the LSTM
  # 'auto' | 'float32' | 'bfloat16': the dtype the torso computes in
  # (variables, LSTM, heads, losses stay float32; agent/precision.py).
  # 'auto' = bfloat16 on TPUs, GPUs >= sm80 and CPUs with AMX-BF16, else
  # float32 (launch/hardware.py: AVX512-BF16 alone measured slower), resolved
  # by each process on its own hardware. Learning on Catch, 6 seeds at 100k
  # frames: float32 0.96 ± 0.07, bfloat16 torso 0.99 ± 0.01
  # (benchmarks/results/dtype_learning.md).
  config.network.compute_dtype = 'auto'

  # Actors: processes × environments per process (batched inference).
  config.num_actors = 2
  config.num_envs_per_actor = 16
  config.actor_update_period = 10  # agent steps per env between weight polls
  config.actor_tf_threads = 1  # TF intra/inter-op threads per actor process

  config.unroll_length = 20  # T, agent steps per unroll (items hold T+1)
  config.batch_size = 32  # B, unrolls per learner step (global, all replicas)
  config.total_frames = 200_000_000  # raw frames consumed by the learner

  config.learner = ml_collections.ConfigDict()
  config.learner.learning_rate = 6e-4  # linearly decayed to 0 at total_frames
  config.learner.rmsprop_decay = 0.99
  config.learner.rmsprop_momentum = 0.0
  config.learner.rmsprop_epsilon = 0.01
  # 'keras' (ε inside the root, ν0 = 0) | 'tf1' (inside, ν0 = 1: the paper's
  # TF1 optimizer) | 'pytorch' (ε outside the root; agent/optimizers.py)
  config.learner.rmsprop_form = 'pytorch'
  config.learner.max_grad_norm = 40.0  # global-norm clip
  config.learner.discount = 0.99  # γ
  config.learner.baseline_cost = 0.5
  config.learner.entropy_cost = 0.01
  config.learner.reward_clip = 1.0  # rewards clipped to [-c, c]; 0 disables
  config.learner.clip_rho_threshold = 1.0  # ρ̄
  config.learner.clip_pg_rho_threshold = 1.0  # ρ̄ of the policy gradient
  config.learner.clip_c_threshold = 1.0  # c̄
  config.learner.lambda_ = 1.0  # λ
  config.learner.publish_every_secs = 1.0  # weights to actors; 0 = every step
  # XLA-compile each replica's forward pass, loss and gradients (TPUs compile
  # the whole step anyway; agent/learner.py).
  config.learner.jit_compile = False
  # PopArt (Hessel et al. 2018; SPEC §5): per-task value normalisation.
  config.learner.popart = False
  config.learner.popart_step_size = 3e-4  # β
  config.learner.popart_scale_lb = 1e-4  # σ bounds
  config.learner.popart_scale_ub = 1e6

  # Distral (Teh et al. 2017; SPEC §6): task policies π_i regularised toward
  # a distilled policy π0 (multi-task runs; configs/distral_*.py).
  config.distral = ml_collections.ConfigDict()
  # 'none' | 'KL_1col' | 'KL_2col' | 'KL+ent_1col' | 'KL+ent_2col'
  config.distral.variant = 'none'
  config.distral.kl_cost = 0.01  # c_KL = α/β, weight of log π0 in the reward
  config.distral.entropy_cost = 0.0  # c_ent (0 for 'KL_*'; > 0 for 'KL+ent_*')
  # 'shared': h0 reads the task network's torso + LSTM (Atari scale);
  # 'separate': π0 has its own torso + LSTM column (the paper).
  config.distral.columns = 'shared'
  # Transfer: a Distral run's LOGDIR whose π0 (h0 + what it reads) starts
  # this run's π0 (fresh runs only; task and value heads start anew). '' = none.
  config.distral.prior_logdir = ''

  config.replay = ml_collections.ConfigDict()
  config.replay.queue_capacity = 32  # unrolls; actors block when it is full
  config.replay.max_in_flight_items = 1  # per env stream, bounds actor run-ahead
  # Replay (IMPALA §5.3.1 ablation; HER items of goal envs only, SPEC §7).
  config.replay.replay_proportion = 0.0  # share of each batch; 0 = queue only
  config.replay.replay_size = 10_000  # unrolls kept in 'replay' (FIFO removal)
  config.replay.checkpoint_every_secs = 600.0  # Reverb checkpoint (replay runs)
  # Seconds the learner and actors keep retrying a Reverb server that does
  # not answer (a restart, a network partition) before they give up.
  config.replay.reconnect_secs = 600.0

  config.her = ml_collections.ConfigDict()  # goal envs with replay only
  config.her.strategy = 'future'  # 'final' | 'future' | 'episode' (HER §3.4)
  config.her.relabel_probability = 0.8  # k/(k+1) with k = 4 (HER)

  config.logging = ml_collections.ConfigDict()
  config.logging.progress_every_secs = 10.0
  config.logging.checkpoint_every_secs = 300.0  # also exports DIR/policy
  config.logging.stall_warning_secs = 60.0  # no batch for this long: report
  config.logging.recent_episodes = 100  # window of the mean return shown

  if variant == 'paper':
    use_lstm_agent(config, rmsprop_form='tf1')
  config.lock()
  return config
