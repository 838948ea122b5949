"""IMPALA agent network (Espeholt et al. 2018, Fig. 3; SPEC §3).

  observation ─▶ torso (deep | shallow) ─▶ 256 ─┐
  one_hot(prev_action, A) ──────────────────────┤
  clip(prev_reward, −1, 1) ─────────────────────┤ concat ─▶ LSTM ─▶ logits [A]
  one_hot(task_id, num_tasks) (if enabled) ─────┘               └▶ values [tasks]

Where `first` is True (x_t starts an episode), that step's prev_action and
prev_reward inputs are zeroed and the LSTM state is reset to zeros before the
step, per batch row and, inside an unroll, per time step.

Variables. Core and heads are built in the constructor (their input size does
not depend on the observation); the torso is built by its first call, so call
`create_variables(observation_shape, observation_dtype)` (one dummy step)
before restoring a checkpoint or assigning weights. `variables` and
`trainable_variables` are in construction order (torso layers top to bottom,
LSTM, policy head, value head; kernel before bias), identical for every
instance with the same arguments: actors receive weights as a flat list in it.

Compute dtype (`compute_dtype`, agent/precision.py): 'float32', or
'bfloat16' for the torso(s) through Keras' mixed_bfloat16 policy (float32
variables read as bfloat16 inside each layer call). The LSTM(s), heads,
logits, values and core state are float32 in both, and so is every input and
output of `step` and `unroll`.

Parameter counts (trainable, measured with `create_variables`):
  deep,    Atari 84×84×4, A=6 (Pong minimal set), 1 task:  1,623,511
           = torso 1,089,232 (991,488 of it in Linear 3872 → 256)
           + LSTM 532,480 + policy head 1,542 + value head 257
  deep,    Atari 84×84×4, A=18 (full set), 1 task:         1,638,883
  shallow, Atari 84×84×4, A=6:                             1,210,423
  shallow, Catch 40×20×1, A=3:                               564,532
(the paper quotes about 1.6M for its deep DMLab network; SPEC §3).
"""

import numbers
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from agent import distral
from agent import precision
from agent import torsos
from agent import types

TORSOS = tuple(torsos.TORSOS)
_HIDDEN_SIZE = torsos.HIDDEN_SIZE


def _tensor(value, name: str, dtype: Optional[tf.DType],
            rank: int) -> tf.Tensor:
  """Converts an input to a tensor of `rank`, cast to `dtype` unless None."""
  value = tf.convert_to_tensor(value)
  if value.shape.rank != rank:
    raise ValueError(
        f'`{name}` must have rank {rank}; got shape {value.shape}.')
  return value if dtype is None else tf.cast(value, dtype)


DISTRAL_PARAMETERIZATIONS = ('1col', '2col')
DISTRAL_COLUMNS = ('shared', 'separate')
CORES = ('lstm', 'feedforward')
HEAD_INITS = ('glorot_uniform', 'orthogonal')


class ImpalaNetwork(tf.Module):
  """IMPALA torso + LSTM core + policy and per-task value heads (NHWC).

  With `distral_parameterization` set (Distral, Teh et al. 2017; SPEC §6) the
  network also has a distilled-policy head h0 (π0 = softmax(h0), blind to the
  task) and per-task policy heads selected by `task_id` instead of the one
  shared policy head; `step`/`unroll` then return types.DistralOutput whose
  `policy_logits` are the logits of the task policy π_i:
    '2col': π_i = softmax(α log π0 + β f_i)  (distral.two_column_logits);
    '1col': π_i = softmax(task logits of head i).
  In the 2-column form head i outputs β·f_i (so f_i = output / β): the same
  family of policies, but RMSProp's per-parameter steps then move the logits
  at a rate independent of β. A head that output f_i itself would receive
  β-times larger gradients and move π_i β times faster (with β = 50 one step
  took H(π_i) from ln 4 to 0.42, and its gradient dominated the global-norm
  clip, shrinking every other update).
  π0 either reads the task column's LSTM output ('shared': the practical
  choice at Atari scale) or has a column of its own ('separate': own torso and
  LSTM, as in the paper, never fed the task one-hot). With a separate column
  the core state holds both columns' LSTM states, concatenated on the last
  axis: (h, c), each float32 [B, 2·lstm_size] (task column first).
  """

  def __init__(self, num_actions: int, *, num_tasks: int = 1,
               torso: str = 'deep', lstm_size: int = 256,
               task_one_hot_input: bool = False,
               distral_parameterization: Optional[str] = None,
               distral_columns: str = 'shared',
               distral_alpha: float = 1.0, distral_beta: float = 1.0,
               compute_dtype: str = 'float32',
               core: str = 'lstm', head_init: str = 'glorot_uniform',
               name: str = 'impala_network'):
    """Creates the network; core and heads are built here, the torso lazily.

    Args:
      num_actions: A, size of the action set (policy logits and prev_action
        one-hot).
      num_tasks: number of value outputs (one per task; PopArt normalised) and,
        under Distral, of task policy heads.
      torso: 'deep' (ResNet, 15 conv layers), 'shallow' (2 conv layers) or
        'mlp' (2 linear layers, flat [D] observations).
      lstm_size: LSTM units per column (h and c each float32 [B, lstm_size]
        per column; see `state_size`).
      task_one_hot_input: also feed one_hot(task_id, num_tasks) to the (task
        column's) LSTM.
      distral_parameterization: None (no Distral), '1col' or '2col'.
      distral_columns: 'shared' (h0 on the task column's LSTM output) or
        'separate' (π0 has its own torso and LSTM).
      distral_alpha, distral_beta: α in (0, 1], β > 0 of the 2-column
        parameterisation (distral.coefficients); unused otherwise.
      compute_dtype: 'float32' or 'bfloat16' (agent/precision.py): the dtype
        the torso(s) compute in. Variables, the LSTM(s), the heads, logits,
        values and the core state are float32 either way.
      core: 'lstm' (the paper) or 'feedforward': the heads read the torso's
        output directly and prev_action/prev_reward are not inputs (the
        feed-forward agents of Cleanba and monobeast, whose observation's
        frame stack carries the motion). The core state keeps its shape and
        passes through unchanged, so the Reverb signature is the same.
      head_init: 'glorot_uniform' (Keras' default, the original code) or
        'orthogonal': policy head kernel orthogonal with gain 0.01 (the
        initial policy is uniform to ~1e-3 nats) and value head gain 1, zero
        biases (CleanRL/Cleanba `layer_init`; Andrychowicz et al. 2021 §3.2).
      name: module name.

    Initialisation under Distral: h0 and the task heads (β·f_i or the
    1-column logits) start with zero kernels and biases, so π0 and every π_i
    start exactly uniform for any β (β·f_i = 0), and RMSProp moves them from
    there at a β-independent rate (class docstring).

    Raises:
      ValueError: on a non-positive size, an unknown torso, parameterisation,
        column layout, compute dtype, core or head_init, a feed-forward core
        with separate Distral columns, or α ∉ (0, 1] / β <= 0 under '2col'.
    """
    super().__init__(name=name)
    self.compute_dtype = precision.check_compute_dtype(compute_dtype)
    policy = precision.keras_policy(compute_dtype)
    for field, value in (('num_actions', num_actions), ('num_tasks', num_tasks),
                         ('lstm_size', lstm_size)):
      if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
          or value < 1):
        raise ValueError(f'`{field}` must be a positive int; got {value!r}.')
    if torso not in TORSOS:
      raise ValueError(f'`torso` must be one of {TORSOS}; got {torso!r}.')
    if distral_parameterization not in (None,) + DISTRAL_PARAMETERIZATIONS:
      raise ValueError('`distral_parameterization` must be None or one of '
                       f'{DISTRAL_PARAMETERIZATIONS}; got '
                       f'{distral_parameterization!r}.')
    if distral_columns not in DISTRAL_COLUMNS:
      raise ValueError(f'`distral_columns` must be one of {DISTRAL_COLUMNS}; '
                       f'got {distral_columns!r}.')
    if core not in CORES:
      raise ValueError(f'`core` must be one of {CORES}; got {core!r}.')
    if head_init not in HEAD_INITS:
      raise ValueError(f'`head_init` must be one of {HEAD_INITS}; got '
                       f'{head_init!r}.')
    if core == 'feedforward' and distral_parameterization and (
        distral_columns == 'separate'):
      raise ValueError("A 'feedforward' core needs distral_columns='shared'.")
    if distral_parameterization == '2col' and not (
        0.0 < distral_alpha <= 1.0 and distral_beta > 0.0):
      raise ValueError('2-column Distral needs alpha in (0, 1] and beta > 0; '
                       f'got alpha={distral_alpha}, beta={distral_beta}.')
    self.num_actions = num_actions = int(num_actions)
    self.num_tasks = num_tasks = int(num_tasks)
    self.lstm_size = lstm_size = int(lstm_size)
    self.torso_name = torso
    self.core_name, self.head_init = core, head_init
    feedforward = core == 'feedforward'
    self.task_one_hot_input = task_one_hot_input
    self.distral_parameterization = distral_parameterization
    self.distral_columns = distral_columns if distral_parameterization else None
    self.distral_alpha, self.distral_beta = float(distral_alpha), float(
        distral_beta)
    separate = self.distral_columns == 'separate'
    distral_init = dict(kernel_initializer='zeros', bias_initializer='zeros')
    policy_init = value_init = {}
    if head_init == 'orthogonal':
      policy_init = dict(kernel_initializer=tf.keras.initializers.Orthogonal(
          0.01), bias_initializer='zeros')
      value_init = dict(kernel_initializer=tf.keras.initializers.Orthogonal(
          1.0), bias_initializer='zeros')
    with self.name_scope:
      self._torso = torsos.make_torso(torso, dtype=policy)
      # The LSTM stays float32 (agent/precision.py: LSTM state).
      self._core = (None if feedforward else
                    tf.keras.layers.LSTMCell(lstm_size, name='lstm'))
      if distral_parameterization is None:
        self.policy_head = tf.keras.layers.Dense(num_actions,
                                                 name='policy_logits',
                                                 **policy_init)
      else:  # one head per task: [..., num_tasks · A]
        self.policy_head = tf.keras.layers.Dense(
            num_tasks * num_actions, name='task_policy_logits', **distral_init)
      # Own layer: PopArt rescales kernel [lstm, tasks], bias [tasks] (§5).
      self.value_head = tf.keras.layers.Dense(num_tasks, name='value',
                                              **value_init)
      self.distilled_head = None
      self._distilled_torso = self._distilled_core = None
      if distral_parameterization is not None:
        self.distilled_head = tf.keras.layers.Dense(
            num_actions, name='distilled_logits', **distral_init)
      if separate:
        self._distilled_torso = torsos.make_torso(
            torso, name=f'distilled_{self._torso.name}', dtype=policy)
        self._distilled_core = tf.keras.layers.LSTMCell(
            lstm_size, name='distilled_lstm')
    core_input_size = _HIDDEN_SIZE + num_actions + 1
    head_input_size = _HIDDEN_SIZE if feedforward else lstm_size
    builds = [] if feedforward else [
        (self._core, core_input_size
         + (num_tasks if task_one_hot_input else 0))]
    builds += [(self.policy_head, head_input_size),
               (self.value_head, head_input_size)]
    if self.distilled_head is not None:
      builds.append((self.distilled_head, head_input_size))
    if separate:
      builds.append((self._distilled_core, core_input_size))
    for layer, input_size in builds:
      with tf.name_scope(layer.name):  # 'lstm/kernel:0', not 'kernel:0'
        layer.build(tf.TensorShape([None, input_size]))
    self._layers = self._torso.layers + tuple(layer for layer, _ in builds)
    if separate:
      self._layers += self._distilled_torso.layers

  @property
  def state_size(self) -> int:
    """Width of each of h and c: lstm_size per column (2 with a separate π0)."""
    return self.lstm_size * (2 if self._distilled_core is not None else 1)

  @property
  def variables(self) -> Tuple[tf.Variable, ...]:
    """All variables in construction order (torso only after it is built)."""
    return tuple(v for layer in self._layers for v in layer.weights)

  @property
  def trainable_variables(self) -> Tuple[tf.Variable, ...]:
    """Trainable variables in construction order (see module docstring)."""
    return tuple(v for layer in self._layers for v in layer.trainable_weights)

  @property
  def distilled_variables(self) -> Tuple[tf.Variable, ...]:
    """π0's own variables: h0 and, with a separate column, its torso and LSTM."""
    layers = () if self.distilled_head is None else (self.distilled_head,)
    if self._distilled_core is not None:
      layers += (self._distilled_core,) + self._distilled_torso.layers
    return tuple(v for layer in layers for v in layer.trainable_weights)

  def distilled_policy_checkpoint(self) -> tf.train.Checkpoint:
    """A checkpoint view of π0's parameters, to warm-start π0 from a run.

    The view has the learner checkpoint's layout (root 'network', then the
    network's own attribute names), so
    `net.distilled_policy_checkpoint().read(path)` restores, from a Distral
    learner checkpoint at `path`, only what π0 computes with: h0 plus the
    shared torso and LSTM ('shared' columns) or π0's own column ('separate').
    Task heads and value heads keep their initial values.

    Raises:
      ValueError: if the network has no Distral heads.
    """
    if self.distilled_head is None:
      raise ValueError('distilled_policy_checkpoint needs a Distral network.')
    if self._distilled_core is None:
      parts = dict(_torso=self._torso)
      if self._core is not None:
        parts['_core'] = self._core
    else:
      parts = dict(_distilled_torso=self._distilled_torso,
                   _distilled_core=self._distilled_core)
    return tf.train.Checkpoint(network=tf.train.Checkpoint(
        distilled_head=self.distilled_head, **parts))

  def create_variables(self, observation_shape: Sequence[int],
                       observation_dtype=tf.uint8) -> None:
    """Builds every variable by one dummy batch-1 step (idempotent).

    Args:
      observation_shape: one observation without batch dim, e.g. (84, 84, 4).
      observation_dtype: e.g. tf.uint8 (Atari) or tf.float32.
    """
    shape = [1] + [int(d) for d in observation_shape]
    self.step(tf.zeros(shape, tf.as_dtype(observation_dtype)),
              tf.zeros([1], tf.int32), tf.zeros([1], tf.float32),
              tf.ones([1], tf.bool), tf.zeros([1], tf.int32),
              self.initial_state(1))

  def initial_state(self, batch_size) -> types.CoreState:
    """Zero LSTM state (h, c), each float32 [batch_size, state_size]."""
    zeros = tf.zeros([batch_size, self.state_size], tf.float32)
    return (zeros, zeros)

  def _preprocess(self, observation: tf.Tensor) -> tf.Tensor:
    """uint8 pixels → float32 in [0, 1]; float observations pass unscaled."""
    if observation.dtype == tf.uint8:
      return tf.cast(observation, tf.float32) * (1.0 / 255.0)
    if observation.dtype.is_floating:
      return tf.cast(observation, tf.float32)
    raise ValueError('`observation` must be uint8 pixels or float; got dtype '
                     f'{observation.dtype.name}.')

  def _core_input(self, torso_output, prev_action, prev_reward, first,
                  task_id, task_one_hot) -> tf.Tensor:
    """float32 [..., 256 + A + 1 (+ num_tasks)]; action/reward zeroed where
    `first` (a bfloat16 torso's output is cast to the float32 LSTM's dtype)."""
    not_first = tf.cast(tf.logical_not(first), tf.float32)  # [...]
    parts = [tf.cast(torso_output, tf.float32),
             tf.one_hot(prev_action, self.num_actions) * not_first[..., None],
             (tf.clip_by_value(prev_reward, -1.0, 1.0) * not_first)[..., None]]
    if task_one_hot:
      parts.append(tf.one_hot(task_id, self.num_tasks))
    return tf.concat(parts, axis=-1)

  @staticmethod
  def _core_step(core, core_input, first, core_state):
    """One LSTM step with the state reset to zeros where `first` (rows [B])."""
    reset = first[:, None]  # [B, 1]
    h, c = (tf.where(reset, tf.zeros_like(s), s) for s in core_state)
    output, (h, c) = core(core_input, [h, c])
    return output, (h, c)

  def _columns(self, core_state):
    """(torso, core, task one-hot input, own (h, c)) of each column."""
    if self._distilled_core is None:
      return [(self._torso, self._core, self.task_one_hot_input, core_state)]
    size = self.lstm_size
    task_state = tuple(s[:, :size] for s in core_state)  # [B, lstm_size]
    distilled_state = tuple(s[:, size:] for s in core_state)  # [B, lstm_size]
    return [(self._torso, self._core, self.task_one_hot_input, task_state),
            (self._distilled_torso, self._distilled_core, False,
             distilled_state)]

  @staticmethod
  def _joined(states):
    """Concatenates the columns' (h, c) on the last axis (one column: as is)."""
    if len(states) == 1:
      return states[0]
    return tuple(tf.concat(parts, axis=-1) for parts in zip(*states))

  def _heads(self, core_outputs, task_id):
    """AgentOutput, or DistralOutput under Distral, from the columns' outputs.

    core_outputs: per column float32 [..., lstm_size]; task_id int32 [...].
    """
    core_output = core_outputs[0]
    values = self.value_head(core_output)  # [..., num_tasks]
    if self.distral_parameterization is None:
      return types.AgentOutput(policy_logits=self.policy_head(core_output),
                               values=values)
    rank = task_id.shape.rank
    task_logits = self.policy_head(core_output)  # [..., num_tasks · A]
    task_logits = tf.reshape(task_logits, tf.concat(
        [tf.shape(task_logits)[:-1], [self.num_tasks, self.num_actions]], 0))
    task_logits = tf.gather(task_logits, task_id, axis=rank,
                            batch_dims=rank)  # [..., A] head of each row's task
    distilled_logits = self.distilled_head(core_outputs[-1])  # [..., A] h0
    if self.distral_parameterization == '2col':
      # The head outputs β·f_i, so f_i = head / β (docstring: β-free steps).
      policy_logits = distral.two_column_logits(
          distilled_logits, task_logits / self.distral_beta, self.distral_alpha,
          self.distral_beta)
    else:
      policy_logits = task_logits
    return types.DistralOutput(policy_logits=policy_logits, values=values,
                               distilled_logits=distilled_logits)

  def step(self, observation, prev_action, prev_reward, first, task_id,
           core_state: types.CoreState
           ) -> Tuple[types.AgentOutput, types.CoreState]:
    """One acting step for a batch of B environments.

    Args:
      observation: uint8 (scaled by 1/255) or float [B, H, W, C] ([B, D] for
        the 'mlp' torso).
      prev_action: int32 [B], a_{t−1} (ignored where `first`).
      prev_reward: float32 [B], r_t of the transition into x_t, unclipped
        (clipped to [−1, 1] here; ignored where `first`).
      first: bool [B], x_t starts an episode (state reset before the step).
      task_id: int32 [B], in [0, num_tasks).
      core_state: (h, c), each float32 [B, state_size].

    Returns:
      (AgentOutput(policy_logits float32 [B, A], values float32
      [B, num_tasks]) — DistralOutput with distilled_logits [B, A] under
      Distral —, new core_state (h, c)).

    Raises:
      ValueError: if an input has the wrong rank or `observation` dtype.
    """
    observation = _tensor(observation, 'observation', None,
                          1 + self._torso.observation_rank)
    prev_action = _tensor(prev_action, 'prev_action', tf.int32, 1)
    prev_reward = _tensor(prev_reward, 'prev_reward', tf.float32, 1)
    first = _tensor(first, 'first', tf.bool, 1)
    task_id = _tensor(task_id, 'task_id', tf.int32, 1)
    inputs = self._preprocess(observation)
    core_outputs, states = [], []
    for torso, core, one_hot, state in self._columns(core_state):
      torso_output = torso(inputs)  # [B, 256]
      if core is None:  # feed-forward: the state passes through
        core_outputs.append(tf.cast(torso_output, tf.float32))
        states.append(state)
        continue
      core_input = self._core_input(torso_output, prev_action, prev_reward,
                                    first, task_id, one_hot)
      core_output, state = self._core_step(core, core_input, first, state)
      core_outputs.append(core_output)
      states.append(state)
    return self._heads(core_outputs, task_id), self._joined(states)

  def unroll(self, observation, prev_action, prev_reward, first, task_id,
             core_state: types.CoreState
             ) -> Tuple[types.AgentOutput, types.CoreState]:
    """Time-major unroll over T steps (the learner's forward pass).

    The torso runs once over all T·B observations; the LSTM is a Python loop
    when T is static (unrolled in a tf.function graph) and tf.scan otherwise.

    Args:
      observation: uint8 or float [T, B, H, W, C] ([T, B, D] for 'mlp').
      prev_action: int32 [T, B].
      prev_reward: float32 [T, B], unclipped.
      first: bool [T, B]; where True the state is reset before that step.
      task_id: int32 [T, B].
      core_state: (h, c), each float32 [B, state_size], the state before t=0.

    Returns:
      (AgentOutput(policy_logits float32 [T, B, A], values float32
      [T, B, num_tasks]) — DistralOutput with distilled_logits [T, B, A]
      under Distral —, core_state after step T−1).

    Raises:
      ValueError: if an input has the wrong rank or `observation` dtype.
    """
    observation = _tensor(observation, 'observation', None,
                          2 + self._torso.observation_rank)
    prev_action = _tensor(prev_action, 'prev_action', tf.int32, 2)
    prev_reward = _tensor(prev_reward, 'prev_reward', tf.float32, 2)
    first = _tensor(first, 'first', tf.bool, 2)
    task_id = _tensor(task_id, 'task_id', tf.int32, 2)
    t_b = tf.shape(observation)[:2]  # [T, B]
    flat = tf.reshape(observation, tf.concat(
        [[-1], tf.shape(observation)[2:]], 0))  # [T·B, H, W, C]
    flat.set_shape([None] + observation.shape[2:].as_list())
    inputs = self._preprocess(flat)
    core_outputs, states = [], []
    for torso, core, one_hot, state in self._columns(core_state):
      torso_output = torso(inputs)  # [T·B, 256]
      torso_output = tf.reshape(
          torso_output, tf.concat([t_b, [_HIDDEN_SIZE]], 0))  # [T, B, 256]
      if core is None:  # feed-forward: the state passes through
        core_outputs.append(tf.cast(torso_output, tf.float32))
        states.append(state)
        continue
      core_input = self._core_input(torso_output, prev_action, prev_reward,
                                    first, task_id, one_hot)  # [T, B, D]
      outputs, state = self._unroll_core(core, core_input, first, state)
      core_outputs.append(outputs)
      states.append(state)
    return self._heads(core_outputs, task_id), self._joined(states)

  def _unroll_core(self, core, core_input, first, core_state):
    """LSTM over T steps: ([T, B, lstm_size] outputs, final (h, c))."""
    num_steps = core_input.shape[0]
    if num_steps is not None:
      outputs = []
      for t in range(num_steps):
        output, core_state = self._core_step(core, core_input[t], first[t],
                                             core_state)
        outputs.append(output)
      return tf.stack(outputs), core_state  # [T, B, lstm_size]

    def scan_fn(state, inputs):
      return self._core_step(core, inputs[0], inputs[1], state)[1]
    hs, cs = tf.scan(scan_fn, (core_input, first),
                     initializer=tuple(core_state))  # [T, B, lstm_size] each
    return hs, (hs[-1], cs[-1])  # the LSTM output is h
