"""The agent: losses, gradient routing, override points, checkpoints,
precision, compilation."""

import json
import pickle

import numpy as np
import pytest
import tensorflow as tf
from tf_keras import mixed_precision as prec

import dreamer
import tools
from helpers import make_agent, random_batch, random_episode, tiny_config
from helpers import train_eagerly


def variables_of(*modules):
  return [v for m in modules for v in m.trainable_variables]


def snapshot(agent):
  variables = agent.named_variables()
  return {name: var.numpy().copy() for name, var in variables.items()}


def changed(before, after, prefix):
  return [
      n for n in before
      if n.startswith(prefix) and not np.array_equal(before[n], after[n])]


def set_learning_rate(optimizer, value):
  optimizer._opt.learning_rate.assign(value)


@pytest.fixture
def agent(tmp_path):
  return make_agent(tiny_config(tmp_path))


def test_free_nats_clamp(tmp_path):
  agent = make_agent(tiny_config(tmp_path, free_nats=1e6))
  batch = dreamer.preprocess(random_batch(agent._c), agent._c)
  layers = agent._dynamics._modules
  prior_head = variables_of(layers['img2'], layers['img3'])
  with tf.GradientTape() as tape:
    loss, outs, metrics = agent._model_loss(batch)
  assert metrics['div'].numpy() == 1e6
  # The prior's head only enters the loss through the KL, which the clamp
  # cuts off.
  grads = tape.gradient(loss, prior_head)
  assert all(g is None or np.all(g.numpy() == 0) for g in grads)
  agent._c.free_nats = 0.0
  with tf.GradientTape() as tape:
    loss, outs, metrics = agent._model_loss(batch)
  kl = tools.tfd.kl_divergence(
      agent._dynamics.get_dist(outs['post']),
      agent._dynamics.get_dist(outs['prior']))
  np.testing.assert_allclose(
      metrics['div'].numpy(), tf.reduce_mean(kl).numpy(), rtol=1e-6)
  assert all(np.any(g.numpy() != 0) for g in tape.gradient(loss, prior_head))


def test_free_nats_per_step(tmp_path):
  # Free nats above the batch's mean KL: upstream's clamp passes no gradient
  # to the prior, the per-step form penalizes the steps above them.
  agent = make_agent(tiny_config(tmp_path, free_nats=0.0))
  batch = dreamer.preprocess(random_batch(agent._c), agent._c)
  layers = agent._dynamics._modules
  prior_head = variables_of(layers['img2'], layers['img3'])

  def kl_of(outs):
    return tools.tfd.kl_divergence(
        agent._dynamics.get_dist(outs['post']),
        agent._dynamics.get_dist(outs['prior'])).numpy().astype(np.float64)

  agent._c.free_nats = 1.5 * float(kl_of(agent._model_loss(batch)[1]).mean())
  grads = {}
  for per_step in (False, True):
    agent._c.free_nats_per_step = per_step
    with tf.GradientTape() as tape:
      loss, outs, metrics = agent._model_loss(batch)
    grads[per_step] = [
        0.0 if g is None else np.abs(g.numpy()).max()
        for g in tape.gradient(loss, prior_head)]
    kl = kl_of(outs)
    assert kl.mean() < agent._c.free_nats < kl.max()
    expected = np.maximum(kl, agent._c.free_nats).mean()
    if not per_step:
      expected = agent._c.free_nats
    np.testing.assert_allclose(metrics['div'].numpy(), expected, rtol=1e-5)
  assert max(grads[False]) == 0
  assert min(grads[True]) > 0


def test_model_loss_reaches_every_world_model_part(tmp_path):
  # No clamp: the KL reaches the prior.
  agent = make_agent(tiny_config(tmp_path, free_nats=0.0))
  batch = dreamer.preprocess(random_batch(agent._c), agent._c)
  modules = dict(
      encoder=agent._encode, dynamics=agent._dynamics, decoder=agent._decode,
      reward=agent._reward, actor=agent._actor, value=agent._value)
  with tf.GradientTape() as tape:
    loss, _, _ = agent._model_loss(batch)
  grads = tape.gradient(
      loss, {k: v.trainable_variables for k, v in modules.items()})
  for name in ('encoder', 'dynamics', 'decoder', 'reward'):
    assert grads[name], name
    assert all(
        g is not None and np.any(g.numpy() != 0) for g in grads[name]), name
  for name in ('actor', 'value'):
    assert all(g is None for g in grads[name]), name


WORLD_MODEL = ('_encode/', '_dynamics/', '_decode/', '_reward/')


@pytest.mark.parametrize('learner, frozen, updated', [
    ('actor', ('_model_opt', '_value_opt'), ('_actor/',)),
    ('value', ('_model_opt', '_actor_opt'), ('_value/',)),
    ('model', ('_actor_opt', '_value_opt'), WORLD_MODEL),
])
def test_each_loss_updates_only_its_learner(agent, learner, frozen, updated):
  for name in frozen:
    set_learning_rate(getattr(agent, name), 0.0)
  before = snapshot(agent)
  metrics = train_eagerly(agent, random_batch(agent._c))
  after = snapshot(agent)
  assert metrics[f'{learner}_grad_norm'] > 0
  for prefix in WORLD_MODEL + ('_actor/', '_value/'):
    assert bool(changed(before, after, prefix)) == (prefix in updated), prefix


def test_value_loss_has_no_gradient_into_actor_or_world_model(agent):
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, metrics = agent._model_loss(data)
  imag = agent._imagine_ahead(outs)
  returns, discount = agent._returns(imag)
  with tf.GradientTape() as tape:
    loss = agent._value_loss(imag, returns, discount)
  others = variables_of(
      agent._actor, agent._encode, agent._dynamics, agent._reward)
  assert all(g is None for g in tape.gradient(loss, others))


class ZeroWeights(dreamer.Dreamer):

  def _imag_weights(self, outs, imag, metrics):
    metrics['override_used'] = tf.constant(1.0)
    return tf.zeros_like(imag['feat'][:-1, :, 0])


class ConstantActorLoss(dreamer.Dreamer):

  def _actor_loss(self, outs, imag, returns, weights, metrics):
    loss = super()._actor_loss(outs, imag, returns, weights, metrics)
    return tf.constant(42.0) + 0 * loss


def test_overridden_steps_are_used(tmp_path):
  agent = make_agent(tiny_config(tmp_path / 'a'), ZeroWeights)
  metrics = train_eagerly(agent, random_batch(agent._c))
  assert metrics['override_used'] == 1.0
  # Zero weights silence the actor and value objectives, not the model's.
  assert metrics['actor_grad_norm'] == 0 and metrics['value_grad_norm'] == 0
  assert metrics['model_grad_norm'] > 0
  agent = make_agent(tiny_config(tmp_path / 'b'), ConstantActorLoss)
  assert train_eagerly(agent, random_batch(agent._c))['actor_loss'] == 42.0


def test_imagination_shapes_and_actions(agent):
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  imag = agent._imagine_ahead(outs)
  starts = agent._c.batch_size * agent._c.batch_length
  assert imag['feat'].shape == (agent._c.horizon, starts, 4 + 8)
  assert imag['action'].shape == (agent._c.horizon, starts, 2)
  assert np.all(np.abs(imag['action'].numpy()) <= 1)
  returns, discount = agent._returns(imag)
  assert returns.shape == discount.shape == (agent._c.horizon - 1, starts)
  np.testing.assert_allclose(
      discount[:, 0].numpy(), 0.99 ** np.arange(agent._c.horizon - 1),
      rtol=1e-5)


def test_policy_traces_once_per_mode(agent):
  obs = {'image': np.zeros((2, 64, 64, 3), np.uint8)}
  agent._train_due = lambda step: 0
  for training, traces in ((False, 1), (True, 2)):
    state = None
    for index in range(4):
      reset = np.array([index in (0, 2), False])
      action, state = agent(obs, reset, state, training=training)
      assert action.shape == (2, 2) and np.all(np.abs(action) <= 1)
    assert agent._policy_fn.experimental_get_tracing_count() == traces
  # Exploration that decays with the step is an input, not a retrace.
  agent._c.expl_decay = 1000.0
  for _ in range(3):
    agent(obs, np.array([False, False]), state, training=True)
  assert agent._policy_fn.experimental_get_tracing_count() == 2


IMAGES = {'image': np.random.RandomState(0).randint(
    0, 256, (2, 64, 64, 3)).astype(np.uint8)}


def policy_actions(agent, training, calls=3):
  agent._train_due = lambda step: 0
  state, actions = None, []
  for index in range(calls):
    action, state = agent(IMAGES, np.array([index == 0] * 2), state, training)
    actions.append(action)
  return np.array(actions)


@pytest.mark.slow  # Compiles the policy in both modes under XLA.
def test_policy_is_seeded_and_compiled_as_the_graph_computes(tmp_path):
  agent = make_agent(tiny_config(tmp_path, seed=3, eval_noise=0.3))
  assert agent._random.randint(2 ** 31) == np.random.RandomState(3).randint(
      2 ** 31)
  for training in (False, True):
    actions = {}
    for seed in (3, 3, 4):
      # The posterior, actor and exploration samples follow --seed, under
      # XLA too (which ignores TensorFlow's global seed).
      agent._random = np.random.RandomState(seed)
      actions.setdefault(seed, []).append(policy_actions(agent, training))
    np.testing.assert_array_equal(*actions[3])
    assert not np.allclose(actions[3][0], actions[4][0])
    assert np.all(np.abs(actions[4][0]) <= 1)
  # Training mode counts the env steps, evaluation does not.
  assert agent.step == 3 * 3 * 2 * agent._c.action_repeat
  # The XLA-compiled policy computes the plain graph's posterior (XLA draws
  # other numbers from a seed than TF's kernels, so samples are compared by
  # their seeding above).
  graph = tf.function(agent.policy, autograph=False)
  state = (agent._dynamics.initial(2), tf.zeros((2, 2)))
  seed = tf.constant([1, 2], tf.int32)
  for training in (False, True):
    outputs = [
        function(IMAGES, state, training, 0.3, seed)[1][0]
        for function in (agent._policy_fn, graph)]
    for key in ('mean', 'std', 'deter'):
      np.testing.assert_allclose(
          outputs[0][key], outputs[1][key], rtol=1e-5, atol=1e-6,
          err_msg=key)


def test_checkpoint_round_trip_includes_optimizer_state_and_step(tmp_path):
  first = make_agent(tiny_config(tmp_path / 'a'))
  train_eagerly(first, random_batch(first._c))
  first._step.assign(1234)
  first.save(tmp_path / 'variables.pkl')
  names = first.named_variables()
  assert any('_model_opt/slots' in n for n in names) and '_step' in names
  second = make_agent(tiny_config(tmp_path / 'b', seed=1))
  second.load(tmp_path / 'variables.pkl')
  assert second.step == 1234
  for (name, a), b in zip(snapshot(first).items(), snapshot(second).values()):
    np.testing.assert_array_equal(a, b, err_msg=name)
  assert int(second._model_opt._opt.iterations.numpy()) == 1


def test_adam_eps_reaches_every_optimizer(tmp_path):
  # Adam's first step is lr * g / (|g| + eps): about lr at upstream's 1e-7,
  # far smaller where eps dwarfs the gradient.
  largest = {}
  for eps in (1e-7, 10.0):
    config = tiny_config(tmp_path / str(eps), adam_eps=eps)
    agent = make_agent(config)
    opts = agent._model_opt, agent._value_opt, agent._actor_opt
    assert [opt._opt.epsilon for opt in opts] == [eps] * 3
    before = [v.numpy() for v in agent._actor.variables]
    train_eagerly(agent, random_batch(config))
    largest[eps] = max(
        np.abs(v.numpy() - b).max()
        for v, b in zip(agent._actor.variables, before))
  lr = dreamer.define_config().actor_lr
  assert 0.9 * lr < largest[1e-7] < 1.1 * lr
  assert largest[10.0] < 0.1 * lr


def test_checkpoint_of_other_config_fails_with_the_variable(tmp_path):
  make_agent(tiny_config(tmp_path / 'a')).save(tmp_path / 'variables.pkl')
  other = make_agent(tiny_config(tmp_path / 'b', deter_size=10))
  before = snapshot(other)
  with pytest.raises(
      tools.CheckpointError,
      match=r'variable _\w+/\S+ has shape \(.*\) there but \(.*\) here'):
    other.load(tmp_path / 'variables.pkl')
  after = snapshot(other)
  assert all(np.array_equal(before[n], after[n]) for n in before)


def test_corrupt_checkpoint_fails_clearly_and_stays(tmp_path, agent):
  path = tmp_path / 'variables.pkl'
  agent.save(path)
  path.write_bytes(path.read_bytes()[:1000])
  content = path.read_bytes()
  with pytest.raises(tools.CheckpointError, match='not a readable checkpoint'):
    agent.load(path)
  path.write_bytes(pickle.dumps([1, 2, 3]))
  with pytest.raises(tools.CheckpointError, match='not a readable checkpoint'):
    agent.load(path)
  # The test wrote it; loading never writes.
  assert content != path.read_bytes()


def owed_over(agent, steps):
  """The updates each env step owes, each paid in full."""
  owed = []
  for step in steps:
    owed.append(agent._train_due(step))
    agent._updates.assign_add(owed[-1])
  return owed


def test_train_schedule_is_upstreams_once_and_every(agent):
  c = agent._c  # pretrain 2, train_steps 2, train_every 40.
  c.pretrain = 3  # Told apart from the phases.
  steps = list(range(80, 400, 6))
  once, every = tools.Once(), tools.Every(c.train_every)
  upstream = [
      (c.pretrain if once() else c.train_steps) if every(s) else 0
      for s in steps]
  assert owed_over(agent, steps) == upstream
  assert sum(upstream) == 3 + 2 * 7


def test_train_schedule_resumes_a_phase_cut_short(tmp_path, agent):
  owed_over(agent, [80, 100, 120])  # Pretraining, then a phase due at 120.
  agent._updates.assign_add(-1)  # A stop ran one update of that phase.
  agent._step.assign(130)
  agent.save(tmp_path / 'variables.pkl')
  resumed = make_agent(agent._c)
  resumed.load(tmp_path / 'variables.pkl')
  # The rest of the phase at once, then the grid of a run never stopped.
  assert owed_over(resumed, [130, 158, 160, 200]) == [1, 0, 2, 2]


def test_train_schedule_of_an_older_checkpoint(tmp_path, agent):
  path = tmp_path / 'variables.pkl'
  for updates, owed in ((1, 1), (2, 0), (5, 1), (6, 0)):
    agent._model_opt.iterations.assign(updates)
    agent._step.assign(300)
    agent.save(path)
    with path.open('rb') as f:
      values = pickle.load(f)
    del values['_train_start'], values['_updates']
    path.write_bytes(pickle.dumps(values))
    resumed = make_agent(agent._c)
    resumed.load(path)
    # The world model's updates count; a phase cut short finishes now, the
    # next is due train_every env steps later.
    assert int(resumed._updates) == updates
    assert owed_over(resumed, [300, 338, 340]) == [owed, 0, 2], updates


@pytest.mark.slow  # Traces the train step in bfloat16.
def test_bfloat16_keeps_losses_and_densities_float32(tmp_path):
  try:
    agent = make_agent(tiny_config(tmp_path, precision='bf16'))
    assert agent._encode._modules['h1'].compute_dtype == 'bfloat16'
    assert not agent._model_opt._mixed  # bfloat16 needs no loss scaling.
    assert agent._model_opt.loss_scale_variables() == {}
    for seed in range(2):  # Compiled in tests/test_cli.py's bf16 run.
      metrics = train_eagerly(agent, random_batch(agent._c, seed=seed))
    assert metrics['skipped_updates'] == 0
    for name, value in metrics.items():
      assert value.dtype == tf.float32, name
      assert np.isfinite(value.numpy()), name
    data = dreamer.preprocess(random_batch(agent._c), agent._c)
    _, outs, _ = agent._model_loss(data)
    for key in ('mean', 'std', 'stoch', 'deter'):
      assert outs['post'][key].dtype == tf.float32, key
    assert outs['feat'].dtype == tf.float32
    assert outs['image_pred'].mean().dtype == tf.float32
    assert agent._actor(outs['feat']).entropy().dtype == tf.float32
    variables = [v for v in agent.variables if v.dtype.is_floating]
    assert all(v.dtype == tf.float32 for v in variables)
    agent.save(tmp_path / 'bf16.pkl')
    full = make_agent(tiny_config(tmp_path / 'b', precision=32))
    full.load(tmp_path / 'bf16.pkl')
    full.save(tmp_path / '32.pkl')
    again = make_agent(tiny_config(tmp_path / 'c', precision='bf16'))
    again.load(tmp_path / '32.pkl')
    for name, value in snapshot(agent).items():
      np.testing.assert_array_equal(
          again.named_variables()[name].numpy(), value, err_msg=name)
  finally:
    prec.set_global_policy('float32')


def test_precision_flag_and_gpu_defaults(monkeypatch):
  parse = lambda value: dreamer.parse_flags(
      dreamer.define_config(), ['--precision', value]).precision
  assert (parse('16'), parse('32'), parse('bf16')) == (16, 32, 'bf16')
  with pytest.raises(SystemExit, match="invalid choice: 'bf8'"):
    parse('bf8')
  for generations, native, precision in (
      ([], False, 32), ([], True, 'bf16'), ([7], True, 16),
      ([8, 9], False, 'bf16'), ([7, 8], False, 16)):
    monkeypatch.setattr(tools, 'gpu_generations', lambda: generations)
    monkeypatch.setattr(tools, 'cpu_bfloat16', lambda: native)
    config = dreamer.define_config()
    assert config.precision == precision and config.jit == bool(generations)


def test_cpu_bfloat16_reads_the_cpu_flags(tmp_path):
  cpuinfo = tmp_path / 'cpuinfo'
  for flags, native in (('fpu avx2 fma', False), ('avx512f amx_bf16', True),
                        ('avx512f avx512_bf16', True)):
    cpuinfo.write_text(f'processor\t: 0\nflags\t\t: {flags}\n\n')
    assert tools.cpu_bfloat16(cpuinfo) == native, flags
  assert not tools.cpu_bfloat16(tmp_path / 'missing')


@pytest.mark.slow  # Traces the train step in float16.
def test_mixed_precision_keeps_losses_and_densities_float32(tmp_path):
  try:
    agent = make_agent(tiny_config(tmp_path, precision=16))
    assert agent._encode._modules['h1'].compute_dtype == 'float16'
    loss_scale = lambda: float(agent._model_opt._opt.loss_scale.numpy())
    initial = loss_scale()
    # Early float16 overflows are the loss scale optimizer's to skip, not
    # errors.
    for seed in range(20):
      metrics = agent.train(random_batch(agent._c, seed=seed))
      assert metrics['skipped_updates'] == 0
      if np.isfinite(metrics['model_grad_norm'].numpy()):
        break
    assert loss_scale() < initial
    for name, value in metrics.items():
      assert value.dtype == tf.float32, name
      assert np.isfinite(value.numpy()), name
    data = dreamer.preprocess(random_batch(agent._c), agent._c)
    _, outs, _ = agent._model_loss(data)
    assert outs['feat'].dtype == tf.float32
    assert agent._actor(outs['feat']).entropy().dtype == tf.float32
  finally:
    prec.set_global_policy('float32')


def test_train_step_is_one_graph(agent):
  for seed in range(3):
    metrics = agent.train(random_batch(agent._c, seed=seed))
  assert agent._train_fn.experimental_get_tracing_count() == 1
  assert all(np.isfinite(v.numpy()) for v in metrics.values())


@pytest.mark.slow  # Traces the train step in two precisions.
def test_checkpoints_move_between_float16_and_float32(tmp_path):
  try:
    half = make_agent(tiny_config(tmp_path / 'a', precision=16))
    for seed in range(3):
      train_eagerly(half, random_batch(half._c, seed=seed))
    scale = half._model_opt.loss_scale_variables()['scale'].numpy()
    assert scale < 2 ** 15  # Lowered by float16 overflows: worth keeping.
    half.save(tmp_path / '16.pkl')
    full = make_agent(tiny_config(tmp_path / 'b', precision=32))
    full.load(tmp_path / '16.pkl')
    for name, value in snapshot(half).items():
      if '/loss_scale/' not in name:
        np.testing.assert_array_equal(
            full.named_variables()[name].numpy(), value, err_msg=name)
    train_eagerly(full, random_batch(full._c))
    full.save(tmp_path / '32.pkl')
    again = make_agent(tiny_config(tmp_path / 'c', precision=16))
    again.load(tmp_path / '32.pkl')  # The loss scale starts anew.
    assert again._model_opt.loss_scale_variables()['scale'] == 2 ** 15
    assert again.step == full.step
    again.load(tmp_path / '16.pkl')  # Float16 to float16 keeps it.
    assert again._model_opt.loss_scale_variables()['scale'] == scale
    train_eagerly(again, random_batch(again._c))
  finally:
    prec.set_global_policy('float32')


class StubDynamics:
  """Posteriors mean_t = t (1, 2), deter_t = t (3, 3, 3); the prior rolls on
  from a state and misses by `drift` per step and dimension."""

  def __init__(self, drift):
    self.drift = drift

  def observe(self, embed, action):
    steps = tf.range(action.shape[1], dtype=tf.float32)[None, :, None]
    steps = tf.tile(steps, [action.shape[0], 1, 1])
    post = dict(mean=steps * [1.0, 2.0], deter=steps * [3.0, 3.0, 3.0])
    return post, post

  def imagine(self, action, state):
    ahead = tf.range(1, action.shape[1] + 1, dtype=tf.float32)[None, :, None]
    return {
        k: state[k][:, None] + ahead * (np.array(slope) + self.drift)
        for k, slope in (('mean', [1.0, 2.0]), ('deter', [3.0, 3.0, 3.0]))}


def test_model_error_is_the_open_loop_distance_in_latent_space(tmp_path):
  agent = make_agent(tiny_config(tmp_path, batch_length=8))
  data = random_batch(agent._c)
  for drift in (0.0, 0.5):
    agent._dynamics = StubDynamics(drift)
    error = agent._model_error(data).numpy()
    # Context 5 of 8 steps leaves 3; at k steps ahead each of the 5
    # dimensions is k * drift off.
    ahead = np.arange(1, 4)
    expected = np.tile(drift * ahead * np.sqrt(5), (agent._c.batch_size, 1))
    np.testing.assert_allclose(error, expected, rtol=1e-6, atol=1e-6)


def test_model_error_is_logged_per_horizon(tmp_path):
  agent = make_agent(tiny_config(tmp_path, batch_length=8))
  for index in range(2):
    tools.save_episodes(agent._datadir, [random_episode(9, seed=index)])
  agent._replay.update()
  replay_state = agent._replay._random.get_state()[1].copy()
  agent._model_error_summaries()
  names = ['model_error'] + [f'model_error_{k}' for k in (1, 2, 3)]
  assert sorted(agent._metrics) == sorted(names)
  assert all(np.isfinite(agent._metrics[n][0]) for n in names)
  assert np.isclose(agent._metrics['model_error'][0], np.mean(
      [agent._metrics[n][0] for n in names[1:]]), rtol=1e-5)
  # Its batch does not change the training batches that follow.
  np.testing.assert_array_equal(
      agent._replay._random.get_state()[1], replay_state)


def test_shared_noise_key_reaches_imagination(tmp_path):
  for shared in (False, True):
    agent = make_agent(tiny_config(tmp_path / str(shared), shared_noise=shared))
    data = dreamer.preprocess(random_batch(agent._c), agent._c)
    _, outs, _ = agent._model_loss(data)
    imag = agent._imagine_ahead(outs)
    noise = ((imag['stoch'] - imag['mean']) / imag['std']).numpy()
    # Every imagined trajectory shares its step's noise, as upstream's.
    assert np.allclose(noise, noise[:, :1], atol=1e-4) == shared


class Unread:
  """A step's output that fails the test when the host reads it."""

  def _read(self, *args):
    raise AssertionError('the train loop read a step output')

  __float__ = __bool__ = __array__ = numpy = _read


@pytest.mark.slow  # Runs a train phase with its prefetching thread.
def test_train_phase_reads_no_step_output_and_logs_its_means(tmp_path):
  config = tiny_config(tmp_path, pretrain=3, log_images=False)
  agent = make_agent(config)
  for index in range(2):
    tools.save_episodes(agent._datadir, [random_episode(20, seed=index)])
  train_fn, outputs = agent._train_fn, []
  def step(tensors):  # The real step; the loop gets unreadable outputs.
    metrics = train_fn(tensors)
    outputs.append(metrics)
    return {k: Unread() for k in metrics}
  agent._train_fn = step
  written = []
  agent._logger.write = lambda step, metrics, prefix: written.append(metrics)
  obs = {'image': np.zeros((1, 64, 64, 3), np.uint8)}
  agent(obs, np.array([True]), None, training=True)
  assert len(outputs) == 3 and len(written) == 1
  # The logged values are the means over the interval's steps, as when
  # each was read back and averaged on the host.
  for key in outputs[0]:
    expected = np.mean([float(m[key]) for m in outputs])
    np.testing.assert_allclose(written[0][key], expected, rtol=1e-12)
  assert 'model_error' in written[0]
  # The next interval starts from zero.
  assert agent._sums.means() == {}
  # Checkpoints hold neither the sums nor the count: those of runs before
  # them still load.
  names = agent.named_variables()
  assert not any('sums' in n or 'nonfinite' in n for n in names), names


def test_tests_follow_the_grid_of_the_first(tmp_path):
  assert dreamer.logged_tests(tmp_path) == []
  assert dreamer.next_test([], 100) is None
  lines = [
      {'step': 50, 'train/return': 1.0}, {'step': 50, 'test/return': 2.0},
      {'step': 90, 'model_loss': 3.0}, {'step': 60, 'test/return': 4.0}]
  text = '\n'.join(json.dumps(line) for line in lines) + '\n{"step": 9'
  (tmp_path / 'metrics.jsonl').write_text(text)
  # Sorted, and a torn last line skipped.
  assert dreamer.logged_tests(tmp_path) == [50, 60]
  # A test at every start (upstream's resume) put one at 60; the grid is the
  # first test's.
  assert dreamer.next_test([50, 60], 100) == 150
  assert dreamer.next_test([50], 100) == 150
  # A test late by part of an episode keeps the grid.
  assert dreamer.next_test([50, 162], 100) == 250
  assert dreamer.next_test([50, 150, 250], 100) == 350
