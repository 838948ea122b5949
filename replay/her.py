"""Hindsight goal relabeling of replay items (HER, Andrychowicz et al. 2017).

`relabel` is pure TF (no I/O, flags, variables or globals) and maps ONE replay
item, before batching, e.g. `dataset.map(functools.partial(relabel, ...))`.

Replay item (a dict; T = unroll length, L = max stored steps of an episode,
G... = goal shape, e.g. [n] for bit flipping, [2] for the grid world):
  Stored steps, time index i = 0..T, in the agent/types.py convention (step i
  holds x_i and the reward/discount of the transition INTO x_i):
    observation       [T+1, ...]  policy input conditioned on the desired goal
                                  (envs/goal.py 'observation'); any nest that
                                  `goal_fn` understands
    first             bool    [T+1]
    reward            float32 [T+1]
    discount          float32 [T+1]
    action            int32   [T+1]   left bit-identical
    behaviour_logits  float32 [T+1, A] left bit-identical
    desired_goal      [T+1, G...] the goal g the actor was given at x_i
    achieved_goal     [T+1, G...] the goal achieved by x_i itself
    mask              bool    [T+1]  True on steps of the episode, False on
                                     padding
    any other field (prev_action, task_id, core_state, ...) passes unchanged.
  Episode context (how `final`/`future`/`episode` goals stay in the item's own
  episode; SEED RL's HER may take them from another episode, this cannot):
    episode_achieved_goals [L, G...] achieved goals of the episode's stored
                           steps x_0..x_N in order, zero-padded to L
    episode_length    int32 []  N + 1, valid entries of episode_achieved_goals
    episode_offset    int32 []  episode index of the item's step 0

Writer contract. Items never span two episodes: the items of an episode start
at episode steps 0, T, 2T, ... (one step of overlap, as in replay/writer.py),
so episode_offset + i is the episode index of item step i and mask[i] ==
(episode_offset + i < episode_length). Unlike the continuous stream, the
episode's LAST observation x_N is stored as an ordinary step (first=False,
the final reward and env discount: 0 on success, 1 on truncation; its action
and behaviour_logits are unused, e.g. zeros), because relabeling needs its
achieved goal. The last item of an episode is cut at x_N and padded: padding
steps have mask=False, first=True, reward=0, discount=0 (other fields are
don't-care). An item holds at least one transition (episode_offset <=
episode_length - 2). episode_achieved_goals[episode_offset + i] ==
achieved_goal[i] wherever mask[i].

Relabeling. With probability `relabel_probability` p (HER's k = 4 → p =
k/(k+1) = 0.8) the item's goal is replaced by g′ = episode_achieved_goals[j]
with j drawn by `strategy`, over episode indices (last = episode_length − 1):
  'final':   j = last, the achieved goal of the episode's final observation;
  'future':  j ~ U{episode_offset + 1, ..., last}, strictly after the item's
             step 0 (HER §3.4 'future', one goal per unroll);
  'episode': j ~ U{0, ..., last}.
Then, for item steps i >= 1 (step 0 keeps its stored reward/discount/first:
they describe the transition into x_offset, which the loss does not use):
  reward[i] = reward_fn(achieved_goal[i], g′); discount[i] = 0 where that is a
  success, else 1 (data that stops at x_N without reaching g′ is a truncation
  under g′: bootstrap from V(x_N)).
The relabeled episode ends at the FIRST success i* >= 1: steps after i* are
turned into padding (mask=False, first=True, reward=0, discount=0). If step 0
(x_offset) already achieves g′, it is terminal under g′ and every step i >= 1
becomes padding (the item then holds no transition). desired_goal[i] = g′ for
all i and observation = goal_fn(observation, desired_goal). action,
behaviour_logits and all other fields are bit-identical: V-trace corrects with
π(a|x,g′)/μ(a|x,g), and μ(a|x,g) of the action actually taken is what was
stored (SPEC §7).
Without relabeling the item is returned unchanged. The output has the input's
fields plus `relabeled` bool [] (True where the goal was replaced).

Loss contract (for the learner): transition s (x_s → x_{s+1}) exists iff
mask[s + 1]; others need zero weight in every loss term and must not leak into
v_s through the trace (e.g. ρ_s = c_s = 0 there, so v_s = V(x_s)).
"""

import numbers
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import tensorflow as tf

STRATEGIES = ('final', 'future', 'episode')
REQUIRED_FIELDS = ('observation', 'first', 'reward', 'discount',
                   'desired_goal', 'achieved_goal', 'mask',
                   'episode_achieved_goals', 'episode_length',
                   'episode_offset')

RewardFn = Callable[[tf.Tensor, tf.Tensor], Tuple[tf.Tensor, tf.Tensor]]
GoalFn = Callable[[Any, tf.Tensor], Any]


def _check_arguments(item: Mapping[str, Any], strategy: str,
                     relabel_probability: Any, seed: Any) -> None:
  """Raises ValueError for a bad argument (Python-time checks only)."""
  if strategy not in STRATEGIES:
    raise ValueError(f'`strategy` must be one of {STRATEGIES}; got '
                     f'{strategy!r}.')
  if isinstance(relabel_probability, numbers.Real) and not (
      0.0 <= relabel_probability <= 1.0):
    raise ValueError('`relabel_probability` must be in [0, 1]; got '
                     f'{relabel_probability}.')
  missing = [field for field in REQUIRED_FIELDS if field not in item]
  if missing:
    raise ValueError(f'`item` is missing the fields {missing}; see the '
                     'replay/her.py docstring.')
  if seed is not None:
    seed_shape = tf.convert_to_tensor(seed).shape
    if not seed_shape.is_compatible_with([2]):
      raise ValueError('`seed` must be None or an integer tensor of shape '
                       f'[2] (a stateless seed); got shape {seed_shape}.')
  for field, rank in (('mask', 1), ('episode_length', 0),
                      ('episode_offset', 0)):
    actual = tf.convert_to_tensor(item[field]).shape.rank
    if actual != rank:
      raise ValueError(f'`item[{field!r}]` must have rank {rank}; got rank '
                       f'{actual}.')


def _uniform_int(low: tf.Tensor, high: tf.Tensor,
                 seed: Optional[tf.Tensor]) -> tf.Tensor:
  """int32 [] uniform over {low, ..., high} (inclusive)."""
  if seed is None:
    return tf.random.uniform([], low, high + 1, dtype=tf.int32)
  return tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)


def _goal_index(strategy: str, offset: tf.Tensor, length: tf.Tensor,
                seed: Optional[tf.Tensor]) -> tf.Tensor:
  """int32 [] episode index j whose achieved goal becomes g′."""
  last = length - 1
  if strategy == 'final':
    return last
  if strategy == 'future':
    # An item always holds a transition, so offset + 1 <= last; the minimum
    # only keeps a malformed one-step item in range.
    return _uniform_int(tf.minimum(offset + 1, last), last, seed)
  return _uniform_int(tf.zeros_like(last), last, seed)


def _with_goal(item: Dict[str, Any], goal: tf.Tensor, reward_fn: RewardFn,
               goal_fn: GoalFn) -> Dict[str, Any]:
  """The item relabeled with goal g′ (see the module docstring)."""
  achieved = tf.convert_to_tensor(item['achieved_goal'])  # [T+1, G...]
  desired = tf.convert_to_tensor(item['desired_goal'])
  goals = tf.broadcast_to(tf.cast(goal, desired.dtype)[None],
                          tf.shape(desired))  # [T+1, G...] g′
  reward, success = reward_fn(achieved, goals)  # [T+1], [T+1]
  mask = tf.convert_to_tensor(item['mask'], tf.bool)  # [T+1]
  success = tf.logical_and(success, mask)  # [T+1]
  steps = tf.range(tf.shape(mask)[0])  # [T+1]
  num_steps = tf.shape(mask)[0]
  first_success = tf.reduce_min(tf.where(success, steps, num_steps))  # []
  keep = tf.logical_and(mask, steps <= first_success)  # [T+1] new mask
  recomputed = tf.logical_and(keep, steps >= 1)  # [T+1]

  old_reward = tf.convert_to_tensor(item['reward'])
  old_discount = tf.convert_to_tensor(item['discount'])
  old_first = tf.convert_to_tensor(item['first'], tf.bool)
  padding_reward = tf.zeros_like(old_reward)
  new_reward = tf.where(
      recomputed, tf.cast(reward, old_reward.dtype),
      tf.where(keep, old_reward, padding_reward))  # [T+1]
  new_discount = tf.where(
      recomputed, 1.0 - tf.cast(success, old_discount.dtype),
      tf.where(keep, old_discount, tf.zeros_like(old_discount)))  # [T+1]

  out = dict(item)
  out.update(
      observation=goal_fn(item['observation'], goals),
      desired_goal=goals,
      reward=new_reward,
      discount=new_discount,
      first=tf.logical_or(old_first, tf.logical_not(keep)),  # [T+1]
      mask=keep,
      relabeled=tf.constant(True))
  return out


def relabel(item: Mapping[str, Any],
            *,
            strategy: str,
            relabel_probability: float = 0.8,
            reward_fn: RewardFn,
            goal_fn: GoalFn,
            seed: Optional[tf.Tensor] = None) -> Dict[str, Any]:
  """Relabels one replay item's desired goal in hindsight (HER §3.3–3.4).

  Works eagerly, under tf.function and inside tf.data.Dataset.map.

  Args:
    item: one replay item, unbatched, as in the module docstring.
    strategy: 'final', 'future' or 'episode' (HER §3.4; module docstring).
    relabel_probability: p in [0, 1], probability of replacing the goal;
      k/(k+1) for k relabeled goals per original one (HER uses k = 4).
    reward_fn: (achieved [T+1, G...], desired [T+1, G...]) -> (reward float32
      [T+1], success bool [T+1]), e.g. envs.bit_flipping.reward.
    goal_fn: (observation [T+1, ...], desired_goal [T+1, G...]) ->
      observation conditioned on the new goal, e.g.
      envs.goal_gridworld.with_goal.
    seed: None to draw from TF's global (stateful) RNG, or an int32/int64
      tensor of shape [2] for stateless, reproducible draws; it must then
      differ per item (e.g. zip the dataset with
      `tf.data.Dataset.random(s).batch(2, drop_remainder=True)`).

  Returns:
    The item (a new dict) with `observation`, `desired_goal`, `reward`,
    `discount`, `first` and `mask` relabeled or unchanged, plus `relabeled`
    bool [].

  Raises:
    ValueError: for an unknown `strategy`, `relabel_probability` outside
      [0, 1], a `seed` not of shape [2], a missing field or a field of the
      wrong rank.
    tf.errors.InvalidArgumentError: at run time, if not 0 <= episode_offset <
      episode_length <= L.
  """
  _check_arguments(item, strategy, relabel_probability, seed)
  item = tf.nest.map_structure(tf.convert_to_tensor, dict(item))
  with tf.name_scope('her_relabel'):
    length = tf.cast(item['episode_length'], tf.int32)  # [] N + 1
    offset = tf.cast(item['episode_offset'], tf.int32)  # []
    episode_goals = tf.convert_to_tensor(item['episode_achieved_goals'])
    checks = [
        tf.debugging.assert_non_negative(offset, 'episode_offset < 0'),
        tf.debugging.assert_less(offset, length,
                                 'episode_offset >= episode_length'),
        tf.debugging.assert_less_equal(
            length, tf.shape(episode_goals)[0],
            'episode_length > len(episode_achieved_goals)'),
    ]
    with tf.control_dependencies(checks):
      length = tf.identity(length)
    if seed is None:
      index_seed = None
      coin = tf.random.uniform([])
    else:
      coin_seed, index_seed = tf.unstack(
          tf.random.experimental.stateless_split(seed, 2))  # [2], [2]
      coin = tf.random.stateless_uniform([], coin_seed)
    probability = tf.convert_to_tensor(relabel_probability, coin.dtype)
    do_relabel = coin < probability  # []

    def relabeled():
      index = _goal_index(strategy, offset, length, index_seed)  # []
      goal = tf.gather(episode_goals, index)  # [G...] g′
      return _with_goal(item, goal, reward_fn, goal_fn)

    def unchanged():
      return dict(item, relabeled=tf.constant(False))

    return tf.cond(do_relabel, relabeled, unchanged)
