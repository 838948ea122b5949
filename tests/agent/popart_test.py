"""Tests for agent/popart.py against the loops of tests/reference.py."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from agent import popart
from tests import reference
from tests import strategies

VARIANTS = ('eager', 'function', 'jit')
STAT_FIELDS = ('mu', 'sigma', 'nu')


def _run(variant, fn, *args, **kwargs):
  """Calls fn(*args, **kwargs) eagerly, under tf.function or under XLA."""
  if variant == 'eager':
    return fn(*args, **kwargs)
  wrapped = tf.function(lambda *a: fn(*a, **kwargs),
                        jit_compile=(variant == 'jit'))
  return wrapped(*args)


def _compiled(variant, fn):
  """fn itself (eager) or one tf.function wrapping it, reused across calls."""
  if variant == 'eager':
    return fn
  return tf.function(fn, jit_compile=(variant == 'jit'))


def _numpy_state(state):
  return {field: np.asarray(getattr(state, field)) for field in STAT_FIELDS}


def _state(mu, sigma, nu, dtype=np.float64):
  return popart.PopArtState(*(np.asarray(x, dtype) for x in (mu, sigma, nu)))


def _random_state(rng, num_tasks, dtype=np.float64):
  """Consistent non-trivial statistics: ν = σ² + μ², σ ∈ [0.5, 3]."""
  mu = rng.normal(size=num_tasks) * 5.0
  sigma = rng.uniform(0.5, 3.0, num_tasks)
  return _state(mu, sigma, sigma**2 + mu**2, dtype)


class PopArtTest(tf.test.TestCase, parameterized.TestCase):

  def assertStateEqual(self, state, expected):
    for field in STAT_FIELDS:
      self.assertAllEqual(getattr(state, field), expected[field], msg=field)

  def assertStateClose(self, state, expected, rtol):
    for field in STAT_FIELDS:
      self.assertAllClose(getattr(state, field), expected[field], rtol=rtol,
                          atol=0., msg=field)

  @parameterized.parameters(tf.float32, tf.float64)
  def test_init_state(self, dtype):
    state = popart.init_state(3, dtype)
    self.assertIsInstance(state, popart.PopArtState)
    self.assertStateEqual(state, dict(mu=[0., 0., 0.], sigma=[1., 1., 1.],
                                      nu=[1., 1., 1.]))
    for field in STAT_FIELDS:
      self.assertEqual(getattr(state, field).dtype, dtype)
    self.assertEqual(popart.init_state(2).mu.dtype, tf.float32)

  @parameterized.product(
      variant=VARIANTS, shape=((24,), (4, 6), (3, 4, 2)))
  def test_statistics_match_reference(self, variant, shape):
    # Five successive updates with σ_lb = 0.5, σ_ub = 5; task 0 has constant
    # targets (σ clipped to σ_lb), task 1 spread-out ones (σ clipped to σ_ub),
    # task 2 in between, task 3 is missing from every other batch.
    rng = np.random.default_rng(len(shape))
    kwargs = dict(step_size=0.03, scale_lb=0.5, scale_ub=5.0)
    mu = np.array([1.4, -4., 0., 1.])
    variance = np.array([0.01, 100., 4., 1.])  # ν − μ²
    state = _state(mu, np.clip(np.sqrt(variance), 0.5, 5.), variance + mu**2)
    expected = _numpy_state(state)
    clipped_low = clipped_high = unclipped = False
    update = _compiled(variant, lambda s, v, i: popart.update_statistics(
        s, v, i, **kwargs))
    for step in range(5):
      task_ids = rng.integers(0, 3 + step % 2, size=shape).astype(np.int32)
      scale = np.array([0., 20., 2., 1.])[task_ids]
      offset = np.array([1.5, -4., 3., -2.])[task_ids]
      targets = offset + scale * rng.normal(size=shape)
      expected = reference.popart_update_statistics(
          **expected, targets=targets, task_ids=task_ids, **kwargs)
      clipped_low |= expected['sigma'][0] == 0.5
      clipped_high |= expected['sigma'][1] == 5.0
      unclipped |= 0.5 < expected['sigma'][2] < 5.
      state = update(state, targets, task_ids)
      self.assertEqual(state.mu.dtype, tf.float64)
      self.assertStateClose(state, expected, rtol=1e-12)
    # The inputs straddle both bounds.
    self.assertTrue(clipped_low and clipped_high and unclipped)

  def test_float32_statistics_match_reference(self):
    rng = np.random.default_rng(3)
    state = popart.init_state(3)
    expected = _numpy_state(state)
    for _ in range(10):
      task_ids = rng.integers(0, 3, size=(5, 8)).astype(np.int32)
      targets = (np.array([0.1, 100., -3e3])[task_ids] *
                 (1. + rng.normal(size=(5, 8)))).astype(np.float32)
      expected = reference.popart_update_statistics(
          **expected, targets=targets, task_ids=task_ids, step_size=0.01)
      state = popart.update_statistics(state, targets, task_ids, 0.01)
      self.assertEqual(state.mu.dtype, tf.float32)
      self.assertStateClose(state, expected, rtol=1e-5)

  @parameterized.parameters(*VARIANTS)
  def test_update_statistics_is_apply_of_increments(self, variant):
    rng = np.random.default_rng(4)
    state = _random_state(rng, 3)
    targets = rng.normal(size=(6, 5)) * 4.
    task_ids = np.repeat([[0], [2]], 3, axis=0) * np.ones((1, 5), np.int32)
    d_mu, d_nu = _run(variant, popart.increments, state, targets, task_ids,
                      0.01)
    # Δμ_i = β Σ (v_s − μ_i); task 1 is absent, so its increments are 0.
    for i in range(3):
      in_task = task_ids == i
      self.assertAllClose(
          d_mu[i], 0.01 * np.sum(targets[in_task] - state.mu[i]),
          rtol=1e-12, atol=0.)
      self.assertAllClose(
          d_nu[i], 0.01 * np.sum(targets[in_task]**2 - state.nu[i]),
          rtol=1e-12, atol=0.)
    self.assertEqual(float(d_mu[1]), 0.)
    self.assertEqual(float(d_nu[1]), 0.)
    applied = popart.apply_increments(state, d_mu, d_nu, 0.1, 10.)
    updated = popart.update_statistics(state, targets, task_ids, 0.01, 0.1,
                                       10.)
    self.assertStateEqual(applied, _numpy_state(updated))

  @parameterized.product(variant=VARIANTS, dtype=(np.float64, np.float32))
  def test_absent_task_keeps_statistics_exactly(self, variant, dtype):
    rng = np.random.default_rng(5)
    state = popart.init_state(3, dtype)
    update = _compiled(variant, lambda s, v, i: popart.update_statistics(
        s, v, i, step_size=0.02))
    preserve = _compiled(variant, popart.preserve_outputs)
    kernel = rng.normal(size=(8, 3)).astype(dtype)
    bias = rng.normal(size=3).astype(dtype)
    for step in range(6):
      # Steps 0-2 see every task; later steps never see task 1.
      ids = rng.integers(0, 3, size=(4, 5)) if step < 3 else (
          2 * rng.integers(0, 2, size=(4, 5)))
      targets = np.array([10., -7., 0.3], dtype)[ids] * (
          1. + rng.normal(size=ids.shape).astype(dtype))
      before = _numpy_state(state)
      state = update(state, targets, ids.astype(np.int32))
      new_kernel, new_bias = preserve(kernel, bias, popart.PopArtState(
          *before.values()), state)
      after = _numpy_state(state)
      if step >= 3:
        for field in STAT_FIELDS:
          self.assertEqual(after[field][1], before[field][1], msg=field)
          self.assertNotEqual(after[field][0], before[field][0], msg=field)
          self.assertNotEqual(after[field][2], before[field][2], msg=field)
        # The absent task's head column is returned bit for bit.
        self.assertAllEqual(new_kernel[:, 1], kernel[:, 1])
        self.assertEqual(new_bias[1], bias[1])
      kernel, bias = np.asarray(new_kernel), np.asarray(new_bias)
    self.assertNotAllClose(after['mu'][1], 0.)  # Task 1 did move at first.

  @parameterized.product(variant=VARIANTS, dtype=(np.float64, np.float32))
  def test_outputs_preserved_over_random_updates(self, variant, dtype):
    # σ_i′ (hᵀW_i′ + b_i′) + μ_i′ = σ_i (hᵀW_i + b_i) + μ_i (SPEC §5), over
    # 30 updates with random task mixes and target scales from 1e-2 to 1e4.
    rng = np.random.default_rng(6)
    num_tasks, num_hidden = 4, 16
    hidden = rng.normal(size=(32, num_hidden))
    kernel = rng.normal(size=(num_hidden, num_tasks)).astype(dtype)
    bias = rng.normal(size=num_tasks).astype(dtype)
    state = popart.init_state(num_tasks, dtype)
    initial = reference.popart_value_outputs(hidden, kernel, bias,
                                             state.mu, state.sigma)
    offsets = np.array([0.05, -300., 2e4, 1.])
    scales = np.array([1e-2, 50., 1e3, 1.])

    def step(state, kernel, bias, targets, task_ids):
      new_state = popart.update_statistics(state, targets, task_ids, 0.02)
      kernel, bias = popart.preserve_outputs(kernel, bias, state, new_state)
      return new_state, kernel, bias

    step = _compiled(variant, step)
    missing, moved = 0, 0.
    for _ in range(30):
      tasks = rng.choice(num_tasks, size=rng.integers(1, num_tasks + 1),
                         replace=False)  # A random subset of the tasks.
      missing += len(tasks) < num_tasks
      task_ids = rng.choice(tasks, size=(5, 8)).astype(np.int32)
      targets = (offsets[task_ids] + scales[task_ids] *
                 rng.normal(size=(5, 8))).astype(dtype)
      old_kernel, old_bias = kernel, bias
      state, kernel, bias = step(state, kernel, bias, targets, task_ids)
      kernel, bias = np.asarray(kernel), np.asarray(bias)
      self.assertEqual(kernel.dtype, dtype)
      outputs = reference.popart_value_outputs(hidden, kernel, bias,
                                               state.mu, state.sigma)
      if dtype == np.float64:
        self.assertAllClose(outputs, initial, rtol=1e-5, atol=0.)
      else:
        # float32 holds μ′ and b′ to ~6e-8 relative, so the unnormalised output
        # is exact to that relative to the task's statistics, |μ′| + σ′.
        scale = np.maximum(np.abs(initial),
                           np.abs(state.mu) + np.asarray(state.sigma))
        self.assertAllLessEqual(np.abs(outputs - initial) / scale, 1e-5)
      # Without POP the outputs would move, so the check above can fail.
      unpreserved = reference.popart_value_outputs(
          hidden, old_kernel, old_bias, state.mu, state.sigma)
      moved = max(moved, np.max(np.abs(unpreserved - initial) /
                                np.maximum(np.abs(initial), 1.)))
    self.assertGreater(moved, 1.)
    self.assertGreater(missing, 10)
    sigma = np.asarray(state.sigma)
    self.assertGreater(sigma.max() / sigma.min(), 1e3)  # Scales differ a lot.
    self.assertGreater(np.abs(np.asarray(state.mu)).max(), 1e4)

  def test_preserve_outputs_matches_reference(self):
    rng = np.random.default_rng(7)
    old, new = _random_state(rng, 3), _random_state(rng, 3)
    kernel, bias = rng.normal(size=(5, 3)), rng.normal(size=3)
    new_kernel, new_bias = popart.preserve_outputs(kernel, bias, old, new)
    expected = reference.popart_preserve_outputs(
        kernel, bias, old.mu, old.sigma, new.mu, new.sigma)
    self.assertAllClose(new_kernel, expected['kernel'], rtol=1e-12, atol=0.)
    self.assertAllClose(new_bias, expected['bias'], rtol=1e-12, atol=0.)

  @parameterized.parameters(np.float64, np.float32)
  def test_preserve_outputs_exact_for_unchanged_tasks(self, dtype):
    # fl(fl(σ b)/σ) is often b ± 1 ulp; columns whose μ and σ did not change
    # (tasks absent from the batch) must come back bit for bit.
    rng = np.random.default_rng(12)
    old = _random_state(rng, 64, dtype)
    changed = np.arange(64) % 2 == 0
    new = popart.PopArtState(np.where(changed, old.mu + 1., old.mu),
                             np.where(changed, old.sigma * 2., old.sigma),
                             old.nu)
    kernel = rng.normal(size=(3, 64)).astype(dtype)
    bias = rng.normal(size=64).astype(dtype)
    new_kernel, new_bias = (np.asarray(x) for x in popart.preserve_outputs(
        kernel, bias, old, new))
    self.assertAllEqual(new_kernel[:, ~changed], kernel[:, ~changed])
    self.assertAllEqual(new_bias[~changed], bias[~changed])
    self.assertAllClose(new_bias[changed],
                        (bias[changed] - 1. / old.sigma[changed]) / 2.,
                        rtol=1e-5)

  @parameterized.product(variant=VARIANTS, dtype=(np.float64, np.float32))
  def test_sigma_clipped_for_constant_targets(self, variant, dtype):
    # ν − μ² → 0, so σ → σ_lb = 1e-4 (SPEC default). In float32, ν − μ² ends
    # as rounding noise of about ε ν, either sign: σ ≤ sqrt(4 ε ν).
    update = _compiled(variant, lambda s, v, i: popart.update_statistics(
        s, v, i, step_size=0.025))
    state = popart.init_state(2, dtype)
    task_ids = np.tile(np.int32([0, 1]), (5, 4))  # [5, 8], 20 per task.
    targets = np.where(task_ids == 0, 0.7, -1234.5).astype(dtype)
    for _ in range(50):
      state = update(state, targets, task_ids)
      self.assertAllInRange(state.sigma, 1e-4, 1e6)
    self.assertAllClose(state.mu, [0.7, -1234.5], rtol=1e-6)
    if dtype == np.float64:
      self.assertAllEqual(state.sigma, [1e-4, 1e-4])
    else:
      noise = np.sqrt(4. * np.finfo(np.float32).eps * np.asarray(state.nu))
      self.assertAllLessEqual(state.sigma - np.maximum(1e-4, noise), 0.)

  @parameterized.parameters(*VARIANTS)
  def test_sigma_clipped_for_huge_targets(self, variant):
    # ±1e8 (variance 1e16, σ would be 1e8) and ±1e12 clip at σ_ub = 1e6 with
    # the SPEC defaults in float32; small targets stay unclipped.
    update = _compiled(variant, lambda s, v, i: popart.update_statistics(
        s, v, i, step_size=0.025))
    state = popart.init_state(3)
    task_ids = np.tile(np.int32([0, 1, 2]), (4, 5))  # [4, 15], 20 per task.
    signs = np.where(np.arange(4) % 2 == 0, 1., -1.)[:, None]  # Half each.
    targets = (signs * np.array([1e8, 1e12, 2.])[task_ids]).astype(np.float32)
    for step in range(40):
      state = update(state, targets, task_ids)
      self.assertAllInRange(state.sigma, 1e-4, 1e6)
      if step >= 1:
        self.assertAllEqual(state.sigma[:2], np.float32([1e6, 1e6]))
    self.assertAllClose(state.sigma[2], 2., rtol=1e-3)
    self.assertAllClose(state.nu[:2], [1e16, 1e24], rtol=1e-3)

  @parameterized.parameters('eager', 'function')
  def test_non_finite_statistics_raise(self, variant):
    # (1e20)² overflows float32: raise rather than carry inf/NaN.
    targets = np.full((2, 3), 1e20, np.float32)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'PopArt nu'):
      _run(variant, popart.update_statistics, popart.init_state(2), targets,
           np.zeros((2, 3), np.int32))
    for d_mu, d_nu, field in (([np.inf, 0.], [0., 0.], 'mu'),
                              ([0., 0.], [0., np.nan], 'nu')):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  f'PopArt {field}'):
        _run(variant, popart.apply_increments, popart.init_state(2),
             np.float32(d_mu), np.float32(d_nu))

  @parameterized.product(variant=VARIANTS, shape=((7,), (5, 6), (2, 3, 4)))
  def test_normalize_unnormalize(self, variant, shape):
    rng = np.random.default_rng(8)
    state = _random_state(rng, 3, np.float32)
    task_ids = rng.integers(0, 3, size=shape).astype(np.int32)
    values = (rng.normal(size=shape) * 10.).astype(np.float32)
    normalized = _run(variant, popart.normalize, state, values, task_ids)
    self.assertEqual(normalized.shape, shape)
    self.assertEqual(normalized.dtype, tf.float32)
    self.assertAllClose(
        normalized, (values - state.mu[task_ids]) / state.sigma[task_ids],
        rtol=1e-6, atol=1e-6)
    restored = _run(variant, popart.unnormalize, state, normalized, task_ids)
    self.assertAllClose(restored, values, rtol=1e-5, atol=1e-5)
    unnormalized = _run(variant, popart.unnormalize, state, values, task_ids)
    self.assertAllClose(
        unnormalized, state.sigma[task_ids] * values + state.mu[task_ids],
        rtol=1e-6, atol=1e-6)
    self.assertAllClose(
        _run(variant, popart.normalize, state, unnormalized, task_ids),
        values, rtol=1e-5, atol=1e-5)

  @parameterized.parameters(False, True)
  def test_dynamic_shapes(self, jit_compile):
    state_spec = popart.PopArtState(*[tf.TensorSpec([3], tf.float32)] * 3)
    specs = [state_spec, tf.TensorSpec([None, None], tf.float32),
             tf.TensorSpec([None, None], tf.int32)]
    update = tf.function(popart.update_statistics, input_signature=specs,
                         jit_compile=jit_compile)
    normalize = tf.function(popart.normalize, input_signature=specs,
                            jit_compile=jit_compile)
    rng = np.random.default_rng(9)
    state = popart.init_state(3)
    for shape in ((3, 2), (9, 4), (1, 1)):
      task_ids = rng.integers(0, 3, size=shape).astype(np.int32)
      targets = rng.normal(size=shape).astype(np.float32)
      expected = reference.popart_update_statistics(
          *_numpy_state(state).values(), targets, task_ids)
      self.assertAllClose(
          normalize(state, targets, task_ids),
          popart.normalize(state, targets, task_ids), rtol=1e-6, atol=1e-6)
      state = update(state, targets, task_ids)
      self.assertStateClose(state, expected, rtol=1e-5)

  def test_gradients(self):
    rng = np.random.default_rng(10)
    state = popart.PopArtState(*(tf.constant(x) for x in _random_state(rng, 2)))
    values = tf.constant(rng.normal(size=(3, 4)))
    task_ids = rng.integers(0, 2, size=(3, 4)).astype(np.int32)
    kernel = tf.constant(rng.normal(size=(5, 2)))
    bias = tf.constant([1., 2.], tf.float64)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([values, kernel, bias, *state])
      normalized = popart.normalize(state, values, task_ids)
      unnormalized = popart.unnormalize(state, values, task_ids)
      new_state = popart.update_statistics(state, values, task_ids, 0.01)
      d_mu, d_nu = popart.increments(state, values, task_ids, 0.01)
      new_kernel, new_bias = popart.preserve_outputs(kernel, bias, state,
                                                     new_state)
    sigma = state.sigma.numpy()[task_ids]
    # ∂ñ/∂v = 1/σ_i, ∂v/∂n = σ_i; the statistics get no gradient.
    self.assertAllClose(tape.gradient(normalized, values), 1. / sigma)
    self.assertAllClose(tape.gradient(unnormalized, values), sigma)
    for output in (normalized, unnormalized, new_kernel, new_bias):
      self.assertEqual(tape.gradient(output, list(state)), [None] * 3)
    for output in (*new_state, d_mu, d_nu):
      self.assertIsNone(tape.gradient(output, values))
    self.assertAllClose(tape.gradient(new_kernel, kernel),
                        np.tile(state.sigma / new_state.sigma, (5, 1)))

  def test_two_replicas_all_reduce_matches_single_update(self):
    # Each replica: increments on its half of the batch, all-reduce (SUM) in
    # the replica context, apply to its own copy of the state. Over three
    # steps both copies stay bit-identical and equal the single-replica
    # update_statistics on the whole batch.
    devices = tf.config.list_logical_devices('CPU')
    if len(devices) < 2:
      self.fail('tests/conftest.py must configure two logical CPUs; got '
                f'{devices}')
    strategy = strategies.two_replica_strategy()
    self.assertEqual(strategy.num_replicas_in_sync, 2)
    rng = np.random.default_rng(11)
    initial = _random_state(rng, 4, np.float32)
    traced_devices = set()

    def replica_fn(state, targets, task_ids, all_reduce):
      d_mu, d_nu = popart.increments(state, targets, task_ids, 0.01)
      traced_devices.add(tf.DeviceSpec.from_string(d_mu.device).device_index)
      if all_reduce:
        context = tf.distribute.get_replica_context()
        d_mu, d_nu = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                        [d_mu, d_nu])
      return popart.apply_increments(state, d_mu, d_nu)

    @tf.function
    def distributed_step(state, targets, task_ids, all_reduce):
      return strategy.run(replica_fn,
                          args=(state, targets, task_ids, all_reduce))

    def split(array):  # [T, 2B] -> replica r gets columns rB:(r+1)B, [T, B].
      def value_fn(context):
        replica = context.replica_id_in_sync_group
        return array[:, 6 * replica:6 * (replica + 1)]  # [T, B]
      return strategy.experimental_distribute_values_from_function(value_fn)

    def local_states(state):
      results = tf.nest.map_structure(strategy.experimental_local_results,
                                      state)
      return [popart.PopArtState(*(field[r] for field in results))
              for r in range(2)]

    single = distributed = initial
    for _ in range(3):
      # Task 2 only in replica 1's half, task 3 in neither.
      task_ids = np.concatenate(
          [rng.integers(0, 2, size=(5, 6)), rng.integers(0, 3, size=(5, 6))],
          axis=1).astype(np.int32)  # [T, 2B]
      targets = (np.array([1., -50., 400., 7.])[task_ids] *
                 (1. + rng.normal(size=(5, 12)))).astype(np.float32)
      local_only = local_states(distributed_step(
          distributed, split(targets), split(task_ids), False))
      single = popart.update_statistics(single, targets, task_ids, 0.01)
      distributed = distributed_step(distributed, split(targets),
                                     split(task_ids), True)
      replica_0, replica_1 = local_states(distributed)
      self.assertStateEqual(replica_1, _numpy_state(replica_0))  # Bitwise.
      self.assertStateClose(replica_0, _numpy_state(single), rtol=1e-5)
      self.assertStateEqual(  # Task 3 is absent everywhere.
          popart.PopArtState(*(x[3:] for x in replica_0)),
          {k: v[3:] for k, v in initial._asdict().items()})
      # Without the all-reduce each replica sees only its half: they differ,
      # so the checks above can fail.
      self.assertNotAllClose(local_only[0].mu, local_only[1].mu)
      self.assertNotAllClose(local_only[1].mu, single.mu)
    self.assertEqual(traced_devices, {0, 1})  # One replica per logical CPU.

  @parameterized.named_parameters(
      ('values_rank', 'normalize', dict(values=np.zeros(4)), 'values.*rank'),
      ('values_shape', 'normalize', dict(values=np.zeros((4, 2))),
       'values.*incompatible'),
      ('task_ids_float', 'normalize', dict(task_ids=np.zeros((4, 3))),
       'task_ids.*integer'),
      ('normalized_rank', 'unnormalize', dict(normalized=np.zeros((4, 3, 1))),
       'normalized.*rank'),
      ('targets_rank', 'update_statistics', dict(targets=np.zeros(12)),
       'targets.*rank'),
      ('targets_shape', 'increments', dict(targets=np.zeros((3, 4))),
       'targets.*incompatible'),
      ('state_rank', 'normalize', dict(state=popart.PopArtState(
          np.zeros((2, 1)), np.ones((2, 1)), np.ones((2, 1)))),
       'state.mu.*rank 1'),
      ('state_shapes', 'update_statistics', dict(state=popart.PopArtState(
          np.zeros(2), np.ones(3), np.ones(2))), 'state.sigma.*incompatible'),
      ('state_type', 'normalize', dict(state=(np.zeros(2),) * 3),
       'state.*PopArtState'),
      ('state_int', 'unnormalize', dict(state=popart.PopArtState(
          *[np.zeros(2, np.int32)] * 3)), 'state.mu.*floating'),
      ('step_size_negative', 'update_statistics', dict(step_size=-0.1),
       r'step_size.*\[0, 1\]'),
      ('step_size_above_one', 'increments', dict(step_size=1.5),
       r'step_size.*\[0, 1\]'),
      ('step_size_rank', 'increments', dict(step_size=np.ones(2)),
       'step_size.*rank 0'),
      ('scale_lb_zero', 'update_statistics', dict(scale_lb=0.),
       'scale_lb.*> 0'),
      ('scale_ub_negative', 'apply_increments', dict(scale_ub=-1.),
       'scale_ub.*> 0'),
      ('scale_lb_above_ub', 'update_statistics',
       dict(scale_lb=2., scale_ub=1.), 'scale_lb.*<= .scale_ub'),
  )
  def test_bad_inputs_raise(self, function, overrides, regex):
    args = dict(state=_state([0., 1.], [1., 2.], [1., 5.]),
                values=np.zeros((4, 3)), normalized=np.zeros((4, 3)),
                targets=np.zeros((4, 3)), task_ids=np.zeros((4, 3), np.int32),
                d_mu=np.zeros(2), d_nu=np.zeros(2), step_size=0.1,
                scale_lb=1e-4, scale_ub=1e6)
    args.update(overrides)
    fn = getattr(popart, function)
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    with self.assertRaisesRegex(ValueError, regex):
      fn(**{k: v for k, v in args.items() if k in names})

  @parameterized.named_parameters(
      ('kernel_rank_1', np.zeros(3), np.zeros(3), 'kernel.*rank 2'),
      ('kernel_last_dim', np.zeros((4, 2)), np.zeros(3), 'kernel.*num_tasks'),
      ('bias_rank_2', np.zeros((4, 3)), np.zeros((1, 3)), 'bias.*rank 1'),
      ('bias_shape', np.zeros((4, 3)), np.zeros(2), 'bias'),
  )
  def test_preserve_outputs_bad_shapes_raise(self, kernel, bias, regex):
    state = popart.init_state(3, tf.float64)
    with self.assertRaisesRegex(ValueError, regex):
      popart.preserve_outputs(kernel, bias, state, state)

  def test_preserve_outputs_mismatched_states_raise(self):
    with self.assertRaisesRegex(ValueError, 'new_state'):
      popart.preserve_outputs(np.zeros((4, 3)), np.zeros(3),
                              popart.init_state(3, tf.float64),
                              popart.init_state(2, tf.float64))
    with self.assertRaisesRegex(ValueError, 'dtype'):
      popart.preserve_outputs(tf.zeros((4, 3)), tf.zeros(3),
                              popart.init_state(3, tf.float64),
                              popart.init_state(3, tf.float64))

  def test_apply_increments_bad_shapes_raise(self):
    state = popart.init_state(3)
    with self.assertRaisesRegex(ValueError, 'd_mu.*rank 1'):
      popart.apply_increments(state, np.zeros((3, 1)), np.zeros(3))
    with self.assertRaisesRegex(ValueError, 'd_nu'):
      popart.apply_increments(state, np.zeros(3), np.zeros(2))

  @parameterized.parameters(0, -1, 2.5, True)
  def test_init_state_bad_num_tasks_raise(self, num_tasks):
    with self.assertRaisesRegex(ValueError, 'num_tasks'):
      popart.init_state(num_tasks)

  @parameterized.product(variant=('eager', 'function'), bad_id=(-1, 3))
  def test_out_of_range_task_ids_raise(self, variant, bad_id):
    task_ids = np.array([[0, 1], [2, bad_id]], np.int32)
    for fn in (popart.normalize, popart.update_statistics):
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError, 'task_ids'):
        _run(variant, fn, popart.init_state(3), np.ones((2, 2), np.float32),
             task_ids)


if __name__ == '__main__':
  absltest.main()
