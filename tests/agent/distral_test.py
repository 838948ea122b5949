"""Tests of agent/distral.py against the float64 loops in tests/reference.py."""

import functools
import itertools

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import distral
from tests import reference

VARIANTS = ('eager', 'function', 'jit')
DTYPES = (np.float64, np.float32)
SHAPES = ((5, 3, 4), (3, 4))  # [T, B, A] and [B, A].
COLUMNS = ('two_column', 'one_column')
ALPHA_BETA = ((0.5, 1.), (1., 3.), (0.5, 5000.))  # (α, β); β in the thousands.
# rtol per dtype; atol is TOL times the size of the quantity (β for the
# 2-column logits and log π_i, 1 for V_i, Â_i, r'): about 30 ulps in float32;
# float64 leaves room for the reference's different summation order.
TOL = {np.float64: 1e-12, np.float32: 2e-6}


def _run(variant, fn, *args, **kwargs):
  """Calls fn(*args, **kwargs) eagerly, under tf.function or under XLA."""
  if variant == 'eager':
    return fn(*args, **kwargs)
  wrapped = tf.function(lambda *a: fn(*a, **kwargs),
                        jit_compile=(variant == 'jit'))
  return wrapped(*args)


def _compiled(variant, fn):
  """fn itself (eager) or one tf.function wrapping it, reused across calls."""
  if variant == 'eager':
    return fn
  return tf.function(fn, jit_compile=(variant == 'jit'))


def _scalars(*values, dtype=np.float64):
  """0-d arrays: traced as tensors, so one tf.function serves every value."""
  return tuple(np.asarray(v, dtype) for v in values)


def _inputs(shape, dtype, seed=0):
  """h0 [..., A] (spread-out π0), f_i [..., A] of size ~1, r and a [...]."""
  rng = np.random.default_rng(seed)
  h0 = (2. * rng.normal(size=shape)).astype(dtype)
  f = rng.normal(size=shape).astype(dtype)
  rewards = rng.normal(size=shape[:-1]).astype(dtype)
  actions = rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
  return h0, f, rewards, actions


def _gather(values, actions):  # [..., A], int [...] -> [...]
  return np.take_along_axis(np.asarray(values), actions[..., None], -1)[..., 0]


class DistralTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(((0.5, 0.5), (0.5, 1.)), ((1., 0.), (1., 1.)),
                            ((0.3, 0.2), (0.6, 2.)), ((0.01, 0), (1., 100.)),
                            ((0, 4), (0., 0.25)))
  def test_coefficients(self, costs, expected):
    alpha, beta = distral.coefficients(*costs)
    self.assertIsInstance(alpha, float)
    self.assertIsInstance(beta, float)
    self.assertAllClose((alpha, beta), expected, rtol=1e-15, atol=0.)
    self.assertAllClose((alpha, beta), reference.distral_coefficients(*costs),
                        rtol=1e-15, atol=0.)
    # α/β = c_KL and 1/β = c_KL + c_ent.
    self.assertAllClose((alpha / beta, 1. / beta),
                        (costs[0], costs[0] + costs[1]), rtol=1e-14, atol=0.)

  @parameterized.parameters(*VARIANTS)
  def test_coefficients_of_tensors(self, variant):
    fn = _compiled(variant, distral.coefficients)
    for costs, expected in (((0.5, 0.5), (0.5, 1.)), ((1., 0.), (1., 1.)),
                            ((0.3, 0.2), (0.6, 2.))):
      alpha, beta = fn(*(tf.constant(c, tf.float64) for c in costs))
      self.assertEqual(alpha.dtype, tf.float64)
      self.assertEqual(beta.dtype, tf.float64)
      self.assertAllClose((alpha, beta), expected, rtol=1e-15, atol=0.)
    # A Python cost takes the other's dtype.
    alpha, beta = fn(tf.constant(0.3, tf.float32), 0.2)
    self.assertEqual(alpha.dtype, tf.float32)
    self.assertAllClose((alpha, beta), (0.6, 2.), rtol=1e-6, atol=0.)

  @parameterized.named_parameters(
      ('kl_negative', -0.1, 0.5, 'kl_cost.*>= 0.*-0.1'),
      ('entropy_negative', 0.5, -1., 'entropy_cost.*>= 0'),
      ('both_zero', 0., 0., 'both be 0'),
      ('kl_nan', float('nan'), 0.5, 'kl_cost.*finite.*nan'),
      ('entropy_nan', 0.5, float('nan'), 'entropy_cost.*finite.*nan'),
      ('kl_inf', float('inf'), 0.5, 'kl_cost.*finite.*inf'),
      ('eager_tensor_negative', tf.constant(-1.), 1., 'kl_cost.*>= 0'),
      ('eager_tensors_zero', tf.constant(0.), tf.constant(0.), 'both be 0'),
      ('rank_1', np.ones(2), 1., 'kl_cost.*rank 0'),
      ('bool', True, 1., 'kl_cost.*real number'),
  )
  def test_coefficients_bad_inputs_raise(self, kl_cost, entropy_cost, regex):
    with self.assertRaisesRegex(ValueError, regex):
      distral.coefficients(kl_cost, entropy_cost)

  @parameterized.parameters(((-1., 1.),), ((0., 0.),), ((np.nan, 1.),))
  def test_symbolic_coefficients_checked_at_run_time(self, costs):
    fn = tf.function(distral.coefficients)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'Distral'):
      fn(*(tf.constant(c) for c in costs))
    self.assertAllClose(fn(tf.constant(1.), tf.constant(3.)), (0.25, 0.25))

  @parameterized.product(variant=VARIANTS, dtype=DTYPES)
  def test_two_column_matches_reference(self, variant, dtype):
    # Shapes [T, B, A] and [B, A]; β up to 5000, where e^{β f} overflows.
    fn = _compiled(variant, lambda h0, f, alpha, beta: (
        distral.two_column_logits(h0, f, alpha, beta),
        distral.soft_value(h0, f, alpha, beta),
        distral.soft_advantage(h0, f, alpha, beta)))
    for shape, (alpha, beta) in itertools.product(SHAPES, ALPHA_BETA):
      h0, f, _, _ = _inputs(shape, dtype)
      if beta >= 1000.:
        # The naive Σ_a π0^α e^{β f} overflows even in float64 here.
        with np.errstate(over='ignore'):
          self.assertTrue(np.isinf(np.exp(beta * f.astype(np.float64))).any())
      results = fn(h0, f, *_scalars(alpha, beta))
      logits, values, advantages = results
      for result, result_shape in zip(results, (shape, shape[:-1], shape)):
        self.assertEqual(result.dtype, dtype)
        self.assertEqual(result.shape, result_shape)
        self.assertAllEqual(np.isfinite(result), np.ones(result_shape, bool))
      tol = TOL[dtype]
      scale = max(beta, 1.)  # Size of the logits and of log π_i.
      msg = f'shape {shape}, α {alpha}, β {beta}'
      self.assertAllClose(
          logits, reference.distral_two_column_logits(h0, f, alpha, beta),
          rtol=tol, atol=tol * scale, msg=msg)
      self.assertAllClose(
          tf.nn.log_softmax(logits),
          reference.distral_two_column_log_policy(h0, f, alpha, beta),
          rtol=tol, atol=tol * scale, msg=msg)
      self.assertAllClose(values,
                          reference.distral_soft_value(h0, f, alpha, beta),
                          rtol=tol, atol=tol, msg=msg)
      self.assertAllClose(advantages,
                          reference.distral_soft_advantage(h0, f, alpha, beta),
                          rtol=tol, atol=tol, msg=msg)

  @parameterized.product(variant=VARIANTS, dtype=DTYPES)
  def test_log_policy_is_alpha_log_pi0_plus_beta_advantage(self, variant,
                                                           dtype):
    # log π_i = α log π0 + β Â_i, and so Σ_a π0^α e^{β Â_i} = 1.
    def identity(h0, f, alpha, beta):
      log_pi = tf.nn.log_softmax(distral.two_column_logits(h0, f, alpha, beta))
      advantages = distral.soft_advantage(h0, f, alpha, beta)
      return log_pi, alpha * tf.nn.log_softmax(h0) + beta * advantages

    fn = _compiled(variant, identity)
    h0, f, _, _ = _inputs((5, 3, 4), dtype, seed=1)
    for alpha, beta in ALPHA_BETA:
      log_pi, rebuilt = fn(h0, f, *_scalars(alpha, beta, dtype=dtype))
      tol = TOL[dtype]
      self.assertAllClose(log_pi, rebuilt, rtol=tol, atol=tol * max(beta, 1.))
      self.assertAllLessEqual(log_pi, 0.)
      # Not trivially true: Â_i is not f_i itself.
      self.assertNotAllClose(rebuilt, alpha * reference.log_softmax(h0) +
                             beta * f.astype(np.float64), atol=1e-2)

  @parameterized.product(variant=VARIANTS, dtype=DTYPES)
  def test_regularized_rewards_match_reference(self, variant, dtype):
    fn = _compiled(variant, distral.regularized_rewards)
    for shape, columns, costs in itertools.product(
        SHAPES, COLUMNS, ((0.5, 0.5), (0.3, 0.2), (1e-4, 1e-4))):
      alpha, beta = distral.coefficients(*costs)  # β = 1, 2, 5000.
      h0, f, rewards, actions = _inputs(shape, dtype, seed=2)
      if columns == 'two_column':
        policy_logits = distral.two_column_logits(h0, f, alpha, beta).numpy()
      else:
        policy_logits = (3. * f).astype(dtype)  # Free logits of π_i.
      result = fn(rewards, actions, h0, policy_logits, *_scalars(alpha, beta))
      self.assertEqual(result.dtype, dtype)
      self.assertEqual(result.shape, shape[:-1])
      expected = reference.distral_regularized_rewards(
          rewards, actions, h0, policy_logits, alpha, beta)
      tol = TOL[dtype]
      msg = f'shape {shape}, {columns}, costs {costs}'
      self.assertAllClose(result, expected, rtol=tol, atol=tol, msg=msg)
      # The regulariser moves the reward, so the check above can fail.
      self.assertNotAllClose(result, rewards, rtol=0., atol=0.01 / beta,
                             msg=msg)

  @parameterized.product(variant=VARIANTS, dtype=DTYPES)
  def test_two_column_reward_is_reward_minus_advantage(self, variant, dtype):
    # (α/β) log π0(a) − (1/β) log π_i(a) = −Â_i(a), so r' = r − Â_i(a).
    def both(rewards, actions, h0, f, alpha, beta):
      policy_logits = distral.two_column_logits(h0, f, alpha, beta)
      regularized = distral.regularized_rewards(rewards, actions, h0,
                                                policy_logits, alpha, beta)
      advantages = distral.soft_advantage(h0, f, alpha, beta)
      return regularized, rewards - tf.gather(
          advantages, actions, batch_dims=len(actions.shape))  # [...]

    fn = _compiled(variant, both)
    for shape, (alpha, beta) in itertools.product(SHAPES, ALPHA_BETA):
      h0, f, rewards, actions = _inputs(shape, dtype, seed=3)
      regularized, expected = fn(rewards, actions, h0, f,
                                 *_scalars(alpha, beta))
      tol = TOL[dtype]
      self.assertAllClose(regularized, expected, rtol=tol, atol=tol)
      reference_advantages = reference.distral_soft_advantage(h0, f, alpha,
                                                              beta)
      self.assertAllClose(regularized,
                          rewards - _gather(reference_advantages, actions),
                          rtol=tol, atol=tol)
      self.assertGreater(np.abs(_gather(reference_advantages, actions)).max(),
                         0.1)

  @parameterized.product(variant=VARIANTS, dtype=DTYPES)
  def test_expected_regularized_reward(self, variant, dtype):
    # E_{a~π_i}[r'] = r − c_KL KL(π_i‖π0) + c_ent H(π_i), summing over every
    # action exactly; for c_ent = 0 (α = 1) pure KL regularisation.
    fn = _compiled(variant, lambda rewards, h0, policy_logits, alpha, beta: (
        tf.stack([distral.regularized_rewards(
            rewards, tf.fill(tf.shape(rewards), a), h0, policy_logits, alpha,
            beta) for a in range(4)], axis=-1),  # [..., A] r'(a) for every a.
        distral.kl_divergence(policy_logits, h0),
        distral.entropy(policy_logits)))
    shape = (5, 3, 4)
    h0, f, rewards, _ = _inputs(shape, dtype, seed=4)
    for columns, (kl_cost, entropy_cost) in itertools.product(
        COLUMNS, ((0.25, 0.), (0.2, 0.2), (0.1, 0.3))):
      alpha, beta = distral.coefficients(kl_cost, entropy_cost)
      if columns == 'two_column':
        policy_logits = distral.two_column_logits(h0, f, alpha, beta).numpy()
      else:
        policy_logits = (2. * f).astype(dtype)
      per_action, kl_tf, entropy_tf = fn(rewards, h0, policy_logits,
                                         *_scalars(alpha, beta))
      pi = np.exp(reference.log_softmax(policy_logits))  # [..., A] π_i
      expected_reward = np.sum(pi * np.float64(per_action), axis=-1)  # [...]
      kl = reference.distral_kl(policy_logits, h0)
      entropy = reference.distral_entropy(policy_logits)
      tol = 10. * TOL[dtype]
      msg = f'{columns}, c_KL {kl_cost}, c_ent {entropy_cost}'
      self.assertAllClose(expected_reward,
                          rewards - kl_cost * kl + entropy_cost * entropy,
                          rtol=tol, atol=tol, msg=msg)
      self.assertAllClose(kl_tf, kl, rtol=tol, atol=tol, msg=msg)
      self.assertAllClose(entropy_tf, entropy, rtol=tol, atol=tol, msg=msg)
      self.assertAllGreater(kl, 1e-3)
      pure_kl = rewards - kl_cost * kl
      if entropy_cost == 0.:
        self.assertEqual(alpha, 1.)
        self.assertAllClose(expected_reward, pure_kl, rtol=tol, atol=tol,
                            msg=msg)
      else:  # With an entropy cost the pure-KL form must fail.
        self.assertNotAllClose(expected_reward, pure_kl, atol=1e-3, msg=msg)

  @parameterized.product(variant=VARIANTS, dtype=DTYPES)
  def test_distillation_gradient(self, variant, dtype):
    # ∇_{h0} L = −(α/β)(π_i − π0) per step; nothing reaches π_i's logits,
    # even when those are built from h0 (2-column).
    alpha, beta = distral.coefficients(0.3, 0.2)

    def gradients(h0, f, weights, two_column):
      with tf.GradientTape(persistent=True) as tape:
        tape.watch([h0, f])
        policy_logits = (distral.two_column_logits(h0, f, alpha, beta)
                         if two_column else 2. * f)
        loss = distral.distillation_loss(h0, policy_logits, alpha, beta)
        weighted = tf.reduce_sum(weights * loss)  # Distinct weight per step.
      zero = tf.UnconnectedGradients.ZERO
      return (loss, policy_logits, tape.gradient(weighted, h0),
              tape.gradient(weighted, f, unconnected_gradients=zero),
              tape.gradient(weighted, policy_logits,
                            unconnected_gradients=zero))

    fn = {two_column: _compiled(variant, functools.partial(
        gradients, two_column=two_column)) for two_column in (False, True)}
    # [T, B, A] with the 2-column, [B, A] with the 1-column policy logits.
    for shape, columns in zip(SHAPES, COLUMNS):
      h0, f, weights, _ = _inputs(shape, dtype, seed=5)
      loss, policy_logits, grad_h0, grad_f, grad_policy = fn[
          columns == 'two_column'](*(tf.constant(x) for x in (h0, f, weights)))
      tol = TOL[dtype]
      msg = f'shape {shape}, {columns}'
      self.assertEqual(loss.dtype, dtype)
      self.assertAllClose(loss, reference.distral_distillation_loss(
          h0, policy_logits, alpha, beta), rtol=tol, atol=tol, msg=msg)
      expected = weights[..., None] * reference.distral_distillation_gradient(
          h0, policy_logits, alpha, beta)
      self.assertAllClose(grad_h0, expected, rtol=tol, atol=tol, msg=msg)
      self.assertAllGreater(np.abs(expected).max(), 1e-2)
      self.assertAllEqual(grad_f, np.zeros(shape), msg=msg)
      self.assertAllEqual(grad_policy, np.zeros(shape), msg=msg)
    with tf.GradientTape() as tape:
      policy = tf.constant(policy_logits)
      tape.watch(policy)
      loss = distral.distillation_loss(h0, policy, alpha, beta)
    self.assertIsNone(tape.gradient(loss, policy))

  @parameterized.parameters(*VARIANTS)
  def test_regularized_rewards_carry_no_gradient(self, variant):
    alpha, beta = 0.5, 2.
    h0, f, rewards, actions = _inputs((5, 3, 4), np.float64, seed=6)

    def gradients(rewards, h0, f):
      grads = []
      for two_column in (False, True):
        with tf.GradientTape() as tape:
          tape.watch([rewards, h0, f])
          policy_logits = (distral.two_column_logits(h0, f, alpha, beta)
                           if two_column else f)
          total = tf.reduce_sum(distral.regularized_rewards(
              rewards, actions, h0, policy_logits, alpha, beta))
        grads += tape.gradient(
            total, [rewards, h0, f, policy_logits],
            unconnected_gradients=tf.UnconnectedGradients.ZERO)
      return grads

    grads = _run(variant, gradients,
                 *(tf.constant(x) for x in (rewards, h0, f)))
    self.assertLen(grads, 8)
    for grad in grads:
      self.assertAllEqual(grad, tf.zeros_like(grad))

  @parameterized.parameters(*VARIANTS)
  def test_two_column_gradients_reach_both_columns(self, variant):
    # ∂/∂h0 of gᵀ(α log softmax(h0) + β f) = α (g − π0 Σ_a g), ∂/∂f = β g;
    # ∂V_i/∂f_i = π_i (the policy gradient reaches h0 in the 2-column form).
    alpha, beta = 0.5, 3.
    h0, f, _, _ = _inputs((3, 4), np.float64, seed=7)
    g = np.random.default_rng(8).normal(size=(3, 4))

    def gradients(h0, f):
      with tf.GradientTape(persistent=True) as tape:
        tape.watch([h0, f])
        logits = distral.two_column_logits(h0, f, alpha, beta)
        values = distral.soft_value(h0, f, alpha, beta)
      return (tape.gradient(logits, [h0, f], output_gradients=g),
              tape.gradient(values, f))

    (grad_h0, grad_f), grad_value = _run(variant, gradients, tf.constant(h0),
                                         tf.constant(f))
    pi0 = np.exp(reference.log_softmax(h0))
    self.assertAllClose(grad_h0, alpha * (g - pi0 * g.sum(-1, keepdims=True)),
                        rtol=1e-12, atol=1e-12)
    self.assertAllClose(grad_f, beta * g, rtol=1e-12, atol=0.)
    self.assertAllClose(grad_value, np.exp(
        reference.distral_two_column_log_policy(h0, f, alpha, beta)),
                        rtol=1e-12, atol=1e-12)

  @parameterized.parameters(*VARIANTS)
  def test_kl_and_entropy_with_masked_actions(self, variant):
    # −inf logits (impossible actions) add 0, not NaN.
    logits = np.array([[0., -np.inf, 1.], [2., 0., -1.]], np.float32)
    distilled = np.array([[0.5, 0., 0.], [0., 0., 0.]], np.float32)
    kl = _run(variant, distral.kl_divergence, logits, distilled)
    entropy = _run(variant, distral.entropy, logits)
    finite = np.where(np.isinf(logits), -30., logits)  # e^{-30} ≈ 1e-13.
    self.assertAllClose(kl, reference.distral_kl(finite, distilled),
                        rtol=1e-5, atol=1e-6)
    self.assertAllClose(entropy, reference.distral_entropy(finite),
                        rtol=1e-5, atol=1e-6)

  @parameterized.parameters(False, True)
  def test_dynamic_shapes(self, jit_compile):
    float_spec = tf.TensorSpec([None, None, None], tf.float32)
    rewards_spec = tf.TensorSpec([None, None], tf.float32)
    actions_spec = tf.TensorSpec([None, None], tf.int32)

    def fn(rewards, actions, h0, f):
      logits = distral.two_column_logits(h0, f, 0.5, 100.)
      return (distral.regularized_rewards(rewards, actions, h0, logits, 0.5,
                                          100.),
              distral.soft_advantage(h0, f, 0.5, 100.),
              distral.distillation_loss(h0, logits, 0.5, 100.))

    compiled = tf.function(
        fn, input_signature=[rewards_spec, actions_spec, float_spec,
                             float_spec], jit_compile=jit_compile)
    for shape in ((2, 3, 4), (5, 1, 6), (1, 1, 2)):
      h0, f, rewards, actions = _inputs(shape, np.float32, seed=sum(shape))
      for result, expected in zip(compiled(rewards, actions, h0, f),
                                  fn(rewards, actions, h0, f)):
        self.assertAllClose(result, expected, rtol=1e-5, atol=1e-5)
    self.assertAllClose(
        compiled(rewards, actions, h0, f)[0],
        reference.distral_regularized_rewards(
            rewards, actions, h0,
            reference.distral_two_column_logits(h0, f, 0.5, 100.), 0.5, 100.),
        rtol=1e-4, atol=1e-4)

  def test_single_state_and_mixed_inputs(self):
    # Rank-1 logits [A] (no leading dimensions), Python lists and floats; the
    # float32 tensor fixes the dtype, NumPy float64 rewards are cast to it.
    h0 = tf.constant([0.1, -0.3, 0.7])
    f = [0.2, 0.4, -1.]
    reward = np.float64(0.5)
    result = distral.regularized_rewards(reward, 2, h0, f, 0.5, 2.)
    self.assertEqual(result.dtype, tf.float32)
    self.assertEqual(result.shape, [])
    self.assertAllClose(result, reference.distral_regularized_rewards(
        reward, 2, h0.numpy(), np.float32(f), 0.5, 2.), rtol=1e-6)
    alpha, beta = distral.coefficients(tf.constant(0.3, tf.float64), 0.2)
    values = distral.soft_value(h0, f, alpha, beta)
    self.assertEqual(values.dtype, tf.float32)
    self.assertAllClose(values, reference.distral_soft_value(
        h0.numpy(), np.float32(f), 0.6, 2.), rtol=1e-6)

  @parameterized.named_parameters(
      ('action_axis', 'two_column_logits', dict(task_logits=np.zeros((3, 5))),
       'action axis'),
      ('rank', 'soft_value', dict(task_logits=np.zeros((2, 3, 4))),
       'task_logits.*incompatible'),
      ('batch_shape', 'distillation_loss',
       dict(policy_logits=np.zeros((2, 4))), 'policy_logits.*incompatible'),
      ('kl_action_axis', 'kl_divergence',
       dict(distilled_logits=np.zeros((3, 2))), 'action axis'),
      ('scalar_logits', 'entropy', dict(logits=np.float64(1.)),
       r'logits.*rank >= 1'),
      ('int_logits', 'soft_advantage',
       dict(distilled_logits=tf.zeros((3, 4), tf.int32)), 'floating'),
      ('mixed_dtypes', 'regularized_rewards',
       dict(distilled_logits=tf.zeros((3, 4), tf.float32),
            policy_logits=tf.zeros((3, 4), tf.float64)),
       'policy_logits.*dtype'),
      ('float_actions', 'regularized_rewards', dict(actions=np.zeros(3)),
       'actions.*integer'),
      ('actions_rank', 'regularized_rewards',
       dict(actions=np.zeros((3, 4), np.int32)), 'actions.*rank 1'),
      ('rewards_shape', 'regularized_rewards', dict(rewards=np.zeros(2)),
       'rewards.*leading shape'),
      ('alpha_above_one', 'two_column_logits', dict(alpha=1.5),
       r'alpha.*\[0, 1\]'),
      ('alpha_negative', 'regularized_rewards', dict(alpha=-0.1),
       r'alpha.*\[0, 1\]'),
      ('beta_zero', 'soft_value', dict(beta=0.), 'beta.*> 0'),
      ('beta_nan', 'distillation_loss', dict(beta=float('nan')),
       'beta.*finite.*nan'),
      ('beta_inf', 'soft_advantage', dict(beta=np.inf), 'beta.*finite'),
      ('beta_eager_tensor', 'two_column_logits', dict(beta=tf.constant(-2.)),
       'beta.*> 0'),
      ('alpha_rank', 'soft_value', dict(alpha=np.ones(2)), 'alpha.*rank 0'),
  )
  def test_bad_inputs_raise(self, function, overrides, regex):
    args = dict(rewards=np.zeros(3), actions=np.zeros(3, np.int32),
                distilled_logits=np.zeros((3, 4)), task_logits=np.zeros((3, 4)),
                policy_logits=np.zeros((3, 4)), logits=np.zeros((3, 4)),
                alpha=0.5, beta=2.)
    args.update(overrides)
    fn = getattr(distral, function)
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    with self.assertRaisesRegex(ValueError, regex):
      fn(**{k: v for k, v in args.items() if k in names})

  def test_bad_inputs_raise_under_function(self):
    # Static checks run at trace time, also under tf.function and XLA.
    for jit_compile in (False, True):
      fn = tf.function(distral.two_column_logits, jit_compile=jit_compile)
      with self.assertRaisesRegex(ValueError, 'action axis'):
        fn(tf.zeros((2, 3)), tf.zeros((2, 4)), 0.5, 2.)
      with self.assertRaisesRegex(ValueError, 'beta'):
        fn(tf.zeros((2, 3)), tf.zeros((2, 3)), 0.5, -2.)


if __name__ == '__main__':
  absltest.main()
