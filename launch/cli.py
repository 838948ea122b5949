"""Command-line errors as one `error: …` line, before any work starts.

absl reports a malformed flag value itself ("FATAL Flags parsing error"),
but `ml_collections.config_flags` raises plain Python exceptions for a
missing config file or an override of a field the config does not have, and
absl lets those through as tracebacks. Every launcher therefore runs

    app.run(main, flags_parser=cli.parse_flags)

Binding checks that need the OS (a port in use) are here too, so that they
run before anything is written, and the filter that keeps TensorFlow's
routine INFO lines of every SavedModel export off the console.
"""

import logging as pylogging
import os
import re
import socket
import sys
from typing import List, Sequence

from absl import flags
from absl import logging

# INFO lines TensorFlow logs on every tf.saved_model.save, by source file.
# "Function `serve` contains input name(s) resource with unsupported
# characters which will be renamed" concerns the captured variables'
# placeholder names, which no signature exposes.
_QUIET_INFO_SOURCES = ('signature_serialization.py', 'fingerprinting_utils.py',
                       'builder_impl.py')


class _QuietTensorFlowInfo(pylogging.Filter):

  def filter(self, record):
    return not (record.levelno <= pylogging.INFO and
                record.pathname.endswith(_QUIET_INFO_SOURCES))


def install_log_filters() -> None:
  """Drops TF's routine SavedModel INFO lines (absl and 'tensorflow')."""
  quiet = _QuietTensorFlowInfo()
  for logger in (logging.get_absl_logger(), pylogging.getLogger('tensorflow')):
    if not any(isinstance(f, _QuietTensorFlowInfo) for f in logger.filters):
      logger.addFilter(quiet)


def _config_file_arguments(argv: Sequence[str]) -> List[str]:
  """Paths given to --config / --config=... (without a ':arg' suffix)."""
  paths = []
  for i, arg in enumerate(argv):
    value = None
    if arg.startswith('--config='):
      value = arg[len('--config='):]
    elif arg == '--config' and i + 1 < len(argv):
      value = argv[i + 1]
    if value:
      paths.append(value.split(':', 1)[0])
  return paths


def parse_flags(argv: Sequence[str]) -> List[str]:
  """absl's flag parsing with config errors turned into `error:` exits.

  Returns the remaining arguments (as absl's parser). Exits with status 2
  and one line on stderr for: a --config file that does not exist, an
  override of a config field that does not exist (with ml_collections'
  "did you mean"), a config file that fails to load, and any absl flag error.
  """
  install_log_filters()
  for path in _config_file_arguments(argv):
    if not os.path.isfile(path):
      sys.stderr.write(f'error: --config file {path!r} does not exist '
                       '(a path to a configs/*.py file, optionally '
                       'followed by :arg).\n')
      sys.exit(2)
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    sys.stderr.write(f'error: {e}\nPass --helpfull to see the flags.\n')
  except (AttributeError, KeyError) as e:
    # config_flags: `--config.a.b=v` for a field `a.b` the config lacks.
    detail = e
    while isinstance(detail, (AttributeError, KeyError)) and detail.args:
      detail = detail.args[0]  # AttributeError(KeyError('…')) → '…'
    detail = ' '.join(str(detail).split())
    detail = re.sub(r"^'([^']*)'", r'\1', detail.strip('"'))  # 'f' → f
    sys.stderr.write(f'error: unknown config field in a --config.* override: '
                     f'{detail} (the fields are those of the --config file; a '
                     "run's config.json lists them).\n")
  except OSError as e:
    cause = e.__cause__ or e.__context__ or e
    sys.stderr.write(f'error: --config file failed to load: {cause}\n')
  sys.exit(2)


def check_port_free(port: int, flag: str) -> None:
  """Raises ValueError naming `flag` if TCP `port` cannot be bound here.

  Reverb binds the wildcard address, so the check binds it too (IPv4; the
  port is released at once). Port 0 (pick a free one) always passes.
  """
  if not port:
    return
  if not 0 < port < 65536:
    raise ValueError(f'{flag} must be 0 (a free port) or in [1, 65535]; '
                     f'got {port}')
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
    # As gRPC: a port in TIME_WAIT is free; one with a listener is not.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      probe.bind(('', port))
    except OSError as e:
      raise ValueError(f'{flag}={port} cannot be used: {e.strerror} (another '
                       'process listens there?); choose another port, or 0 '
                       'for a free one') from None
