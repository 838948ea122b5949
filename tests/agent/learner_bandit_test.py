"""The update path moves the policy toward the action that pays (issue 10).

A one-step bandit inside the real learner: fresh random-observation batches
where action 2 earns +1 per step and the behaviour policy μ is uniform. The
default learner (summed loss, global-norm clip 40, RMSProp) must move π(2)
from ~1/6 to above 0.5 within 15 steps with the 'keras' and 'pytorch' forms:
the check that Pong's stuck policy is not an update-path bug. The 'tf1' form
(accumulator ν starting at 1) takes steps ≈ η·g until ν decays, so it only
has to move π(2) up (measured: 0.14 → 0.19 and 0.17 → 0.35 in two runs,
against 0.15 → 0.64 and 0.21 → 0.77 for 'keras').
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from agent import learner as learner_lib
from agent import losses
from agent import networks
from agent import optimizers
from agent import types

T, B, A, BEST = 20, 16, 6, 2


def bandit_unroll(rng):
  """T+1 steps of B streams: uniform actions, reward 1 after action BEST."""
  action = rng.integers(0, A, [T + 1, B]).astype(np.int32)
  reward = np.zeros([T + 1, B], np.float32)
  reward[1:] = (action[:-1] == BEST)  # the reward INTO x_{t+1} (types.py)
  prev_action = np.zeros_like(action)
  prev_action[1:] = action[:-1]
  return types.Unroll(
      observation=rng.integers(0, 256, [T + 1, B, 84, 84, 4], dtype=np.uint8),
      first=np.zeros([T + 1, B], bool), reward=reward,
      discount=np.ones([T + 1, B], np.float32), prev_action=prev_action,
      action=action, behaviour_logits=np.zeros([T + 1, B, A], np.float32),
      task_id=np.zeros([T + 1, B], np.int32),
      core_state=(np.zeros([B, 64], np.float32),) * 2)


def mean_best_probability(learner, unroll):
  out, _ = learner.network.unroll(*learner_lib.network_inputs(unroll))
  return float(tf.reduce_mean(tf.nn.softmax(out.policy_logits)[..., BEST]))


@pytest.mark.parametrize('form', optimizers.FORMS)
def test_policy_follows_the_advantage(form):
  # Python's, NumPy's and TF's seeds: Keras initialisers without a seed
  # draw theirs from Python's `random`, which earlier tests in the same
  # process move (tf.random.set_seed alone left the init order-dependent).
  tf.keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  learner = learner_lib.Learner(
      make_network=functools.partial(networks.ImpalaNetwork, A,
                                     torso='shallow', lstm_size=64),
      observation_spec=tf.TensorSpec([84, 84, 4], tf.uint8), dataset_fn=None,
      loss_fn=losses.impala_loss, strategy=tf.distribute.get_strategy(),
      agent_steps_per_step=T * B, rmsprop_form=form)
  probe = bandit_unroll(np.random.default_rng(99))
  before = mean_best_probability(learner, probe)
  for _ in range(15):
    learner.step_on(bandit_unroll(rng))
  after = mean_best_probability(learner, probe)
  assert abs(before - 1 / A) < 0.1
  if form == 'tf1':
    assert after > before + 0.03, (form, before, after)
  else:
    assert after > 0.5, (form, before, after)
