"""Kubernetes manifests of one run, generated from its resolved config.

`manifests(config, deployment)` returns the objects a run needs on a cluster
(GKE with TPU or GPU node pools, or any Kubernetes), each a plain dict:

  ConfigMap   NAME-config    config.json: the resolved config, the single
                             source of truth of every role (read through
                             configs/from_json.py, as local actors do)
  Service     NAME-reverb    the Reverb port, for the actors and the learner
  StatefulSet NAME-reverb    one `launch.reverb_server`; with HER replay a
                             PersistentVolumeClaim for its table checkpoints
  StatefulSet NAME-actor     N `launch.actor` pods; --actor_id is the pod's
                             ordinal (label apps.kubernetes.io/pod-index,
                             Kubernetes >= 1.28), so ids are distinct and
                             stable across restarts
  Job         NAME-learner   one `launch.learner` on the accelerator's nodes
  NetworkPolicy NAME-reverb  only this run's pods reach the Reverb port

Why a StatefulSet for the actors, not a Deployment: Deployment pods are
interchangeable and have no index, so N distinct --actor_id values (seeds,
task assignment) cannot be given to them; a StatefulSet with
podManagementPolicy=Parallel starts them all at once as a Deployment would
and gives each a stable ordinal.

The containers run exactly the `launch.*` entry points a local run uses; the
image is `deploy/Dockerfile`'s (one image, every role).
"""

from typing import Any, Dict, List, Optional

import ml_collections
import yaml

from launch import memory

CONFIG_MOUNT = '/etc/tf-impala'
CONFIG_PATH = f'{CONFIG_MOUNT}/config.json'
FROM_JSON = 'configs/from_json.py'
REVERB_CHECKPOINTS = '/var/lib/reverb'

# Single-host TPU slices: --tpu value -> (GKE accelerator label, topology,
# chips). A learner is one process: multi-host slices are not supported.
TPU_TYPES = {
    'v4-8': ('tpu-v4-podslice', '2x2x1', 4),
    'v5e-1': ('tpu-v5-lite-podslice', '1x1', 1),
    'v5e-4': ('tpu-v5-lite-podslice', '2x2', 4),
    'v5e-8': ('tpu-v5-lite-podslice', '2x4', 8),
    'v5p-8': ('tpu-v5p-slice', '2x2x1', 4),
    'v6e-1': ('tpu-v6e-slice', '1x1', 1),
    'v6e-4': ('tpu-v6e-slice', '2x2', 4),
    'v6e-8': ('tpu-v6e-slice', '2x4', 8),
}


def _meta(name: str, run: str, role: str, namespace: str) -> Dict[str, Any]:
  return {'name': name, 'namespace': namespace,
          'labels': _labels(run, role)}


def _labels(run: str, role: str) -> Dict[str, str]:
  return {'app.kubernetes.io/name': 'tf-impala',
          'app.kubernetes.io/instance': run,
          'app.kubernetes.io/component': role}


def _config_volume(run: str):
  return ({'name': 'config', 'configMap': {'name': f'{run}-config'}},
          {'name': 'config', 'mountPath': CONFIG_MOUNT, 'readOnly': True})


def _container(role: str, image: str, args: List[str],
               resources: Dict[str, Any], mounts: List[Dict[str, Any]],
               env: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
  container = {
      'name': role, 'image': image,
      'command': ['python', '-m', f'launch.{role.replace("-", "_")}'],
      'args': [f'--config={FROM_JSON}:{CONFIG_PATH}'] + args,
      'resources': resources, 'volumeMounts': mounts,
  }
  if env:
    container['env'] = env
  return container


def manifests(config: ml_collections.ConfigDict, *, run: str, image: str,
              namespace: str, num_actors: int, logdir: str,
              tpu: Optional[str] = None, gpus: int = 0,
              reverb_port: int = 8000) -> List[Dict[str, Any]]:
  """The run's Kubernetes objects (see the module docstring).

  Args:
    config: the validated, resolved ConfigDict of the run.
    run: run name (a DNS-1035 label, e.g. 'pong-1'): prefix of every object.
    image: container image of deploy/Dockerfile.
    namespace: Kubernetes namespace.
    num_actors: actor pods (>= 1).
    logdir: the learner's --logdir (e.g. gs://bucket/run).
    tpu: a key of TPU_TYPES for a TPU learner, or None.
    gpus: NVIDIA GPUs of the learner (0: CPU, unless `tpu`).
    reverb_port: the Reverb server's port.

  Returns:
    A list of manifest dicts (apiVersion, kind, metadata, spec/data).

  Raises:
    ValueError: for an unknown `tpu`, both `tpu` and `gpus`, `num_actors` < 1.
  """
  if tpu and gpus:
    raise ValueError(f'give at most one of --tpu ({tpu}) and --gpus ({gpus})')
  if tpu and tpu not in TPU_TYPES:
    raise ValueError(f'--tpu must be one of {sorted(TPU_TYPES)} (single-host '
                     f'slices); got {tpu!r}')
  if num_actors < 1:
    raise ValueError(f'--actors must be >= 1; got {num_actors}')
  if gpus < 0:
    raise ValueError(f'--gpus must be >= 0; got {gpus}')
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.num_actors = num_actors  # task assignment and ids of all pods
  address = f'{run}-reverb.{namespace}.svc:{reverb_port}'
  volume, mount = _config_volume(run)
  replay = config.replay.replay_proportion > 0
  objects = [{
      'apiVersion': 'v1', 'kind': 'ConfigMap',
      'metadata': _meta(f'{run}-config', run, 'config', namespace),
      'data': {'config.json': config.to_json(indent=2, sort_keys=True)},
  }, {
      'apiVersion': 'v1', 'kind': 'Service',
      'metadata': _meta(f'{run}-reverb', run, 'reverb-server', namespace),
      'spec': {'selector': _labels(run, 'reverb-server'),
               'ports': [{'name': 'reverb', 'port': reverb_port,
                          'targetPort': reverb_port}]},
  }]

  server_args = [f'--port={reverb_port}']
  server_mounts = [mount]
  if replay:
    server_args.append(f'--checkpoint_dir={REVERB_CHECKPOINTS}')
    server_mounts.append({'name': 'reverb-checkpoints',
                          'mountPath': REVERB_CHECKPOINTS})
  server = {
      'apiVersion': 'apps/v1', 'kind': 'StatefulSet',
      'metadata': _meta(f'{run}-reverb', run, 'reverb-server', namespace),
      'spec': {
          'serviceName': f'{run}-reverb', 'replicas': 1,
          'selector': {'matchLabels': _labels(run, 'reverb-server')},
          'template': {
              'metadata': {'labels': _labels(run, 'reverb-server')},
              'spec': {
                  'containers': [dict(_container(
                      'reverb-server', image, server_args,
                      {'requests': {'cpu': '4', 'memory': '16Gi'}},
                      server_mounts),
                      ports=[{'containerPort': reverb_port,
                              'name': 'reverb'}])],
                  'volumes': [volume],
              }},
      }}
  if replay:
    server['spec']['volumeClaimTemplates'] = [{
        'metadata': {'name': 'reverb-checkpoints'},
        'spec': {'accessModes': ['ReadWriteOnce'],
                 'resources': {'requests': {'storage': '100Gi'}}}}]
  objects.append(server)

  actor_id_env = [{'name': 'ACTOR_ID', 'valueFrom': {'fieldRef': {
      'fieldPath': "metadata.labels['apps.kubernetes.io/pod-index']"}}}]
  actor_id_env += [{'name': name, 'value': value}  # launch/memory.py
                   for name, value in sorted(memory.ALLOCATOR_ENV.items())]
  objects.append({
      'apiVersion': 'apps/v1', 'kind': 'StatefulSet',
      'metadata': _meta(f'{run}-actor', run, 'actor', namespace),
      'spec': {
          'serviceName': f'{run}-actor', 'replicas': num_actors,
          'podManagementPolicy': 'Parallel',
          'selector': {'matchLabels': _labels(run, 'actor')},
          'template': {
              'metadata': {'labels': _labels(run, 'actor')},
              'spec': {
                  'containers': [_container(
                      'actor', image,
                      [f'--reverb_address={address}',
                       '--actor_id=$(ACTOR_ID)'],
                      {'requests': {'cpu': str(max(1, config.actor_tf_threads)),
                                    'memory': '4Gi'}},
                      [mount], env=actor_id_env)],
                  'volumes': [volume],
              }},
      }})

  learner_args = [f'--reverb_address={address}', f'--logdir={logdir}']
  learner_pod: Dict[str, Any] = {'restartPolicy': 'OnFailure',
                                 'volumes': [volume]}
  resources: Dict[str, Any] = {'requests': {'cpu': '8', 'memory': '32Gi'}}
  if tpu:
    accelerator, topology, chips = TPU_TYPES[tpu]
    learner_args.append('--tpu=local')  # a TPU VM node: its chips are local
    learner_pod['nodeSelector'] = {
        'cloud.google.com/gke-tpu-accelerator': accelerator,
        'cloud.google.com/gke-tpu-topology': topology}
    resources = {'requests': {'google.com/tpu': chips},
                 'limits': {'google.com/tpu': chips}}
  elif gpus:
    learner_args.append('--use_gpu')
    resources['limits'] = {'nvidia.com/gpu': gpus}
  learner_pod['containers'] = [_container('learner', image, learner_args,
                                          resources, [mount])]
  objects.append({
      'apiVersion': 'batch/v1', 'kind': 'Job',
      'metadata': _meta(f'{run}-learner', run, 'learner', namespace),
      'spec': {'backoffLimit': 10,
               'template': {'metadata': {'labels': _labels(run, 'learner')},
                            'spec': learner_pod}},
  })

  objects.append({
      'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',
      'metadata': _meta(f'{run}-reverb', run, 'reverb-server', namespace),
      'spec': {
          'podSelector': {'matchLabels': _labels(run, 'reverb-server')},
          'policyTypes': ['Ingress'],
          'ingress': [{
              'from': [{'podSelector': {'matchLabels': {
                  'app.kubernetes.io/name': 'tf-impala',
                  'app.kubernetes.io/instance': run,
                  'app.kubernetes.io/component': role}}}
                       for role in ('actor', 'learner')],
              'ports': [{'protocol': 'TCP', 'port': reverb_port}]}],
      }})
  return objects


class _Dumper(yaml.SafeDumper):
  """Multi-line strings (the config JSON) as literal blocks."""


_Dumper.add_representer(
    str, lambda dumper, text: dumper.represent_scalar(
        'tag:yaml.org,2002:str', text, style='|' if '\n' in text else None))


def to_yaml(objects: List[Dict[str, Any]]) -> str:
  """One multi-document YAML text, objects in order, keys as written."""
  return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, width=80)
