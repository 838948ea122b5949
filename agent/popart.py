"""PopArt: adaptively rescaled value targets, outputs preserved (SPEC §5).

Multi-task PopArt (Hessel et al. 2018, "Multi-task Deep Reinforcement Learning
with PopArt") for the per-task value head of IMPALA; Pop-Art itself is van
Hasselt et al. 2016 ("Learning values across many orders of magnitude").

Task i has a normalised value n_i(x) = W_iᵀh(x) + b_i (column i of the head's
kernel W [hidden, K], entry i of its bias b [K]) and an unnormalised value
v_i(x) = σ_i n_i(x) + μ_i. Per batch of V-trace targets v_s:

  ART, one EMA step per target, summed over the batch (as rlax `art`):
    μ_i′ = μ_i + β Σ_{s: task(s)=i} (v_s − μ_i)
    ν_i′ = ν_i + β Σ_{s: task(s)=i} (v_s² − ν_i)
    σ_i′ = sqrt(clip(ν_i′ − μ_i′², σ_lb², σ_ub²))
  Tasks absent from the batch keep μ_i, ν_i and σ_i exactly; initially μ = 0,
  ν = σ = 1. With n_i samples of task i this is an EMA step only for
  β n_i ≤ 1 (paper β = 3e-4 with T B = 640 samples gives 0.19) and diverges
  for β n_i > 2: the caller picks β. ν − μ² cancels when |μ| ≫ σ: its float32
  rounding error is about 1e-7 ν, so σ below about 3e-4 |μ| is noise.

  POP, after each statistics update:
    W_i′ = (σ_i/σ_i′) W_i,   b_i′ = (σ_i b_i + μ_i − μ_i′)/σ_i′
  so σ_i′ n_i′(x) + μ_i′ = σ_i n_i(x) + μ_i for every x.

With several replicas, all-reduce (SUM) the output of `increments` before
`apply_increments`, so every replica holds identical statistics;
`update_statistics` is the two composed for one replica.

Pure functions (no tf.Variable, I/O or globals) for eager, tf.function and XLA
(jit_compile=True), computing in the dtype of `state.mu` (float32 in
production). The statistics carry no gradient. Run-time checks (task ids in
range, finite statistics) raise InvalidArgumentError eagerly and under
tf.function; XLA drops Assert and CheckNumerics ops, so not there.
"""

import collections
import numbers
from typing import Callable, Tuple, Union

import tensorflow as tf

# Per-task statistics, each float [K] (K = num_tasks):
#   mu:    μ_i, first moment (shift) of task i's value targets.
#   sigma: σ_i = sqrt(clip(ν_i − μ_i², σ_lb², σ_ub²)), the scale.
#   nu:    ν_i, second moment of task i's value targets.
PopArtState = collections.namedtuple('PopArtState', 'mu sigma nu')

TensorLike = tf.types.experimental.TensorLike
Scalar = Union[float, tf.Tensor]


def _check_rank(tensor: tf.Tensor, name: str, expected: int) -> None:
  if tensor.shape.rank != expected:
    raise ValueError(f'`{name}` must have rank {expected}; got shape '
                     f'{tensor.shape}.')


def _check_compatible(tensor: tf.Tensor, name: str, shape: tf.TensorShape,
                      other: str) -> None:
  if not tensor.shape.is_compatible_with(shape):
    raise ValueError(f'`{name}` shape {tensor.shape} is incompatible with '
                     f'{other} shape {shape}.')


def _scalar(value: Scalar, name: str, dtype: tf.DType,
            valid: Callable[[float], bool], allowed: str) -> tf.Tensor:
  """A scalar hyperparameter of `dtype`; a Python number must be `valid`."""
  if isinstance(value, numbers.Real) and not valid(value):
    raise ValueError(f'`{name}` must be {allowed}; got {value}.')
  value = tf.convert_to_tensor(value, dtype=dtype)
  _check_rank(value, name, 0)
  return value


def _check_state(state: PopArtState, name: str = 'state') -> PopArtState:
  """The state as tensors of mu's (floating) dtype, each [K]."""
  if not isinstance(state, PopArtState):
    raise ValueError(f'`{name}` must be a PopArtState; got {type(state)}.')
  mu = tf.convert_to_tensor(state.mu)
  if not mu.dtype.is_floating:
    raise ValueError(f'`{name}.mu` must be floating point; got {mu.dtype}.')
  state = PopArtState(*(tf.convert_to_tensor(x, mu.dtype) for x in state))
  for field, tensor in zip(PopArtState._fields, state):
    _check_rank(tensor, f'{name}.{field}', 1)
    _check_compatible(tensor, f'{name}.{field}', mu.shape, f'`{name}.mu`')
  return state


def _num_tasks(state: PopArtState) -> Union[int, tf.Tensor]:
  num_tasks = state.mu.shape[0]
  return tf.shape(state.mu)[0] if num_tasks is None else num_tasks


def _check_inputs(state: PopArtState, values: TensorLike, task_ids: TensorLike,
                  name: str) -> Tuple[PopArtState, tf.Tensor, tf.Tensor]:
  """Validates (state, values, task_ids); values in the state's dtype."""
  state = _check_state(state)
  values = tf.convert_to_tensor(values, dtype=state.mu.dtype)
  task_ids = tf.convert_to_tensor(task_ids)
  if not task_ids.dtype.is_integer:
    raise ValueError(f'`task_ids` must be integer; got {task_ids.dtype}.')
  if task_ids.shape.rank is None:
    raise ValueError('`task_ids` must have a statically known rank.')
  _check_rank(values, name, task_ids.shape.rank)
  _check_compatible(values, name, task_ids.shape, '`task_ids`')
  checks = [
      tf.debugging.assert_non_negative(task_ids,
                                       message='`task_ids` must be >= 0'),
      tf.debugging.assert_less(
          task_ids, tf.cast(_num_tasks(state), task_ids.dtype),
          message='`task_ids` must be < num_tasks'),
  ]
  with tf.control_dependencies(checks):
    return state, values, tf.identity(task_ids)


def init_state(num_tasks: int, dtype: tf.DType = tf.float32) -> PopArtState:
  """Initial statistics μ = 0, σ = 1, ν = 1 (van Hasselt et al. 2016).

  Args:
    num_tasks: K >= 1, the number of tasks (value outputs).
    dtype: floating dtype of the statistics (float32 in production).

  Returns:
    PopArtState(mu, sigma, nu), each `dtype` [K].

  Raises:
    ValueError: if `num_tasks` is not a positive int or `dtype` not floating.
  """
  if (isinstance(num_tasks, bool) or not isinstance(num_tasks, numbers.Integral)
      or num_tasks < 1):
    raise ValueError(f'`num_tasks` must be a positive int; got {num_tasks!r}.')
  dtype = tf.as_dtype(dtype)
  if not dtype.is_floating:
    raise ValueError(f'`dtype` must be floating point; got {dtype}.')
  return PopArtState(mu=tf.zeros([num_tasks], dtype),
                     sigma=tf.ones([num_tasks], dtype),
                     nu=tf.ones([num_tasks], dtype))


def normalize(state: PopArtState, values: TensorLike,
              task_ids: TensorLike) -> tf.Tensor:
  """(v − μ_i)/σ_i per element, i its task (Hessel et al. 2018; SPEC §5).

  The value loss regresses n_i(x_s) on the normalised V-trace target.

  Args:
    state: PopArtState, each float [K].
    values: float [...], unnormalised values v (e.g. targets v_s [T, B]).
    task_ids: int [...] in [0, K), same shape as `values`.

  Returns:
    float [...] in the state's dtype. Differentiable with respect to `values`;
    no gradient flows to `state`.

  Raises:
    ValueError: on a malformed `state`, non-integer `task_ids`, or `values`
      and `task_ids` of unknown or different rank or shape. Task ids outside
      [0, K) raise InvalidArgumentError at run time (not under XLA).
  """
  state, values, task_ids = _check_inputs(state, values, task_ids, 'values')
  with tf.name_scope('popart_normalize'):
    mu = tf.stop_gradient(tf.gather(state.mu, task_ids))  # [...] μ_i
    sigma = tf.stop_gradient(tf.gather(state.sigma, task_ids))  # [...] σ_i
    return (values - mu) / sigma


def unnormalize(state: PopArtState, normalized: TensorLike,
                task_ids: TensorLike) -> tf.Tensor:
  """σ_i n + μ_i per element, i its task (Hessel et al. 2018; SPEC §5).

  Turns value-head outputs n_i(x) into the baselines V-trace runs on.

  Args:
    state: PopArtState, each float [K].
    normalized: float [...], normalised values n (e.g. head outputs [T, B]).
    task_ids: int [...] in [0, K), same shape as `normalized`.

  Returns:
    float [...] in the state's dtype. Differentiable with respect to
    `normalized`; no gradient flows to `state`.

  Raises:
    ValueError: as `normalize`.
  """
  state, normalized, task_ids = _check_inputs(state, normalized, task_ids,
                                              'normalized')
  with tf.name_scope('popart_unnormalize'):
    mu = tf.stop_gradient(tf.gather(state.mu, task_ids))  # [...] μ_i
    sigma = tf.stop_gradient(tf.gather(state.sigma, task_ids))  # [...] σ_i
    return sigma * normalized + mu


def increments(state: PopArtState, targets: TensorLike, task_ids: TensorLike,
               step_size: Scalar = 3e-4) -> Tuple[tf.Tensor, tf.Tensor]:
  """Per-task sums of the EMA increments of one (per-replica) batch.

    Δμ_i = β Σ_{s: task(s)=i} (v_s − μ_i)
    Δν_i = β Σ_{s: task(s)=i} (v_s² − ν_i)

  One EMA step per target, all from the same (μ_i, ν_i) (Hessel et al. 2018;
  van Hasselt et al. 2016), as rlax `art`. Both are exactly 0 for tasks absent
  from the batch. Sum them across replicas, then call `apply_increments`.

  Args:
    state: PopArtState, each float [K], the statistics before the update.
    targets: float [...], v_s, unnormalised value targets (e.g. V-trace vs
      [T, B]); wrapped in tf.stop_gradient.
    task_ids: int [...] in [0, K), same shape as `targets`.
    step_size: β in [0, 1] (scalar); the paper uses 3e-4.

  Returns:
    (d_mu, d_nu), each float [K] in the state's dtype, no gradient.

  Raises:
    ValueError: as `normalize`, or if `step_size` is not a scalar in [0, 1].
  """
  state, targets, task_ids = _check_inputs(state, targets, task_ids, 'targets')
  step_size = _scalar(step_size, 'step_size', state.mu.dtype,
                      lambda x: 0. <= x <= 1., 'in [0, 1]')
  with tf.name_scope('popart_increments'):
    targets = tf.reshape(tf.stop_gradient(targets), [-1])  # [N], N = T B
    task_ids = tf.reshape(task_ids, [-1])  # [N]
    mu = tf.gather(state.mu, task_ids)  # [N] μ_task(s)
    nu = tf.gather(state.nu, task_ids)  # [N] ν_task(s)
    num_tasks = _num_tasks(state)
    d_mu = tf.math.unsorted_segment_sum(
        step_size * (targets - mu), task_ids, num_tasks)  # [K]
    d_nu = tf.math.unsorted_segment_sum(
        step_size * (tf.square(targets) - nu), task_ids, num_tasks)  # [K]
    return tf.stop_gradient(d_mu), tf.stop_gradient(d_nu)


def apply_increments(state: PopArtState, d_mu: TensorLike, d_nu: TensorLike,
                     scale_lb: Scalar = 1e-4,
                     scale_ub: Scalar = 1e6) -> PopArtState:
  """New statistics from (all-reduced) increments (Hessel et al. 2018).

    μ_i′ = μ_i + Δμ_i,   ν_i′ = ν_i + Δν_i,
    σ_i′ = sqrt(clip(ν_i′ − μ_i′², σ_lb², σ_ub²))

  σ′ is computed as clip(sqrt(max(ν′ − μ′², 0)), σ_lb, σ_ub): the same value,
  and exactly within [σ_lb, σ_ub] in floating point. Where Δμ_i = Δν_i = 0
  (task absent from every replica's batch) σ_i is kept, so an absent task's
  statistics are bit-for-bit unchanged.

  Args:
    state: PopArtState, each float [K], the statistics before the update.
    d_mu: float [K], Δμ from `increments`, summed over replicas.
    d_nu: float [K], Δν from `increments`, summed over replicas.
    scale_lb: σ_lb > 0 (scalar), lower bound on σ; SPEC: 1e-4.
    scale_ub: σ_ub >= σ_lb (scalar), upper bound on σ; SPEC: 1e6.

  Returns:
    PopArtState(mu, sigma, nu), each float [K] in the state's dtype, no
    gradient.

  Raises:
    ValueError: on a malformed `state`, `d_mu`/`d_nu` not [K], or bounds that
      are not scalars with 0 < σ_lb <= σ_ub. Non-finite μ′ or ν′ (e.g. ν
      overflowing for huge targets) raise InvalidArgumentError at run time
      (not under XLA).
  """
  state = _check_state(state)
  dtype = state.mu.dtype
  d_mu = tf.convert_to_tensor(d_mu, dtype=dtype)
  d_nu = tf.convert_to_tensor(d_nu, dtype=dtype)
  for name, tensor in (('d_mu', d_mu), ('d_nu', d_nu)):
    _check_rank(tensor, name, 1)
    _check_compatible(tensor, name, state.mu.shape, '`state.mu`')
  lower = _scalar(scale_lb, 'scale_lb', dtype, lambda x: x > 0., '> 0')
  upper = _scalar(scale_ub, 'scale_ub', dtype, lambda x: x > 0., '> 0')
  if (isinstance(scale_lb, numbers.Real) and
      isinstance(scale_ub, numbers.Real) and scale_lb > scale_ub):
    raise ValueError(f'`scale_lb` must be <= `scale_ub`; got {scale_lb} > '
                     f'{scale_ub}.')
  with tf.name_scope('popart_apply_increments'):
    state, d_mu, d_nu = tf.nest.map_structure(tf.stop_gradient,
                                              (state, d_mu, d_nu))
    mu = tf.debugging.check_numerics(state.mu + d_mu, 'PopArt mu')  # [K] μ′
    nu = tf.debugging.check_numerics(state.nu + d_nu, 'PopArt nu')  # [K] ν′
    variance = tf.maximum(nu - tf.square(mu), 0.)  # [K] ν′ − μ′²
    sigma = tf.clip_by_value(tf.sqrt(variance), lower, upper)  # [K] σ′
    untouched = tf.logical_and(tf.equal(d_mu, 0.), tf.equal(d_nu, 0.))  # [K]
    sigma = tf.where(untouched, state.sigma, sigma)  # [K]
    return PopArtState(mu=mu, sigma=sigma, nu=nu)


def update_statistics(state: PopArtState,
                      targets: TensorLike,
                      task_ids: TensorLike,
                      step_size: Scalar = 3e-4,
                      scale_lb: Scalar = 1e-4,
                      scale_ub: Scalar = 1e6) -> PopArtState:
  """ART (adaptively rescaling targets) for one replica's batch (SPEC §5).

  `apply_increments(state, *increments(state, targets, task_ids, step_size),
  scale_lb, scale_ub)`: μ′, ν′ by summed EMA steps, σ′ clipped (see both).

  Args:
    state: PopArtState, each float [K], the statistics before the update.
    targets: float [...], v_s, unnormalised value targets (e.g. V-trace vs
      [T, B]); wrapped in tf.stop_gradient.
    task_ids: int [...] in [0, K), same shape as `targets`.
    step_size: β in [0, 1] (scalar); the paper uses 3e-4.
    scale_lb: σ_lb > 0 (scalar); SPEC: 1e-4.
    scale_ub: σ_ub >= σ_lb (scalar); SPEC: 1e6.

  Returns:
    The new PopArtState, each float [K] in the state's dtype, no gradient.

  Raises:
    ValueError: as `increments` and `apply_increments`.
  """
  d_mu, d_nu = increments(state, targets, task_ids, step_size)
  return apply_increments(state, d_mu, d_nu, scale_lb, scale_ub)


def preserve_outputs(kernel: TensorLike, bias: TensorLike,
                     old_state: PopArtState,
                     new_state: PopArtState) -> Tuple[tf.Tensor, tf.Tensor]:
  """POP (preserving outputs precisely): keeps unnormalised outputs fixed.

    W_i′ = (σ_i/σ_i′) W_i,   b_i′ = (σ_i b_i + μ_i − μ_i′)/σ_i′

  for each column i of the kernel (van Hasselt et al. 2016; Hessel et al.
  2018), so σ_i′ (hᵀW_i′ + b_i′) + μ_i′ = σ_i (hᵀW_i + b_i) + μ_i for all h.
  Where μ_i and σ_i did not change (absent tasks) W_i and b_i come back
  bit for bit.

  Args:
    kernel: float [hidden, K], W, the value head's kernel (column i: task i).
    bias: float [K], b, the value head's bias.
    old_state: PopArtState (μ, σ, ν) before the update, each [K].
    new_state: PopArtState (μ′, σ′, ν′) after it, each [K].

  Returns:
    (kernel, bias): W′ float [hidden, K] and b′ float [K], in the dtype of
    `kernel`, to assign to the head's variables. Linear in W and b; no
    gradient flows to the statistics.

  Raises:
    ValueError: if `kernel` is not rank 2 with last dimension K, `bias` is not
      [K], a state is malformed, the states differ in shape, or their dtype
      is not the kernel's.
  """
  kernel = tf.convert_to_tensor(kernel)
  if not kernel.dtype.is_floating:
    raise ValueError(f'`kernel` must be floating point; got {kernel.dtype}.')
  bias = tf.convert_to_tensor(bias, dtype=kernel.dtype)
  old_state = _check_state(old_state, 'old_state')
  new_state = _check_state(new_state, 'new_state')
  for name, state in (('old_state', old_state), ('new_state', new_state)):
    if state.mu.dtype != kernel.dtype:
      raise ValueError(f'`{name}` dtype {state.mu.dtype} differs from '
                       f'`kernel` dtype {kernel.dtype}.')
  _check_compatible(new_state.mu, 'new_state.mu', old_state.mu.shape,
                    '`old_state.mu`')
  tasks_shape = old_state.mu.shape.merge_with(new_state.mu.shape)  # [K]
  _check_rank(kernel, 'kernel', 2)
  if not kernel.shape[1:].is_compatible_with(tasks_shape):
    raise ValueError(f'`kernel` must be [hidden, num_tasks] with num_tasks '
                     f'{tasks_shape[0]} from the state; got {kernel.shape}.')
  _check_rank(bias, 'bias', 1)
  _check_compatible(bias, 'bias', tasks_shape, 'state')
  with tf.name_scope('popart_preserve_outputs'):
    old, new = tf.nest.map_structure(tf.stop_gradient, (old_state, new_state))
    new_kernel = kernel * (old.sigma / new.sigma)  # [hidden, K]
    new_bias = (old.sigma * bias + old.mu - new.mu) / new.sigma  # [K]
    # fl(fl(σ b)/σ) can be b ± 1 ulp: keep b where μ and σ are unchanged.
    unchanged = tf.logical_and(tf.equal(old.mu, new.mu),
                               tf.equal(old.sigma, new.sigma))  # [K]
    return new_kernel, tf.where(unchanged, bias, new_bias)
