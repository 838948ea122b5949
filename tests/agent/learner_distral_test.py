"""Distral in the learner: distillation, strategies, PopArt units, regression.

Distral (Teh et al. 2017; SPEC §6) is a component of agent/losses.py; these
tests drive it through the real Learner and ImpalaNetwork.
"""

import functools
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import distral
from agent import learner as learner_lib
from agent import losses
from agent import networks
from agent import popart
from agent import types
from tests import strategies
from tests.agent import learner_test

T, B, A, LSTM, K = 5, 4, 3, 16, 2
OBS_SPEC = tf.TensorSpec([12, 12, 2], tf.uint8)  # the regression test's
FLAT_SPEC = tf.TensorSpec([16], tf.float32)  # Distral tests: 'mlp' torso (fast)
ALPHA, BETA = distral.coefficients(0.05, 0.05)  # α = 0.5, β = 10


def multitask_unroll(seed=0, batch_size=B, state_size=LSTM):
  """A random batch whose columns alternate between task 0 and task 1."""
  unroll = learner_test.random_unroll(seed, batch_size)
  rng = np.random.RandomState(seed + 100)
  task_id = np.tile(np.arange(batch_size) % K, (T + 1, 1)).astype(np.int32)
  return unroll._replace(
      observation=rng.rand(T + 1, batch_size, *FLAT_SPEC.shape).astype(
          np.float32),
      task_id=task_id,
      core_state=tuple(0.1 * rng.randn(batch_size, state_size).astype(
          np.float32) for _ in range(2)))


def make_network_fn(parameterization='2col', columns='shared', beta=BETA,
                    **kwargs):
  return functools.partial(
      networks.ImpalaNetwork, A, num_tasks=K, torso='mlp', lstm_size=LSTM,
      distral_parameterization=parameterization, distral_columns=columns,
      distral_alpha=ALPHA, distral_beta=beta, **kwargs)


def make_learner(strategy, parameterization='2col', columns='shared',
                 loss_fn=None, beta=BETA, **kwargs):
  loss_fn = loss_fn or functools.partial(
      losses.impala_loss, reward_clip=1.0,
      distral_coefficients=(ALPHA, beta))
  return learner_lib.Learner(
      make_network=make_network_fn(parameterization, columns, beta),
      observation_spec=FLAT_SPEC, dataset_fn=None, loss_fn=loss_fn,
      strategy=strategy, agent_steps_per_step=T * B, frame_skip=4,
      total_frames=10**7, **kwargs)


def randomize(network, seed=1, scale=0.1):
  """Random non-zero weights (the task heads start at zero otherwise)."""
  rng = np.random.RandomState(seed)
  for v in network.trainable_variables:
    v.assign(scale * rng.randn(*v.shape).astype(np.float32))


def distillation_only(agent_outputs, unroll):
  """The distillation term alone, summed over the batch (no RL terms)."""
  per_step = distral.distillation_loss(agent_outputs.distilled_logits[:-1],
                                       agent_outputs.policy_logits[:-1],
                                       ALPHA, BETA)  # [T, B]
  loss = tf.reduce_sum(per_step)
  return loss, {'distillation_loss': loss}


def outputs_of(learner, unroll):
  return learner.network.unroll(*learner_lib.network_inputs(
      types.Unroll(*[tf.convert_to_tensor(x) if not isinstance(x, tuple) else x
                     for x in unroll])))[0]


class DistralLearnerTest(tf.test.TestCase, parameterized.TestCase):

  def test_distral_off_computes_what_it_computed_before(self):
    """One deep-network learner step, Distral off, equals the figures the
    learner produced before Distral existed (commit 42b2974, same inputs and
    weights; they were bit-identical there and here)."""
    rng = np.random.RandomState(7)
    first = rng.rand(T + 1, B) < 0.2
    unroll = types.Unroll(
        observation=rng.randint(0, 256, (T + 1, B, 12, 12, 2)).astype(np.uint8),
        first=first, reward=rng.randn(T + 1, B).astype(np.float32),
        discount=np.where(first, 0.0, 1.0).astype(np.float32),
        prev_action=rng.randint(0, A, (T + 1, B)).astype(np.int32),
        action=rng.randint(0, A, (T + 1, B)).astype(np.int32),
        behaviour_logits=rng.randn(T + 1, B, A).astype(np.float32),
        task_id=rng.randint(0, 2, (T + 1, B)).astype(np.int32),
        core_state=(0.1 * rng.randn(B, LSTM).astype(np.float32),
                    0.1 * rng.randn(B, LSTM).astype(np.float32)))
    learner = learner_lib.Learner(
        make_network=functools.partial(networks.ImpalaNetwork, A, num_tasks=2,
                                       torso='deep', lstm_size=LSTM),
        observation_spec=OBS_SPEC, dataset_fn=None,
        loss_fn=functools.partial(losses.impala_loss, reward_clip=1.0),
        strategy=tf.distribute.get_strategy(), agent_steps_per_step=T * B,
        frame_skip=4, total_frames=10**6)
    randomize(learner.network, seed=1)
    metrics = learner.step_on(next(iter(tf.data.Dataset.from_tensors(unroll))))
    expected = {
        'baseline_loss': 2.2032103538513184, 'entropy': 1.0978649854660034,
        'entropy_loss': -0.2195729911327362, 'grad_norm': 20.256092071533203,
        'loss': 11.775797843933105, 'mean_abs_pg_advantage': 0.5604467391967773,
        'mean_rho': 1.798504114151001, 'mean_vs': 0.3943403661251068,
        'policy_loss': 9.792160034179688}
    for key, value in expected.items():
      self.assertAllClose(metrics[key], value, rtol=1e-5, msg=key)
    self.assertNotIn('distral/kl', metrics)
    # Random projections of every updated variable (same in both trees).
    projections = [
        float(np.sum(w * np.random.RandomState(i).randn(*w.shape)))
        for i, w in enumerate(learner.get_variables())]
    expected_projections = [
        1.1263577641493967, -0.23639550820527, 2.364703186154314,
        0.7510302413715981, 0.7937629418490695, 0.8053779108313517,
        -5.872527992087333, 0.921562495674291, 2.04853230550434,
        -0.0791970834065545, -1.4162902973541271, 0.003568587563349629,
        -0.6499865534949718, 0.14415869254763472, -1.3221837782781551,
        0.11465262997835113, 2.3987101581495747, 0.7292550239503481,
        -10.812285190409812, -0.397810539141905, 0.43572947601295464,
        -0.19256663265318597, -5.176954966638814, -0.6455865806116121,
        -6.047863593466405, -0.6089272378429628, 3.056278952697573,
        -0.8392427964589456, -0.058477320212226624, 0.11344794937974118,
        27.039527221116717, -1.0941508169380678, 4.621417461811044,
        3.75145420779495, 0.10867144192661238, 0.46837962706227876,
        0.08658903659272818, 0.4615913002958012, -0.1851784695338225]
    self.assertAllClose(projections, expected_projections, rtol=1e-4,
                        atol=1e-4)

  @parameterized.parameters('shared', 'separate')
  def test_distillation_moves_pi0_to_the_mixture_of_task_policies(self, columns):
    """Distillation alone: π0 (blind to the task) → the mixture of the π_i.

    Columns 2k and 2k+1 hold the same observations and history, as tasks 0
    and 1, so at every state the target is the mixture ½(π_0task + π_1task).
    1-column task policies (their heads get no distillation gradient).
    """
    learner = make_learner(tf.distribute.get_strategy(), '1col', columns,
                           loss_fn=distillation_only, learning_rate=3e-3,
                           max_grad_norm=1e3)
    randomize(learner.network, seed=3, scale=0.3)
    unroll = multitask_unroll(seed=4, state_size=learner.network.state_size)
    pairs = lambda x: np.repeat(x[:, ::2], 2, axis=1)  # [T+1, B, ...]
    unroll = unroll._replace(
        observation=pairs(unroll.observation), first=pairs(unroll.first),
        reward=pairs(unroll.reward), prev_action=pairs(unroll.prev_action),
        core_state=tuple(np.repeat(s[::2], 2, axis=0) for s in unroll.core_state))
    batch = next(iter(tf.data.Dataset.from_tensors(unroll)))
    task_heads = [v.numpy() for v in learner.network.policy_head.weights]

    def kl_mixture():
      outputs = outputs_of(learner, unroll)
      pi = tf.nn.softmax(outputs.policy_logits)  # [T+1, B, A]
      mixture = 0.5 * (pi[:, ::2] + pi[:, 1::2])  # [T+1, B/2, A]
      log_pi0 = tf.nn.log_softmax(outputs.distilled_logits[:, ::2])
      return float(tf.reduce_mean(tf.reduce_sum(
          mixture * (tf.math.log(mixture) - log_pi0), -1)))

    kls = [kl_mixture()]
    for _ in range(4):
      for _ in range(5):
        learner.step_on(batch)
      kls.append(kl_mixture())
    self.assertGreater(kls[0], 1e-3)
    self.assertLess(kls[-1], 0.3 * kls[0], msg=str(kls))
    self.assertTrue(all(b < a for a, b in zip(kls, kls[1:])), msg=str(kls))
    for before, after in zip(task_heads, learner.network.policy_head.weights):
      self.assertAllEqual(before, after.numpy())  # no gradient into π_i

  @parameterized.parameters(('2col', 'shared'), ('1col', 'separate'))
  def test_mirrored_two_replicas_equals_default_strategy(self, param, columns):
    default = make_learner(tf.distribute.get_strategy(), param, columns)
    unroll = multitask_unroll(seed=5, state_size=default.network.state_size)
    strategy = learner_test.mirrored_strategy()
    mirrored = make_learner(strategy, param, columns)
    randomize(default.network, seed=6)
    for target, value in zip(mirrored.network.trainable_variables,
                             default.get_variables()):
      target.assign(value)
    loss_1, grads_1 = default.gradients(
        learner_test.distribute(default.strategy, unroll))
    loss_2, grads_2 = mirrored.gradients(
        learner_test.distribute(strategy, unroll))
    self.assertAllClose(loss_1, loss_2, rtol=1e-5, atol=1e-5)
    for g1, g2 in zip(grads_1, grads_2):
      self.assertAllClose(g1, g2, rtol=1e-4, atol=1e-5)
    m1 = default.step_on(learner_test.distribute(default.strategy, unroll))
    m2 = mirrored.step_on(learner_test.distribute(strategy, unroll))
    for key in ('loss', 'distillation_loss', 'distral/kl', 'grad_norm',
                'distral/task_0/kl', 'distral/task_1/entropy'):
      self.assertAllClose(m1[key], m2[key], rtol=1e-4, atol=1e-6, msg=key)
    for v1, v2 in zip(default.get_variables(), mirrored.get_variables()):
      self.assertAllClose(v1, v2, rtol=1e-4, atol=1e-6)

  def test_per_task_metrics_are_means_over_that_tasks_steps(self):
    learner = make_learner(tf.distribute.get_strategy(), '2col')
    randomize(learner.network, seed=7)
    unroll = multitask_unroll(seed=8)
    outputs = outputs_of(learner, unroll)
    kl = distral.kl_divergence(outputs.policy_logits[:-1],
                               outputs.distilled_logits[:-1]).numpy()  # [T, B]
    metrics = learner.step_on(next(iter(tf.data.Dataset.from_tensors(unroll))))
    task = unroll.task_id[:-1]
    for i in range(K):
      self.assertAllClose(metrics[f'distral/task_{i}/kl'], kl[task == i].mean(),
                          rtol=1e-5)
    self.assertAllClose(metrics['distral/kl'], kl.mean(), rtol=1e-5)
    self.assertNotIn('distral/task_0/count', metrics)

  def test_two_column_policy_gradient_reaches_h0_and_distillation_not_pi_i(self):
    """2-column: the RL terms reach h0 through log π_i; distillation does not
    reach the task heads f_i; 1-column: the RL terms do not reach h0."""
    unroll = multitask_unroll(seed=9)
    batch = next(iter(tf.data.Dataset.from_tensors(unroll)))
    for param in ('1col', '2col'):
      rl_only = functools.partial(losses.impala_loss, reward_clip=1.0)
      learner = make_learner(tf.distribute.get_strategy(), param,
                             loss_fn=rl_only)
      randomize(learner.network, seed=10)
      network = learner.network
      names = [v.name for v in network.trainable_variables]
      _, grads = learner.gradients(batch)
      h0 = grads[names.index('distilled_logits/kernel:0')]
      if param == '2col':
        self.assertGreater(np.abs(h0).sum(), 1e-4)
      else:
        self.assertAllEqual(h0, np.zeros_like(h0))
      distill = make_learner(tf.distribute.get_strategy(), param,
                             loss_fn=distillation_only)
      for target, value in zip(distill.network.trainable_variables,
                               learner.get_variables()):
        target.assign(value)
      _, grads = distill.gradients(batch)
      f = grads[names.index('task_policy_logits/kernel:0')]
      self.assertAllEqual(f, np.zeros_like(f))
      h0 = grads[names.index('distilled_logits/kernel:0')]
      self.assertGreater(np.abs(h0).sum(), 1e-6)

  def test_regularizer_is_in_each_tasks_popart_normalised_units(self):
    """Scaling task 1's rewards, μ and σ by k leaves every gradient unchanged.

    With the regulariser counted in normalised units (σ_i · reg in the reward)
    the PopArt loss depends on rewards only through (r − …)/σ_i; a raw-unit
    regulariser would weigh it 1/k as much in task 1 after the scaling.
    """
    k = 1000.0
    unroll = multitask_unroll(seed=11)
    scaled = unroll._replace(reward=np.where(
        unroll.task_id == 1, k * unroll.reward, unroll.reward).astype(np.float32))
    network = make_network_fn('2col')()
    network.create_variables(FLAT_SPEC.shape, FLAT_SPEC.dtype)
    randomize(network, seed=12)
    mu, sigma = np.array([0.3, -0.2], np.float32), np.array([1.5, 2.0],
                                                            np.float32)
    variables = network.trainable_variables

    def gradients(data, state, distral_on=True):
      with tf.GradientTape() as tape:  # the same network inputs each time
        outputs = network.unroll(*learner_lib.network_inputs(inputs))[0]
        loss, metrics, _ = losses.popart_impala_loss(
            outputs, data, state,
            distral_coefficients=(ALPHA, BETA) if distral_on else None)
      return loss, tape.gradient(loss, variables), metrics

    data = types.Unroll(*[tf.convert_to_tensor(x) if not isinstance(x, tuple)
                          else x for x in unroll])
    inputs = data
    data_k = data._replace(reward=tf.convert_to_tensor(scaled.reward))
    state = popart.PopArtState(mu, sigma, sigma**2 + mu**2)
    mu_k, sigma_k = mu * np.array([1, k], np.float32), sigma * np.array(
        [1, k], np.float32)
    state_k = popart.PopArtState(mu_k, sigma_k, sigma_k**2 + mu_k**2)
    loss, grads, metrics = gradients(data, state)
    loss_k, grads_k, metrics_k = gradients(data_k, state_k)
    self.assertAllClose(loss, loss_k, rtol=1e-4)
    for g, g_k in zip(grads, grads_k):
      self.assertAllClose(g, g_k, rtol=1e-3, atol=1e-4)
    self.assertAllClose(metrics['distral/kl'], metrics_k['distral/kl'])
    # The regulariser does matter: without it the gradients differ.
    _, grads_off, _ = gradients(data, state, distral_on=False)
    self.assertGreater(max(np.abs(g - g_off).max()
                           for g, g_off in zip(grads, grads_off)), 1e-3)

  def test_two_column_steps_do_not_scale_with_beta(self):
    """The 2-column head outputs β·f_i: from the zero start, a few RMSProp
    steps leave π_i near uniform and the gradient norm independent of β
    (a head emitting f_i would get β-times larger gradients)."""
    batch = next(iter(tf.data.Dataset.from_tensors(multitask_unroll(seed=16))))
    norms, entropies = {}, {}
    for beta in (10.0, 1000.0):
      learner = make_learner(tf.distribute.get_strategy(), '2col', beta=beta,
                             learning_rate=1e-3)
      metrics = [learner.step_on(batch) for _ in range(3)]
      norms[beta] = metrics[0]['grad_norm']
      entropies[beta] = metrics[-1]['entropy']
    # The costs differ (α/β weighs distillation and log π0), so the norms are
    # not equal; with f_i as the head's output the ratio is about 100.
    self.assertLess(norms[1000.0], 4.0 * norms[10.0], msg=str(norms))
    for beta, entropy in entropies.items():
      self.assertGreater(entropy, 0.9 * np.log(A), msg=f'β={beta}: {entropy}')

  def test_checkpoint_restores_pi0_and_warm_start_reads_only_pi0(self):
    directory = os.path.join(self.get_temp_dir(), "distral_ckpt")
    learner = make_learner(tf.distribute.get_strategy(), '2col',
                           checkpoint_dir=directory)
    randomize(learner.network, seed=14)
    learner.step_on(next(iter(tf.data.Dataset.from_tensors(
        multitask_unroll(seed=15)))))
    path = learner.save()
    restored = make_learner(tf.distribute.get_strategy(), '2col',
                            checkpoint_dir=directory)
    self.assertTrue(restored.restore())
    for v1, v2 in zip(learner.get_variables(), restored.get_variables()):
      self.assertAllEqual(v1, v2)
    self.assertEqual(restored.learner_steps, 1)
    # Warm start: h0 and the shared trunk come from the run; heads do not.
    fresh = make_network_fn('2col')()
    fresh.create_variables(FLAT_SPEC.shape, FLAT_SPEC.dtype)
    heads_before = [v.numpy() for v in fresh.policy_head.weights +
                    fresh.value_head.weights]
    fresh.distilled_policy_checkpoint().read(
        path).assert_existing_objects_matched().expect_partial()
    trained = {v.name: v.numpy() for v in learner.network.distilled_variables}
    for v in fresh.distilled_variables:
      self.assertAllEqual(v.numpy(), trained[v.name])
    torso_trained = learner.network.trainable_variables[0].numpy()
    self.assertAllEqual(fresh.trainable_variables[0].numpy(), torso_trained)
    for before, after in zip(heads_before, fresh.policy_head.weights +
                             fresh.value_head.weights):
      self.assertAllEqual(before, after.numpy())


if __name__ == '__main__':
  tf.test.main()
