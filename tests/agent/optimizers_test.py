"""agent/optimizers.py: each RMSProp form against a NumPy reference of its rule."""

import numpy as np
import pytest
import tensorflow as tf

from agent import optimizers


def numpy_rmsprop(form, theta, grads, lr, rho, eps, momentum):
  """The update rules of the module docstring, step by step, in float64."""
  theta = np.array(theta, np.float64)
  nu = np.ones_like(theta) if form == 'tf1' else np.zeros_like(theta)
  m = np.zeros_like(theta)
  for g in grads:
    nu = rho * nu + (1 - rho) * g**2
    if form == 'pytorch':
      increment = lr * g / (np.sqrt(nu) + eps)
    else:
      increment = lr * g / np.sqrt(nu + eps)
    m = momentum * m + increment
    theta = theta - m
  return theta


def _run(form, theta0, grads, lr, rho, eps, momentum):
  variable = tf.Variable(theta0, dtype=tf.float32)
  opt = optimizers.RMSProp(learning_rate=lr, rho=rho, epsilon=eps,
                           momentum=momentum, form=form)

  @tf.function
  def apply(g):
    opt.apply_gradients([(g, variable)])

  for g in grads:
    apply(tf.constant(g, tf.float32))
  return variable.numpy()


@pytest.mark.parametrize('form', optimizers.FORMS)
@pytest.mark.parametrize('momentum', [0.0, 0.9])
def test_matches_numpy_reference(form, momentum):
  rng = np.random.default_rng(0)
  theta0 = rng.normal(size=[7, 3])
  # Gradients spanning 1e-4 .. 10, below and above √ε = 0.1.
  grads = [rng.normal(size=[7, 3]) * 10.0**rng.uniform(-4, 1, size=[7, 3])
           for _ in range(12)]
  got = _run(form, theta0, grads, 6e-4, 0.99, 0.01, momentum)
  want = numpy_rmsprop(form, theta0, grads, 6e-4, 0.99, 0.01, momentum)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_forms_differ_where_the_issue_says():
  """First step, g = 0.01: keras ≈ 0.1η (ε floors √(ν+ε) at 0.1), pytorch
  ≈ 0.91η (√ν + ε = 0.001 + 0.01), tf1 ≈ 0.01η (ν0 = 1)."""
  g = [np.full([1], 0.01)]
  steps = {form: -(_run(form, np.zeros([1]), g, 1.0, 0.99, 0.01, 0.0)[0])
           for form in optimizers.FORMS}
  np.testing.assert_allclose(steps['keras'], 0.01 / np.sqrt(1e-6 + 0.01),
                             rtol=1e-5)
  np.testing.assert_allclose(steps['pytorch'], 0.01 / (1e-3 + 0.01),
                             rtol=1e-5)
  np.testing.assert_allclose(steps['tf1'], 0.01 / np.sqrt(0.99 + 1e-6 + 0.01),
                             rtol=1e-5)
  assert steps['tf1'] < steps['keras'] < steps['pytorch']


def test_checkpoint_restores_across_forms(tmp_path):
  """One slot layout: a 'keras' checkpoint restores into a 'pytorch' one."""
  variable = tf.Variable(np.ones([4], np.float32))
  opt = optimizers.RMSProp(learning_rate=0.1, form='keras')
  opt.apply_gradients([(tf.constant([1.0, 2.0, 3.0, 4.0]), variable)])
  path = tf.train.Checkpoint(v=variable, opt=opt).write(str(tmp_path / 'c'))
  other_var = tf.Variable(np.zeros([4], np.float32))
  other = optimizers.RMSProp(learning_rate=0.1, form='pytorch')
  other.build([other_var])
  tf.train.Checkpoint(v=other_var, opt=other).read(path).assert_consumed()
  np.testing.assert_allclose(other_var.numpy(), variable.numpy())
  np.testing.assert_allclose(other._velocities[0].numpy(),
                             opt._velocities[0].numpy())


@pytest.mark.parametrize('kwargs, field', [
    (dict(form='adam'), 'form'), (dict(epsilon=0.0), 'epsilon'),
    (dict(rho=1.0), 'rho'), (dict(momentum=-0.1), 'momentum')])
def test_bad_arguments_name_the_field(kwargs, field):
  with pytest.raises(ValueError, match=field):
    optimizers.RMSProp(**kwargs)
