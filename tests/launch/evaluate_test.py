"""End-to-end tests of launch/evaluate.py as a real subprocess on Catch."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from agent import export
from agent import networks

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_CATCH_OBSERVATION = ((40, 20, 1), tf.uint8)  # envs.catch.make_catch()

pytestmark = pytest.mark.e2e


def _export_catch_policy(path, num_actions=3):
  network = networks.ImpalaNetwork(num_actions, torso='shallow')
  export.export_policy(
      network, str(path), observation_spec=_CATCH_OBSERVATION,
      metadata=dict(games=['catch'], action_set='minimal', frame_skip=1,
                    frames_trained=42, agent_steps_trained=42))
  return str(path)


def _evaluate(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run(
      [sys.executable, '-m', 'launch.evaluate', *args], cwd=_REPO, env=env,
      capture_output=True, text=True, timeout=120, check=False)


def test_plays_catch_and_writes_json(tmp_path):
  policy = _export_catch_policy(tmp_path / 'policy')
  output = tmp_path / 'results' / 'catch.json'
  output.parent.mkdir()
  result = _evaluate(f'--policy={policy}', '--game=catch', '--episodes=3',
                     f'--output={output}')
  assert result.returncode == 0, result.stderr
  report = json.loads(output.read_text())
  assert report['game'] == 'catch'
  assert report['episodes'] == 3
  assert len(report['returns']) == 3
  assert set(report['returns']) <= {-1.0, 1.0}
  assert report['mean_return'] == pytest.approx(sum(report['returns']) / 3)
  assert report['agent_steps'] == [9, 9, 9]  # Catch: rows - 1 steps
  assert report['frames'] == [9, 9, 9]  # no frame skip
  assert report['truncated'] == [False] * 3
  assert report['human_normalized_score'] is None
  assert report['policy_frames_trained'] == 42
  for i in range(1, 4):
    assert f'episode {i}/3: return ' in result.stdout
  assert 'mean return over 3 episodes of catch' in result.stdout


def test_default_game_and_output_next_to_policy(tmp_path):
  policy = _export_catch_policy(tmp_path / 'policy')
  result = _evaluate(f'--policy={policy}', '--episodes=1', '--seed=3')
  assert result.returncode == 0, result.stderr
  report = json.loads((tmp_path / 'eval_catch.json').read_text())
  assert report['game'] == 'catch'  # from the policy's metadata
  assert report['seed'] == 3
  assert len(report['returns']) == 1


def test_game_not_trained_on_is_a_clear_error(tmp_path):
  policy = _export_catch_policy(tmp_path / 'policy')
  result = _evaluate(f'--policy={policy}', '--game=pong', '--episodes=1')
  assert result.returncode != 0
  assert "--game='pong' is not a game this policy was trained on" in (
      result.stderr)
  assert 'Traceback' not in result.stderr
  assert not list(tmp_path.glob('eval_*.json'))


def test_action_count_mismatch_is_a_clear_error(tmp_path):
  policy = _export_catch_policy(tmp_path / 'policy', num_actions=4)
  result = _evaluate(f'--policy={policy}', '--game=catch', '--episodes=1')
  assert result.returncode != 0
  assert 'has 3 actions' in result.stderr
  assert 'the policy has 4' in result.stderr


def test_missing_policy_is_a_clear_error(tmp_path):
  result = _evaluate(f'--policy={tmp_path / "nothing"}', '--episodes=1')
  assert result.returncode != 0
  assert 'is not a SavedModel directory' in result.stderr


def test_games_flag_on_catch_has_no_hns_and_no_chart(tmp_path):
  policy = _export_catch_policy(tmp_path / 'policy')
  result = _evaluate(f'--policy={policy}', '--games=catch', '--episodes=2')
  assert result.returncode == 0, result.stderr
  report = json.loads((tmp_path / 'eval_catch.json').read_text())
  assert report['games'] == ['catch']
  (catch,) = report['results']
  assert (catch['game'], catch['task_id'], catch['episodes']) == ('catch', 0, 2)
  assert catch['agent_steps'] == [9, 9]
  assert catch['human_normalized_score'] is None
  assert report['mean_human_normalized_score'] is None
  assert report['median_human_normalized_score'] is None
  assert not list(tmp_path.glob('*.png'))
  (row,) = [l.split() for l in result.stdout.splitlines()
            if l.startswith('catch ') and 'episode' not in l]
  assert row == ['catch', '0', '2', f'{catch["mean_return"]:.1f}', '±',
                 f'{catch["std_return"]:.1f}', '9.0', 'n/a']
  assert 'HNS not defined for these games (Catch).' in result.stdout
