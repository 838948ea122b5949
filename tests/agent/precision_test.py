"""bfloat16 compute: numerics against float32, XLA, strategies, resume, export.

Tolerances. bfloat16 keeps 8 significant bits (relative rounding 2^-9 ≈
0.2%); through the 15 bfloat16 conv layers the per-element errors of
logits and values stay within a few 1e-3 of float32 for logits of size
~0.1-1. Measured on this test's Pong batch, deep network, over 20 weight
seeds (AVX512-BF16 CPU): max |Δ| 1.8e-3-6.5e-3 for logits, 0.9e-3-4.6e-3 for
values, so their bound is 1e-2 absolute; the float32 LSTM's state inherits
the torso's rounding, up to 7.7e-3 for h and 1.4e-2 for c, so its bound is
2e-2. The tests seed the weights (seed 0), so a run is deterministic. XLA and the non-XLA graph compute the same float32 (or the
same bfloat16) ops in another order: 1e-5 in float32; in bfloat16 XLA's CPU
backend rounds intermediates differently, so the bfloat16 bound applies.
"""

import functools
import os
import tempfile

import numpy as np
import tensorflow as tf

from agent import export
from agent import learner as learner_lib
from agent import losses
from agent import networks
from agent import precision
from agent import types
from envs import atari
from launch import hardware
from tests import strategies
from tests.agent.learner_test import distribute

T, B = 5, 4
LSTM = 32
BF16_ATOL = 1e-2  # logits, values, loss terms (module docstring)
BF16_STATE_ATOL = 2e-2  # the LSTM state (module docstring)


def pong_observations(num: int, seed: int = 0) -> np.ndarray:
  """`num` real Pong observations, uint8 [num, 84, 84, 4], random actions."""
  env = atari.make_atari('pong', seed=seed)
  rng = np.random.RandomState(seed)
  frames = [env.reset().observation]
  while len(frames) < num:
    step = env.step(rng.randint(env.action_spec().num_values))
    frames.append(step.observation)
  env.close()
  return np.stack(frames)


@functools.lru_cache(maxsize=None)
def pong_unroll(seed: int = 0) -> types.Unroll:
  """A time-major Pong batch [T+1, B] of real frames; episode starts inside."""
  obs = pong_observations((T + 1) * B, seed).reshape((B, T + 1, 84, 84, 4))
  rng = np.random.RandomState(seed)
  first = rng.rand(T + 1, B) < 0.2
  return types.Unroll(
      observation=obs.transpose(1, 0, 2, 3, 4),
      first=first,
      reward=rng.choice([-1.0, 0.0, 0.0, 1.0], (T + 1, B)).astype(np.float32),
      discount=np.where(first, 0.0, 1.0).astype(np.float32),
      prev_action=rng.randint(0, 6, (T + 1, B)).astype(np.int32),
      action=rng.randint(0, 6, (T + 1, B)).astype(np.int32),
      behaviour_logits=rng.randn(T + 1, B, 6).astype(np.float32),
      task_id=np.zeros((T + 1, B), np.int32),
      core_state=(0.1 * rng.randn(B, LSTM).astype(np.float32),
                  0.1 * rng.randn(B, LSTM).astype(np.float32)))


def make_network(compute_dtype, torso='deep'):
  return networks.ImpalaNetwork(6, torso=torso, lstm_size=LSTM,
                                compute_dtype=compute_dtype)


def make_learner(strategy, compute_dtype, jit_compile=False,
                 checkpoint_dir=None, torso='deep'):
  return learner_lib.Learner(
      make_network=functools.partial(make_network, compute_dtype, torso),
      observation_spec=tf.TensorSpec([84, 84, 4], tf.uint8), dataset_fn=None,
      loss_fn=functools.partial(losses.impala_loss, reward_clip=1.0),
      strategy=strategy, agent_steps_per_step=T * B, frame_skip=4,
      total_frames=T * B * 4 * 1000, checkpoint_dir=checkpoint_dir,
      learning_rate=1e-3, jit_compile=jit_compile)


def copy_weights(source, target):
  for s, t in zip(source.network.variables, target.network.variables):
    t.assign(s.numpy())


class PrecisionTest(tf.test.TestCase):

  def test_policies(self):
    self.assertIsNone(precision.keras_policy('float32'))
    self.assertEqual(precision.keras_policy('bfloat16').name, 'mixed_bfloat16')
    with self.assertRaisesRegex(ValueError, "one of \\('float32', 'bfloat16'\\)"
                                "; got 'float16'"):
      precision.keras_policy('float16')

  def test_bfloat16_network_matches_float32_on_real_pong_frames(self):
    tf.keras.utils.set_random_seed(0)
    n32, n16 = make_network('float32'), make_network('bfloat16')
    for n in (n32, n16):
      n.create_variables((84, 84, 4))
    for s, t in zip(n32.variables, n16.variables):
      t.assign(s.numpy())
    # One checkpoint format: the same float32 variables, same names.
    self.assertEqual([(v.name, v.dtype) for v in n32.variables],
                     [(v.name, v.dtype) for v in n16.variables])
    self.assertTrue(all(v.dtype == tf.float32 for v in n16.variables))
    unroll = pong_unroll()
    inputs = learner_lib.network_inputs(unroll)
    (o32, s32), (o16, s16) = n32.unroll(*inputs), n16.unroll(*inputs)
    for out in (o16.policy_logits, o16.values, *s16):
      self.assertEqual(out.dtype, tf.float32)  # float32 at the boundary
    self.assertAllClose(o32.policy_logits, o16.policy_logits, atol=BF16_ATOL,
                        rtol=0)
    self.assertAllClose(o32.values, o16.values, atol=BF16_ATOL, rtol=0)
    # The (float32) LSTM's state inherits the torso's bfloat16 rounding.
    self.assertAllClose(s32, s16, atol=BF16_STATE_ATOL, rtol=0)
    # Not trivially equal: bfloat16 really computed (rounding is visible).
    self.assertGreater(np.abs(o32.policy_logits - o16.policy_logits).max(),
                       1e-6)

  def test_bfloat16_learner_step_matches_float32(self):
    tf.keras.utils.set_random_seed(0)  # the weights; the batch is fixed too
    strategy = tf.distribute.get_strategy()
    l32 = make_learner(strategy, 'float32')
    l16 = make_learner(strategy, 'bfloat16')
    copy_weights(l32, l16)
    batch = distribute(strategy, pong_unroll())
    loss32, grads32 = l32.gradients(batch)
    loss16, grads16 = l16.gradients(batch)
    self.assertAllClose(loss32, loss16, rtol=1e-2, atol=BF16_ATOL)
    # The gradients point the same way: cosine over all parameters. Over 12
    # weight seeds it was 0.995-0.998 on an AVX512-BF16 CPU, and 0.989 on
    # the CI machine's CPU (its oneDNN bfloat16 kernels round and accumulate
    # differently), so the bound is 0.98.
    flat = lambda gs: np.concatenate([g.ravel() for g in gs])
    g32, g16 = flat(grads32), flat(grads16)
    cosine = g32 @ g16 / (np.linalg.norm(g32) * np.linalg.norm(g16))
    self.assertGreater(cosine, 0.98)
    self.assertAllClose(np.linalg.norm(g16), np.linalg.norm(g32), rtol=5e-2)
    m32, m16 = l32.step_on(batch), l16.step_on(batch)
    for key in ('loss', 'policy_loss', 'baseline_loss', 'entropy_loss'):
      self.assertAllClose(m32[key], m16[key], rtol=1e-2, atol=BF16_ATOL,
                          msg=key)

  def _xla_equals_graph(self, strategy, compute_dtype, torso):
    """One step with and without XLA from the same weights and batch.

    The shallow torso keeps the suite fast (XLA compiles the deep one's
    backward pass in ~10 s per learner); networks_test compiles the deep
    torso's forward pass with XLA.

    float32: loss and weights after the step agree to 1e-5. bfloat16: XLA's
    CPU backend rounds bfloat16 intermediates differently from the oneDNN
    kernels (the loss differed by ~0.2% with the deep torso), so the bound
    is the bfloat16 one for the loss and the gradients (cosine), and one
    RMSProp step for weights.
    """
    graph = make_learner(strategy, compute_dtype, torso=torso)
    xla = make_learner(strategy, compute_dtype, jit_compile=True, torso=torso)
    copy_weights(graph, xla)
    batch = distribute(strategy, pong_unroll())
    before = graph.get_variables()
    if compute_dtype == 'bfloat16':
      (loss_g, grads_g), (loss_x, grads_x) = (graph.gradients(batch),
                                              xla.gradients(batch))
      self.assertAllClose(loss_g, loss_x, rtol=1e-2, atol=BF16_ATOL)
      flat = lambda gs: np.concatenate([g.ravel() for g in gs])
      g_g, g_x = flat(grads_g), flat(grads_x)
      self.assertGreater(
          g_g @ g_x / (np.linalg.norm(g_g) * np.linalg.norm(g_x)), 0.99)
    m_graph, m_xla = graph.step_on(batch), xla.step_on(batch)
    tolerance = 1e-5 if compute_dtype == 'float32' else 1e-2
    self.assertAllClose(m_graph['loss'], m_xla['loss'], atol=tolerance,
                        rtol=tolerance)
    # bfloat16: one RMSProp step moves a weight by at most lr/sqrt(1-ρ) = 0.01.
    weight_atol = 1e-5 if compute_dtype == 'float32' else 2e-2
    moved = 0.0
    for v0, vg, vx in zip(before, graph.get_variables(), xla.get_variables()):
      self.assertAllClose(vg, vx, atol=weight_atol, rtol=0)
      moved = max(moved, np.abs(vg - v0).max())
    self.assertGreater(moved, 1e-4)  # the step did change the weights

  def test_xla_step_equals_graph_step_default_strategy(self):
    for compute_dtype in precision.COMPUTE_DTYPES:
      with self.subTest(compute_dtype):
        self._xla_equals_graph(tf.distribute.get_strategy(), compute_dtype,
                               'shallow')

  def test_xla_step_equals_graph_step_two_replicas(self):
    strategy = strategies.two_replica_strategy()
    for compute_dtype in precision.COMPUTE_DTYPES:
      with self.subTest(compute_dtype):
        self._xla_equals_graph(strategy, compute_dtype, 'shallow')

  def test_resume_across_dtypes_restores_exactly_and_continues(self):
    strategy = tf.distribute.get_strategy()
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    batch = distribute(strategy, pong_unroll())
    # The shallow torso: the format does not depend on the torso, and three
    # deep learners would trace for ~10 s.
    first = make_learner(strategy, 'float32', checkpoint_dir=directory,
                         torso='shallow')
    for _ in range(2):
      first.step_on(batch)
    first.save()

    def state(learner):  # network, RMSProp slots, counters
      return ([v.numpy() for v in learner.network.variables]
              + [v.numpy() for v in learner._optimizer.variables]
              + [learner.learner_steps, learner.agent_steps])

    saved = state(first)
    second = make_learner(strategy, 'bfloat16', checkpoint_dir=directory,
                          torso='shallow')
    self.assertTrue(second.restore())
    for a, b in zip(saved, state(second)):
      self.assertAllEqual(a, b)  # exact: one float32 format
    second.step_on(batch)
    self.assertEqual(second.learner_steps, 3)
    second.save()
    saved = state(second)
    third = make_learner(strategy, 'float32', checkpoint_dir=directory,
                         torso='shallow')
    self.assertTrue(third.restore())
    for a, b in zip(saved, state(third)):
      self.assertAllEqual(a, b)
    third.step_on(batch)
    self.assertEqual(third.learner_steps, 4)

  def test_bfloat16_policy_exports_float32_contract(self):
    network = make_network('bfloat16')
    network.create_variables((84, 84, 4))
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'policy')
    export.export_policy(
        network, path, observation_spec=((84, 84, 4), tf.uint8),
        metadata=dict(games=['pong'], action_set='minimal',
                      action_meanings=['NOOP'] * 6, num_actions=6,
                      frames_trained=0, agent_steps_trained=0))
    policy = tf.saved_model.load(path)
    obs = pong_observations(2)
    state = policy.initial_state(2)
    out = policy.step(observation=obs, prev_action=tf.zeros([2], tf.int32),
                      prev_reward=tf.zeros([2]), first=tf.ones([2], tf.bool),
                      task_id=tf.zeros([2], tf.int32), state=state)
    self.assertEqual(out['logits'].dtype, tf.float32)
    self.assertEqual(out['value'].dtype, tf.float32)
    self.assertEqual(out['state'][0].dtype, tf.float32)
    expected, _ = network.step(obs, tf.zeros([2], tf.int32), tf.zeros([2]),
                               tf.ones([2], tf.bool), tf.zeros([2], tf.int32),
                               network.initial_state(2))
    # The SavedModel runs a grappler-optimised graph: in bfloat16 its fused
    # Conv2D+BiasAdd(+Relu/Add) kernels round once where eager rounds after
    # every op (measured max |Δ| 8.5e-4 on these logits of size ~0.05), so
    # the bfloat16 bound of the module docstring applies.
    self.assertAllClose(out['logits'], expected.policy_logits,
                        atol=BF16_ATOL, rtol=0)


class HardwareTest(tf.test.TestCase):

  def _cpuinfo(self, flags):
    path = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'cpuinfo')
    with open(path, 'w') as f:
      f.write(f'processor\t: 0\nflags\t\t: fpu sse2 {flags}\n')
    return path

  def test_cpu_flags(self):
    self.assertEqual(hardware.cpu_bfloat16_flags(
        self._cpuinfo('avx512f avx512_bf16 amx_bf16 amx_tile')),
                     ('AMX-BF16', 'AVX512-BF16'))
    self.assertEqual(hardware.cpu_bfloat16_flags(self._cpuinfo('avx2')), ())
    self.assertEqual(hardware.cpu_bfloat16_flags('/nonexistent/cpuinfo'), ())

  def test_explicit_and_bad_choices(self):
    self.assertEqual(hardware.resolve_compute_dtype('float32')[0], 'float32')
    self.assertEqual(hardware.resolve_compute_dtype('bfloat16')[0], 'bfloat16')
    with self.assertRaisesRegex(
        ValueError, "compute_dtype must be one of \\('auto', 'float32', "
        "'bfloat16'\\); got 'fp16'"):
      hardware.resolve_compute_dtype('fp16')

  def test_auto_follows_this_cpu(self):
    dtype, reason = hardware.resolve_compute_dtype('auto')
    expected = ('bfloat16' if 'AMX-BF16' in hardware.cpu_bfloat16_flags()
                else 'float32')
    self.assertEqual(dtype, expected)
    self.assertIn('auto: CPU', reason)


if __name__ == '__main__':
  tf.test.main()
