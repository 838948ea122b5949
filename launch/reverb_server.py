r"""Runs the Reverb server (queue, variables and episodes tables) alone.

  python -m launch.reverb_server --config=configs/atari.py --port=8000

The table signature is derived from the config's environment and network
(launch/builder.py), so actors and learner started with the same config fit.
"""

from launch import version_check

version_check.check()

# pylint: disable=g-import-not-at-top,g-bad-import-order
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tensorflow as tf

from launch import builder
from launch import cli
from launch import isolation
from launch import memory
from launch import run_setup

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file (optionally :arg).',
    lock_config=True)
_PORT = flags.DEFINE_integer('port', 8000, 'Port to serve on.')
_CHECKPOINT_DIR = flags.DEFINE_string(
    'checkpoint_dir', None, 'Reverb checkpoints of runs with HER replay: the '
    'server restores its tables from here and the learner writes them here.')
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  try:
    facts = run_setup.validate_and_describe(config, tf.distribute.get_strategy())
    cli.check_port_free(_PORT.value, '--port')
  except ValueError as e:
    sys.exit(f'error: {e}')
  if config.replay.replay_proportion > 0 and not _CHECKPOINT_DIR.value:
    sys.exit('error: --checkpoint_dir is required with HER replay '
             '(config.replay.replay_proportion > 0): without it the learner '
             "checkpoints the tables into a temporary directory that a "
             'restarted server never reads.')
  server = builder.make_server(config, facts, port=_PORT.value,
                               checkpoint_dir=_CHECKPOINT_DIR.value)
  logging.info('Reverb server listening on port %d.', server.port)
  memory.start_trimming()
  if isolation.inside():  # launch.train's child, in its private namespace
    logging.info('Only this run\'s private network namespace (loopback) can '
                 'reach it (launch/isolation.py).')
  else:
    logging.warning(
        'It listens on ALL network addresses, unauthenticated and '
        'unencrypted (Reverb 0.14 serves insecure gRPC and takes no bind '
        'address): anyone who can reach port %d can read the weights and '
        'insert data. Admit only this run\'s hosts: a firewall rule or a '
        'Kubernetes NetworkPolicy (README "Security").', server.port)
  server.wait()


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
