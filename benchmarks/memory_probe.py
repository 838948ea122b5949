r"""Resident memory per call of each actor and learner operation (issue 11).

  python benchmarks/memory_probe.py --calls=20000

Builds the real actor of --config (default: the smoke config, Catch) against
a Reverb server in a child process (so the server's own memory is not
counted), publishes the learner's initial weights once and drains the queue
from the child. Then, for each operation, it makes --warmup calls, reads this
process's RSS, makes --calls more, reads RSS again, calls glibc's
`malloc_trim(0)` and reads it a third time. It prints, per operation, the
growth in KiB per call before and after the trim: growth that the trim gives
back was freed memory the allocator kept, not a leak.

Operations: the actor's batched policy step (`Actor.select_action`), a whole
batched agent step without weight polls or episode reports (policy step,
environment steps and one `UnrollWriter.append` per environment) and its
parts (`env_steps`: one step of every environment; `writer_appends`: one
append of a fixed step per environment's writer; `stack_observations`: the
observations' np.stack after a reset of every environment), one weight
poll (`VariableSubscriber.update`: without a new publish it only asks the
server), one pull of the weights (`update(wait=True)`), one episode report
(`EpisodeReporter.report`), one eager `tf.summary.scalar` as the
learner's summaries call it, and one publish of the learner's weights
(`VariablePublisher.publish`) to the child's server (as in split roles) and
to a server in this process (as `launch.train` ran it until 2026-12;
since then its server is a child process, launch/server_process.py).

With --tracemalloc=N it also traces the measured calls' Python-level
allocations (tracemalloc, which sees EagerTensors and NumPy arrays but not
C++ allocations) and prints, per operation, the N allocation sites whose
live memory grew most, each with the innermost frame in this repository.
Tracing slows every call: calls/s then means nothing.

Linux with glibc only (malloc_trim, /proc through psutil).
"""

import ctypes
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc

from absl import app
from absl import flags
import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from benchmarks.dtype_profile import load_config  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = flags.DEFINE_string('config', 'configs/smoke.py', 'Config file.')
_CALLS = flags.DEFINE_integer('calls', 20000, 'Measured calls per operation.')
_WARMUP = flags.DEFINE_integer('warmup', 2000, 'Unmeasured calls first.')
_ONLY = flags.DEFINE_list('only', [], 'Operations to run (default: all).')
_TRACE = flags.DEFINE_integer(
    'tracemalloc', 0, 'If > 0, print the N Python allocation sites that grew '
    'most during each operation\'s measured calls (slow).')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _print_growth(before, after, top: int, calls: int) -> None:
  """The `top` tracebacks whose live bytes grew most, per call."""
  for stat in after.compare_to(before, 'traceback')[:top]:
    if stat.size_diff <= 0:
      break
    frames = list(stat.traceback)
    ours = [f for f in frames if f.filename.startswith(REPO)
            and 'site-packages' not in f.filename]
    where = lambda f: f'{os.path.relpath(f.filename, REPO)}:{f.lineno}'
    print(f'    {stat.size_diff / calls:8.1f} B/call  {stat.count_diff / calls:6.2f} '
          f'blocks/call  {where(ours[-1]) if ours else "-":<28} '
          f'in {where(frames[-1])}', flush=True)


def _serve(config_path, port_queue, stop):
  """Child process: the run's Reverb server, and a thread draining the queue."""
  import threading  # pylint: disable=g-import-not-at-top
  import reverb  # pylint: disable=g-import-not-at-top
  from launch import builder  # pylint: disable=g-import-not-at-top
  from replay import tables  # pylint: disable=g-import-not-at-top
  config = load_config(config_path)
  facts = builder.environment_facts(config)
  server = builder.make_server(config, facts)
  port_queue.put(server.port)
  client = reverb.Client(f'localhost:{server.port}')

  def drain():
    while True:
      for _ in client.sample(tables.QUEUE_TABLE, num_samples=1000,
                               emit_timesteps=False):
        pass
  threading.Thread(target=drain, daemon=True).start()
  stop.wait()


def _rss_kib() -> float:
  return psutil.Process().memory_info().rss / 1024


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from launch import builder  # pylint: disable=g-import-not-at-top
  import tree  # pylint: disable=g-import-not-at-top
  from agent import actor as agent_lib  # pylint: disable=g-import-not-at-top
  from replay import variables  # pylint: disable=g-import-not-at-top

  libc = ctypes.CDLL('libc.so.6')
  config = load_config(_CONFIG.value)
  facts = builder.environment_facts(config)
  ctx = multiprocessing.get_context('spawn')
  port_queue, stop = ctx.Queue(), ctx.Event()
  server = ctx.Process(target=_serve, args=(_CONFIG.value, port_queue, stop),
                       daemon=True)
  server.start()
  address = f'localhost:{port_queue.get(timeout=120)}'

  actor = builder.make_actor(config, facts, address, actor_id=0)
  learner_network = builder.make_network(config, facts)
  learner_steps = tf.Variable(0, dtype=tf.int64)
  publisher = variables.VariablePublisher(
      address, learner_network.trainable_variables, learner_steps)
  publisher.publish()
  in_process = {}

  def publish_in_process():
    # As `launch.train` ran it until 2026-12: the server in the learner's process.
    if not in_process:
      in_process['server'] = builder.make_server(config, facts)
      in_process['publisher'] = variables.VariablePublisher(
          f'localhost:{in_process["server"].port}',
          learner_network.trainable_variables, learner_steps)
    in_process['publisher'].publish()
  subscriber, reporter = actor._subscriber, actor._reporter  # pylint: disable=protected-access
  actor.update(wait=True)
  actor.observe_first()

  def agent_step():
    actions, logits = actor.select_action()
    actor.observe(actions, logits)

  envs, writers = actor._envs, actor._writers  # pylint: disable=protected-access

  def env_steps():
    for env in envs:
      if env.step(0).last():
        env.reset()

  # One agent step's writes with fixed values (the step fields of stream 0).
  fixed_step = dict(
      observation=tree.map_structure(lambda x: x[0], actor._observation),  # pylint: disable=protected-access
      first=False, reward=np.float32(0), discount=np.float32(1),
      prev_action=np.int32(0), action=np.int32(0),
      behaviour_logits=np.zeros([facts["num_actions"]], np.float32),
      task_id=np.int32(0),
      core_state=tuple(np.zeros([config.network.lstm_size], np.float32)
                       for _ in range(2)))

  def writer_appends():
    for w in writers:
      w.append(fixed_step)

  def stack_observations():
    agent_lib._stack([env.reset().observation for env in envs])  # pylint: disable=protected-access

  writer = tf.summary.create_file_writer(tempfile.mkdtemp())
  step = [0]

  def summary():
    step[0] += 1
    with writer.as_default(step=step[0]):
      tf.summary.scalar('probe/value', np.float32(step[0] % 7))

  operations = {
      'policy_step': actor.select_action,
      'agent_step': agent_step,
      'env_steps': env_steps,
      'writer_appends': writer_appends,
      'stack_observations': stack_observations,
      'weight_poll': lambda: subscriber.update(wait=False),
      'weight_pull': lambda: subscriber.update(wait=True),
      'episode_report': lambda: reporter.report(
          actor_id=0, task_id=0, episode_return=1.0, episode_length=9,
          episode_frames=9),
      'summary_scalar': summary,
      'weight_publish': publisher.publish,
      'weight_publish_in_process': publish_in_process,
  }
  actor._subscriber, actor._reporter = None, None  # pylint: disable=protected-access
  names = _ONLY.value or list(operations)
  print(f'# {_CONFIG.value}: {config.num_envs_per_actor} envs per actor; '
        f'{_WARMUP.value} warm-up + {_CALLS.value} measured calls each')
  print(f'{"operation":<25} {"calls/s":>9} {"KiB/call":>9} '
        f'{"after trim":>11} {"RSS MiB":>8}', flush=True)
  for name in names:
    fn = operations[name]
    for _ in range(_WARMUP.value):
      fn()
    if _TRACE.value:
      tracemalloc.start(30)
      traced = tracemalloc.take_snapshot()
    libc.malloc_trim(0)
    before = _rss_kib()
    start = time.time()
    for _ in range(_CALLS.value):
      fn()
    secs = time.time() - start
    if _TRACE.value:
      snapshot = tracemalloc.take_snapshot()
      tracemalloc.stop()
    grown = _rss_kib()
    libc.malloc_trim(0)
    trimmed = _rss_kib()
    print(f'{name:<25} {_CALLS.value / secs:>9,.0f} '
          f'{(grown - before) / _CALLS.value:>9.3f} '
          f'{(trimmed - before) / _CALLS.value:>11.3f} {trimmed / 1024:>8.0f}',
          flush=True)
    if _TRACE.value:
      _print_growth(traced, snapshot, _TRACE.value, _CALLS.value)
  writer.close()
  stop.set()
  server.join(timeout=10)
  os._exit(0)  # pylint: disable=protected-access


if __name__ == '__main__':
  app.run(main)
