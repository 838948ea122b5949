"""launch.k8s: manifests valid for Kubernetes 1.30 (strict), one config, fenced.

Real `python -m launch.k8s` runs (the Atari config with 64 actors and a TPU
learner, the HER config with a GPU learner); each object is validated
against the pinned Kubernetes version's schemas with kubernetes-validate
(strict: unknown fields are errors).
"""

import json
import os
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
KUBERNETES_VERSION = '1.30.0'


def _k8s(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  return subprocess.run([sys.executable, '-m', 'launch.k8s'] + list(args),
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=120)


def _by_kind_and_role(objects):
  return {(o['kind'], o['metadata']['labels']['app.kubernetes.io/component']):
          o for o in objects}


def _pod_spec(obj):
  return obj['spec']['template']['spec']


def _config_of(container, config_maps):
  """The config JSON a container's --config flag points at."""
  flag = next(a for a in container['args'] if a.startswith('--config='))
  assert flag.startswith('--config=configs/from_json.py:'), flag
  path = flag.split(':', 1)[1]
  mount = next(m for m in container['volumeMounts']
               if path.startswith(m['mountPath'] + '/'))
  return config_maps[mount['name']]['data'][os.path.basename(path)]


@pytest.mark.parametrize('args, accelerator', [
    (['--config=configs/atari.py', '--actors=64', '--tpu=v5e-4',
      '--run=pong-1', '--logdir=gs://bucket/pong-1'], 'tpu'),
    (['--config=configs/her_gridworld.py', '--actors=4', '--gpus=2',
      '--run=her-1', '--logdir=gs://bucket/her-1'], 'gpu'),
])
def test_manifests_validate_and_every_role_runs_one_config(args, accelerator):
  proc = _k8s('--image=registry.example/tf-impala:1', '--namespace=rl',
              *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  objects = list(yaml.safe_load_all(proc.stdout))
  for obj in objects:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
  objects = _by_kind_and_role(objects)
  config_map = objects[('ConfigMap', 'config')]
  run = config_map['metadata']['labels']['app.kubernetes.io/instance']
  config = json.loads(config_map['data']['config.json'])
  num_actors = int(next(a for a in args if a.startswith('--actors='))[9:])
  assert config['num_actors'] == num_actors

  # Every role mounts the ConfigMap and reads the same config through it.
  roles = {('StatefulSet', 'reverb-server'): 'launch.reverb_server',
           ('StatefulSet', 'actor'): 'launch.actor',
           ('Job', 'learner'): 'launch.learner'}
  for key, module in roles.items():
    pod = _pod_spec(objects[key])
    volumes = {v['name']: v for v in pod['volumes']}
    maps = {name: config_map for name, v in volumes.items()
            if v.get('configMap', {}).get('name') == f'{run}-config'}
    (container,) = pod['containers']
    assert container['command'] == ['python', '-m', module]
    assert json.loads(_config_of(container, maps)) == config

  # Actors: one pod per id, ids from the StatefulSet ordinal (distinct).
  actors = objects[('StatefulSet', 'actor')]
  assert actors['spec']['replicas'] == num_actors
  assert actors['spec']['podManagementPolicy'] == 'Parallel'
  (actor,) = _pod_spec(actors)['containers']
  assert '--actor_id=$(ACTOR_ID)' in actor['args']
  env = {e['name']: e for e in actor['env']}
  assert env['ACTOR_ID']['valueFrom']['fieldRef']['fieldPath'] == (
      "metadata.labels['apps.kubernetes.io/pod-index']")
  # glibc reads it at process start (launch/memory.py): the pod sets it.
  assert env['MALLOC_ARENA_MAX']['value'] == '2'
  service = objects[('Service', 'reverb-server')]
  port = service['spec']['ports'][0]['port']
  address = f'--reverb_address={run}-reverb.rl.svc:{port}'
  assert address in actor['args']

  learner_pod = _pod_spec(objects[('Job', 'learner')])
  (learner,) = learner_pod['containers']
  assert address in learner['args']
  if accelerator == 'tpu':
    assert '--tpu=local' in learner['args']
    assert learner_pod['nodeSelector'] == {
        'cloud.google.com/gke-tpu-accelerator': 'tpu-v5-lite-podslice',
        'cloud.google.com/gke-tpu-topology': '2x2'}
    assert learner['resources']['limits'] == {'google.com/tpu': 4}
  else:
    assert '--use_gpu' in learner['args']
    assert learner['resources']['limits'] == {'nvidia.com/gpu': 2}
    # HER replay: the server checkpoints its tables on a persistent volume.
    server = objects[('StatefulSet', 'reverb-server')]
    assert server['spec']['volumeClaimTemplates']
    (server_container,) = _pod_spec(server)['containers']
    assert any(a.startswith('--checkpoint_dir=')
               for a in server_container['args'])

  # The NetworkPolicy selects the server's pods and admits only this run's
  # actor and learner pods, on the Reverb port only.
  policy = objects[('NetworkPolicy', 'reverb-server')]['spec']
  server_labels = objects[('StatefulSet', 'reverb-server')]['spec'][
      'template']['metadata']['labels']
  assert policy['podSelector']['matchLabels'] == server_labels
  assert service['spec']['selector'] == server_labels
  assert policy['policyTypes'] == ['Ingress']
  (rule,) = policy['ingress']
  admitted = [peer['podSelector']['matchLabels'] for peer in rule['from']]
  assert all(set(peer) == {'podSelector'} for peer in rule['from'])
  assert admitted == [
      objects[k]['spec']['template']['metadata']['labels']
      for k in [('StatefulSet', 'actor'), ('Job', 'learner')]]
  assert all(labels['app.kubernetes.io/instance'] == run
             for labels in admitted)
  assert rule['ports'] == [{'protocol': 'TCP', 'port': port}]


def test_bad_deployment_flags_are_one_line_errors_and_write_nothing(tmp_path):
  base = ['--image=x', '--run=r', '--logdir=gs://b/r',
          f'--output={tmp_path}/out.yaml']
  cases = {
      'both accelerators': (['--config=configs/atari.py', '--tpu=v5e-4',
                             '--gpus=1'], '--tpu'),
      'no actors': (['--config=configs/atari.py', '--actors=0'],
                    '--actors must be >= 1'),
      'unknown tpu': (['--config=configs/atari.py', '--tpu=v9-1'],
                      '--tpu must be one of'),
      'bad config': (['--config=configs/atari.py',
                      '--config.learner.learning_rate=nan'],
                     'config.learner.learning_rate'),
      'bad run name': (['--config=configs/atari.py', '--run=Pong_1'],
                       '--run must be'),
  }
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  procs = {name: subprocess.Popen(  # together: they share the TF import time
      [sys.executable, '-m', 'launch.k8s'] + base + args, cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for name, (args, _) in cases.items()}
  for name, (args, words) in cases.items():
    stdout, stderr = procs[name].communicate(timeout=120)
    errors = [l for l in (stdout + stderr).splitlines()
              if l.startswith('error:')]
    assert procs[name].returncode != 0, name
    assert len(errors) == 1 and words in errors[0], (name, stderr[-2000:])
    assert 'Traceback' not in stderr, name
    assert not os.listdir(tmp_path), name
