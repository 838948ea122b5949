"""End-to-end: every episode the actors report reaches episodes.csv (11.9).

Catch finishes ~300 episodes a second per actor, so records reported in the
last seconds of a run (while the final checkpoint and export are written)
are the ones a run would lose. The actors log how many episodes they
finished when they stop; the test counts the rows.
"""

import csv
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FINISHED = re.compile(r'Actor (\d+): the learner has finished \((\d+) agent '
                      r'steps, (\d+) episodes\); stopping\.')


@pytest.mark.e2e
@pytest.mark.fault
def test_every_episode_the_actors_finish_is_in_episodes_csv(tmp_path):
  logdir = str(tmp_path / 'count')
  done = subprocess.run(
      [sys.executable, '-m', 'launch.train', '--config=configs/smoke.py',
       f'--logdir={logdir}', '--config.total_frames=20000'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  finished = {}
  actor_dir = os.path.join(logdir, 'actors')
  for name in sorted(os.listdir(actor_dir)):
    with open(os.path.join(actor_dir, name)) as f:
      for match in FINISHED.finditer(f.read()):
        finished[int(match.group(1))] = int(match.group(3))
  assert sorted(finished) == [0, 1], os.listdir(actor_dir)
  with open(os.path.join(logdir, 'episodes.csv'), newline='') as f:
    rows = list(csv.DictReader(f))
  per_actor = {i: sum(int(r['actor_id']) == i for r in rows) for i in finished}
  print(f'episodes finished by the actors: {finished}; rows: {per_actor}')
  assert per_actor == finished
  assert 'dropped' not in done.stderr
