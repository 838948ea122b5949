"""Start-of-run steps shared by the launchers (no flags here)."""

import json
import os
import re
import signal
import tempfile
import threading
import time

from absl import logging
import ml_collections
import tensorflow as tf

from agent import policy_dir
from launch import builder
from launch import console
from launch import validate

FROM_JSON_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
    'from_json.py')


def is_local(path: str) -> bool:
  """False for a URL of another TensorFlow filesystem ('gs://…', 'ram://…')."""
  return '://' not in path


def local_dir(logdir: str) -> str:
  """Where the parts of a run that need a local disk live.

  The logdir itself when it is local. For a logdir on another TensorFlow
  filesystem (gs://…): a directory under the system temp dir named after the
  logdir, holding the actor logs (actors/), the Reverb checkpointer's files
  (reverb/: Reverb writes them with local file I/O), the working copy of
  episodes.csv (copied to the logdir at every checkpoint interval and at the
  end) and the config file actors are started with. That directory does not
  outlive the machine: a run resumed elsewhere restarts its replay empty.
  """
  if is_local(logdir):
    return logdir
  name = re.sub(r'[^A-Za-z0-9._-]+', '_', logdir).strip('_')
  return os.path.join(tempfile.gettempdir(), 'tf-impala', name)


def validate_and_describe(config: ml_collections.ConfigDict,
                          strategy: tf.distribute.Strategy):
  """Validates the config and returns builder.environment_facts.

  Raises:
    ValueError: naming the bad field, before anything is written or started.
  """
  validate.validate_config(config, num_replicas=strategy.num_replicas_in_sync)
  return builder.environment_facts(config)


# Fields that shape the checkpoint or the meaning of its counters: a resumed
# run must keep them.
RESUME_FIXED_FIELDS = ('env.name', 'env.game', 'env.full_action_space',
                       'env.frame_skip', 'network.torso', 'network.lstm_size',
                       'network.core',
                       'network.task_one_hot_input', 'learner.popart',
                       'distral.variant', 'distral.columns', 'distral.kl_cost',
                       'distral.entropy_cost', 'env.num_tasks',
                       'env.task_offset', 'env.goal_set', 'env.size')
# Values of fields that older runs' config.json lack (they predate the field):
# a run recorded before Distral existed ran with Distral off.
RESUME_DEFAULTS = {'distral.variant': 'none', 'distral.columns': 'shared',
                   'network.core': 'lstm'}
_DISTRAL_COSTS = ('distral.kl_cost', 'distral.entropy_cost')  # off: free
# Runs with HER replay also restore their Reverb tables (signatures, sizes)
# from LOGDIR/reverb, so the fields that shape those tables are fixed too.
REPLAY_RESUME_FIXED_FIELDS = ('unroll_length', 'env.num_bits', 'env.size',
                              'env.max_steps', 'replay.replay_size',
                              'replay.queue_capacity')


def _field(config_dict, field):
  for part in field.split('.'):
    config_dict = config_dict[part]
  return config_dict


def _get_or_none(config_dict, field):
  try:
    return _field(config_dict, field)
  except KeyError:
    return None


def readable_checkpoints(directory: str):
  """The checkpoints of `directory` whose every tensor can be read.

  Reads each tensor (a truncated .data file fails only when the bytes
  of a tensor are missing), without building the network. Newest last.
  """
  state = tf.train.get_checkpoint_state(directory)
  paths = list(state.all_model_checkpoint_paths) if state else []
  good = []
  for path in paths:
    if is_local(path) and not os.path.isabs(path):
      path = os.path.join(directory, path)
    try:
      # Not tf.train.load_checkpoint: it takes a path that some filesystems
      # (ram://) report as a directory for the latest checkpoint in it.
      reader = tf.compat.v1.train.NewCheckpointReader(path)
      for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError) as e:
      logging.warning('Checkpoint %s cannot be read: %s', path,
                      str(e).splitlines()[0] if str(e) else type(e).__name__)
      continue
    good.append(path)
  return good


def check_logdir(logdir: str, config: ml_collections.ConfigDict) -> None:
  """Rejects a logdir this run cannot use, before anything is written.

  Raises:
    ValueError: the logdir is a file, not writable by this user (local
      logdirs; a remote one is checked when it is created), its filesystem is
      unknown to TensorFlow, it holds checkpoints none of which can be read, or holds checkpoints of a run whose checkpoint-shaping fields
      (RESUME_FIXED_FIELDS; with HER replay also REPLAY_RESUME_FIXED_FIELDS,
      which shape the Reverb tables restored from LOGDIR/reverb) differ from
      this config.
  """
  gfile = tf.io.gfile
  try:
    is_file = gfile.exists(logdir) and not gfile.isdir(logdir)
  except (tf.errors.OpError, ValueError) as e:  # e.g. an unknown scheme
    raise ValueError(f'--logdir {logdir!r} is not usable: '
                     f'{str(e).splitlines()[0]}') from None
  if is_file:
    raise ValueError(f'--logdir must be a directory (new or a run to '
                     f'resume); {logdir!r} is a file.')
  if is_local(logdir):
    existing = os.path.abspath(logdir)
    while not os.path.exists(existing):  # the nearest existing ancestor
      existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing,
                                                    os.W_OK | os.X_OK):
      raise ValueError(f'--logdir {logdir!r} is not writable ({existing!r} '
                       'does not let this user create files); choose another.')
  recorded = os.path.join(logdir, 'config.json')
  has_checkpoint = gfile.exists(os.path.join(logdir, 'checkpoints', 'checkpoint'))
  if has_checkpoint and not readable_checkpoints(
      os.path.join(logdir, 'checkpoints')):
    raise ValueError(
        f'--logdir {logdir} holds checkpoints, but none of them can be read '
        '(torn or truncated files). Nothing was changed; start a new run with '
        'another --logdir, or move the bad checkpoints out of '
        f'{os.path.join(logdir, "checkpoints")}.')
  if not (has_checkpoint and gfile.exists(recorded)):
    return
  with gfile.GFile(recorded) as f:
    old = json.load(f)
  new = json.loads(config.to_json())
  fields = RESUME_FIXED_FIELDS
  if _get_or_none(old, 'replay.replay_proportion'):
    fields += REPLAY_RESUME_FIXED_FIELDS
  if _get_or_none(new, 'distral.variant') in (None, 'none'):
    fields = tuple(f for f in fields if f not in _DISTRAL_COSTS)
  for field in fields:
    try:
      before = _field(old, field)
    except KeyError:
      if field not in RESUME_DEFAULTS:
        continue
      before = RESUME_DEFAULTS[field]
    if before != _field(new, field):
      raise ValueError(
          f'--logdir {logdir} holds a run with config.{field}={before!r}, but '
          f'this config has {_field(new, field)!r}. Resume with the same value '
          'or start a new run with another --logdir.')


def clean_leftovers(logdir: str) -> None:
  """Removes what a crashed run leaves: partial exports and checkpoints.

  LOGDIR/policy.tmp-* and .old-* (agent/policy_dir.py, which also puts an
  .old-* policy back if a crash left none); checkpoints/ckpt-*_temp* (a
  SaveV2 in progress)
  and checkpoints/checkpoint.tmp* (a state file being replaced). Complete
  checkpoints, the policy and everything else stay.
  """
  policy_dir.clean_leftovers(os.path.join(logdir, 'policy'))
  checkpoints = os.path.join(logdir, 'checkpoints')
  gfile = tf.io.gfile
  if not gfile.isdir(checkpoints):
    return
  for name in gfile.listdir(checkpoints):
    name = name.rstrip('/')
    path = os.path.join(checkpoints, name)
    if (name.startswith('ckpt-') and '_temp' in name) or name.startswith(
        'checkpoint.tmp'):
      logging.info('Removing %s, left by an interrupted save.', path)
      gfile.rmtree(path) if gfile.isdir(path) else gfile.remove(path)


def prepare_logdir(logdir: str, config: ml_collections.ConfigDict) -> str:
  """Creates the run directory and records the config; returns a local path.

  config.json records the first run's config. A resumed run whose config
  differs (in fields allowed to change) is recorded in config.resumed.json,
  with a warning. The returned local file holds this run's exact config (what
  actors are started with: configs/from_json.py): the recorded file itself
  for a local logdir, else a copy in `local_dir(logdir)`.

  Raises:
    ValueError: the logdir cannot be created (e.g. no permission on the
      bucket), before anything else is written.
  """
  check_logdir(logdir, config)
  gfile = tf.io.gfile
  try:
    gfile.makedirs(logdir)
  except tf.errors.OpError as e:
    raise ValueError(f'--logdir {logdir!r} cannot be created: '
                     f'{str(e).splitlines()[0]}') from None
  clean_leftovers(logdir)
  path = os.path.join(logdir, 'config.json')
  text = config.to_json(indent=2, sort_keys=True)
  if gfile.exists(path):
    with gfile.GFile(path) as f:
      same = json.load(f) == json.loads(text)
    if not same:
      path = os.path.join(logdir, 'config.resumed.json')
      logging.warning('Resuming %s with a config that differs from its '
                      'config.json; this run\'s config is in %s.', logdir,
                      path)
  else:
    same = False
  if not same:
    with gfile.GFile(path, 'w') as f:
      f.write(text)
  if is_local(logdir):
    return path
  local = os.path.join(local_dir(logdir), 'config.json')
  os.makedirs(os.path.dirname(local), exist_ok=True)
  with open(local, 'w') as f:
    f.write(text)
  return local


# A second signal sooner than this after the first is the same request (GNU
# `timeout` signals the process and then its group, ~0.2 ms apart; a shell
# may forward Ctrl-C to the whole group): only a later one exits at once.
SECOND_SIGNAL_DEBOUNCE_SECS = 1.0


def install_stop_handlers(stop: threading.Event,
                          debounce_secs: float = SECOND_SIGNAL_DEBOUNCE_SECS
                          ) -> None:
  """SIGINT/SIGTERM set `stop` (clean shutdown); a second one exits at once.

  A second signal within `debounce_secs` of the first is ignored (logged), so
  the final save is not skipped by a signal sent twice at once.
  """

  first = []  # time of the first signal

  def handler(signum, frame):
    del frame
    name = signal.Signals(signum).name
    now = time.monotonic()
    if first:
      if now - first[0] < debounce_secs:
        logging.info('%s %.0f ms after the first: the same stop request '
                     '(send it again later to exit at once).', name,
                     1000 * (now - first[0]))
        return
      console.release()  # a filtered window's captured lines, first
      logging.warning('Second %s: exiting now.', name)
      os._exit(130)
    first.append(now)
    logging.info('%s received: finishing the current step, saving and shutting '
                 'down (send it again to exit at once).', name)
    stop.set()

  signal.signal(signal.SIGINT, handler)
  signal.signal(signal.SIGTERM, handler)
