"""V-trace off-policy actor-critic targets (IMPALA, Espeholt et al. 2018, §4.1).

All tensors are time-major: [T, B, ...] where T is the unroll length in agent
steps and B the batch size; any extra trailing dimensions (e.g. one value per
task) are carried through elementwise. Paper notation (eq. 1):

  ρ_t = min(ρ̄, π(a_t|x_t)/μ(a_t|x_t)),   c_i = λ · min(c̄, π(a_i|x_i)/μ(a_i|x_i))
  δ_t V = ρ_t (r_t + γ_t V(x_{t+1}) − V(x_t))
  v_s = V(x_s) + Σ_{t=s}^{s+n−1} (Π_{i=s}^{t−1} γ_i)(Π_{i=s}^{t−1} c_i) δ_t V

computed backwards as v_s − V(x_s) = δ_s V + γ_s c_s (v_{s+1} − V(x_{s+1})),
with v_T = V(x_T) = `bootstrap_value`. The policy-gradient advantage (§4.2) is
A_s = ρ^pg_s (r_s + γ_s v_{s+1} − V(x_s)) with ρ^pg_s = min(ρ̄_pg, π/μ).

Every threshold (ρ̄, ρ̄_pg, c̄) may be None for no clipping; c̄ is independent of
ρ̄ and λ. Outputs are targets: they carry no gradient (tf.stop_gradient).
"""

import collections
import numbers
from typing import Optional, Union

import tensorflow as tf

# vs:            [T, B, ...] v_s, the V-trace value targets (eq. 1).
# pg_advantages: [T, B, ...] A_s = ρ^pg_s (r_s + γ_s v_{s+1} − V(x_s)) (§4.2).
VTraceReturns = collections.namedtuple('VTraceReturns', 'vs pg_advantages')

Threshold = Optional[Union[float, tf.Tensor]]


def _known_rank(tensor: tf.Tensor, name: str) -> int:
  rank = tensor.shape.rank
  if rank is None:
    raise ValueError(f'`{name}` must have a statically known rank; got shape '
                     f'{tensor.shape}.')
  return rank


def _check_rank(tensor: tf.Tensor, name: str, expected: int) -> None:
  rank = _known_rank(tensor, name)
  if rank != expected:
    raise ValueError(f'`{name}` must have rank {expected}; got rank {rank} '
                     f'(shape {tensor.shape}).')


def _scalar(value: Union[float, tf.Tensor], name: str, dtype: tf.DType,
            low: float, high: Optional[float] = None) -> tf.Tensor:
  """Converts a hyperparameter to a scalar of `dtype`, checking its range."""
  if isinstance(value, numbers.Real):
    if value < low or (high is not None and value > high):
      allowed = f'[{low}, {high}]' if high is not None else f'>= {low}'
      raise ValueError(f'`{name}` must be {allowed}; got {value}.')
  value = tf.convert_to_tensor(value, dtype=dtype)
  _check_rank(value, name, 0)
  return value


def log_probs_from_logits_and_actions(policy_logits: tf.Tensor,
                                      actions: tf.Tensor) -> tf.Tensor:
  """Log-probabilities log π(a_t|x_t) of the taken actions.

  Uses sparse softmax cross-entropy (a fused log-softmax), never log(softmax).

  Args:
    policy_logits: float [T, B, ..., A], unnormalised log-probabilities of a
      policy (π or μ) over A actions.
    actions: int32/int64 [T, B, ...], the actions a_t taken; rank is one less
      than `policy_logits`.

  Returns:
    float [T, B, ...] log π(a_t|x_t), same dtype as `policy_logits`.
    Differentiable with respect to `policy_logits`.

  Raises:
    ValueError: if a rank is unknown, `actions` has rank < 2, or
      `policy_logits` does not have rank `actions` rank + 1.
  """
  policy_logits = tf.convert_to_tensor(policy_logits)
  actions = tf.convert_to_tensor(actions)
  actions_rank = _known_rank(actions, 'actions')
  if actions_rank < 2:
    raise ValueError(f'`actions` must have rank >= 2 ([T, B, ...]); got rank '
                     f'{actions_rank}.')
  _check_rank(policy_logits, 'policy_logits', actions_rank + 1)
  return -tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=actions, logits=policy_logits)  # [T, B, ...]


def from_importance_weights(log_rhos: tf.Tensor,
                            discounts: tf.Tensor,
                            rewards: tf.Tensor,
                            values: tf.Tensor,
                            bootstrap_value: tf.Tensor,
                            clip_rho_threshold: Threshold = 1.0,
                            clip_pg_rho_threshold: Threshold = 1.0,
                            clip_c_threshold: Threshold = 1.0,
                            lambda_: Union[float, tf.Tensor] = 1.0
                           ) -> VTraceReturns:
  """V-trace targets from log importance weights (IMPALA §4.1, eq. 1).

  Computation happens in the dtype of `log_rhos` (float32 in production);
  the other inputs are converted to it. Works for a dynamic T, eagerly, under
  tf.function and under XLA (jit_compile=True).

  Args:
    log_rhos: float [T, B, ...], log π(a_t|x_t) − log μ(a_t|x_t), the log of
      the importance ratio of target policy π to behaviour policy μ.
    discounts: float [T, B, ...], γ_t, the discount of the transition
      x_t → x_{t+1} (0 where x_{t+1} must not be bootstrapped from).
    rewards: float [T, B, ...], r_t, reward of the transition x_t → x_{t+1}.
    values: float [T, B, ...], V(x_t), the baseline under π's critic.
    bootstrap_value: float [B, ...], V(x_T), the value after the last step.
    clip_rho_threshold: ρ̄ >= 0 (scalar) clipping the ratio in δ_t V, or None.
    clip_pg_rho_threshold: ρ̄_pg >= 0 (scalar) clipping the ratio in the
      policy-gradient advantage, or None.
    clip_c_threshold: c̄ >= 0 (scalar) clipping the trace-cutting ratio c_i,
      or None.
    lambda_: λ in [0, 1] (scalar), multiplies c_i (Retrace-style mixing).

  Returns:
    VTraceReturns(vs, pg_advantages), each float [T, B, ...]: v_s and A_s.
    Both are wrapped in tf.stop_gradient (targets, no gradient flows).

  Raises:
    ValueError: if `log_rhos` has unknown rank or rank < 2, if `discounts`,
      `rewards` or `values` do not have the rank of `log_rhos`, if
      `bootstrap_value` does not have that rank − 1, if a threshold/`lambda_`
      is not a scalar, or if a Python threshold is negative or λ ∉ [0, 1].
  """
  log_rhos = tf.convert_to_tensor(log_rhos)
  dtype = log_rhos.dtype
  discounts = tf.convert_to_tensor(discounts, dtype=dtype)
  rewards = tf.convert_to_tensor(rewards, dtype=dtype)
  values = tf.convert_to_tensor(values, dtype=dtype)
  bootstrap_value = tf.convert_to_tensor(bootstrap_value, dtype=dtype)

  rho_rank = _known_rank(log_rhos, 'log_rhos')  # Usually 2: [T, B].
  if rho_rank < 2:
    raise ValueError(f'`log_rhos` must have rank >= 2 ([T, B, ...]); got rank '
                     f'{rho_rank}.')
  for name, tensor in (('discounts', discounts), ('rewards', rewards),
                       ('values', values)):
    _check_rank(tensor, name, rho_rank)
    if not tensor.shape.is_compatible_with(log_rhos.shape):
      raise ValueError(f'`{name}` shape {tensor.shape} is incompatible with '
                       f'`log_rhos` shape {log_rhos.shape}.')
  _check_rank(bootstrap_value, 'bootstrap_value', rho_rank - 1)
  if not bootstrap_value.shape.is_compatible_with(log_rhos.shape[1:]):
    raise ValueError(f'`bootstrap_value` shape {bootstrap_value.shape} is '
                     'incompatible with `log_rhos` shape '
                     f'{log_rhos.shape}[1:].')

  lambda_ = _scalar(lambda_, 'lambda_', dtype, 0., 1.)
  thresholds = {}
  for name, threshold in (('clip_rho_threshold', clip_rho_threshold),
                          ('clip_pg_rho_threshold', clip_pg_rho_threshold),
                          ('clip_c_threshold', clip_c_threshold)):
    thresholds[name] = (None if threshold is None else
                        _scalar(threshold, name, dtype, 0.))

  def clip(ratio, name):
    threshold = thresholds[name]
    return ratio if threshold is None else tf.minimum(threshold, ratio)

  with tf.name_scope('vtrace_from_importance_weights'):
    rhos = tf.exp(log_rhos)  # [T, B, ...] π/μ
    clipped_rhos = clip(rhos, 'clip_rho_threshold')  # [T, B, ...] ρ_t
    cs = lambda_ * clip(rhos, 'clip_c_threshold')  # [T, B, ...] c_t
    values_t_plus_1 = tf.concat(
        [values[1:], bootstrap_value[tf.newaxis]], axis=0)  # [T, B, ...]
    deltas = clipped_rhos * (
        rewards + discounts * values_t_plus_1 - values)  # [T, B, ...] δ_t V

    # acc_s = v_s − V(x_s) = δ_s V + γ_s c_s acc_{s+1}, acc_T = 0.
    def scan_fn(acc, elems):
      discount_t, c_t, delta_t = elems
      return delta_t + discount_t * c_t * acc

    vs_minus_v_xs = tf.scan(
        scan_fn, (discounts, cs, deltas),
        initializer=tf.zeros_like(bootstrap_value),
        parallel_iterations=1,
        reverse=True,
        name='scan')  # [T, B, ...]
    vs = vs_minus_v_xs + values  # [T, B, ...] v_s

    vs_t_plus_1 = tf.concat(
        [vs[1:], bootstrap_value[tf.newaxis]], axis=0)  # [T, B, ...] v_{s+1}
    clipped_pg_rhos = clip(rhos, 'clip_pg_rho_threshold')  # [T, B, ...]
    pg_advantages = clipped_pg_rhos * (
        rewards + discounts * vs_t_plus_1 - values)  # [T, B, ...] A_s

    return VTraceReturns(
        vs=tf.stop_gradient(vs), pg_advantages=tf.stop_gradient(pg_advantages))


def from_logits(behaviour_policy_logits: tf.Tensor,
                target_policy_logits: tf.Tensor,
                actions: tf.Tensor,
                discounts: tf.Tensor,
                rewards: tf.Tensor,
                values: tf.Tensor,
                bootstrap_value: tf.Tensor,
                clip_rho_threshold: Threshold = 1.0,
                clip_pg_rho_threshold: Threshold = 1.0,
                clip_c_threshold: Threshold = 1.0,
                lambda_: Union[float, tf.Tensor] = 1.0) -> VTraceReturns:
  """V-trace targets from behaviour and target policy logits (IMPALA §4.1).

  log_rhos = log π(a_t|x_t) − log μ(a_t|x_t), then `from_importance_weights`.

  Args:
    behaviour_policy_logits: float [T, B, ..., A], μ logits at x_t.
    target_policy_logits: float [T, B, ..., A], π logits at x_t (same dtype).
    actions: int32/int64 [T, B, ...], a_t sampled from μ.
    discounts: float [T, B, ...], γ_t (see `from_importance_weights`).
    rewards: float [T, B, ...], r_t.
    values: float [T, B, ...], V(x_t).
    bootstrap_value: float [B, ...], V(x_T).
    clip_rho_threshold: ρ̄ or None.
    clip_pg_rho_threshold: ρ̄_pg or None.
    clip_c_threshold: c̄ or None.
    lambda_: λ in [0, 1].

  Returns:
    VTraceReturns(vs, pg_advantages), each float [T, B, ...], no gradient.

  Raises:
    ValueError: if either logits tensor does not have rank `actions` rank + 1,
      or for any reason listed in `from_importance_weights`.
  """
  behaviour_policy_logits = tf.convert_to_tensor(behaviour_policy_logits)
  target_policy_logits = tf.convert_to_tensor(
      target_policy_logits, dtype=behaviour_policy_logits.dtype)
  actions = tf.convert_to_tensor(actions)
  actions_rank = _known_rank(actions, 'actions')
  _check_rank(behaviour_policy_logits, 'behaviour_policy_logits',
              actions_rank + 1)
  _check_rank(target_policy_logits, 'target_policy_logits', actions_rank + 1)

  with tf.name_scope('vtrace_from_logits'):
    target_log_probs = log_probs_from_logits_and_actions(
        target_policy_logits, actions)  # [T, B, ...] log π(a_t|x_t)
    behaviour_log_probs = log_probs_from_logits_and_actions(
        behaviour_policy_logits, actions)  # [T, B, ...] log μ(a_t|x_t)
    log_rhos = target_log_probs - behaviour_log_probs  # [T, B, ...]
    return from_importance_weights(
        log_rhos=log_rhos,
        discounts=discounts,
        rewards=rewards,
        values=values,
        bootstrap_value=bootstrap_value,
        clip_rho_threshold=clip_rho_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold,
        clip_c_threshold=clip_c_threshold,
        lambda_=lambda_)
