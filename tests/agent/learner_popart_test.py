"""Learner with multi-task PopArt (SPEC §5): wiring, scale invariance, resume."""

import functools

import numpy as np
import tensorflow as tf

from agent import learner as learner_lib
from agent import losses
from agent import networks
from agent import popart
from agent import types
from tests import reference
from tests import strategies

T, B, A, K = 5, 4, 3, 2
OBS_SPEC = tf.TensorSpec([24, 24, 2], tf.uint8)
LSTM = 16
SCALE = 1000.0  # reward ratio between task 1 and task 0


def two_task_unroll(seed: int = 0, batch_size: int = B,
                    scale: float = SCALE) -> types.Unroll:
  """Columns [0, B/2) play task 0 (rewards ~1), [B/2, B) task 1 (× scale).

  Rewards are positive on average, so each task's returns have a clear
  mean and spread in its own units.
  """
  rng = np.random.RandomState(seed)
  task_id = np.zeros((T + 1, batch_size), np.int32)
  task_id[:, batch_size // 2:] = 1
  reward = (1.0 + rng.randn(T + 1, batch_size)).astype(np.float32)
  reward = np.where(task_id == 1, scale * reward, reward).astype(np.float32)
  first = np.zeros((T + 1, batch_size), bool)
  return types.Unroll(
      observation=rng.randint(0, 256, (T + 1, batch_size) +
                              tuple(OBS_SPEC.shape)).astype(np.uint8),
      first=first, reward=reward,
      discount=np.ones((T + 1, batch_size), np.float32),
      prev_action=rng.randint(0, A, (T + 1, batch_size)).astype(np.int32),
      action=rng.randint(0, A, (T + 1, batch_size)).astype(np.int32),
      behaviour_logits=rng.randn(T + 1, batch_size, A).astype(np.float32),
      task_id=task_id,
      core_state=(0.1 * rng.randn(batch_size, LSTM).astype(np.float32),
                  0.1 * rng.randn(batch_size, LSTM).astype(np.float32)))


def columns(unroll: types.Unroll, start: int, stop: int) -> types.Unroll:
  """The sub-batch of columns [start, stop)."""
  return types.Unroll(
      *[np.asarray(x)[:, start:stop] for x in unroll[:-1]],
      core_state=tuple(s[start:stop] for s in unroll.core_state))


def distribute(strategy, unroll):
  """Splits the batch along B across replicas (see learner_test.py)."""
  replicas = strategy.num_replicas_in_sync
  per = unroll.task_id.shape[1] // replicas

  def dataset_fn(context):
    dataset = None
    for i in range(context.input_pipeline_id, replicas,
                   context.num_input_pipelines):
      d = tf.data.Dataset.from_tensors(columns(unroll, i * per, (i + 1) * per))
      dataset = d if dataset is None else dataset.concatenate(d)
    return dataset.repeat()
  return next(iter(strategy.distribute_datasets_from_function(dataset_fn)))


def make_learner(strategy, *, use_popart=True, checkpoint_dir=None,
                 step_size=0.05, **kwargs):
  loss = (functools.partial(losses.popart_impala_loss, discount=0.9)
          if use_popart else
          functools.partial(losses.impala_loss, discount=0.9, reward_clip=None))
  return learner_lib.Learner(
      make_network=functools.partial(networks.ImpalaNetwork, A, num_tasks=K,
                                     torso='shallow', lstm_size=LSTM,
                                     task_one_hot_input=True),
      observation_spec=OBS_SPEC, dataset_fn=None, loss_fn=loss,
      strategy=strategy, agent_steps_per_step=T * B, frame_skip=4,
      total_frames=T * B * 4 * 10_000, checkpoint_dir=checkpoint_dir,
      popart_step_size=step_size if use_popart else None, **kwargs)


def unnormalized_values(learner, unroll) -> np.ndarray:
  """σ_i n_i(x_t) + μ_i of each step's task, float [T+1, B]."""
  outputs, _ = learner.network.unroll(*learner_lib.network_inputs(
      tf.nest.map_structure(tf.convert_to_tensor, unroll)))
  n = tf.gather(outputs.values, unroll.task_id, axis=2, batch_dims=2)
  state = learner.popart_statistics()
  if state is None:
    return n.numpy()
  return (state.sigma[unroll.task_id] * n.numpy() + state.mu[unroll.task_id])


def global_norm(gradients) -> float:
  return float(np.sqrt(sum(np.sum(np.square(g)) for g in gradients)))


class LearnerPopArtTest(tf.test.TestCase):

  def test_statistics_follow_the_spec_after_one_step(self):
    learner = make_learner(tf.distribute.get_strategy())
    unroll = two_task_unroll(seed=1)
    state = learner.popart_statistics()
    self.assertAllEqual(state.mu, [0., 0.])
    self.assertAllEqual(state.sigma, [1., 1.])
    outputs, _ = learner.network.unroll(*learner_lib.network_inputs(
        tf.nest.map_structure(tf.convert_to_tensor, unroll)))
    _, _, vs = losses.popart_impala_loss(
        outputs, tf.nest.map_structure(tf.convert_to_tensor, unroll),
        popart.init_state(K), discount=0.9)
    expected = reference.popart_update_statistics(
        np.zeros(K), np.ones(K), np.ones(K), vs.numpy(),
        unroll.task_id[:-1], 0.05, 1e-4, 1e6)
    expected = [expected[field] for field in popart.PopArtState._fields]
    learner.step_on(distribute(learner.strategy, unroll))
    state = learner.popart_statistics()
    for got, want in zip(state, expected):
      self.assertAllClose(got, want, rtol=1e-5)
    self.assertGreater(state.mu[1], 100 * abs(state.mu[0]))

  def test_unnormalized_values_preserved_by_the_statistics_update(self):
    # With a negligible learning rate only ART + POP change the value head:
    # σ n + μ must stay put while μ and σ move by orders of magnitude.
    learner = make_learner(tf.distribute.get_strategy(), learning_rate=1e-20,
                           step_size=0.02)
    unroll = two_task_unroll(seed=2)
    probe = two_task_unroll(seed=3)
    before = unnormalized_values(learner, probe)
    batch = distribute(learner.strategy, unroll)
    for _ in range(30):
      learner.step_on(batch)
    after = unnormalized_values(learner, probe)
    state = learner.popart_statistics()
    self.assertGreater(state.sigma[1], 100.0)  # moved far from 1
    # float32 resolution of σ n + μ: relative 1e-5 of the task's scale.
    scale = (np.abs(state.mu) + state.sigma)[probe.task_id]  # [T+1, B]
    self.assertAllLessEqual(np.abs(after - before) / scale, 1e-5)
    self.assertGreater(np.abs(before).max(), 0.0)

  def test_pop_follows_the_gradient_step(self):
    # From μ=0, σ=1 the PopArt loss IS unclipped IMPALA, so one PopArt step
    # must leave σ′n′+μ′ equal to the values of a plain learner after the
    # same gradient step. POP before the update (or on stale weights) fails.
    unroll, probe = two_task_unroll(seed=7), two_task_unroll(seed=8)
    popart_learner = make_learner(tf.distribute.get_strategy())
    plain = make_learner(tf.distribute.get_strategy(), use_popart=False)
    for target, value in zip(plain.network.trainable_variables,
                             popart_learner.get_variables()):
      target.assign(value)
    before = unnormalized_values(plain, probe)
    popart_learner.step_on(distribute(popart_learner.strategy, unroll))
    plain.step_on(distribute(plain.strategy, unroll))
    state = popart_learner.popart_statistics()
    self.assertGreater(state.sigma[1], 10.0)  # POP had work to do
    got = unnormalized_values(popart_learner, probe)
    want = unnormalized_values(plain, probe)
    scale = (np.abs(state.mu) + state.sigma)[probe.task_id]
    self.assertAllLessEqual(np.abs(got - want) / scale, 1e-5)
    # The step itself moved the values far more than that tolerance.
    self.assertGreater(np.max(np.abs(want - before) / scale), 1e-3)

  def test_masked_unrolls_are_rejected(self):
    learner = make_learner(tf.distribute.get_strategy())
    unroll = two_task_unroll(seed=9)
    masked = types.MaskedUnroll(*unroll, mask=np.ones_like(unroll.first))
    with self.assertRaisesRegex(ValueError, 'PopArt does not support masked'):
      learner.step_on(masked)

  def test_popart_balances_the_tasks_gradients(self):
    """Rewards 1,000× apart: without PopArt the large task's gradient
    dominates (norm ratio ~ reward ratio); with PopArt both tasks' normalised
    value losses and gradient norms are of the same order."""
    unroll = two_task_unroll(seed=4)
    small, large = columns(unroll, 0, B // 2), columns(unroll, B // 2, B)

    def value_loss(learner, unroll):
      unroll = tf.nest.map_structure(tf.convert_to_tensor, unroll)
      outputs, _ = learner.network.unroll(*learner_lib.network_inputs(unroll))
      state = learner.popart_statistics()
      if state is None:
        _, metrics = losses.impala_loss(outputs, unroll, discount=0.9,
                                        reward_clip=None)
      else:
        _, metrics, _ = losses.popart_impala_loss(
            outputs, unroll, popart.PopArtState(*state), discount=0.9)
      return float(metrics['baseline_loss'])

    def per_task(learner):
      strategy = learner.strategy
      _, grads_small = learner.gradients(distribute(strategy, small))
      _, grads_large = learner.gradients(distribute(strategy, large))
      return (value_loss(learner, large) / value_loss(learner, small),
              global_norm(grads_large) / global_norm(grads_small))

    plain = make_learner(tf.distribute.get_strategy(), use_popart=False)
    loss_ratio, grad_ratio = per_task(plain)
    self.assertGreater(loss_ratio, 1e4)
    self.assertGreater(grad_ratio, 100.0)

    # PopArt: let the statistics track each task's targets first (small
    # learning rate, β n_i = 0.05 · 10 = 0.5), then compare.
    learner = make_learner(tf.distribute.get_strategy(), learning_rate=1e-6)
    batch = distribute(learner.strategy, unroll)
    for _ in range(40):
      learner.step_on(batch)
    state = learner.popart_statistics()
    self.assertGreater(state.sigma[1] / state.sigma[0], 100.0)
    loss_ratio, grad_ratio = per_task(learner)
    self.assertBetween(loss_ratio, 0.01, 100.0)
    self.assertBetween(grad_ratio, 0.1, 10.0)

  def test_two_replicas_hold_identical_statistics_equal_to_one_device(self):
    unroll = two_task_unroll(seed=5)
    default = make_learner(tf.distribute.get_strategy())
    strategy = strategies.two_replica_strategy()
    mirrored = make_learner(strategy)
    for target, value in zip(mirrored.network.trainable_variables,
                             default.get_variables()):
      target.assign(value)
    for _ in range(3):
      default.step_on(distribute(default.strategy, unroll))
      mirrored.step_on(distribute(strategy, unroll))
    for variable, want in zip(mirrored.popart_state,
                              default.popart_statistics()):
      copies = strategy.experimental_local_results(variable)
      self.assertLen(copies, 2)
      self.assertAllEqual(copies[0], copies[1])
      self.assertAllClose(copies[0], want, rtol=1e-5)
    kernel = mirrored.network.value_head.kernel
    copies = strategy.experimental_local_results(kernel)
    self.assertAllEqual(copies[0], copies[1])
    self.assertAllClose(copies[0], default.network.value_head.kernel,
                        rtol=1e-4, atol=1e-6)

  def test_resume_restores_mu_sigma_nu_exactly(self):
    directory = self.get_temp_dir()
    learner = make_learner(tf.distribute.get_strategy(),
                           checkpoint_dir=directory)
    batch = distribute(learner.strategy, two_task_unroll(seed=6))
    for _ in range(3):
      learner.step_on(batch)
    learner.save()
    resumed = make_learner(tf.distribute.get_strategy(),
                           checkpoint_dir=directory)
    self.assertAllEqual(resumed.popart_statistics().mu, [0., 0.])
    self.assertTrue(resumed.restore())
    for got, want in zip(resumed.popart_statistics(),
                         learner.popart_statistics()):
      self.assertAllEqual(got, want)
    self.assertNotAllClose(learner.popart_statistics().mu, [0., 0.])
    m1 = learner.step_on(batch)
    m2 = resumed.step_on(distribute(resumed.strategy, two_task_unroll(seed=6)))
    self.assertAllClose(m1['loss'], m2['loss'], rtol=1e-6)
    for got, want in zip(resumed.popart_statistics(),
                         learner.popart_statistics()):
      self.assertAllClose(got, want, rtol=1e-6)

  def test_bad_popart_arguments_raise_before_building(self):
    with self.assertRaisesRegex(ValueError, 'popart_step_size'):
      make_learner(tf.distribute.get_strategy(), step_size=0.0)
    with self.assertRaisesRegex(ValueError, 'popart_scale_lb'):
      make_learner(tf.distribute.get_strategy(), popart_scale_lb=2.0,
                   popart_scale_ub=1.0)


if __name__ == '__main__':
  tf.test.main()
