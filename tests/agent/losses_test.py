"""Tests for agent/losses.py against the loops of tests/reference.py."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import losses
from agent import popart
from agent import types
from tests import reference

METRIC_KEYS = ('loss', 'policy_loss', 'baseline_loss', 'entropy_loss',
               'entropy', 'mean_vs', 'mean_rho', 'mean_abs_pg_advantage',
               'behaviour_kl')
UNROLL_FIELDS = ('first', 'reward', 'discount', 'action', 'behaviour_logits',
                 'task_id')

CONFIGS = dict(
    defaults=dict(),
    no_reward_clip=dict(reward_clip=None),
    off_defaults=dict(discount=0.9, baseline_cost=0.25, entropy_cost=0.1,
                      reward_clip=2.0, clip_rho_threshold=2.0,
                      clip_pg_rho_threshold=None, clip_c_threshold=0.5,
                      lambda_=0.8),
)


def _random_batch(seed, num_steps=6, batch_size=4, num_actions=5,
                  num_tasks=3, dtype=np.float64):
  """Random network outputs and unroll (float `dtype`) with episode starts."""
  rng = np.random.default_rng(seed)
  shape = (num_steps + 1, batch_size)
  first = rng.uniform(size=shape) < 0.2
  first[0] = True
  first[min(3, num_steps), 0] = True  # An episode start inside the unroll.
  discount = np.ones(shape)
  # Most episode starts follow a terminal step; the others are truncations
  # (discount 1 but first=True), which must still not bootstrap.
  discount[first & (rng.uniform(size=shape) < 0.7)] = 0.0
  task_id = rng.integers(0, num_tasks, size=(1, batch_size)).repeat(
      num_steps + 1, axis=0)
  task_id[4:, 1 % batch_size] = (task_id[0, 1 % batch_size] + 1) % num_tasks
  unroll = types.Unroll(
      observation=np.zeros(shape + (2,), np.uint8),
      first=first,
      reward=(rng.normal(size=shape) * 2.0).astype(dtype),
      discount=discount.astype(dtype),
      prev_action=np.zeros(shape, np.int32),
      action=rng.integers(0, num_actions, size=shape).astype(np.int32),
      behaviour_logits=rng.normal(size=shape + (num_actions,)).astype(dtype),
      task_id=task_id.astype(np.int32),
      core_state=(np.zeros((batch_size, 3), dtype),) * 2)
  outputs = types.AgentOutput(
      policy_logits=rng.normal(size=shape + (num_actions,)).astype(dtype),
      values=rng.normal(size=shape + (num_tasks,)).astype(dtype))
  return outputs, unroll


def _reference(outputs, unroll, **config):
  config = dict(config)
  if 'discount' in config:
    config['discount_factor'] = config.pop('discount')
  return reference.impala_loss(
      outputs.policy_logits, outputs.values,
      *(getattr(unroll, field) for field in UNROLL_FIELDS), **config)


def _run(variant, outputs, unroll, **config):
  fn = lambda o, u: losses.impala_loss(o, u, **config)
  if variant != 'eager':
    fn = tf.function(fn, jit_compile=(variant == 'jit'))
  return fn(tf.nest.map_structure(tf.constant, outputs),
            tf.nest.map_structure(tf.constant, unroll))


class ImpalaLossTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(variant=('eager', 'function', 'jit'),
                         config=tuple(CONFIGS), batch_size=(1, 4))
  def test_matches_reference(self, variant, config, batch_size):
    outputs, unroll = _random_batch(0, batch_size=batch_size)
    # The inputs exercise reward clipping, episode starts and several tasks.
    self.assertGreater(np.abs(unroll.reward[1:]).max(), 2.0)
    self.assertTrue(unroll.first[1:].any())
    loss, metrics = _run(variant, outputs, unroll, **CONFIGS[config])
    expected = _reference(outputs, unroll, **CONFIGS[config])
    self.assertEqual(loss.dtype, tf.float64)
    self.assertCountEqual(metrics.keys(), METRIC_KEYS)
    self.assertAllClose(loss, expected['loss'], rtol=1e-10, atol=1e-10)
    for key in METRIC_KEYS:
      self.assertEqual(metrics[key].shape, (), key)
      self.assertAllClose(metrics[key], expected[key], rtol=1e-10, atol=1e-10,
                          msg=key)

  def test_float32_matches_reference(self):
    outputs, unroll = _random_batch(1, dtype=np.float32)
    self.assertGreater(len(np.unique(unroll.task_id)), 1)
    loss, metrics = _run('function', outputs, unroll)
    expected = _reference(outputs, unroll)
    self.assertEqual(loss.dtype, tf.float32)
    for key in METRIC_KEYS:
      self.assertAllClose(metrics[key], expected[key], rtol=1e-5, atol=1e-4,
                          msg=key)

  def test_reward_clipping_changes_loss(self):
    outputs, unroll = _random_batch(2)
    clipped, _ = _run('eager', outputs, unroll, reward_clip=1.0)
    unclipped, _ = _run('eager', outputs, unroll, reward_clip=None)
    self.assertNotAllClose(clipped, unclipped)

  @parameterized.parameters(*CONFIGS)
  def test_gradients_match_reference_formulas(self, config):
    config = CONFIGS[config]
    num_tasks = 3
    outputs, unroll = _random_batch(3, num_tasks=num_tasks)
    logits = tf.constant(outputs.policy_logits)
    values = tf.constant(outputs.values)
    with tf.GradientTape() as tape:
      tape.watch([logits, values])
      loss, _ = losses.impala_loss(
          types.AgentOutput(logits, values),
          tf.nest.map_structure(tf.constant, unroll), **config)
    d_logits, d_values = tape.gradient(loss, [logits, values])
    expected = reference.impala_loss_gradients(
        _reference(outputs, unroll, **config), unroll.action, unroll.task_id,
        num_tasks, baseline_cost=config.get('baseline_cost', 0.5),
        entropy_cost=config.get('entropy_cost', 0.01))
    # Semi-gradient: v_s and A_s are constants, the bootstrap step gets none.
    self.assertAllClose(d_logits, expected['policy_logits'], rtol=1e-10,
                        atol=1e-10)
    self.assertAllClose(d_values, expected['values'], rtol=1e-10, atol=1e-10)
    self.assertAllEqual(d_logits[-1], np.zeros_like(d_logits[-1]))
    self.assertAllEqual(d_values[-1], np.zeros_like(d_values[-1]))

  def test_finite_differences_hold_targets_fixed(self):
    # Tiny case: the tape gradient equals the finite-difference derivative of
    # the loss with v_s and A_s frozen, and not that of the full loss (whose
    # targets move with V), e.g. at the bootstrap value V(x_T).
    outputs, unroll = _random_batch(4, num_steps=2, batch_size=1, num_tasks=1)
    unroll.first[1:] = False
    unroll.discount[1:] = 1.0
    values = tf.constant(outputs.values)
    with tf.GradientTape() as tape:
      tape.watch(values)
      loss, _ = losses.impala_loss(
          types.AgentOutput(tf.constant(outputs.policy_logits), values),
          tf.nest.map_structure(tf.constant, unroll))
    grad = tape.gradient(loss, values).numpy().ravel()
    ref = _reference(outputs, unroll)
    eps = 1e-6
    frozen, full = np.zeros(3), np.zeros(3)
    for i in range(3):
      bumped = outputs._replace(values=outputs.values.copy())
      bumped.values.ravel()[i] += eps
      frozen[i] = (_reference(bumped, unroll, targets=ref)['loss'] -
                   ref['loss']) / eps
      full[i] = (_reference(bumped, unroll)['loss'] - ref['loss']) / eps
    self.assertAllClose(grad, frozen, atol=1e-5)
    self.assertEqual(grad[-1], 0.0)
    self.assertGreater(abs(full[-1]), 1e-3)

  def test_gradient_descent_decreases_loss(self):
    # Plain gradient descent on free logits and values for a fixed batch.
    # Each step lowers the loss with that step's V-trace targets held fixed
    # (the objective the semi-gradient descends), and the baseline converges
    # to the V-trace fixed point. The total loss itself need not fall: the
    # targets (and the policy-gradient surrogate's value) move with π and V.
    outputs, unroll = _random_batch(5)
    unroll_t = tf.nest.map_structure(tf.constant, unroll)
    logits = tf.Variable(outputs.policy_logits)
    values = tf.Variable(outputs.values)
    learning_rate = 0.05

    @tf.function
    def step():
      with tf.GradientTape() as tape:
        loss, metrics = losses.impala_loss(
            types.AgentOutput(logits, values), unroll_t)
      for var, grad in zip([logits, values],
                           tape.gradient(loss, [logits, values])):
        var.assign_sub(learning_rate * grad)
      return metrics

    baseline_losses = []
    for _ in range(60):
      before = types.AgentOutput(logits.numpy(), values.numpy())
      targets = _reference(before, unroll)
      metrics = step()
      self.assertAllClose(metrics['loss'], targets['loss'], atol=1e-9)
      after = types.AgentOutput(logits.numpy(), values.numpy())
      self.assertLess(_reference(after, unroll, targets=targets)['loss'],
                      targets['loss'])
      baseline_losses.append(float(metrics['baseline_loss']))
    self.assertLess(baseline_losses[-1], 0.1 * baseline_losses[0])

  @parameterized.named_parameters(
      ('reward_clip_zero', dict(reward_clip=0.0), 'reward_clip'),
      ('reward_clip_negative', dict(reward_clip=-1.0), 'reward_clip'),
      ('baseline_cost', dict(baseline_cost=-0.5), 'baseline_cost'),
      ('entropy_cost', dict(entropy_cost=-0.01), 'entropy_cost'),
      ('discount_above_one', dict(discount=1.01), 'discount'),
      ('discount_nan', dict(discount=float('nan')), 'discount'),
      ('lambda', dict(lambda_=1.5), 'lambda_'),
      ('clip_rho_threshold', dict(clip_rho_threshold=-1.0),
       'clip_rho_threshold'),
  )
  def test_bad_config_raises(self, config, field):
    outputs, unroll = _random_batch(6)
    with self.assertRaisesRegex(ValueError, field):
      losses.impala_loss(outputs, unroll, **config)

  def test_values_without_task_dimension_raise(self):
    outputs, unroll = _random_batch(7, num_tasks=1)
    outputs = outputs._replace(values=outputs.values[..., 0])
    with self.assertRaisesRegex(ValueError, 'rank'):
      losses.impala_loss(outputs, unroll)



def _state(mu, sigma):
  mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
  return popart.PopArtState(tf.constant(mu), tf.constant(sigma),
                            tf.constant(sigma**2 + mu**2))


class PopArtLossTest(tf.test.TestCase, parameterized.TestCase):

  def _popart(self, outputs, unroll, state, **config):
    return losses.popart_impala_loss(
        tf.nest.map_structure(tf.constant, outputs),
        tf.nest.map_structure(tf.constant, unroll), state, **config)

  def test_identity_statistics_equal_unclipped_impala(self):
    outputs, unroll = _random_batch(5)
    loss, metrics, vs = self._popart(outputs, unroll, _state([0.] * 3, [1.] * 3))
    expected = _reference(outputs, unroll, reward_clip=None)
    self.assertAllClose(loss, expected['loss'], rtol=1e-10, atol=1e-10)
    for key in METRIC_KEYS:
      self.assertAllClose(metrics[key], expected[key], rtol=1e-10, atol=1e-10,
                          msg=key)
    self.assertEqual(vs.shape, unroll.reward[1:].shape)

  @parameterized.parameters('eager', 'function')
  def test_scale_invariance(self, variant):
    # Rewards × c with μ, σ × c and the same normalised outputs: the same
    # policy, baseline and entropy losses; unnormalised targets × c.
    outputs, unroll = _random_batch(6)
    mu, sigma = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.7, 3.0])
    loss_fn = losses.popart_impala_loss
    if variant == 'function':
      loss_fn = tf.function(loss_fn)
    fn = lambda o, u, state: loss_fn(tf.nest.map_structure(tf.constant, o),
                                     tf.nest.map_structure(tf.constant, u),
                                     state)
    loss_1, metrics_1, vs_1 = fn(outputs, unroll, _state(mu, sigma))
    scaled = unroll._replace(reward=unroll.reward * 1000.0)
    loss_2, metrics_2, vs_2 = fn(outputs, scaled,
                                 _state(1000.0 * mu, 1000.0 * sigma))
    self.assertAllClose(loss_1, loss_2, rtol=1e-9)
    for key in ('policy_loss', 'baseline_loss', 'entropy_loss'):
      self.assertAllClose(metrics_1[key], metrics_2[key], rtol=1e-9, msg=key)
    self.assertAllClose(vs_2, 1000.0 * vs_1.numpy(), rtol=1e-9)

  def test_matches_reference_on_unnormalised_values(self):
    # V-trace targets/advantages are those of the reference on σ n + μ; the
    # value loss is in normalised space and the policy loss is divided by σ.
    outputs, unroll = _random_batch(7)
    mu, sigma = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.7, 3.0])
    unnormalised = outputs._replace(values=outputs.values * sigma + mu)
    expected = _reference(unnormalised, unroll, reward_clip=None)
    _, metrics, vs = self._popart(outputs, unroll, _state(mu, sigma))
    self.assertAllClose(metrics['mean_vs'], expected['mean_vs'], rtol=1e-10)
    self.assertAllClose(metrics['entropy_loss'], expected['entropy_loss'],
                        rtol=1e-10)
    task = unroll.task_id[:-1]
    n = np.take_along_axis(outputs.values[:-1], task[..., None], 2)[..., 0]
    want_baseline = 0.5 * 0.5 * np.sum(
        np.square((vs.numpy() - mu[task]) / sigma[task] - n))
    self.assertAllClose(metrics['baseline_loss'], want_baseline, rtol=1e-10)

  def test_value_gradient_is_the_normalised_error(self):
    outputs, unroll = _random_batch(8)
    mu, sigma = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.7, 3.0])
    values = tf.constant(outputs.values)
    with tf.GradientTape() as tape:
      tape.watch(values)
      loss, _, vs = losses.popart_impala_loss(
          types.AgentOutput(tf.constant(outputs.policy_logits), values),
          tf.nest.map_structure(tf.constant, unroll), _state(mu, sigma),
          entropy_cost=0.0)
    grad = tape.gradient(loss, values).numpy()  # [T+1, B, K]
    task = unroll.task_id[:-1]
    n = np.take_along_axis(outputs.values[:-1], task[..., None], 2)[..., 0]
    want = -0.5 * ((vs.numpy() - mu[task]) / sigma[task] - n)  # SPEC §5
    got = np.take_along_axis(grad[:-1], task[..., None], 2)[..., 0]
    self.assertAllClose(got, want, rtol=1e-10, atol=1e-12)
    self.assertAllEqual(grad[-1], np.zeros_like(grad[-1]))

  def test_bad_state_raises(self):
    outputs, unroll = _random_batch(9)
    with self.assertRaisesRegex(ValueError, 'PopArtState'):
      self._popart(outputs, unroll, (0.0, 1.0, 1.0))
    with self.assertRaisesRegex(ValueError, r'popart_state.mu'):
      self._popart(outputs, unroll, _state([0.] * 2, [1.] * 2))

if __name__ == '__main__':
  absltest.main()
