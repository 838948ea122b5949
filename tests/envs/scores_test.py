"""Tests for envs/scores.py (Atari-57 human-normalised scores)."""

from absl.testing import absltest
from absl.testing import parameterized

from envs import scores


class ScoresTest(parameterized.TestCase):

  def test_table_has_57_games(self):
    self.assertLen(scores.GAMES, 57)
    self.assertEqual(set(scores.RANDOM_SCORES), set(scores.HUMAN_SCORES))
    self.assertEqual(scores.RANDOM_SCORES['pong'], -20.7)
    self.assertEqual(scores.HUMAN_SCORES['pong'], 14.6)

  def test_random_is_zero_and_human_is_one_for_every_game(self):
    for game in scores.GAMES:
      self.assertAlmostEqual(
          scores.human_normalized_score(game, scores.RANDOM_SCORES[game]), 0.0,
          msg=game)
      self.assertAlmostEqual(
          scores.human_normalized_score(game, scores.HUMAN_SCORES[game]), 1.0,
          msg=game)

  @parameterized.parameters(
      ('pong', 21.0, (21.0 + 20.7) / (14.6 + 20.7)),  # 1.18130...
      ('pong', -21.0, (-21.0 + 20.7) / 35.3),
      ('breakout', 30.5 + 28.8, 2.0),
      ('montezuma_revenge', 2376.65, 0.5),
      ('skiing', -17098.1 + (17098.1 - 4336.9) / 4, 0.25))
  def test_known_values(self, game, score, expected):
    self.assertAlmostEqual(scores.human_normalized_score(game, score),
                           expected, places=9)

  def test_pong_golden_number(self):
    self.assertAlmostEqual(scores.human_normalized_score('pong', 21.0),
                           1.181303116, places=8)

  @parameterized.parameters(
      ('SpaceInvaders', 'space_invaders'), ('UpNDown', 'up_n_down'),
      ("Montezuma's Revenge", 'montezuma_revenge'),
      ('ms-pacman', 'ms_pacman'), ('Pong', 'pong'))
  def test_alternative_spellings(self, game, canonical):
    self.assertEqual(scores.validate_game(game), canonical)

  def test_unknown_game(self):
    with self.assertRaisesRegex(
        ValueError, r"Unknown Atari game 'breakot'; did you mean: breakout\? "
        r'\(57 games: see envs/atari57_human_random_scores.csv\)'):
      scores.human_normalized_score('breakot', 1.0)
    with self.assertRaisesRegex(ValueError, r"'zzzz' \(57 games"):
      scores.validate_game('zzzz')
    with self.assertRaisesRegex(ValueError, 'game must be a str'):
      scores.validate_game(3)


if __name__ == '__main__':
  absltest.main()
