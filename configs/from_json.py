"""A resolved config recorded as JSON (how launch.train hands its config to actors).

  python -m launch.actor --config=configs/from_json.py:/path/to/config.json ...

launch/train.py writes the exact config of the run (file, `:arg` and every
override, from any flag syntax or --flagfile) and starts each actor with it,
so actors can never run a different config from the learner. Fields the JSON
lacks (added to configs/atari.py after the JSON was written, e.g.
network.compute_dtype) take configs/atari.py's defaults, so an older run's
config.json still loads; the agent fields of issue 10 (network.core, ...)
take the values such runs had (`atari.use_lstm_agent`).
"""

import json

import ml_collections
import tensorflow as tf

from configs import atari


def _fill_missing(values: dict, defaults: dict) -> dict:
  """`values` with every key of `defaults` it lacks added (recursively)."""
  for key, default in defaults.items():
    if key not in values:
      values[key] = default
    elif isinstance(default, dict) and isinstance(values[key], dict):
      _fill_missing(values[key], default)
  return values


def _defaults_of_older_runs() -> dict:
  """configs/atari.py's defaults, with the agent fields a JSON written
  before issue 10 ran with (they predate the fields): the LSTM agent."""
  config = atari.get_config()
  config.unlock()
  atari.use_lstm_agent(config)
  return config.to_dict()


def get_config(path: str) -> ml_collections.ConfigDict:
  if not path:
    raise ValueError('configs/from_json.py needs the JSON path as its argument: '
                     '--config=configs/from_json.py:/path/to/config.json')
  with tf.io.gfile.GFile(path) as f:  # a local file or gs://…
    values = json.load(f)
  config = ml_collections.ConfigDict(
      _fill_missing(values, _defaults_of_older_runs()))
  config.lock()
  return config
