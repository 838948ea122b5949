"""agent/networks.py with the 'mlp' torso (flat observations, HER bit flipping)."""

import numpy as np
import tensorflow as tf

from agent import networks

D, A, LSTM = 30, 15, 32  # bit flipping n = 15: observation bits ‖ goal


def _network():
  network = networks.ImpalaNetwork(A, torso='mlp', lstm_size=LSTM)
  network.create_variables((D,), tf.float32)
  return network


class MlpTorsoTest(tf.test.TestCase):

  def test_parameter_count_and_order(self):
    network = _network()
    names = [v.name for v in network.trainable_variables]
    self.assertEqual(names[:4], ['linear0/kernel:0', 'linear0/bias:0',
                                 'linear1/kernel:0', 'linear1/bias:0'])
    count = sum(int(np.prod(v.shape)) for v in network.trainable_variables)
    torso = (D * 256 + 256) + (256 * 256 + 256)
    lstm = 4 * LSTM * (256 + A + 1 + LSTM) + 4 * LSTM
    self.assertEqual(count, torso + lstm + (LSTM * A + A) + (LSTM + 1))

  def test_unroll_equals_steps(self):
    rng = np.random.default_rng(0)
    network = _network()
    t, b = 6, 3
    inputs = dict(
        observation=rng.integers(0, 2, (t, b, D)).astype(np.float32),
        prev_action=rng.integers(0, A, (t, b)).astype(np.int32),
        prev_reward=-np.ones((t, b), np.float32),
        first=rng.random((t, b)) < 0.3,
        task_id=np.zeros((t, b), np.int32))
    state = network.initial_state(b)
    unrolled, final = network.unroll(**inputs, core_state=state)
    for i in range(t):
      output, state = network.step(**{k: v[i] for k, v in inputs.items()},
                                   core_state=state)
      self.assertAllClose(unrolled.policy_logits[i], output.policy_logits,
                          atol=1e-5)
      self.assertAllClose(unrolled.values[i], output.values, atol=1e-5)
    self.assertAllClose(final, state, atol=1e-5)
    self.assertEqual(unrolled.policy_logits.shape, [t, b, A])

  def test_image_observation_is_rejected(self):
    network = _network()
    with self.assertRaisesRegex(ValueError, 'observation.*rank 2'):
      network.step(np.zeros([1, 5, 6], np.float32), [0], [0.0], [True], [0],
                   network.initial_state(1))


if __name__ == '__main__':
  tf.test.main()
