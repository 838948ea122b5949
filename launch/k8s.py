r"""Writes the Kubernetes manifests of a run (GKE with TPU/GPU node pools).

  python -m launch.k8s --config=configs/atari.py --image=REGISTRY/tf-impala:TAG \
      --run=pong-1 --actors=64 --tpu=v5e-4 --logdir=gs://BUCKET/pong-1 \
      --output=pong-1.yaml
  kubectl apply -f pong-1.yaml

One YAML with a ConfigMap holding the resolved config (every role reads it),
the Reverb server (StatefulSet + Service, a volume for its table checkpoints
with HER replay), N actors (StatefulSet: distinct --actor_id from the pod
ordinal), the learner (Job on the TPU/GPU nodes) and a NetworkPolicy that
admits only this run's actor and learner pods to the Reverb port
(launch/k8s_manifests.py; README "On a cluster"). The containers run exactly
the `launch.*` entry points of a local run. The config is validated as
`launch.train` validates it; every check comes before anything is written.
"""

from launch import version_check

version_check.check()

# pylint: disable=g-import-not-at-top,g-bad-import-order
import os
import re
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tensorflow as tf

from launch import cli
from launch import k8s_manifests
from launch import run_setup

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file (optionally :arg).',
    lock_config=True)
_IMAGE = flags.DEFINE_string('image', None,
                             'Container image built from deploy/Dockerfile.')
_RUN = flags.DEFINE_string('run', None, 'Run name: prefix of every object '
                           '(lowercase letters, digits, -; <= 40 characters).')
_NAMESPACE = flags.DEFINE_string('namespace', 'default',
                                 'Kubernetes namespace.')
_ACTORS = flags.DEFINE_integer('actors', 8, 'Actor pods.')
_TPU = flags.DEFINE_string(
    'tpu', None, 'TPU learner: one of '
    f'{", ".join(sorted(k8s_manifests.TPU_TYPES))} (GKE TPU node pool).')
_GPUS = flags.DEFINE_integer('gpus', 0, 'NVIDIA GPUs of the learner (0 and '
                             'no --tpu: a CPU learner).')
_LOGDIR = flags.DEFINE_string(
    'logdir', None, "The learner's --logdir, on storage every pod sees "
    '(e.g. gs://BUCKET/RUN).')
_PORT = flags.DEFINE_integer('reverb_port', 8000, 'Reverb server port.')
_OUTPUT = flags.DEFINE_string('output', '-', 'File to write; - for stdout.')
flags.mark_flags_as_required(['config', 'image', 'run', 'logdir'])

_DNS_LABEL = re.compile(r'[a-z]([-a-z0-9]{0,38}[a-z0-9])?')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  try:
    if not _DNS_LABEL.fullmatch(_RUN.value):
      raise ValueError(f'--run must be lowercase letters, digits and -, '
                       f'starting with a letter, <= 40 characters; got '
                       f'{_RUN.value!r}')
    if not 0 < _PORT.value < 65536:
      raise ValueError(f'--reverb_port must be in [1, 65535]; got {_PORT.value}')
    run_setup.validate_and_describe(config, tf.distribute.get_strategy())
    objects = k8s_manifests.manifests(
        config, run=_RUN.value, image=_IMAGE.value,
        namespace=_NAMESPACE.value, num_actors=_ACTORS.value,
        logdir=_LOGDIR.value, tpu=_TPU.value, gpus=_GPUS.value,
        reverb_port=_PORT.value)
    if _OUTPUT.value != '-' and os.path.isdir(_OUTPUT.value):
      raise ValueError(f'--output={_OUTPUT.value} is a directory; give a file')
  except ValueError as e:
    sys.exit(f'error: {e}')
  text = k8s_manifests.to_yaml(objects)
  if _OUTPUT.value == '-':
    sys.stdout.write(text)
  else:
    with open(_OUTPUT.value, 'w') as f:
      f.write(text)
    logging.info('Wrote %d objects to %s: kubectl apply -f %s', len(objects),
                 _OUTPUT.value, _OUTPUT.value)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
