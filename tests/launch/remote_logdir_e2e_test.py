"""End-to-end: a run whose --logdir is on another TensorFlow filesystem.

TF's in-process ram:// filesystem stands in for gs://: it is not the local
one, and it goes through exactly the tf.io.gfile paths a bucket does. It
lives as long as its process, so one subprocess (the driver below) runs
`launch.train`'s main twice on the same logdir (the second run resumes) and
then loads the exported policy as `launch.evaluate` does; the actors are
real `launch.actor` subprocesses, started with the local copy of the
config (`run_setup.local_dir`).
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

_DRIVER = r'''
import json, os, sys
LOGDIR = 'ram://remote_logdir_e2e/run'

def argv(total_frames):
  return ['train', '--config=configs/smoke.py', f'--logdir={LOGDIR}',
          '--network_isolation=off', f'--config.total_frames={total_frames}',
          '--config.logging.progress_every_secs=2']

sys.argv = argv(1500)  # config_flags reads the --config file from sys.argv
import tensorflow as tf
from absl import flags, logging
from launch import train
logging.set_verbosity(logging.INFO)  # what app.run would set up
logging.set_stderrthreshold(logging.INFO)
gfile = tf.io.gfile

train.cli.parse_flags(sys.argv)

def run(total_frames):
  flags.FLAGS.config.total_frames = total_frames  # as --config.total_frames
  train.main(['train'])
  state = tf.train.get_checkpoint_state(f'{LOGDIR}/checkpoints')
  reader = tf.compat.v1.train.NewCheckpointReader(state.model_checkpoint_path)
  frames = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith('agent_steps')]  # Catch: frames = agent steps
  with gfile.GFile(f'{LOGDIR}/episodes.csv') as f:
    rows = f.read().count('\n') - 1
  return dict(checkpoint=state.model_checkpoint_path,
              checkpoints=len(state.all_model_checkpoint_paths),
              frames=[int(x) for x in frames], episodes_csv_rows=rows,
              listing=sorted(e.rstrip('/') for e in gfile.listdir(LOGDIR)),
              events=len(gfile.glob(f'{LOGDIR}/tensorboard/events.out.tfevents.*')),
              local_files=sorted(os.listdir(train.run_setup.local_dir(LOGDIR))))

first = run(1500)
second = run(3000)
from launch import eval_report, evaluate  # its flags: after train's parses
policy, meta = evaluate.load_policy(f'{LOGDIR}/policy')
report = evaluate.evaluate_games(policy, meta, ['catch'], 5, 0, 1000, False)
eval_report.write_json(report, f'{LOGDIR}/eval_catch.json')
with gfile.GFile(f'{LOGDIR}/eval_catch.json') as f:
  episodes = json.load(f)['results'][0]['episodes']
print('RESULT ' + json.dumps(dict(first=first, second=second,
                                  eval_episodes=episodes,
                                  frames_trained=meta.get('frames_trained'))),
      flush=True)
'''


@pytest.mark.e2e
def test_train_resume_and_evaluate_on_a_non_local_filesystem():
  proc = subprocess.run([sys.executable, '-c', _DRIVER], cwd=ROOT,
                        capture_output=True, text=True, timeout=400)
  output = proc.stdout + proc.stderr
  assert proc.returncode == 0, output[-4000:]
  result = json.loads(output.split('RESULT ', 1)[1].splitlines()[0])
  first, second = result['first'], result['second']
  for run in (first, second):
    assert {'checkpoints', 'tensorboard', 'policy', 'episodes.csv',
            'learning_curve.png', 'config.json'} <= set(run['listing']), run
    assert run['events'] >= 1
    # Only what needs a local disk is local: the actors' and the Reverb
    # server's logs (and the config file they were started with); Reverb's
    # checkpointer too, with replay.
    assert run['local_files'] == ['actors', 'config.json', 'episodes.csv',
                                  'reverb_server.log']
  assert first['frames'][0] >= 1500
  # The second run resumed: more frames on top, episodes appended.
  assert re.search(r'Resuming at (\d+) frames', output), output[-4000:]
  assert int(re.search(r'Resuming at (\d+) frames', output)[1]) >= 1500
  assert second['frames'][0] >= 3000
  assert second['episodes_csv_rows'] > first['episodes_csv_rows'] > 0
  assert second['checkpoint'] != first['checkpoint']
  assert result['frames_trained'] >= 3000
  assert result['eval_episodes'] == 5
