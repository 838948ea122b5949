"""Keeps known-harmless native log lines off the console.

TensorFlow's and Reverb's C++ code writes to file descriptor 2 directly,
past Python's `logging` (and so past absl's verbosity and our filters):

- importing TensorFlow 2.15's CUDA-enabled wheel on any machine prints three
  "Unable to register cuDNN/cuFFT/cuBLAS factory" errors (the plugins are
  registered twice; tensorflow/tensorflow#62075) and a "TF-TRT Warning:
  Could not find TensorRT" line;
- Reverb logs every severity to std::clog unconditionally, with no level to
  turn down (reverb/cc/platform/default/logging.h): three lines when a
  server starts, one when it stops, and one "Sampler and server are owned
  by the same process" line when an in-process client starts sampling (the
  learner's dataset; now and then an episode drain: 10 times in an hour of
  Pong).

`native_lines_filtered()` redirects fd 2 to a temporary file around such a
call and then writes back, in order, every line that is not one of those
exact messages: any other line (a real warning or error, Python's own
output, other threads' log lines) still reaches the console, only a few
milliseconds late. The redirection is process-wide, so windows are
serialised by a lock and nest within a thread. A crash that kills the
process inside a window (a segfault, a C++ abort) loses what the window
captured, so windows are kept to short, synchronous calls.

TF_CPP_MIN_LOG_LEVEL is deliberately not raised above 1
(launch/version_check.py): that would also hide TensorFlow's real warnings
and errors.
"""

import contextlib
import importlib
import os
import re
import sys
import tempfile
import threading

# Exact messages known to be harmless on every machine (module docstring).
KNOWN_HARMLESS = tuple(re.compile(p) for p in (
    r'Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register '
    r'factory for plugin cu(DNN|FFT|BLAS) when one has already been '
    r'registered',
    r'TF-TRT Warning: Could not find TensorRT',
    r'^\[reverb/cc/platform/tfrecord_checkpointer\.cc:\d+\]\s+'
    r'(Initializing TFRecordCheckpointer in|Loading latest checkpoint from) ',
    r'^\[reverb/cc/platform/default/server\.cc:\d+\] (Started replay server '
    r'on port \d+|Shutting down replay server)$',
    r'^\[reverb/cc/client\.cc:\d+\] Sampler and server are owned by the same '
    r'process \(\d+\) so Table \S+ is accessed directly without gRPC\.$',
))

RAW_ENV = 'TF_IMPALA_NATIVE_LOGS'  # '1': no filtering
_LOCK = threading.RLock()
_depth = threading.local()
_active = []  # [(saved fd 2, capture file)] while a window is open


def import_quietly(*modules: str) -> None:
  """Imports `modules` (e.g. 'tensorflow') without their known-harmless lines.

  Unless the user set it, first sets TF_CPP_MIN_LOG_LEVEL=1: TensorFlow's C++
  INFO lines at start-up (oneDNN, "Could not find cuda drivers", CPU feature
  guard) are not ours; its warnings and errors stay. For the top of a
  launcher, before anything else imports TensorFlow.
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  with native_lines_filtered():
    for module in modules:
      importlib.import_module(module)


def is_known_harmless(line: str) -> bool:
  """True when `line` (without its newline) is one of `KNOWN_HARMLESS`."""
  return any(p.search(line) for p in KNOWN_HARMLESS)


def release() -> None:
  """Ends an open window now: restores fd 2 and writes out what it captured.

  For code about to leave the process without unwinding (`os._exit` in a
  signal handler), so that nothing captured is lost. A no-op outside a
  window; the window's own exit then finds nothing to do.
  """
  if not _active:
    return
  saved, capture = _active.pop()
  try:
    os.dup2(saved, 2)
  finally:
    os.close(saved)
  try:
    capture.seek(0)
    data = capture.read()
    capture.close()
    kept = b''.join(
        line for line in data.splitlines(keepends=True)
        if not is_known_harmless(
            line.rstrip(b'\n').decode('utf-8', errors='replace')))
    while kept:
      kept = kept[os.write(2, kept):]
  except OSError:
    pass  # stderr closed or a broken pipe: nothing more can be shown


@contextlib.contextmanager
def native_lines_filtered():
  """Within the block, fd 2 lines that are `KNOWN_HARMLESS` are dropped.

  Everything else written to fd 2 inside the block (by C++, Python or other
  threads) is written to the real fd 2 when the block ends, byte for byte
  and in order, also when the block raises. Where fd 2 cannot be redirected
  (no fd 2, no writable temporary directory), or with the environment
  variable TF_IMPALA_NATIVE_LOGS=1 (to see every line), the block runs
  unfiltered.
  """
  if os.environ.get(RAW_ENV) == '1':
    yield
    return
  with _LOCK:
    nested = getattr(_depth, 'value', 0)
    if nested:
      _depth.value = nested + 1
      try:
        yield
      finally:
        _depth.value = nested
      return
    capture = saved = None
    try:
      sys.stderr.flush()
      saved = os.dup(2)
      capture = tempfile.TemporaryFile()  # in TMPDIR: e.g. full, read-only
    except (OSError, ValueError, AttributeError):
      if saved is not None:
        os.close(saved)
      saved = None
    if saved is None:  # unfiltered (outside the except: no chained errors)
      yield
      return
    _depth.value = 1
    try:
      _active.append((saved, capture))
      os.dup2(capture.fileno(), 2)
      yield
    finally:
      _depth.value = 0
      try:
        sys.stderr.flush()  # Python's buffered lines of the window, first
      except (OSError, ValueError):
        pass
      finally:
        release()
