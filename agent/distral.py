"""Distral: a distilled policy π0 shared by regularised task policies (SPEC §6).

Teh et al. 2017, "Distral: Robust multitask reinforcement learning". Task i
maximises (eq. 2, written with α and β as eq. 3)

  E_{π_i}[Σ_t γ^t (R_i + (α/β) log π0(a_t|s_t) − (1/β) log π_i(a_t|s_t))],
  α = c_KL/(c_KL + c_ent),  β = 1/(c_KL + c_ent)  (α/β = c_KL, 1/β = c_KL+c_ent)

α = 0.5 for "KL+ent" (c_KL = c_ent), α = 1 for "KL" (c_ent = 0). 2-column
parameterisation (§2.3, eq. 8-10): π0 = softmax(h0) and

  π_i = π0^α e^{β f_i} / Σ_a π0^α e^{β f_i} = softmax(α log π0 + β f_i),
  V_i = (1/β) log Σ_a π0(a)^α e^{β f_i(a)}   (soft value),
  Â_i = f_i − V_i                             (soft advantage).

Identities (each checked in tests/agent/distral_test.py):
  log π_i = α log π0 + β Â_i;
  2-column: r' = r + (α/β) log π0(a) − (1/β) log π_i(a) = r − Â_i(a);
  E_{a~π_i}[r'] = r − c_KL KL(π_i‖π0) + c_ent H(π_i), pure KL for α = 1;
  L_distill = −(α/β) Σ_a sg(π_i) log π0,  ∇_{h0} L_distill = −(α/β)(π_i − π0),
the distillation term of eq. 10 (π0 moves to the centroid of the π_i). In the
1-column form π_i has free logits; `regularized_rewards`, `distillation_loss`
and `kl_divergence` take either. r' carries no gradient; the 2-column policy
gradient reaches h0 through `two_column_logits`.

Numerics: β runs to thousands in the paper's sweeps and e^{β f} overflows
float64 once β f > 709 (float32: 88): only log_softmax/reduce_logsumexp are
used. In float32 log π_i is accurate to about ε β|f| (3e-4 at β = 5000,
|f| = 1); V_i, Â_i and r' to about ε|f|.

Pure functions (no tf.Variable, flags, I/O or globals) for eager, tf.function
and XLA, computing in the dtype of the logits (α, β, rewards are cast to it).
Leading dimensions [...] are arbitrary (e.g. [T, B]); the last axis of logits is
the action axis A. Shapes are checked statically, α ∈ [0, 1] and β > 0 when
their values are known before run time (Python, NumPy, eager or constant).
"""

import math
import numbers
from typing import Optional, Tuple, Union

import numpy as np
import tensorflow as tf

TensorLike = tf.types.experimental.TensorLike
Scalar = Union[float, tf.Tensor]


def _known_value(value: TensorLike) -> Optional[float]:
  """A scalar's value if known before run time, else None."""
  if isinstance(value, numbers.Real):
    return float(value)
  static = tf.get_static_value(tf.convert_to_tensor(value))
  return None if static is None or np.ndim(static) else float(static)


def _scalar(value: Scalar, name: str, dtype: tf.DType,
            valid=lambda x: True, allowed: str = '') -> tf.Tensor:
  """A rank-0 hyperparameter cast to `dtype`; a known value must be `valid`."""
  tensor = tf.convert_to_tensor(value, dtype_hint=dtype)
  if isinstance(value, (bool, np.bool_)) or not (tensor.dtype.is_floating or
                                                 tensor.dtype.is_integer):
    raise ValueError(f'`{name}` must be a real number; got {value!r}.')
  if tensor.shape.rank != 0:
    raise ValueError(f'`{name}` must be a scalar (rank 0); got shape '
                     f'{tensor.shape}.')
  known = _known_value(value)
  if known is not None and not (math.isfinite(known) and valid(known)):
    raise ValueError(f'`{name}` must be finite{allowed}; got {known}.')
  return tf.cast(tensor, dtype)


def _alpha_beta(alpha: Scalar, beta: Scalar,
                dtype: tf.DType) -> Tuple[tf.Tensor, tf.Tensor]:
  return (_scalar(alpha, 'alpha', dtype, lambda x: 0. <= x <= 1., ' in [0, 1]'),
          _scalar(beta, 'beta', dtype, lambda x: x > 0., ' and > 0'))


def _logits(*named: Tuple[str, TensorLike]) -> Tuple[tf.Tensor, ...]:
  """Floating [..., A] tensors of one dtype (that of the first tf.Tensor)."""
  dtype = next((x.dtype for _, x in named if tf.is_tensor(x)),
               tf.convert_to_tensor(named[0][1]).dtype)
  if not dtype.is_floating:
    raise ValueError(f'Logits must be floating point; got {dtype}.')
  tensors = []
  for name, value in named:
    if tf.is_tensor(value) and value.dtype != dtype:
      raise ValueError(f'`{name}` has dtype {value.dtype}; all logits must '
                       f'have one dtype, here {dtype}.')
    tensor = tf.convert_to_tensor(value, dtype=dtype)
    if tensor.shape.rank is None or tensor.shape.rank < 1:
      raise ValueError(f'`{name}` must have a known rank >= 1 ([..., A]); got '
                       f'shape {tensor.shape}.')
    tensors.append(tensor)
  first_name, first = named[0][0], tensors[0].shape
  for (name, _), shape in zip(named[1:], (t.shape for t in tensors[1:])):
    if not shape[-1:].is_compatible_with(first[-1:]):
      raise ValueError(f'`{name}` and `{first_name}` must have the same action '
                       f'axis A (last dimension); got {shape} and {first}.')
    if not shape.is_compatible_with(first):
      raise ValueError(f'`{name}` shape {shape} (rank {shape.rank}) is '
                       f'incompatible with `{first_name}` shape {first}.')
  return tuple(tensors)


def coefficients(kl_cost: Scalar,
                 entropy_cost: Scalar) -> Tuple[Scalar, Scalar]:
  """(α, β) = (c_KL/(c_KL + c_ent), 1/(c_KL + c_ent)) (Teh et al. 2017, eq. 3).

  Args:
    kl_cost: c_KL >= 0 (scalar), weight of −KL(π_i‖π0).
    entropy_cost: c_ent >= 0 (scalar), weight of the entropy H(π_i).

  Returns:
    (alpha, beta): Python floats if both costs are Python/NumPy numbers, else
    rank-0 tensors in the costs' floating dtype (float32 if none is floating).

  Raises:
    ValueError: if a cost is not a finite scalar >= 0 or both are 0, where
      known before run time; symbolic costs are checked at run time
      (InvalidArgumentError, not under XLA).
  """
  costs = (('kl_cost', kl_cost), ('entropy_cost', entropy_cost))
  dtype = next((c.dtype for _, c in costs
                if tf.is_tensor(c) and c.dtype.is_floating), tf.float32)
  kl, ent = (_scalar(c, n, dtype, lambda x: x >= 0., ' and >= 0')
             for n, c in costs)
  known = [_known_value(c) for _, c in costs]
  if known == [0., 0.]:
    raise ValueError('`kl_cost` and `entropy_cost` must not both be 0 '
                     '(β = 1/(c_KL + c_ent) would be infinite).')
  if all(isinstance(c, numbers.Real) for _, c in costs):
    return known[0] / sum(known), 1. / sum(known)
  total = kl + ent
  if None in known:  # Symbolic costs: a run-time check (dropped by XLA).
    valid = tf.reduce_all([kl >= 0., ent >= 0., total > 0., total < np.inf])
    with tf.control_dependencies([tf.debugging.Assert(valid, [
        'Distral costs must be finite, >= 0 and not both 0; got', kl, ent])]):
      total = tf.identity(total)
  return kl / total, 1. / total


def two_column_logits(distilled_logits: TensorLike, task_logits: TensorLike,
                      alpha: Scalar, beta: Scalar) -> tf.Tensor:
  """Logits α log π0 + β f_i of the 2-column task policy π_i (eq. 9).

  Args:
    distilled_logits: float [..., A], h0, logits of π0 = softmax(h0).
    task_logits: float [..., A], f_i, the task column's output.
    alpha: α in [0, 1] (scalar).
    beta: β > 0 (scalar).

  Returns:
    float [..., A], logits of π_i (log π_i up to a per-state constant);
    differentiable in both h0 and f_i.

  Raises:
    ValueError: on logits of unknown rank or rank 0, non-floating or of
      different dtypes, mismatched shapes or action axes; on bad α or β.
  """
  h0, f = _logits(('distilled_logits', distilled_logits),
                  ('task_logits', task_logits))
  alpha, beta = _alpha_beta(alpha, beta, h0.dtype)
  with tf.name_scope('distral_two_column_logits'):
    return alpha * tf.nn.log_softmax(h0) + beta * f  # [..., A]


def soft_value(distilled_logits: TensorLike, task_logits: TensorLike,
               alpha: Scalar, beta: Scalar) -> tf.Tensor:
  """V_i = (1/β) logsumexp_a(α log π0(a) + β f_i(a)) (§2.3), never e^{β f}.

  Args and Raises as `two_column_logits`. Returns float [...], V_i;
  differentiable (∂V_i/∂f_i = π_i).
  """
  logits = two_column_logits(distilled_logits, task_logits, alpha, beta)
  beta = _scalar(beta, 'beta', logits.dtype)
  return tf.reduce_logsumexp(logits, axis=-1) / beta  # [...]


def soft_advantage(distilled_logits: TensorLike, task_logits: TensorLike,
                   alpha: Scalar, beta: Scalar) -> tf.Tensor:
  """Â_i = f_i − V_i, so that log π_i = α log π0 + β Â_i (§2.3).

  Args and Raises as `two_column_logits`. Returns float [..., A], Â_i of
  every action; differentiable.
  """
  values = soft_value(distilled_logits, task_logits, alpha, beta)  # [...]
  f = tf.convert_to_tensor(task_logits, dtype=values.dtype)  # [..., A]
  return f - values[..., tf.newaxis]  # [..., A]


def regularized_rewards(rewards: TensorLike, actions: TensorLike,
                        distilled_logits: TensorLike, policy_logits: TensorLike,
                        alpha: Scalar, beta: Scalar) -> tf.Tensor:
  """r' = r + (α/β) log π0(a) − (1/β) log π_i(a), the reward of eq. 3.

  Args:
    rewards: float [...], r_t (cast to the logits' dtype).
    actions: int [...], a_t in [0, A), the actions taken.
    distilled_logits: float [..., A], h0, logits of π0.
    policy_logits: float [..., A], logits of π_i: `two_column_logits(...)`
      (2-column, then r' = r − Â_i(a)) or free logits (1-column).
    alpha: α in [0, 1] (scalar).
    beta: β > 0 (scalar).

  Returns:
    float [...], r'_t, wrapped in tf.stop_gradient (a reward: no gradient).

  Raises:
    ValueError: as `two_column_logits`, or if `actions` is not integer or it
      or `rewards` does not have the logits' leading shape [...].
  """
  h0, logits = _logits(('distilled_logits', distilled_logits),
                       ('policy_logits', policy_logits))
  dtype, leading = h0.dtype, h0.shape[:-1]
  alpha, beta = _alpha_beta(alpha, beta, dtype)
  actions = tf.convert_to_tensor(actions)
  rewards = tf.cast(tf.convert_to_tensor(rewards, dtype_hint=dtype), dtype)
  if not actions.dtype.is_integer:
    raise ValueError(f'`actions` must be integer; got {actions.dtype}.')
  for name, tensor in (('actions', actions), ('rewards', rewards)):
    if not tensor.shape.is_compatible_with(leading):
      raise ValueError(f'`{name}` must have the leading shape {leading} (rank '
                       f'{leading.rank}) of the logits {h0.shape}; got shape '
                       f'{tensor.shape}.')
  with tf.name_scope('distral_regularized_rewards'):
    log_pi0 = -tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=actions, logits=tf.stop_gradient(h0))  # [...] log π0(a)
    log_pi = -tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=actions, logits=tf.stop_gradient(logits))  # [...] log π_i(a)
    return tf.stop_gradient(rewards + (alpha * log_pi0 - log_pi) / beta)


def distillation_loss(distilled_logits: TensorLike, policy_logits: TensorLike,
                      alpha: Scalar, beta: Scalar) -> tf.Tensor:
  """L = −(α/β) Σ_a sg(π_i(a)) log π0(a), distilling π0 toward π_i (eq. 10).

  Full-distribution cross-entropy: eq. 5's sampled term in expectation.

  Args:
    distilled_logits: float [..., A], h0, logits of π0.
    policy_logits: float [..., A], logits of π_i (either parameterisation).
    alpha: α in [0, 1] (scalar).
    beta: β > 0 (scalar).

  Returns:
    float [...], the loss per step: ∇_{h0} L = −(α/β)(π_i − π0), and no
    gradient reaches `policy_logits` (stop_gradient).

  Raises:
    ValueError: as `two_column_logits`.
  """
  h0, logits = _logits(('distilled_logits', distilled_logits),
                       ('policy_logits', policy_logits))
  alpha, beta = _alpha_beta(alpha, beta, h0.dtype)
  with tf.name_scope('distral_distillation_loss'):
    pi = tf.stop_gradient(tf.nn.softmax(logits))  # [..., A] sg(π_i)
    cross_entropy = -tf.reduce_sum(pi * tf.nn.log_softmax(h0), axis=-1)
    return alpha / beta * cross_entropy  # [...]


def kl_divergence(policy_logits: TensorLike,
                  distilled_logits: TensorLike) -> tf.Tensor:
  """KL(π_i‖π0) = Σ_a π_i(a) (log π_i(a) − log π0(a)) per step, e.g. a metric.

  Args: `policy_logits` float [..., A] of π_i, `distilled_logits` (h0) of π0.
  Returns float [...] >= 0, differentiable in both; actions with π_i(a) = 0
  (also −inf logits) add 0. Raises ValueError as `two_column_logits`.
  """
  logits, h0 = _logits(('policy_logits', policy_logits),
                       ('distilled_logits', distilled_logits))
  log_pi = tf.nn.log_softmax(logits)  # [..., A]
  return tf.reduce_sum(tf.math.multiply_no_nan(
      log_pi - tf.nn.log_softmax(h0), tf.exp(log_pi)), axis=-1)  # [...]


def entropy(logits: TensorLike) -> tf.Tensor:
  """H(π) = −Σ_a π(a) log π(a) per step, π = softmax(logits) float [..., A].

  Returns float [...] in [0, log A], differentiable; −inf logits add 0.
  Raises ValueError if `logits` is not floating of known rank >= 1.
  """
  (logits,) = _logits(('logits', logits))
  log_pi = tf.nn.log_softmax(logits)  # [..., A]
  return -tf.reduce_sum(tf.math.multiply_no_nan(log_pi, tf.exp(log_pi)),
                        axis=-1)  # [...]
