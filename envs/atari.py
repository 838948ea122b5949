"""Atari 2600 as a `dm_env.Environment`, directly over ale-py (no Gym).

Defaults follow SPEC §2: Machado et al. 2018 ("Revisiting the ALE", §5: sticky
actions p=0.25, episodes capped at 108,000 raw frames, full action set allowed,
no life-loss termination) with the DQN/IMPALA preprocessing (Mnih et al. 2015;
Espeholt et al. 2018 §5.3): the agent's action is repeated for `frame_skip`=4
raw frames (ALE's own frame skip is 1), the observation is the pixel-wise max
of the last two raw frames, converted to grayscale (ALE's palette luminance),
resized to 84×84 with `cv2.INTER_AREA` and stacked with the 3 previous ones
(uint8 [84, 84, 4], HWC, newest frame last; older slots are zero at an
episode start). Up to 30 no-op raw frames at reset (uniform in [0, noop_max]).

Units: one agent step = `frame_skip` raw frames, except the last step of an
episode, which stops at the raw frame where the game ends. `max_episode_frames`
and `episode_frames` count RAW FRAMES, no-op start frames included.

Episode ends: game over -> LAST with discount 0 (termination); raw-frame cap ->
LAST with discount 1 (truncation). With `terminal_on_life_loss` a lost life is
also a termination (DQN, Mnih et al. 2015) and the next `reset()` continues the
same game (no reset of the console, no no-ops) unless the game is over or the
cap was reached; `episode_frames` and the cap then count per game.
"""

from typing import List, Optional

import ale_py
from ale_py import roms
import cv2
import dm_env
from dm_env import specs
import numpy as np

from envs import base
from envs import scores

# The 57 games of the Atari-57 benchmark, by the names of
# envs/atari57_human_random_scores.csv (also used as config values).
ATARI57_GAMES = scores.GAMES
validate_game = scores.validate_game

# CSV name -> ale-py ROM id where they differ. In ale-py 0.12 every CSV name
# is a ROM id (checked by tests/envs/atari_test.py); add entries here if a
# future ale-py renames a ROM.
_ROM_ID_OVERRIDES = {}

_MAX_SEED = 2**31 - 1  # ALE's `random_seed` is a signed 32-bit int.

ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


def _check_int(name: str, value: int, minimum: int) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
  if value < minimum:
    raise ValueError(f'{name} must be >= {minimum}, got {value}')


class AtariEnv(base.DiscreteActionEnvironment):
  """One Atari game as a dm_env.Environment. Build it with `make_atari`.

  Observation: uint8 [screen_size, screen_size, frame_stack], HWC, 0..255,
  newest frame last. Action: int in [0, num_actions), an index into the
  minimal (default) or full 18-action set. Reward: float32 scalar, the sum of
  the raw (unclipped) game rewards over the step's raw frames. Discount:
  float32 scalar in [0, 1].
  """

  def __init__(self, game: str, *, seed: int, frame_skip: int,
               sticky_action_prob: float, noop_max: int,
               max_episode_frames: int, full_action_space: bool,
               frame_stack: int, screen_size: int,
               terminal_on_life_loss: bool):
    self._game = validate_game(game)
    _check_int('seed', seed, 0)
    if seed > _MAX_SEED:
      raise ValueError(f'seed must be in [0, {_MAX_SEED}], got {seed}')
    _check_int('frame_skip', frame_skip, 1)
    if (isinstance(sticky_action_prob, bool) or
        not isinstance(sticky_action_prob, (int, float, np.floating)) or
        not 0.0 <= sticky_action_prob <= 1.0):
      raise ValueError('sticky_action_prob must be in [0, 1], got '
                       f'{sticky_action_prob!r}')
    _check_int('noop_max', noop_max, 0)
    _check_int('max_episode_frames', max_episode_frames, 1)
    if max_episode_frames < frame_skip:
      raise ValueError(f'max_episode_frames (raw frames) must be >= frame_skip '
                       f'= {frame_skip}, got {max_episode_frames}')
    _check_int('frame_stack', frame_stack, 1)
    _check_int('screen_size', screen_size, 1)
    self._frame_skip = int(frame_skip)
    self._noop_max = int(noop_max)
    self._max_episode_frames = int(max_episode_frames)
    self._screen_size = int(screen_size)
    self._terminal_on_life_loss = bool(terminal_on_life_loss)

    self._ale = ale_py.ALEInterface()
    self._ale.setInt('random_seed', int(seed))  # Drives the sticky actions.
    self._ale.setFloat('repeat_action_probability', float(sticky_action_prob))
    self._ale.setInt('frame_skip', 1)  # We skip frames ourselves (max-pool).
    self._ale.setInt('max_num_frames_per_episode', 0)  # We cap ourselves.
    self._ale.loadROM(roms.get_rom_path(
        _ROM_ID_OVERRIDES.get(self._game, self._game)))
    if full_action_space:
      # All 18 ALE actions in enum order for EVERY game, so one policy head
      # fits all games. Not getLegalActionSet(): in ale-py 0.12 it drops the
      # FIRE actions of Skiing (9 actions; ALE issue #691), while ALE accepts
      # all 18 there (FIRE does nothing).
      self._action_set = list(ale_py.Action.__members__.values())
    else:
      self._action_set = list(self._ale.getMinimalActionSet())
    self._action_set_name = 'full' if full_action_space else 'minimal'
    self._noop_rng = np.random.default_rng(seed)

    self._stack = np.zeros([screen_size, screen_size, frame_stack], np.uint8)
    self._episode_frames = 0  # Raw frames since the game started.
    self._noop_count = 0
    self._lives = 0
    self._reset_next_step = True
    self._continue_game = False

  # Read-only attributes.
  @property
  def game(self) -> str:
    return self._game

  @property
  def num_actions(self) -> int:
    return len(self._action_set)

  @property
  def action_set_name(self) -> str:
    """'minimal' (the game's minimal action set) or 'full' (all 18)."""
    return self._action_set_name

  @property
  def action_meanings(self) -> List[str]:
    """ALE action names by action index, e.g. ['NOOP', 'FIRE', ...]."""
    return [a.name for a in self._action_set]

  @property
  def frame_skip(self) -> int:
    """Raw frames per agent step."""
    return self._frame_skip

  @property
  def episode_frames(self) -> int:
    """Raw frames since the game started, no-op start frames included."""
    return self._episode_frames

  @property
  def noop_count(self) -> int:
    """No-op raw frames played by the latest console reset."""
    return self._noop_count

  @property
  def ale(self) -> ale_py.ALEInterface:
    """The underlying emulator, for inspection (lives, settings) only."""
    if self._ale is None:
      raise RuntimeError(f'AtariEnv({self._game!r}) is closed')
    return self._ale

  # dm_env.Environment.
  def observation_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray(self._stack.shape, np.uint8, 0, 255,
                              name='observation')

  def reset(self) -> dm_env.TimeStep:
    """Starts an episode: console reset + no-ops, or the next life (above)."""
    ale = self.ale
    if self._continue_game:
      prev, screen = None, ale.getScreenGrayscale()
    else:
      ale.reset_game()
      self._episode_frames = 0
      self._noop_count = int(self._noop_rng.integers(0, self._noop_max + 1))
      prev, screen = None, ale.getScreenGrayscale()
      for _ in range(self._noop_count):
        prev = screen
        ale.act(ale_py.Action.NOOP)
        self._episode_frames += 1
        screen = ale.getScreenGrayscale()
        if ale.game_over():  # As Gym's NoopResetEnv: start over.
          ale.reset_game()
          self._episode_frames = 0
          prev, screen = None, ale.getScreenGrayscale()
    self._lives = ale.lives()
    self._reset_next_step = False
    self._continue_game = False
    self._stack[...] = 0
    return dm_env.restart(self._push_frame(prev, screen))

  def step(self, action: int) -> dm_env.TimeStep:
    """Repeats `action` for up to `frame_skip` raw frames (see module doc)."""
    if self._reset_next_step:
      return self.reset()
    index = self._action_index(action)
    ale, ale_action = self.ale, self._action_set[index]
    reward = 0.0
    prev, screen = None, None
    game_over = life_lost = truncated = False
    for i in range(self._frame_skip):
      reward += ale.act(ale_action)
      self._episode_frames += 1
      game_over = ale.game_over()
      lives = ale.lives()
      life_lost = self._terminal_on_life_loss and lives < self._lives
      self._lives = lives
      truncated = self._episode_frames >= self._max_episode_frames
      ends_step = game_over or life_lost or truncated
      if ends_step or i >= self._frame_skip - 2:  # Keep the last two frames.
        prev, screen = screen, ale.getScreenGrayscale()
      if ends_step:
        break
    observation = self._push_frame(prev, screen)
    reward = np.float32(reward)
    if game_over or life_lost:
      self._reset_next_step = True
      self._continue_game = not game_over and not truncated
      return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(0.0),
                             observation)  # Termination.
    if truncated:
      self._reset_next_step = True
      return dm_env.truncation(reward, observation, np.float32(1.0))
    return dm_env.transition(reward, observation, np.float32(1.0))

  def close(self) -> None:
    """Releases the emulator; the environment cannot be used afterwards."""
    self._ale = None

  def _push_frame(self, prev: Optional[np.ndarray],
                  screen: np.ndarray) -> np.ndarray:
    """Max-pools two raw grayscale frames [210, 160], resizes, stacks.

    Returns a copy of the stack, uint8 [screen_size, screen_size, frame_stack].
    """
    pooled = screen if prev is None else np.maximum(prev, screen)
    frame = cv2.resize(pooled, (self._screen_size, self._screen_size),
                       interpolation=cv2.INTER_AREA)
    self._stack[..., :-1] = self._stack[..., 1:]  # Oldest frame drops out.
    self._stack[..., -1] = frame
    return self._stack.copy()


def make_atari(game: str, *, seed: int = 0, frame_skip: int = 4,
               sticky_action_prob: float = 0.25, noop_max: int = 30,
               max_episode_frames: int = 108_000,
               full_action_space: bool = False, frame_stack: int = 4,
               screen_size: int = 84,
               terminal_on_life_loss: bool = False) -> AtariEnv:
  """Builds an Atari-57 game with the SPEC §2 preprocessing.

  Args:
    game: one of `ATARI57_GAMES` (CSV names, e.g. 'montezuma_revenge'); Gym
      CamelCase spellings are accepted (see `validate_game`).
    seed: in [0, 2**31 - 1]; seeds ALE's `random_seed` (sticky actions) and the
      no-op start RNG. Same seed + same actions => identical episodes.
    frame_skip: raw frames per agent step (action repeat), >= 1.
    sticky_action_prob: ALE `repeat_action_probability` per raw frame, in
      [0, 1] (Machado et al. 2018: 0.25).
    noop_max: no-op raw frames at each console reset are uniform in
      [0, noop_max], >= 0.
    max_episode_frames: episode cap in RAW frames (no-ops included), >=
      frame_skip; reaching it ends the episode with discount 1 (truncation).
    full_action_space: all 18 ALE actions instead of the game's minimal set
      (SPEC §2: full set for multi-task so that one policy head fits all).
    frame_stack: frames per observation (channel axis), >= 1.
    screen_size: side of the square resized frame in pixels, >= 1.
    terminal_on_life_loss: a lost life ends the episode with discount 0.

  Returns:
    An `AtariEnv`.

  Raises:
    ValueError: for an unknown game or an argument out of range.
  """
  return AtariEnv(game, seed=seed, frame_skip=frame_skip,
                  sticky_action_prob=sticky_action_prob, noop_max=noop_max,
                  max_episode_frames=max_episode_frames,
                  full_action_space=full_action_space,
                  frame_stack=frame_stack, screen_size=screen_size,
                  terminal_on_life_loss=terminal_on_life_loss)
