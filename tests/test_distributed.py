"""Data-parallel training over two logical CPU devices matches one device on the same batch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT

SCRIPT = '''
import json, pathlib, sys, tempfile
sys.path[:0] = [{root!r}, {tests!r}]
import tools
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
# Replicas draw other random numbers than one device does: take every sample at its mean, so
# that the same batch must give the same losses.
def mean_sample(self, n, seed=None):
  loc = self.loc + tf.zeros_like(self.scale)
  return tf.broadcast_to(loc, tf.concat([[n], tf.shape(loc)], 0))
tools.tfd.Normal._sample_n = mean_sample
import bird, dreamer, idm
from helpers import make_agent, random_batch, tiny_config
module = dict(dreamer=dreamer, bird=bird, idm=idm)[{agent!r}]
agent_class = dict(dreamer=dreamer.Dreamer, bird=bird.BIRD, idm=idm.IDM)[{agent!r}]
overrides = dict(batch_size=4, derive_std_deter=0.0, **{overrides!r})
overrides = {{k: v for k, v in overrides.items() if k in module.define_config()}}
logdir = pathlib.Path(tempfile.mkdtemp())
results = {{}}
if overrides.get('free_nats') == 'straddle':
  # Free nats above one half's KL but below the whole batch's: clamping per replica instead
  # of on the whole batch would change the gradients.
  probe = make_agent(tiny_config(logdir / 'probe', module, **dict(overrides, free_nats=0.0)))
  data = dreamer.preprocess(random_batch(probe._c, seed=0), probe._c)
  _, outs, _ = probe._model_loss(data)
  kl = tools.tfd.kl_divergence(
      probe._dynamics.get_dist(outs['post']), probe._dynamics.get_dist(outs['prior'])).numpy()
  halves, whole = [kl[:2].mean(), kl[2:].mean()], kl.mean()
  overrides['free_nats'] = float((min(halves) + whole) / 2)
  results['kl'] = dict(halves=[float(h) for h in halves], whole=float(whole))
# One strategy per process: another over the same devices would reuse its collective keys.
strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
for replicas, jit in ((1, False), (2, {jit!r})):
  config = tiny_config(logdir / str(replicas), module, jit=jit, **overrides)
  agent = make_agent(config, agent_class, strategy=strategy if replicas == 2 else None)
  assert agent._strategy.num_replicas_in_sync == replicas
  if replicas == 1:
    agent.save(logdir / 'start.pkl')
  else:
    agent.load(logdir / 'start.pkl')  # Both start from the same weights.
  steps = [agent.train(random_batch(config, seed=seed)) for seed in range(2)]
  results[replicas] = [{{k: float(v) for k, v in m.items()}} for m in steps]
# Batch statistics average over the replicas' shards.
values = strategy.experimental_distribute_values_from_function(
    lambda ctx: tf.constant([1.0, 2.0]) + 2 * ctx.replica_id_in_sync_group)
means = strategy.run(tf.function(tools.batch_mean), (values,))
results['batch_mean'] = [float(x) for x in strategy.experimental_local_results(means)]
print('RESULTS ' + json.dumps(results))
'''


def run(agent, jit=False, **overrides):
  script = SCRIPT.format(
      root=str(ROOT), tests=str(ROOT / 'tests'), agent=agent, jit=jit, overrides=overrides)
  process = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True, timeout=900)
  assert process.returncode == 0, process.stderr[-4000:]
  line = [l for l in process.stdout.splitlines() if l.startswith('RESULTS ')][-1]
  return json.loads(line[len('RESULTS '):])


LOSSES = ['model_loss', 'image_loss', 'reward_loss', 'div', 'actor_loss', 'value_loss',
          'model_grad_norm', 'actor_grad_norm', 'value_grad_norm']


@pytest.mark.parametrize('agent, jit, overrides, extra', [
    # The KL clamp is decided on the whole batch, between its halves' KLs.
    ('dreamer', False, dict(free_nats='straddle'), []),
    ('bird', False, dict(deter_size=8, stoch_size=4), ['weight_mean', 'weight_std']),
    ('idm', False, dict(evaluator_units=16), [
        'constraint_loss', 'evaluator_loss', 'weight_std', 'return_original']),
    # Under XLA each device computes its own batch statistics: no clamp to disagree on.
    ('dreamer', True, dict(free_nats=0.0), []),
])
def test_two_devices_match_one(agent, jit, overrides, extra):
  results = run(agent, jit, **overrides)
  np.testing.assert_allclose(results['batch_mean'], [2.5, 2.5])
  if 'kl' in results:
    kl = results['kl']
    assert min(kl['halves']) < (min(kl['halves']) + kl['whole']) / 2 < kl['whole']
    np.testing.assert_allclose(results['1'][0]['div'], kl['whole'], rtol=1e-5)
  tolerance = 2e-3 if jit else 2e-4
  for one, two in zip(results['1'], results['2']):
    for key in LOSSES + extra:
      np.testing.assert_allclose(two[key], one[key], rtol=tolerance, atol=1e-5, err_msg=key)
    assert one['skipped_updates'] == two['skipped_updates'] == 0
