"""Tests for agent/export.py: SavedModel round trip, signatures, metadata."""

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import export
from agent import networks
from agent import policy_dir
from agent import popart
from tests import strategies

ATARI = ((84, 84, 4), tf.uint8)
CATCH = ((40, 20, 1), tf.uint8)
SERVING_INPUTS = {'observation', 'prev_action', 'prev_reward', 'first',
                  'task_id', 'state_h', 'state_c'}
SERVING_OUTPUTS = {'action', 'logits', 'value', 'state_h', 'state_c'}


def _network(torso='shallow', obs=CATCH, num_actions=3, **kwargs):
  network = networks.ImpalaNetwork(num_actions, torso=torso, **kwargs)
  network.create_variables(*obs)
  return network


def _metadata(network, **overrides):
  meta = dict(games=['catch'] * network.num_tasks, action_set='minimal',
              action_meanings=[f'A{i}' for i in range(network.num_actions)],
              frames_trained=1234, agent_steps_trained=617, frame_skip=2)
  meta.update(overrides)
  return meta


def _inputs(rng, batch_size, obs, num_actions, num_tasks):
  shape, _ = obs
  return dict(
      observation=rng.integers(0, 256, [batch_size, *shape], dtype=np.uint8),
      prev_action=rng.integers(0, num_actions, batch_size).astype(np.int32),
      prev_reward=rng.normal(0, 1, batch_size).astype(np.float32),
      first=np.zeros(batch_size, bool),
      task_id=rng.integers(0, num_tasks, batch_size).astype(np.int32))


class ExportTest(tf.test.TestCase, parameterized.TestCase):

  def _export(self, network, obs=CATCH, name='policy', **overrides):
    path = os.path.join(self.get_temp_dir(), name)
    export.export_policy(network, path, observation_spec=obs,
                         metadata=_metadata(network, **overrides))
    return path

  @parameterized.named_parameters(
      ('deep_atari', 'deep', ATARI, 6, 1),
      ('shallow_catch_3_tasks', 'shallow', CATCH, 3, 3))
  def test_round_trip_matches_network(self, torso, obs, num_actions,
                                      num_tasks):
    network = _network(torso, obs, num_actions, num_tasks=num_tasks)
    policy = tf.saved_model.load(self._export(network, obs, name=torso))
    rng = np.random.default_rng(0)
    batch_size = 3
    state = policy.initial_state(batch_size)
    live_state = network.initial_state(batch_size)
    self.assertAllEqual(state, live_state)
    for t in range(3):
      inputs = _inputs(rng, batch_size, obs, num_actions, num_tasks)
      inputs['first'] = np.array([t == 0, t == 2, t == 0])  # row 1 resets at 2
      out = policy.step(**inputs, state=state)
      live, live_state = network.step(**inputs, core_state=live_state)
      self.assertAllClose(out['logits'], live.policy_logits, atol=1e-5,
                          rtol=1e-5)
      value = live.values.numpy()[np.arange(batch_size), inputs['task_id']]
      self.assertAllClose(out['value'], value, atol=1e-5, rtol=1e-5)
      self.assertAllClose(out['state'], live_state, atol=1e-5, rtol=1e-5)
      self.assertEqual(out['action'].dtype, tf.int32)
      self.assertEqual(out['action'].shape, [batch_size])
      self.assertAllInRange(out['action'], 0, num_actions - 1)
      self.assertEqual(out['value'].shape, [batch_size])
      state = out['state']

  def test_popart_value_is_unnormalised_per_task(self):
    network = _network(num_tasks=2)
    state = popart.PopArtState(
        mu=tf.Variable([1.5, -2000.0]), sigma=tf.Variable([2.0, 500.0]),
        nu=tf.Variable([6.25, 4.25e6]))
    path = os.path.join(self.get_temp_dir(), 'popart')
    export.export_policy(network, path, observation_spec=CATCH,
                         metadata=_metadata(network), popart_state=state)
    state.mu.assign([0.0, 0.0])  # the export holds a snapshot
    policy = tf.saved_model.load(path)
    self.assertAllEqual(policy.popart_mu, [1.5, -2000.0])
    self.assertTrue(json.loads(policy.metadata_json.numpy())['popart'])
    inputs = _inputs(np.random.default_rng(1), 4, CATCH, 3, 2)
    inputs['task_id'] = np.array([0, 1, 0, 1], np.int32)
    out = policy.step(**inputs, state=policy.initial_state(4))
    live, _ = network.step(**inputs, core_state=network.initial_state(4))
    n = live.values.numpy()[np.arange(4), inputs['task_id']]
    want = np.array([2.0, 500.0, 2.0, 500.0]) * n + np.array(
        [1.5, -2000.0, 1.5, -2000.0])
    self.assertAllClose(out['value'], want, rtol=1e-5)
    serving = policy.signatures['serving_default']
    h, c = policy.initial_state(4)
    served = serving(**inputs, state_h=h, state_c=c)
    self.assertAllClose(served['value'], want, rtol=1e-5)
    with self.assertRaisesRegex(ValueError, 'num_tasks'):
      export.export_policy(network, path + '2', observation_spec=CATCH,
                           metadata=_metadata(network),
                           popart_state=popart.init_state(3))

  def test_serving_signatures(self):
    network = _network()
    policy = tf.saved_model.load(self._export(network))
    serving = policy.signatures['serving_default']
    args, kwargs = serving.structured_input_signature
    self.assertEmpty(args)
    self.assertEqual(set(kwargs), SERVING_INPUTS)
    self.assertEqual(kwargs['observation'].dtype, tf.uint8)
    self.assertEqual(kwargs['observation'].shape.as_list(), [None, 40, 20, 1])
    self.assertEqual(set(serving.structured_outputs), SERVING_OUTPUTS)
    initial = policy.signatures['initial_state'](batch_size=tf.constant(2))
    self.assertEqual(set(initial), {'state_h', 'state_c'})
    inputs = {k: tf.constant(v) for k, v in
              _inputs(np.random.default_rng(1), 2, CATCH, 3, 1).items()}
    out = serving(**inputs, **initial)
    self.assertEqual(set(out), SERVING_OUTPUTS)
    live, (h, c) = network.step(**inputs, core_state=network.initial_state(2))
    self.assertAllClose(out['logits'], live.policy_logits, atol=1e-5)
    self.assertAllClose(out['state_h'], h, atol=1e-5)
    self.assertAllClose(out['state_c'], c, atol=1e-5)

  def test_metadata_readable_after_load(self):
    network = _network(num_tasks=2)
    path = self._export(network, games=['catch', 'catch2'], extra='note')
    policy = tf.saved_model.load(path)
    self.assertEqual([g.decode() for g in policy.games.numpy()],
                     ['catch', 'catch2'])
    self.assertEqual(policy.action_set.numpy().decode(), 'minimal')
    self.assertEqual([m.decode() for m in policy.action_meanings.numpy()],
                     ['A0', 'A1', 'A2'])
    self.assertEqual(policy.num_actions.numpy(), 3)
    self.assertEqual(policy.num_tasks.numpy(), 2)
    self.assertEqual(policy.lstm_size.numpy(), 256)
    self.assertEqual(policy.frames_trained.numpy(), 1234)
    self.assertEqual(policy.agent_steps_trained.numpy(), 617)
    self.assertEqual(policy.frame_skip.numpy(), 2)
    self.assertAllEqual(policy.observation_shape.numpy(), [40, 20, 1])
    self.assertEqual(policy.observation_dtype.numpy().decode(), 'uint8')
    meta = json.loads(policy.metadata_json.numpy())
    self.assertEqual(meta['extra'], 'note')
    self.assertEqual(meta['torso'], 'shallow')
    with open(os.path.join(path, 'assets.extra', 'metadata.json')) as f:
      self.assertEqual(json.load(f), meta)

  def test_reexport_replaces_policy_and_leaves_no_temporaries(self):
    network = _network()
    path = self._export(network)
    inputs = _inputs(np.random.default_rng(2), 2, CATCH, 3, 1)
    for v in network.trainable_variables:
      v.assign(v + 0.01)
    self._export(network, frames_trained=99)
    policy = tf.saved_model.load(path)
    self.assertEqual(policy.frames_trained.numpy(), 99)
    live, _ = network.step(**inputs, core_state=network.initial_state(2))
    out = policy.step(**inputs, state=policy.initial_state(2))
    self.assertAllClose(out['logits'], live.policy_logits, atol=1e-5)
    self.assertEqual(os.listdir(self.get_temp_dir()), ['policy'])

  def test_failed_export_keeps_existing_policy(self):
    network = _network()
    path = self._export(network, frames_trained=5)
    with self.assertRaisesRegex(ValueError, 'action_set'):
      self._export(network, action_set='some')
    with mock.patch.object(tf.saved_model, 'save',
                           side_effect=OSError('disk full')):
      with self.assertRaisesRegex(OSError, 'disk full'):
        self._export(network, frames_trained=6)
    # The new policy cannot be swapped in: the old one stays.
    with mock.patch.object(policy_dir, 'exchange',
                           side_effect=OSError('rename failed')):
      with self.assertRaisesRegex(OSError, 'rename failed'):
        self._export(network, frames_trained=7)
    self.assertEqual(os.listdir(self.get_temp_dir()), ['policy'])
    self.assertEqual(tf.saved_model.load(path).frames_trained.numpy(), 5)

  def test_invalid_metadata(self):
    network = _network()
    for overrides, field in (
        (dict(games=[]), 'games'), (dict(games='catch'), 'games'),
        (dict(action_meanings=['L', 'R']), 'action_meanings'),
        (dict(num_actions=4), 'num_actions'),
        (dict(frames_trained=-1), 'frames_trained')):
      with self.subTest(field=field):
        with self.assertRaisesRegex(ValueError, field):
          self._export(network, **overrides)
    with self.assertRaisesRegex(ValueError, 'observation_spec'):
      export.export_policy(network, os.path.join(self.get_temp_dir(), 'p'),
                           observation_spec=[40, 20, 1],
                           metadata=_metadata(network))

  def test_export_from_mirrored_strategy(self):
    devices = tf.config.list_logical_devices('CPU')
    if len(devices) < 2:
      self.skipTest('needs 2 logical CPUs (tests/conftest.py)')
    strategy = strategies.two_replica_strategy()
    with strategy.scope():
      network = _network()
    policy = tf.saved_model.load(self._export(network))
    inputs = _inputs(np.random.default_rng(3), 2, CATCH, 3, 1)
    live, _ = network.step(**inputs, core_state=network.initial_state(2))
    out = policy.step(**inputs, state=policy.initial_state(2))
    self.assertAllClose(out['logits'], live.policy_logits, atol=1e-5)

  def test_loads_in_fresh_process_with_only_tensorflow(self):
    network = _network()
    path = self._export(network)
    inputs = _inputs(np.random.default_rng(4), 2, CATCH, 3, 1)
    np.savez(os.path.join(self.get_temp_dir(), 'inputs.npz'), **inputs)
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import tensorflow as tf
        policy = tf.saved_model.load(sys.argv[1])
        inputs = dict(np.load(sys.argv[2]))
        out = policy.step(**inputs, state=policy.initial_state(2))
        project = sorted(m for m in sys.modules if m.split('.')[0] in
                         ('agent', 'replay', 'envs', 'launch', 'configs'))
        print(json.dumps(dict(logits=out['logits'].numpy().tolist(),
                              project_modules=project)))
        """)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['TF_CPP_MIN_LOG_LEVEL'] = '3'
    result = subprocess.run(
        [sys.executable, '-c', script, path,
         os.path.join(self.get_temp_dir(), 'inputs.npz')],
        cwd=self.get_temp_dir(), env=env, capture_output=True, text=True,
        timeout=120, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEmpty(reply['project_modules'])
    live, _ = network.step(**inputs, core_state=network.initial_state(2))
    self.assertAllClose(reply['logits'], live.policy_logits, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
