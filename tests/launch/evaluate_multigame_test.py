"""Multi-game evaluation (launch/evaluate.py --games) of one multi-task policy.

The policies are real SavedModels of agent/networks.ImpalaNetwork with a zero
value kernel and a different value bias per task, so out['value'] equals the
bias of the task the evaluator selected: the per-game `mean_value` proves
which task id each game was played as. Games run on real ALE with short
frame caps.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from agent import export
from agent import networks
from envs import atari
from envs import scores
from launch import eval_report
from launch import evaluate

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_ATARI_OBSERVATION = ((84, 84, 4), tf.uint8)  # envs.atari.make_atari()


def _export_policy(path, games, value_biases):
  """A full-action-set policy whose task i has value exactly value_biases[i]."""
  network = networks.ImpalaNetwork(18, num_tasks=len(games), torso='shallow',
                                   lstm_size=16)
  network.create_variables(*_ATARI_OBSERVATION)
  network.value_head.kernel.assign(tf.zeros_like(network.value_head.kernel))
  network.value_head.bias.assign(value_biases)
  export.export_policy(
      network, str(path), observation_spec=_ATARI_OBSERVATION,
      metadata=dict(games=games, action_set='full', frame_skip=4,
                    frames_trained=1000, agent_steps_trained=250))
  return str(path)


@pytest.fixture(scope='module')
def two_task_policy(tmp_path_factory):
  return _export_policy(tmp_path_factory.mktemp('two') / 'policy',
                        ['pong', 'breakout'], [-5.0, 7.0])


@pytest.fixture(scope='module')
def three_task_report(tmp_path_factory):
  """evaluate_games on a 3-task policy, games asked in a different order."""
  path = _export_policy(tmp_path_factory.mktemp('three') / 'policy',
                        ['pong', 'breakout', 'boxing'], [-5.0, 7.0, 2.5])
  policy, meta = evaluate.load_policy(path)
  return evaluate.evaluate_games(policy, meta, ['boxing', 'pong', 'breakout'],
                                 episodes=2, seed=1, max_episode_frames=300)


def test_resolve_games_expands_all57_and_canonicalises():
  assert evaluate.resolve_games(None, ['all57']) == list(atari.ATARI57_GAMES)
  assert len(evaluate.resolve_games(None, ['ALL57'])) == 57
  assert evaluate.resolve_games(None, ['Pong', 'SpaceInvaders', 'pong']) == [
      'pong', 'space_invaders']  # canonical names, duplicates dropped
  assert evaluate.resolve_games('Breakout', None) == ['breakout']
  assert evaluate.resolve_games(None, None) is None  # the policy's first game


@pytest.mark.parametrize('game, games, message', [
    ('pong', ['pong', 'breakout'], '--game and --games are mutually exclusive'),
    (None, ['all57', 'pong'], "'all57' cannot be combined"),
    (None, [], '--games is empty'),
    (None, ['pong', 'pongg'], "--games: Unknown Atari game 'pongg'; did you "
     'mean: pong'),
])
def test_resolve_games_errors(game, games, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    evaluate.resolve_games(game, games)


def test_task_ids_follow_the_policy_games_not_the_request_order():
  meta = dict(games=['pong', 'breakout'])
  assert evaluate.task_ids(meta, ['breakout', 'pong']) == [1, 0]
  with pytest.raises(ValueError, match=re.escape(
      "--games='qbert' is not a game this policy was trained on "
      '(pong, breakout)')):
    evaluate.task_ids(meta, ['pong', 'qbert'])
  with pytest.raises(ValueError, match=re.escape(
      '--games: qbert, seaquest are not games this policy was trained on '
      '(pong, breakout)')):
    evaluate.task_ids(meta, ['qbert', 'pong', 'seaquest'])


def test_untrained_game_is_rejected_before_any_episode(two_task_policy,
                                                       capsys):
  policy, meta = evaluate.load_policy(two_task_policy)
  with pytest.raises(ValueError, match=r"--games='boxing' .*\(pong, breakout\)"):
    evaluate.evaluate_games(policy, meta, ['pong', 'boxing'], episodes=1,
                            seed=0, max_episode_frames=100)
  assert 'episode' not in capsys.readouterr().out


def test_each_game_is_played_as_its_task(three_task_report):
  report = three_task_report
  assert report['games'] == ['boxing', 'pong', 'breakout']
  by_game = {r['game']: r for r in report['results']}
  assert [r['game'] for r in report['results']] == report['games']
  assert {g: r['task_id'] for g, r in by_game.items()} == dict(
      pong=0, breakout=1, boxing=2)
  # Zero value kernel: the value output is exactly the selected task's bias.
  assert {g: r['mean_value'] for g, r in by_game.items()} == dict(
      pong=-5.0, breakout=7.0, boxing=2.5)
  for game, r in by_game.items():
    assert len(r['returns']) == len(r['agent_steps']) == r['episodes'] == 2
    assert r['mean_return'] == pytest.approx(np.mean(r['returns']))
    assert r['std_return'] == pytest.approx(np.std(r['returns']))
    assert r['mean_agent_steps'] == pytest.approx(np.mean(r['agent_steps']))
    assert r['human_normalized_score'] == pytest.approx(
        scores.human_normalized_score(game, r['mean_return']))
    assert all(f <= 300 for f in r['frames']), game
    assert all(s <= 75 for s in r['agent_steps']), game  # 300 frames / 4


def test_mean_and_median_hns(three_task_report):
  hns = [r['human_normalized_score'] for r in three_task_report['results']]
  assert three_task_report['mean_human_normalized_score'] == pytest.approx(
      sum(hns) / 3)
  assert three_task_report['median_human_normalized_score'] == pytest.approx(
      sorted(hns)[1])


def test_table_has_a_row_per_game_and_the_summary(three_task_report):
  lines = eval_report.format_table(three_task_report).splitlines()
  assert lines[0].split()[:3] == ['game', 'task', 'episodes']
  assert len(lines) == 1 + 3 + 1
  for line, r in zip(lines[1:4], three_task_report['results']):
    hns = 100 * r['human_normalized_score']
    assert line.split()[:7] == [
        r['game'], str(r['task_id']), '2', f'{r["mean_return"]:.1f}', '±',
        f'{r["std_return"]:.1f}', f'{r["mean_agent_steps"]:.1f}'], line
    assert line.split()[7] == f'{hns:.1f}', line
  mean = 100 * three_task_report['mean_human_normalized_score']
  median = 100 * three_task_report['median_human_normalized_score']
  assert lines[-1] == (f'mean HNS {mean:.1f}%, median HNS {median:.1f}% over '
                       '3 games')


def test_hns_chart_is_a_png(three_task_report, tmp_path):
  png = eval_report.plot_hns(three_task_report, str(tmp_path / 'hns.png'))
  assert png == str(tmp_path / 'hns.png')
  with open(png, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  no_hns = dict(three_task_report, results=[
      dict(r, human_normalized_score=None)
      for r in three_task_report['results']])
  assert eval_report.plot_hns(no_hns, str(tmp_path / 'none.png')) is None
  assert not (tmp_path / 'none.png').exists()


def _evaluate(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run(
      [sys.executable, '-m', 'launch.evaluate', *args], cwd=_REPO, env=env,
      capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.e2e
def test_cli_plays_two_games_writes_table_json_and_png(two_task_policy):
  result = _evaluate(f'--policy={two_task_policy}', '--games=pong,breakout',
                     '--episodes=1', '--max_episode_frames=2000')
  assert result.returncode == 0, result.stderr
  out_dir = os.path.dirname(two_task_policy)
  with open(os.path.join(out_dir, 'eval_pong-breakout.json')) as f:
    report = json.load(f)
  assert report['games'] == ['pong', 'breakout']
  assert report['policy'] == two_task_policy
  pong, breakout = report['results']
  assert (pong['game'], pong['task_id'], pong['mean_value']) == (
      'pong', 0, -5.0)
  assert (breakout['game'], breakout['task_id'], breakout['mean_value']) == (
      'breakout', 1, 7.0)
  hns = []
  for r in (pong, breakout):
    assert r['episodes'] == 1 and len(r['returns']) == 1
    assert r['frames'][0] <= 2000 and r['max_episode_frames'] == 2000
    hns.append(scores.human_normalized_score(r['game'], r['returns'][0]))
    assert r['human_normalized_score'] == pytest.approx(hns[-1])
    row = re.search(rf'^{r["game"]} +{r["task_id"]} +1 +(\S+) ± 0\.0 +(\S+) +'
                    r'(\S+)', result.stdout, re.M)
    assert row, result.stdout
    assert row.groups() == (f'{r["mean_return"]:.1f}',
                            f'{r["agent_steps"][0]:.1f}',
                            f'{100 * hns[-1]:.1f}')
  assert report['mean_human_normalized_score'] == pytest.approx(np.mean(hns))
  assert report['median_human_normalized_score'] == pytest.approx(
      np.median(hns))
  assert (f'mean HNS {100 * np.mean(hns):.1f}%, median HNS '
          f'{100 * np.median(hns):.1f}% over 2 games') in result.stdout
  with open(os.path.join(out_dir, 'eval_pong-breakout.png'), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert 'Game 1/2: pong (task 0), 1 episodes' in result.stderr  # progress
  assert 'Game 2/2: breakout (task 1), 1 episodes' in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize('args, message', [
    (['--game=pong', '--games=pong,breakout'],
     '--game and --games are mutually exclusive'),
    (['--games=pong,qbert'],
     "--games='qbert' is not a game this policy was trained on "
     '(pong, breakout)'),
])
def test_cli_errors_before_playing(two_task_policy, tmp_path, args, message):
  output = tmp_path / 'out.json'
  result = _evaluate(f'--policy={two_task_policy}', '--episodes=1',
                     f'--output={output}', *args)
  assert result.returncode != 0
  assert message in result.stderr
  assert 'Traceback' not in result.stderr
  assert 'episode' not in result.stdout
  assert not output.exists()
