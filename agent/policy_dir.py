"""An exported policy directory that is complete at every instant.

`publish(source, target)` makes the finished SavedModel directory `source`
the one at `target` (LOGDIR/policy):

  * Linux (local filesystems: ext4, xfs, btrfs, tmpfs, overlayfs): one
    `renameat2(source, target, RENAME_EXCHANGE)` system call swaps the two
    directories atomically, then the old policy (now at `source`) is deleted.
    A reader, or a kill -9 at any moment, sees the old complete policy or the
    new complete one, never none; `target` stays a plain directory (no
    symlink), so copying or deleting a run directory needs nothing special.
  * Elsewhere (another OS, a filesystem without RENAME_EXCHANGE, 'gs://…'):
    rename the old policy away, rename the new one in, delete the old one:
    each step atomic, with a window of two renames without `target`.

`clean_leftovers` removes what a crash can leave next to `target`:
`policy.tmp-*` (a SavedModel being written, or the old policy after an
exchange) and `policy.old-*` (the fallback's old policy). If a crash left no
`target` but an `.old-*` copy (fallback only), that copy is put back first.
"""

import ctypes
import errno
import os
import uuid

from absl import logging
import tensorflow as tf

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2():
  try:
    function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
  except (OSError, AttributeError):
    return None
  function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                       ctypes.c_char_p, ctypes.c_uint]
  function.restype = ctypes.c_int
  return function


_RENAMEAT2 = _renameat2()


def exchange(a: str, b: str) -> bool:
  """Atomically swaps the existing paths `a` and `b`; False if unsupported.

  Raises:
    OSError: for a failure other than "not supported here".
  """
  if _RENAMEAT2 is None or '://' in a or '://' in b:
    return False
  if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                _RENAME_EXCHANGE) == 0:
    return True
  code = ctypes.get_errno()
  if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
    return False  # this kernel or filesystem cannot exchange
  raise OSError(code, f'renameat2({a!r}, {b!r}, RENAME_EXCHANGE): '
                f'{os.strerror(code)}')


def _replace_by_renames(source: str, target: str) -> None:
  old = None
  if tf.io.gfile.exists(target):
    old = f'{target}.old-{uuid.uuid4().hex[:8]}'
    tf.io.gfile.rename(target, old)
  try:
    tf.io.gfile.rename(source, target)
  except Exception:
    if old is not None:
      tf.io.gfile.rename(old, target)  # Put the previous policy back.
    raise
  if old is not None:
    tf.io.gfile.rmtree(old)


def publish(source: str, target: str) -> None:
  """Makes the complete SavedModel directory `source` the one at `target`."""
  target = target.rstrip('/')
  if tf.io.gfile.exists(target) and exchange(source, target):
    tf.io.gfile.rmtree(source)  # the previous policy, swapped out
    return
  _replace_by_renames(source, target)


def clean_leftovers(target: str) -> None:
  """Removes a crash's partial exports next to `target` (see module doc)."""
  target = target.rstrip('/')
  if '://' in target:
    return
  parent, name = os.path.split(target)
  parent = parent or '.'
  if not os.path.isdir(parent):
    return
  entries = sorted(os.listdir(parent))
  olds = [e for e in entries if e.startswith(f'{name}.old-')]
  if not os.path.exists(target) and olds:
    os.rename(os.path.join(parent, olds[-1]), target)  # the fallback's window
    logging.warning('Restored %s from %s, left by an interrupted export.',
                    target, olds[-1])
  for entry in entries:
    path = os.path.join(parent, entry)
    if entry.startswith((f'{name}.tmp-', f'{name}.old-')) and os.path.exists(
        path):
      logging.info('Removing %s, left by an interrupted export.', path)
      tf.io.gfile.rmtree(path) if os.path.isdir(path) else os.remove(path)
