"""agent/losses.py with a per-step mask (HER replay items, replay/her.py).

Cross-function identity: the loss of a masked batch equals the reference loss
(tests/reference.py) of each column cut after its last valid step, and the
gradient is zero on the padding steps, whatever they contain.
"""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import losses
from agent import types
from tests import reference

T, B, A, TASKS = 7, 5, 4, 2
UNROLL_FIELDS = ('first', 'reward', 'discount', 'action', 'behaviour_logits',
                 'task_id')
LOSS_KEYS = ('loss', 'policy_loss', 'baseline_loss', 'entropy_loss')


def _masked_batch(seed, valid_steps):
  """float64 outputs and a MaskedUnroll; column b has valid_steps[b] steps.

  Padding steps hold large finite garbage (rewards ±50, discount 1, random
  logits) that would change the loss if it leaked.
  """
  rng = np.random.default_rng(seed)
  shape = (T + 1, B)
  mask = np.arange(T + 1)[:, None] < np.asarray(valid_steps)[None, :]
  first = np.zeros(shape, bool)
  first[0] = True
  discount = np.ones(shape)
  discount[(rng.uniform(size=shape) < 0.15) & ~first] = 0.0  # Terminations.
  reward = rng.normal(size=shape) * 2.0
  reward[~mask] = rng.choice([-50.0, 50.0], size=int((~mask).sum()))
  unroll = types.MaskedUnroll(
      observation=np.zeros(shape + (2,), np.uint8), first=first,
      reward=reward, discount=discount,
      prev_action=np.zeros(shape, np.int32),
      action=rng.integers(0, A, size=shape).astype(np.int32),
      behaviour_logits=rng.normal(size=shape + (A,)),
      task_id=np.tile(rng.integers(0, TASKS, size=(1, B)), (T + 1, 1)).astype(
          np.int32),
      core_state=(np.zeros((B, 3)),) * 2, mask=mask)
  outputs = types.AgentOutput(
      policy_logits=rng.normal(size=shape + (A,)),
      values=rng.normal(size=shape + (TASKS,)))
  return outputs, unroll


def _cut_reference(outputs, unroll, **config):
  """Sum over columns of the reference loss of the column's valid steps."""
  totals = dict.fromkeys(LOSS_KEYS, 0.0)
  for b in range(B):
    n = int(unroll.mask[:, b].sum())
    if n < 2:
      continue  # No transition: contributes nothing.
    column = lambda x: np.asarray(x)[:n, b:b + 1]
    ref = reference.impala_loss(
        column(outputs.policy_logits), column(outputs.values),
        *(column(getattr(unroll, f)) for f in UNROLL_FIELDS), **config)
    for key in LOSS_KEYS:
      totals[key] += ref[key]
  return totals


class MaskedLossTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(variant=('eager', 'function'),
                         config=(dict(), dict(discount_factor=0.9,
                                              reward_clip=None,
                                              clip_c_threshold=0.5,
                                              lambda_=0.8)))
  def test_equals_reference_of_the_cut_unroll(self, variant, config):
    outputs, unroll = _masked_batch(0, valid_steps=[T + 1, 5, 2, 1, 6])
    loss_config = dict(config)
    if 'discount_factor' in loss_config:
      loss_config['discount'] = loss_config.pop('discount_factor')
    fn = lambda o, u: losses.impala_loss(o, u, **loss_config)
    if variant == 'function':
      fn = tf.function(fn)
    loss, metrics = fn(tf.nest.map_structure(tf.constant, outputs),
                       tf.nest.map_structure(tf.constant, unroll))
    expected = _cut_reference(outputs, unroll, **config)
    for key in LOSS_KEYS:
      self.assertAllClose(metrics[key], expected[key], rtol=1e-10,
                          atol=1e-10, msg=key)
    self.assertAllClose(loss, expected['loss'], rtol=1e-10, atol=1e-10)
    # 7 + 4 + 1 + 0 + 5 transitions of T × B.
    self.assertAllClose(metrics['valid_fraction'], 17 / (T * B))

  def test_no_gradient_reaches_padding_steps(self):
    outputs, unroll = _masked_batch(1, valid_steps=[3, T + 1, 1, 4, 2])
    logits, values = tf.constant(outputs.policy_logits), tf.constant(
        outputs.values)
    with tf.GradientTape() as tape:
      tape.watch([logits, values])
      loss, _ = losses.impala_loss(types.AgentOutput(logits, values),
                                   tf.nest.map_structure(tf.constant, unroll))
    d_logits, d_values = tape.gradient(loss, [logits, values])
    # Steps s with mask[s+1] False (and the bootstrap step) get no gradient.
    has_transition = np.zeros((T + 1, B), bool)
    has_transition[:-1] = unroll.mask[1:]
    self.assertAllEqual(d_logits.numpy()[~has_transition], np.zeros(
        (int((~has_transition).sum()), A)))
    self.assertAllEqual(d_values.numpy()[~has_transition], np.zeros(
        (int((~has_transition).sum()), TASKS)))
    self.assertGreater(np.abs(d_logits.numpy()[has_transition]).min(), 0.0)

  def test_all_true_mask_equals_no_mask(self):
    outputs, masked = _masked_batch(2, valid_steps=[T + 1] * B)
    unmasked = types.Unroll(*masked[:-1])
    loss_masked, metrics_masked = losses.impala_loss(outputs, masked)
    loss, metrics = losses.impala_loss(outputs, unmasked)
    self.assertEqual(float(loss_masked), float(loss))
    for key, value in metrics.items():
      self.assertAllClose(metrics_masked[key], value, rtol=1e-12, msg=key)
    self.assertEqual(float(metrics_masked['valid_fraction']), 1.0)
    self.assertNotIn('valid_fraction', metrics)


if __name__ == '__main__':
  absltest.main()
