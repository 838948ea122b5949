"""The TensorFlow/Reverb pairing check of the launchers."""

from absl.testing import absltest

from launch import version_check


class VersionCheckTest(absltest.TestCase):

  def test_pinned_pair_passes(self):
    self.assertIsNone(version_check.mismatch_message('2.15.1', '0.14.0'))
    self.assertIsNone(version_check.mismatch_message('2.15.0', '0.14.0'))

  def test_mismatched_pair_names_both_versions_and_the_fix(self):
    message = version_check.mismatch_message('2.16.1', '0.14.0')
    self.assertIn('TensorFlow 2.16.1 does not match dm-reverb 0.14.0', message)
    self.assertIn('TensorFlow 2.15', message)
    self.assertIn('make setup', message)
    self.assertIsNotNone(version_check.mismatch_message('2.15.1', '0.13.0'))
    self.assertIn('unknown', version_check.mismatch_message('2.15.1', '0.99.0'))

  def test_missing_package(self):
    message = version_check.mismatch_message('2.15.1', None)
    self.assertIn('Missing package(s): dm-reverb', message)

  def test_installed_environment_matches(self):
    version_check.check()  # must not exit in the project's own venv


if __name__ == '__main__':
  absltest.main()
