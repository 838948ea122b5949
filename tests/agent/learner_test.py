"""Learner: strategy equivalence, learning on a fixed batch, checkpoint resume."""

import functools

import numpy as np
import tensorflow as tf

from agent import learner as learner_lib
from agent import losses
from agent import networks
from agent import types
from tests import strategies

T, B, A = 5, 4, 3
OBS_SPEC = tf.TensorSpec([12, 12, 2], tf.uint8)
LSTM = 16


def random_unroll(seed: int = 0, batch_size: int = B) -> types.Unroll:
  """A time-major batch with episode starts inside the unroll."""
  rng = np.random.RandomState(seed)
  first = rng.rand(T + 1, batch_size) < 0.2
  return types.Unroll(
      observation=rng.randint(0, 256, (T + 1, batch_size) + tuple(OBS_SPEC.shape),
                              ).astype(np.uint8),
      first=first,
      reward=rng.randn(T + 1, batch_size).astype(np.float32),
      discount=np.where(first, 0.0, 1.0).astype(np.float32),
      prev_action=rng.randint(0, A, (T + 1, batch_size)).astype(np.int32),
      action=rng.randint(0, A, (T + 1, batch_size)).astype(np.int32),
      behaviour_logits=rng.randn(T + 1, batch_size, A).astype(np.float32),
      task_id=np.zeros((T + 1, batch_size), np.int32),
      core_state=(0.1 * rng.randn(batch_size, LSTM).astype(np.float32),
                  0.1 * rng.randn(batch_size, LSTM).astype(np.float32)))


def replica_dataset_fn(strategy, unroll):
  """dataset_fn that splits the global batch along B across the replicas.

  With one input pipeline (MirroredStrategy on one host) successive dataset
  elements go to successive replicas, so the pipeline yields replica 0's
  share, then replica 1's, and so on.
  """
  replicas = strategy.num_replicas_in_sync
  per = np.shape(unroll.first)[1] // replicas  # global B / replicas

  def part(i):
    return types.Unroll(
        *[x[:, i * per:(i + 1) * per] for x in unroll[:-1]],  # [T+1, b, ...]
        core_state=tuple(s[i * per:(i + 1) * per] for s in unroll.core_state))

  def dataset_fn(context):
    ids = range(context.input_pipeline_id, replicas, context.num_input_pipelines)
    dataset = None
    for i in ids:
      d = tf.data.Dataset.from_tensors(part(i))
      dataset = d if dataset is None else dataset.concatenate(d)
    return dataset.repeat()
  return dataset_fn


def distribute(strategy, unroll):
  """The global batch as the strategy's per-replica (distributed) value."""
  return next(iter(strategy.distribute_datasets_from_function(
      replica_dataset_fn(strategy, unroll))))


def make_learner(strategy, checkpoint_dir=None, dataset_fn=None, **kwargs):
  return learner_lib.Learner(
      make_network=functools.partial(networks.ImpalaNetwork, A, torso='deep',
                                     lstm_size=LSTM),
      observation_spec=OBS_SPEC, dataset_fn=dataset_fn,
      loss_fn=functools.partial(losses.impala_loss, reward_clip=1.0),
      strategy=strategy, agent_steps_per_step=T * B, frame_skip=4,
      total_frames=T * B * 4 * 1000, checkpoint_dir=checkpoint_dir, **kwargs)


def mirrored_strategy():
  devices = tf.config.list_logical_devices('CPU')
  if len(devices) < 2:
    raise AssertionError('conftest.py must configure two logical CPUs')
  return strategies.two_replica_strategy()


class LearnerTest(tf.test.TestCase):

  def test_mirrored_two_replicas_equals_default_strategy(self):
    unroll = random_unroll(seed=1)
    default = make_learner(tf.distribute.get_strategy())
    mirrored_strategy_ = mirrored_strategy()
    mirrored = make_learner(mirrored_strategy_)
    for target, value in zip(mirrored.network.trainable_variables,
                             default.get_variables()):
      target.assign(value)
    self.assertEqual(mirrored_strategy_.num_replicas_in_sync, 2)

    loss_1, grads_1 = default.gradients(distribute(default.strategy, unroll))
    loss_2, grads_2 = mirrored.gradients(distribute(mirrored_strategy_, unroll))
    self.assertAllClose(loss_1, loss_2, rtol=1e-5, atol=1e-5)
    self.assertLen(grads_2, len(grads_1))
    for g1, g2 in zip(grads_1, grads_2):
      self.assertAllClose(g1, g2, rtol=1e-5, atol=1e-5)
    self.assertGreater(sum(np.abs(g).sum() for g in grads_1), 0.0)

    # One full train step (global clip + RMSProp) keeps them identical too.
    m1 = default.step_on(distribute(default.strategy, unroll))
    m2 = mirrored.step_on(distribute(mirrored_strategy_, unroll))
    self.assertAllClose(m1['loss'], m2['loss'], rtol=1e-5, atol=1e-5)
    self.assertAllClose(m1['grad_norm'], m2['grad_norm'], rtol=1e-5)
    for v1, v2 in zip(default.get_variables(), mirrored.get_variables()):
      self.assertAllClose(v1, v2, rtol=1e-5, atol=1e-6)

  def test_dataset_batches_arrive_packed_and_train_as_unpacked(self):
    # One uint8 tensor per replica from next_batch (agent/packing.py), and
    # the step on it equals the step on the unpacked batch.
    for strategy in (tf.distribute.get_strategy(), mirrored_strategy()):
      unroll = random_unroll(seed=4)
      from_dataset = make_learner(
          strategy, dataset_fn=replica_dataset_fn(strategy, unroll))
      direct = make_learner(strategy)
      for target, value in zip(direct.network.trainable_variables,
                               from_dataset.get_variables()):
        target.assign(value)
      batch = from_dataset.next_batch()
      per_replica = strategy.experimental_local_results(batch)
      self.assertLen(per_replica, strategy.num_replicas_in_sync)
      for packed in per_replica:
        self.assertIsInstance(packed, tf.Tensor)
        self.assertEqual((packed.dtype, packed.shape.rank), (tf.uint8, 1))
      m1 = from_dataset.step_on(batch)
      m2 = direct.step_on(distribute(strategy, unroll))
      self.assertAllClose(m1['loss'], m2['loss'], rtol=1e-6)
      self.assertAllClose(m1['grad_norm'], m2['grad_norm'], rtol=1e-6)
      self.assertEqual(from_dataset.frames, T * B * 4)
      for v1, v2 in zip(from_dataset.get_variables(), direct.get_variables()):
        self.assertAllClose(v1, v2, rtol=1e-6, atol=1e-7)

  def test_loss_falls_on_fixed_batch(self):
    learner = make_learner(tf.distribute.get_strategy(), learning_rate=1e-3)
    batch = distribute(learner.strategy, random_unroll(seed=2))
    first = learner.step_on(batch)['loss']
    for _ in range(30):
      last = learner.step_on(batch)['loss']
    self.assertLess(last, first - 0.3 * abs(first))

  def test_counters_and_learning_rate_schedule(self):
    learner = make_learner(tf.distribute.get_strategy(), learning_rate=1e-3)
    batch = distribute(learner.strategy, random_unroll(seed=3))
    metrics = [learner.step_on(batch) for _ in range(3)]
    self.assertEqual(learner.learner_steps, 3)
    self.assertEqual(learner.agent_steps, 3 * T * B)
    self.assertEqual(learner.frames, 3 * T * B * 4)
    # Linear decay to 0 over total_frames = 1000 learner steps' frames.
    self.assertAllClose([m['learning_rate'] for m in metrics],
                        [1e-3, 1e-3 * 999 / 1000, 1e-3 * 998 / 1000])

  def test_non_finite_loss_raises_and_leaves_weights_untouched(self):
    learner = make_learner(tf.distribute.get_strategy())
    unroll = random_unroll(seed=5)
    bad = unroll._replace(reward=np.full_like(unroll.reward, np.nan))
    before = learner.get_variables()
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'Non-finite'):
      learner.step_on(distribute(learner.strategy, bad))
    for v1, v2 in zip(before, learner.get_variables()):
      self.assertAllEqual(v1, v2)
    self.assertEqual(learner.learner_steps, 0)

  def test_learning_rate_follows_frames_not_optimizer_iterations(self):
    # Resuming with another batch size must not change the schedule: the rate
    # is lr0 · (1 − frames / total_frames) whatever the steps taken so far.
    learner = make_learner(tf.distribute.get_strategy(), learning_rate=1e-3)
    total = T * B * 4 * 1000
    learner._agent_steps.assign(total // 4 // 4)  # a quarter of the frames
    metrics = learner.step_on(distribute(learner.strategy, random_unroll(6)))
    self.assertAllClose(metrics['learning_rate'], 0.75e-3)

  def test_checkpoint_resume_restores_everything(self):
    directory = self.get_temp_dir()
    learner = make_learner(tf.distribute.get_strategy(), checkpoint_dir=directory)
    self.assertFalse(learner.restore())
    batch = distribute(learner.strategy, random_unroll(seed=4))
    for _ in range(2):
      learner.step_on(batch)
    learner.save()
    resumed = make_learner(tf.distribute.get_strategy(), checkpoint_dir=directory)
    self.assertTrue(resumed.restore())
    self.assertEqual(resumed.learner_steps, 2)
    self.assertEqual(resumed.agent_steps, 2 * T * B)
    for v1, v2 in zip(learner.get_variables(), resumed.get_variables()):
      self.assertAllEqual(v1, v2)
    # Optimizer state and schedule continue: the next step is identical.
    m1 = learner.step_on(batch)
    m2 = resumed.step_on(distribute(resumed.strategy, random_unroll(seed=4)))
    self.assertAllClose(m1['learning_rate'], m2['learning_rate'])
    self.assertAllClose(m1['loss'], m2['loss'], rtol=1e-6)
    for v1, v2 in zip(learner.get_variables(), resumed.get_variables()):
      self.assertAllClose(v1, v2, rtol=1e-6, atol=1e-7)


if __name__ == '__main__':
  tf.test.main()
