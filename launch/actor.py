r"""Runs one actor process against a Reverb server.

  python -m launch.actor --config=configs/atari.py \
      --reverb_address=HOST:PORT --actor_id=0

Steps `config.num_envs_per_actor` environments with batched inference, writes
unrolls to the server's queue, polls the learner's weights every
`config.actor_update_period` agent steps and reports finished episodes.
launch/train.py starts this same entry point for every local actor.
"""

from launch import version_check

version_check.check()

# pylint: disable=g-import-not-at-top,g-bad-import-order
import os
import signal
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tensorflow as tf

from launch import builder
from launch import cli
from launch import validate

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file (optionally :arg).',
    lock_config=True)
_REVERB_ADDRESS = flags.DEFINE_string('reverb_address', None,
                                      'HOST:PORT of the Reverb server.')
_ACTOR_ID = flags.DEFINE_integer('actor_id', 0, 'Index of this actor (seeds).')
flags.mark_flags_as_required(['config', 'reverb_address'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  # An actor holds nothing worth saving (unflushed items are re-generated):
  # SIGTERM ends it at once, even while a write blocks on a full queue.
  signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
  try:
    validate.validate_config(config)
  except ValueError as e:
    sys.exit(f'error: {e}')
  tf.config.threading.set_intra_op_parallelism_threads(config.actor_tf_threads)
  tf.config.threading.set_inter_op_parallelism_threads(config.actor_tf_threads)
  tf.config.set_visible_devices([], 'GPU')
  facts = builder.environment_facts(config)
  actor = builder.make_actor(config, facts, _REVERB_ADDRESS.value,
                             _ACTOR_ID.value)
  logging.info('Actor %d: computes in %s (%s); waiting for the learner\'s '
               'first weights at %s.', _ACTOR_ID.value,
               *builder.compute_dtype(config), _REVERB_ADDRESS.value)
  step = actor.update(wait=True)
  logging.info('Actor %d: got weights of learner step %s; acting in %d '
               'environments.', _ACTOR_ID.value, step, config.num_envs_per_actor)
  actor.run()


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
