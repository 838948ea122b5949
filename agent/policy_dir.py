"""An exported policy directory that is complete at every instant.

`publish(source, target)` makes the finished SavedModel directory `source`
the one at `target` (LOGDIR/policy):

  * Linux (local filesystems: ext4, xfs, btrfs, tmpfs, overlayfs): one
    `renameat2(source, target, RENAME_EXCHANGE)` system call swaps the two
    directories atomically, then the old policy (now at `source`) is deleted.
    A reader, or a kill -9 at any moment, sees the old complete policy or the
    new complete one, never none; `target` stays a plain directory (no
    symlink), so copying or deleting a run directory needs nothing special.
  * Elsewhere on a local disk (another OS, a filesystem without
    RENAME_EXCHANGE): rename the old policy away, rename the new one in,
    delete the old one: each step atomic, with a window of two renames
    without `target`.
  * Another TensorFlow filesystem ('gs://…', 'ram://…'), where a directory
    rename is a copy or unsupported: the same three steps, each a file-by-file
    copy (`saved_model.pb` last, so a directory without it is incomplete)
    followed by a delete. The window without a complete `target` lasts one
    copy of the policy. There the partial directories are named
    `.tmp-policy-*` and `.old-policy-*`: TF 2.15's ram:// lists and deletes
    by string prefix, so a sibling named `policy.…` would appear inside
    `policy`.

`clean_leftovers` removes what a crash can leave next to `target`:
`policy.tmp-*` (a SavedModel being written, or the old policy after an
exchange) and `policy.old-*` (the fallback's old policy), or their
other-filesystem names above. If a crash left no
complete `target` but an `.old-*` copy (fallbacks only), that copy is put
back first.
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


_MARKER = 'saved_model.pb'  # a policy directory without it is incomplete


def _is_remote(path: str) -> bool:
  return '://' in path


def _prefixes(target: str):
  """(tmp, old) name prefixes of the partial directories next to `target`."""
  name = os.path.basename(target.rstrip('/'))
  if _is_remote(target):
    return f'.tmp-{name}-', f'.old-{name}-'
  return f'{name}.tmp-', f'{name}.old-'


def discard(path: str) -> None:
  """Deletes the directory `path` and everything in it.

  On other TF filesystems file by file, longest paths first: TF 2.15's
  ram:// lists 'assets' with the '.extra' of a SavedModel's sibling
  'assets.extra', and its recursive delete fails on such a name.
  """
  if not _is_remote(path):
    tf.io.gfile.rmtree(path)
    return
  directories = []
  for directory, _, names in tf.io.gfile.walk(path):
    directories.append(directory)
    for name in names:
      if tf.io.gfile.exists(os.path.join(directory, name)):
        tf.io.gfile.remove(os.path.join(directory, name))
  for directory in sorted(directories, key=len, reverse=True):
    if tf.io.gfile.exists(directory):
      tf.io.gfile.rmtree(directory)  # empty, and no longer listed as a prefix


def staging_path(target: str) -> str:
  """A new path next to `target` to write a SavedModel before `publish`."""
  parent = os.path.dirname(target.rstrip('/'))
  return os.path.join(parent, _prefixes(target)[0] + uuid.uuid4().hex[:8])


def _move(source: str, target: str) -> None:
  """Renames a directory; on other TF filesystems copies it file by file."""
  if not _is_remote(source):
    tf.io.gfile.rename(source, target)
    return
  files = []
  for directory, _, names in tf.io.gfile.walk(source):
    relative = directory[len(source):].lstrip('/')
    tf.io.gfile.makedirs(os.path.join(target, relative))
    # ram:// also lists what a sibling sharing the prefix holds (a
    # SavedModel's 'assets' lists '.extra' of 'assets.extra'); such a name
    # does not exist.
    files += [os.path.join(relative, name) for name in names
              if tf.io.gfile.exists(os.path.join(directory, name))]
  files.sort(key=lambda f: f == _MARKER)  # the marker last
  for name in files:
    tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name),
                     overwrite=True)
  discard(source)


def _complete(target: str) -> bool:
  return tf.io.gfile.exists(os.path.join(target, _MARKER))


def _exists(path: str) -> bool:
  """tf.io.gfile.exists, by listing the parent on other TF filesystems.

  ram:// (TF 2.15) reports any path that prefixes another as existing
  ('policy' while 'policy.tmp-1' exists); a listing has no such false hit.
  """
  if not _is_remote(path):
    return tf.io.gfile.exists(path)
  parent, name = os.path.split(path.rstrip('/'))
  return tf.io.gfile.isdir(parent) and name in (
      e.rstrip('/') for e in tf.io.gfile.listdir(parent))


def _replace_by_renames(source: str, target: str) -> None:
  old = None
  if _exists(target):
    old = os.path.join(os.path.dirname(target),
                       _prefixes(target)[1] + uuid.uuid4().hex[:8])
    _move(target, old)
  try:
    _move(source, target)
  except Exception:
    if old is not None:
      if _exists(target):
        discard(target)
      _move(old, target)  # Put the previous policy back.
    raise
  if old is not None:
    discard(old)


def publish(source: str, target: str) -> None:
  """Makes the complete SavedModel directory `source` the one at `target`."""
  target = target.rstrip('/')
  if _exists(target) and exchange(source, target):
    discard(source)  # the previous policy, swapped out
    return
  _replace_by_renames(source, target)


def clean_leftovers(target: str) -> None:
  """Removes a crash's partial exports next to `target` (see module doc)."""
  target = target.rstrip('/')
  gfile = tf.io.gfile
  parent = os.path.dirname(target) or '.'
  if not gfile.isdir(parent):
    return
  entries = sorted(e.rstrip('/') for e in gfile.listdir(parent))
  tmp_prefix, old_prefix = _prefixes(target)
  olds = [e for e in entries if e.startswith(old_prefix)]
  lost = (not _complete(target)) if _is_remote(target) else (
      not _exists(target))
  if olds and lost:  # the fallbacks' window
    if _exists(target):
      discard(target)  # a copy cut short (other filesystems)
    _move(os.path.join(parent, olds[-1]), target)
    logging.warning('Restored %s from %s, left by an interrupted export.',
                    target, olds[-1])
  for entry in entries:
    path = os.path.join(parent, entry)
    if entry.startswith((tmp_prefix, old_prefix)) and _exists(path):
      logging.info('Removing %s, left by an interrupted export.', path)
      discard(path) if gfile.isdir(path) else gfile.remove(path)
