"""Slow float64 NumPy ground truths, written in the papers' notation.

Never imported by production code. Everything here is deliberately a direct
transcription of the paper's formulas with explicit loops, so that tests compare
two independent derivations (the production code uses the backward recursion).

Index conventions (IMPALA, Espeholt et al. 2018, §4.1), time-major [T, B, ...]:
  step t in 0..T−1 has x_t, a_t ~ μ(·|x_t), r_t and γ_t of the transition
  x_t → x_{t+1}; V(x_T) is the bootstrap value.
"""

from typing import Dict, Optional

import numpy as np


def _clip(ratio: np.ndarray, threshold: Optional[float]) -> np.ndarray:
  """min(threshold, ratio), or ratio itself when threshold is None."""
  return ratio if threshold is None else np.minimum(threshold, ratio)


def vtrace(log_rhos: np.ndarray,
           discounts: np.ndarray,
           rewards: np.ndarray,
           values: np.ndarray,
           bootstrap_value: np.ndarray,
           clip_rho_threshold: Optional[float] = 1.0,
           clip_pg_rho_threshold: Optional[float] = 1.0,
           clip_c_threshold: Optional[float] = 1.0,
           lambda_: float = 1.0) -> Dict[str, np.ndarray]:
  """V-trace by the explicit sum of IMPALA eq. 1 (not the recursion).

    ρ_t = min(ρ̄, π_t/μ_t),  c_i = λ · min(c̄, π_i/μ_i)
    δ_t V = ρ_t (r_t + γ_t V(x_{t+1}) − V(x_t))
    v_s = V(x_s) + Σ_{t=s}^{T−1} (Π_{i=s}^{t−1} γ_i)(Π_{i=s}^{t−1} c_i) δ_t V
    A_s = ρ^pg_s (r_s + γ_s v_{s+1} − V(x_s)),  v_T = V(x_T)   (§4.2)

  Args:
    log_rhos: [T, B, ...] log π(a_t|x_t) − log μ(a_t|x_t).
    discounts: [T, B, ...] γ_t.
    rewards: [T, B, ...] r_t.
    values: [T, B, ...] V(x_t).
    bootstrap_value: [B, ...] V(x_T).
    clip_rho_threshold: ρ̄ or None.
    clip_pg_rho_threshold: ρ̄_pg or None.
    clip_c_threshold: c̄ or None.
    lambda_: λ.

  Returns:
    dict with float64 'vs', 'pg_advantages', 'rhos' (clipped ρ_t), 'cs'.
  """
  log_rhos, discounts, rewards, values, bootstrap_value = (
      np.asarray(x, np.float64)
      for x in (log_rhos, discounts, rewards, values, bootstrap_value))
  num_steps = log_rhos.shape[0]
  ratios = np.exp(log_rhos)  # π/μ
  rhos = _clip(ratios, clip_rho_threshold)  # ρ_t
  cs = lambda_ * _clip(ratios, clip_c_threshold)  # c_i
  pg_rhos = _clip(ratios, clip_pg_rho_threshold)  # ρ^pg_s

  def value(t):  # V(x_t) for t in 0..T.
    return bootstrap_value if t == num_steps else values[t]

  def delta(t):  # δ_t V
    return rhos[t] * (rewards[t] + discounts[t] * value(t + 1) - value(t))

  vs = np.zeros_like(values)
  for s in range(num_steps):
    v_s = value(s).copy()
    for t in range(s, num_steps):
      discount_product = np.ones_like(bootstrap_value)  # Π_{i=s}^{t−1} γ_i
      c_product = np.ones_like(bootstrap_value)  # Π_{i=s}^{t−1} c_i
      for i in range(s, t):
        discount_product = discount_product * discounts[i]
        c_product = c_product * cs[i]
      v_s = v_s + discount_product * c_product * delta(t)
    vs[s] = v_s

  pg_advantages = np.zeros_like(values)
  for s in range(num_steps):
    v_next = bootstrap_value if s == num_steps - 1 else vs[s + 1]  # v_{s+1}
    pg_advantages[s] = pg_rhos[s] * (
        rewards[s] + discounts[s] * v_next - values[s])
  return dict(vs=vs, pg_advantages=pg_advantages, rhos=rhos, cs=cs)


def log_softmax(logits: np.ndarray) -> np.ndarray:
  """Numerically stable log π(·) over the last axis."""
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def impala_loss(policy_logits: np.ndarray,
                values: np.ndarray,
                first: np.ndarray,
                reward: np.ndarray,
                discount: np.ndarray,
                action: np.ndarray,
                behaviour_logits: np.ndarray,
                task_id: np.ndarray,
                *,
                discount_factor: float = 0.99,
                baseline_cost: float = 0.5,
                entropy_cost: float = 0.01,
                reward_clip: Optional[float] = 1.0,
                clip_rho_threshold: Optional[float] = 1.0,
                clip_pg_rho_threshold: Optional[float] = 1.0,
                clip_c_threshold: Optional[float] = 1.0,
                lambda_: float = 1.0,
                targets: Optional[Dict[str, np.ndarray]] = None
               ) -> Dict[str, np.ndarray]:
  """IMPALA loss (§4.2) over one unroll of T+1 stored steps, in loops.

  Stored-step convention of agent/types.py: step t holds x_t, a_t, μ logits
  at x_t, and the reward/discount/first of the transition INTO x_t.

  Args:
    policy_logits: [T+1, B, A] π logits at x_t.
    values: [T+1, B, K] per-task values.
    first: bool [T+1, B].
    reward: [T+1, B] unclipped.
    discount: [T+1, B] env discount.
    action: int [T+1, B].
    behaviour_logits: [T+1, B, A] μ logits.
    task_id: int [T+1, B] in [0, K).
    discount_factor: γ.
    baseline_cost: weight of the value loss.
    entropy_cost: weight of the entropy loss.
    reward_clip: clip rewards to [−reward_clip, reward_clip], or None.
    clip_rho_threshold: ρ̄ or None.
    clip_pg_rho_threshold: ρ̄_pg or None.
    clip_c_threshold: c̄ or None.
    lambda_: λ.
    targets: optional dict with 'vs' and 'pg_advantages' [T, B] (e.g. the
      output of an earlier call) used instead of recomputing V-trace: the
      surrogate loss with frozen targets, whose gradient the learner follows.

  Returns:
    dict of float64 scalars 'loss', 'policy_loss', 'baseline_loss',
    'entropy_loss', 'entropy', 'mean_vs', 'mean_rho', 'mean_abs_pg_advantage',
    'behaviour_kl',
    and arrays 'vs', 'pg_advantages', 'baseline' ([T, B]), 'log_pi' ([T, B, A]).
  """
  num_steps = policy_logits.shape[0] - 1
  batch_size = policy_logits.shape[1]
  shape = (num_steps, batch_size)
  log_rhos, discounts, rewards, baseline = (
      np.zeros(shape) for _ in range(4))
  log_pi = log_softmax(policy_logits[:-1])  # [T, B, A] log π(·|x_t)
  log_mu = log_softmax(behaviour_logits[:-1])  # [T, B, A] log μ(·|x_t)
  bootstrap_value = np.zeros(batch_size)
  for b in range(batch_size):
    bootstrap_value[b] = values[num_steps, b, task_id[num_steps, b]]
    for t in range(num_steps):
      a_t = action[t, b]
      log_rhos[t, b] = log_pi[t, b, a_t] - log_mu[t, b, a_t]
      r = float(reward[t + 1, b])  # r_t: reward of x_t → x_{t+1}
      if reward_clip is not None:
        r = min(max(r, -reward_clip), reward_clip)
      rewards[t, b] = r
      # A transition into an episode start is terminal for bootstrapping.
      not_first = 0.0 if first[t + 1, b] else 1.0
      discounts[t, b] = discount_factor * discount[t + 1, b] * not_first
      baseline[t, b] = values[t, b, task_id[t, b]]  # V(x_t)

  vt = vtrace(log_rhos, discounts, rewards, baseline, bootstrap_value,
              clip_rho_threshold=clip_rho_threshold,
              clip_pg_rho_threshold=clip_pg_rho_threshold,
              clip_c_threshold=clip_c_threshold, lambda_=lambda_)
  if targets is not None:
    vt = targets
  vs, pg_advantages = vt['vs'], vt['pg_advantages']

  policy_loss = baseline_loss = total_entropy = 0.0
  for t in range(num_steps):
    for b in range(batch_size):
      # −A_s log π(a_s|x_s)
      policy_loss -= pg_advantages[t, b] * log_pi[t, b, action[t, b]]
      # ½ (v_s − V(x_s))²
      baseline_loss += 0.5 * (vs[t, b] - baseline[t, b])**2
      # H(π(·|x_s)) = −Σ_a π(a|x_s) log π(a|x_s)
      total_entropy -= np.sum(np.exp(log_pi[t, b]) * log_pi[t, b])
  baseline_loss *= baseline_cost
  entropy_loss = -entropy_cost * total_entropy
  return dict(
      loss=policy_loss + baseline_loss + entropy_loss,
      policy_loss=policy_loss,
      baseline_loss=baseline_loss,
      entropy_loss=entropy_loss,
      entropy=total_entropy / (num_steps * batch_size),
      mean_vs=vs.mean(),
      mean_rho=np.exp(log_rhos).mean(),
      mean_abs_pg_advantage=np.abs(pg_advantages).mean(),
      # KL(μ‖π) = Σ_a μ(a|x_s) (log μ(a|x_s) − log π(a|x_s)), mean over s.
      behaviour_kl=np.sum(np.exp(log_mu) * (log_mu - log_pi), axis=-1).mean(),
      vs=vs,
      pg_advantages=pg_advantages,
      baseline=baseline,
      log_pi=log_pi)


def impala_loss_gradients(ref: Dict[str, np.ndarray], action: np.ndarray,
                          task_id: np.ndarray, num_tasks: int,
                          baseline_cost: float,
                          entropy_cost: float) -> Dict[str, np.ndarray]:
  """Analytic d loss / d(policy_logits, values), with vs and A_s constant.

  With π = softmax(z) at x_s, for s < T:
    d(−A_s log π(a_s))/dz = −A_s (onehot(a_s) − π)
    d(−c_e H(π))/dz_j   = c_e π_j (log π_j + H(π))
    d(c_b ½ (v_s − V(x_s))²)/dV(x_s) = c_b (V(x_s) − v_s), at task_id[s] only.
  Step T (the bootstrap step) receives no gradient: it only enters through the
  stop-gradient targets.

  Args:
    ref: output of `impala_loss`.
    action: int [T+1, B].
    task_id: int [T+1, B].
    num_tasks: K.
    baseline_cost: weight of the value loss.
    entropy_cost: weight of the entropy loss.

  Returns:
    dict with 'policy_logits' [T+1, B, A] and 'values' [T+1, B, K].
  """
  log_pi = ref['log_pi']
  num_steps, batch_size, num_actions = log_pi.shape
  d_logits = np.zeros((num_steps + 1, batch_size, num_actions))
  d_values = np.zeros((num_steps + 1, batch_size, num_tasks))
  for t in range(num_steps):
    for b in range(batch_size):
      pi = np.exp(log_pi[t, b])
      entropy = -np.sum(pi * log_pi[t, b])
      onehot = np.eye(num_actions)[action[t, b]]
      d_logits[t, b] = (-ref['pg_advantages'][t, b] * (onehot - pi) +
                        entropy_cost * pi * (log_pi[t, b] + entropy))
      d_values[t, b, task_id[t, b]] = baseline_cost * (
          ref['baseline'][t, b] - ref['vs'][t, b])
  return dict(policy_logits=d_logits, values=d_values)


# ---------------------------------------------------------------------------
# PopArt (Hessel et al. 2018; van Hasselt et al. 2016), SPEC §5.
# Loops over samples s and tasks i in float64, transcribing the SPEC formulas.
# ---------------------------------------------------------------------------


def popart_update_statistics(mu: np.ndarray,
                             sigma: np.ndarray,
                             nu: np.ndarray,
                             targets: np.ndarray,
                             task_ids: np.ndarray,
                             step_size: float = 3e-4,
                             scale_lb: float = 1e-4,
                             scale_ub: float = 1e6) -> Dict[str, np.ndarray]:
  """ART: one batch of targets, each an EMA step from the old statistics.

    μ_i′ = μ_i + β Σ_{s: task(s)=i} (v_s − μ_i)
    ν_i′ = ν_i + β Σ_{s: task(s)=i} (v_s² − ν_i)
    σ_i′ = sqrt(clip(ν_i′ − μ_i′², σ_lb², σ_ub²))
  Tasks with no sample in the batch keep μ_i, σ_i and ν_i.

  Args:
    mu: [K] μ_i.
    sigma: [K] σ_i.
    nu: [K] ν_i.
    targets: [...] v_s, any shape.
    task_ids: int [...] task(s), same shape as `targets`.
    step_size: β.
    scale_lb: σ_lb.
    scale_ub: σ_ub.

  Returns:
    dict of float64 [K] 'mu', 'sigma', 'nu' (the new statistics).
  """
  mu, sigma, nu = (np.asarray(x, np.float64) for x in (mu, sigma, nu))
  targets = np.asarray(targets, np.float64).reshape(-1)
  task_ids = np.asarray(task_ids).reshape(-1)
  num_tasks = mu.shape[0]
  new_mu, new_sigma, new_nu = mu.copy(), sigma.copy(), nu.copy()
  for i in range(num_tasks):
    sum_mu = sum_nu = 0.0
    present = False
    for s in range(targets.shape[0]):
      if task_ids[s] == i:
        present = True
        sum_mu += targets[s] - mu[i]  # v_s − μ_i (old μ_i)
        sum_nu += targets[s]**2 - nu[i]  # v_s² − ν_i (old ν_i)
    if present:
      new_mu[i] = mu[i] + step_size * sum_mu
      new_nu[i] = nu[i] + step_size * sum_nu
      variance = new_nu[i] - new_mu[i]**2
      new_sigma[i] = np.sqrt(min(max(variance, scale_lb**2), scale_ub**2))
  return dict(mu=new_mu, sigma=new_sigma, nu=new_nu)


def popart_preserve_outputs(kernel: np.ndarray, bias: np.ndarray,
                            old_mu: np.ndarray, old_sigma: np.ndarray,
                            new_mu: np.ndarray, new_sigma: np.ndarray
                           ) -> Dict[str, np.ndarray]:
  """POP: W_ji′ = (σ_i/σ_i′) W_ji,  b_i′ = (σ_i b_i + μ_i − μ_i′)/σ_i′.

  Args:
    kernel: [hidden, K] W; column i is task i.
    bias: [K] b.
    old_mu: [K] μ_i before the update.
    old_sigma: [K] σ_i before the update.
    new_mu: [K] μ_i′ after it.
    new_sigma: [K] σ_i′ after it.

  Returns:
    dict of float64 'kernel' [hidden, K] and 'bias' [K].
  """
  kernel = np.asarray(kernel, np.float64)
  hidden, num_tasks = kernel.shape
  new_kernel = np.zeros_like(kernel)
  new_bias = np.zeros(num_tasks)
  for i in range(num_tasks):
    for j in range(hidden):
      new_kernel[j, i] = old_sigma[i] / new_sigma[i] * kernel[j, i]
    new_bias[i] = (old_sigma[i] * bias[i] + old_mu[i] -
                   new_mu[i]) / new_sigma[i]
  return dict(kernel=new_kernel, bias=new_bias)


def popart_value_outputs(hidden: np.ndarray, kernel: np.ndarray,
                         bias: np.ndarray, mu: np.ndarray,
                         sigma: np.ndarray) -> np.ndarray:
  """Unnormalised head outputs v_i(x_n) = σ_i (Σ_j h_nj W_ji + b_i) + μ_i.

  Args:
    hidden: [N, hidden] h(x_n).
    kernel: [hidden, K] W.
    bias: [K] b.
    mu: [K] μ_i.
    sigma: [K] σ_i.

  Returns:
    float64 [N, K].
  """
  hidden, kernel, bias, mu, sigma = (
      np.asarray(x, np.float64) for x in (hidden, kernel, bias, mu, sigma))
  num_samples, num_hidden = hidden.shape
  num_tasks = kernel.shape[1]
  outputs = np.zeros((num_samples, num_tasks))
  for n in range(num_samples):
    for i in range(num_tasks):
      normalized = bias[i]  # n_i(x_n) = Σ_j h_nj W_ji + b_i
      for j in range(num_hidden):
        normalized += hidden[n, j] * kernel[j, i]
      outputs[n, i] = sigma[i] * normalized + mu[i]
  return outputs
# ------------------------------- end PopArt --------------------------------


# ---------------------------------------------------------------------------
# Distral (Teh et al. 2017), SPEC §6. Float64 loops over states n (the leading
# dimensions [...] flattened) and actions a, transcribing the paper's
# equations. Every log-sum-exp is shifted by its maximum by hand: β f reaches
# thousands, and e^{β f} overflows float64 beyond 709.
# ---------------------------------------------------------------------------


def _distral_states(logits: np.ndarray) -> np.ndarray:
  """[..., A] -> float64 [N, A], one row per state s_n."""
  logits = np.asarray(logits, np.float64)
  return logits.reshape(-1, logits.shape[-1])


def _distral_logsumexp(row: np.ndarray) -> float:
  """log Σ_a e^{z_a} = m + log Σ_a e^{z_a − m}, m = max_a z_a."""
  m = max(row)
  return m + np.log(sum(np.exp(z - m) for z in row))


def _distral_log_policy(row: np.ndarray) -> np.ndarray:
  """log softmax(z)(a) = z_a − log Σ_b e^{z_b} for one state."""
  normaliser = _distral_logsumexp(row)
  return np.array([z - normaliser for z in row])


def distral_coefficients(kl_cost: float, entropy_cost: float) -> tuple:
  """(α, β) = (c_KL/(c_KL + c_ent), 1/(c_KL + c_ent)) (eq. 3)."""
  return kl_cost / (kl_cost + entropy_cost), 1. / (kl_cost + entropy_cost)


def distral_two_column_logits(distilled_logits: np.ndarray,
                              task_logits: np.ndarray, alpha: float,
                              beta: float) -> np.ndarray:
  """z(a|s) = α log π0(a|s) + β f_i(a|s), π0 = softmax(h0) (eq. 8-9).

  Args:
    distilled_logits: [..., A] h0.
    task_logits: [..., A] f_i.
    alpha: α.
    beta: β.

  Returns:
    float64 [..., A], the (unnormalised) logits of π_i.
  """
  h0, f = _distral_states(distilled_logits), _distral_states(task_logits)
  logits = np.zeros_like(h0)
  for n in range(h0.shape[0]):
    log_pi0 = _distral_log_policy(h0[n])
    for a in range(h0.shape[1]):
      logits[n, a] = alpha * log_pi0[a] + beta * f[n, a]
  return logits.reshape(np.shape(distilled_logits))


def distral_two_column_log_policy(distilled_logits: np.ndarray,
                                  task_logits: np.ndarray, alpha: float,
                                  beta: float) -> np.ndarray:
  """log π_i(a|s) = log [π0^α e^{β f_i} / Σ_b π0(b)^α e^{β f_i(b)}] (eq. 9)."""
  logits = distral_two_column_logits(distilled_logits, task_logits, alpha,
                                     beta)
  rows = _distral_states(logits)
  return np.stack([_distral_log_policy(row) for row in rows]).reshape(
      logits.shape)


def distral_soft_value(distilled_logits: np.ndarray, task_logits: np.ndarray,
                       alpha: float, beta: float) -> np.ndarray:
  """V_i(s) = (1/β) log Σ_a π0(a|s)^α e^{β f_i(a|s)} (§2.3), shape [...]."""
  logits = _distral_states(
      distral_two_column_logits(distilled_logits, task_logits, alpha, beta))
  values = np.array([_distral_logsumexp(row) / beta for row in logits])
  return values.reshape(np.shape(distilled_logits)[:-1])


def distral_soft_advantage(distilled_logits: np.ndarray,
                           task_logits: np.ndarray, alpha: float,
                           beta: float) -> np.ndarray:
  """Â_i(a|s) = f_i(a|s) − V_i(s) (§2.3), shape [..., A]."""
  values = distral_soft_value(distilled_logits, task_logits, alpha, beta)
  return np.asarray(task_logits, np.float64) - values[..., None]


def distral_regularized_rewards(rewards: np.ndarray, actions: np.ndarray,
                                distilled_logits: np.ndarray,
                                policy_logits: np.ndarray, alpha: float,
                                beta: float) -> np.ndarray:
  """r'_t = r_t + (α/β) log π0(a_t|s_t) − (1/β) log π_i(a_t|s_t) (eq. 3).

  Args:
    rewards: [...] r_t.
    actions: int [...] a_t.
    distilled_logits: [..., A] h0, π0 = softmax(h0).
    policy_logits: [..., A] logits of π_i (2- or 1-column).
    alpha: α.
    beta: β.

  Returns:
    float64 [...].
  """
  h0, logits = _distral_states(distilled_logits), _distral_states(policy_logits)
  rewards = np.asarray(rewards, np.float64).reshape(-1)
  actions = np.asarray(actions).reshape(-1)
  out = np.zeros_like(rewards)
  for n in range(h0.shape[0]):
    a = actions[n]
    log_pi0 = _distral_log_policy(h0[n])[a]
    log_pi = _distral_log_policy(logits[n])[a]
    out[n] = rewards[n] + alpha / beta * log_pi0 - 1. / beta * log_pi
  return out.reshape(np.shape(distilled_logits)[:-1])


def distral_distillation_loss(distilled_logits: np.ndarray,
                              policy_logits: np.ndarray, alpha: float,
                              beta: float) -> np.ndarray:
  """L(s) = −(α/β) Σ_a π_i(a|s) log π0(a|s), shape [...]."""
  h0, logits = _distral_states(distilled_logits), _distral_states(policy_logits)
  loss = np.zeros(h0.shape[0])
  for n in range(h0.shape[0]):
    log_pi0 = _distral_log_policy(h0[n])
    pi = np.exp(_distral_log_policy(logits[n]))
    loss[n] = -alpha / beta * sum(pi[a] * log_pi0[a]
                                  for a in range(h0.shape[1]))
  return loss.reshape(np.shape(distilled_logits)[:-1])


def distral_distillation_gradient(distilled_logits: np.ndarray,
                                  policy_logits: np.ndarray, alpha: float,
                                  beta: float) -> np.ndarray:
  """∂L(s)/∂h0(a|s) = −(α/β)(π_i(a|s) − π0(a|s)) (eq. 10), shape [..., A]."""
  h0, logits = _distral_states(distilled_logits), _distral_states(policy_logits)
  grad = np.zeros_like(h0)
  for n in range(h0.shape[0]):
    pi0 = np.exp(_distral_log_policy(h0[n]))
    pi = np.exp(_distral_log_policy(logits[n]))
    for a in range(h0.shape[1]):
      grad[n, a] = -alpha / beta * (pi[a] - pi0[a])
  return grad.reshape(np.shape(distilled_logits))


def distral_kl(policy_logits: np.ndarray,
               distilled_logits: np.ndarray) -> np.ndarray:
  """KL(π_i‖π0)(s) = Σ_a π_i(a|s) (log π_i(a|s) − log π0(a|s)), shape [...]."""
  logits, h0 = _distral_states(policy_logits), _distral_states(distilled_logits)
  kl = np.zeros(h0.shape[0])
  for n in range(h0.shape[0]):
    log_pi, log_pi0 = _distral_log_policy(logits[n]), _distral_log_policy(h0[n])
    kl[n] = sum(np.exp(log_pi[a]) * (log_pi[a] - log_pi0[a])
                for a in range(h0.shape[1]))
  return kl.reshape(np.shape(policy_logits)[:-1])


def distral_entropy(logits: np.ndarray) -> np.ndarray:
  """H(π)(s) = −Σ_a π(a|s) log π(a|s), shape [...]."""
  rows = _distral_states(logits)
  entropy = np.zeros(rows.shape[0])
  for n in range(rows.shape[0]):
    log_pi = _distral_log_policy(rows[n])
    entropy[n] = -sum(np.exp(l) * l for l in log_pi)
  return entropy.reshape(np.shape(logits)[:-1])
# ------------------------------- end Distral -------------------------------
