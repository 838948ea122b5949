"""An exported policy directory that is complete at every instant.

Layout on a local filesystem (TF Serving's versioned layout plus a pointer):

    LOGDIR/policy            -> policy_versions/7   (a relative symlink)
    LOGDIR/policy_versions/6/  saved_model.pb, variables/, assets.extra/
    LOGDIR/policy_versions/7/

`publish` renames a finished SavedModel directory to the next version number,
then points `policy` at it by renaming a new symlink over the old one, which
POSIX makes atomic: a reader (or a kill -9 at any moment) sees the old
complete policy or the new complete policy, never none. The newest
`KEEP_VERSIONS` versions are kept. A `policy` that is a plain directory
(written before this layout) is moved into the versions once.

Remote paths ('gs://…', no symlinks) fall back to rename-away, rename-in,
delete-old: atomic per rename, with a short window without `policy`.

`clean_leftovers` removes what a crash can leave: `policy.tmp-*` (a SavedModel
being written), `policy.old-*`, `policy.link-*` and unreferenced versions.
"""

import os
import uuid

import tensorflow as tf

KEEP_VERSIONS = 2
_VERSIONS_SUFFIX = '_versions'


def versions_dir(target: str) -> str:
  """LOGDIR/policy -> LOGDIR/policy_versions."""
  return target.rstrip('/') + _VERSIONS_SUFFIX


def _versions(directory: str):
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _replace_remote(source: str, target: str) -> None:
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


def publish(source: str, target: str) -> str:
  """Makes the complete SavedModel directory `source` the one at `target`.

  Returns the directory now holding it (the version directory locally).
  """
  target = target.rstrip('/')
  if '://' in target:
    _replace_remote(source, target)
    return target
  versions = versions_dir(target)
  os.makedirs(versions, exist_ok=True)
  if os.path.isdir(target) and not os.path.islink(target):
    # A pre-versions export: becomes version N, then `policy` a link to it.
    legacy = os.path.join(versions, str(max(_versions(versions), default=0) + 1))
    os.rename(target, legacy)
    os.symlink(os.path.relpath(legacy, os.path.dirname(target) or '.'), target)
  version = max(_versions(versions), default=0) + 1
  final = os.path.join(versions, str(version))
  os.rename(source, final)
  link = f'{target}.link-{uuid.uuid4().hex[:8]}'
  os.symlink(os.path.relpath(final, os.path.dirname(target) or '.'), link)
  os.replace(link, target)  # atomic: old complete policy -> new one
  for old in _versions(versions)[:-KEEP_VERSIONS]:
    tf.io.gfile.rmtree(os.path.join(versions, str(old)))
  return final


def clean_leftovers(target: str) -> None:
  """Removes a crash's partial exports and stale links next to `target`."""
  target = target.rstrip('/')
  if '://' in target:
    return
  parent, name = os.path.split(target)
  parent = parent or '.'
  if not os.path.isdir(parent):
    return
  for entry in os.listdir(parent):
    path = os.path.join(parent, entry)
    if entry.startswith((f'{name}.tmp-', f'{name}.old-')):
      tf.io.gfile.rmtree(path) if os.path.isdir(path) else os.remove(path)
    elif entry.startswith(f'{name}.link-'):
      os.remove(path)
  versions = versions_dir(target)
  current = (os.path.realpath(target) if os.path.islink(target) else None)
  for number in _versions(versions)[:-KEEP_VERSIONS]:
    path = os.path.join(versions, str(number))
    if os.path.realpath(path) != current:
      tf.io.gfile.rmtree(path)
