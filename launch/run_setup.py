"""Start-of-run steps shared by the launchers (no flags here)."""

import json
import os
import signal
import threading

from absl import logging
import ml_collections
import tensorflow as tf

from launch import builder
from launch import validate


def validate_and_describe(config: ml_collections.ConfigDict,
                          strategy: tf.distribute.Strategy):
  """Validates the config and returns builder.environment_facts.

  Raises:
    ValueError: naming the bad field, before anything is written or started.
  """
  validate.validate_config(config, num_replicas=strategy.num_replicas_in_sync)
  return builder.environment_facts(config)


def prepare_logdir(logdir: str, config: ml_collections.ConfigDict) -> None:
  """Creates the run directory and records the config (config.json).

  A resumed run whose config differs from the recorded one keeps the old file
  as config.json and writes the new one beside it, with a warning.
  """
  os.makedirs(logdir, exist_ok=True)
  path = os.path.join(logdir, 'config.json')
  text = config.to_json(indent=2, sort_keys=True)
  if os.path.exists(path):
    with open(path) as f:
      old = f.read()
    if json.loads(old) != json.loads(text):
      new_path = os.path.join(logdir, 'config.resumed.json')
      logging.warning('Resuming %s with a config that differs from its '
                      'config.json; the new one is in %s.', logdir, new_path)
      path = new_path
    else:
      return
  with open(path, 'w') as f:
    f.write(text)


def install_stop_handlers(stop: threading.Event) -> None:
  """SIGINT/SIGTERM set `stop` (clean shutdown); a second one exits at once."""

  def handler(signum, frame):
    del frame
    if stop.is_set():
      logging.warning('Second %s: exiting now.', signal.Signals(signum).name)
      os._exit(130)
    logging.info('%s received: finishing the current step, saving and shutting '
                 'down (send it again to exit at once).',
                 signal.Signals(signum).name)
    stop.set()

  signal.signal(signal.SIGINT, handler)
  signal.signal(signal.SIGTERM, handler)
