"""agent/policy_dir.py: LOGDIR/policy is complete at every instant.

Unit tests on marker directories, and a test that kill -9s a real exporting
process at random moments (issue 11 item 4).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

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


def test_publish_swaps_in_place(tmp_path):
  target = str(tmp_path / 'policy')
  for i in range(3):
    policy_dir.publish(_saved(tmp_path, f'policy.tmp-{i}', f'v{i}'), target)
    assert _read(target) == f'v{i}'
    assert not os.path.islink(target)
  assert os.listdir(tmp_path) == ['policy']


def test_exchange_is_atomic_swap(tmp_path):
  a, b = _saved(tmp_path, 'a', 'A'), _saved(tmp_path, 'b', 'B')
  assert policy_dir.exchange(a, b)  # Linux with ext4/tmpfs: supported
  assert (_read(a), _read(b)) == ('B', 'A')


def test_fallback_without_exchange(tmp_path, monkeypatch):
  monkeypatch.setattr(policy_dir, 'exchange', lambda a, b: False)
  target = _saved(tmp_path, 'policy', 'old')
  policy_dir.publish(_saved(tmp_path, 'policy.tmp-a', 'new'), target)
  assert _read(target) == 'new' and os.listdir(tmp_path) == ['policy']


def test_clean_leftovers_keeps_the_policy(tmp_path):
  target = _saved(tmp_path, 'policy', 'good')
  _saved(tmp_path, 'policy.tmp-dead', 'partial')
  _saved(tmp_path, 'policy.old-dead', 'old')
  policy_dir.clean_leftovers(target)
  assert os.listdir(tmp_path) == ['policy'] and _read(target) == 'good'


def test_clean_leftovers_restores_a_policy_lost_between_renames(tmp_path):
  _saved(tmp_path, 'policy.old-1234', 'previous')
  _saved(tmp_path, 'policy.tmp-5678', 'partial')
  target = str(tmp_path / 'policy')
  policy_dir.clean_leftovers(target)
  assert os.listdir(tmp_path) == ['policy'] and _read(target) == 'previous'


def _ram_saved(path, marker):
  """A policy-like directory on TF's ram:// filesystem (nested file too)."""
  tf.io.gfile.makedirs(f'{path}/variables')
  for name in ('saved_model.pb', 'variables/marker'):
    with tf.io.gfile.GFile(f'{path}/{name}', 'w') as f:
      f.write(marker)
  return path


def _ram_read(target):
  with tf.io.gfile.GFile(f'{target}/variables/marker') as f:
    return f.read()


def test_publish_on_another_tf_filesystem():
  """ram:// renames a directory without its files: publish copies them."""
  root = 'ram://policy_dir_test/publish'
  target = f'{root}/policy'
  for i in range(3):
    policy_dir.publish(_ram_saved(policy_dir.staging_path(target), f'v{i}'),
                       target)
    assert _ram_read(target) == f'v{i}'
  assert [e.rstrip('/') for e in tf.io.gfile.listdir(root)] == ['policy']


def test_clean_leftovers_restores_a_copy_cut_short_on_another_filesystem():
  root = 'ram://policy_dir_test/cut'
  _ram_saved(f'{root}/.old-policy-1234', 'previous')
  _ram_saved(f'{root}/.tmp-policy-5678', 'partial')
  tf.io.gfile.makedirs(f'{root}/policy/variables')  # copy cut short: no marker
  with tf.io.gfile.GFile(f'{root}/policy/variables/marker', 'w') as f:
    f.write('partial')
  policy_dir.clean_leftovers(f'{root}/policy')
  assert [e.rstrip('/') for e in tf.io.gfile.listdir(root)] == ['policy']
  assert _ram_read(f'{root}/policy') == 'previous'


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


@pytest.mark.fault
def test_kill_at_any_moment_of_an_export_leaves_a_loadable_policy(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  target = str(tmp_path / 'policy')
  rng = np.random.default_rng(0)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  loaded = []
  for kill in range(3):
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
    assert os.listdir(tmp_path) == ['policy']
  assert len(loaded) == 3
