"""Tests for agent/networks.py: shapes, unroll == steps, resets, variables."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import networks

ATARI = ((84, 84, 4), tf.uint8)
CATCH = ((40, 20, 1), tf.float32)
NUM_ACTIONS = 4


def _inputs(rng, leading, obs_shape, obs_dtype, num_actions=NUM_ACTIONS,
            num_tasks=1, first_prob=0.0):
  """Random network inputs with leading dims `leading` ([B] or [T, B])."""
  shape = list(leading) + list(obs_shape)
  if obs_dtype == tf.uint8:
    observation = rng.integers(0, 256, shape, dtype=np.uint8)
  else:
    observation = rng.random(shape, dtype=np.float32)
  return dict(
      observation=observation,
      prev_action=rng.integers(0, num_actions, leading).astype(np.int32),
      prev_reward=rng.normal(0.0, 2.0, leading).astype(np.float32),
      first=rng.random(leading) < first_prob,
      task_id=rng.integers(0, num_tasks, leading).astype(np.int32))


def _random_state(rng, batch_size, lstm_size=256):
  return tuple(tf.constant(rng.normal(size=(batch_size, lstm_size)),
                           tf.float32) for _ in range(2))


def _network(torso='shallow', obs=CATCH, **kwargs):
  network = networks.ImpalaNetwork(kwargs.pop('num_actions', NUM_ACTIONS),
                                   torso=torso, **kwargs)
  network.create_variables(*obs)
  return network


def _at(inputs, t, rows=slice(None)):
  """Step-t slice [B', ...] of [T, B, ...] inputs."""
  return {k: v[t, rows] for k, v in inputs.items()}


class ImpalaNetworkTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('deep_atari', 'deep', ATARI), ('shallow_atari', 'shallow', ATARI),
      ('deep_catch', 'deep', CATCH), ('shallow_catch', 'shallow', CATCH))
  def test_shapes(self, torso, obs):
    rng = np.random.default_rng(0)
    network = _network(torso, obs)
    output, (h, c) = network.step(**_inputs(rng, [1], *obs),
                                  core_state=network.initial_state(1))
    self.assertEqual(output.policy_logits.shape, [1, NUM_ACTIONS])
    self.assertEqual(output.values.shape, [1, 1])
    self.assertEqual(h.shape, [1, 256])
    self.assertEqual(c.shape, [1, 256])
    output, (h, c) = network.unroll(**_inputs(rng, [3, 2], *obs),
                                    core_state=network.initial_state(2))
    self.assertEqual(output.policy_logits.shape, [3, 2, NUM_ACTIONS])
    self.assertEqual(output.values.shape, [3, 2, 1])
    self.assertEqual(output.policy_logits.dtype, tf.float32)
    self.assertEqual(h.shape, [2, 256])
    self.assertEqual(c.shape, [2, 256])

  @parameterized.named_parameters(('deep', 'deep'), ('shallow', 'shallow'))
  def test_unroll_equals_steps(self, torso):
    rng = np.random.default_rng(1)
    network = _network(torso, num_tasks=2, task_one_hot_input=True)
    num_steps, batch_size = 5, 3
    inputs = _inputs(rng, [num_steps, batch_size], *CATCH, num_tasks=2,
                     first_prob=0.3)
    state0 = _random_state(rng, batch_size)
    unrolled, unroll_state = network.unroll(**inputs, core_state=state0)
    state = state0
    for t in range(num_steps):
      stepped, state = network.step(**_at(inputs, t), core_state=state)
      self.assertAllClose(unrolled.policy_logits[t], stepped.policy_logits,
                          atol=1e-5, rtol=1e-5)
      self.assertAllClose(unrolled.values[t], stepped.values, atol=1e-5,
                          rtol=1e-5)
    self.assertAllClose(unroll_state, state, atol=1e-5, rtol=1e-5)

  def test_first_resets_state_of_its_row_only(self):
    rng = np.random.default_rng(2)
    network = _network()
    num_steps, batch_size, t0, row = 6, 3, 3, 1
    inputs = _inputs(rng, [num_steps, batch_size], *CATCH)
    state0 = _random_state(rng, batch_size)
    no_reset, _ = network.unroll(**inputs, core_state=state0)
    inputs['first'][t0, row] = True
    reset, _ = network.unroll(**inputs, core_state=state0)
    # From t0 on, the row equals a fresh unroll from t0 with zero state.
    fresh_inputs = {k: v[t0:, row:row + 1] for k, v in inputs.items()}
    fresh, _ = network.unroll(**fresh_inputs,
                              core_state=network.initial_state(1))
    self.assertAllClose(reset.policy_logits[t0:, row],
                        fresh.policy_logits[:, 0], atol=1e-5, rtol=1e-5)
    self.assertAllClose(reset.values[t0:, row], fresh.values[:, 0], atol=1e-5,
                        rtol=1e-5)
    # The reset changed the row from t0 on (sanity) ...
    self.assertNotAllClose(no_reset.policy_logits[t0:, row],
                           reset.policy_logits[t0:, row])
    # ... but not its earlier steps nor the other rows.
    self.assertAllClose(no_reset.policy_logits[:t0], reset.policy_logits[:t0])
    for other in (0, 2):
      self.assertAllClose(no_reset.policy_logits[:, other],
                          reset.policy_logits[:, other])
      self.assertAllClose(no_reset.values[:, other], reset.values[:, other])

  def test_prev_reward_is_clipped(self):
    rng = np.random.default_rng(3)
    network = _network()
    inputs = _inputs(rng, [4], *CATCH)
    state = _random_state(rng, 4)

    def logits(rewards):
      inputs['prev_reward'] = np.array(rewards, np.float32)
      return network.step(**inputs, core_state=state)[0].policy_logits

    self.assertAllClose(logits([5.0, -7.0, 1.0, 0.5]),
                        logits([1.0, -1.0, 1.0, 0.5]))
    self.assertNotAllClose(logits([0.5, -1.0, 1.0, 0.5]),
                           logits([1.0, -1.0, 1.0, 0.5]))

  def test_first_zeroes_prev_action_reward_and_state(self):
    rng = np.random.default_rng(4)
    network = _network()
    inputs = _inputs(rng, [2], *CATCH)
    inputs['first'] = np.array([True, True])
    inputs['prev_action'] = np.array([2, 3], np.int32)
    inputs['prev_reward'] = np.array([0.7, -0.4], np.float32)
    carried, carried_state = network.step(
        **inputs, core_state=_random_state(rng, 2))
    inputs['prev_action'] = np.zeros(2, np.int32)
    inputs['prev_reward'] = np.zeros(2, np.float32)
    zeroed, zeroed_state = network.step(**inputs,
                                        core_state=network.initial_state(2))
    self.assertAllClose(carried.policy_logits, zeroed.policy_logits)
    self.assertAllClose(carried.values, zeroed.values)
    self.assertAllClose(carried_state, zeroed_state)
    inputs['first'] = np.array([False, False])
    not_first, _ = network.step(**inputs, core_state=_random_state(rng, 2))
    self.assertNotAllClose(not_first.policy_logits, zeroed.policy_logits)

  def test_multi_task_value_head(self):
    rng = np.random.default_rng(5)
    network = _network(num_tasks=3, task_one_hot_input=True)
    self.assertEqual(network.value_head.kernel.shape, [256, 3])
    self.assertEqual(network.value_head.bias.shape, [3])
    inputs = _inputs(rng, [4, 2], *CATCH, num_tasks=3)
    output, _ = network.unroll(**inputs, core_state=network.initial_state(2))
    self.assertEqual(output.values.shape, [4, 2, 3])
    # The task one-hot is an input of the core.
    inputs['task_id'] = (inputs['task_id'] + 1) % 3
    other, _ = network.unroll(**inputs, core_state=network.initial_state(2))
    self.assertNotAllClose(output.values, other.values)

  def test_variable_order_is_stable_across_instances(self):
    a = _network('deep', ATARI, num_actions=6)  # Pong's minimal action set
    b = _network('deep', ATARI, num_actions=6)
    self.assertLen(a.trainable_variables, 39)  # 15 conv + linear + 3 LSTM + 4
    self.assertEqual([v.name for v in a.trainable_variables],
                     [v.name for v in b.trainable_variables])
    self.assertEqual([v.shape for v in a.trainable_variables],
                     [v.shape for v in b.trainable_variables])
    self.assertEqual(sum(int(tf.size(v)) for v in a.trainable_variables),
                     1_623_511)  # the count in the networks.py docstring
    self.assertEqual(a.trainable_variables[-2].ref(),
                     a.value_head.kernel.ref())
    # Weights copied in that order reproduce the outputs.
    for source, target in zip(a.trainable_variables, b.trainable_variables):
      target.assign(source)
    rng = np.random.default_rng(6)
    inputs = _inputs(rng, [2], *ATARI)
    out_a, _ = a.step(**inputs, core_state=a.initial_state(2))
    out_b, _ = b.step(**inputs, core_state=b.initial_state(2))
    self.assertAllClose(out_a.policy_logits, out_b.policy_logits)

  def test_tf_function_static_and_dynamic_time_and_xla(self):
    rng = np.random.default_rng(7)
    network = _network()
    num_steps, batch_size = 20, 2
    inputs = _inputs(rng, [num_steps, batch_size], *CATCH, first_prob=0.2)
    state = _random_state(rng, batch_size)
    eager, eager_state = network.unroll(**inputs, core_state=state)
    static, static_state = tf.function(network.unroll)(**inputs,
                                                       core_state=state)
    xla, xla_state = tf.function(network.unroll, jit_compile=True)(
        **inputs, core_state=state)
    specs = dict(
        observation=tf.TensorSpec([None, None, 40, 20, 1], tf.float32),
        prev_action=tf.TensorSpec([None, None], tf.int32),
        prev_reward=tf.TensorSpec([None, None], tf.float32),
        first=tf.TensorSpec([None, None], tf.bool),
        task_id=tf.TensorSpec([None, None], tf.int32),
        core_state=(tf.TensorSpec([None, 256], tf.float32),) * 2)
    dynamic_fn = tf.function(network.unroll, input_signature=list(
        specs[k] for k in ('observation', 'prev_action', 'prev_reward',
                           'first', 'task_id', 'core_state')))
    dynamic, dynamic_state = dynamic_fn(**inputs, core_state=state)
    for output, final_state in ((static, static_state), (xla, xla_state),
                                (dynamic, dynamic_state)):
      self.assertAllClose(eager.policy_logits, output.policy_logits,
                          atol=1e-5, rtol=1e-5)
      self.assertAllClose(eager.values, output.values, atol=1e-5, rtol=1e-5)
      self.assertAllClose(eager_state, final_state, atol=1e-5, rtol=1e-5)

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, 'torso'):
      networks.ImpalaNetwork(4, torso='resnet')
    with self.assertRaisesRegex(ValueError, 'num_actions'):
      networks.ImpalaNetwork(0)
    with self.assertRaisesRegex(ValueError, 'num_tasks'):
      networks.ImpalaNetwork(4, num_tasks=0)
    network = _network()
    rng = np.random.default_rng(8)
    inputs = _inputs(rng, [2], *CATCH)
    with self.assertRaisesRegex(ValueError, 'observation.*rank 5'):
      network.unroll(**inputs, core_state=network.initial_state(2))
    inputs['observation'] = inputs['observation'].astype(np.int32)
    with self.assertRaisesRegex(ValueError, 'observation.*dtype'):
      network.step(**inputs, core_state=network.initial_state(2))


if __name__ == '__main__':
  tf.test.main()
