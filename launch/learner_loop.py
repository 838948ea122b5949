"""The learner process's loop, shared by launch/train.py and launch/learner.py.

Threads: a learner thread runs train steps, publishes weights after each one,
and every `checkpoint_every_secs` writes a checkpoint and exports the policy;
the calling (main) thread drains actors' episode records, writes TensorBoard
and episodes.csv, prints the progress line, supervises actors (when given a
supervisor) and handles stop requests. On exit: a final checkpoint, a final
SavedModel export to LOGDIR/policy, and LOGDIR/learning_curve.png.
"""

import gc
import os
import threading
import time

from absl import logging
import reverb
import tensorflow as tf

from agent import export
from launch import builder
from launch import console
from launch import goal_builder
from launch import monitoring
from launch import run_setup
from replay import connection
from replay import episodes
from replay import tables
from replay import variables

_MIN_JOIN_TIMEOUT_SECS = 10.0  # wait for the step in flight at shutdown


_MAX_FAILED_SAVES = 3  # periodic saves failing in a row before the run stops


class SaveFailedError(RuntimeError):
  """Checkpoint saves keep failing (e.g. the disk is full)."""


class _LearnerThread(threading.Thread):
  """Runs train steps until stop is requested or total_frames is reached.

  The batch is awaited OUTSIDE `step_lock` and the step runs inside it, so the
  main thread can take the lock and save a consistent checkpoint even while
  this thread is blocked on an empty (or dead) queue.
  """

  def __init__(self, learner, publisher, watchdog, config, facts, logdir, stop):
    super().__init__(daemon=True, name='learner')
    self.learner, self._publisher, self._watchdog = learner, publisher, watchdog
    self._config, self._facts, self._logdir = config, facts, logdir
    self._stop_requested = stop
    self.metrics, self.error = {}, None
    self.step_lock = threading.Lock()
    self._failed_saves = 0

  def run(self):
    try:
      last_save = last_publish = time.time()
      config = self._config
      while (not self._stop_requested.is_set()
             and self.learner.frames < config.total_frames):
        batch = self.learner.next_batch()
        with self.step_lock:
          if self._stop_requested.is_set():
            break
          self.metrics = self.learner.step_on(batch)
          self._watchdog.beat()
          now = time.time()
          if now - last_publish >= config.learner.publish_every_secs:
            self._publish()
            last_publish = now
          if now - last_save >= config.logging.checkpoint_every_secs:
            self._periodic_save()
            last_save = time.time()
    except SaveFailedError as e:  # a clear reason, not a bug: no traceback
      logging.error('%s', e)
      self.error = e
    except Exception as e:  # pylint: disable=broad-except
      logging.exception('Learner thread failed.')
      self.error = e

  def _publish(self):
    # While the server is away the push blocks (gRPC waits for it) or fails;
    # the main thread's ServerWatch logs the outage and ends it at the
    # deadline, and the next publish after a restart refills the table.
    try:
      self._publisher.publish()
    except Exception as e:  # pylint: disable=broad-except
      if not connection.is_connection_error(e):
        raise
      logging.warning('Cannot publish weights to the Reverb server (%s); '
                      'retrying at the next publish.', e)

  def _periodic_save(self):
    """save_and_export; a failed one (disk full…) is retried next interval.

    Training goes on, and the checkpoints and policy already written stay
    (a failed save leaves the older ones; a failed export leaves the old
    policy). After `_MAX_FAILED_SAVES` failures in a row the run stops with
    the reason (the final save is attempted once more).
    """
    try:
      self.save_and_export()
    except (tf.errors.OpError, OSError) as e:
      self._failed_saves += 1
      reason = str(e).splitlines()[0] if str(e) else type(e).__name__
      run_setup.clean_leftovers(self._logdir)  # a torn ckpt-*_temp, tmp export
      if self._failed_saves >= _MAX_FAILED_SAVES:
        raise SaveFailedError(
            f'{self._failed_saves} checkpoint saves in a row failed (last: '
            f'{reason}); stopping. The checkpoints and policy written before '
            f'are intact in {self._logdir}.') from e
      logging.error(
          'Cannot save a checkpoint or export the policy (%s). Training '
          'continues and the save is retried in %.0f s (%d of %d failures in '
          'a row before the run stops); the checkpoints and policy written '
          'before are intact.', reason,
          self._config.logging.checkpoint_every_secs, self._failed_saves,
          _MAX_FAILED_SAVES)
    else:
      self._failed_saves = 0

  def save_and_export(self):
    """Checkpoint + policy export; call with `step_lock` held."""
    self.learner.save()
    export_policy(self._config, self._facts, self.learner, self._logdir)
    # An export leaves its traced graphs, the copy network and their C++
    # buffers in reference cycles that Python's oldest GC generation reaches
    # only rarely in a process this size: without this the learner's RSS
    # grew ~5 MiB per export for 20 exports (smoke config, one a minute);
    # with it, 0.03 MiB per export (benchmarks/results/soak.md, issue 11.10).
    gc.collect()


def export_policy(config, facts, learner, logdir) -> str:
  """Exports the learner's current policy to LOGDIR/policy (atomically).

  The policy computes in the learner's compute dtype (its logits match the
  learner's network, SPEC §10); its inputs, outputs and variables are float32
  whatever that dtype.
  """
  network = builder.make_network(  # plain copy, no strategy
      config, facts, learner.network.compute_dtype)
  for target, value in zip(network.trainable_variables, learner.get_variables()):
    target.assign(value)
  path = os.path.join(logdir, 'policy')
  spec = facts['observation_spec']
  export.export_policy(network, path, observation_spec=spec,
                       metadata=builder.export_metadata(config, facts, learner),
                       popart_state=learner.popart_statistics())
  logging.info('Exported policy to %s (%d frames).', path, learner.frames)
  return path


def warm_start_distilled_policy(learner, prior_logdir: str) -> str:
  """Starts the learner's π0 from the latest checkpoint of a Distral run.

  Returns the checkpoint path. Raises ValueError if there is none or its π0
  does not fit this network (another torso, LSTM size or action set).
  """
  path = tf.train.latest_checkpoint(os.path.join(prior_logdir, 'checkpoints'))
  if path is None:
    raise ValueError(f'config.distral.prior_logdir={prior_logdir!r} holds no '
                     'checkpoint (expected a Distral run directory).')
  try:
    learner.network.distilled_policy_checkpoint().read(
        path).assert_existing_objects_matched().expect_partial()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(f'config.distral.prior_logdir: cannot take π0 from {path} '
                     f'({e}).') from None
  logging.info('Distilled policy π0 warm-started from %s.', path)
  return path


def run(config, *, facts, strategy: tf.distribute.Strategy, logdir: str,
        server_address: str, stop: threading.Event,
        supervisor=None, server=None) -> bool:
  """Trains until total_frames or `stop`; returns False if the learner hung.

  Args:
    config: the validated ConfigDict.
    facts: builder.environment_facts(config).
    strategy: the learner's tf.distribute strategy.
    logdir: run directory (checkpoints/, tensorboard/, episodes.csv, policy/),
      local or on any TensorFlow filesystem (gs://…); episodes.csv is then
      appended to locally (run_setup.local_dir) and copied there every
      logging.checkpoint_every_secs and at the end.
    server_address: HOST:PORT of the Reverb server.
    stop: set by signal handlers to end training cleanly.
    supervisor: an ActorSupervisor to poll (one-box runs), or None.
    server: a launch.server_process.ServerProcess to poll (restarted if it
      dies; one-box runs), or None.

  Raises:
    SaveFailedError: checkpoints kept failing.
    launch.server_process.ServerStartError: the server process died at once
      after a (re)start.
  """
  client = reverb.Client(server_address)
  watch = connection.ServerWatch(server_address, config.replay.reconnect_secs)
  # Says so at once if the server does not answer (the dataset would block).
  if not watch.wait_until_up(client, stop.is_set):
    return True
  with console.native_lines_filtered():  # the dataset's Reverb INFO line
    learner = builder.make_learner(config, facts, strategy, server_address,
                                   os.path.join(logdir, 'checkpoints'))
  logging.info('Learner computes in %s (%s)%s; variables and checkpoints are '
               'float32.', *builder.compute_dtype(config, strategy),
               ', XLA-compiled' if config.learner.jit_compile else '')
  resumed = learner.restore()
  if not resumed and config.distral.prior_logdir:
    warm_start_distilled_policy(learner, config.distral.prior_logdir)
  logging.info('%s at %d frames / %d learner steps.',
               'Resuming' if resumed else 'Starting', learner.frames,
               learner.learner_steps)
  publisher = variables.VariablePublisher(
      client, learner.network.trainable_variables,
      learner.learner_step_counter)
  publisher.publish()
  if supervisor is not None:
    supervisor.start()

  def describe():
    info = client.server_info(timeout=5)
    queue = info[tables.QUEUE_TABLE]
    actors = (f'{supervisor.alive()}/{supervisor.num_actors} actor processes alive'
              if supervisor else 'actors are remote')
    return (f'Reverb at {server_address}: queue holds {queue.current_size} of '
            f'{queue.max_size} unrolls; {actors}.')

  watchdog = monitoring.StallWatchdog(config.logging.stall_warning_secs, describe)
  summary_writer = tf.summary.create_file_writer(os.path.join(logdir, 'tensorboard'))
  episode_log = monitoring.EpisodeLog(logdir, facts['games'],
                                      config.logging.recent_episodes,
                                      local_dir=run_setup.local_dir(logdir))
  progress = monitoring.Progress(config.total_frames, learner.frames,
                                 learner.learner_steps)
  thread = _LearnerThread(learner, publisher, watchdog, config, facts, logdir,
                          stop)
  replay_saver = goal_builder.ReplayCheckpointer(client, config)
  replay_saver.log_contents()
  thread.start()
  last_progress = last_sync = time.time()
  try:
    with summary_writer.as_default():
      while thread.is_alive() and not stop.is_set():
        thread.join(timeout=1.0)
        replay_saver.maybe_checkpoint()
        if server is not None:
          server.poll()
        if supervisor is not None:
          supervisor.poll(stopping=stop.is_set())
        if time.time() - last_progress >= config.logging.progress_every_secs:
          last_progress = time.time()
          _drain(client, learner, episode_log, watch)
          _report(config, learner, thread, episode_log, progress,
                  supervisor, facts)
          if (time.time() - last_sync >=
              config.logging.checkpoint_every_secs):
            last_sync = time.time()
            _attempt('copying episodes.csv to the logdir', episode_log.sync)
        elif (not watch.down and
              _episodes_pending(client, watch) >= _EARLY_DRAIN_RECORDS):
          # Before the table fills.
          _drain(client, learner, episode_log, watch)
      _drain(client, learner, episode_log, watch)
      _report(config, learner, thread, episode_log, progress,
              supervisor, facts)
  except KeyboardInterrupt:
    stop.set()
  finally:
    stop.set()
    thread.join(timeout=max(_MIN_JOIN_TIMEOUT_SECS,
                            config.logging.stall_warning_secs))
    watchdog.stop()
    # Each finalisation step runs even if an earlier one fails. The state is
    # always that of the last completed step (a non-finite step raises before
    # it applies anything), so it is saved whatever stopped the learner.
    with thread.step_lock:  # free unless a step or periodic save is running
      _attempt('final checkpoint and export', thread.save_and_export)
      # What a failed save leaves (disk full): ckpt-*_temp, policy.tmp-*.
      _attempt('removing partial saves',
               lambda: run_setup.clean_leftovers(logdir))
    thread.join(timeout=_MIN_JOIN_TIMEOUT_SECS)
    hung = thread.is_alive()
    if hung:
      logging.error('The learner is blocked waiting for data (%s); its state '
                    'was saved from the main thread.', _safe(describe))
    if learner.frames >= config.total_frames:  # split-mode actors stop
      _attempt('publishing the final weights', lambda: _with_timeout(
          lambda: publisher.publish(final=True), _FINAL_PUBLISH_TIMEOUT_SECS))
    if supervisor is not None:
      # Actors report episodes until they stop: stop them, then drain, so
      # every episode they reported reaches episodes.csv (issue 11.9).
      _attempt('stopping the actors', lambda: supervisor.stop(
          exit_wait=_ACTOR_EXIT_WAIT_SECS if learner.frames >=
          config.total_frames else 0.0))
      if not watch.down:
        _attempt('draining the last episode records',
                 lambda: _drain(client, learner, episode_log, watch))
    path = _attempt('checkpointing Reverb', replay_saver.checkpoint)
    if path:
      logging.info('Reverb checkpoint (replay contents): %s', path)
    _attempt('closing episodes.csv', episode_log.close)
    _attempt('flushing TensorBoard', summary_writer.flush)
    png = _attempt('plotting the learning curve', lambda: (
        monitoring.plot_learning_curve(
            episode_log.path, os.path.join(logdir, 'learning_curve.png'),
            title=f"{', '.join(facts['games'])}: IMPALA"
                  + (' + PopArt' if config.learner.popart else '')
                  + (f' + Distral {config.distral.variant}'
                     if builder.distral_coefficients(config) else ''))))
    if png:
      logging.info('Learning curve: %s (episodes: %s)', png, episode_log.path)
  if thread.error is not None:
    raise thread.error
  if learner.frames >= config.total_frames:
    logging.info('Reached total_frames=%d (%d learner steps).',
                 config.total_frames, learner.learner_steps)
  return not hung


def _attempt(what, fn):
  try:
    return fn()
  except (tf.errors.OpError, OSError) as e:  # disk full, permissions: no bug
    logging.error('Failed %s at shutdown: %s', what,
                  str(e).splitlines()[0] if str(e) else type(e).__name__)
    return None
  except Exception:  # pylint: disable=broad-except
    logging.exception('Failed %s at shutdown.', what)
    return None


_FINAL_PUBLISH_TIMEOUT_SECS = 10
# After the final publish, seconds for supervised actors to see it and exit.
_ACTOR_EXIT_WAIT_SECS = 10.0


def _with_timeout(fn, timeout_secs):
  """fn() in a daemon thread: a push to a dead server blocks forever."""
  errors = []

  def target():
    try:
      fn()
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)
  worker = threading.Thread(target=target, daemon=True)
  worker.start()
  worker.join(timeout_secs)
  if worker.is_alive():
    raise TimeoutError(f'no answer from the Reverb server in {timeout_secs} s')
  if errors:
    raise errors[0]


def _safe(fn):
  try:
    return fn()
  except Exception as e:  # pylint: disable=broad-except
    return f'(unavailable: {e})'


# Pending episode records that trigger a drain before the next progress line
# (the table holds replay.tables' 100,000): no record is ever evicted unless
# the actors finish 90,000 episodes within one progress interval. Draining
# every second instead would print Reverb's C++ "Sampler and server are
# owned by the same process" line every second.
_EARLY_DRAIN_RECORDS = 10_000


def _episodes_pending(client, watch) -> int:
  """Pending episode records (0 while the server does not answer)."""
  try:
    pending = client.server_info(timeout=5)[tables.EPISODES_TABLE].current_size
  except Exception as e:  # pylint: disable=broad-except
    watch.failed(e)  # a bug re-raises; a long outage raises Unreachable
    return 0
  watch.ok()
  return pending


def _drain(client, learner, episode_log, watch):
  """Moves pending episode records into episodes.csv; counts drops."""
  frames = learner.frames
  try:
    # The server is another process: its sample prints no INFO line here,
    # and it may wait out a server restart (no console window around it).
    records, dropped = episodes.drain_episodes_counting_drops(
        client, timeout_secs=5)
  except Exception as e:  # pylint: disable=broad-except
    watch.failed(e)
    return
  watch.ok()
  num_tasks = len(episode_log.recent_by_task)
  kept, rejected = [], []
  for record in records:
    why = episodes.invalid_reason(record, num_tasks)
    (rejected if why else kept).append((record, why))
  if rejected:
    logging.warning('Ignored %d episode records that no actor of this run can '
                    'have sent (first: %s: %s).', len(rejected),
                    rejected[0][1], rejected[0][0])
  records = [record for record, _ in kept]
  episode_log.add(records, frames)
  episode_log.count_dropped(dropped, frames)


def _report(config, learner, thread, episode_log, progress, supervisor,
            facts):
  # Frames and learner steps read together (under the step lock), so the
  # progress line never pairs the frames of one step with another's count.
  with thread.step_lock:
    frames, learner_steps = learner.frames, learner.learner_steps
  metrics = dict(thread.metrics)
  monitoring.write_metrics(metrics, frames, facts['games'])
  coefficients = builder.distral_coefficients(config)
  if coefficients is not None:
    monitoring.write_distral_coefficients(*coefficients, frames)
  statistics = learner.popart_statistics()
  if statistics is not None:
    monitoring.write_popart(statistics, facts['games'], frames)
  extra = monitoring.learner_summary(metrics) + (
      f' | actors {supervisor.alive()}/{supervisor.num_actors}'
      if supervisor is not None else '')
  logging.info(progress.line(frames, learner_steps,
                             episode_log.mean_recent_return(),
                             len(episode_log.recent_returns), extra))
  if len(facts['games']) > 1:
    logging.info('per game (last %d episodes each): %s',
                 episode_log.recent_by_task[0].maxlen,
                 episode_log.per_game_line())
