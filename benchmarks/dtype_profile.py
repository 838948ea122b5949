r"""Where the learner's time goes, per layer, in float32 and bfloat16.

  python benchmarks/dtype_profile.py [--config=configs/atari.py] [--repeats=5]

Times forward + backward of each layer of the config's network on its own
input at the learner's batch ((T+1)·B observations for the torso, B rows × T
steps for the LSTM; Pong, deep network: 21·32 = 672 frames), for each compute
dtype, back to back; then the whole torso (the layers plus max-pools, ReLUs and
residual adds), the whole learner step (`Learner.step_on` on an in-memory
batch, as benchmarks/throughput.py times it) and what of it is outside the
layers (loss, V-trace, casts, clip, optimizer), and the dense matmul (2048²) of
each dtype. Prints ms per learner step and the bfloat16/float32 ratio of every
row, so a missed speed-up shows which ops do not get faster. Best of
--repeats, after a warm-up. Each layer's row includes the gradient with
respect to its input, which the first conv does not need in training.
"""

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from agent import networks  # pylint: disable=wrong-import-position
from configs import atari as atari_config  # pylint: disable=wrong-import-position
from benchmarks import popart_overhead  # pylint: disable=wrong-import-position
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
  """([(name, seconds of forward + backward)] for each torso layer, the
  heads and the LSTM over T+1 steps (if any), (name, seconds) of the whole
  torso)."""
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
    def step(layer_=layer, y_in=y):
      with tf.GradientTape() as tape:
        tape.watch(y_in)
        out = tf.reduce_sum(tf.cast(layer_(y_in), tf.float32))
      return tape.gradient(out, [y_in] + layer_.trainable_weights)
    rows.append((f'{layer.name} {tuple(y.shape[1:])}',
                 best_seconds(lambda f=step: tf.nest.map_structure(
                     lambda g: g.numpy(), f()), repeats)))
  rows.append(heads_row(network, t, b, repeats))

  @tf.function
  def whole_torso():
    with tf.GradientTape() as tape:
      out = tf.reduce_sum(tf.cast(torso(x), tf.float32))
    return tape.gradient(out, [w for layer in torso.layers
                               for w in layer.trainable_weights])
  whole = ('whole torso (+ pools, ReLUs, residual adds)', best_seconds(
      lambda: [g.numpy() for g in whole_torso()], repeats))
  core = network._core  # pylint: disable=protected-access
  if core is None:  # feed-forward core: no LSTM to time
    return rows, whole
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
  return rows, whole


def heads_row(network: networks.ImpalaNetwork, t: int, b: int, repeats: int):
  """(name, seconds) of forward + backward of the policy and value heads on
  their [(T+1)·B, hidden] input."""
  head_input = tf.random.normal(
      [(t + 1) * b, network.policy_head.kernel.shape[0]])
  heads = (network.policy_head, network.value_head)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      tape.watch(head_input)
      out = sum(tf.reduce_sum(tf.cast(h(head_input), tf.float32))
                for h in heads)
    return tape.gradient(out, [head_input] + [
        w for h in heads for w in h.trainable_weights])
  return ('policy + value heads', best_seconds(
      lambda: [g.numpy() for g in step()], repeats))


def learner_step_seconds(config, facts, dtype: str, repeats: int) -> float:
  """Seconds of one whole learner step (loss, V-trace, gradients, clip,
  optimizer update) on an in-memory batch, as benchmarks/throughput.py
  times it."""
  with config.unlocked():
    config.network.compute_dtype = dtype
  learner = builder.make_learner(config, facts,
                                 tf.distribute.get_strategy(), None, None)
  batch = popart_overhead.make_batch(config, facts)
  learner.step_on(batch)  # trace
  return best_seconds(lambda: learner.step_on(batch), repeats)


def matmul_seconds(dtype: str, n: int = 2048, repeats: int = 5) -> float:
  a = tf.cast(tf.random.normal([n, n]), dtype)

  @tf.function
  def run():
    return tf.reduce_sum(tf.cast(tf.matmul(a, a), tf.float32))
  return best_seconds(lambda: run().numpy(), repeats)


def load_config(path: str):
  """The ml_collections config that `path`'s get_config() returns."""
  if path == 'configs/atari.py':
    return atari_config.get_config()
  spec = importlib.util.spec_from_file_location(
      'cfg', os.path.join(os.path.dirname(os.path.dirname(
          os.path.abspath(__file__))), path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/atari.py')
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  config = load_config(args.config)
  facts = builder.environment_facts(config)
  t, b = config.unroll_length, config.batch_size
  spec = facts['observation_spec']
  table, steps, matmul, torsos = {}, {}, {}, {}
  for dtype in ('float32', 'bfloat16'):
    network = builder.make_network(config, facts, dtype)
    rows, torsos[dtype] = layer_rows(network, spec.shape, t, b, args.repeats)
    table[dtype] = rows
    steps[dtype] = learner_step_seconds(config, facts, dtype, args.repeats)
    matmul[dtype] = matmul_seconds(dtype)
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
  name, f32 = torsos['float32']
  bf16 = torsos['bfloat16'][1]
  print(f'{name:44s} {1e3 * f32:11.1f} {1e3 * bf16:12.1f} {bf16 / f32:9.2f}')
  whole = np.array([steps['float32'], steps['bfloat16']])
  rest = whole - total
  print(f'{"whole learner step (learner.step_on)":44s} {1e3 * whole[0]:11.1f} '
        f'{1e3 * whole[1]:12.1f} {whole[1] / whole[0]:9.2f}')
  print(f'{"  not in the layers (loss, casts, optimizer)":44s} '
        f'{1e3 * rest[0]:11.1f} {1e3 * rest[1]:12.1f} {rest[1] / rest[0]:9.2f}')
  print(f'{"matmul 2048² (one product)":44s} {1e3 * matmul["float32"]:11.1f} '
        f'{1e3 * matmul["bfloat16"]:12.1f} '
        f'{matmul["bfloat16"] / matmul["float32"]:9.2f}')


if __name__ == '__main__':
  main()
