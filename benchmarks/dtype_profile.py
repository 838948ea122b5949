r"""Where the learner's time goes, per layer, in float32 and bfloat16.

  python benchmarks/dtype_profile.py [--config=configs/atari.py] [--repeats=5]

Times forward + backward of each layer of the config's network on its own
input at the learner's batch ((T+1)·B observations for the torso, B rows × T
steps for the LSTM; Pong, deep network: 21·32 = 672 frames), for each compute
dtype, back to back, and the dense matmul (2048²) of each dtype. Prints ms per
learner step and the bfloat16/float32 ratio of every row, so a missed speed-up
shows which ops do not get faster. Best of --repeats, after a warm-up.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from agent import networks  # pylint: disable=wrong-import-position
from configs import atari as atari_config  # pylint: disable=wrong-import-position
from launch import builder  # pylint: disable=wrong-import-position


def best_seconds(fn, repeats: int) -> float:
  fn()  # trace + warm up
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def layer_rows(network: networks.ImpalaNetwork, observation_shape, t: int,
               b: int, repeats: int):
  """[(name, seconds of forward + backward)] for each torso layer, the LSTM
  over T steps and the whole unroll."""
  rows = []
  n = (t + 1) * b
  x = tf.random.uniform((n,) + tuple(observation_shape))
  torso = network._torso  # pylint: disable=protected-access
  # Record each layer's input by running the torso once with hooks.
  inputs = {}
  originals = {}
  for layer in torso.layers:
    originals[layer] = layer.call

    def call(y, *args, _layer=layer, **kwargs):
      inputs.setdefault(_layer.name, y)
      return originals[_layer](y, *args, **kwargs)
    layer.call = call
  torso(x)
  for layer in torso.layers:
    layer.call = originals[layer]
  for layer in torso.layers:
    y = tf.constant(inputs[layer.name])

    @tf.function
    def step(_layer=layer, _y=y):
      with tf.GradientTape() as tape:
        tape.watch(_y)
        out = tf.reduce_sum(tf.cast(_layer(_y), tf.float32))
      return tape.gradient(out, [_y] + _layer.trainable_weights)
    rows.append((f'{layer.name} {tuple(y.shape[1:])}',
                 best_seconds(lambda f=step: tf.nest.map_structure(
                     lambda g: g.numpy(), f()), repeats)))
  core = network._core  # pylint: disable=protected-access
  size = network.lstm_size
  core_input = tf.random.normal([t + 1, b, core.kernel.shape[0]])

  @tf.function
  def lstm():
    with tf.GradientTape() as tape:
      h = c = tf.zeros([b, size])
      total = 0.0
      for i in range(t + 1):
        out, (h, c) = network._core_step(  # pylint: disable=protected-access
            core, core_input[i], tf.zeros([b], tf.bool), (h, c))
        total += tf.reduce_sum(out)
    return tape.gradient(total, core.trainable_weights)
  rows.append((f'LSTM {size} × {t + 1} steps', best_seconds(
      lambda: [g.numpy() for g in lstm()], repeats)))
  return rows


def matmul_seconds(dtype: str, n: int = 2048, repeats: int = 5) -> float:
  a = tf.cast(tf.random.normal([n, n]), dtype)

  @tf.function
  def run():
    return tf.reduce_sum(tf.cast(tf.matmul(a, a), tf.float32))
  return best_seconds(lambda: run().numpy(), repeats)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/atari.py')
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  config = atari_config.get_config()
  facts = builder.environment_facts(config)
  t, b = config.unroll_length, config.batch_size
  spec = facts['observation_spec']
  table = {}
  for dtype in ('float32', 'bfloat16'):
    network = builder.make_network(config, facts, dtype)
    rows = layer_rows(network, spec.shape, t, b, args.repeats)
    rows.append(('matmul 2048² (one product)', matmul_seconds(dtype)))
    table[dtype] = rows
  print(f'# forward + backward per learner step ({(t + 1) * b} frames; '
        f'T={t}, B={b}), {os.cpu_count()} CPUs, best of {args.repeats}')
  print(f'{"op":44s} {"float32 ms":>11s} {"bfloat16 ms":>12s} {"bf16/f32":>9s}')
  total = np.zeros(2)
  for (name, f32), (_, bf16) in zip(table['float32'], table['bfloat16']):
    print(f'{name:44s} {1e3 * f32:11.1f} {1e3 * bf16:12.1f} {bf16 / f32:9.2f}')
    if not name.startswith('matmul'):
      total += (f32, bf16)
  print(f'{"sum of the layers above":44s} {1e3 * total[0]:11.1f} '
        f'{1e3 * total[1]:12.1f} {total[1] / total[0]:9.2f}')


if __name__ == '__main__':
  main()
