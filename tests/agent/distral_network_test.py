"""Distral heads of ImpalaNetwork and their SavedModel export (SPEC §6, §10)."""

import json
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import distral
from agent import export
from agent import networks
from agent import types

OBS = ((9, 9, 2), tf.uint8)
A, K, LSTM = 4, 3, 16


def _network(parameterization='2col', columns='shared', alpha=0.5,
             beta=5000.0, **kwargs):
  network = networks.ImpalaNetwork(
      A, num_tasks=K, torso='deep', lstm_size=LSTM,
      distral_parameterization=parameterization, distral_columns=columns,
      distral_alpha=alpha, distral_beta=beta, **kwargs)
  network.create_variables(*OBS)
  return network


def _inputs(rng, batch_size, t=None):
  lead = [batch_size] if t is None else [t, batch_size]
  return dict(
      observation=rng.integers(0, 256, lead + list(OBS[0]), dtype=np.uint8),
      prev_action=rng.integers(0, A, lead).astype(np.int32),
      prev_reward=rng.normal(0, 1, lead).astype(np.float32),
      first=np.zeros(lead, bool),
      task_id=rng.integers(0, K, lead).astype(np.int32))


def _randomize(network, seed=0, scale=0.1):
  rng = np.random.RandomState(seed)
  for v in network.trainable_variables:
    v.assign(scale * rng.randn(*v.shape).astype(np.float32))


class DistralNetworkTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(parameterization=('1col', '2col'),
                         columns=('shared', 'separate'))
  def test_initial_policies_are_uniform_even_for_large_beta(
      self, parameterization, columns):
    network = _network(parameterization, columns, beta=5000.0)
    out, _ = network.step(**_inputs(np.random.default_rng(0), 5),
                          core_state=network.initial_state(5))
    self.assertIsInstance(out, types.DistralOutput)
    uniform = np.full([5, A], 1.0 / A)
    self.assertAllClose(tf.nn.softmax(out.policy_logits), uniform, atol=1e-6)
    self.assertAllClose(tf.nn.softmax(out.distilled_logits), uniform, atol=1e-6)

  @parameterized.parameters('shared', 'separate')
  def test_task_heads_select_by_task_and_two_column_logits(self, columns):
    network = _network('2col', columns, beta=20.0)
    _randomize(network)
    rng = np.random.default_rng(1)
    inputs = _inputs(rng, 6)
    state = network.initial_state(6)
    out, _ = network.step(**inputs, core_state=state)
    # The same rows as task k: row b's π_i is head task_id[b]'s.
    per_task = [network.step(**dict(inputs, task_id=np.full(6, k, np.int32)),
                             core_state=state)[0] for k in range(K)]
    for b, k in enumerate(inputs['task_id']):
      self.assertAllClose(out.policy_logits[b], per_task[k].policy_logits[b])
    # π0 does not depend on the task.
    for k in range(K):
      self.assertAllClose(per_task[k].distilled_logits, out.distilled_logits)
    # π_i = softmax(α log π0 + β f_i) with f_i the task head's output.
    self.assertGreater(np.abs(per_task[0].policy_logits -
                              per_task[1].policy_logits).max(), 1e-3)

  def test_separate_column_state_holds_both_lstms(self):
    network = _network('2col', 'separate')
    self.assertEqual(network.state_size, 2 * LSTM)
    h, c = network.initial_state(2)
    self.assertEqual(h.shape, [2, 2 * LSTM])
    _randomize(network)
    rng = np.random.default_rng(2)
    inputs = _inputs(rng, 2, t=4)
    out, state = network.unroll(**inputs, core_state=network.initial_state(2))
    self.assertEqual(out.distilled_logits.shape, [4, 2, A])
    # The unroll equals four steps (both columns carried in one state).
    step_state = network.initial_state(2)
    for t in range(4):
      step_out, step_state = network.step(
          **{k: v[t] for k, v in inputs.items()}, core_state=step_state)
      self.assertAllClose(step_out.policy_logits, out.policy_logits[t],
                          atol=1e-5)
      self.assertAllClose(step_out.distilled_logits, out.distilled_logits[t],
                          atol=1e-5)
    self.assertAllClose(step_state, state, atol=1e-5)
    shared = _network('2col', 'shared')
    self.assertEqual(shared.state_size, LSTM)
    self.assertLess(len(shared.trainable_variables),
                    len(network.trainable_variables))

  def test_separate_pi0_ignores_the_task_one_hot(self):
    network = _network('1col', 'separate', task_one_hot_input=True)
    _randomize(network)
    inputs = _inputs(np.random.default_rng(3), 4)
    state = network.initial_state(4)
    a = network.step(**dict(inputs, task_id=np.zeros(4, np.int32)),
                     core_state=state)[0]
    b = network.step(**dict(inputs, task_id=np.full(4, 2, np.int32)),
                     core_state=state)[0]
    self.assertAllClose(a.distilled_logits, b.distilled_logits)
    self.assertGreater(np.abs(a.values - b.values).max(), 1e-4)

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, 'distral_parameterization'):
      networks.ImpalaNetwork(A, distral_parameterization='3col')
    with self.assertRaisesRegex(ValueError, 'distral_columns'):
      networks.ImpalaNetwork(A, distral_parameterization='1col',
                             distral_columns='both')
    with self.assertRaisesRegex(ValueError, 'alpha in'):
      networks.ImpalaNetwork(A, distral_parameterization='2col',
                             distral_alpha=0.0)


class DistralExportTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('shared', 'separate')
  def test_step_plays_pi_i_and_distilled_step_plays_pi0(self, columns):
    network = _network('2col', columns, beta=20.0)
    _randomize(network, seed=4)
    path = os.path.join(self.get_temp_dir(), f'policy_{columns}')
    alpha, beta = distral.coefficients(0.025, 0.025)
    export.export_policy(
        network, path, observation_spec=OBS,
        metadata=dict(games=['g0', 'g1', 'g2'], action_set='minimal',
                      distral_variant='KL+ent_2col', distral_columns=columns,
                      distral_alpha=alpha, distral_beta=beta))
    policy = tf.saved_model.load(path)
    rng = np.random.default_rng(5)
    state = policy.initial_state(3)
    self.assertEqual(state[0].shape, [3, network.state_size])
    live_state = network.initial_state(3)
    for _ in range(2):
      inputs = _inputs(rng, 3)
      out = policy.step(**inputs, state=state)
      distilled = policy.distilled_step(**inputs, state=state)
      live, live_state = network.step(**inputs, core_state=live_state)
      self.assertAllClose(out['logits'], live.policy_logits, atol=1e-5)
      self.assertAllClose(distilled['logits'], live.distilled_logits,
                          atol=1e-5)
      self.assertAllClose(distilled['state'], out['state'])
      state = out['state']
    self.assertEqual(policy.distral_variant.numpy().decode(), 'KL+ent_2col')
    self.assertAllClose(policy.distral_alpha.numpy(), 0.5)
    self.assertAllClose(policy.distral_beta.numpy(), 20.0)
    meta = json.loads(policy.metadata_json.numpy())
    self.assertEqual(meta['distral_columns'], columns)
    serving = policy.signatures['distilled']
    flat = serving(observation=tf.constant(inputs['observation']),
                   prev_action=tf.constant(inputs['prev_action']),
                   prev_reward=tf.constant(inputs['prev_reward']),
                   first=tf.constant(inputs['first']),
                   task_id=tf.constant(inputs['task_id']),
                   state_h=state[0], state_c=state[1])
    self.assertEqual(flat['logits'].shape, [3, A])

  def test_policy_without_distral_has_no_distilled_step(self):
    network = networks.ImpalaNetwork(A, num_tasks=K, torso='deep',
                                     lstm_size=LSTM)
    network.create_variables(*OBS)
    path = os.path.join(self.get_temp_dir(), 'plain')
    export.export_policy(network, path, observation_spec=OBS,
                         metadata=dict(games=['g0', 'g1', 'g2'],
                                       action_set='minimal'))
    policy = tf.saved_model.load(path)
    self.assertFalse(hasattr(policy, 'distilled_step'))
    self.assertNotIn('distilled', policy.signatures)


if __name__ == '__main__':
  tf.test.main()
