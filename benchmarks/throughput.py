r"""Throughput of the IMPALA pipeline on this machine, in one run.

  python benchmarks/throughput.py [--config=configs/atari.py] [--e2e_secs=240]

Prints (agent steps; frames = agent steps × frame_skip raw Atari frames):
  1. environment only: Atari env steps/s of one process (no inference);
  2. actor: env steps/s of one actor process (envs + batched inference of the
     config's network + Reverb writes);
  3. learner: agent steps/s of the train step (config network, T, B) on
     in-memory batches, its achieved FLOP/s (analytic count: forward FLOPs of
     every Conv2D/Dense/LSTM on the batch, × 3 for forward + backward) and the
     ratio to a dense float32 matmul peak measured in the same run;
  4. end to end: agent steps/s and frames/s of `launch.train` with the config
     (learner frames consumed, after a warm-up), as a real subprocess.
Results are also written to benchmarks/results/throughput.json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from agent import types  # pylint: disable=wrong-import-position
from configs import atari as atari_config  # pylint: disable=wrong-import-position
from launch import builder  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def matmul_peak_flops(n: int = 2048, repeats: int = 20) -> float:
  """Dense float32 matmul FLOP/s (2n³ per product), best of 3."""
  a = tf.random.normal([n, n])
  b = tf.random.normal([n, n])

  @tf.function
  def run():
    c = a
    for _ in range(repeats):
      c = tf.matmul(c, b) * 1e-3
    return tf.reduce_sum(c)

  run().numpy()
  best = float('inf')
  for _ in range(3):
    start = time.perf_counter()
    run().numpy()
    best = min(best, time.perf_counter() - start)
  return 2 * n ** 3 * repeats / best


def count_forward_flops(network, observation_shape) -> float:
  """Forward FLOPs per agent step, from the shapes seen in one traced call."""
  seen = []

  def hook(layer):
    original = layer.call

    def call(x, *args, **kwargs):
      y = original(x, *args, **kwargs)
      seen.append((layer, tf.nest.flatten(y)[0].shape))
      return y
    layer.call = call
    return original

  layers = [m for m in network.submodules
            if isinstance(m, (tf.keras.layers.Conv2D, tf.keras.layers.Dense,
                              tf.keras.layers.LSTMCell))]
  originals = [(l, hook(l)) for l in layers]
  obs = tf.zeros((1,) + tuple(observation_shape), tf.uint8)
  state = network.initial_state(1)
  zeros_i = tf.zeros([1], tf.int32)
  network.step(obs, zeros_i, tf.zeros([1]), tf.zeros([1], tf.bool), zeros_i, state)
  for layer, original in originals:
    layer.call = original
  flops = 0.0
  for layer, out_shape in seen:
    if isinstance(layer, tf.keras.layers.Conv2D):
      kh, kw, cin, cout = layer.kernel.shape
      flops += 2 * np.prod(out_shape[1:3]) * kh * kw * cin * cout
    elif isinstance(layer, tf.keras.layers.Dense):
      flops += 2 * np.prod(layer.kernel.shape)
    else:  # LSTMCell: 4 gates over [input, h]
      flops += 2 * (layer.kernel.shape[0] + layer.units) * 4 * layer.units
  return float(flops)


def bench_env(config, seconds: float) -> float:
  env = builder.make_environment(config, seed=0)
  env.reset()
  rng = np.random.RandomState(0)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    if env.step(rng.randint(env.num_actions)).last():
      env.reset()
    n += 1
  return n / (time.perf_counter() - start)


def bench_actor(config, facts, seconds: float) -> float:
  """One actor process's env steps/s, writing into an in-process server."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.replay.queue_capacity = 100_000  # never block in this measurement
  server = builder.make_server(config, facts)
  address = f'localhost:{server.port}'
  actor = builder.make_actor(config, facts, address, actor_id=0)
  actor.observe_first()
  for _ in range(5):  # warm-up and tracing
    actor.run_step()
  start_steps, start = actor.agent_steps, time.perf_counter()
  while time.perf_counter() - start < seconds:
    actor.run_step()
  rate = (actor.agent_steps - start_steps) / (time.perf_counter() - start)
  actor.close()
  server.stop()
  return rate


def bench_learner(config, facts, steps: int):
  """Learner agent steps/s on in-memory batches (no Reverb)."""
  t, b = config.unroll_length, config.batch_size
  spec = facts['observation_spec']
  rng = np.random.RandomState(0)
  lstm = config.network.lstm_size
  unroll = types.Unroll(
      observation=rng.randint(0, 256, (t + 1, b) + tuple(spec.shape)).astype(np.uint8),
      first=rng.rand(t + 1, b) < 0.01,
      reward=rng.randn(t + 1, b).astype(np.float32),
      discount=np.ones((t + 1, b), np.float32),
      prev_action=rng.randint(0, facts['num_actions'], (t + 1, b)).astype(np.int32),
      action=rng.randint(0, facts['num_actions'], (t + 1, b)).astype(np.int32),
      behaviour_logits=rng.randn(t + 1, b, facts['num_actions']).astype(np.float32),
      task_id=np.zeros((t + 1, b), np.int32),
      core_state=(np.zeros((b, lstm), np.float32), np.zeros((b, lstm), np.float32)))
  strategy = tf.distribute.get_strategy()
  learner = builder.make_learner(config, facts, strategy, None, None)
  learner.step_on(unroll)  # trace
  learner.step_on(unroll)
  start = time.perf_counter()
  for _ in range(steps):
    learner.step_on(unroll)
  elapsed = time.perf_counter() - start
  agent_steps_per_sec = steps * t * b / elapsed
  forward = count_forward_flops(learner.network, spec.shape)
  # Forward over T+1 steps, backward ≈ 2× forward.
  flops_per_step = 3 * forward * (t + 1) * b
  return agent_steps_per_sec, flops_per_step * steps / elapsed, forward


def bench_end_to_end(config_path: str, seconds: float, warmup: float):
  """Runs launch.train as a subprocess; learner frames/s after warm-up."""
  logdir = tempfile.mkdtemp(prefix='tf_impala_bench_')
  cmd = [sys.executable, '-m', 'launch.train', f'--config={config_path}',
         f'--logdir={logdir}', '--config.logging.progress_every_secs=10']
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  samples, start = [], time.time()
  pattern = re.compile(r'frames ([\d,]+)/')
  try:
    for line in proc.stdout:
      m = pattern.search(line)
      if m:
        samples.append((time.time(), int(m.group(1).replace(',', ''))))
      if time.time() - start > warmup + seconds:
        break
  finally:
    proc.send_signal(2)  # SIGINT: clean shutdown
    try:
      proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
      proc.kill()
  after = [s for s in samples if s[0] - start >= warmup]
  if len(after) < 2:
    return float('nan'), logdir
  (t0, f0), (t1, f1) = after[0], after[-1]
  return (f1 - f0) / (t1 - t0), logdir


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/atari.py')
  parser.add_argument('--env_secs', type=float, default=15)
  parser.add_argument('--actor_secs', type=float, default=30)
  parser.add_argument('--learner_steps', type=int, default=5)
  parser.add_argument('--e2e_secs', type=float, default=240)
  parser.add_argument('--e2e_warmup_secs', type=float, default=90)
  args = parser.parse_args()
  config = atari_config.get_config() if args.config == 'configs/atari.py' else None
  if config is None:
    import importlib.util  # pylint: disable=g-import-not-at-top
    spec = importlib.util.spec_from_file_location('cfg', os.path.join(ROOT, args.config))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
  facts = builder.environment_facts(config)
  skip = config.env.frame_skip
  results = dict(config=args.config, game=config.env.game,
                 torso=config.network.torso, unroll_length=config.unroll_length,
                 batch_size=config.batch_size, frame_skip=skip,
                 cpus=os.cpu_count())
  print(f'# {args.config}: {config.env.game}, {config.network.torso} network, '
        f'T={config.unroll_length}, B={config.batch_size}, float32, '
        f'{os.cpu_count()} CPUs', flush=True)

  peak = matmul_peak_flops()
  results['matmul_peak_gflops'] = peak / 1e9
  print(f'dense matmul peak (float32, 2048²): {peak / 1e9:.1f} GFLOP/s', flush=True)

  env_rate = bench_env(config, args.env_secs)
  results['env_steps_per_sec'] = env_rate
  print(f'environment only: {env_rate:,.0f} env steps/s '
        f'({env_rate * skip:,.0f} frames/s), 1 process', flush=True)

  actor_rate = bench_actor(config, facts, args.actor_secs)
  results['actor_steps_per_sec'] = actor_rate
  print(f'actor ({config.num_envs_per_actor} envs, batched inference, Reverb '
        f'writes): {actor_rate:,.0f} env steps/s ({actor_rate * skip:,.0f} '
        'frames/s), 1 process', flush=True)

  steps_per_sec, achieved, forward = bench_learner(config, facts,
                                                   args.learner_steps)
  results.update(learner_agent_steps_per_sec=steps_per_sec,
                 learner_gflops=achieved / 1e9,
                 forward_mflops_per_agent_step=forward / 1e6,
                 learner_fraction_of_peak=achieved / peak)
  print(f'learner: {steps_per_sec:,.0f} agent steps/s ({steps_per_sec * skip:,.0f}'
        f' frames/s); {forward / 1e6:.1f} MFLOP forward per agent step; '
        f'{achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peak:.1f}% of the '
        'matmul peak', flush=True)

  if args.e2e_secs > 0:
    fps, logdir = bench_end_to_end(args.config, args.e2e_secs,
                                   args.e2e_warmup_secs)
    results.update(e2e_frames_per_sec=fps, e2e_agent_steps_per_sec=fps / skip,
                   e2e_logdir=logdir)
    print(f'end to end (launch.train, {config.num_actors} actors × '
          f'{config.num_envs_per_actor} envs + learner): {fps / skip:,.0f} agent '
          f'steps/s = {fps:,.0f} frames/s (learner frames consumed)', flush=True)

  out_dir = os.path.join(ROOT, 'benchmarks', 'results')
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'throughput.json'), 'w') as f:
    json.dump(results, f, indent=2)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  main()
