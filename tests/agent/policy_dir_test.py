"""agent/policy_dir.py: LOGDIR/policy is complete at every instant.

Unit tests on marker directories, and an e2e test that kill -9s a real
exporting process at random moments (issue 11 item 4).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from agent import policy_dir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _saved(tmp_path, name, marker):
  path = tmp_path / name
  path.mkdir()
  (path / 'marker').write_text(marker)
  return str(path)


def _read(target):
  with open(os.path.join(target, 'marker')) as f:
    return f.read()


def test_publish_points_at_the_newest_and_keeps_two(tmp_path):
  target = str(tmp_path / 'policy')
  for i in range(4):
    policy_dir.publish(_saved(tmp_path, f'policy.tmp-{i}', f'v{i}'), target)
    assert _read(target) == f'v{i}'
  assert os.readlink(target) == os.path.join('policy_versions', '4')
  assert sorted(os.listdir(tmp_path / 'policy_versions')) == ['3', '4']
  assert sorted(os.listdir(tmp_path)) == ['policy', 'policy_versions']


def test_plain_directory_policy_is_migrated(tmp_path):
  target = _saved(tmp_path, 'policy', 'legacy')
  assert _read(target) == 'legacy'
  policy_dir.publish(_saved(tmp_path, 'policy.tmp-a', 'new'), target)
  assert os.path.islink(target) and _read(target) == 'new'
  assert _read(str(tmp_path / 'policy_versions' / '1')) == 'legacy'


def test_clean_leftovers_keeps_the_policy(tmp_path):
  target = str(tmp_path / 'policy')
  policy_dir.publish(_saved(tmp_path, 'policy.tmp-a', 'good'), target)
  _saved(tmp_path, 'policy.tmp-dead', 'partial')
  _saved(tmp_path, 'policy.old-dead', 'old')
  os.symlink('policy_versions/1', str(tmp_path / 'policy.link-dead'))
  policy_dir.clean_leftovers(target)
  assert sorted(os.listdir(tmp_path)) == ['policy', 'policy_versions']
  assert _read(target) == 'good'


_EXPORTER = r'''
import sys
import tensorflow as tf
from agent import export, networks
net = networks.ImpalaNetwork(3, torso='shallow', lstm_size=8)
net.create_variables((40, 20, 1), tf.uint8)
for i in range(1000):
  export.export_policy(net, sys.argv[1], observation_spec=((40, 20, 1), tf.uint8),
                       metadata=dict(games=['catch'], action_set='minimal',
                                     frames_trained=i))
  print('exported', i, flush=True)
'''


@pytest.mark.e2e
def test_kill_at_any_moment_of_an_export_leaves_a_loadable_policy(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  target = str(tmp_path / 'policy')
  rng = np.random.default_rng(0)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  loaded = []
  for kill in range(4):
    proc = subprocess.Popen([sys.executable, '-c', _EXPORTER, target],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().startswith('exported'), kill
    time.sleep(rng.uniform(0.0, 2.0))  # somewhere inside a later export
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    policy = tf.saved_model.load(target)  # complete whatever the moment
    loaded.append(int(policy.frames_trained.numpy()))
    policy_dir.clean_leftovers(target)  # what the next run start does
    leftovers = [n for n in os.listdir(tmp_path)
                 if n not in ('policy', 'policy_versions')]
    assert not leftovers, leftovers
  assert len(loaded) == 4
