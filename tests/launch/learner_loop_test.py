"""The learner process's export: the SavedModel matches the learner's network."""

import json
import tempfile

import numpy as np
import tensorflow as tf

from configs import smoke
from launch import builder
from launch import learner_loop
from tests import strategies


class ExportFromLearnerTest(tf.test.TestCase):

  def test_exported_policy_matches_mirrored_learner_network(self):
    # float32: exact to 1e-5. bfloat16: the exported graph and the eager
    # network round bfloat16 intermediates differently (oneDNN picks other
    # kernels), within the bound of precision_test.
    for compute_dtype, atol in (('float32', 1e-5), ('bfloat16', 1e-2)):
      with self.subTest(compute_dtype):
        self._check_export(compute_dtype, atol)

  def _check_export(self, compute_dtype, atol):
    devices = tf.config.list_logical_devices('CPU')
    self.assertGreaterEqual(len(devices), 2, 'conftest.py sets 2 logical CPUs')
    strategy = strategies.two_replica_strategy()
    config = smoke.get_config()
    with config.unlocked():
      config.network.compute_dtype = compute_dtype
    facts = builder.environment_facts(config)
    learner = builder.make_learner(config, facts, strategy, None, None)
    # Move the weights away from their initial values so a copy by the wrong
    # order or from a fresh network would show.
    rng = np.random.RandomState(0)
    for v in learner.network.trainable_variables:
      v.assign(v + 0.05 * rng.randn(*v.shape).astype(np.float32))
    path = learner_loop.export_policy(config, facts, learner,
                                      tempfile.mkdtemp(dir=self.get_temp_dir()))
    policy = tf.saved_model.load(path)
    self.assertEqual(json.loads(policy.metadata_json.numpy())['compute_dtype'],
                     compute_dtype)
    self.assertEqual([g.decode() for g in policy.games.numpy()], ['catch'])
    self.assertEqual(int(policy.num_actions.numpy()), 3)

    batch = 4
    shape = (batch,) + tuple(facts['observation_spec'].shape)
    state = policy.initial_state(batch)
    live_state = learner.network.initial_state(batch)
    for step in range(3):
      observation = rng.randint(0, 2, shape).astype(np.uint8) * 255
      inputs = dict(prev_action=rng.randint(0, 3, batch).astype(np.int32),
                    prev_reward=rng.randn(batch).astype(np.float32),
                    first=np.array([step == 0, False, step == 2, False]),
                    task_id=np.zeros(batch, np.int32))
      out = policy.step(observation=observation, state=state, **inputs)
      live, live_state = learner.network.step(
          observation, inputs['prev_action'], inputs['prev_reward'],
          inputs['first'], inputs['task_id'], live_state)
      self.assertAllClose(out['logits'], live.policy_logits, atol=atol)
      self.assertAllClose(out['value'], live.values[:, 0], atol=atol)
      state = out['state']


if __name__ == '__main__':
  tf.test.main()
