"""Bad command lines of issue 11 item 8: one `error:` line, nothing written.

Real `python -m launch.train` subprocesses (started together, they share the
TF import time); each must exit non-zero with exactly one line starting with
'error:' that names what is wrong, no traceback, and must leave the logdir
as it was (not created, or unchanged).
"""

import os
import socket
import stat
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _start(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  return subprocess.Popen(
      [sys.executable, '-m', 'launch.train'] + args, cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _listing(path):
  return sorted(os.listdir(path)) if os.path.isdir(path) else None


@pytest.mark.fault
def test_bad_command_lines_get_one_error_line_and_write_nothing(tmp_path):
  a_file = tmp_path / 'a_file'
  a_file.write_text('not a directory')
  read_only = tmp_path / 'read_only'
  read_only.mkdir()
  read_only.chmod(stat.S_IRUSR | stat.S_IXUSR)
  listener = socket.socket()
  listener.bind(('', 0))
  listener.listen()
  busy_port = listener.getsockname()[1]
  smoke = '--config=configs/smoke.py'
  cases = {  # name: (args, logdir, words the error line must contain)
      'logdir_is_a_file': ([smoke], a_file, ['--logdir', 'is a file']),
      'unknown_field': ([smoke, '--config.learner.leraning_rate=1'],
                        tmp_path / 'r1', ['unknown config field',
                                          'leraning_rate', 'learning_rate']),
      'missing_config': (['--config=configs/no_such_config.py'],
                         tmp_path / 'r2', ['no_such_config.py',
                                           'does not exist']),
      # Fenced in its own network namespace a run has every port free; on
      # the host's network it must refuse a busy one.
      'port_in_use': ([smoke, f'--reverb_port={busy_port}',
                       '--network_isolation=off'], tmp_path / 'r3',
                      [f'--reverb_port={busy_port}', 'in use']),
      'bad_isolation': ([smoke, '--network_isolation=vpn'], tmp_path / 'r7',
                        ['--network_isolation=vpn', 'auto|netns|off']),
      'bad_number': ([smoke, '--config.learner.learning_rate=abc'],
                     tmp_path / 'r4', ['learning_rate', 'abc']),
      'nan': ([smoke, '--config.learner.learning_rate=nan'], tmp_path / 'r5',
              ['config.learner.learning_rate must be > 0', 'nan']),
      'inf': ([smoke, '--config.learner.max_grad_norm=inf'], tmp_path / 'r6',
              ['config.learner.max_grad_norm', 'inf']),
  }
  if os.geteuid() != 0:  # root writes through permission bits
    cases['read_only_logdir'] = ([smoke], read_only / 'run',
                                 ['not writable'])
  before = {name: _listing(logdir) for name, (_, logdir, _) in cases.items()}
  procs = {name: _start(args + [f'--logdir={logdir}'])
           for name, (args, logdir, _) in cases.items()}
  try:
    outputs = {name: proc.communicate(timeout=240)[0]
               for name, proc in procs.items()}
  finally:
    listener.close()
    read_only.chmod(stat.S_IRWXU)
  for name, (_, logdir, words) in cases.items():
    output = outputs[name]
    errors = [line for line in output.splitlines()
              if line.startswith('error:')]
    assert procs[name].returncode != 0, (name, output)
    assert len(errors) == 1, (name, output)
    assert 'Traceback' not in output, (name, output)
    for word in words:
      assert word in errors[0], (name, word, errors[0])
    assert _listing(logdir) == before[name], (name, os.listdir(logdir))
