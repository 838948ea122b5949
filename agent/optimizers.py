"""RMSProp in the three forms RL code bases use (IMPALA's optimizer, §5.3).

The "RMSProp with ε = 0.01" of a paper is not one update rule. With g the
(clipped) gradient, ν the accumulator of g², ρ the decay and η the learning
rate, every form computes ν ← ρ ν + (1 − ρ) g² and then:

  'keras'   (tf.keras.optimizers.RMSprop; this project's original default):
            θ ← θ − η g / √(ν + ε),    ν starts at 0.
  'tf1'     (tf.compat.v1.train.RMSPropOptimizer, as in IMPALA's
            scalable_agent and the paper's runs):
            θ ← θ − η g / √(ν + ε),    ν starts at 1.
  'pytorch' (torch.optim.RMSprop, as in TorchBeast/monobeast and Cleanba's
            `rmsprop_pytorch_style`):
            θ ← θ − η g / (√ν + ε),    ν starts at 0.

With momentum μ > 0 all three keep m ← μ m + η g / denominator, θ ← θ − m
(the Keras and TF1 form; PyTorch's buffer differs only by where η enters,
which is the same for a constant η).

Why it matters (issue 10): ε = 0.01 inside the root floors the denominator
at √0.01 = 0.1, so parameters whose gradients are below ~0.1 (after the
global-norm clip) move ≈ g/0.1 instead of ≈ sign(g); outside the root the
floor is 0.01. And ν starting at 0 makes the first updates ≈ η/√(1 − ρ) =
10 η per parameter in the 'keras' and 'pytorch' forms, while ν = 1 ('tf1')
makes them ≈ η g.

All forms keep Keras' slot layout (one 'velocity' per variable, plus
'momentum' when μ > 0), so a checkpoint written with one form restores into
another.
"""

import tensorflow as tf

FORMS = ('keras', 'tf1', 'pytorch')


class RMSProp(tf.keras.optimizers.RMSprop):
  """tf.keras RMSprop with the ε placement and initial ν of `form` (above).

  Dense gradients only (the IMPALA network has no embedding lookups).
  """

  def __init__(self, learning_rate=6e-4, rho: float = 0.99,
               momentum: float = 0.0, epsilon: float = 0.01,
               form: str = 'keras', name: str = 'RMSprop', **kwargs):
    """Args as tf.keras.optimizers.RMSprop, plus `form` in FORMS.

    Raises:
      ValueError: for an unknown `form`, or ε <= 0, ρ ∉ [0, 1), μ < 0.
    """
    if form not in FORMS:
      raise ValueError(f'`form` must be one of {FORMS}; got {form!r}.')
    if not epsilon > 0:
      raise ValueError(f'`epsilon` must be > 0; got {epsilon}.')
    if not 0.0 <= rho < 1.0:
      raise ValueError(f'`rho` must be in [0, 1); got {rho}.')
    if momentum < 0:
      raise ValueError(f'`momentum` must be >= 0; got {momentum}.')
    super().__init__(learning_rate=learning_rate, rho=rho, momentum=momentum,
                     epsilon=epsilon, centered=False, name=name, **kwargs)
    self.form = form

  def build(self, var_list):
    already_built = getattr(self, '_built', False)
    super().build(var_list)
    if not already_built and self.form == 'tf1':
      for velocity in self._velocities:
        velocity.assign(tf.ones_like(velocity))

  def update_step(self, gradient, variable):
    if self.form == 'keras':
      return super().update_step(gradient, variable)
    if isinstance(gradient, tf.IndexedSlices):
      raise ValueError(f'RMSProp form {self.form!r} takes dense gradients '
                       f'only; got IndexedSlices for {variable.name}.')
    lr = tf.cast(self.learning_rate, variable.dtype)
    index = self._index_dict[self._var_key(variable)]
    velocity = self._velocities[index]
    velocity.assign(self.rho * velocity + (1 - self.rho) * tf.square(gradient))
    if self.form == 'pytorch':
      increment = lr * gradient / (tf.sqrt(velocity) + self.epsilon)
    else:  # 'tf1'
      increment = lr * gradient * tf.math.rsqrt(velocity + self.epsilon)
    if self.momentum > 0:
      momentum = self._momentums[index]
      momentum.assign(self.momentum * momentum + increment)
      variable.assign_add(-momentum)
    else:
      variable.assign_add(-increment)

  def get_config(self):
    config = super().get_config()
    config['form'] = self.form
    return config
