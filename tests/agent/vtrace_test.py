"""Tests for agent/vtrace.py against the loops of tests/reference.py."""

import math

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import vtrace
from tests import reference

VARIANTS = ('eager', 'function', 'jit')

# Named threshold settings; each runs for B in {1, 5} and every variant.
CASES = dict(
    defaults=dict(),
    no_clipping=dict(clip_rho_threshold=None, clip_pg_rho_threshold=None,
                     clip_c_threshold=None),
    lambda_half=dict(lambda_=0.5),
    c_differs_from_rho=dict(clip_rho_threshold=2.0, clip_pg_rho_threshold=1.5,
                            clip_c_threshold=0.5, lambda_=0.9),
    only_c_clipped=dict(clip_rho_threshold=None, clip_pg_rho_threshold=None,
                        clip_c_threshold=0.8),
)


def _run(variant, fn, *args, **kwargs):
  """Calls fn(*args, **kwargs) eagerly, under tf.function or under XLA."""
  if variant == 'eager':
    return fn(*args, **kwargs)
  wrapped = tf.function(lambda *a: fn(*a, **kwargs),
                        jit_compile=(variant == 'jit'))
  return wrapped(*args)


def _random_inputs(rng, num_steps, batch_size, extra=()):
  """float64 V-trace inputs; log_rhos ∈ [−2, 2] straddle each log threshold."""
  shape = (num_steps, batch_size) + tuple(extra)
  discounts = rng.uniform(0.5, 1.0, shape)
  discounts[rng.uniform(size=shape) < 0.15] = 0.0  # Some terminal steps.
  return dict(
      log_rhos=rng.uniform(-2.0, 2.0, shape),
      discounts=discounts,
      rewards=rng.normal(size=shape),
      values=rng.normal(size=shape),
      bootstrap_value=rng.normal(size=shape[1:]))


class VTraceTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(
      variant=VARIANTS, batch_size=(1, 5), case=tuple(CASES))
  def test_matches_reference(self, variant, batch_size, case):
    kwargs = CASES[case]
    inputs = _random_inputs(np.random.default_rng(batch_size), 7, batch_size)
    for name in ('clip_rho_threshold', 'clip_pg_rho_threshold',
                 'clip_c_threshold'):
      threshold = kwargs.get(name, 1.0)
      if threshold is not None:  # The inputs cross the threshold both ways.
        self.assertLess(inputs['log_rhos'].min(), math.log(threshold))
        self.assertGreater(inputs['log_rhos'].max(), math.log(threshold))
    expected = reference.vtrace(**inputs, **kwargs)
    output = _run(variant, vtrace.from_importance_weights,
                  *inputs.values(), **kwargs)
    self.assertEqual(output.vs.dtype, tf.float64)
    self.assertAllClose(output.vs, expected['vs'], rtol=1e-10, atol=1e-10)
    self.assertAllClose(output.pg_advantages, expected['pg_advantages'],
                        rtol=1e-10, atol=1e-10)

  @parameterized.product(variant=VARIANTS, extra=((3,), (2, 4)))
  def test_extra_trailing_dimensions(self, variant, extra):
    inputs = _random_inputs(np.random.default_rng(0), 5, 4, extra)
    kwargs = CASES['c_differs_from_rho']
    expected = reference.vtrace(**inputs, **kwargs)
    output = _run(variant, vtrace.from_importance_weights,
                  *inputs.values(), **kwargs)
    self.assertEqual(output.vs.shape, (5, 4) + extra)
    self.assertAllClose(output.vs, expected['vs'], rtol=1e-10, atol=1e-10)
    self.assertAllClose(output.pg_advantages, expected['pg_advantages'],
                        rtol=1e-10, atol=1e-10)

  @parameterized.parameters(*VARIANTS)
  def test_float32_in_float32_out(self, variant):
    inputs = {k: v.astype(np.float32) for k, v in
              _random_inputs(np.random.default_rng(1), 6, 3).items()}
    expected = reference.vtrace(**inputs)
    output = _run(variant, vtrace.from_importance_weights, *inputs.values())
    self.assertEqual(output.vs.dtype, tf.float32)
    self.assertEqual(output.pg_advantages.dtype, tf.float32)
    self.assertAllClose(output.vs, expected['vs'], rtol=1e-5, atol=1e-5)

  def test_log_probs_from_logits_and_actions(self):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 3, 2, 6)) * 10.0
    actions = rng.integers(0, 6, size=(4, 3, 2))
    log_probs = vtrace.log_probs_from_logits_and_actions(logits, actions)
    expected = np.take_along_axis(
        reference.log_softmax(logits), actions[..., None], axis=-1)[..., 0]
    self.assertAllClose(log_probs, expected, rtol=1e-12, atol=1e-12)

  @parameterized.product(variant=VARIANTS, case=('defaults', 'no_clipping',
                                                 'c_differs_from_rho'))
  def test_from_logits_matches_from_importance_weights(self, variant, case):
    kwargs = CASES[case]
    rng = np.random.default_rng(3)
    num_steps, batch_size, num_actions = 6, 5, 4
    inputs = _random_inputs(rng, num_steps, batch_size)
    behaviour_logits = rng.normal(size=(num_steps, batch_size, num_actions))
    target_logits = rng.normal(size=(num_steps, batch_size, num_actions))
    actions = rng.integers(0, num_actions, size=(num_steps, batch_size))
    log_pi = reference.log_softmax(target_logits)
    log_mu = reference.log_softmax(behaviour_logits)
    log_rhos = np.take_along_axis(log_pi - log_mu, actions[..., None],
                                  axis=-1)[..., 0]
    del inputs['log_rhos']
    from_logits = _run(variant, vtrace.from_logits, behaviour_logits,
                       target_logits, actions, *inputs.values(), **kwargs)
    from_iw = vtrace.from_importance_weights(log_rhos, *inputs.values(),
                                             **kwargs)
    self.assertAllClose(from_logits.vs, from_iw.vs, rtol=1e-10, atol=1e-10)
    self.assertAllClose(from_logits.pg_advantages, from_iw.pg_advantages,
                        rtol=1e-10, atol=1e-10)

  @parameterized.product(variant=VARIANTS, clipping=(None, 1.0))
  def test_on_policy_is_discounted_return(self, variant, clipping):
    # λ = 1 and π = μ (ρ = c = 1): v_s is the n-step return to the unroll end,
    # v_s = Σ_{t=s}^{T−1} (Π_{i=s}^{t−1} γ_i) r_t + (Π_{i=s}^{T−1} γ_i) V(x_T).
    inputs = _random_inputs(np.random.default_rng(4), 8, 5)
    inputs['log_rhos'] = np.zeros_like(inputs['log_rhos'])
    d, r, bootstrap = (inputs['discounts'], inputs['rewards'],
                       inputs['bootstrap_value'])
    num_steps = d.shape[0]
    expected = np.zeros_like(r)
    for s in range(num_steps):
      discount_product = np.ones_like(bootstrap)
      for t in range(s, num_steps):
        expected[s] += discount_product * r[t]
        discount_product = discount_product * d[t]
      expected[s] += discount_product * bootstrap
    kwargs = dict(clip_rho_threshold=clipping, clip_pg_rho_threshold=clipping,
                  clip_c_threshold=clipping, lambda_=1.0)
    output = _run(variant, vtrace.from_importance_weights, *inputs.values(),
                  **kwargs)
    self.assertAllClose(output.vs, expected, rtol=1e-10, atol=1e-10)
    # On-policy A_s = r_s + γ_s v_{s+1} − V(x_s).
    vs_next = np.concatenate([expected[1:], bootstrap[None]], axis=0)
    self.assertAllClose(output.pg_advantages,
                        r + d * vs_next - inputs['values'],
                        rtol=1e-10, atol=1e-10)

  @parameterized.parameters(False, True)
  def test_dynamic_time_and_batch(self, jit_compile):
    spec_2d = tf.TensorSpec([None, None], tf.float32)
    spec_1d = tf.TensorSpec([None], tf.float32)
    fn = tf.function(
        vtrace.from_importance_weights,
        input_signature=[spec_2d] * 4 + [spec_1d],
        jit_compile=jit_compile)
    for num_steps, batch_size in ((3, 2), (9, 4), (1, 1)):
      inputs = {k: v.astype(np.float32) for k, v in _random_inputs(
          np.random.default_rng(num_steps), num_steps, batch_size).items()}
      expected = reference.vtrace(**inputs)
      output = fn(*inputs.values())
      self.assertAllClose(output.vs, expected['vs'], rtol=1e-5, atol=1e-5)
      self.assertAllClose(output.pg_advantages, expected['pg_advantages'],
                          rtol=1e-5, atol=1e-5)

  def test_outputs_carry_no_gradient(self):
    inputs = {k: tf.constant(v) for k, v in
              _random_inputs(np.random.default_rng(5), 4, 3).items()}
    logits = tf.constant(np.random.default_rng(6).normal(size=(4, 3, 5)))
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(list(inputs.values()) + [logits])
      from_iw = vtrace.from_importance_weights(*inputs.values())
      del inputs['log_rhos']
      from_logits = vtrace.from_logits(
          logits, logits, tf.zeros((4, 3), tf.int32), *inputs.values())
      total = (tf.reduce_sum(from_iw.vs) + tf.reduce_sum(from_iw.pg_advantages)
               + tf.reduce_sum(from_logits.vs) +
               tf.reduce_sum(from_logits.pg_advantages))
    grads = tape.gradient(total, list(inputs.values()) + [logits])
    self.assertEqual(grads, [None] * len(grads))

  @parameterized.named_parameters(
      ('log_rhos_rank_0', dict(log_rhos=np.float64(0.0))),
      ('log_rhos_rank_1', dict(log_rhos=np.zeros(4))),
      ('values_rank_1', dict(values=np.zeros(4))),
      ('discounts_rank_3', dict(discounts=np.zeros((4, 3, 1)))),
      ('rewards_rank_1', dict(rewards=np.zeros(4))),
      ('bootstrap_rank_2', dict(bootstrap_value=np.zeros((4, 3)))),
      ('bootstrap_rank_0', dict(bootstrap_value=np.float64(0.0))),
      ('threshold_rank_1', dict(clip_rho_threshold=np.ones(2))),
  )
  def test_bad_ranks_raise(self, overrides):
    inputs = _random_inputs(np.random.default_rng(7), 4, 3)
    inputs.update(overrides)
    with self.assertRaisesRegex(ValueError, 'rank'):
      vtrace.from_importance_weights(**inputs)

  def test_unknown_rank_raises(self):
    fn = tf.function(
        vtrace.from_importance_weights,
        input_signature=[tf.TensorSpec(None, tf.float32)] * 5)
    with self.assertRaisesRegex(ValueError, 'rank'):
      fn.get_concrete_function()

  @parameterized.named_parameters(
      ('behaviour_logits', (4, 3), (4, 3, 5), (4, 3)),
      ('target_logits', (4, 3, 5), (4, 3, 5, 1), (4, 3)),
      ('actions_rank_1', (4, 5), (4, 5), (4,)),
  )
  def test_from_logits_bad_ranks_raise(self, behaviour_shape, target_shape,
                                       actions_shape):
    inputs = _random_inputs(np.random.default_rng(8), 4, 3)
    del inputs['log_rhos']
    with self.assertRaisesRegex(ValueError, 'rank'):
      vtrace.from_logits(np.zeros(behaviour_shape), np.zeros(target_shape),
                         np.zeros(actions_shape, np.int32), *inputs.values())

  @parameterized.named_parameters(
      ('logits_rank_equal', (4, 3), (4, 3)),
      ('logits_rank_too_high', (4, 3, 2, 5), (4, 3)),
      ('actions_rank_1', (4, 5), (4,)),
  )
  def test_log_probs_bad_ranks_raise(self, logits_shape, actions_shape):
    with self.assertRaisesRegex(ValueError, 'rank'):
      vtrace.log_probs_from_logits_and_actions(
          np.zeros(logits_shape), np.zeros(actions_shape, np.int32))

  def test_mismatched_shapes_raise(self):
    inputs = _random_inputs(np.random.default_rng(9), 4, 3)
    inputs['values'] = np.zeros((4, 2))
    with self.assertRaisesRegex(ValueError, 'values'):
      vtrace.from_importance_weights(**inputs)

  @parameterized.named_parameters(
      ('negative_rho', 'clip_rho_threshold', -1.0),
      ('negative_pg_rho', 'clip_pg_rho_threshold', -0.5),
      ('negative_c', 'clip_c_threshold', -1.0),
      ('lambda_above_one', 'lambda_', 1.5),
      ('lambda_negative', 'lambda_', -0.1),
  )
  def test_bad_hyperparameters_raise(self, name, value):
    inputs = _random_inputs(np.random.default_rng(10), 4, 3)
    with self.assertRaisesRegex(ValueError, name):
      vtrace.from_importance_weights(**inputs, **{name: value})


if __name__ == '__main__':
  absltest.main()
