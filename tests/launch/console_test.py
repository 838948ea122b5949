"""launch/console.py: known-harmless native lines dropped, all else kept.

fd 2 is process-wide (and pytest captures it), so each case runs in a real
Python subprocess and compares its whole stderr.
"""

import os
import subprocess
import sys
import textwrap

from launch import console

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Lines as TensorFlow 2.15.1 and Reverb 0.14.0 print them (timestamps vary).
HARMLESS = [
    '2026-12-03 14:51:21.502110: E external/local_xla/xla/stream_executor/cuda/'
    'cuda_dnn.cc:9261] Unable to register cuDNN factory: Attempting to '
    'register factory for plugin cuDNN when one has already been registered',
    '2026-12-03 14:51:21.503046: E external/local_xla/xla/stream_executor/cuda/'
    'cuda_blas.cc:1515] Unable to register cuBLAS factory: Attempting to '
    'register factory for plugin cuBLAS when one has already been registered',
    '2026-12-03 14:51:22.174108: W tensorflow/compiler/tf2tensorrt/utils/'
    'py_utils.cc:38] TF-TRT Warning: Could not find TensorRT',
    '[reverb/cc/platform/tfrecord_checkpointer.cc:162]  Initializing '
    'TFRecordCheckpointer in /tmp/tmp5ac2o6lv.',
    '[reverb/cc/platform/tfrecord_checkpointer.cc:565] Loading latest '
    'checkpoint from /tmp/tmp5ac2o6lv',
    '[reverb/cc/platform/default/server.cc:71] Started replay server on port '
    '34023',
    '[reverb/cc/platform/default/server.cc:84] Shutting down replay server',
    '[reverb/cc/client.cc:165] Sampler and server are owned by the same '
    'process (2992) so Table episodes is accessed directly without gRPC.',
]
# Real problems from the same sources: they must reach the console.
REAL = [
    '2026-12-03 14:51:34.264704: E tensorflow/core/grappler/optimizers/'
    'meta_optimizer.cc:961] remapper failed: INVALID_ARGUMENT: …',
    '2026-12-03 14:51:21.502110: E external/local_xla/xla/stream_executor/cuda/'
    'cuda_dnn.cc:9261] Unable to register cuDNN factory: out of memory',
    '[reverb/cc/platform/default/server.cc:90] Started replay server on port '
    '34023 FAILED',
    '[reverb/cc/client.cc:301] Connection to localhost:34023 lost',
    '[reverb/cc/platform/tfrecord_checkpointer.cc:300] Loading latest '
    'checkpoint failed: DATA_LOSS',
]


def run_python(code: str, **env) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT,
      capture_output=True, text=True, timeout=180,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='1', CUDA_VISIBLE_DEVICES='',
               **env))


def test_patterns_match_exactly_the_known_lines():
  assert [console.is_known_harmless(line) for line in HARMLESS] == [True] * 8
  assert [console.is_known_harmless(line) for line in REAL] == [False] * 5


def test_other_lines_are_kept_in_order_also_when_the_block_raises():
  proc = run_python(f"""
      import os, sys
      from launch import console
      os.write(2, b'before\\n')
      with console.native_lines_filtered():
        os.write(2, b'native problem\\n')
        os.write(2, {HARMLESS[6]!r}.encode() + b'\\n')
        print('python line', file=sys.stderr)
        try:
          with console.native_lines_filtered():  # nests
            os.write(2, {HARMLESS[7]!r}.encode() + b'\\nnested\\n')
            raise ValueError('boom')
        except ValueError:
          pass
      os.write(2, b'after\\n')
      with console.native_lines_filtered():
        os.write(2, b'last words\\n')
        raise SystemExit('error: raised inside')
      """)
  assert proc.stderr == ('before\nnative problem\npython line\nnested\nafter\n'
                         'last words\nerror: raised inside\n'), proc.stderr
  assert proc.returncode == 1


def test_release_writes_the_window_out_before_an_exit():
  proc = run_python(f"""
      import os
      from launch import console
      with console.native_lines_filtered():
        os.write(2, {HARMLESS[6]!r}.encode() + b'\\nbefore the exit\\n')
        console.release()
        os.write(2, b'exiting now\\n')
        os._exit(3)
      """)
  assert proc.stderr == 'before the exit\nexiting now\n', proc.stderr
  assert proc.returncode == 3


def test_raw_logs_on_request():
  code = f"""
      import os
      from launch import console
      with console.native_lines_filtered():
        os.write(2, {HARMLESS[6]!r}.encode() + b'\\n')
      """
  assert run_python(code).stderr == ''
  assert (run_python(code, **{console.RAW_ENV: '1'}).stderr
          == HARMLESS[6] + '\n')


def test_tensorflow_and_reverb_start_and_sample_without_native_noise():
  body = """
      import numpy as np
      import reverb
      server = reverb.Server([reverb.Table.queue('q', 10)])
      client = reverb.Client(f'localhost:{server.port}')
      client.insert([np.zeros(1, np.float32)], {'q': 1.0})
      assert len(list(client.sample('q', num_samples=1))) == 1
      server.stop()
      """
  raw = run_python('import tensorflow\n' + textwrap.dedent(body))
  assert raw.returncode == 0, raw.stderr
  raw_lines = raw.stderr.splitlines()
  # The real libraries print these lines (so this test can fail) ...
  for marker in ('Unable to register cuDNN factory', 'Started replay server',
                 'Sampler and server are owned', 'Shutting down replay'):
    assert any(marker in line for line in raw_lines), (marker, raw.stderr)
  # ... and the filter drops them, as the launchers use it.
  quiet = run_python("""
      from launch import version_check
      version_check.check()
      from launch import console
      import numpy as np
      import reverb
      with console.native_lines_filtered():
        server = reverb.Server([reverb.Table.queue('q', 10)])
      client = reverb.Client(f'localhost:{server.port}')
      client.insert([np.zeros(1, np.float32)], {'q': 1.0})
      with console.native_lines_filtered():
        assert len(list(client.sample('q', num_samples=1))) == 1
        server.stop()
      print('done')
      """)
  assert quiet.returncode == 0, quiet.stderr
  assert quiet.stdout == 'done\n'
  noise = [line for line in quiet.stderr.splitlines()
           if console.is_known_harmless(line) or line.startswith('[reverb/cc')]
  assert not noise, quiet.stderr
