"""Fail fast when TensorFlow and Reverb do not match.

Reverb's custom ops are compiled against one TensorFlow release; a mismatched pair
fails at import with an obscure `undefined symbol` error, or later inside a
tf.data pipeline. The launchers call `check()` before importing either, using only
package metadata.
"""

import importlib.metadata
import sys

from launch import console

# dm-reverb release -> the TensorFlow minor release its ops are built against
# (from Reverb's release notes / its `tensorflow~=X.Y.0` extra).
_REVERB_TO_TF = {
    '0.14': '2.15',
    '0.13': '2.14',
    '0.12': '2.13',
    '0.11': '2.12',
}
_SUPPORTED = {'tensorflow': '2.15.1', 'dm-reverb': '0.14.0'}


def _version(package: str):
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _minor(version: str) -> str:
  return '.'.join(version.split('.')[:2])


def mismatch_message(tf_version, reverb_version):
  """Returns an error message if the pair cannot work together, else None."""
  if tf_version is None or reverb_version is None:
    missing = [p for p, v in (('tensorflow', tf_version),
                              ('dm-reverb', reverb_version)) if v is None]
    return (f'Missing package(s): {", ".join(missing)}. Install the project with '
            "`make setup` (or `pip install -e .`), which pins tensorflow=="
            f"{_SUPPORTED['tensorflow']} and dm-reverb=={_SUPPORTED['dm-reverb']}.")
  wanted_tf = _REVERB_TO_TF.get(_minor(reverb_version))
  if wanted_tf is None or _minor(tf_version) != wanted_tf:
    return (f'TensorFlow {tf_version} does not match dm-reverb {reverb_version} '
            f'(whose ops are built against TensorFlow {wanted_tf or "unknown"}). '
            f"This project pins tensorflow=={_SUPPORTED['tensorflow']} with "
            f"dm-reverb=={_SUPPORTED['dm-reverb']}: run `make setup` or "
            '`pip install -e .` in a fresh virtualenv.')
  return None


def check() -> None:
  """Exits with a clear message if TensorFlow and Reverb do not match.

  Then imports both with `console.import_quietly` (TF_CPP_MIN_LOG_LEVEL=1
  unless set, and without their known-harmless native start-up lines).
  """
  message = mismatch_message(_version('tensorflow'), _version('dm-reverb'))
  if message:
    sys.exit(f'error: {message}')
  # The pair matches: import both now, without their known-harmless C++
  # import lines; the launchers' own imports then reuse the loaded modules.
  console.import_quietly('reverb', 'tensorflow')
