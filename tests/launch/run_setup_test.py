"""Run-directory checks and the resolved-config hand-off to actors."""

import json
import os
import tempfile

from absl.testing import absltest
import tensorflow as tf

from configs import atari
from configs import her_bitflip
from configs import from_json
from launch import run_setup


def _with(config, **fields):
  config = config.copy_and_resolve_references()
  with config.unlocked():
    for dotted, value in fields.items():
      target = config
      *path, last = dotted.split('__')
      for part in path:
        target = target[part]
      target[last] = value
  return config


class RunSetupTest(absltest.TestCase):

  def _tempdir(self):
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    return tmp.name

  def _fake_checkpoint(self, logdir):
    """A real, readable (tiny) checkpoint: check_logdir reads its tensors."""
    tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)),
                               os.path.join(logdir, 'checkpoints'), 1).save()

  def test_unknown_filesystem_is_rejected(self):
    with self.assertRaisesRegex(ValueError,
                                "--logdir 'nofs://bucket/run' is not usable: "
                                "File system scheme 'nofs' not implemented"):
      run_setup.check_logdir('nofs://bucket/run', atari.get_config())

  def test_logdir_on_another_tf_filesystem(self):
    """ram:// (TF's in-process filesystem): config.json is recorded there, and
    actors get a local copy; a resume with another game is still refused."""
    logdir = 'ram://run_setup_test/run'
    config = atari.get_config()
    local = run_setup.prepare_logdir(logdir, config)
    self.assertEqual(local, os.path.join(run_setup.local_dir(logdir),
                                         'config.json'))
    self.assertTrue(local.startswith(tempfile.gettempdir()))
    with tf.io.gfile.GFile(os.path.join(logdir, 'config.json')) as f:
      recorded = json.load(f)
    with open(local) as f:
      self.assertEqual(json.load(f), recorded)
    self.assertEqual(recorded['env']['game'], config.env.game)
    self.assertEqual(run_setup.local_dir('/tmp/x'), '/tmp/x')
    tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)),
                               os.path.join(logdir, 'checkpoints'), 1).save()
    with self.assertRaisesRegex(ValueError, 'config.env.game'):
      run_setup.check_logdir(logdir, atari.get_config('breakout'))

  def test_resume_with_another_game_is_rejected_before_writing(self):
    logdir = self._tempdir()
    self.assertEqual(run_setup.prepare_logdir(logdir, atari.get_config()),
                     os.path.join(logdir, 'config.json'))
    self._fake_checkpoint(logdir)
    before = sorted(os.listdir(logdir))
    with self.assertRaisesRegex(
        ValueError, r"holds a run with config.env.game='pong', but this config "
        r"has 'breakout'"):
      run_setup.prepare_logdir(logdir, atari.get_config('breakout'))
    with self.assertRaisesRegex(ValueError, 'config.network.torso'):
      run_setup.check_logdir(logdir, _with(atari.get_config(),
                                           network__torso='shallow'))
    # PopArt statistics are part of the checkpoint: on/off cannot change.
    with self.assertRaisesRegex(ValueError, 'config.learner.popart=False'):
      run_setup.check_logdir(logdir, _with(atari.get_config(),
                                           learner__popart=True))
    self.assertEqual(sorted(os.listdir(logdir)), before)

  def test_her_run_also_fixes_its_reverb_table_fields(self):
    # Reverb restores a HER run's tables (signature, sizes) from its own
    # checkpoint: changing what shapes them must fail up front.
    logdir = self._tempdir()
    run_setup.prepare_logdir(logdir, her_bitflip.get_config('8'))
    self._fake_checkpoint(logdir)
    run_setup.check_logdir(logdir, _with(her_bitflip.get_config('8'),
                                         learner__learning_rate=1e-4))
    for field, value in (('unroll_length', 9), ('replay__replay_size', 10),
                         ('env__max_steps', 9)):
      with self.assertRaisesRegex(ValueError,
                                  'config.' + field.replace('__', '.')):
        run_setup.check_logdir(logdir, _with(her_bitflip.get_config('8'),
                                             **{field: value}))
    # An Atari run (no Reverb checkpoint) may change its unroll length.
    logdir = self._tempdir()
    run_setup.prepare_logdir(logdir, atari.get_config())
    self._fake_checkpoint(logdir)
    run_setup.check_logdir(logdir, _with(atari.get_config(), unroll_length=10))

  def test_resume_with_allowed_change_records_it_separately(self):
    logdir = self._tempdir()
    run_setup.prepare_logdir(logdir, atari.get_config())
    self._fake_checkpoint(logdir)
    same = run_setup.prepare_logdir(logdir, atari.get_config())
    self.assertEqual(same, os.path.join(logdir, 'config.json'))
    changed = _with(atari.get_config(), num_actors=4, total_frames=10**9)
    path = run_setup.prepare_logdir(logdir, changed)
    self.assertEqual(path, os.path.join(logdir, 'config.resumed.json'))
    self.assertEqual(from_json.get_config(path).to_dict(), changed.to_dict())
    # The first run's record is kept.
    self.assertEqual(from_json.get_config(os.path.join(logdir, 'config.json')
                                          ).num_actors, 2)

  def test_json_round_trip_keeps_types_and_locks(self):
    logdir = self._tempdir()
    config = _with(atari.get_config('breakout'), learner__reward_clip=0.0)
    loaded = from_json.get_config(run_setup.prepare_logdir(logdir, config))
    self.assertEqual(loaded.to_dict(), config.to_dict())
    self.assertIsInstance(loaded.learner.reward_clip, float)
    self.assertIsInstance(loaded.total_frames, int)
    with self.assertRaises(AttributeError):
      loaded.new_field = 1  # locked, as config_flags' lock_config=True

  def test_json_of_an_older_run_gets_the_new_fields_defaults(self):
    path = os.path.join(self._tempdir(), 'config.json')
    values = _with(atari.get_config(), num_actors=3).to_dict()
    del values['network']['compute_dtype']  # written before the field existed
    del values['learner']['jit_compile']
    with open(path, 'w') as f:
      json.dump(values, f)
    loaded = from_json.get_config(path)
    self.assertEqual(loaded.network.compute_dtype,
                     atari.get_config().network.compute_dtype)
    self.assertFalse(loaded.learner.jit_compile)
    self.assertEqual(loaded.num_actors, 3)  # recorded values win


if __name__ == '__main__':
  absltest.main()
