"""Atari-57 random and human reference scores, and human-normalised score.

Source: the random/human scores published with DQN (Mnih et al. 2015; Nature,
Extended Data Table 2, 30 no-op starts, episodes capped at 108,000 raw frames)
and reused by the IMPALA (Espeholt et al. 2018) and PopArt (Hessel et al. 2018)
papers. The table lives next to this module in
`envs/atari57_human_random_scores.csv` (columns `game,random,human`; scores are
undiscounted, unclipped episode returns). SPEC §2.

Game names are the CSV's lowercase snake_case names ('pong',
'montezuma_revenge', 'space_invaders'), which are also ale-py's ROM ids.
`validate_game` also accepts Gym-style CamelCase ('MontezumaRevenge'),
hyphens/spaces and a few published spellings ("Montezuma's Revenge").
"""

import csv
import difflib
import os
import re
from typing import Dict, Tuple

_CSV_NAME = 'atari57_human_random_scores.csv'
_CSV_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), _CSV_NAME)

# Published spellings that do not normalise to the CSV name on their own.
_ALIASES = {
    'montezumas_revenge': 'montezuma_revenge',
    'james_bond': 'jamesbond',
    'up_and_down': 'up_n_down',
    'river_raid': 'riverraid',
    'pitfall!': 'pitfall',
}


def _load_table(path: str) -> Tuple[Dict[str, float], Dict[str, float]]:
  """Reads the CSV into ({game: random score}, {game: human score})."""
  random_scores, human_scores = {}, {}
  with open(path, newline='', encoding='utf-8') as f:
    reader = csv.DictReader(f)
    if reader.fieldnames != ['game', 'random', 'human']:
      raise ValueError(
          f'{path}: columns must be game,random,human, got {reader.fieldnames}')
    for row in reader:
      game = row['game']
      random_scores[game] = float(row['random'])
      human_scores[game] = float(row['human'])
      if human_scores[game] <= random_scores[game]:
        raise ValueError(f'{path}: human score must exceed random score for '
                         f'{game!r}, got human={human_scores[game]}, '
                         f'random={random_scores[game]}')
  return random_scores, human_scores


# Unclipped episode returns of a uniform random policy and of a human tester.
RANDOM_SCORES, HUMAN_SCORES = _load_table(_CSV_PATH)
GAMES: Tuple[str, ...] = tuple(sorted(HUMAN_SCORES))


def _normalise_name(game: str) -> str:
  name = game.strip().replace("'", '')
  # CamelCase -> snake_case ('UpNDown' -> 'Up_N_Down').
  name = re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', name)
  name = re.sub(r'[\s\-]+', '_', name).lower()
  return _ALIASES.get(name, name)


def validate_game(game: str) -> str:
  """Returns the canonical (CSV) name of an Atari-57 game.

  Args:
    game: a game name: the CSV's snake_case name ('space_invaders'), or a
      CamelCase/hyphenated/published spelling of it ('SpaceInvaders').

  Returns:
    The canonical name, one of `GAMES`.

  Raises:
    ValueError: if `game` is not one of the 57 games; the message lists the
      closest names (difflib).
  """
  if not isinstance(game, str):
    raise ValueError(
        f'game must be a str naming one of the {len(GAMES)} Atari-57 games, '
        f'got {game!r} of type {type(game).__name__}')
  name = _normalise_name(game)
  if name in HUMAN_SCORES:
    return name
  close = difflib.get_close_matches(name, GAMES, n=3, cutoff=0.6)
  hint = f'; did you mean: {", ".join(close)}?' if close else ''
  raise ValueError(f'Unknown Atari game {game!r}{hint} ({len(GAMES)} games: '
                   f'see envs/{_CSV_NAME})')


def human_normalized_score(game: str, score: float) -> float:
  """Human-normalised score (HNS) of an episode return (SPEC §2).

  HNS = (score − random) / (human − random): 0 for the random policy, 1 for the
  human tester (DQN, Mnih et al. 2015; IMPALA and PopArt report its median).

  Args:
    game: an Atari-57 game name (see `validate_game`).
    score: an undiscounted, unclipped episode return.

  Returns:
    The human-normalised score as a Python float (1.0 means 100%).

  Raises:
    ValueError: for an unknown game.
  """
  name = validate_game(game)
  random_score = RANDOM_SCORES[name]
  return (float(score) - random_score) / (HUMAN_SCORES[name] - random_score)
