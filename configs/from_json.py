"""A resolved config recorded as JSON (how launch.train hands its config to actors).

  python -m launch.actor --config=configs/from_json.py:/path/to/config.json ...

launch/train.py writes the exact config of the run (file, `:arg` and every
override, from any flag syntax or --flagfile) and starts each actor with it,
so actors can never run a different config from the learner.
"""

import json

import ml_collections


def get_config(path: str) -> ml_collections.ConfigDict:
  if not path:
    raise ValueError('configs/from_json.py needs the JSON path as its argument: '
                     '--config=configs/from_json.py:/path/to/config.json')
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  config.lock()
  return config
