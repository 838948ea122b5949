"""Learner -> actor weights through the Reverb 'variables' table.

The learner publishes a flat, stably ordered list of variables plus its int64
`learner_step` counter as ONE item of the max_size-1 'variables' table
(`replay.tables.make_tables`); a new publish evicts the previous item. Actors
poll it every N agent steps and assign the values to their own copy of the
network.

Choice: TF-Agents 0.19's `ReverbVariableContainer`
(tf_agents/experimental/distributed/reverb_variable_container.py) moves the
data. Checked against Reverb 0.14: it requires the table to exist with a
signature and max_size 1 (it validates both), `push` inserts
`tf.nest.flatten(values)` with one in-graph `TFClient.insert` op (the server
validates dtypes/shapes against the signature) and `pull` samples with one
`TFClient.sample` op, so a `{'learner_step': int64, 'variables': (v0, v1, ...)}`
nest round-trips in a stable order. Its `pull`, though, has no timeout and
blocks forever on an empty table (MinSize(1) rate limiter), its `update`
would assign `learner_step` into a variable, and its TF op returns ~20
EagerTensors per pull (each leaks in TF 2.15 on Python 3.11,
tensorflow/tensorflow#62551). So the subscriber checks `server_info()` first
(the table never shrinks once published: only a new publish evicts the old
item, and sampling does not remove it), skips the pull when the table's insert
count shows nothing new, samples with the Python `reverb.Client` (numpy
arrays) and assigns the values itself, returning the learner step.

The learner's last publish of a finished run (`publish(final=True)`) stores
the step as −(step + 1): subscribers decode it and set `learner_finished`, so
actors of a split run stop by themselves (agent.actor.Actor.learner_finished).

The table's signature makes the server reject items of another shape or
dtype; the subscriber also rejects non-finite values (the port is
unauthenticated, README "Security"): it keeps its current weights and logs.

Both sides must pass the same variables in the same order (e.g.
`network.variables` of identically built networks); a mismatch in count, shape
or dtype raises ValueError at construction.
"""

import contextlib
import io
import sys
from typing import Any, Dict, Optional, Sequence, Union

from absl import logging
import numpy as np
import reverb
import tensorflow as tf


def _import_gym_without_its_notice():
  """Imports gym with its 3-line "Gym has been unmaintained" notice dropped.

  TF-Agents imports gym (tf_agents.system.system_multiprocessing) though
  nothing here uses it, and gym 0.26 prints that notice to stderr on import,
  on every start of every process. Anything else gym prints is kept.
  """
  captured = io.StringIO()
  with contextlib.redirect_stderr(captured):
    try:
      import gym  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      pass
  notice = ('Gym has been unmaintained', 'Please upgrade to Gymnasium',
            'See the migration guide at https://gymnasium')
  kept = [line for line in captured.getvalue().splitlines(keepends=True)
          if not line.startswith(notice)]
  sys.stderr.write(''.join(kept))


_import_gym_without_its_notice()
from tf_agents.experimental.distributed import reverb_variable_container  # pylint: disable=g-import-not-at-top,wrong-import-position

from agent import eager_leak
from agent import packing
from replay import tables

_STEP_KEY = 'learner_step'
_VARIABLES_KEY = 'variables'
_SERVER_INFO_TIMEOUT_SECS = 30

ClientOrAddress = Union[reverb.Client, str]


def variables_signature(
    variables: Sequence[tf.Variable]) -> Dict[str, Any]:
  """Returns the 'variables' table signature for `variables`.

  Args:
    variables: the published variables, in the order both sides use.

  Returns:
    {'learner_step': int64 [] (learner steps), 'variables': tuple of
    tf.TensorSpec(v.shape, v.dtype), one per variable, in order}.

  Raises:
    ValueError: if `variables` is empty.
  """
  if not variables:
    raise ValueError('variables must hold at least one tf.Variable, got [].')
  return {
      _STEP_KEY: tf.TensorSpec([], tf.int64, name=_STEP_KEY),
      _VARIABLES_KEY: tuple(
          tf.TensorSpec(v.shape, v.dtype) for v in variables),
  }


def _address(client_or_address: ClientOrAddress) -> str:
  if isinstance(client_or_address, reverb.Client):
    return client_or_address.server_address
  return client_or_address


def _check_table(client: reverb.Client, table: str,
                 variables: Sequence[tf.Variable]) -> None:
  """Raises ValueError unless `table`'s signature matches `variables`."""
  info = client.server_info(timeout=_SERVER_INFO_TIMEOUT_SECS)
  if table not in info:
    raise ValueError(f'table must be one of {sorted(info)}, got {table!r}.')
  expected = variables_signature(variables)
  served = info[table].signature
  if not served or set(served) != set(expected):
    raise ValueError(f'table {table!r} signature must be '
                     f'variables_signature(variables), got {served}.')
  if len(served[_VARIABLES_KEY]) != len(expected[_VARIABLES_KEY]):
    raise ValueError(
        f'variables must have {len(served[_VARIABLES_KEY])} entries (the '
        f'{table!r} signature), got {len(expected[_VARIABLES_KEY])}.')
  for i, (want, got) in enumerate(
      zip(served[_VARIABLES_KEY], expected[_VARIABLES_KEY])):
    if want.shape != got.shape or want.dtype != got.dtype:
      raise ValueError(
          f'variables[{i}] must be {want.dtype.name} {want.shape} (the '
          f'{table!r} signature), got {got.dtype.name} {got.shape} '
          f'({variables[i].name}).')


class VariablePublisher:
  """Learner side: publishes weights and the learner step counter."""

  def __init__(self,
               client_or_address: ClientOrAddress,
               variables: Sequence[tf.Variable],
               step_counter: tf.Variable,
               *,
               table: str = tables.VARIABLES_TABLE):
    """Connects to the server and checks the table signature.

    Args:
      client_or_address: reverb.Client or 'host:port' of the server.
      variables: variables to publish, in the order subscribers use.
      step_counter: integer scalar tf.Variable, learner steps (published as
        int64 `learner_step`).
      table: the variables table.

    Raises:
      ValueError: if the table is missing or its signature does not match.
    """
    address = _address(client_or_address)
    _check_table(reverb.Client(address), table, variables)
    self._variables = tuple(variables)
    self._step_counter = step_counter
    self._table = table
    self._container = reverb_variable_container.ReverbVariableContainer(
        address, table_names=(table,))

  def publish(self, final: bool = False) -> None:
    """Inserts the current values (replacing the previous publish).

    Returns once the server has stored the item (blocks while the server is
    unreachable: gRPC waits for it).

    Args:
      final: the run has finished training; subscribers see
        `learner_finished` (the step is stored as −(step + 1)).
    """
    self._push(final=bool(final))

  @tf.function
  def _push(self, final: bool) -> None:
    # In a graph: eagerly, reading the variables and the insert's arguments
    # made ~20 EagerTensors per publish, each leaking host memory in TF 2.15
    # on Python 3.11 (tensorflow#62551). `final` is a Python bool: 2 traces.
    step = tf.cast(self._step_counter, tf.int64)
    self._container.push(
        {
            _STEP_KEY: -step - 1 if final else step,
            _VARIABLES_KEY: self._variables,
        },
        table=self._table)


class VariableSubscriber:
  """Actor side: assigns the latest published weights to local variables."""

  def __init__(self,
               client_or_address: ClientOrAddress,
               variables: Sequence[tf.Variable],
               *,
               table: str = tables.VARIABLES_TABLE):
    """Connects to the server and checks the table signature.

    Args:
      client_or_address: reverb.Client or 'host:port' of the server.
      variables: the actor's variables, in the publisher's order.
      table: the variables table.

    Raises:
      ValueError: if the table is missing or its signature does not match.
    """
    address = _address(client_or_address)
    self._client = reverb.Client(address)
    _check_table(self._client, table, variables)
    self._variables = tuple(variables)
    self._specs = variables_signature(variables)[_VARIABLES_KEY]
    self._table = table
    self.learner_finished = False
    self.rejected = 0
    # Insert count of the table at the last pull, and that pull's step.
    self._pulled_inserts, self._pulled_step = None, None

  def update(self, wait: bool = False) -> Optional[int]:
    """Assigns the latest published values to the variables.

    Args:
      wait: if True, block until something has been published. If False,
        return None at once when nothing has been published yet.

    Sets `learner_finished` when the values are the final publish of a
    finished run. Values with a NaN or ±inf are not assigned (logged, counted
    in `rejected`; the current weights stay) and None is returned. With `wait`
    False and nothing published since the last pull (the table's insert count
    is unchanged), nothing is pulled: the step of the weights already
    assigned is returned.

    Returns:
      The learner step (learner steps, not frames) the values were published
      at, or None if nothing was published yet and `wait` is False.

    Raises:
      reverb.DeadlineExceededError: if `wait` is False and the server does not
        answer `server_info` within 30 s.
    """
    if not wait:
      info = self._client.server_info(timeout=_SERVER_INFO_TIMEOUT_SECS)
      if info[self._table].current_size == 0:
        return None
      inserts = info[self._table].rate_limiter_info.insert_stats.completed
      if inserts == self._pulled_inserts:
        # Nothing published since the last pull: skip it. A pull creates
        # a few EagerTensors per variable, and TF 2.15 on Python 3.11 leaks
        # 16-48 bytes per EagerTensor (tensorflow/tensorflow#62551); polling
        # every few agent steps made that most of an actor's RSS growth.
        return self._pulled_step
    else:
      inserts = None
    # The Python client's sample gives numpy arrays: no EagerTensors (each
    # leaks in TF 2.15 on Python 3.11, tensorflow#62551), unlike the
    # container's TFClient.sample op. It blocks like `pull` while the table
    # is empty (only with `wait`: otherwise it was checked above).
    sample = next(iter(self._client.sample(
        self._table, num_samples=1, emit_timesteps=False,
        unpack_as_table_signature=True)))
    # Each column holds the item's one step: [1, ...].
    step = int(np.asarray(sample.data[_STEP_KEY]).reshape(()))
    arrays = [np.asarray(v)[0] for v in sample.data[_VARIABLES_KEY]]
    if not all(np.isfinite(a).all() for a in arrays):
      self._pulled_inserts = inserts  # warn once per bad publish
      self.rejected += 1
      logging.warning('Ignored weights with NaN or inf values from the %r '
                      'table (published step %d); kept the current ones.',
                      self._table, step)
      return None
    # One uint8 buffer into one tf.function: one EagerTensor per pull
    # instead of one per variable, made here so its leak can be freed
    # (tensorflow#62551, agent/eager_leak.py).
    packed = tf.constant(np.concatenate(
        [np.ascontiguousarray(a).view(np.uint8).reshape(-1) for a in arrays]))
    self._assign(packed)
    eager_leak.release(packed)
    if step < 0:
      self.learner_finished, step = True, -step - 1
    self._pulled_inserts, self._pulled_step = inserts, step
    return step

  @tf.function
  def _assign(self, packed: tf.Tensor) -> None:
    """Assigns `agent.packing.pack` of the values (uint8 [bytes])."""
    for variable, value in zip(self._variables,
                               packing.unpack(packed, self._specs)):
      variable.assign(value, read_value=False)
