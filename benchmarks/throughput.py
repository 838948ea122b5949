r"""Throughput of the IMPALA pipeline on this machine, per compute dtype, in one run.

  python benchmarks/throughput.py [--config=configs/atari.py] \
      [--compute_dtype=float32,bfloat16] [--e2e_secs=150]

Prints (agent steps; frames = agent steps × frame_skip raw Atari frames),
each stage for every dtype back to back, then the ratios to the first dtype:
  1. environment only: Atari env steps/s of one process (no inference);
  2. dense matmul peak of each dtype (2048², 2n³ FLOPs per product);
  3. actor: env steps/s of one actor process (envs + batched inference of the
     config's network in the dtype + Reverb writes);
  4. learner: agent steps/s of the train step (config network, T, B) on
     in-memory batches (timing alternates between the dtypes in rounds), its
     achieved FLOP/s (analytic count: forward FLOPs of every Conv2D/Dense/LSTM
     on the batch, × 3 for forward + backward) and the ratio to the matmul
     peak of the same dtype;
  5. end to end: agent steps/s and frames/s of `launch.train` with the config
     and `--config.network.compute_dtype=<dtype>` (learner frames consumed,
     after a warm-up), as a real subprocess.
About 12 minutes with the defaults on 2 cores (two end-to-end runs of
warm-up + e2e_secs each). Results also go to benchmarks/results/throughput.json.
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

from benchmarks import popart_overhead  # pylint: disable=wrong-import-position
from configs import atari as atari_config  # pylint: disable=wrong-import-position
from launch import builder  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def matmul_peak_flops(dtype: str = 'float32', n: int = 2048,
                      repeats: int = 20) -> float:
  """Dense matmul FLOP/s in `dtype` (2n³ per product), best of 3."""
  a = tf.cast(tf.random.normal([n, n]), dtype)
  b = tf.cast(tf.random.normal([n, n]), dtype)

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


def with_dtype(config, compute_dtype: str):
  """A copy of `config` computing in `compute_dtype`."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.network.compute_dtype = compute_dtype
  return config


def bench_learners(config, facts, dtypes, rounds: int, steps_per_round: int):
  """{dtype: (agent steps/s, achieved FLOP/s, forward FLOPs per agent step)}.

  Learners of every dtype train on one in-memory batch (no Reverb); timing
  alternates between them in rounds (popart_overhead.time_learners), and the
  median round counts.
  """
  t, b = config.unroll_length, config.batch_size
  batch = popart_overhead.make_batch(config, facts)
  strategy = tf.distribute.get_strategy()
  learners = {}
  for dtype in dtypes:
    learners[dtype] = builder.make_learner(with_dtype(config, dtype), facts,
                                           strategy, None, None)
    for _ in range(2):  # trace + warm up
      learners[dtype].step_on(batch)
  times = popart_overhead.time_learners(
      learners, {dtype: batch for dtype in dtypes}, rounds, steps_per_round)
  results = {}
  for dtype, learner in learners.items():
    seconds = float(np.median(times[dtype]))
    forward = count_forward_flops(learner.network,
                                  facts['observation_spec'].shape)
    # Forward over T+1 steps, backward ≈ 2× forward.
    flops_per_step = 3 * forward * (t + 1) * b
    results[dtype] = (t * b / seconds, flops_per_step / seconds, forward)
  return results


def bench_end_to_end(config_path: str, compute_dtype: str, seconds: float,
                     warmup: float):
  """Runs launch.train as a subprocess; learner frames/s after warm-up."""
  logdir = tempfile.mkdtemp(prefix=f'tf_impala_bench_{compute_dtype}_')
  cmd = [sys.executable, '-m', 'launch.train', f'--config={config_path}',
         f'--logdir={logdir}', '--config.logging.progress_every_secs=10',
         f'--config.network.compute_dtype={compute_dtype}']
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
  parser.add_argument('--compute_dtype', default='float32,bfloat16',
                      help='comma-separated compute dtypes, measured side by '
                      'side; ratios are to the first')
  parser.add_argument('--env_secs', type=float, default=15)
  parser.add_argument('--actor_secs', type=float, default=30)
  parser.add_argument('--learner_rounds', type=int, default=4)
  parser.add_argument('--learner_steps_per_round', type=int, default=2)
  parser.add_argument('--e2e_secs', type=float, default=150)
  parser.add_argument('--e2e_warmup_secs', type=float, default=75)
  args = parser.parse_args()
  dtypes = args.compute_dtype.split(',')
  for dtype in dtypes:
    if dtype not in ('float32', 'bfloat16'):
      parser.error(f"--compute_dtype: each entry must be 'float32' or "
                   f"'bfloat16'; got {dtype!r}")
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
                 cpus=os.cpu_count(), compute_dtypes=dtypes,
                 auto_resolves_to=builder.compute_dtype(
                     with_dtype(config, 'auto'))[1])
  per = {dtype: {} for dtype in dtypes}
  results['per_dtype'] = per
  print(f'# {args.config}: {config.env.game}, {config.network.torso} network, '
        f'T={config.unroll_length}, B={config.batch_size}, dtypes {dtypes}, '
        f'{os.cpu_count()} CPUs; auto = {results["auto_resolves_to"]}',
        flush=True)

  env_rate = bench_env(config, args.env_secs)
  results['env_steps_per_sec'] = env_rate
  print(f'environment only: {env_rate:,.0f} env steps/s '
        f'({env_rate * skip:,.0f} frames/s), 1 process', flush=True)

  for dtype in dtypes:
    peak = matmul_peak_flops(dtype)
    per[dtype]['matmul_peak_gflops'] = peak / 1e9
    print(f'[{dtype}] dense matmul peak (2048²): {peak / 1e9:.1f} GFLOP/s',
          flush=True)

  for dtype in dtypes:
    rate = bench_actor(with_dtype(config, dtype), facts, args.actor_secs)
    per[dtype]['actor_steps_per_sec'] = rate
    print(f'[{dtype}] actor ({config.num_envs_per_actor} envs, batched '
          f'inference, Reverb writes): {rate:,.0f} env steps/s '
          f'({rate * skip:,.0f} frames/s), 1 process', flush=True)

  learners = bench_learners(config, facts, dtypes, args.learner_rounds,
                            args.learner_steps_per_round)
  for dtype, (steps_per_sec, achieved, forward) in learners.items():
    peak = per[dtype]['matmul_peak_gflops'] * 1e9
    per[dtype].update(learner_agent_steps_per_sec=steps_per_sec,
                      learner_gflops=achieved / 1e9,
                      forward_mflops_per_agent_step=forward / 1e6,
                      learner_fraction_of_peak=achieved / peak)
    print(f'[{dtype}] learner: {steps_per_sec:,.0f} agent steps/s '
          f'({steps_per_sec * skip:,.0f} frames/s); {forward / 1e6:.1f} MFLOP '
          f'forward per agent step; {achieved / 1e9:.1f} GFLOP/s = '
          f'{100 * achieved / peak:.1f}% of the {dtype} matmul peak',
          flush=True)

  if args.e2e_secs > 0:
    for dtype in dtypes:
      fps, logdir = bench_end_to_end(args.config, dtype, args.e2e_secs,
                                     args.e2e_warmup_secs)
      per[dtype].update(e2e_frames_per_sec=fps,
                        e2e_agent_steps_per_sec=fps / skip, e2e_logdir=logdir)
      print(f'[{dtype}] end to end (launch.train, {config.num_actors} actors '
            f'× {config.num_envs_per_actor} envs + learner): {fps / skip:,.0f} '
            f'agent steps/s = {fps:,.0f} frames/s (learner frames consumed)',
            flush=True)

  base = dtypes[0]
  for dtype in dtypes[1:]:
    ratios = {key: per[dtype][key] / per[base][key]
              for key in ('matmul_peak_gflops', 'actor_steps_per_sec',
                          'learner_agent_steps_per_sec', 'e2e_frames_per_sec')
              if key in per[dtype]}
    per[dtype]['ratios_to_' + base] = ratios
    print(f'{dtype}/{base}: ' + ', '.join(
        f'{key.replace("_per_sec", "").replace("_gflops", "")} '
        f'{value:.2f}×' for key, value in ratios.items()), flush=True)

  out_dir = os.path.join(ROOT, 'benchmarks', 'results')
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'throughput.json'), 'w') as f:
    json.dump(results, f, indent=2)
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  main()
