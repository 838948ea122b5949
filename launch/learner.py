r"""Runs the learner role against a (remote) Reverb server.

  python -m launch.reverb_server --config=configs/atari.py --port=8000   # host A
  python -m launch.actor --config=configs/atari.py --reverb_address=A:8000 --actor_id=0
  python -m launch.learner --config=configs/atari.py --reverb_address=A:8000 \
      --logdir=DIR [--tpu=NAME | --use_gpu]

Same loop, checkpoints, exports and logs as launch/train.py, without local
actors; the stall watchdog reports when the server or the actors go away.
A server that does not answer (at start, or after a restart) is retried for
config.replay.reconnect_secs, with the outage in the log, then the learner
saves and exits with `error: …`. At total_frames it publishes its final
weights marked as such, and the actors stop.
"""

from launch import version_check

version_check.check()

# pylint: disable=g-import-not-at-top,g-bad-import-order
import os
import sys
import threading

from absl import app
from absl import flags
from ml_collections import config_flags

from launch import cli
from launch import learner_loop
from launch import memory
from launch import run_setup
from launch import strategy as strategy_lib
from replay import connection

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file (optionally :arg).',
    lock_config=True)
_LOGDIR = flags.DEFINE_string('logdir', None,
                              'Run directory; an existing one is resumed.')
_REVERB_ADDRESS = flags.DEFINE_string('reverb_address', None,
                                      'HOST:PORT of the Reverb server.')
_TPU = flags.DEFINE_string('tpu', None, 'Cloud TPU name for the learner.')
_USE_GPU = flags.DEFINE_bool('use_gpu', False,
                             'Mirror the learner over all visible GPUs.')
flags.mark_flags_as_required(['config', 'logdir', 'reverb_address'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  try:  # every check before any file exists
    strategy = strategy_lib.get_strategy(_TPU.value, _USE_GPU.value)
    facts = run_setup.validate_and_describe(config, strategy)
    run_setup.check_logdir(_LOGDIR.value, config)
  except ValueError as e:
    sys.exit(f'error: {e}')
  run_setup.prepare_logdir(_LOGDIR.value, config)
  memory.start_trimming()
  stop = threading.Event()
  run_setup.install_stop_handlers(stop)
  try:
    clean = learner_loop.run(config, facts=facts, strategy=strategy,
                             logdir=_LOGDIR.value,
                             server_address=_REVERB_ADDRESS.value, stop=stop)
  except (learner_loop.SaveFailedError,
          connection.ServerUnreachableError) as e:
    sys.stdout.flush()
    sys.stderr.write(f'error: {e}\n')
    sys.stderr.flush()
    os._exit(1)  # a thread may still wait on the dead server's dataset
  if not clean:
    os._exit(1)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
