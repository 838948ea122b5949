"""agent/networks.py options of issue 10: the feed-forward core, head init."""

import numpy as np
import pytest
import tensorflow as tf

from agent import networks
from envs import atari


def _pong_observations(n=64):
  """n real Pong observations (uint8 [n, 84, 84, 4]) of a random policy."""
  env, rng = atari.make_atari('pong', seed=0), np.random.default_rng(0)
  env.reset()
  return np.stack([env.step(int(rng.integers(6))).observation
                   for _ in range(n)])


def _network(**kwargs):
  net = networks.ImpalaNetwork(6, torso='shallow', **kwargs)
  net.create_variables((84, 84, 4))
  return net


def test_feedforward_ignores_state_and_previous_action_and_reward():
  net = _network(core='feedforward')
  obs = _pong_observations(8)
  rng = np.random.default_rng(1)
  state = tuple(tf.constant(rng.normal(size=[8, 256]), tf.float32)
                for _ in range(2))
  a, state_a = net.step(obs, np.zeros(8, np.int32), np.zeros(8, np.float32),
                        np.zeros(8, bool), np.zeros(8, np.int32), state)
  b, _ = net.step(obs, np.full(8, 3, np.int32), np.ones(8, np.float32),
                  np.ones(8, bool), np.zeros(8, np.int32), net.initial_state(8))
  np.testing.assert_array_equal(a.policy_logits, b.policy_logits)
  np.testing.assert_array_equal(a.values, b.values)
  for got, want in zip(state_a, state):  # the state passes through
    np.testing.assert_array_equal(got, want)
  # No LSTM variables: torso + two heads on the 256 torso features.
  lstm = _network()
  lstm_params = 4 * (256 + 6 + 1 + 256 + 1) * 256
  count = lambda n: sum(int(np.prod(v.shape)) for v in n.trainable_variables)
  assert count(lstm) - count(net) == lstm_params


def test_feedforward_unroll_equals_steps():
  net = _network(core='feedforward')
  obs = _pong_observations(6).reshape([3, 2, 84, 84, 4])
  zeros_i, zeros_f = np.zeros([3, 2], np.int32), np.zeros([3, 2], np.float32)
  out, _ = net.unroll(obs, zeros_i, zeros_f, np.zeros([3, 2], bool), zeros_i,
                      net.initial_state(2))
  for t in range(3):
    step, _ = net.step(obs[t], zeros_i[t], zeros_f[t], np.zeros(2, bool),
                       zeros_i[t], net.initial_state(2))
    np.testing.assert_allclose(out.policy_logits[t], step.policy_logits,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('core', networks.CORES)
def test_orthogonal_head_init_starts_uniform(core):
  """Gain 0.01: H(π) within 1e-3 nats of ln 6 on real Pong frames."""
  obs = _pong_observations()
  zeros = np.zeros(len(obs), np.int32)

  def entropy(net):
    out, _ = net.step(obs, zeros, np.zeros(len(obs), np.float32),
                      np.ones(len(obs), bool), zeros,
                      net.initial_state(len(obs)))
    log_pi = tf.nn.log_softmax(out.policy_logits)
    return float(-tf.reduce_mean(tf.reduce_sum(tf.exp(log_pi) * log_pi, -1)))

  tf.random.set_seed(3)
  net = _network(core=core, head_init='orthogonal')
  assert np.log(6) - entropy(net) < 1e-3
  kernel = net.value_head.kernel.numpy()  # [256, 1], gain 1: unit norm
  np.testing.assert_allclose(np.linalg.norm(kernel), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(net.policy_head.bias.numpy(), 0.0)


@pytest.mark.parametrize('kwargs, field', [
    (dict(core='gru'), 'core'), (dict(head_init='zeros'), 'head_init'),
    (dict(core='feedforward', distral_parameterization='2col',
          distral_columns='separate', num_tasks=2), 'feedforward')])
def test_bad_options_name_the_field(kwargs, field):
  with pytest.raises(ValueError, match=field):
    networks.ImpalaNetwork(6, **kwargs)
