"""Distral as a component of the IMPALA loss (Teh et al. 2017; SPEC §6).

agent/losses.py composes it (`distral_coefficients=(α, β)`): `regularize`
turns the rewards into Distral's regularised rewards and returns the
per-step distillation term and diagnostics; `metrics` summarises them. The
formulas are those of agent/distral.py; this module only arranges them over
a time-major batch of unrolls [T, B]. No variables, flags or I/O.

Gradients: the regularised rewards carry none; the distillation term has a
stop-gradient on π_i, so it reaches π0's parameters only: h0 and what h0
reads — π0's own column ('separate'), or the shared torso and LSTM
('shared', where it also shapes the features the task heads read; it never
reaches a task head). 'distral/mean_regularizer' is in reward units (σ_i-
scaled under PopArt).
"""

from typing import Dict

import tensorflow as tf

from agent import distral


def regularize(agent_outputs, rewards, actions, target_logits,
                     distral_coefficients, scale):
  """Regularised rewards r' [T, B] and the Distral terms of the loss.

  Args:
    agent_outputs: types.DistralOutput over T+1 steps (distilled_logits
      [T+1, B, A], h0).
    rewards: float [T, B], r_s (clipped if the loss clips).
    actions: int32 [T, B], a_s.
    target_logits: float [T, B, A], π_i logits (differentiable).
    distral_coefficients: (α, β) of distral.coefficients.
    scale: 1.0, or float [T, B] σ_i under PopArt (stop-gradient).


  r'_s = r_s + scale · [(α/β) log π0(a_s) − (1/β) log π_i(a_s)] (scale = σ_i
  under PopArt, else 1). Returns (r', terms) with terms float [T, B]:
  'distillation' (per-step distillation loss), 'kl' (KL(π_i‖π0)),
  'distilled_entropy' (H(π0)) and 'regularizer' (r'_s − r_s).

  Raises:
    ValueError: if `agent_outputs` has no distilled_logits.
  """
  distilled_logits = getattr(agent_outputs, 'distilled_logits', None)
  if distilled_logits is None:
    raise ValueError('Distral needs `agent_outputs.distilled_logits` (a '
                     'types.DistralOutput from a Distral network); got '
                     f'{type(agent_outputs).__name__}.')
  alpha, beta = distral_coefficients
  distilled_logits = tf.cast(distilled_logits[:-1],
                             target_logits.dtype)  # [T, B, A] h0
  regularizer = scale * distral.regularized_rewards(
      tf.zeros_like(rewards), actions, distilled_logits, target_logits, alpha,
      beta)  # [T, B], no gradient
  terms = {
      'distillation': distral.distillation_loss(
          distilled_logits, target_logits, alpha, beta),  # [T, B]
      'kl': tf.stop_gradient(distral.kl_divergence(
          target_logits, distilled_logits)),  # [T, B]
      'distilled_entropy': tf.stop_gradient(
          distral.entropy(distilled_logits)),  # [T, B]
      'regularizer': regularizer,
  }
  return rewards + regularizer, terms


def metrics(terms, distillation_loss, entropy, task_id, num_tasks,
                     valid) -> Dict[str, tf.Tensor]:
  """Distral metrics: means over (existing) steps and per-task sums/counts.

  Args:
    terms: the dict of `regularize`.
    distillation_loss: scalar, the summed distillation term.
    entropy: float [T, B], H(π_i) per step.
    task_id: int32 [T, B].
    num_tasks: K.
    valid: float [T, B] 1.0 where the transition exists, or None (all).

  Returns:
    scalars: 'distillation_loss', 'distral/kl', 'distral/distilled_entropy',
    'distral/mean_regularizer' (means per existing step) and, per task i,
    'distral/task_<i>/count' and 'distral/task_<i>/{kl,entropy,
    distilled_entropy}_sum' (sums, for exact means across replicas).
  """
  weight = tf.ones_like(terms['kl']) if valid is None else valid  # [T, B]
  count = tf.maximum(tf.reduce_sum(weight), 1.0)
  metrics = {
      'distillation_loss': distillation_loss,
      'distral/kl': tf.reduce_sum(weight * terms['kl']) / count,
      'distral/distilled_entropy': tf.reduce_sum(
          weight * terms['distilled_entropy']) / count,
      'distral/mean_regularizer': tf.reduce_sum(
          weight * terms['regularizer']) / count,
  }
  per_task = {'kl': terms['kl'], 'entropy': tf.stop_gradient(entropy),
              'distilled_entropy': terms['distilled_entropy']}
  counts = tf.math.unsorted_segment_sum(weight, task_id, num_tasks)  # [K]
  sums = {name: tf.math.unsorted_segment_sum(weight * value, task_id,
                                             num_tasks)  # [K]
          for name, value in per_task.items()}
  for i in range(num_tasks):
    metrics[f'distral/task_{i}/count'] = counts[i]
    for name, value in sums.items():
      metrics[f'distral/task_{i}/{name}_sum'] = value[i]
  return metrics
