r"""Evaluates an exported policy (SPEC §10) on Atari or Catch.

Loads the SavedModel written by agent/export.py with `tf.saved_model.load`
(no agent/ or replay/ code), plays N episodes with batch size 1 (LSTM state
carried, `first` at each episode start, prev_action/prev_reward fed) under the
training environment settings (SPEC §2: sticky actions 0.25, up to 30 no-ops,
108,000-frame cap), prints each episode's return and length, then the mean
return and its human-normalised score (HNS; not for Catch), and writes them as
JSON (default: next to the policy directory, DIR/eval_<game>.json).

  python -m launch.evaluate --policy=logs/pong/policy --episodes=10
  python -m launch.evaluate --policy=logs/smoke/policy --game=catch \
      --episodes=100 --output=/tmp/catch.json

Actions are sampled from the policy's logits with a NumPy generator seeded by
--seed (the SavedModel's own `action` output is not seedable after loading),
so a run is reproducible given --seed.
"""

import json
import os
from typing import Any, Dict, List, Optional

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from envs import atari
from envs import catch
from envs import scores

_POLICY = flags.DEFINE_string(
    'policy', None, 'SavedModel directory written by the exporter, e.g. '
    'LOGDIR/policy.')
_GAME = flags.DEFINE_string(
    'game', None, "Game to play ('catch' or an Atari-57 name); default: the "
    "policy's (first) training game.")
_EPISODES = flags.DEFINE_integer('episodes', 10, 'Episodes to play.',
                                 lower_bound=1)
_SEED = flags.DEFINE_integer('seed', 0, 'Environment and action-sampling seed.',
                             lower_bound=0)
_OUTPUT = flags.DEFINE_string(
    'output', None, 'JSON results path; default: eval_<game>.json next to '
    'the policy directory.')
_MAX_EPISODE_FRAMES = flags.DEFINE_integer(
    'max_episode_frames', 108_000, 'Atari episode cap in raw frames.',
    lower_bound=1)

flags.mark_flags_as_required(['policy'])


def _metadata(policy) -> Dict[str, Any]:
  """The policy's metadata (agent/export.py) as Python values."""
  meta = json.loads(policy.metadata_json.numpy())
  meta['num_actions'] = int(policy.num_actions.numpy())
  meta['games'] = [g.decode() for g in policy.games.numpy()]
  meta['action_set'] = policy.action_set.numpy().decode()
  return meta


def _canonical(game: str) -> str:
  return 'catch' if game.lower() == 'catch' else scores.validate_game(game)


def _task_id(meta: Dict[str, Any], game: str) -> int:
  """Index of `game` among the policy's training games; ValueError if absent."""
  games = [_canonical(g) for g in meta['games']]
  if game not in games:
    raise ValueError(f'--game={game!r} is not a game this policy was trained '
                     f'on ({", ".join(meta["games"])}); its task id and '
                     'action set would be meaningless.')
  return games.index(game)


def _make_env(game: str, meta: Dict[str, Any], seed: int):
  if game == 'catch':
    return catch.make_catch(seed=seed)
  kwargs = {}
  if 'frame_skip' in meta:
    kwargs['frame_skip'] = meta['frame_skip']  # as in training
  return atari.make_atari(
      game, seed=seed, full_action_space=meta['action_set'] == 'full',
      max_episode_frames=_MAX_EPISODE_FRAMES.value, **kwargs)


def _check_env(env, meta: Dict[str, Any]) -> None:
  """ValueError if the environment does not fit the policy's inputs/outputs."""
  if env.num_actions != meta['num_actions']:
    raise ValueError(
        f'the {env.game!r} environment has {env.num_actions} actions '
        f'({env.action_set_name} action set) but the policy has '
        f"{meta['num_actions']} ({meta['action_set']} action set, trained on "
        f"{', '.join(meta['games'])}).")
  spec = env.observation_spec()
  if (list(spec.shape) != list(meta['observation_shape'])
      or np.dtype(spec.dtype).name != meta['observation_dtype']):
    raise ValueError(
        f'the {env.game!r} environment observes {np.dtype(spec.dtype).name} '
        f'{list(spec.shape)} but the policy expects '
        f"{meta['observation_dtype']} {meta['observation_shape']}.")


def play_episode(policy, env, task_id: int, rng: np.random.Generator
                 ) -> Dict[str, float]:
  """Plays one episode (batch 1) with the policy's LSTM state carried.

  Returns:
    dict: episode_return (undiscounted, unclipped), agent_steps, frames (raw
    frames; Atari: as counted by the env, no-op starts included), truncated
    (True if the episode hit the frame cap rather than ending).
  """
  timestep = env.reset()
  state = policy.initial_state(1)
  prev_action, prev_reward, first = 0, 0.0, True
  episode_return, steps = 0.0, 0
  while not timestep.last():
    out = policy.step(
        observation=np.asarray(timestep.observation)[None],
        prev_action=np.array([prev_action], np.int32),
        prev_reward=np.array([prev_reward], np.float32),
        first=np.array([first]), task_id=np.array([task_id], np.int32),
        state=state)
    state = out['state']
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
              frames=int(frames),
              truncated=bool(timestep.discount))  # cap reached, not game over


def load(policy_dir: str, game: Optional[str], seed: int):
  """Loads the policy and builds a matching environment.

  Returns:
    (policy, metadata dict, canonical game name, task id, environment).

  Raises:
    ValueError: if `policy_dir` is not a SavedModel, `game` is unknown or not
      one of the policy's games, or the environment does not fit the policy.
  """
  if not tf.io.gfile.exists(os.path.join(policy_dir, 'saved_model.pb')):
    raise ValueError(f'--policy={policy_dir!r} is not a SavedModel directory '
                     '(no saved_model.pb).')
  policy = tf.saved_model.load(policy_dir)
  meta = _metadata(policy)
  game = _canonical(game or meta['games'][0])
  task_id = _task_id(meta, game)
  env = _make_env(game, meta, seed)
  try:
    _check_env(env, meta)
  except ValueError:
    _close(env)
    raise
  return policy, meta, game, task_id, env


def _close(env) -> None:
  close = getattr(env, 'close', None)
  if close is not None:
    close()


def evaluate(policy, meta: Dict[str, Any], game: str, task_id: int, env,
             episodes: int, seed: int) -> Dict[str, Any]:
  """Plays `episodes` episodes, printing each; returns the results dict."""
  rng = np.random.default_rng(seed)
  results: List[Dict[str, float]] = []
  for i in range(episodes):
    result = play_episode(policy, env, task_id, rng)
    results.append(result)
    print(f'episode {i + 1}/{episodes}: return {result["episode_return"]:g}, '
          f'length {result["agent_steps"]} agent steps '
          f'({result["frames"]} frames)'
          + (' [truncated at the frame cap]' if result['truncated'] else ''),
          flush=True)
  returns = [r['episode_return'] for r in results]
  mean_return = float(np.mean(returns))
  hns = None if game == 'catch' else scores.human_normalized_score(
      game, mean_return)
  return dict(
      game=game, task_id=task_id, episodes=episodes, seed=seed,
      returns=returns, agent_steps=[r['agent_steps'] for r in results],
      frames=[r['frames'] for r in results],
      truncated=[r['truncated'] for r in results], mean_return=mean_return,
      human_normalized_score=hns, action_set=meta['action_set'],
      max_episode_frames=(None if game == 'catch'
                          else _MAX_EPISODE_FRAMES.value),
      policy_frames_trained=meta.get('frames_trained'),
      policy_agent_steps_trained=meta.get('agent_steps_trained'))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  policy_dir = _POLICY.value.rstrip('/')
  try:
    policy, meta, game, task_id, env = load(policy_dir, _GAME.value,
                                            _SEED.value)
  except ValueError as e:
    raise SystemExit(f'launch.evaluate: error: {e}') from e
  try:
    results = evaluate(policy, meta, game, task_id, env, _EPISODES.value,
                       _SEED.value)
  finally:
    _close(env)
  results['policy'] = os.path.abspath(policy_dir)
  line = (f'mean return over {results["episodes"]} episodes of '
          f'{results["game"]}: {results["mean_return"]:g}')
  if results['human_normalized_score'] is not None:
    line += f' (human-normalised score {results["human_normalized_score"]:.3f})'
  print(line, flush=True)
  output = _OUTPUT.value or os.path.join(
      os.path.dirname(os.path.abspath(policy_dir)),
      f'eval_{results["game"]}.json')
  tmp = f'{output}.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    f.write(json.dumps(results, indent=2) + '\n')
  tf.io.gfile.rename(tmp, output, overwrite=True)
  print(f'wrote {output}', flush=True)


if __name__ == '__main__':
  app.run(main)
