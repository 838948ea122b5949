"""Torsos of the IMPALA network (Espeholt et al. 2018, Fig. 3; SPEC §3).

Each torso maps a batch of preprocessed observations (float32, pixels in
[0, 1]) to [N, 256] features and lists its Keras layers in construction order
(`layers`), from which agent/networks.py derives the network's variable order.

`dtype` is the Keras dtype policy of every layer: None / 'float32' computes in
float32; 'mixed_bfloat16' keeps the variables float32 (read as bfloat16 inside
each layer call) and computes, and returns, bfloat16 (agent/precision.py).
"""

from typing import Optional, Sequence, Union

import tensorflow as tf

HIDDEN_SIZE = 256  # torso output width (Fig. 3)
Policy = Optional[Union[str, tf.keras.mixed_precision.Policy]]


def block_preactivation(x: tf.Tensor) -> tf.Tensor:
  """ReLU of a residual block's input, written as `max(x, 0)`.

  The same values as `tf.nn.relu` (and the same gradient except at exactly
  0). Written so because TensorFlow 2.15's grappler remapper (its oneDNN
  Conv2D+BiasAdd+Add+Relu fusion on CPU) deletes the residual `add` while
  the next block's `add` still reads it when the ReLU is an `Relu` op: it
  then logs "remapper failed: INVALID_ARGUMENT: Mutation::Apply error" and
  leaves the whole function unfused (tests/agent/torsos_test.py).
  """
  return tf.maximum(x, tf.zeros([], x.dtype))


class DeepTorso(tf.Module):
  """ResNet torso (Fig. 3 right): 3 × (conv, max-pool, 2 residual blocks)."""

  observation_rank = 3  # [H, W, C] per observation

  def __init__(self, channels: Sequence[int] = (16, 32, 32),
               num_blocks: int = 2, name: str = 'deep_torso',
               dtype: Policy = None):
    super().__init__(name=name)

    def conv(channels, name):
      return tf.keras.layers.Conv2D(channels, 3, 1, 'same', name=name,
                                    dtype=dtype)

    self._stacks = []
    for i, c in enumerate(channels):
      blocks = [(conv(c, f'stack{i}_block{j}_conv0'),
                 conv(c, f'stack{i}_block{j}_conv1'))
                for j in range(num_blocks)]
      self._stacks.append((conv(c, f'stack{i}_conv'), blocks))
    self._pool = tf.keras.layers.MaxPool2D(3, 2, 'same', name='pool',
                                           dtype=dtype)
    self._linear = tf.keras.layers.Dense(HIDDEN_SIZE, name='linear',
                                         dtype=dtype)
    layers = []
    for first_conv, blocks in self._stacks:
      layers.append(first_conv)
      for conv0, conv1 in blocks:
        layers += [conv0, conv1]
    self.layers = tuple(layers) + (self._linear,)  # construction order

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """float [N, H, W, C] in [0, 1] → [N, 256] in the compute dtype."""
    for first_conv, blocks in self._stacks:
      x = self._pool(first_conv(x))
      for conv0, conv1 in blocks:
        x = x + conv1(tf.nn.relu(conv0(block_preactivation(x))))
    x = tf.nn.relu(x)
    x = tf.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]])  # [N, h·w·c]
    return tf.nn.relu(self._linear(x))


class ShallowTorso(tf.Module):
  """Conv 16 8×8/4, Conv 32 4×4/2 (VALID), Linear 256 (Fig. 3 left)."""

  observation_rank = 3  # [H, W, C] per observation

  def __init__(self, name: str = 'shallow_torso', dtype: Policy = None):
    super().__init__(name=name)
    self.layers = (
        tf.keras.layers.Conv2D(16, 8, 4, 'valid', name='conv0', dtype=dtype),
        tf.keras.layers.Conv2D(32, 4, 2, 'valid', name='conv1', dtype=dtype),
        tf.keras.layers.Dense(HIDDEN_SIZE, name='linear', dtype=dtype))

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """float [N, H, W, C] in [0, 1] → [N, 256] in the compute dtype."""
    conv0, conv1, linear = self.layers
    x = tf.nn.relu(conv1(tf.nn.relu(conv0(x))))
    x = tf.reshape(x, [-1, x.shape[1] * x.shape[2] * x.shape[3]])  # [N, h·w·c]
    return tf.nn.relu(linear(x))


class MlpTorso(tf.Module):
  """Linear 256 → ReLU → Linear 256 → ReLU, for flat vector observations.

  Not in the IMPALA paper: for goal-conditioned vector tasks such as HER bit
  flipping (envs/bit_flipping.py), whose observation is float32 [2n].
  """

  observation_rank = 1  # [D] per observation

  def __init__(self, name: str = 'mlp_torso', dtype: Policy = None):
    super().__init__(name=name)
    self.layers = (
        tf.keras.layers.Dense(HIDDEN_SIZE, name='linear0', dtype=dtype),
        tf.keras.layers.Dense(HIDDEN_SIZE, name='linear1', dtype=dtype))

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """float [N, D] → [N, 256] in the compute dtype."""
    for layer in self.layers:
      x = tf.nn.relu(layer(x))
    return x


TORSOS = {'deep': DeepTorso, 'shallow': ShallowTorso, 'mlp': MlpTorso}


def make_torso(kind: str, **kwargs) -> tf.Module:
  """The torso of `kind` ('deep' | 'shallow' | 'mlp'); kwargs go to it."""
  return TORSOS[kind](**kwargs)
