"""Tests for replay/her.py: property tests of HER relabeling."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from envs import bit_flipping
from envs import goal_gridworld
from replay import her

_T = 6  # unroll length
_L = 24  # max stored steps of an episode
_A = 4  # actions
_P = 0.8  # k/(k+1), k = 4


def _stored_steps(achieved, desired, observations, rewards, discounts, rng):
  """One episode x_0..x_N as stored steps (replay/her.py writer contract)."""
  n = len(achieved)
  return {
      'observation': np.asarray(observations),
      'first': np.arange(n) == 0,
      'reward': np.asarray([0.0] + list(rewards), np.float32),
      'discount': np.asarray([1.0] + list(discounts), np.float32),
      'prev_action': rng.integers(_A, size=n).astype(np.int32),
      'action': rng.integers(_A, size=n).astype(np.int32),
      'behaviour_logits': rng.normal(size=[n, _A]).astype(np.float32),
      'task_id': np.full([n], 3, np.int32),
      'desired_goal': np.asarray(desired),
      'achieved_goal': np.asarray(achieved),
  }


def _items(steps):
  """Cuts an episode into overlapping T+1 items, padded as documented."""
  length = len(steps['first'])
  episode_goals = np.zeros((_L,) + steps['achieved_goal'].shape[1:],
                           steps['achieved_goal'].dtype)
  episode_goals[:length] = steps['achieved_goal']
  items = []
  for offset in range(0, length - 1, _T):
    valid = min(_T + 1, length - offset)
    item = {}
    for field, value in steps.items():
      padded = np.zeros((_T + 1,) + value.shape[1:], value.dtype)
      padded[:valid] = value[offset:offset + valid]
      item[field] = padded
    item['first'][valid:] = True  # Padding: first, reward 0, discount 0.
    item.update(
        mask=np.arange(_T + 1) < valid,
        core_state=(np.full([8], offset, np.float32),) * 2,
        episode_achieved_goals=episode_goals,
        episode_length=np.int32(length),
        episode_offset=np.int32(offset))
    items.append(item)
  return items


def _synthetic_items(num_episodes=12, seed=0):
  """Items whose achieved goal at episode step j is [episode_id, j] (unique).

  The observation is the desired goal itself (goal_fn = _copy_goal), the
  original desired goal [episode_id, 999] is never achieved (truncations).
  """
  rng = np.random.default_rng(seed)
  items = []
  for episode in range(num_episodes):
    n = int(rng.integers(2, _L))  # stored steps x_0..x_{n-1}
    achieved = np.stack([np.full([n], episode), np.arange(n)], -1).astype(
        np.int32)
    desired = np.tile(np.int32([[episode, 999]]), [n, 1])
    steps = _stored_steps(achieved, desired, desired, [-1.0] * (n - 1),
                          [1.0] * (n - 1), rng)
    items += _items(steps)
  return items


def _copy_goal(observation, desired_goal):
  del observation
  return desired_goal


def _gridworld_items(num_episodes=10, seed=0):
  """Items from random-policy episodes of a small real grid world."""
  env = goal_gridworld.make_goal_gridworld(seed=seed, size=5, max_steps=_L - 1)
  rng = np.random.default_rng(seed)
  items = []
  for _ in range(num_episodes):
    timesteps = [env.reset()]
    while not timesteps[-1].last():
      timesteps.append(env.step(int(rng.integers(4))))
    obs = [t.observation for t in timesteps]
    steps = _stored_steps([o['achieved_goal'] for o in obs],
                          [o['desired_goal'] for o in obs],
                          [o['observation'] for o in obs],
                          [t.reward for t in timesteps[1:]],
                          [t.discount for t in timesteps[1:]], rng)
    items += _items(steps)
  return items


def _stack(items):
  return tf.nest.map_structure(lambda *x: np.stack(x), *items)


def _index(nest, n):
  return tf.nest.map_structure(lambda x: x[n], nest)


def _numpy(nest):
  return tf.nest.map_structure(np.asarray, nest)


def _expected_relabeled(item, new_goal):
  """Reference relabeling with goal g′, written as a loop over steps."""
  out = {k: np.copy(v) if not isinstance(v, tuple) else v
         for k, v in item.items()}
  out['desired_goal'] = np.stack([new_goal] * (_T + 1))
  ended = False
  for i in range(_T + 1):
    success = bool(np.all(item['achieved_goal'][i] == new_goal))
    if ended or not item['mask'][i]:  # After the first success, or padding.
      out['mask'][i], out['first'][i] = False, True
      out['reward'][i] = out['discount'][i] = 0.0
    elif i >= 1:
      out['reward'][i] = 0.0 if success else -1.0
      out['discount'][i] = 0.0 if success else 1.0
    ended = ended or (item['mask'][i] and success)
  return out


def _assert_nest_equal(test, expected, actual, skip=()):
  for field in expected:
    if field not in skip:
      for e, a in zip(tf.nest.flatten(expected[field]),
                      tf.nest.flatten(actual[field])):
        np.testing.assert_array_equal(np.asarray(e), np.asarray(a),
                                      err_msg=field)
        test.assertEqual(np.asarray(e).dtype, np.asarray(a).dtype, field)


class RelabelTest(parameterized.TestCase):

  def _map_all(self, items, strategy, probability=_P, repeats=1):
    """Relabels every item `repeats` times inside tf.data.Dataset.map."""
    relabel = functools.partial(
        her.relabel, strategy=strategy, relabel_probability=probability,
        reward_fn=goal_gridworld.reward, goal_fn=_copy_goal)
    dataset = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensor_slices(_stack(items)).repeat(repeats),
        tf.data.Dataset.random(seed=7).batch(2, drop_remainder=True))
    dataset = dataset.map(lambda item, seed: (item, relabel(item, seed=seed)))
    return _numpy(dataset.batch(len(items) * repeats).get_single_element())

  @parameterized.parameters('final', 'future', 'episode')
  def test_goals_come_from_the_same_episode_and_rate_is_k_over_k_plus_1(
      self, strategy):
    items = _synthetic_items()
    inputs, outputs = self._map_all(items, strategy, repeats=2000 // len(items)
                                    + 1)
    count = len(outputs['relabeled'])
    self.assertGreaterEqual(count, 2000)
    # Binomial(count, 0.8): 5 sigma.
    sigma = np.sqrt(count * _P * (1 - _P))
    self.assertLess(abs(outputs['relabeled'].sum() - count * _P), 5 * sigma)

    lengths, offsets = inputs['episode_length'], inputs['episode_offset']
    episode_ids = inputs['achieved_goal'][:, 0, 0]
    for n in range(count):
      new_goal = outputs['desired_goal'][n, 0]
      if not outputs['relabeled'][n]:
        self.assertEqual(new_goal.tolist(), [episode_ids[n], 999])
        continue
      self.assertEqual(new_goal[0], episode_ids[n])  # Same episode.
      step, last = new_goal[1], lengths[n] - 1
      if strategy == 'final':
        self.assertEqual(step, last)
      elif strategy == 'future':
        self.assertTrue(offsets[n] < step <= last, (offsets[n], step, last))
      else:
        self.assertTrue(0 <= step <= last)

  @parameterized.parameters('future', 'episode')
  def test_goal_step_is_uniform_over_the_allowed_steps(self, strategy):
    items = [i for i in _synthetic_items(seed=3) if i['episode_length'] > 15]
    item = items[0]
    _, outputs = self._map_all([item], strategy, probability=1.0,
                               repeats=2000)
    self.assertTrue(outputs['relabeled'].all())
    last = int(item['episode_length']) - 1
    low = int(item['episode_offset']) + 1 if strategy == 'future' else 0
    steps = outputs['desired_goal'][:, 0, 1]
    counts = np.bincount(steps, minlength=last + 2)
    self.assertEqual(counts[:low].sum() + counts[last + 1:].sum(), 0)
    # Each allowed step: Binomial(2000, 1/m) within 5 sigma.
    m = last + 1 - low
    sigma = np.sqrt(2000 * (1 / m) * (1 - 1 / m))
    np.testing.assert_array_less(np.abs(counts[low:last + 1] - 2000 / m),
                                 5 * sigma)

  @parameterized.parameters('final', 'future', 'episode')
  def test_matches_reference_and_keeps_behaviour_bit_identical(
      self, strategy):
    items = _synthetic_items(seed=1)
    inputs, outputs = self._map_all(items, strategy, repeats=4)
    for n in range(len(outputs['relabeled'])):
      item, output = (_index(inputs, n), _index(outputs, n))
      if output.pop('relabeled'):
        expected = _expected_relabeled(item, output['desired_goal'][0])
        expected['observation'] = expected['desired_goal']
      else:
        expected = item
      _assert_nest_equal(self, expected, output)
      for field in ('action', 'behaviour_logits'):
        self.assertEqual(item[field].tobytes(), output[field].tobytes())

  def test_real_gridworld_rewards_discounts_and_goal_plane(self):
    items = _gridworld_items()
    relabel = tf.function(functools.partial(
        her.relabel, strategy='episode', relabel_probability=1.0,
        reward_fn=goal_gridworld.reward, goal_fn=goal_gridworld.with_goal))
    first_success_seen = masked_after_success = 0
    for n, item in enumerate(items):
      output = _numpy(relabel(item, seed=tf.constant([n, 1])))
      self.assertTrue(output.pop('relabeled'))
      new_goal = output['desired_goal'][0]
      expected = _expected_relabeled(item, new_goal)
      _assert_nest_equal(self, expected, output, skip=('observation',))
      # Recomputed rewards equal reward_fn(achieved, g′) on kept steps >= 1.
      reward, success = goal_gridworld.reward(item['achieved_goal'],
                                              new_goal)
      kept = output['mask'] & (np.arange(_T + 1) >= 1)
      np.testing.assert_array_equal(output['reward'][kept],
                                    reward.numpy()[kept])
      # Discount is 0 exactly at the first success, and nothing follows it.
      successes = np.flatnonzero(success.numpy() & item['mask'])
      zeros = np.flatnonzero(kept & (output['discount'] == 0.0))
      if successes.size and successes[0] >= 1:
        first_success_seen += 1
        self.assertEqual(zeros.tolist(), [successes[0]])
        self.assertFalse(output['mask'][successes[0] + 1:].any())
        masked_after_success += int(item['mask'][successes[0] + 1:].any())
      else:
        self.assertEqual(zeros.tolist(), [])
      # The goal plane shows g′; walls and agent planes are untouched.
      image, original = output['observation'], item['observation']
      np.testing.assert_array_equal(image[..., :2], original[..., :2])
      for i in range(_T + 1):
        self.assertEqual(
            np.argwhere(image[i, ..., goal_gridworld.GOAL_PLANE] == 255).tolist(),
            [new_goal.tolist()])
      for field in ('action', 'behaviour_logits'):
        self.assertEqual(item[field].tobytes(), output[field].tobytes())
    self.assertGreater(first_success_seen, 5)
    self.assertGreater(masked_after_success, 0)

  def test_step_zero_success_masks_every_transition(self):
    # x_0 of the item already achieves g′: it is terminal under g′.
    item = _synthetic_items(num_episodes=1, seed=2)[-1]
    for n in range(100):
      output = _numpy(her.relabel(
          item, strategy='episode', relabel_probability=1.0,
          reward_fn=goal_gridworld.reward, goal_fn=_copy_goal,
          seed=tf.constant([n, 0])))
      if output['desired_goal'][0, 1] == item['episode_offset']:
        self.assertEqual(output['mask'].tolist(), [True] + [False] * _T)
        self.assertEqual(output['discount'][1:].tolist(), [0.0] * _T)
        self.assertTrue(output['first'][1:].all())
        return
    self.fail('no draw of the step-0 goal in 100 tries')

  def test_bit_flipping_eager_tf_function_and_dataset_agree(self):
    env = bit_flipping.make_bit_flipping(num_bits=4, max_steps=_L - 1)
    rng = np.random.default_rng(0)
    timesteps = [env.reset()]
    while not timesteps[-1].last():
      timesteps.append(env.step(int(rng.integers(4))))
    obs = [t.observation for t in timesteps]
    steps = _stored_steps([o['achieved_goal'] for o in obs],
                          [o['desired_goal'] for o in obs],
                          [o['observation'] for o in obs],
                          [t.reward for t in timesteps[1:]],
                          [t.discount for t in timesteps[1:]], rng)
    item = _items(steps)[0]
    relabel = functools.partial(
        her.relabel, strategy='future', reward_fn=bit_flipping.reward,
        goal_fn=bit_flipping.with_goal)
    seed = tf.constant([3, 4], tf.int64)
    eager = _numpy(relabel(item, seed=seed))
    graph = _numpy(tf.function(relabel)(item, seed=seed))
    mapped = _numpy(tf.data.Dataset.from_tensors(item).map(
        lambda x: relabel(x, seed=seed)).get_single_element())
    unseeded = _numpy(tf.data.Dataset.from_tensors(item).map(
        relabel).get_single_element())
    for output in (graph, mapped):
      _assert_nest_equal(self, eager, output)
    self.assertEqual(set(unseeded), set(item) | {'relabeled'})
    # The goal half of the observation is the (possibly new) desired goal.
    for output in (eager, unseeded):
      np.testing.assert_array_equal(output['observation'][:, 4:],
                                    output['desired_goal'])
      np.testing.assert_array_equal(output['observation'][:, :4],
                                    item['observation'][:, :4])

  def test_probability_zero_returns_the_item_unchanged(self):
    item = _gridworld_items(num_episodes=1)[0]
    output = _numpy(her.relabel(
        item, strategy='final', relabel_probability=0.0,
        reward_fn=goal_gridworld.reward, goal_fn=goal_gridworld.with_goal))
    self.assertFalse(output.pop('relabeled'))
    _assert_nest_equal(self, item, output)

  @parameterized.parameters(
      (dict(strategy='random'), '`strategy`'),
      (dict(relabel_probability=1.5), '`relabel_probability`'),
      (dict(relabel_probability=-0.1), '`relabel_probability`'),
      (dict(seed=3), '`seed`'))
  def test_invalid_arguments(self, overrides, message):
    kwargs = dict(strategy='future', reward_fn=goal_gridworld.reward,
                  goal_fn=_copy_goal)
    kwargs.update(overrides)
    with self.assertRaisesRegex(ValueError, message):
      her.relabel(_synthetic_items(1)[0], **kwargs)

  def test_offset_past_episode_end_fails_at_run_time(self):
    item = dict(_synthetic_items(1)[0], episode_offset=np.int32(_L))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'episode_offset >= episode_length'):
      her.relabel(item, strategy='final', relabel_probability=1.0,
                  reward_fn=goal_gridworld.reward, goal_fn=_copy_goal)

  def test_missing_field(self):
    item = dict(_synthetic_items(1)[0])
    del item['episode_offset']
    with self.assertRaisesRegex(ValueError, 'episode_offset'):
      her.relabel(item, strategy='final', reward_fn=goal_gridworld.reward,
                  goal_fn=_copy_goal)


if __name__ == '__main__':
  absltest.main()
