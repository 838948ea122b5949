"""The IMPALA loss: V-trace policy gradient, baseline and entropy (§4.2).

Composes agent/vtrace.py into one loss over a time-major batch of unrolls.
No optimizer and no I/O: the learner differentiates the returned scalar.

Espeholt et al. 2018, §4.2: the policy gradient uses the V-trace advantage
ρ^pg_s (r_s + γ_s v_{s+1} − V(x_s)), the baseline regresses V(x_s) on the
V-trace target v_s, and an entropy bonus keeps the policy from collapsing.
Following the paper's scalable_agent code, the three terms are SUMMED over time
and batch (not averaged): with a tf.distribute strategy, per-replica sums add
up to the gradient of the global batch.

`popart_impala_loss` is the same loss for multi-task PopArt (Hessel et al.
2018, SPEC §5): V-trace on unnormalised values, value loss and policy-gradient
advantages in each task's normalised space.

Distral (Teh et al. 2017; SPEC §6) is an optional component of both losses
(`distral_coefficients=(α, β)`, agent/distral.py): the V-trace policy gradient
and value loss run on the regularised rewards
  r'_s = r_s + (α/β) log π0(a_s|x_s) − (1/β) log π_i(a_s|x_s)
of the learner's current π0 and π_i (no gradient inside the reward; ρ is
π_i against μ as always), and a distillation term
  −(α/β) Σ_a stopgrad(π_i(a|x_s)) log π0(a|x_s)
fits π0 to the task policies. Under PopArt the regulariser is counted in each
task's NORMALISED units: r'_s = r_s + σ_i·[(α/β) log π0(a_s) − (1/β) log π_i(a_s)],
so that after the 1/σ_i of the PopArt policy gradient every task weighs its
KL and entropy terms by the same c_KL, c_ent, whatever its reward scale (a
raw-unit regulariser would dominate small-reward games and vanish in
large-reward ones), and the distillation term, in the same units, keeps the
weight c_KL = α/β.
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf

from agent import distral_loss
from agent import popart
from agent import types
from agent import vtrace


def _check_non_negative(value: float, name: str) -> None:
  if value < 0:
    raise ValueError(f'`{name}` must be >= 0; got {value}.')


def impala_loss(agent_outputs: types.AgentOutput,
                unroll: types.Unroll,
                *,
                discount: float = 0.99,
                baseline_cost: float = 0.5,
                entropy_cost: float = 0.01,
                reward_clip: Optional[float] = 1.0,
                clip_rho_threshold: Optional[float] = 1.0,
                clip_pg_rho_threshold: Optional[float] = 1.0,
                clip_c_threshold: Optional[float] = 1.0,
                lambda_: float = 1.0,
                distral_coefficients: Optional[Tuple[float, float]] = None
               ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """IMPALA actor-critic loss of one batch of unrolls (Espeholt et al. §4.2).

  Data convention (agent/types.py): stored step t holds x_t, a_t ~ μ(·|x_t)
  and the reward/discount/first of the transition INTO x_t. For s in 0..T−1:
    a_s = action[s], μ logits = behaviour_logits[s], π logits = policy_logits[s]
    r_s = clip(reward[s+1], ±reward_clip)
    γ_s = discount · unroll.discount[s+1] · (1 − first[s+1])
          (a transition into an episode start is terminal for bootstrapping)
    V(x_s) = values[s, :, task_id[s]]
    bootstrap V(x_T) = values[T, :, task_id[T]]

  Losses (summed over the T × B steps):
    policy   = −Σ A_s log π(a_s|x_s)
    baseline = baseline_cost · ½ Σ (v_s − V(x_s))²
    entropy  = entropy_cost · (−Σ H(π(·|x_s)))

  Masked unrolls (`unroll` has a `mask` field, e.g. types.MaskedUnroll of HER
  replay items, replay/her.py): transition s exists iff mask[s+1]. A missing
  transition gets weight 0 in all three terms, and δ_s = 0 there (r_s := V(x_s)
  without gradient, γ_s := 0), so v_s = V(x_s) and nothing leaks into the
  targets of earlier steps: the loss equals that of the unroll cut after its
  last valid step, bootstrapping from V there. Without a `mask` field every
  transition exists (queue unrolls; unchanged behaviour).

  Gradient behaviour: gradients flow into `agent_outputs.policy_logits[:-1]`
  (policy and entropy terms) and the selected `agent_outputs.values[:-1]`
  (baseline term). The V-trace targets v_s and A_s are stop-gradient, so the
  bootstrap step T gets no gradient. `unroll` is data and gets none.

  Args:
    agent_outputs: AgentOutput of the learner network over all T+1 steps:
      policy_logits float [T+1, B, A] (π logits), values float [T+1, B,
      num_tasks] (one value per task). Their dtype is the computation dtype.
    unroll: Unroll (see agent/types.py); uses first bool [T+1, B], reward
      [T+1, B], discount [T+1, B], action int [T+1, B], behaviour_logits
      [T+1, B, A] (μ logits) and task_id int [T+1, B] in [0, num_tasks).
    discount: γ in [0, 1], the agent's discount per agent step.
    baseline_cost: >= 0, weight of the baseline (value) loss.
    entropy_cost: >= 0, weight of the entropy loss.
    reward_clip: > 0 to clip rewards to [−reward_clip, reward_clip], or None.
    clip_rho_threshold: ρ̄ (see agent/vtrace.py), or None.
    clip_pg_rho_threshold: ρ̄_pg, or None.
    clip_c_threshold: c̄, or None.
    lambda_: λ in [0, 1].
    distral_coefficients: None, or Distral's (α, β) (distral.coefficients):
      `agent_outputs` must then be a types.DistralOutput; rewards are
      regularised and the distillation term is added (module docstring).

  Returns:
    (total_loss, metrics): total_loss a scalar of the computation dtype;
    metrics a dict of scalars: 'loss', 'policy_loss', 'baseline_loss',
    'entropy_loss' (the weighted summed terms), 'entropy' (mean H per step),
    'mean_vs' (mean v_s), 'mean_rho' (mean unclipped π(a_s|x_s)/μ(a_s|x_s)),
    'mean_abs_pg_advantage' (mean |A_s|), 'behaviour_kl' (mean KL(μ‖π) of
    the full distributions in nats: the policy lag; 'mean_rho' cannot show it,
    being 1 in expectation under μ for any π); with a mask, the means are over
    existing transitions and 'valid_fraction' (their share of T × B) is added.
    Under Distral also 'distillation_loss' (summed), 'distral/kl' (mean
    KL(π_i‖π0)), 'distral/distilled_entropy' (mean H(π0)),
    'distral/mean_regularizer' (mean r'_s − r_s), and per task i
    'distral/task_<i>/{kl,entropy,distilled_entropy}_sum' with
    'distral/task_<i>/count' (summed over replicas; the learner turns them
    into per-task means, agent/learner.py).

  Raises:
    ValueError: if `discount` ∉ [0, 1], a cost is negative, `reward_clip` is
      not None and <= 0, `agent_outputs.values` does not have rank 3, or for
      any reason listed in vtrace.from_importance_weights.
  """
  loss, metrics, _ = _loss(
      agent_outputs, unroll, None, discount=discount,
      baseline_cost=baseline_cost, entropy_cost=entropy_cost,
      reward_clip=reward_clip, clip_rho_threshold=clip_rho_threshold,
      clip_pg_rho_threshold=clip_pg_rho_threshold,
      clip_c_threshold=clip_c_threshold, lambda_=lambda_,
      distral_coefficients=distral_coefficients)
  return loss, metrics


def popart_impala_loss(agent_outputs: types.AgentOutput,
                       unroll: types.Unroll,
                       popart_state: popart.PopArtState,
                       *,
                       discount: float = 0.99,
                       baseline_cost: float = 0.5,
                       entropy_cost: float = 0.01,
                       reward_clip: Optional[float] = None,
                       clip_rho_threshold: Optional[float] = 1.0,
                       clip_pg_rho_threshold: Optional[float] = 1.0,
                       clip_c_threshold: Optional[float] = 1.0,
                       lambda_: float = 1.0,
                       distral_coefficients: Optional[Tuple[float, float]] = None
                      ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor], tf.Tensor]:
  """PopArt-IMPALA loss (Hessel et al. 2018, §3-4; SPEC §5).

  As `impala_loss`, except that `agent_outputs.values` are NORMALISED values
  n_i(x) of the per-task value head, and with μ_i, σ_i of the step's task
  i = task_id[s]:
    V(x_s) = σ_i n_i(x_s) + μ_i                    (V-trace runs on these)
    baseline = baseline_cost · ½ Σ ((v_s − μ_i)/σ_i − n_i(x_s))²
    policy   = −Σ (A_s / σ_i) log π(a_s|x_s)
  where A_s = ρ^pg_s (r_s + γ_s v_{s+1} − V(x_s)) is the V-trace advantage,
  so A_s/σ_i = ρ^pg_s ((r_s + γ_s v_{s+1} − μ_i)/σ_i − n_i(x_s)): the
  gradients are the scale-free ones of SPEC §5. Rewards are not clipped by
  default (PopArt's point is to learn from unclipped rewards).

  Args:
    agent_outputs: AgentOutput over T+1 steps; values float [T+1, B,
      num_tasks] are the normalised outputs n.
    unroll: Unroll as in `impala_loss`.
    popart_state: PopArtState (mu, sigma, nu), each float32 [num_tasks]: the
      statistics the value head is normalised with (no gradient).
    discount, baseline_cost, entropy_cost, reward_clip, clip_rho_threshold,
      clip_pg_rho_threshold, clip_c_threshold, lambda_, distral_coefficients:
      as `impala_loss` (reward_clip defaults to None here; the Distral
      regulariser is scaled by σ_i, module docstring).

  Returns:
    (total_loss, metrics, vs): as `impala_loss`, plus `vs` float [T, B], the
    unnormalised V-trace targets (stop-gradient) for
    `popart.increments(state, vs, unroll.task_id[:-1])`. Extra metrics:
    'mean_abs_normalized_vs' (mean |(v_s − μ_i)/σ_i|).

  Raises:
    ValueError: as `impala_loss`, or if `popart_state` is not a PopArtState
      of [num_tasks] vectors matching the value head.
  """
  if not isinstance(popart_state, popart.PopArtState):
    raise ValueError('`popart_state` must be a popart.PopArtState; got '
                     f'{type(popart_state)}.')
  num_tasks = agent_outputs.values.shape[-1]
  for field, value in zip(popart.PopArtState._fields, popart_state):
    shape = tf.TensorShape(value.shape)
    if shape.rank != 1 or not shape.is_compatible_with([num_tasks]):
      raise ValueError(f'`popart_state.{field}` must be [num_tasks] = '
                       f'[{num_tasks}] (the value head); got {shape}.')
  return _loss(
      agent_outputs, unroll, popart_state, discount=discount,
      baseline_cost=baseline_cost, entropy_cost=entropy_cost,
      reward_clip=reward_clip, clip_rho_threshold=clip_rho_threshold,
      clip_pg_rho_threshold=clip_pg_rho_threshold,
      clip_c_threshold=clip_c_threshold, lambda_=lambda_,
      distral_coefficients=distral_coefficients)


def _loss(agent_outputs, unroll, popart_state, *, discount, baseline_cost,
          entropy_cost, reward_clip, clip_rho_threshold, clip_pg_rho_threshold,
          clip_c_threshold, lambda_, distral_coefficients):
  """Both losses; popart_state None = plain IMPALA. Returns (loss, metrics, vs).

  distral_coefficients None = no Distral component.
  """
  if not 0.0 <= discount <= 1.0:
    raise ValueError(f'`discount` must be in [0, 1]; got {discount}.')
  _check_non_negative(baseline_cost, 'baseline_cost')
  _check_non_negative(entropy_cost, 'entropy_cost')
  if reward_clip is not None and reward_clip <= 0:
    raise ValueError(f'`reward_clip` must be None or > 0; got {reward_clip}.')

  policy_logits = tf.convert_to_tensor(agent_outputs.policy_logits)
  dtype = policy_logits.dtype
  all_values = tf.convert_to_tensor(agent_outputs.values, dtype=dtype)
  if all_values.shape.rank != 3:
    raise ValueError('`agent_outputs.values` must have rank 3 [T+1, B, '
                     f'num_tasks]; got shape {all_values.shape}.')

  with tf.name_scope('impala_loss'):
    # Output of each step's own task: V(x_t), or n_i(x_t) under PopArt.
    outputs = tf.gather(
        all_values, unroll.task_id, axis=2, batch_dims=2)  # [T+1, B]
    if popart_state is None:
      baselines = outputs  # [T+1, B] V(x_t)
    else:
      mu = tf.cast(tf.gather(popart_state.mu, unroll.task_id),
                   dtype)  # [T+1, B] μ_i
      sigma = tf.cast(tf.gather(popart_state.sigma, unroll.task_id),
                      dtype)  # [T+1, B] σ_i
      mu, sigma = tf.stop_gradient(mu), tf.stop_gradient(sigma)
      baselines = sigma * outputs + mu  # [T+1, B] V(x_t), unnormalised
    values = baselines[:-1]  # [T, B] V(x_s)
    bootstrap_value = baselines[-1]  # [B] V(x_T)

    actions = unroll.action[:-1]  # [T, B] a_s
    target_logits = policy_logits[:-1]  # [T, B, A] π logits
    behaviour_logits = tf.cast(unroll.behaviour_logits[:-1],
                               dtype)  # [T, B, A] μ logits
    rewards = tf.cast(unroll.reward[1:], dtype)  # [T, B] r_s
    if reward_clip is not None:
      rewards = tf.clip_by_value(rewards, -reward_clip, reward_clip)
    not_first = 1.0 - tf.cast(unroll.first[1:], dtype)  # [T, B]
    discounts = discount * tf.cast(unroll.discount[1:],
                                   dtype) * not_first  # [T, B] γ_s
    valid = _valid_transitions(unroll, dtype)  # [T, B] or None (all exist)
    distral_terms = None
    if distral_coefficients is not None:
      scale = 1.0 if popart_state is None else sigma[:-1]  # [T, B] σ_i
      rewards, distral_terms = distral_loss.regularize(
          agent_outputs, rewards, actions, target_logits,
          distral_coefficients, scale)
    if valid is not None:  # δ_s = 0 where the transition is missing.
      rewards = tf.where(valid > 0, rewards, tf.stop_gradient(values))
      discounts = discounts * valid

    target_log_probs = vtrace.log_probs_from_logits_and_actions(
        target_logits, actions)  # [T, B] log π(a_s|x_s), differentiable
    behaviour_log_probs = vtrace.log_probs_from_logits_and_actions(
        behaviour_logits, actions)  # [T, B] log μ(a_s|x_s)
    log_rhos = tf.stop_gradient(target_log_probs -
                                behaviour_log_probs)  # [T, B]
    vtrace_returns = vtrace.from_importance_weights(
        log_rhos=log_rhos,
        discounts=discounts,
        rewards=rewards,
        values=values,
        bootstrap_value=bootstrap_value,
        clip_rho_threshold=clip_rho_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold,
        clip_c_threshold=clip_c_threshold,
        lambda_=lambda_)

    vs = vtrace_returns.vs  # [T, B] v_s, unnormalised, no gradient
    pg_advantages = vtrace_returns.pg_advantages  # [T, B] A_s
    if popart_state is None:
      value_errors = vs - values  # [T, B]
    else:
      # Normalised space (SPEC §5): (v_s − μ_i)/σ_i − n_i(x_s) and A_s/σ_i.
      value_errors = (vs - mu[:-1]) / sigma[:-1] - outputs[:-1]  # [T, B]
      pg_advantages = pg_advantages / sigma[:-1]  # [T, B]
    pg_terms = pg_advantages * target_log_probs  # [T, B]
    baseline_terms = tf.square(value_errors)  # [T, B]
    log_pi = tf.nn.log_softmax(target_logits)  # [T, B, A] log π(·|x_s)
    entropy = -tf.reduce_sum(tf.exp(log_pi) * log_pi, axis=-1)  # [T, B] H
    # Policy lag, as the full-distribution KL(μ‖π) [T, B]: the mean of ρ is
    # 1 in expectation under μ whatever π is, so it cannot show lag.
    log_mu = tf.nn.log_softmax(behaviour_logits)  # [T, B, A] log μ(·|x_s)
    behaviour_kl = tf.stop_gradient(tf.reduce_sum(
        tf.exp(log_mu) * (log_mu - log_pi), axis=-1))  # [T, B]
    if valid is not None:
      pg_terms, baseline_terms, entropy = (
          valid * x for x in (pg_terms, baseline_terms, entropy))
    policy_loss = -tf.reduce_sum(pg_terms)
    baseline_loss = baseline_cost * 0.5 * tf.reduce_sum(baseline_terms)
    entropy_loss = -entropy_cost * tf.reduce_sum(entropy)
    total_loss = policy_loss + baseline_loss + entropy_loss
    if distral_terms is not None:
      distillation = distral_terms['distillation']  # [T, B]
      if valid is not None:
        distillation = valid * distillation
      distillation_loss = tf.reduce_sum(distillation)
      total_loss += distillation_loss

    if valid is not None:
      metrics = _masked_metrics(
          valid, total_loss, policy_loss, baseline_loss, entropy_loss,
          entropy, vs, pg_advantages, log_rhos, behaviour_kl)
    else:
      metrics = {
          'loss': total_loss,
          'policy_loss': policy_loss,
          'baseline_loss': baseline_loss,
          'entropy_loss': entropy_loss,
          'entropy': tf.reduce_mean(entropy),
          'mean_vs': tf.reduce_mean(vs),
          'mean_rho': tf.reduce_mean(tf.exp(log_rhos)),
          'mean_abs_pg_advantage': tf.reduce_mean(tf.abs(pg_advantages)),
          'behaviour_kl': tf.reduce_mean(behaviour_kl),
      }
    if distral_terms is not None:
      metrics['loss'] = total_loss
      metrics.update(distral_loss.metrics(
          distral_terms, distillation_loss, entropy, unroll.task_id[:-1],
          all_values.shape[-1], valid))
    if popart_state is not None:
      normalized_vs = tf.abs((vs - mu[:-1]) / sigma[:-1])  # [T, B]
      metrics['mean_abs_normalized_vs'] = (
          tf.reduce_mean(normalized_vs) if valid is None else
          tf.reduce_sum(valid * normalized_vs) /
          tf.maximum(tf.reduce_sum(valid), 1.0))
    return total_loss, metrics, vs


def _valid_transitions(unroll: types.Unroll,
                       dtype: tf.DType) -> Optional[tf.Tensor]:
  """[T, B] 1.0 where transition s (x_s -> x_{s+1}) exists, i.e. mask[s+1].

  None when `unroll` has no `mask` field (every transition exists).
  """
  mask = getattr(unroll, 'mask', None)
  if mask is None:
    return None
  return tf.cast(tf.convert_to_tensor(mask)[1:], dtype)  # [T, B]


def _masked_metrics(valid, total_loss, policy_loss, baseline_loss,
                    entropy_loss, entropy, vs, pg_advantages, log_rhos,
                   behaviour_kl) -> Dict[str, tf.Tensor]:
  """The metrics of impala_loss with means over existing transitions only."""
  count = tf.reduce_sum(valid)
  mean = lambda x: tf.reduce_sum(valid * x) / tf.maximum(count, 1.0)
  return {
      'loss': total_loss,
      'policy_loss': policy_loss,
      'baseline_loss': baseline_loss,
      'entropy_loss': entropy_loss,
      'entropy': mean(entropy),
      'mean_vs': mean(vs),
      'mean_rho': mean(tf.exp(log_rhos)),
      'mean_abs_pg_advantage': mean(tf.abs(pg_advantages)),
      'behaviour_kl': mean(behaviour_kl),
      'valid_fraction': count / tf.cast(tf.size(valid), valid.dtype),
  }
