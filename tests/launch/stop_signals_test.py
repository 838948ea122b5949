"""Stop signals: two sent at once are one request; a later one exits at once.

Real signals to a real subprocess that installs launch.run_setup's handlers.
"""

import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = textwrap.dedent('''
    import os, signal, sys, threading, time
    from absl import logging
    from launch import run_setup
    logging.set_verbosity(logging.INFO)
    stop = threading.Event()
    run_setup.install_stop_handlers(stop)
    gap = float(sys.argv[1])
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(gap)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    print('survived', stop.is_set(), flush=True)  # the clean shutdown path
''')


def _run(gap_secs):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-c', SCRIPT, str(gap_secs)],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=120, check=False)


class StopSignalsTest(absltest.TestCase):

  @pytest.mark.fault
  def test_two_signals_1ms_apart_are_one_stop_request(self):
    result = _run(0.001)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn('survived True', result.stdout)
    self.assertIn('the same stop request', result.stderr)

  def test_a_deliberate_second_signal_exits_at_once(self):
    result = _run(1.5)
    self.assertEqual(result.returncode, 130, result.stderr[-2000:])
    self.assertNotIn('survived', result.stdout)
    self.assertIn('Second SIGTERM: exiting now', result.stderr)


if __name__ == '__main__':
  absltest.main()
