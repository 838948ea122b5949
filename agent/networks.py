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


class ImpalaNetwork(tf.Module):
  """IMPALA torso + LSTM core + policy and per-task value heads (NHWC)."""

  def __init__(self, num_actions: int, *, num_tasks: int = 1,
               torso: str = 'deep', lstm_size: int = 256,
               task_one_hot_input: bool = False,
               name: str = 'impala_network'):
    """Creates the network; core and heads are built here, the torso lazily.

    Args:
      num_actions: A, size of the action set (policy logits and prev_action
        one-hot).
      num_tasks: number of value outputs (one per task; PopArt normalised).
      torso: 'deep' (ResNet, 15 conv layers), 'shallow' (2 conv layers) or
        'mlp' (2 linear layers, flat [D] observations).
      lstm_size: LSTM units (h and c each float32 [B, lstm_size]).
      task_one_hot_input: also feed one_hot(task_id, num_tasks) to the LSTM.
      name: module name.

    Raises:
      ValueError: on a non-positive size or an unknown torso.
    """
    super().__init__(name=name)
    for field, value in (('num_actions', num_actions), ('num_tasks', num_tasks),
                         ('lstm_size', lstm_size)):
      if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
          or value < 1):
        raise ValueError(f'`{field}` must be a positive int; got {value!r}.')
    if torso not in TORSOS:
      raise ValueError(f'`torso` must be one of {TORSOS}; got {torso!r}.')
    self.num_actions = num_actions = int(num_actions)
    self.num_tasks = num_tasks = int(num_tasks)
    self.lstm_size = lstm_size = int(lstm_size)
    self.torso_name = torso
    self.task_one_hot_input = task_one_hot_input
    with self.name_scope:
      self._torso = torsos.make_torso(torso)
      self._core = tf.keras.layers.LSTMCell(lstm_size, name='lstm')
      self.policy_head = tf.keras.layers.Dense(num_actions,
                                               name='policy_logits')
      # Own layer: PopArt rescales kernel [lstm, tasks], bias [tasks] (§5).
      self.value_head = tf.keras.layers.Dense(num_tasks, name='value')
    core_input_size = (_HIDDEN_SIZE + num_actions + 1
                       + (num_tasks if task_one_hot_input else 0))
    for layer, input_size in ((self._core, core_input_size),
                              (self.policy_head, lstm_size),
                              (self.value_head, lstm_size)):
      with tf.name_scope(layer.name):  # 'lstm/kernel:0', not 'kernel:0'
        layer.build(tf.TensorShape([None, input_size]))
    self._layers = self._torso.layers + (self._core, self.policy_head,
                                         self.value_head)

  @property
  def variables(self) -> Tuple[tf.Variable, ...]:
    """All variables in construction order (torso only after it is built)."""
    return tuple(v for layer in self._layers for v in layer.weights)

  @property
  def trainable_variables(self) -> Tuple[tf.Variable, ...]:
    """Trainable variables in construction order (see module docstring)."""
    return tuple(v for layer in self._layers for v in layer.trainable_weights)

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
    """Zero LSTM state (h, c), each float32 [batch_size, lstm_size]."""
    zeros = tf.zeros([batch_size, self.lstm_size], tf.float32)
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
                  task_id) -> tf.Tensor:
    """[..., 256 + A + 1 (+ num_tasks)]; action/reward zeroed where `first`."""
    not_first = tf.cast(tf.logical_not(first), tf.float32)  # [...]
    parts = [torso_output,
             tf.one_hot(prev_action, self.num_actions) * not_first[..., None],
             (tf.clip_by_value(prev_reward, -1.0, 1.0) * not_first)[..., None]]
    if self.task_one_hot_input:
      parts.append(tf.one_hot(task_id, self.num_tasks))
    return tf.concat(parts, axis=-1)

  def _core_step(self, core_input, first, core_state):
    """One LSTM step with the state reset to zeros where `first` (rows [B])."""
    reset = first[:, None]  # [B, 1]
    h, c = (tf.where(reset, tf.zeros_like(s), s) for s in core_state)
    output, (h, c) = self._core(core_input, [h, c])
    return output, (h, c)

  def _heads(self, core_output: tf.Tensor) -> types.AgentOutput:
    return types.AgentOutput(policy_logits=self.policy_head(core_output),
                             values=self.value_head(core_output))

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
      core_state: (h, c), each float32 [B, lstm_size].

    Returns:
      (AgentOutput(policy_logits float32 [B, A], values float32
      [B, num_tasks]), new core_state (h, c)).

    Raises:
      ValueError: if an input has the wrong rank or `observation` dtype.
    """
    observation = _tensor(observation, 'observation', None,
                          1 + self._torso.observation_rank)
    prev_action = _tensor(prev_action, 'prev_action', tf.int32, 1)
    prev_reward = _tensor(prev_reward, 'prev_reward', tf.float32, 1)
    first = _tensor(first, 'first', tf.bool, 1)
    task_id = _tensor(task_id, 'task_id', tf.int32, 1)
    torso_output = self._torso(self._preprocess(observation))  # [B, 256]
    core_input = self._core_input(torso_output, prev_action, prev_reward,
                                  first, task_id)
    core_output, core_state = self._core_step(core_input, first, core_state)
    return self._heads(core_output), core_state

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
      core_state: (h, c), each float32 [B, lstm_size], the state before t=0.

    Returns:
      (AgentOutput(policy_logits float32 [T, B, A], values float32
      [T, B, num_tasks]), core_state after step T−1).

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
    torso_output = self._torso(self._preprocess(flat))  # [T·B, 256]
    torso_output = tf.reshape(
        torso_output, tf.concat([t_b, [_HIDDEN_SIZE]], 0))  # [T, B, 256]
    core_input = self._core_input(torso_output, prev_action, prev_reward,
                                  first, task_id)  # [T, B, D]
    num_steps = observation.shape[0]
    if num_steps is not None:
      outputs = []
      for t in range(num_steps):
        output, core_state = self._core_step(core_input[t], first[t],
                                             core_state)
        outputs.append(output)
      core_outputs = tf.stack(outputs)  # [T, B, lstm_size]
    else:
      def scan_fn(state, inputs):
        return self._core_step(inputs[0], inputs[1], state)[1]
      hs, cs = tf.scan(scan_fn, (core_input, first),
                       initializer=tuple(core_state))  # [T, B, lstm_size] each
      core_outputs = hs  # the LSTM output is h
      core_state = (hs[-1], cs[-1])
    return self._heads(core_outputs), core_state
