"""End-to-end: launch.train with HER replay on bit flipping, stopped and resumed.

Real launcher subprocess (its Reverb server child process, actor process,
learner) with configs/her_bitflip.py at n = 4. Asserts numbers: the resumed run continues
the frame counter and its Reverb server restores the replay table.
"""

import csv
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(logdir, total_frames):
  cmd = [sys.executable, '-m', 'launch.train', '--config=configs/her_bitflip.py:4',
         f'--logdir={logdir}', f'--config.total_frames={total_frames}',
         '--config.num_envs_per_actor=8', '--config.batch_size=8',
         '--config.logging.progress_every_secs=2']
  result = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-4000:]
  return result.stdout


@pytest.mark.e2e
def test_resume_keeps_counters_and_replay_contents(tmp_path):
  logdir = str(tmp_path / 'bits4')
  first = _train(logdir, 4000)
  assert 'Reached total_frames=4000' in first
  assert re.search(r'Reverb checkpoint \(replay contents\): .*/reverb/', first)
  restored_empty = re.search(r'Reverb replay table holds (\d+) of', first)
  assert restored_empty and int(restored_empty.group(1)) == 0

  second = _train(logdir, 8000)
  resumed = re.search(r'Resuming at (\d+) frames', second)
  assert resumed and int(resumed.group(1)) >= 4000, second[-4000:]
  restored = re.search(r'Reverb replay table holds (\d+) of (\d+) items', second)
  assert restored, second[-4000:]
  # Episodes of n = 4 last at most 4 steps: one replay item each. The first
  # run made thousands of episodes; replay_size caps the table.
  assert 100 <= int(restored.group(1)) <= int(restored.group(2))
  assert 'Reached total_frames=8000' in second

  with open(os.path.join(logdir, 'episodes.csv')) as f:
    frames = [int(r['learner_frames']) for r in csv.DictReader(f)]
  assert frames == sorted(frames) and frames[-1] >= 8000
