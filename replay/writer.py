"""Overlapping T+1 unroll writer for the Reverb 'queue' table.

One `UnrollWriter` per environment stream (an actor with `num_envs`
environments makes `num_envs` writers on one `reverb.Client`). The stream is
continuous across episodes: episode boundaries are NOT item boundaries, the
`first`/`discount` fields carry them (data convention in `agent/types.py`).
Items cover agent steps [0..T], [T..2T], [2T..3T], ...: consecutive items share
exactly one step: the last step of an unroll (only its observation is used,
for the V-trace bootstrap value) is step 0 of the next, as in SEED RL's
`unroll_length + 1` unrolls.

`core_state` is the actor's LSTM state BEFORE step 0 of the unroll. It is
appended to the Reverb `TrajectoryWriter` only at unroll-start steps (0, T, 2T,
...); the other steps leave that column empty (partial steps), since the learner
reads one state per unroll. Measured with Reverb 0.14, T=20, lstm_size=256,
2000 agent steps: writing it at every step stores ~30% more core_state bytes
on the server (auto-tuned chunks also hold the unreferenced steps) and costs
1.6x client write time with tiny observations, ~15% with Atari uint8
[84, 84, 4] ones; storing it only where referenced costs nothing.

Reference: Acme `adders/reverb/sequence.py` (period = T, sequence_length = T+1,
`break_end_of_episode=False`) and Reverb's `TrajectoryWriter` docstring.
"""

from typing import Any, Dict, Mapping, Optional

import numpy as np
import reverb
import tensorflow as tf
import tree

from agent import types
from replay import tables

_CORE_STATE = 'core_state'
_PRIORITY = 1.0  # The queue is FIFO; priorities are unused but required.
# Seconds between `while_blocked` calls while `append` waits for queue room.
BLOCKED_POLL_SECS = 1.0


def step_spec(observation_spec: Any,
              num_actions: int,
              lstm_size: int = 256) -> Dict[str, Any]:
  """Returns the spec of ONE stored agent step: the single source of truth.

  Args:
    observation_spec: tf.TensorSpec (or nest of them) of one env observation,
      e.g. uint8 [84, 84, 4] for Atari.
    num_actions: size of the discrete action set (>= 1).
    lstm_size: size of each of the LSTM core state tensors h and c (>= 1).

  Returns:
    dict with keys exactly `agent.types.STEP_FIELDS`:
      observation: `observation_spec`; first: bool []; reward: float32 [];
      discount: float32 []; prev_action: int32 []; action: int32 [];
      behaviour_logits: float32 [num_actions]; task_id: int32 [];
      core_state: (h, c), each float32 [lstm_size].

  Raises:
    ValueError: if `num_actions` or `lstm_size` is < 1.
  """
  if num_actions < 1:
    raise ValueError(f'num_actions must be >= 1, got {num_actions}.')
  if lstm_size < 1:
    raise ValueError(f'lstm_size must be >= 1, got {lstm_size}.')
  spec = {
      'observation': observation_spec,
      'first': tf.TensorSpec([], tf.bool, name='first'),
      'reward': tf.TensorSpec([], tf.float32, name='reward'),
      'discount': tf.TensorSpec([], tf.float32, name='discount'),
      'prev_action': tf.TensorSpec([], tf.int32, name='prev_action'),
      'action': tf.TensorSpec([], tf.int32, name='action'),
      'behaviour_logits': tf.TensorSpec(
          [num_actions], tf.float32, name='behaviour_logits'),
      'task_id': tf.TensorSpec([], tf.int32, name='task_id'),
      _CORE_STATE: (
          tf.TensorSpec([lstm_size], tf.float32, name='core_state_h'),
          tf.TensorSpec([lstm_size], tf.float32, name='core_state_c')),
  }
  return {field: spec[field] for field in types.STEP_FIELDS}


def _map_per_step_fields(fn, specs: Mapping[str, Any]) -> Dict[str, Any]:
  """Maps `fn` over the specs of every field but core_state (kept as is)."""
  return {
      field: (specs[field] if field == _CORE_STATE else
              tree.map_structure(fn, specs[field]))
      for field in types.STEP_FIELDS
  }


def _field_name(path) -> str:
  return '/'.join(str(p) for p in path)


class _Leaf:
  """One step field's numpy dtype and shape (from its tf.TensorSpec)."""

  __slots__ = ('dtype', 'shape', 'name', 'tensor_shape')

  def __init__(self, spec: tf.TensorSpec):
    self.dtype = np.dtype(spec.dtype.as_numpy_dtype)
    self.name = spec.dtype.name
    self.tensor_shape = spec.shape
    self.shape = (tuple(spec.shape.as_list()) if spec.shape.rank is not None
                  else None)

  def accepts(self, shape) -> bool:
    """True if `shape` matches, None dimensions matching any size."""
    if self.shape is None:
      return True
    return len(shape) == len(self.shape) and all(
        want is None or want == got for want, got in zip(self.shape, shape))


class UnrollWriter:
  """Writes one environment stream as overlapping unrolls of T+1 agent steps.

  Usage (one env stream; `step` has the keys of `step_spec`, numpy values):

    writer = UnrollWriter(client, unroll_length=20)
    for each agent step t:
      writer.append(step_t)   # blocks while the queue is full
    writer.close()

  Back-pressure: after each item it calls
  `TrajectoryWriter.flush(block_until_num_items=max_in_flight_items)`, so the
  actor runs at most `max_in_flight_items` unconfirmed items ahead of the
  server; when the queue table is full, `append` blocks until the learner
  samples (items are never dropped). Meanwhile it calls `while_blocked()`
  (if set) every BLOCKED_POLL_SECS; an exception it raises ends the wait
  and propagates out of `append` (the actor uses this to stop once the
  learner has finished).
  """

  while_blocked = None  # Optional[Callable[[], None]]

  @staticmethod
  # pylint: disable-next=redefined-outer-name
  def signature(step_spec: Mapping[str, Any],
                unroll_length: int) -> Dict[str, Any]:
    """Returns the queue item signature for `step_spec` and T = unroll_length.

    Args:
      step_spec: output of `step_spec(...)`.
      unroll_length: T (agent steps per unroll), >= 1.

    Returns:
      dict like `step_spec` where every field has a leading [T+1] time
      dimension, except `core_state`: (h, c), each float32 [lstm_size], stored
      once per item (the LSTM state before step 0 of the unroll).

    Raises:
      ValueError: if `unroll_length` < 1 or the keys are not STEP_FIELDS.
    """
    if unroll_length < 1:
      raise ValueError(f'unroll_length must be >= 1, got {unroll_length}.')
    if set(step_spec) != set(types.STEP_FIELDS):
      raise ValueError(f'step_spec keys must be {sorted(types.STEP_FIELDS)}, '
                       f'got {sorted(step_spec)}.')
    return _map_per_step_fields(
        lambda s: tf.TensorSpec([unroll_length + 1, *s.shape], s.dtype, s.name),
        step_spec)

  def __init__(self,
               client: reverb.Client,
               *,
               unroll_length: int,
               table: str = tables.QUEUE_TABLE,
               max_in_flight_items: int = 2):
    """Creates the writer; blocks until the server answers `server_info`.

    Args:
      client: reverb.Client of the server holding `table`.
      unroll_length: T, agent steps per unroll (items hold T+1 steps).
      table: name of the table to insert into (must have a signature, as made
        by `replay.tables.make_tables`).
      max_in_flight_items: items allowed to be unconfirmed by the server after
        each insert (>= 0; 0 makes every item synchronous).

    Raises:
      ValueError: if `unroll_length` < 1, `max_in_flight_items` < 0, `table`
        is missing or has no signature, or its time dimension is not T+1.
    """
    if unroll_length < 1:
      raise ValueError(f'unroll_length must be >= 1, got {unroll_length}.')
    if max_in_flight_items < 0:
      raise ValueError(
          f'max_in_flight_items must be >= 0, got {max_in_flight_items}.')
    info = client.server_info()
    if table not in info or not info[table].signature:
      raise ValueError(f'table must name a Reverb table with a signature; '
                       f'{table!r} not found or unsigned in {sorted(info)}.')
    signature = info[table].signature
    if not isinstance(signature, Mapping) or set(signature) != set(
        types.STEP_FIELDS):
      raise ValueError(f'table {table!r} signature must have the keys '
                       f'{sorted(types.STEP_FIELDS)}, got {signature}.')
    observed_length = signature['reward'].shape[0]
    if observed_length != unroll_length + 1:
      raise ValueError(
          f'unroll_length must match the {table!r} signature (time dim '
          f'{observed_length} = T+1), got unroll_length={unroll_length}.')
    # Step-level spec (time dimension stripped) as numpy dtypes and shape
    # tuples, read once to validate appends: TensorShape checks and
    # tree.map_structure_with_path per step were ~60% of an actor's time on
    # Catch (cProfile of Actor.run_step, 8 envs).
    self._leaf_spec = tree.map_structure(_Leaf, _map_per_step_fields(
        lambda s: tf.TensorSpec(s.shape[1:], s.dtype, s.name), signature))
    self._unroll_length = unroll_length
    self._table = table
    self._max_in_flight_items = max_in_flight_items
    # T+1 refs per column are enough: an item references the last T+1 steps.
    self._writer = client.trajectory_writer(
        num_keep_alive_refs=unroll_length + 1)
    self._num_steps = 0  # Agent steps appended so far.
    self._num_items = 0

  @property
  def num_items(self) -> int:
    """Number of items (unrolls) created so far."""
    return self._num_items

  def _coerce(self, path, spec: '_Leaf', value: Any) -> np.ndarray:
    """Returns `value` as a numpy array of `spec`'s dtype; checks its shape."""
    value = np.asarray(value)
    if value.dtype != spec.dtype:
      if not np.can_cast(value.dtype, spec.dtype, casting='same_kind'):
        raise ValueError(
            f'step field {_field_name(path)} must have dtype {spec.name} '
            f'(or a same-kind dtype), got {value.dtype}.')
      value = value.astype(spec.dtype)
    if value.shape != spec.shape and not spec.accepts(value.shape):
      raise ValueError(f'step field {_field_name(path)} must have shape '
                       f'{spec.tensor_shape}, got {value.shape}.')
    return value

  def _coerce_nest(self, path, spec, value):
    """`_coerce` over a nest of leaves (dict observations, core_state)."""
    if isinstance(spec, _Leaf):
      return self._coerce(path, spec, value)
    if isinstance(spec, Mapping):
      if not isinstance(value, Mapping) or set(value) != set(spec):
        raise ValueError(
            f'step field {_field_name(path)} must be a dict with keys '
            f'{sorted(spec)}, got {value!r:.200}.')
      return {k: self._coerce_nest(path + (k,), spec[k], value[k])
              for k in spec}
    if (not isinstance(value, (tuple, list)) or len(value) != len(spec)):
      raise ValueError(
          f'step field {_field_name(path)} must be a sequence of '
          f'{len(spec)} arrays, got {value!r:.200}.')
    return tuple(self._coerce_nest(path + (i,), s, v)
                 for i, (s, v) in enumerate(zip(spec, value)))

  def append(self, step: Mapping[str, Any]) -> None:
    """Appends one agent step; creates an item every T steps after the first.

    Args:
      step: dict with the keys of `step_spec` (`agent.types.STEP_FIELDS`),
        numpy (or Python) values of ONE step, without batch or time dimension.
        Values are cast to the spec dtype when numpy's 'same_kind' rule allows
        it (e.g. float64 reward -> float32). `core_state` is the LSTM state
        before this step; only the one at unroll starts is stored.

    Raises:
      ValueError: if a field is missing or unexpected, or has a wrong dtype
        kind or shape.
    """
    if set(step) != set(types.STEP_FIELDS):
      raise ValueError(f'step keys must be {sorted(types.STEP_FIELDS)}, got '
                       f'{sorted(step)}.')
    # Lists and tuples are interchangeable here (e.g. core_state).
    step = {field: self._coerce_nest((field,), self._leaf_spec[field],
                                     step[field])
            for field in types.STEP_FIELDS}
    index = self._num_steps  # 0-based agent step index within the stream.
    if index % self._unroll_length != 0:
      del step[_CORE_STATE]  # Partial step: core_state column left empty.
    self._writer.append(step)
    self._num_steps += 1
    if index >= self._unroll_length and index % self._unroll_length == 0:
      self._create_item()

  def _create_item(self) -> None:
    length = self._unroll_length + 1
    history = self._writer.history
    trajectory = {
        field: tree.map_structure(lambda column: column[-length:],
                                  history[field])
        for field in types.STEP_FIELDS if field != _CORE_STATE
    }
    # A squeezed (single step) column: the state at the unroll start.
    trajectory[_CORE_STATE] = tree.map_structure(
        lambda column: column[-length], history[_CORE_STATE])
    self._writer.create_item(self._table, _PRIORITY, trajectory)
    self._num_items += 1
    if self.while_blocked is None:
      self._writer.flush(block_until_num_items=self._max_in_flight_items)
      return
    while True:  # a full queue: call while_blocked every BLOCKED_POLL_SECS
      try:
        self._writer.flush(block_until_num_items=self._max_in_flight_items,
                           timeout_ms=int(1000 * BLOCKED_POLL_SECS))
        return
      except reverb.errors.DeadlineExceededError:
        self.while_blocked()

  def close(self, timeout_ms: Optional[int] = None) -> None:
    """Sends all pending items, then closes the writer.

    Steps after the last complete unroll are discarded. Blocks while the queue
    is full, unless `timeout_ms` is given.

    Args:
      timeout_ms: optional limit in milliseconds on waiting for the server.

    Raises:
      reverb.DeadlineExceededError: if `timeout_ms` passed first (the writer is
        closed all the same).
    """
    try:
      self._writer.flush(timeout_ms=timeout_ms)
    finally:
      self._writer.close()

  def __enter__(self) -> 'UnrollWriter':
    return self

  def __exit__(self, *unused_exc_info) -> None:
    self.close()
