"""Tests for replay/her_writer.py against a real in-process Reverb server."""

import time

from absl.testing import parameterized
import dm_env
import numpy as np
import reverb
import tensorflow as tf
import tree

from agent import actor as actor_lib
from agent import networks
from envs import bit_flipping
from replay import her_writer
from replay import tables
from replay import writer as writer_lib

_NUM_BITS = 4
_MAX_STEPS = 6
_L = _MAX_STEPS + 1
_LSTM = 8
_OBS_SPEC = tf.TensorSpec([2 * _NUM_BITS], tf.float32, 'observation')
_GOAL_SPEC = tf.TensorSpec([_NUM_BITS], tf.float32)
_STEP_SPEC = writer_lib.step_spec(_OBS_SPEC, _NUM_BITS, _LSTM)
_UNROLL_LENGTHS = (2, 3, 6)
_SMALL_REPLAY = 2


def _queue(t):
  return f'queue_t{t}'


def _replay(t):
  return f'replay_t{t}'


def _step(i, episode, first, reward=-1.0, discount=1.0):
  """Stored step i of the stream; achieved goal [episode, i mod 4 ...]."""
  bits = np.float32([episode % 2, i % 2, (i // 2) % 2, 1.0])
  goal = np.float32([episode % 2, 1.0, 1.0, 0.0])
  return {
      'observation': {'observation': np.concatenate([bits, goal]),
                      'desired_goal': goal, 'achieved_goal': bits},
      'first': first, 'reward': np.float32(reward),
      'discount': np.float32(discount), 'prev_action': np.int32(i % 4),
      'action': np.int32((i + 1) % 4),
      'behaviour_logits': np.full([_NUM_BITS], i, np.float32),
      'task_id': np.int32(0),
      'core_state': (np.full([_LSTM], i, np.float32),
                     np.full([_LSTM], -i, np.float32)),
  }


def _stream(episode_lengths):
  """(stored stream, episodes): episode e has episode_lengths[e] stored steps.

  The stream follows agent/types.py: x_N of an episode is NOT a stored step;
  it is handed to end_episode (as agent/actor.py does) and the next episode's
  first step carries its reward/discount.
  """
  stream, episodes, i = [], [], 0
  for e, length in enumerate(episode_lengths):
    steps = []
    for j in range(length):
      steps.append(_step(i, e, first=(j == 0),
                         discount=0.0 if (j == 0 and e > 0) else 1.0))
      i += 1
    last = steps[-1]
    last.update(first=False, discount=np.float32(0.0), reward=np.float32(0.0))
    episodes.append(steps)
    stream.extend(steps[:-1])
  return stream, episodes


def _write(writer, episodes):
  for steps in episodes:
    for step in steps[:-1]:
      writer.append(step)
    writer.end_episode(steps[-1])


def _expected_replay_items(steps, t):
  """Items of one episode x_0..x_N, built by hand as replay/her.py documents."""
  length, items = len(steps), []
  goals = np.zeros([_L, _NUM_BITS], np.float32)
  goals[:length] = [s['observation']['achieved_goal'] for s in steps]
  for offset in range(0, length - 1, t):
    item = {'mask': [], 'first': [], 'reward': [], 'discount': [],
            'prev_action': [], 'achieved_goal': [], 'desired_goal': [],
            'observation': []}
    for i in range(t + 1):
      valid = offset + i < length
      s = steps[offset + i] if valid else None
      item['mask'].append(valid)
      item['first'].append(s['first'] if valid else True)
      item['reward'].append(s['reward'] if valid else 0.0)
      item['discount'].append(s['discount'] if valid else 0.0)
      item['prev_action'].append(s['prev_action'] if valid else 0)
      for field in ('achieved_goal', 'desired_goal', 'observation'):
        item[field].append(s['observation'][field] if valid else
                           np.zeros_like(steps[0]['observation'][field]))
    item = {k: np.asarray(v) for k, v in item.items()}
    item.update(episode_achieved_goals=goals, episode_length=length,
                episode_offset=offset,
                core_state=steps[offset]['core_state'])
    items.append(item)
  return items


# Named cases: episode lengths in STORED steps x_0..x_N (N + 1, at most L).
TEST_CASES = [
    dict(testcase_name='OneShortEpisode', unroll_length=3, lengths=(3,)),
    dict(testcase_name='EpisodeOfExactlyTPlusOne', unroll_length=3,
         lengths=(4,)),
    dict(testcase_name='EpisodeOfTPlusTwo', unroll_length=3, lengths=(5,)),
    dict(testcase_name='TwoTransitionEpisodes', unroll_length=2,
         lengths=(2, 2, 2)),
    dict(testcase_name='MixedLengths', unroll_length=2,
         lengths=(7, 2, 5, 3, 6)),
    dict(testcase_name='OneItemPerEpisode', unroll_length=6,
         lengths=(7, 3, 5)),
]


class GoalUnrollWriterTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    server_tables = []
    for t in _UNROLL_LENGTHS:
      queue = tables.make_tables(writer_lib.UnrollWriter.signature(
          _STEP_SPEC, t), queue_capacity=1000)[0]
      server_tables.append(queue.replace(name=_queue(t)))
      replay = tables.make_replay_table(her_writer.replay_signature(
          _STEP_SPEC, t, _GOAL_SPEC, _L), replay_size=1000)
      server_tables.append(replay.replace(name=_replay(t)))
    small = tables.make_replay_table(her_writer.replay_signature(
        _STEP_SPEC, 2, _GOAL_SPEC, _L), replay_size=_SMALL_REPLAY)
    server_tables.append(small.replace(name='small_replay'))
    cls.table_names = [table.name for table in server_tables]
    cls.server = reverb.Server(server_tables, port=None)
    cls.client = reverb.Client(f'localhost:{cls.server.port}')

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def tearDown(self):
    for name in self.table_names:
      self.client.reset(name)
    super().tearDown()

  def size(self, table):
    return self.client.server_info(timeout=5)[table].current_size

  def drain(self, table, fifo=True):
    """Every item of `table` (the queue in FIFO order, replay in any order)."""
    n = self.size(table)
    if not n:
      return []
    if fifo:
      samples = self.client.sample(table, n, emit_timesteps=False,
                                   unpack_as_table_signature=True)
      return [s.data for s in samples]
    # Uniform sampling with replacement: sample until every key was seen.
    items = {}
    for sample in self.client.sample(table, 400 * n, emit_timesteps=False,
                                     unpack_as_table_signature=True):
      items[sample.info.key] = sample.data
      if len(items) == n:
        break
    self.assertLen(items, n)
    return list(items.values())

  @parameterized.named_parameters(*TEST_CASES)
  def test_queue_every_unroll_once_and_replay_items_per_episode(
      self, unroll_length, lengths):
    stream, episodes = _stream(lengths)
    with her_writer.GoalUnrollWriter(
        self.client, unroll_length=unroll_length, max_episode_steps=_L,
        replay_table=_replay(unroll_length),
        queue_table=_queue(unroll_length)) as writer:
      _write(writer, episodes)

    # Queue: exactly the UnrollWriter items of the continuous stream, with
    # the policy observation only.
    queue = self.drain(_queue(unroll_length))
    expected_queue = (len(stream) - 1) // unroll_length
    self.assertLen(queue, expected_queue)
    self.assertEqual(writer.num_items, expected_queue)
    for k, item in enumerate(queue):
      window = stream[k * unroll_length:(k + 1) * unroll_length + 1]
      self.assertAllEqual(item['observation'],
                          [s['observation']['observation'] for s in window])
      self.assertAllEqual(item['prev_action'],
                          [s['prev_action'] for s in window])
      self.assertAllEqual(item['first'], [s['first'] for s in window])

    # Replay: the hand-built items of each episode, none spanning two.
    expected = [item for steps in episodes
                for item in _expected_replay_items(steps, unroll_length)]
    replay = self.drain(_replay(unroll_length), fifo=False)
    self.assertLen(replay, len(expected))
    self.assertEqual(writer.num_replay_items, len(expected))
    # core_state h holds the stream index of the item's step 0: unique.
    replay = {float(item['core_state'][0][0]): item for item in replay}
    for want in expected:
      got = replay[float(want['core_state'][0][0])]
      for field, value in want.items():
        tree.map_structure(
            lambda w, g, field=field: self.assertAllEqual(w, g, msg=field),
            value, got[field])
      mask = got['mask']
      goals = got['desired_goal'][mask]
      self.assertAllEqual(goals, np.repeat(goals[:1], len(goals), axis=0))
      offset, length = got['episode_offset'], got['episode_length']
      self.assertAllEqual(
          got['episode_achieved_goals'][offset:offset + mask.sum()],
          got['achieved_goal'][mask])
      self.assertLessEqual(offset, length - 2)

  def test_replay_never_blocks_the_actor(self):
    # Nothing samples the replay table; inserts beyond replay_size evict the
    # oldest items instead of blocking.
    _, episodes = _stream([5] * 12)
    start = time.monotonic()
    with her_writer.GoalUnrollWriter(
        self.client, unroll_length=2, max_episode_steps=_L,
        replay_table='small_replay', queue_table=_queue(2),
        max_in_flight_items=0) as writer:
      _write(writer, episodes)
    self.assertLess(time.monotonic() - start, 10.0)
    self.assertEqual(writer.num_replay_items, 24)
    self.assertEqual(self.size('small_replay'), _SMALL_REPLAY)
    offsets = sorted(int(i['episode_offset'])
                     for i in self.drain('small_replay', fifo=False))
    self.assertEqual(offsets, [0, 2])  # The last episode's two items.

  def test_queue_only_without_replay_table(self):
    stream, episodes = _stream([4, 3])
    with her_writer.GoalUnrollWriter(
        self.client, unroll_length=2, max_episode_steps=_L, replay_table=None,
        queue_table=_queue(2)) as writer:
      _write(writer, episodes)
    self.assertLen(self.drain(_queue(2)), (len(stream) - 1) // 2)
    self.assertEqual((writer.num_replay_items, self.size(_replay(2))), (0, 0))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, 'max_episode_steps'):
      her_writer.GoalUnrollWriter(self.client, unroll_length=2,
                                  max_episode_steps=_L + 1,
                                  replay_table=_replay(2),
                                  queue_table=_queue(2))
    with self.assertRaisesRegex(ValueError, 'replay_table'):
      her_writer.GoalUnrollWriter(self.client, unroll_length=2,
                                  max_episode_steps=_L, replay_table='nope',
                                  queue_table=_queue(2))
    writer = her_writer.GoalUnrollWriter(
        self.client, unroll_length=2, max_episode_steps=_L,
        replay_table=_replay(2), queue_table=_queue(2))
    _, episodes = _stream([_L + 1])
    with self.assertRaisesRegex(ValueError, 'max_episode_steps'):
      _write(writer, episodes)
    writer = her_writer.GoalUnrollWriter(
        self.client, unroll_length=2, max_episode_steps=_L,
        replay_table=_replay(2), queue_table=_queue(2))
    _, episodes = _stream([3, 3])
    writer.append(episodes[0][0])
    with self.assertRaisesRegex(ValueError, 'end_episode was not called'):
      writer.append(episodes[1][0])
    writer.close()


class _Recorder(dm_env.Environment):
  """Wraps an env and records every time step, per episode."""

  def __init__(self, env):
    self._env, self.episodes = env, []

  def reset(self):
    step = self._env.reset()
    self.episodes.append([step])
    return step

  def step(self, action):
    step = self._env.step(action)
    if step.first():
      self.episodes.append([step])
    else:
      self.episodes[-1].append(step)
    return step

  def observation_spec(self):
    return self._env.observation_spec()

  def action_spec(self):
    return self._env.action_spec()


class ActorWithGoalWriterTest(tf.test.TestCase):
  """agent/actor.py + GoalUnrollWriter + real bit flipping + real Reverb."""

  def test_actor_writes_true_episodes(self):
    t, num_envs, num_steps = 3, 2, 40
    server = reverb.Server([
        tables.make_tables(writer_lib.UnrollWriter.signature(_STEP_SPEC, t),
                           queue_capacity=1000)[0],
        tables.make_replay_table(her_writer.replay_signature(
            _STEP_SPEC, t, _GOAL_SPEC, _L), replay_size=1000)], port=None)
    try:
      client = reverb.Client(f'localhost:{server.port}')
      envs = [_Recorder(bit_flipping.make_bit_flipping(
          num_bits=_NUM_BITS, max_steps=_MAX_STEPS, seed=i))
              for i in range(num_envs)]
      network = networks.ImpalaNetwork(_NUM_BITS, torso='mlp',
                                       lstm_size=_LSTM)
      network.create_variables(_OBS_SPEC.shape, _OBS_SPEC.dtype)
      writers = [her_writer.GoalUnrollWriter(
          client, unroll_length=t, max_episode_steps=_L)
                 for _ in range(num_envs)]
      actor = actor_lib.Actor(envs=envs, network=network, writers=writers,
                              frame_skip=1, observation_key='observation')
      actor.run(num_steps=num_steps)
      actor.close()

      info = client.server_info(timeout=5)
      self.assertEqual(info[tables.QUEUE_TABLE].current_size,
                       num_envs * ((num_steps - 1) // t))
      # Finished episodes of all envs, x_0..x_N each.
      finished = [[s.observation for s in episode]
                  for env in envs for episode in env.episodes
                  if episode[-1].last()]
      self.assertGreater(len(finished), 2 * num_envs)
      num_items = sum((len(e) - 2) // t + 1 for e in finished)
      self.assertEqual(info[tables.REPLAY_TABLE].current_size, num_items)
      by_goals = {}
      for e in finished:
        key = np.stack([o['achieved_goal'] for o in e]).tobytes()
        by_goals[key] = e
      seen = set()
      for sample in client.sample(tables.REPLAY_TABLE, 300 * num_items,
                                  emit_timesteps=False,
                                  unpack_as_table_signature=True):
        if sample.info.key in seen:
          continue
        seen.add(sample.info.key)
        item = sample.data
        length, offset = int(item['episode_length']), int(
            item['episode_offset'])
        episode = by_goals[item['episode_achieved_goals'][:length].tobytes()]
        self.assertLen(episode, length)  # A true, complete episode.
        mask = item['mask']
        valid = int(mask.sum())
        self.assertEqual(valid, min(t + 1, length - offset))
        true_steps = episode[offset:offset + valid]
        self.assertAllEqual(item['observation'][:valid],
                            [o['observation'] for o in true_steps])
        self.assertAllEqual(item['desired_goal'][:valid],
                            [o['desired_goal'] for o in true_steps])
        # One goal per item, the episode's own.
        self.assertAllEqual(item['desired_goal'][:valid],
                            np.repeat([episode[0]['desired_goal']], valid, 0))
        self.assertEqual(bool(item['first'][0]), offset == 0)
      self.assertLen(seen, num_items)
    finally:
      server.stop()


if __name__ == '__main__':
  tf.test.main()
