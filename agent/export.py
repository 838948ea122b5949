"""SavedModel export of the acting policy (SPEC §10).

In the style of Acme `tf/savers.py` and TF-Agents `PolicySaver`. Contract
(needs only TensorFlow to load; no project code):

  policy = tf.saved_model.load(path)
  state = policy.initial_state(batch_size)    # (h, c), float32 [B, lstm_size]
  out = policy.step(observation=..., prev_action=int32 [B],
                    prev_reward=float32 [B], first=bool [B],
                    task_id=int32 [B], state=state)
  out['action']  int32 [B]     sampled from π (tf.random.categorical)
  out['logits']  float32 [B, num_actions]
  out['value']   float32 [B]   value of task task_id[b], unnormalised: with
                               PopArt σ_i n_i(x) + μ_i (SPEC §5), else the
                               value head's output
  out['state']   (h, c) like initial_state

Distral policies (SPEC §6) also have
  out = policy.distilled_step(...)   # same inputs and outputs as step; acts
                                     # with the distilled π0 (task_id only
                                     # selects out['value'])
and a 'distilled' signature like serving_default. With a separate π0 column
the state is (h, c), each float32 [B, 2·lstm_size] (both columns).

`first=True` resets that row's LSTM state and zeroes its prev_action and
prev_reward inside the step, exactly as the learner's network does.

Signatures (`saved_model_cli show --dir PATH --all`):
  serving_default: observation, prev_action, prev_reward, first, task_id,
    state_h, state_c -> action, logits, value, state_h, state_c
  initial_state: batch_size (int32 scalar) -> state_h, state_c

Metadata, as non-trainable variables of the loaded object (`.numpy()`):
  games (string [G]), action_set ('minimal' | 'full'), action_meanings
  (string [A] or [0]), num_actions, num_tasks, lstm_size, state_size (width
  of state_h/state_c: lstm_size, or 2·lstm_size with a separate Distral π0
  column), frames_trained (raw
  frames), agent_steps_trained (agent steps), observation_shape (int64 [rank]),
  observation_dtype (string), frame_skip (raw frames per agent step; only if
  given), popart_mu/popart_sigma (float32 [num_tasks]; only with PopArt, the
  statistics at export time), distral_variant/distral_columns (string) and
  distral_alpha/distral_beta (float32; only under Distral) and metadata_json (all of it, plus extra keys, as a JSON string).
The same JSON is written to PATH/assets.extra/metadata.json for humans.
"""

import json
import os
from typing import Any, Dict, Mapping, Optional

import numpy as np
import tensorflow as tf

from agent import networks
from agent import policy_dir
from agent import popart

ACTION_SETS = ('minimal', 'full')
_INT_KEYS = ('frames_trained', 'agent_steps_trained', 'frame_skip')


def _observation_spec(spec) -> tf.TensorSpec:
  """(shape, dtype) or anything with .shape/.dtype -> TensorSpec [None, ...]."""
  if hasattr(spec, 'shape') and hasattr(spec, 'dtype'):
    shape, dtype = spec.shape, spec.dtype
  elif isinstance(spec, (tuple, list)) and len(spec) == 2:
    shape, dtype = spec
  else:
    raise ValueError('`observation_spec` must be (shape, dtype) or have '
                     f'.shape and .dtype; got {spec!r}.')
  shape = tf.TensorShape(shape)
  if not shape.is_fully_defined():
    raise ValueError('`observation_spec` shape must be fully defined; got '
                     f'{shape}.')
  return tf.TensorSpec([None] + shape.as_list(), tf.as_dtype(dtype),
                       'observation')


def _check_metadata(metadata: Mapping[str, Any], network, obs_spec
                    ) -> Dict[str, Any]:
  """Validates `metadata` and completes it; returns a JSON-able dict."""
  meta = dict(metadata)
  for key in ('games', 'action_set'):
    if key not in meta:
      raise ValueError(f'`metadata` must contain {key!r}; got keys '
                       f'{sorted(meta)}.')
  games = meta['games']
  if (isinstance(games, str) or not games
      or not all(isinstance(g, str) for g in games)):
    raise ValueError("`metadata['games']` must be a non-empty list of str; "
                     f'got {games!r}.')
  if meta['action_set'] not in ACTION_SETS:
    raise ValueError(f"`metadata['action_set']` must be one of {ACTION_SETS}; "
                     f"got {meta['action_set']!r}.")
  meanings = list(meta.get('action_meanings', ()))
  if meanings and len(meanings) != network.num_actions:
    raise ValueError("`metadata['action_meanings']` must have num_actions = "
                     f'{network.num_actions} entries; got {len(meanings)}.')
  for key in ('num_actions', 'num_tasks'):
    if key in meta and meta[key] != getattr(network, key):
      raise ValueError(f"`metadata['{key}']` = {meta[key]!r} differs from the "
                       f'network\'s {key} = {getattr(network, key)}.')
  for key in _INT_KEYS:
    value, minimum = meta.get(key, 1), 1 if key == 'frame_skip' else 0
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
        or value < minimum):
      raise ValueError(f"`metadata['{key}']` must be an int >= {minimum}; "
                       f'got {value!r}.')
  meta.update(
      games=list(games), action_meanings=[str(m) for m in meanings],
      num_actions=network.num_actions, num_tasks=network.num_tasks,
      lstm_size=network.lstm_size, state_size=network.state_size,
      torso=network.torso_name, compute_dtype=network.compute_dtype,
      frames_trained=int(meta.get('frames_trained', 0)),
      agent_steps_trained=int(meta.get('agent_steps_trained', 0)),
      observation_shape=obs_spec.shape[1:].as_list(),
      observation_dtype=obs_spec.dtype.name)
  if 'frame_skip' in meta:
    meta['frame_skip'] = int(meta['frame_skip'])
  try:
    json.dumps(meta)
  except TypeError as e:
    raise ValueError(f'`metadata` values must be JSON-serialisable: {e}') from e
  return meta


class _Policy(tf.Module):
  """The exported module: metadata, network variables and traced functions.

  It tracks the network's variables, not its Keras layers, so the SavedModel
  holds only variables and functions and loads without Keras or project code.
  """

  def __init__(self, network: networks.ImpalaNetwork, obs_spec: tf.TensorSpec,
               meta: Dict[str, Any],
               popart_state: Optional[popart.PopArtState] = None):
    super().__init__(name='impala_policy')
    self.network_variables = list(network.variables)
    if popart_state is not None:  # a snapshot: later updates do not leak in
      self.popart_mu = tf.Variable(tf.identity(popart_state.mu),
                                   trainable=False, name='popart_mu')
      self.popart_sigma = tf.Variable(tf.identity(popart_state.sigma),
                                      trainable=False, name='popart_sigma')
    strings = ('games', 'action_set', 'action_meanings', 'observation_dtype',
               'distral_variant', 'distral_columns')
    floats = ('distral_alpha', 'distral_beta')
    for key in ('games', 'action_set', 'action_meanings', 'num_actions',
                'num_tasks', 'lstm_size', 'state_size', 'frames_trained',
                'agent_steps_trained', 'observation_shape', 'observation_dtype',
                'frame_skip') + strings[4:] + floats:
      if key in meta:
        value = meta[key]
        dtype = (tf.string if key in strings else
                 tf.float32 if key in floats else tf.int64)
        setattr(self, key, tf.Variable(tf.constant(value, dtype),
                                       trainable=False, name=key))
    self.metadata_json = tf.Variable(json.dumps(meta, sort_keys=True),
                                     trainable=False, name='metadata_json')
    size = network.state_size
    state_spec = (tf.TensorSpec([None, size], tf.float32, 'state_h'),
                  tf.TensorSpec([None, size], tf.float32, 'state_c'))
    specs = dict(
        observation=obs_spec,
        prev_action=tf.TensorSpec([None], tf.int32, 'prev_action'),
        prev_reward=tf.TensorSpec([None], tf.float32, 'prev_reward'),
        first=tf.TensorSpec([None], tf.bool, 'first'),
        task_id=tf.TensorSpec([None], tf.int32, 'task_id'))

    def initial_state(batch_size):
      return network.initial_state(batch_size)

    def step(observation, prev_action, prev_reward, first, task_id, state,
             distilled=False):
      output, state = network.step(observation, prev_action, prev_reward,
                                   first, task_id, state)
      # [B, A] π_i of task_id, or Distral's π0 (the same for every task).
      logits = output.distilled_logits if distilled else output.policy_logits
      action = tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0]  # [B]
      value = tf.gather(output.values, task_id, batch_dims=1)  # [B]
      if popart_state is not None:  # σ_i n_i + μ_i, SPEC §5
        value = popart.unnormalize(
            popart.PopArtState(self.popart_mu, self.popart_sigma,
                               self.popart_sigma), value, task_id)
      return dict(action=action, logits=logits, value=value, state=state)

    def serve(observation, prev_action, prev_reward, first, task_id, state_h,
              state_c):
      out = step(observation, prev_action, prev_reward, first, task_id,
                 (state_h, state_c))
      state_h, state_c = out.pop('state')
      return dict(out, state_h=state_h, state_c=state_c)

    def serve_initial_state(batch_size):
      state_h, state_c = network.initial_state(batch_size)
      return dict(state_h=state_h, state_c=state_c)

    batch_size_spec = tf.TensorSpec([], tf.int32, 'batch_size')
    self.initial_state = tf.function(initial_state,
                                     input_signature=[batch_size_spec])
    self.step = tf.function(step, input_signature=list(specs.values()) +
                            [state_spec])
    self.serve = tf.function(serve, input_signature=list(specs.values()) +
                             list(state_spec))
    self.serve_initial_state = tf.function(serve_initial_state,
                                           input_signature=[batch_size_spec])
    if network.distral_parameterization is not None:
      def distilled_step(observation, prev_action, prev_reward, first, task_id,
                         state):
        return step(observation, prev_action, prev_reward, first, task_id,
                    state, distilled=True)

      def serve_distilled(observation, prev_action, prev_reward, first,
                          task_id, state_h, state_c):
        out = distilled_step(observation, prev_action, prev_reward, first,
                             task_id, (state_h, state_c))
        state_h, state_c = out.pop('state')
        return dict(out, state_h=state_h, state_c=state_c)

      self.distilled_step = tf.function(
          distilled_step, input_signature=list(specs.values()) + [state_spec])
      self.serve_distilled = tf.function(
          serve_distilled,
          input_signature=list(specs.values()) + list(state_spec))


def export_policy(network: networks.ImpalaNetwork, path: str, *,
                  observation_spec, metadata: Mapping[str, Any],
                  popart_state: Optional[popart.PopArtState] = None) -> None:
  """Writes the acting policy of `network` as a SavedModel at `path`.

  Atomic for readers and crashes: the SavedModel is written to a sibling
  temporary directory, then swapped with `path` by one atomic exchange
  (agent/policy_dir.py; where the OS cannot, rename away and rename in). At
  every instant after the first export `path` is a complete SavedModel. If
  export fails, `path` is unchanged.

  Args:
    network: an ImpalaNetwork (variables are created here if needed). May live
      under a tf.distribute strategy; the export reads its current values.
    path: SavedModel directory (e.g. LOGDIR/policy); its parent must exist
      or be creatable.
    observation_spec: (shape, dtype) of one unbatched observation, or a spec
      with .shape/.dtype (dm_env Array, tf.TensorSpec); Atari: (84, 84, 4)
      uint8.
    metadata: 'games' (list of str, task i = games[i]) and 'action_set'
      ('minimal' | 'full') are required; optional 'action_meanings' (list of
      num_actions str), 'frames_trained' (raw frames), 'agent_steps_trained'
      (agent steps), 'frame_skip', 'num_actions'/'num_tasks' (checked against
      the network) and extra JSON-able keys (kept in metadata_json only).
    popart_state: the learner's PopArtState (float32 [num_tasks] each) when
      the value head is PopArt-normalised; out['value'] is then σ_i n_i + μ_i
      with a snapshot of μ, σ taken now. None: the head's output as is.

  Raises:
    ValueError: for a bad `observation_spec` or `metadata` field, or a
      `popart_state` whose size is not the network's num_tasks.
  """
  obs_spec = _observation_spec(observation_spec)
  meta = _check_metadata(metadata, network, obs_spec)
  network.create_variables(obs_spec.shape[1:], obs_spec.dtype)
  if popart_state is not None:
    for field, value in zip(popart.PopArtState._fields, popart_state):
      if tuple(value.shape) != (network.num_tasks,):
        raise ValueError(f'`popart_state.{field}` must be [num_tasks] = '
                         f'[{network.num_tasks}]; got {tuple(value.shape)}.')
    meta['popart'] = True
  policy = _Policy(network, obs_spec, meta, popart_state)
  path = path.rstrip('/')
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  tmp = policy_dir.staging_path(path)
  try:
    signatures = {
        'serving_default': policy.serve.get_concrete_function(),
        'initial_state': policy.serve_initial_state.get_concrete_function(),
    }
    if hasattr(policy, 'serve_distilled'):
      signatures['distilled'] = policy.serve_distilled.get_concrete_function()
    tf.saved_model.save(policy, tmp, signatures=signatures)
    tf.io.gfile.makedirs(os.path.join(tmp, 'assets.extra'))
    with tf.io.gfile.GFile(os.path.join(tmp, 'assets.extra', 'metadata.json'),
                           'w') as f:
      f.write(json.dumps(meta, indent=2, sort_keys=True) + '\n')
    policy_dir.publish(tmp, path)
  finally:
    if tf.io.gfile.exists(tmp):
      policy_dir.discard(tmp)
