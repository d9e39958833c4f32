"""One agent on two logical CPU devices and on one; for test_distributed.py.

  python tests/child_distributed.py AGENT JIT OVERRIDES_JSON

Prints `RESULTS <json>`: the metrics of two train steps on the same batches
with one and with two replicas, from the same weights.
"""

import json
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import tools  # noqa: E402  (TensorFlow's import flags first)

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def mean_sample(self, n, seed=None):
  # Replicas draw other random numbers than one device does: every sample at
  # its mean, so that the same batch must give the same losses.
  loc = self.loc + tf.zeros_like(self.scale)
  return tf.broadcast_to(loc, tf.concat([[n], tf.shape(loc)], 0))


tools.tfd.Normal._sample_n = mean_sample

import bird  # noqa: E402
import dreamer  # noqa: E402
import idm  # noqa: E402
from helpers import make_agent, random_batch, tiny_config  # noqa: E402

AGENTS = dict(
    dreamer=(dreamer, dreamer.Dreamer), bird=(bird, bird.BIRD),
    idm=(idm, idm.IDM))


def straddle(logdir, module, overrides):
  """Free nats above one half's KL but below the whole batch's: clamping per
  replica instead of on the whole batch would change the gradients."""
  probe = make_agent(tiny_config(
      logdir / 'probe', module, **dict(overrides, free_nats=0.0)))
  data = dreamer.preprocess(random_batch(probe._c, seed=0), probe._c)
  _, outs, _ = probe._model_loss(data)
  kl = tools.tfd.kl_divergence(
      probe._dynamics.get_dist(outs['post']),
      probe._dynamics.get_dist(outs['prior'])).numpy()
  halves, whole = [kl[:2].mean(), kl[2:].mean()], kl.mean()
  kl = dict(halves=[float(h) for h in halves], whole=float(whole))
  return float((min(halves) + whole) / 2), kl


def main(agent, jit, overrides):
  module, agent_class = AGENTS[agent]
  overrides = dict(batch_size=4, derive_std_deter=0.0, **overrides)
  overrides = {
      k: v for k, v in overrides.items() if k in module.define_config()}
  logdir = pathlib.Path(tempfile.mkdtemp())
  results = {}
  if overrides.get('free_nats') == 'straddle':
    overrides['free_nats'], results['kl'] = straddle(
        logdir, module, overrides)
  # One strategy per process: another over the same devices would reuse its
  # collective keys.
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  for replicas, compiled in ((1, False), (2, jit)):
    config = tiny_config(
        logdir / str(replicas), module, jit=compiled, **overrides)
    agent = make_agent(
        config, agent_class, strategy=strategy if replicas == 2 else None)
    assert agent._strategy.num_replicas_in_sync == replicas
    if replicas == 1:
      agent.save(logdir / 'start.pkl')
    else:
      agent.load(logdir / 'start.pkl')  # Both start from the same weights.
    steps = [agent.train(random_batch(config, seed=seed)) for seed in range(2)]
    results[replicas] = [{k: float(v) for k, v in m.items()} for m in steps]
  # Batch statistics average over the replicas' shards.
  values = strategy.experimental_distribute_values_from_function(
      lambda ctx: tf.constant([1.0, 2.0]) + 2 * ctx.replica_id_in_sync_group)
  means = strategy.run(tf.function(tools.batch_mean), (values,))
  results['batch_mean'] = [
      float(x) for x in strategy.experimental_local_results(means)]
  print('RESULTS ' + json.dumps(results))


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2] == 'True', json.loads(sys.argv[3]))
