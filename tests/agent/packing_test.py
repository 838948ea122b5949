"""agent/packing.py: the byte-exact round trip of a batch through one tensor."""

import numpy as np
import pytest
import tensorflow as tf

from agent import packing
from agent import types


def _unroll(t=3, b=2, seed=0):
  rng = np.random.default_rng(seed)
  return types.MaskedUnroll(
      observation=rng.integers(0, 256, (t, b, 5, 4, 2), dtype=np.uint8),
      first=rng.random((t, b)) < 0.5,
      reward=rng.normal(size=(t, b)).astype(np.float32),
      discount=rng.random((t, b)).astype(np.float32),
      prev_action=rng.integers(-5, 17, (t, b), dtype=np.int32),
      action=rng.integers(0, 2**40, (t, b), dtype=np.int64),
      behaviour_logits=rng.normal(size=(t, b, 6)).astype(np.float32),
      task_id=rng.integers(-3, 3, (t, b), dtype=np.int8),
      core_state=(rng.normal(size=(b, 8)).astype(np.float64),
                  tf.cast(rng.normal(size=(b, 8)), tf.bfloat16).numpy()),
      mask=rng.random((t, b)) < 0.5)


def _spec(unroll):
  return packing.spec_of(unroll)


@pytest.mark.parametrize('in_graph', [False, True])
def test_round_trip_is_exact_for_every_dtype_and_keeps_the_type(in_graph):
  unroll = _unroll()
  spec = _spec(unroll)
  assert packing.packable(spec)
  roundtrip = lambda u: packing.unpack(packing.pack(u), spec)
  if in_graph:
    roundtrip = tf.function(roundtrip)
  out = roundtrip(tf.nest.map_structure(tf.constant, unroll))
  assert type(out) is types.MaskedUnroll
  for want, got in zip(tf.nest.flatten(unroll), tf.nest.flatten(out)):
    assert got.dtype == tf.as_dtype(want.dtype) and got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)  # bit for bit


def test_packed_size_is_the_sum_of_the_fields_bytes():
  unroll = _unroll(t=4, b=3)
  packed = packing.pack(tf.nest.map_structure(tf.constant, unroll))
  assert packed.dtype == tf.uint8 and packed.shape.rank == 1
  assert packed.shape[0] == sum(np.asarray(x).nbytes for x in tf.nest.flatten(unroll))


def test_pack_numpy_gives_the_same_bytes_as_pack():
  unroll = _unroll(seed=3)
  np.testing.assert_array_equal(
      packing.pack_numpy(unroll),
      packing.pack(tf.nest.map_structure(tf.constant, unroll)).numpy())
  assert packing.spec_of(unroll).observation == tf.TensorSpec([3, 2, 5, 4, 2], tf.uint8)


def test_in_a_dataset_one_tensor_per_batch():
  unroll = _unroll()
  spec = _spec(unroll)
  dataset = tf.data.Dataset.from_tensors(unroll).repeat(2).map(packing.pack)
  batches = list(dataset)
  assert len(batches) == 2 and all(isinstance(b, tf.Tensor) for b in batches)
  np.testing.assert_array_equal(
      packing.unpack(batches[1], spec).reward.numpy(), unroll.reward)


def test_unpackable_specs_and_size_mismatch_are_errors():
  assert not packing.packable(tf.TensorSpec([None, 3], tf.float32))
  assert not packing.packable(tf.TensorSpec([2], tf.string))
  assert not packing.packable(())
  spec = (tf.TensorSpec([2, 3], tf.float32),)
  with pytest.raises(ValueError, match='static shapes'):
    packing.unpack(tf.zeros([24], tf.uint8), tf.TensorSpec([None], tf.float32))
  with pytest.raises(ValueError, match='holds 25 bytes; the spec needs 24'):
    packing.unpack(tf.zeros([25], tf.uint8), spec)
