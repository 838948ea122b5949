"""One uint8 tensor for a nest of tensors: fewer EagerTensors per batch.

TF 2.15 on Python 3.11 leaks 16-48 bytes of host memory for every EagerTensor
it creates (tensorflow#62551; benchmarks/results/soak.md). A learner that
takes its batch with `next(iterator)` outside a `tf.function` gets one
EagerTensor per field of the unroll (~15 on Catch and Atari): that was the
largest share of the learner's RSS growth in the soak. The learner's dataset
therefore yields each batch as ONE flat uint8 tensor (`pack`, in the tf.data
pipeline) and the replica step restores the nest (`unpack`, in the graph).
The bytes are the fields' own (`tf.bitcast`; bool as uint8), so the round
trip is exact for every dtype.

The actor does the same for its policy call's inputs, on the host:
`pack_numpy` gives the same bytes as `pack` without making a tensor.

Pure TF and NumPy; works inside and outside `tf.function` and under XLA.
"""

from typing import Any

import numpy as np
import tensorflow as tf

# Dtypes `tf.bitcast` takes to and from uint8 (bool goes through tf.cast).
_BITCASTABLE = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int8,
                tf.int16, tf.int32, tf.int64, tf.uint8, tf.uint16, tf.uint32,
                tf.uint64)


def packable(spec: Any) -> bool:
  """True if every leaf of `spec` (tf.TensorSpec nest) has a static shape
  and a dtype `pack` supports (numbers and bool; not strings)."""
  leaves = tf.nest.flatten(spec)
  return bool(leaves) and all(
      isinstance(s, tf.TensorSpec) and s.shape.is_fully_defined()
      and (s.dtype in _BITCASTABLE or s.dtype == tf.bool) for s in leaves)


def _as_bytes(tensor: tf.Tensor) -> tf.Tensor:
  if tensor.dtype == tf.bool:
    tensor = tf.cast(tensor, tf.uint8)
  elif tensor.dtype != tf.uint8:
    tensor = tf.bitcast(tensor, tf.uint8)  # [...] -> [..., itemsize] (or [...])
  return tf.reshape(tensor, [-1])


def pack(structure: Any) -> tf.Tensor:
  """Concatenates the bytes of every leaf of `structure`, in tf.nest order.

  Args:
    structure: a nest (e.g. `types.Unroll`) of tensors with static shapes.

  Returns:
    uint8 [total bytes], where total bytes = Σ leaf.size · leaf.itemsize
    (bool: 1 byte per element).
  """
  return tf.concat([_as_bytes(t) for t in tf.nest.flatten(structure)], axis=0)


def pack_numpy(structure: Any) -> np.ndarray:
  """`pack` for a nest of NumPy arrays, in NumPy: the same uint8 bytes."""
  return np.concatenate([
      np.ascontiguousarray(x).view(np.uint8).reshape(-1)  # bool: 0/1 bytes
      for x in tf.nest.flatten(structure)])


def spec_of(structure: Any) -> Any:
  """The tf.TensorSpec nest (shape and dtype) of a nest of arrays."""
  return tf.nest.map_structure(
      lambda x: tf.TensorSpec(np.shape(x), tf.as_dtype(np.asarray(x).dtype)),
      structure)


def unpack(packed: tf.Tensor, spec: Any) -> Any:
  """Inverse of `pack`: the nest of `spec` with its shapes and dtypes.

  Args:
    packed: uint8 [total bytes] from `pack` of a nest matching `spec`.
    spec: the nest of tf.TensorSpec that was packed (`packable(spec)`).

  Raises:
    ValueError: if `spec` is not packable or its byte count differs from
      `packed`'s static length.
  """
  if not packable(spec):
    raise ValueError(f'unpack needs static shapes and numeric/bool dtypes; got {spec}')
  leaves, offset = [], 0
  for s in tf.nest.flatten(spec):
    count = s.shape.num_elements()
    dtype = tf.uint8 if s.dtype == tf.bool else s.dtype
    itemsize = dtype.size
    chunk = packed[offset:offset + count * itemsize]
    offset += count * itemsize
    if itemsize > 1:
      value = tf.bitcast(tf.reshape(chunk, [count, itemsize]), dtype)
    else:
      value = tf.bitcast(chunk, dtype) if dtype != tf.uint8 else chunk
    value = tf.reshape(value, s.shape)
    leaves.append(tf.cast(value, tf.bool) if s.dtype == tf.bool else value)
  length = packed.shape[0]
  if length is not None and length != offset:
    raise ValueError(f'packed holds {length} bytes; the spec needs {offset}.')
  return tf.nest.pack_sequence_as(spec, leaves)
