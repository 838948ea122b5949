"""End-to-end: the Kubernetes manifests' container commands, run on localhost.

`python -m launch.k8s` writes the manifests of a smoke run (2 actors, CPU
learner). The test reads every container's command and args from that YAML
(nothing retyped) and runs them as local processes, doing only what the
kubelet and cluster DNS would do for them: `python` is this interpreter,
the ConfigMap mount path is a directory holding the ConfigMap's files,
`$(ACTOR_ID)` is expanded from the pod's ordinal (the pod-index label the
manifest's fieldRef reads), and the Service's DNS name resolves to
localhost. Server, two actors and the learner then train the smoke config
to its end: the learner exits 0 with a checkpoint and a SavedModel, and the
actors stop on their own when the learner has finished.
"""

import os
import re
import subprocess
import sys
import time

import portpicker
import pytest
import tensorflow as tf
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
TOTAL_FRAMES = 1500


def _component(obj):
  return obj['metadata']['labels']['app.kubernetes.io/component']


def _local_command(container, mounts, pod_index, service_host):
  """The container's command line as this machine runs it (see the doc)."""
  env, values = {}, []
  for var in container.get('env', []):
    if 'value' in var:  # a plain value: the process's environment
      values.append(f'{var["name"]}={var["value"]}')
      continue
    field = var['valueFrom']['fieldRef']['fieldPath']
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']", field
    env[var['name']] = str(pod_index)
  words = []
  for word in container['command'] + container['args']:
    word = re.sub(r'\$\((\w+)\)', lambda m: env[m[1]], word)  # kubelet
    for mount in container.get('volumeMounts', []):
      word = word.replace(mount['mountPath'], mounts[mount['name']])
    words.append(word.replace(service_host, 'localhost'))
  assert words[0] == 'python', words
  return ['env'] * bool(values) + values + [sys.executable] + words[1:]


def _start(command, log_path):
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2')
  with open(log_path, 'w') as log:
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _tail(path):
  with open(path) as f:
    return f.read()[-3000:]


@pytest.mark.e2e
def test_manifest_commands_train_the_smoke_config_on_localhost(tmp_path):
  port = portpicker.pick_unused_port()
  logdir = str(tmp_path / 'run')
  proc = subprocess.run(
      [sys.executable, '-m', 'launch.k8s', '--config=configs/smoke.py',
       f'--config.total_frames={TOTAL_FRAMES}', '--actors=2', '--run=smoke',
       '--namespace=rl', '--image=tf-impala:test', f'--logdir={logdir}',
       f'--reverb_port={port}'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  objects = list(yaml.safe_load_all(proc.stdout))
  by_role = {(o['kind'], _component(o)): o for o in objects}
  config_map = by_role[('ConfigMap', 'config')]
  mounted = tmp_path / 'configmap'
  mounted.mkdir()
  for name, text in config_map['data'].items():
    (mounted / name).write_text(text)
  service = by_role[('Service', 'reverb-server')]['metadata']
  service_host = f"{service['name']}.{service['namespace']}.svc"

  def pod(key):
    spec = by_role[key]['spec']['template']['spec']
    mounts = {v['name']: str(mounted) for v in spec['volumes']
              if v.get('configMap', {}).get('name') == config_map['metadata'][
                  'name']}
    (container,) = spec['containers']
    return container, mounts

  procs = []
  try:
    container, mounts = pod(('StatefulSet', 'reverb-server'))
    server = _start(_local_command(container, mounts, 0, service_host),
                    tmp_path / 'server.log')
    procs.append(server)
    container, mounts = pod(('StatefulSet', 'actor'))
    replicas = by_role[('StatefulSet', 'actor')]['spec']['replicas']
    assert replicas == 2
    actors = []
    for i in range(replicas):
      command = _local_command(container, mounts, i, service_host)
      assert f'--actor_id={i}' in command
      actors.append(_start(command, tmp_path / f'actor_{i}.log'))
    procs += actors
    container, mounts = pod(('Job', 'learner'))
    command = _local_command(container, mounts, 0, service_host)
    assert f'--reverb_address=localhost:{port}' in command
    learner = _start(command, tmp_path / 'learner.log')
    procs.append(learner)
    assert learner.wait(timeout=300) == 0, _tail(tmp_path / 'learner.log')
    for i, actor in enumerate(actors):  # they stop once the learner finished
      assert actor.wait(timeout=60) == 0, _tail(tmp_path / f'actor_{i}.log')
    assert server.poll() is None, _tail(tmp_path / 'server.log')
  finally:
    for p in procs:
      if p.poll() is None:
        p.terminate()
    for p in procs:
      try:
        p.wait(timeout=30)
      except subprocess.TimeoutExpired:
        p.kill()
  state = tf.train.get_checkpoint_state(os.path.join(logdir, 'checkpoints'))
  assert state is not None and state.model_checkpoint_path
  reader = tf.train.load_checkpoint(state.model_checkpoint_path)
  steps = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
           if k.startswith('agent_steps')]
  assert steps and steps[0] >= TOTAL_FRAMES  # Catch: frames = agent steps
  assert os.path.exists(os.path.join(logdir, 'policy', 'saved_model.pb'))
  policy = tf.saved_model.load(os.path.join(logdir, 'policy'))
  assert [g.decode() for g in policy.games.numpy()] == ['catch']
