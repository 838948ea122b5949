r"""Runs one actor process against a Reverb server.

  python -m launch.actor --config=configs/atari.py \
      --reverb_address=HOST:PORT --actor_id=0

Steps `config.num_envs_per_actor` environments with batched inference, writes
unrolls to the server's queue, polls the learner's weights every
`config.actor_update_period` agent steps and reports finished episodes.
launch/train.py starts this same entry point for every local actor.

A Reverb server that does not answer (at start, or lost while acting: a
restart) is waited for up to config.replay.reconnect_secs, with the outage in
the log; then the actor reconnects with new writers and starts fresh
episodes, or exits with `error: …`. It exits 0 once the learner has published
its final weights.
"""

from launch import version_check

version_check.check()

# pylint: disable=g-import-not-at-top,g-bad-import-order
import os
import signal
import sys
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import reverb
import tensorflow as tf

from launch import builder
from launch import cli
from launch import memory
from launch import validate
from replay import connection

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
  memory.start_trimming()
  tf.config.threading.set_intra_op_parallelism_threads(config.actor_tf_threads)
  tf.config.threading.set_inter_op_parallelism_threads(config.actor_tf_threads)
  tf.config.set_visible_devices([], 'GPU')
  facts = builder.environment_facts(config)
  address, actor_id = _REVERB_ADDRESS.value, _ACTOR_ID.value
  watch = connection.ServerWatch(address, config.replay.reconnect_secs)
  client = reverb.Client(address)
  try:
    watch.wait_until_up(client)
    actor = builder.make_actor(config, facts, address, actor_id)
    logging.info('Actor %d: computes in %s (%s); waiting for the learner\'s '
                 'first weights at %s.', actor_id,
                 *builder.compute_dtype(config), address)
    step = _first_weights(actor, watch)
    logging.info('Actor %d: got weights of learner step %s; acting in %d '
                 'environments.', actor_id, step, config.num_envs_per_actor)
    while True:
      try:
        actor.run()
        break
      except Exception as e:  # pylint: disable=broad-except
        watch.failed(e)  # a bug re-raises; a long outage raises Unreachable
        watch.wait_until_up(client)
        actor.reconnect(*builder.make_actor_connections(
            config, facts, address, actor.network))
  except connection.ServerUnreachableError as e:
    sys.stderr.flush()
    sys.stderr.write(f'error: {e}\n')
    os._exit(1)  # writers of the lost server may block a clean exit
  logging.info('Actor %d: the learner has finished (%d agent steps, %d '
               'episodes); stopping.', actor_id, actor.agent_steps,
               actor.episodes)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # closing writers would wait on a full queue nobody reads


def _first_weights(actor, watch):
  """Polls until the learner has published; logs while it waits."""
  waited = time.time()
  while True:
    try:
      step = actor.update(wait=False)
    except Exception as e:  # pylint: disable=broad-except
      watch.failed(e)
      step = None
    else:
      watch.ok()
    if step is not None:
      return step
    if time.time() - waited >= 60:
      waited = time.time()
      logging.info('Still waiting for the learner\'s first weights.')
    time.sleep(0.5)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
