"""A full disk at checkpoint time (issue 11 item 7), on a real small tmpfs.

The run's logdir lives on a tmpfs too small for a second checkpoint. The
failing saves must each give one clear error line while training goes on,
the run must stop with `error: … saves in a row failed` after three of them,
and the checkpoint and policy written before must stay intact and loadable.
Needs root (mount); skipped with the reason otherwise.
"""

import os
import subprocess
import sys

import pytest

from launch import run_setup

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
pytestmark = pytest.mark.e2e


@pytest.fixture
def small_fs(tmp_path):
  mount_point = tmp_path / 'small'
  mount_point.mkdir()
  result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=9m', 'tmpfs',
                           str(mount_point)], capture_output=True, text=True)
  if result.returncode:
    pytest.skip(f'cannot mount a tmpfs here: {result.stderr.strip()}')
  yield mount_point
  subprocess.run(['umount', '-l', str(mount_point)], check=False)


@pytest.mark.fault
def test_full_disk_keeps_training_and_the_old_checkpoint(small_fs):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  logdir = small_fs / 'run'
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
  proc = subprocess.run(
      [sys.executable, '-m', 'launch.train', '--config=configs/smoke.py',
       f'--logdir={logdir}', '--config.logging.checkpoint_every_secs=2',
       '--config.logging.progress_every_secs=1'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  output = proc.stdout + proc.stderr
  failures = [l for l in output.splitlines()
              if 'Cannot save a checkpoint or export the policy' in l]
  assert failures and 'No space left on device' in failures[0], output[-3000:]
  assert proc.returncode != 0
  last = output.strip().splitlines()[-1]
  assert last.startswith('error: 3 checkpoint saves in a row failed'), last
  assert 'Traceback' not in output, output[-3000:]
  # Training went on between the failures: progress lines after the first.
  after = output[output.index(failures[0]):]
  assert after.count('learner steps/s') >= 2
  good = run_setup.readable_checkpoints(str(logdir / 'checkpoints'))
  assert good, os.listdir(logdir / 'checkpoints')
  assert not [n for n in os.listdir(logdir / 'checkpoints') if '_temp' in n]
  policy = tf.saved_model.load(str(logdir / 'policy'))
  assert int(policy.frames_trained.numpy()) > 0
