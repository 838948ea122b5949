"""Test setup: two logical CPU devices (before TF initialises) and markers.

Markers (see pytest.ini): `slow` for unit tests taking seconds to a minute,
`e2e` for end-to-end runs with real subprocesses, Reverb and environments.

Under pytest-xdist (`make test`: `-n 2 --dist loadgroup`) every e2e test is
in one xdist group, so they run one after another on one worker (each
already runs a server, actors and a learner on the machine's cores) while
the other worker takes the unit tests, which mostly trace TF graphs on one
core. E2e tests also marked `light` (processes that mostly wait or fail fast,
no learning threshold) stay out of that group, so the unit tests' worker
takes them too.
"""

import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top

NUM_LOGICAL_CPUS = 2


def _configure_logical_cpus():
  cpus = tf.config.list_physical_devices('CPU')
  try:
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS)
  except RuntimeError:
    # TF already initialised (e.g. a test imported it with devices in use);
    # tests needing two devices check tf.config.list_logical_devices.
    pass


_configure_logical_cpus()


def pytest_itemcollected(item):
  # At collection, before xdist's pytest_collection_modifyitems reads the
  # xdist_group marks.
  if (item.get_closest_marker('e2e') is not None
      and item.get_closest_marker('light') is None):
    item.add_marker(pytest.mark.xdist_group('e2e'))
