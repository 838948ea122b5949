r"""Evaluates an exported policy (SPEC §10) on Atari or Catch, one or many games.

Loads the SavedModel written by agent/export.py with `tf.saved_model.load`
(no agent/ or replay/ code) and plays N episodes per game with batch size 1
(LSTM state carried, `first` at each episode start, prev_action/prev_reward
fed) under the training environment settings (SPEC §2: sticky actions 0.25,
up to 30 no-ops, 108,000-frame cap). A multi-task policy (SPEC §5) plays game
g as task `task_id` = i where the policy's metadata games[i] == g.

  python -m launch.evaluate --policy=logs/pong/policy --episodes=10
  python -m launch.evaluate --policy=logs/smoke/policy --game=catch \
      --episodes=100 --output=/tmp/catch.json
  python -m launch.evaluate --policy=logs/atari57/policy --games=all57 \
      --episodes=3
  python -m launch.evaluate --policy=logs/mt/policy --games=pong,breakout
  python -m launch.evaluate --policy=logs/distral/policy --distilled \
      --games=goal_7_2          # Distral's π0 on a held-out grid-world goal

--game (default: the policy's first game) prints each episode and a one-row
table and writes DIR/eval_<game>.json next to the policy directory DIR/policy.
--games=g1,g2,... or --games=all57 (envs/atari.py ATARI57_GAMES) prints a
table (game, task id, episodes, return mean ± std, mean length in agent steps,
human-normalised score), the mean and median HNS over the games (HNS is not
defined for Catch), and writes DIR/eval_<g1-g2|all57|multi>.json plus a bar
chart of per-game HNS with the same base name (.png). Every requested game is
checked (name, trained on by the policy, environment fits the policy) before
any episode is played.

Distral policies: --distilled plays the distilled policy π0
(`policy.distilled_step`, SPEC §6) instead of each task's π_i; π0 ignores the
task, so with --distilled a game need not be one the policy was trained on
(it plays as task 0, which only selects the reported value). Distral grid
world tasks are named 'goal_<row>_<column>' (envs/distral_gridworld.py).

Actions are sampled from the policy's logits with a NumPy generator seeded by
--seed, afresh for each game (the SavedModel's own `action` output is not
seedable after loading), so a game's results are reproducible given --seed
and do not depend on the other games requested.
"""

import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import numpy as np

from launch import console

console.import_quietly('tensorflow')  # before anything else imports it
import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

from envs import atari  # pylint: disable=g-import-not-at-top,g-bad-import-order
from envs import catch
from envs import distral_gridworld
from envs import scores
from launch import cli
from launch import eval_report

_POLICY = flags.DEFINE_string(
    'policy', None, 'SavedModel directory written by the exporter, e.g. '
    'LOGDIR/policy.')
_GAME = flags.DEFINE_string(
    'game', None, "Game to play ('catch' or an Atari-57 name); default: the "
    "policy's (first) training game. Excludes --games.")
_GAMES = flags.DEFINE_list(
    'games', None, "Comma-separated games to play with one multi-task policy "
    "(task i = the policy's games[i]), or 'all57'. Excludes --game.")
_EPISODES = flags.DEFINE_integer('episodes', 10, 'Episodes to play per game.',
                                 lower_bound=1)
_DISTILLED = flags.DEFINE_bool(
    'distilled', False, "Play a Distral policy's distilled policy π0 "
    '(policy.distilled_step) instead of its task policies.')
_SEED = flags.DEFINE_integer('seed', 0, 'Environment and action-sampling seed.',
                             lower_bound=0)
_OUTPUT = flags.DEFINE_string(
    'output', None, 'JSON results path (--games: the HNS chart goes next to '
    'it as .png); default: eval_<game(s)>.json next to the policy directory.')
_MAX_EPISODE_FRAMES = flags.DEFINE_integer(
    'max_episode_frames', 108_000, 'Atari episode cap in raw frames.',
    lower_bound=1)

flags.mark_flags_as_required(['policy'])

ALL57 = 'all57'
_MAX_NAMED_GAMES = 3  # More games than this: default output eval_multi.json.


def _canonical(game: str) -> str:
  if game.lower() == 'catch' or distral_gridworld.goal_of_task(game):
    return game.lower()
  return scores.validate_game(game)


def _has_hns(game: str) -> bool:
  """Only Atari games have human/random reference scores."""
  return game != 'catch' and distral_gridworld.goal_of_task(game) is None


def resolve_games(game: Optional[str], games: Optional[Sequence[str]]
                  ) -> Optional[List[str]]:
  """The --game/--games flags as canonical game names, duplicates dropped.

  Returns:
    None if neither is given (play the policy's first game), else the games.

  Raises:
    ValueError: if both are given, --games is empty or mixes 'all57' with
      other names, or a name is neither 'catch' nor an Atari-57 game.
  """
  if game is not None and games is not None:
    raise ValueError('--game and --games are mutually exclusive; use '
                     f'--games={game} for one game.')
  if games is None:
    return None if game is None else [_canonical(game)]
  names = [g.strip() for g in games if g.strip()]
  if not names:
    raise ValueError("--games is empty; give game names or 'all57'.")
  if ALL57 in (n.lower() for n in names):
    if len(names) > 1:
      raise ValueError(f"--games='{ALL57}' cannot be combined with other "
                       f'games; got {",".join(names)}.')
    return list(atari.ATARI57_GAMES)
  try:
    return list(dict.fromkeys(_canonical(n) for n in names))
  except ValueError as e:
    raise ValueError(f'--games: {e}') from e


def load_policy(policy_dir: str) -> Tuple[Any, Dict[str, Any]]:
  """Loads a SavedModel policy; returns (policy, metadata dict).

  The metadata holds the policy's `games` (list of str, task i = games[i]),
  `action_set`, `num_actions` and the keys of its metadata_json.

  Raises:
    ValueError: if `policy_dir` is not a SavedModel directory.
  """
  if not tf.io.gfile.exists(os.path.join(policy_dir, 'saved_model.pb')):
    raise ValueError(f'--policy={policy_dir!r} is not a SavedModel directory '
                     '(no saved_model.pb).')
  policy = tf.saved_model.load(policy_dir)
  meta = json.loads(policy.metadata_json.numpy())
  meta['num_actions'] = int(policy.num_actions.numpy())
  meta['games'] = [g.decode() for g in policy.games.numpy()]
  meta['action_set'] = policy.action_set.numpy().decode()
  return policy, meta


def task_ids(meta: Dict[str, Any], games: Sequence[str],
             flag: str = '--games', distilled: bool = False) -> List[int]:
  """Task id (index among the policy's games) of each canonical game name.

  With `distilled` (π0 ignores the task), a game the policy was not trained
  on plays as task 0.

  Raises:
    ValueError: naming every game the policy was not trained on, and the
      policy's games (also for a single-task policy).
  """
  trained = [_canonical(g) for g in meta['games']]
  if distilled:
    return [trained.index(g) if g in trained else 0 for g in games]
  missing = [g for g in games if g not in trained]
  if missing:
    value = ','.join(missing)
    raise ValueError(
        f'{flag}={value!r} is not a game this policy was trained on '
        f'({", ".join(meta["games"])}); its task id and action set would be '
        'meaningless.' if len(missing) == 1 else
        f'{flag}: {", ".join(missing)} are not games this policy was trained '
        f'on ({", ".join(meta["games"])}).')
  return [trained.index(g) for g in games]


def make_env(game: str, meta: Dict[str, Any], seed: int,
             max_episode_frames: int):
  """The evaluation environment of `game` (canonical name), checked to fit the
  policy's action count and observation spec; Atari capped at
  `max_episode_frames` raw frames.

  Raises:
    ValueError: if the environment does not fit the policy, or the cap is
      below the frame skip.
  """
  goal = distral_gridworld.goal_of_task(game)
  if game == 'catch':
    env = catch.make_catch(seed=seed)
  elif goal is not None:
    env = distral_gridworld.make_distral_gridworld(
        size=int(meta['observation_shape'][0]), goal=goal, seed=seed,
        max_steps=int(meta.get('max_episode_steps', 50)))
  else:
    kwargs = {}
    if 'frame_skip' in meta:
      kwargs['frame_skip'] = meta['frame_skip']  # as in training
    env = atari.make_atari(
        game, seed=seed, full_action_space=meta['action_set'] == 'full',
        max_episode_frames=max_episode_frames, **kwargs)
  spec = env.observation_spec()
  problem = None
  if env.num_actions != meta['num_actions']:
    problem = (f'the {env.game!r} environment has {env.num_actions} actions '
               f'({env.action_set_name} action set) but the policy has '
               f"{meta['num_actions']} ({meta['action_set']} action set, "
               f"trained on {', '.join(meta['games'])}).")
  elif (list(spec.shape) != list(meta['observation_shape'])
        or np.dtype(spec.dtype).name != meta['observation_dtype']):
    problem = (f'the {env.game!r} environment observes '
               f'{np.dtype(spec.dtype).name} {list(spec.shape)} but the '
               f"policy expects {meta['observation_dtype']} "
               f"{meta['observation_shape']}.")
  if problem:
    _close(env)
    raise ValueError(problem)
  return env


def _close(env) -> None:
  close = getattr(env, 'close', None)
  if close is not None:
    close()


def play_episode(policy, env, task_id: int, rng: np.random.Generator,
                 distilled: bool = False) -> Dict[str, float]:
  """Plays one episode (batch 1) as task `task_id`, LSTM state carried.

  With `distilled`, acts with a Distral policy's π0 (`distilled_step`).

  Returns:
    dict: episode_return (undiscounted, unclipped), agent_steps, frames (raw
    frames; Atari: as counted by the env, no-op starts included), truncated
    (True if the episode hit the frame cap rather than ending), mean_value
    (mean over agent steps of the policy's unnormalised value output).
  """
  timestep = env.reset()
  state = policy.initial_state(1)
  prev_action, prev_reward, first = 0, 0.0, True
  episode_return, steps, value_sum = 0.0, 0, 0.0
  step = policy.distilled_step if distilled else policy.step
  while not timestep.last():
    out = step(
        observation=np.asarray(timestep.observation)[None],
        prev_action=np.array([prev_action], np.int32),
        prev_reward=np.array([prev_reward], np.float32),
        first=np.array([first]), task_id=np.array([task_id], np.int32),
        state=state)
    state = out['state']
    value_sum += float(out['value'].numpy()[0])
    logits = out['logits'].numpy()[0].astype(np.float64)
    action = int(np.argmax(logits + rng.gumbel(size=logits.shape)))  # ~ π
    timestep = env.step(action)
    prev_action, prev_reward, first = action, float(timestep.reward), False
    episode_return += prev_reward
    steps += 1
  frames = getattr(env, 'episode_frames', None)  # Atari: raw frames, no-ops in
  if frames is None:
    frames = steps * getattr(env, 'frame_skip', 1)
  return dict(episode_return=episode_return, agent_steps=steps,
              frames=int(frames), mean_value=value_sum / max(steps, 1),
              truncated=bool(timestep.discount))  # cap reached, not game over


def evaluate(policy, meta: Dict[str, Any], game: str, task_id: int, env,
             episodes: int, seed: int, max_episode_frames: int,
             distilled: bool = False) -> Dict[str, Any]:
  """Plays `episodes` episodes of `game` as `task_id`, printing each.

  Returns:
    The game's results: per-episode returns, agent_steps, frames (raw) and
    truncated; mean_return, std_return (over episodes, ddof=0),
    mean_agent_steps, mean_value (over all agent steps) and
    human_normalized_score of the mean return (None for Catch).
  """
  rng = np.random.default_rng(seed)
  results: List[Dict[str, float]] = []
  for i in range(episodes):
    result = play_episode(policy, env, task_id, rng, distilled)
    results.append(result)
    print(f'{game} episode {i + 1}/{episodes}: return '
          f'{result["episode_return"]:g}, length {result["agent_steps"]} agent '
          f'steps ({result["frames"]} frames)'
          + (' [truncated at the frame cap]' if result['truncated'] else ''),
          flush=True)
  returns = [r['episode_return'] for r in results]
  steps = [r['agent_steps'] for r in results]
  mean_return = float(np.mean(returns))
  return dict(
      game=game, task_id=task_id, episodes=episodes, seed=seed,
      returns=returns, agent_steps=steps,
      frames=[r['frames'] for r in results],
      truncated=[r['truncated'] for r in results], mean_return=mean_return,
      std_return=float(np.std(returns)), mean_agent_steps=float(np.mean(steps)),
      mean_value=float(np.dot([r['mean_value'] for r in results], steps)
                       / max(sum(steps), 1)),
      human_normalized_score=(scores.human_normalized_score(game, mean_return)
                              if _has_hns(game) else None),
      action_set=meta['action_set'], distilled=distilled,
      max_episode_frames=max_episode_frames if _has_hns(game) else None,
      policy_frames_trained=meta.get('frames_trained'),
      policy_agent_steps_trained=meta.get('agent_steps_trained'))


def evaluate_games(policy, meta: Dict[str, Any], games: Sequence[str],
                   episodes: int, seed: int, max_episode_frames: int,
                   distilled: bool = False) -> Dict[str, Any]:
  """Plays each of `games` (canonical names) as its task, `episodes` each.

  Every game is checked (trained on, environment fits) before any is played.

  Returns:
    dict: games, episodes (per game), seed, max_episode_frames (raw frames),
    results (one `evaluate` dict per game) and mean/median_human_normalized_
    score over the games with an HNS (None if there are none, e.g. Catch).

  Raises:
    ValueError: as `task_ids` and `make_env`.
  """
  if distilled and not hasattr(policy, 'distilled_step'):
    raise ValueError('--distilled needs a Distral policy (with '
                     'distilled_step); this one was trained without Distral.')
  ids = task_ids(meta, games, distilled=distilled)
  logging.info('Checking %d environments against the policy...', len(games))
  for game in games:
    _close(make_env(game, meta, seed, max_episode_frames))
  results = []
  for n, (game, task_id) in enumerate(zip(games, ids)):
    logging.info('Game %d/%d: %s (task %d), %d episodes...', n + 1, len(games),
                 game, task_id, episodes)
    start = time.time()
    env = make_env(game, meta, seed, max_episode_frames)
    try:
      results.append(evaluate(policy, meta, game, task_id, env, episodes, seed,
                              max_episode_frames, distilled))
    finally:
      _close(env)
    logging.info('Game %d/%d: %s mean return %g in %.0f s.', n + 1,
                 len(games), game, results[-1]['mean_return'],
                 time.time() - start)
  hns = [r['human_normalized_score'] for r in results
         if r['human_normalized_score'] is not None]
  return dict(
      games=list(games), episodes=episodes, seed=seed,
      max_episode_frames=max_episode_frames, results=results,
      mean_human_normalized_score=float(np.mean(hns)) if hns else None,
      median_human_normalized_score=float(np.median(hns)) if hns else None)


def _default_output(policy_dir: str, games: Sequence[str]) -> str:
  """DIR/eval_<name>.json for the policy directory DIR/policy."""
  if len(games) == 1:
    name = games[0]
  elif sorted(games) == sorted(atari.ATARI57_GAMES):
    name = ALL57
  else:
    name = '-'.join(games) if len(games) <= _MAX_NAMED_GAMES else 'multi'
  return os.path.join(os.path.dirname(_absolute(policy_dir)),
                      f'eval_{name}.json')


def _absolute(path: str) -> str:
  """os.path.abspath for a local path; a URL (gs://…) as it is."""
  return path if '://' in path else os.path.abspath(path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  policy_dir = _POLICY.value.rstrip('/')
  try:
    games = resolve_games(_GAME.value, _GAMES.value)
    policy, meta = load_policy(policy_dir)
    if _GAMES.value is None:  # --game or the default: one game, flat JSON
      games = games or [_canonical(meta['games'][0])]
      task_ids(meta, games, flag='--game', distilled=_DISTILLED.value)
    report = evaluate_games(policy, meta, games, _EPISODES.value, _SEED.value,
                            _MAX_EPISODE_FRAMES.value, _DISTILLED.value)
  except ValueError as e:
    raise SystemExit(f'launch.evaluate: error: {e}') from e
  report['policy'] = _absolute(policy_dir)
  print(eval_report.format_table(report), flush=True)
  if _GAMES.value is None:
    results = dict(report['results'][0], policy=report['policy'])
    line = (f'mean return over {results["episodes"]} episodes of '
            f'{results["game"]}: {results["mean_return"]:g}')
    if results['human_normalized_score'] is not None:
      line += (' (human-normalised score '
               f'{results["human_normalized_score"]:.3f})')
    print(line, flush=True)
    eval_report.write_json(results, _OUTPUT.value or _default_output(policy_dir, games))
    return
  output = _OUTPUT.value or _default_output(policy_dir, games)
  eval_report.write_json(report, output)
  png = eval_report.plot_hns(report, os.path.splitext(output)[0] + '.png')
  print(f'wrote {png}' if png else 'no HNS chart: HNS is not defined for '
        'these games.', flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
