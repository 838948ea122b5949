"""IMPALA learner: one tf.function train step under a tf.distribute strategy.

The learner owns the strategy scope, the optimizer, the step/agent-step
counters and the CheckpointManager; it receives the network factory, the
dataset function and the loss as arguments (Acme `learning.py`,
TF-Agents `train/learner.py`). Loop, as a launcher drives it:

    learner = Learner(make_network=..., dataset_fn=..., loss_fn=..., ...)
    learner.restore()                # resume from checkpoint_dir if any
    while not done:
      metrics = learner.step()       # one global batch of B unrolls
      if time_to_save: learner.save()
    weights = learner.get_variables()

Gradients. Losses are sums over time and batch (IMPALA); each replica computes
the gradient of its share, the gradients are summed across replicas
(`all_reduce(SUM)`), clipped by their GLOBAL norm (IMPALA: 40) and applied with
`skip_gradients_aggregation=True`, so a step on R replicas equals the step on
one device with the same global batch.

PopArt (Hessel et al. 2018; SPEC §5), when `popart_step_size` is given: the
learner owns the per-task statistics μ, σ, ν (float32 [num_tasks] variables,
checkpointed with the network). Each step (1) computes the loss with the
current statistics (`losses.popart_impala_loss`), (2) applies the gradients,
(3) sums every replica's ART increments of the step's V-trace targets
(`popart.increments`, all-reduce SUM) and applies them, and (4) rescales the
value head's kernel and bias (`popart.preserve_outputs`) so the unnormalised
values σ n + μ are unchanged by (3). Every replica holds identical statistics.

XLA and TPUs. With `jit_compile=True` each replica's forward pass, loss and
gradients (`_local_loss_and_gradients`) are one XLA computation; the
all-reduce, the clip and RMSProp stay outside it, as a MirroredStrategy
requires (an XLA cluster does not span devices). TPUStrategy compiles the
whole replica function whatever `jit_compile` says, which shaped the code:
everything in a replica step is XLA-compilable (tested on CPU with
jit_compile), shapes are static per step (T+1, B/R from the dataset), the
uint8 observations and Reverb ops stay in the host's input pipeline
(`distribute_datasets_from_function`), and the non-finite guard does not
rely on CheckNumerics, which XLA compiles to a no-op (measured: a NaN norm
passes `assert_all_finite` under jit_compile): non-finite gradients are
zeroed in the graph, so the weights keep their values (RMSProp with momentum
0, the default), and `step_on` raises on the host.

Compute dtype: the network's (agent/precision.py). The gradients, the
optimizer state and the variables are float32 in both dtypes.

Units: `agent_steps` counts agent steps consumed by the learner (B·T per step);
frames = agent_steps × frame_skip (raw Atari frames).
"""

import math
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from agent import networks
from agent import optimizers
from agent import packing
from agent import popart
from agent import types

LossFn = Callable[[types.AgentOutput, types.Unroll],
                  Tuple[tf.Tensor, types.Metrics]]
# (outputs, unroll, popart_state) -> (loss, metrics, vs [T, B] unnormalised).
PopArtLossFn = Callable[[types.AgentOutput, types.Unroll, popart.PopArtState],
                        Tuple[tf.Tensor, types.Metrics, tf.Tensor]]
DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]


def network_inputs(unroll: types.Unroll):
  """Network inputs of an unroll: the reward into x_t is x_t's prev_reward."""
  return (unroll.observation, unroll.prev_action, unroll.reward, unroll.first,
          unroll.task_id, unroll.core_state)


class LinearDecayByFrames(tf.keras.optimizers.schedules.LearningRateSchedule):
  """lr = lr0 · max(0, 1 − frames / total_frames), frames read from a counter.

  Tied to the frame counter rather than optimizer iterations, so resuming with
  another batch size or unroll length keeps the schedule (IMPALA: linear decay
  to 0 over the run's frames).
  """

  def __init__(self, initial_learning_rate: float, total_frames: int,
               agent_steps: tf.Variable, frame_skip: int):
    self._initial = float(initial_learning_rate)
    self._total_frames = float(total_frames)
    self._agent_steps = agent_steps
    self._frame_skip = float(frame_skip)

  def __call__(self, step=None):
    del step  # the schedule follows frames, not optimizer iterations
    frames = tf.cast(self._agent_steps, tf.float32) * self._frame_skip
    return self._initial * tf.maximum(0.0, 1.0 - frames / self._total_frames)

  def get_config(self):
    return dict(initial_learning_rate=self._initial,
                total_frames=self._total_frames, frame_skip=self._frame_skip)


class Learner:
  """V-trace actor-critic learner (Espeholt et al. 2018, §4)."""

  def __init__(self, *,
               make_network: Callable[[], networks.ImpalaNetwork],
               observation_spec: tf.TensorSpec,
               dataset_fn: Optional[DatasetFn],
               loss_fn: LossFn,
               strategy: tf.distribute.Strategy,
               learning_rate: float = 6e-4,
               total_frames: int = 200_000_000,
               rmsprop_decay: float = 0.99,
               rmsprop_momentum: float = 0.0,
               rmsprop_epsilon: float = 0.01,
               rmsprop_form: str = 'keras',
               max_grad_norm: float = 40.0,
               agent_steps_per_step: int = 640,
               frame_skip: int = 4,
               checkpoint_dir: Optional[str] = None,
               max_checkpoints_to_keep: int = 3,
               popart_step_size: Optional[float] = None,
               popart_scale_lb: float = 1e-4,
               popart_scale_ub: float = 1e6,
               jit_compile: bool = False):
    """Builds the learner.

    Args:
      make_network: creates the ImpalaNetwork (called inside the strategy scope).
      observation_spec: spec of ONE observation (e.g. uint8 [84, 84, 4]).
      dataset_fn: input_context -> dataset of time-major `types.Unroll` with
        the per-replica batch size; given to
        `strategy.distribute_datasets_from_function`. None for a learner only
        used through `gradients`/`step_on`.
      loss_fn: (agent_outputs over T+1 steps, unroll) -> (loss, metrics);
        with PopArt a PopArtLossFn (e.g. `losses.popart_impala_loss`):
        (agent_outputs, unroll, popart_state) -> (loss, metrics, vs [T, B]).
      strategy: the tf.distribute strategy (default, Mirrored or TPU).
      learning_rate: initial RMSProp learning rate, linearly decayed to 0 at
        `total_frames` consumed raw frames.
      total_frames: raw frames at which the learning rate reaches 0.
      rmsprop_decay, rmsprop_momentum, rmsprop_epsilon: RMSProp (IMPALA: 0.99,
        0, 0.01).
      rmsprop_form: where ε sits and where the accumulator starts
        (agent/optimizers.py: 'keras', 'tf1' or 'pytorch').
      max_grad_norm: global-norm gradient clip (IMPALA: 40).
      agent_steps_per_step: B · T, agent steps consumed per learner step.
      frame_skip: raw frames per agent step.
      checkpoint_dir: where CheckpointManager writes; None for no checkpoints.
      max_checkpoints_to_keep: checkpoints kept on disk.
      popart_step_size: β of PopArt's statistics (paper 3e-4), or None for no
        PopArt (the value head's outputs are then the values themselves).
      popart_scale_lb, popart_scale_ub: σ bounds (SPEC §5: 1e-4, 1e6).
      jit_compile: compile each replica's forward pass, loss and gradients
        with XLA (module docstring).

    Raises:
      ValueError: if `popart_step_size` is not None and not in (0, 1], or the
        σ bounds are not 0 < lb <= ub.
    """
    if popart_step_size is not None and not 0.0 < popart_step_size <= 1.0:
      raise ValueError('`popart_step_size` must be None (PopArt off) or in '
                       f'(0, 1]; got {popart_step_size}.')
    if not 0.0 < popart_scale_lb <= popart_scale_ub:
      raise ValueError('PopArt σ bounds must satisfy 0 < popart_scale_lb <= '
                       f'popart_scale_ub; got {popart_scale_lb}, '
                       f'{popart_scale_ub}.')
    self._popart_step_size = popart_step_size
    self._popart_bounds = (float(popart_scale_lb), float(popart_scale_ub))
    self._strategy = strategy
    self._loss_fn = loss_fn
    self._max_grad_norm = float(max_grad_norm)
    self._agent_steps_per_step = int(agent_steps_per_step)
    self._frame_skip = int(frame_skip)
    self._local_loss_and_gradients = tf.function(
        self._local_loss_and_gradients_fn, jit_compile=bool(jit_compile))
    with strategy.scope():
      self._network = make_network()
      self._network.create_variables(observation_spec.shape,
                                     observation_spec.dtype)
      self._learner_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name='learner_steps')
      self._agent_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                      name='agent_steps')
      self._schedule = LinearDecayByFrames(learning_rate, total_frames,
                                           self._agent_steps, frame_skip)
      self._optimizer = optimizers.RMSProp(
          learning_rate=self._schedule, rho=rmsprop_decay,
          momentum=rmsprop_momentum, epsilon=rmsprop_epsilon,
          form=rmsprop_form)
      self._optimizer.build(self._network.trainable_variables)
      self._popart = None
      if popart_step_size is not None:
        initial = popart.init_state(self._network.num_tasks)
        self._popart = popart.PopArtState(*(
            tf.Variable(value, trainable=False, name=f'popart_{field}')
            for field, value in zip(popart.PopArtState._fields, initial)))
    self._checkpoint = tf.train.Checkpoint(
        network=self._network, optimizer=self._optimizer,
        learner_steps=self._learner_steps, agent_steps=self._agent_steps)
    if self._popart is not None:
      self._checkpoint.popart = tf.train.Checkpoint(**self._popart._asdict())
    self._manager = None
    self._max_checkpoints_to_keep = max_checkpoints_to_keep
    if checkpoint_dir:
      self._manager = tf.train.CheckpointManager(
          self._checkpoint, checkpoint_dir, max_to_keep=max_checkpoints_to_keep)
    self._iterator = None
    self._unroll_spec = None  # set when the dataset's batches are packed
    self._counts = None  # (learner steps, agent steps) after the last step
    if dataset_fn is not None:
      dataset = strategy.distribute_datasets_from_function(
          self._packed(dataset_fn))
      self._iterator = iter(dataset)

  def _packed(self, dataset_fn: DatasetFn) -> DatasetFn:
    """`dataset_fn` whose batches are one uint8 tensor (agent/packing.py).

    `next(iterator)` then makes one EagerTensor per replica instead of one
    per field (tensorflow#62551 leaks host memory per EagerTensor); the
    replica step unpacks. Batches without static shapes stay as they are.
    """
    def packed_dataset_fn(input_context):
      dataset = dataset_fn(input_context)
      if not packing.packable(dataset.element_spec):
        return dataset
      self._unroll_spec = dataset.element_spec
      return dataset.map(packing.pack)
    return packed_dataset_fn

  # ---------------------------------------------------------------- properties
  @property
  def network(self) -> networks.ImpalaNetwork:
    return self._network

  @property
  def strategy(self) -> tf.distribute.Strategy:
    return self._strategy

  @property
  def learner_step_counter(self) -> tf.Variable:
    """The int64 learner-step variable (e.g. published with the weights)."""
    return self._learner_steps

  # The counters as of the last step, without reading the variables (each
  # read is an EagerTensor, and the launcher reads `frames` every step).
  @property
  def learner_steps(self) -> int:
    if self._counts is None:
      return int(self._learner_steps.numpy())
    return self._counts[0]

  @property
  def agent_steps(self) -> int:
    if self._counts is None:
      return int(self._agent_steps.numpy())
    return self._counts[1]

  @property
  def frames(self) -> int:
    """Raw frames consumed by the learner (agent steps × frame_skip)."""
    return self.agent_steps * self._frame_skip

  @property
  def popart_state(self) -> Optional[popart.PopArtState]:
    """PopArt statistics (mu, sigma, nu variables, float32 [num_tasks]) or None."""
    return self._popart

  def popart_statistics(self) -> Optional[popart.PopArtState]:
    """The current PopArt statistics as numpy float32 [num_tasks], or None."""
    if self._popart is None:
      return None
    return popart.PopArtState(*(v.numpy() for v in self._popart))

  def get_variables(self) -> Sequence[np.ndarray]:
    """The network's trainable variables as numpy arrays, in network order."""
    return [v.numpy() for v in self._network.trainable_variables]

  # ------------------------------------------------------------------ training
  def _local_loss_and_gradients_fn(self, unroll: types.Unroll):
    """This replica's loss, metrics, gradients and, with PopArt, ART
    increments (d_mu, d_nu) of its share of the targets (else ())."""
    variables = self._network.trainable_variables
    increments = ()
    with tf.GradientTape() as tape:
      outputs, _ = self._network.unroll(*network_inputs(unroll))
      if self._popart is None:
        loss, metrics = self._loss_fn(outputs, unroll)
      else:
        state = popart.PopArtState(*(tf.identity(v) for v in self._popart))
        loss, metrics, vs = self._loss_fn(outputs, unroll, state)
        # Same statistics as the loss; summed over replicas so every
        # replica applies the same update (SPEC §5).
        increments = popart.increments(state, vs, unroll.task_id[:-1],
                                       self._popart_step_size)
    # Zeros for variables a loss does not reach (e.g. a distillation-only
    # loss), so the all-reduce and the optimizer see every variable.
    gradients = tape.gradient(
        loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return loss, dict(metrics), gradients, increments

  def _replica_loss_and_gradients(self, unroll: types.Unroll):
    """Loss, metrics, all-reduced gradients and, with PopArt, the all-reduced
    ART increments (d_mu, d_nu) of the step's targets (else ())."""
    loss, metrics, gradients, increments = self._local_loss_and_gradients(
        unroll)
    context = tf.distribute.get_replica_context()
    gradients, increments = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                               (gradients, increments))
    return loss, dict(metrics), gradients, increments

  def _replica_step(self, unroll: types.Unroll):
    if isinstance(unroll, tf.Tensor):  # a packed batch (`_packed`)
      unroll = packing.unpack(unroll, self._unroll_spec)
    if self._popart is not None and hasattr(unroll, 'mask'):
      # Padded steps' targets would enter the statistics (SPEC §5 counts
      # real targets only).
      raise ValueError('PopArt does not support masked unrolls (HER replay '
                       'items); turn one of them off.')
    loss, metrics, gradients, increments = self._replica_loss_and_gradients(
        unroll)
    gradients, norm = tf.clip_by_global_norm(gradients, self._max_grad_norm)
    # Never apply (and then publish, checkpoint, export) non-finite weights:
    # raise instead (STYLE: never patch NaNs).
    norm = tf.debugging.assert_all_finite(
        norm, 'Non-finite gradient norm: the loss or its gradient is NaN/Inf.')
    # Under XLA (TPU) the assert above is a no-op: zero the update instead,
    # and step_on raises on the host (module docstring).
    finite = tf.math.is_finite(norm)
    gradients = [tf.where(finite, g, tf.zeros_like(g)) for g in gradients]
    with tf.control_dependencies([norm]):
      self._optimizer.apply_gradients(
          zip(gradients, self._network.trainable_variables),
          skip_gradients_aggregation=True)
    metrics['grad_norm'] = norm
    return loss, metrics, increments

  def _update_popart(self, d_mu, d_nu):
    """ART then POP, in cross-replica context after the gradient step."""
    old = popart.PopArtState(*(tf.identity(v) for v in self._popart))
    new = popart.apply_increments(old, d_mu, d_nu, *self._popart_bounds)
    head = self._network.value_head
    kernel, bias = popart.preserve_outputs(head.kernel, head.bias, old, new)
    head.kernel.assign(kernel)
    head.bias.assign(bias)
    for variable, value in zip(self._popart, new):
      variable.assign(value)

  def _reduce(self, loss, metrics):
    """Sums losses across replicas; averages the other (per-step) metrics.

    Grouped means: 'G/count' and 'G/X_sum' (e.g. Distral's per-task
    'distral/task_<i>/kl_sum') are summed across replicas and returned as
    'G/X' = sum / count, exact whatever each replica's share (NaN when the
    batch holds no step of the group, e.g. a task absent from the batch).
    """
    sum_, mean = tf.distribute.ReduceOp.SUM, tf.distribute.ReduceOp.MEAN
    summed = lambda k: k.endswith(('loss', '_sum', '/count'))
    reduced = {k: self._strategy.reduce(sum_ if summed(k) else mean,
                                        v, axis=None)
               for k, v in metrics.items()}
    reduced['loss'] = self._strategy.reduce(sum_, loss, axis=None)
    for key in [k for k in reduced if k.endswith('_sum')]:
      group = key.rsplit('/', 1)[0]
      count = reduced.get(f'{group}/count')
      if count is not None:
        total = reduced.pop(key)
        reduced[key[:-len('_sum')]] = tf.where(
            count > 0, total / tf.maximum(count, 1.0), float('nan'))
    for key in [k for k in reduced if k.endswith('/count')]:
      del reduced[key]
    return reduced

  @tf.function
  def _train_step(self, distributed_unroll):
    loss, metrics, increments = self._strategy.run(
        self._replica_step, args=(distributed_unroll,))
    if self._popart is not None:
      # Identical on every replica after the all-reduce: take one copy.
      d_mu, d_nu = (self._strategy.experimental_local_results(x)[0]
                    for x in increments)
      self._update_popart(d_mu, d_nu)
    metrics = self._reduce(loss, metrics)
    metrics['learning_rate'] = self._schedule()  # the rate this step used
    with tf.control_dependencies(tf.nest.flatten(metrics)):
      counts = [self._learner_steps.assign_add(1),
                self._agent_steps.assign_add(self._agent_steps_per_step)]
    # One float64 vector, not one tensor per metric: TF 2.15 on Python 3.11
    # leaks 16-48 bytes per EagerTensor returned (tensorflow#62551). The key
    # order is fixed when the step is traced; the two counters come last.
    self._metric_keys = sorted(metrics)
    return tf.stack([tf.cast(metrics[k], tf.float64)
                     for k in self._metric_keys]
                    + [tf.cast(c, tf.float64) for c in counts])

  def next_batch(self):
    """Blocks until the next global batch (distributed) is available.

    Separate from the step so a launcher can wait for data outside its step
    lock and save consistent checkpoints while the input is stalled.
    """
    if self._iterator is None:
      raise ValueError('This learner was built with dataset_fn=None; use step_on.')
    return next(self._iterator)

  def step(self) -> Dict[str, float]:
    """One learner step on the next global batch from the dataset."""
    return self.step_on(self.next_batch())

  def step_on(self, distributed_unroll) -> Dict[str, float]:
    """One learner step on a given (distributed) batch, e.g. in tests.

    Raises:
      tf.errors.InvalidArgumentError: if the gradient norm is NaN/Inf (the
        weights are then unchanged).
    """
    *values, learner_steps, agent_steps = (
        self._train_step(distributed_unroll).numpy().tolist())
    self._counts = (int(learner_steps), int(agent_steps))
    metrics = dict(zip(self._metric_keys, values))
    if not math.isfinite(metrics['grad_norm']):  # XLA skips the in-graph check
      raise tf.errors.InvalidArgumentError(
          None, None, 'Non-finite gradient norm: the loss or its gradient is '
          'NaN/Inf; the update was not applied.')
    return metrics

  @tf.function
  def _gradients(self, distributed_unroll):
    loss, _, gradients, _ = self._strategy.run(
        self._replica_loss_and_gradients, args=(distributed_unroll,))
    loss = self._strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
    # After all_reduce every replica holds the global sum: take one copy.
    gradients = [self._strategy.experimental_local_results(g)[0]
                 for g in gradients]
    return loss, gradients

  def gradients(self, distributed_unroll) -> Tuple[float, Sequence[np.ndarray]]:
    """Global loss and (unclipped, all-reduced) gradients; no update."""
    loss, gradients = self._gradients(distributed_unroll)
    return float(loss), [g.numpy() for g in gradients]

  # --------------------------------------------------------------- checkpoint
  def restore(self) -> bool:
    """Restores the newest restorable checkpoint of checkpoint_dir.

    Tries the checkpoints newest first. One that cannot be read (a torn
    .data or .index file, a missing shard, another network's variables) is
    logged and moved, files and all, to CHECKPOINT_DIR/corrupt/ (never
    deleted), and dropped from the CheckpointManager's list, so that it does
    not keep a keep-slot while good older checkpoints rotate out.

    Returns:
      True if a checkpoint was restored, False if there was none.

    Raises:
      ValueError: if checkpoints exist and none can be restored (all are
        then in CHECKPOINT_DIR/corrupt/).
    """
    if self._manager is None or not self._manager.checkpoints:
      return False
    self._counts = None  # the counters come from the checkpoint
    directory = self._manager.directory
    set_aside = []
    restored = None
    for path in reversed(self._manager.checkpoints):  # newest first
      try:
        self._checkpoint.restore(path).assert_consumed()
      except (tf.errors.OpError, ValueError, AssertionError, IndexError,
              OSError) as e:  # IndexError: "Read less bytes than requested"
        logging.error('Cannot restore %s (%s: %s); setting it aside and '
                      'trying an older checkpoint.', path, type(e).__name__,
                      str(e).splitlines()[0] if str(e) else '')
        set_aside.append(path)
        continue
      restored = path
      break
    if set_aside:
      self._set_aside(set_aside, restored)
    if restored is None:
      raise ValueError(f'No checkpoint in {directory} could be restored (see '
                       'the errors above; the unreadable ones are in '
                       f'{os.path.join(directory, "corrupt")}): the run '
                       'directory belongs to an incompatible network or is '
                       'corrupted.')
    logging.info('Restored %s: %d learner steps, %d agent steps (%d frames).',
                 restored, self.learner_steps, self.agent_steps, self.frames)
    if self._popart is not None:
      logging.info('Restored PopArt statistics: %s', {
          field: [float(x) for x in value]
          for field, value in self.popart_statistics()._asdict().items()})
    return True

  def _set_aside(self, bad: Sequence[str], latest: Optional[str]) -> None:
    """Moves checkpoints `bad` to DIR/corrupt/ and rewrites the state file."""
    directory = self._manager.directory
    corrupt = os.path.join(directory, 'corrupt')
    tf.io.gfile.makedirs(corrupt)
    for path in bad:
      for name in tf.io.gfile.glob(path + '.*'):  # .index, .data-*-of-*
        target = os.path.join(corrupt, os.path.basename(name))
        tf.io.gfile.rename(name, target, overwrite=True)
      logging.warning('Moved the unreadable checkpoint %s to %s/.', path,
                      corrupt)
    state = tf.train.get_checkpoint_state(directory)
    stamps = dict(zip(state.all_model_checkpoint_paths,
                      state.all_model_checkpoint_timestamps))
    kept = [p for p in self._manager.checkpoints if p not in bad]
    if latest is None and kept:
      latest = kept[-1]
    if latest is None:
      tf.io.gfile.remove(os.path.join(directory, 'checkpoint'))
    else:  # timestamps too: CheckpointManager ignores paths without them
      tf.compat.v1.train.update_checkpoint_state(
          directory, latest, all_model_checkpoint_paths=kept,
          all_model_checkpoint_timestamps=[stamps[p] for p in kept],
          last_preserved_timestamp=state.last_preserved_timestamp)
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, directory,
        max_to_keep=self._max_checkpoints_to_keep)

  def save(self) -> Optional[str]:
    """Writes a checkpoint (network, optimizer, counters, PopArt); returns its path."""
    if self._manager is None:
      return None
    latest = self._manager.latest_checkpoint
    if latest and latest.endswith(f'-{self.learner_steps}'):
      return latest  # nothing new since the last save; do not rewrite it
    path = self._manager.save(checkpoint_number=self._learner_steps)
    logging.info('Saved checkpoint %s (%d frames).', os.path.basename(path),
                 self.frames)
    return path
