r"""Trains IMPALA on one machine: Reverb server, actor processes and learner.

  python -m launch.train --config=configs/atari.py --logdir=logs/pong
  python -m launch.train --config=configs/atari.py:breakout \
      --config.num_actors=4 --logdir=logs/breakout

Starting again with the same --logdir resumes from its latest checkpoint
(frames, learner steps and the learning-rate schedule continue). Runs with
HER replay also restore the Reverb tables (replay contents) from the Reverb
checkpoint in LOGDIR/reverb, written every replay.checkpoint_every_secs and
at shutdown. Ctrl-C or
SIGTERM stops cleanly: final checkpoint, policy export, learning curve, and
every actor process shut down. Outputs under --logdir: checkpoints/,
tensorboard/, episodes.csv, learning_curve.png, policy/ (SavedModel),
actors/actor_<i>.log, reverb_server.log, config.json.

--logdir may be on any TensorFlow filesystem (gs://bucket/run): checkpoints,
TensorBoard, the policy, episodes.csv (copied every checkpoint interval),
the learning curve and config.json go there; actor logs and the Reverb
checkpoint (HER replay) stay on this machine's disk, in a directory under the
system temp dir that the log names (launch/run_setup.py `local_dir`).

The Reverb server runs as a child process (`launch.reverb_server`,
launch/server_process.py). It is unauthenticated and binds every address, so by
default the whole run executes in a private network namespace with loopback
only (--network_isolation, launch/isolation.py; README "Security").
"""

import sys

from launch import isolation

# Before TensorFlow is imported: a fenced run re-runs in a child from here.
UNFENCED = (isolation.fence_or_reason(sys.argv, 'launch.train')
            if __name__ == '__main__' else None)

from launch import version_check  # pylint: disable=g-import-not-at-top,g-bad-import-order

version_check.check()

# pylint: disable=g-import-not-at-top,g-bad-import-order
import os
import threading

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from launch import cli
from launch import learner_loop
from launch import memory
from launch import run_setup
from launch import server_process
from launch import strategy as strategy_lib
from launch import supervisor as supervisor_lib

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file (optionally :arg).',
    lock_config=True)
_LOGDIR = flags.DEFINE_string(
    'logdir', None, 'Run directory; an existing one is resumed.')
_TPU = flags.DEFINE_string('tpu', None, 'Cloud TPU name for the learner.')
_USE_GPU = flags.DEFINE_bool('use_gpu', False,
                             'Mirror the learner over all visible GPUs.')
_REVERB_PORT = flags.DEFINE_integer(
    'reverb_port', 0, 'Port of the run\'s Reverb server process (0: a free port).')
flags.DEFINE_enum('network_isolation', 'auto', isolation.MODES,
                  isolation.HELP)  # acted on before TF is imported (above)
flags.mark_flags_as_required(['config', 'logdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config, logdir = _CONFIG.value, _LOGDIR.value
  try:  # every check before any file, server or process exists
    strategy = strategy_lib.get_strategy(_TPU.value, _USE_GPU.value)
    facts = run_setup.validate_and_describe(config, strategy)
    run_setup.check_logdir(logdir, config)
    cli.check_port_free(_REVERB_PORT.value, '--reverb_port')
  except ValueError as e:
    sys.exit(f'error: {e}')
  if UNFENCED:
    logging.warning(isolation.EXPOSED, UNFENCED)
  config_path = run_setup.prepare_logdir(logdir, config)
  memory.start_trimming()
  # Actors get this run's exact config, however it was given.
  config_args = [f'--config={run_setup.FROM_JSON_CONFIG}:{os.path.abspath(config_path)}']

  stop = threading.Event()
  run_setup.install_stop_handlers(stop)
  # Reverb's checkpointer and the actor logs need a local disk: for a logdir
  # on another filesystem (gs://…) they go to run_setup.local_dir(logdir).
  local = run_setup.local_dir(logdir)
  # Its own process: publishing into a server of the learner's own process
  # leaked (launch/server_process.py).
  server = server_process.ServerProcess(
      config_args, _REVERB_PORT.value or server_process.free_port(),
      checkpoint_dir=os.path.join(local, 'reverb'),
      log_path=os.path.join(local, 'reverb_server.log'),
      env={'CUDA_VISIBLE_DEVICES': '', 'TF_CPP_MIN_LOG_LEVEL': '2'})
  try:
    server.start()
  except server_process.ServerStartError as e:
    sys.exit(f'error: {e}')
  address = server.address
  if isolation.inside():
    logging.info('Reverb server on %s, in this run\'s private network '
                 'namespace.', address)
  else:
    logging.info('Reverb server on %s.', address)
  if local != logdir:
    logging.info('Actor logs and Reverb checkpoints (local disk): %s', local)
  supervisor = supervisor_lib.ActorSupervisor(
      lambda i: [sys.executable, '-m', 'launch.actor',
                 f'--reverb_address={address}', f'--actor_id={i}'] + config_args,
      config.num_actors, os.path.join(local, 'actors'),
      env={'CUDA_VISIBLE_DEVICES': '', 'TF_CPP_MIN_LOG_LEVEL': '2'})
  clean, failure = False, None
  try:
    clean = learner_loop.run(config, facts=facts, strategy=strategy,
                             logdir=logdir, server_address=address, stop=stop,
                             supervisor=supervisor, server=server)
  except (learner_loop.SaveFailedError, server_process.ServerStartError) as e:
    failure = f'error: {e}'
  finally:
    logging.info('Learner loop finished.')
    supervisor.stop()
    server.stop()
  if failure:
    sys.exit(failure)
  logging.info('Done. Logs, checkpoints and policy in %s', logdir)
  if not clean:
    os._exit(1)  # a thread is stuck in a Reverb read; nothing left to save


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
