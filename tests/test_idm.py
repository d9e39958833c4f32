import numpy as np
import pytest
import tensorflow as tf

import dreamer
import idm
import models
import tools
from helpers import TINY, flags, make_agent, random_batch, read_metrics
from helpers import last_line, run_script, tiny_config, train_eagerly


def idm_config(tmp_path, **overrides):
  overrides = dict(dict(evaluator_units=16), **overrides)
  return tiny_config(tmp_path, module=idm, **overrides)


def test_derived_memory_statistics_match_the_formulas():
  n = 200000
  mean = np.array([0.5, -1.0], np.float32)
  std = np.array([0.3, 1.2], np.float32)
  tf.random.set_seed(0)
  # Fresh posterior samples of one fixed posterior, and one fixed
  # deterministic state.
  stoch = mean + std * tf.random.normal([n, 2])
  post = dict(
      mean=tf.broadcast_to(mean, [n, 2]), std=tf.broadcast_to(std, [n, 2]),
      stoch=stoch, deter=tf.broadcast_to(tf.constant([2.0, -3.0, 0.0]), [n, 3]))
  derived = {
      k: v.numpy() for k, v in idm.derive(post, 0.2, 0.1).items()}
  close = np.testing.assert_allclose
  close(derived['deter'].mean(0), [2, -3, 0], atol=0.01)
  close(derived['deter'].std(0), [0.2] * 3, rtol=0.02)
  close(derived['stoch'].mean(0), mean, atol=0.01)
  close(derived['stoch'].std(0), std + 0.1, rtol=0.02)
  close(derived['std'][0], std + 0.1, rtol=1e-6)


def test_derived_memory_without_noise_is_the_original():
  post = dict(
      mean=tf.zeros([4, 2]), std=tf.ones([4, 2]),
      stoch=tf.random.normal([4, 2]), deter=tf.random.normal([4, 3]))
  derived = idm.derive(post, 0.0, 0.0)
  for key in ('stoch', 'deter'):
    np.testing.assert_allclose(
        derived[key].numpy(), post[key].numpy(), atol=1e-6)


def test_decoding_constraint_zero_without_noise_and_trains_decoder(tmp_path):
  for sigma, positive in ((0.0, False), (0.1, True)):
    config = idm_config(
        tmp_path / str(sigma), derive_std_deter=sigma, derive_std_stoch=sigma)
    agent = make_agent(config, idm.IDM)
    data = dreamer.preprocess(random_batch(agent._c), agent._c)
    with tf.GradientTape() as tape:
      loss, outs, metrics = agent._model_loss(data)
      constraint = metrics['constraint_loss']
    if not positive:
      assert abs(float(constraint)) < 1e-6
      continue
    assert float(constraint) > 0
    grads = tape.gradient(constraint, agent._decode.trainable_variables)
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_the_constraint_trains_decoder_and_deterministic_path_only(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  data = dreamer.preprocess(random_batch(agent._c, seed=1), agent._c)
  with tf.GradientTape(persistent=True) as tape:
    _, outs, metrics = agent._model_loss(data)
    constraint = metrics['constraint_loss']
  post = outs['post']
  # Not the posterior's statistics: with the target held fixed, a gradient
  # on its std would shrink it (idm.derive).
  for key in ('std', 'mean', 'stoch'):
    assert tape.gradient(constraint, post[key]) is None, key
  deter = tape.gradient(constraint, post['deter'])
  assert float(tf.reduce_max(tf.abs(deter))) > 0
  grads = tape.gradient(constraint, agent._decode.trainable_variables)
  assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_imagination_starts_from_original_and_derived_memory(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  start, source = agent._imagine_start(outs)
  starts = agent._c.batch_size * agent._c.batch_length
  assert start['stoch'].shape[0] == 2 * starts
  flat = lambda x: tf.reshape(x, [starts, -1]).numpy()
  np.testing.assert_allclose(
      start['deter'][:starts].numpy(), flat(outs['post']['deter']))
  np.testing.assert_allclose(
      start['deter'][starts:].numpy(), flat(outs['derived']['deter']))
  np.testing.assert_array_equal(source.numpy(), [0] * starts + [1] * starts)
  # The imagination carries its starts and their sources.
  imag = agent._imagine_ahead(outs)
  assert imag['feat'].shape[:2] == (agent._c.horizon, 2 * starts)
  np.testing.assert_array_equal(imag['source'].numpy(), source.numpy())
  np.testing.assert_allclose(
      imag['start']['deter'].numpy(), start['deter'].numpy())


def test_reliability_weights_have_mean_one_respect_clip_stop_gradients():
  random = np.random.RandomState(0)
  logit = tf.Variable(random.normal(0, 5, (14, 50)).astype(np.float32))
  with tf.GradientTape() as tape:
    weight = idm.reliability_weights(logit, clip=2.0)
    loss = tf.reduce_sum(weight * 3.0)
  assert tape.gradient(loss, logit) is None
  weight = weight.numpy()
  np.testing.assert_allclose(weight.mean(), 1.0, rtol=1e-5)
  assert weight.max() / weight.min() <= np.exp(4.0) * (1 + 1e-5)
  clipped = np.exp(np.clip(logit.numpy(), -2, 2))
  np.testing.assert_allclose(weight, clipped / clipped.mean(), rtol=1e-5)


@pytest.mark.slow  # Fits an evaluator.
def test_evaluator_separates_two_distributions(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  width = 2 * (4 + 8) + 2  # feature, action, next feature
  random = np.random.RandomState(0)

  @tf.function
  def step(real, imagined):
    metrics = {}
    agent._train_evaluator(real, imagined, metrics)
    return metrics

  losses = []
  for _ in range(300):
    real = random.normal(0.5, 1.0, (64, width)).astype(np.float32)
    imagined = random.normal(-0.5, 1.0, (256, width)).astype(np.float32)
    metrics = step(real, imagined)
    losses.append(float(metrics['evaluator_loss']))
  assert float(metrics['evaluator_accuracy']) > 0.9
  assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
  # Its logits rank real transitions above imagined ones.
  points = np.stack([np.full(width, 0.5), np.full(width, -0.5)])
  logits = agent._evaluate(tf.constant(points, tf.float32)).numpy()
  assert logits[0] > 0 > logits[1]


def test_zero_weight_trajectory_contributes_no_actor_gradient(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  actor = agent._actor.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    imag = agent._imagine_ahead(outs)
    returns, discount = agent._returns(imag)
    weights = discount * tf.one_hot(
        3, returns.shape[1], on_value=0.0, off_value=1.0)
    loss = agent._actor_loss(outs, imag, returns, weights, {})
    # The same loss with trajectory 3's returns cut off from the actor.
    cut = tf.concat([
        returns[:, :3], tf.stop_gradient(returns[:, 3:4]), returns[:, 4:]], 1)
    reference = agent._actor_loss(outs, imag, cut, weights, {})
    alone = -tf.reduce_mean(returns[:, 3])
  for a, b in zip(tape.gradient(loss, actor), tape.gradient(reference, actor)):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
  # Trajectory 3 alone does have an actor gradient: the comparison is not
  # vacuous.
  assert any(np.any(g.numpy() != 0) for g in tape.gradient(alone, actor))


def test_train_step_logs_and_updates_the_evaluator(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  before = [v.numpy().copy() for v in agent._evaluator.trainable_variables]
  metrics = train_eagerly(agent, random_batch(agent._c))
  for key in (
      'constraint_loss', 'evaluator_loss', 'evaluator_accuracy', 'weight_mean',
      'weight_std', 'weight_min', 'weight_max', 'return_original',
      'return_derived'):
    assert np.isfinite(metrics[key].numpy()), key
  np.testing.assert_allclose(metrics['weight_mean'], 1.0, rtol=1e-5)
  assert metrics['weight_max'] / metrics['weight_min'] <= np.exp(4) * 1.0001
  after = [v.numpy() for v in agent._evaluator.trainable_variables]
  assert any(np.any(a != b) for a, b in zip(before, after))
  assert '_evaluator_opt/slots/0' in agent.named_variables()


def test_skipped_updates_count_the_evaluators(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  layer = agent._evaluator._modules['hout']
  layer.kernel.assign(np.full(layer.kernel.shape, np.nan, np.float32))
  model = [v.numpy().copy() for v in agent._model_opt._variables]
  metrics = train_eagerly(agent, random_batch(agent._c))
  # NaN logits: the evaluator's loss and, through the reliability weights,
  # the actor's and the value's; the model's update still happens.
  assert not np.isfinite(metrics['evaluator_loss'])
  assert metrics['skipped_updates'] == 3
  assert any(not np.array_equal(a, v.numpy()) for a, v in zip(
      model, agent._model_opt._variables))
  assert np.all(np.isnan(layer.kernel.numpy()))  # Its update was skipped.


def test_returns_are_logged_per_start_set(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  imag = agent._imagine_ahead(outs)
  returns, discount = agent._returns(imag)
  # Reverse the trajectories: the metrics follow the sources, not the order.
  order = tf.range(returns.shape[1] - 1, -1, -1)
  imag = dict(imag, source=tf.gather(imag['source'], order))
  returns = tf.gather(returns, order, axis=1)
  metrics = {}
  agent._actor_loss(outs, imag, returns, discount, metrics)
  half = returns.shape[1] // 2
  np.testing.assert_allclose(
      metrics['return_original'], returns[:, half:].numpy().mean(), rtol=1e-5)
  np.testing.assert_allclose(
      metrics['return_derived'], returns[:, :half].numpy().mean(), rtol=1e-5)


@pytest.mark.slow
def test_idm_script_end_to_end(tmp_path):
  config = dict(TINY, steps=120, log_images=False, evaluator_units=16)
  process = run_script('idm.py', f'--logdir={tmp_path}', *flags(**config))
  assert process.returncode == 0, process.stderr[-3000:]
  metrics = [m for m in read_metrics(tmp_path) if 'model_loss' in m]
  assert metrics
  for key in (
      'constraint_loss', 'evaluator_loss', 'evaluator_accuracy', 'weight_mean',
      'return_original', 'return_derived'):
    assert all(np.isfinite(m[key]) for m in metrics), key
  assert any('test/return' in m for m in read_metrics(tmp_path))


# The evaluator's estimand (A.5, eq. 1), on transitions of known densities:
# z, a ~ N(0, 1); real z' ~ N(m, 0.5^2), the model's z' ~ N(m + 0.4, 0.7^2),
# m = (z + a) / 2. Each variable is the first entry of its part of the
# evaluator's input, the rest zero.
REAL, MODEL = (0.0, 0.5), (0.4, 0.7)


def log_ratio(z, a, next_z):
  normal = lambda x, mean, std: (
      -0.5 * ((x - mean) / std) ** 2 - np.log(std * np.sqrt(2 * np.pi)))
  mean = (z + a) / 2
  return (normal(next_z, mean + REAL[0], REAL[1]) -
          normal(next_z, mean + MODEL[0], MODEL[1]))


def sample(random, n, transition=REAL, shift=0.0):
  z, a = random.normal(shift, 1, n), random.normal(0, 1, n)
  next_z = (z + a) / 2 + transition[0] + transition[1] * random.normal(0, 1, n)
  return z, a, next_z


def inputs(agent, z, a, next_z):
  widths = agent._c.stoch_size + agent._c.deter_size, 2
  embed = lambda x, width: np.pad(x[:, None], [(0, 0), (0, width - 1)])
  return idm.transition(
      embed(z, widths[0]), embed(a, widths[1]), embed(next_z, widths[0]))


def fit_evaluator(agent, seed, negatives, shift=0.0, steps=1500, batch=512):
  """Trains a fresh evaluator; its logits at held-out real transitions."""
  agent._evaluator = models.DenseDecoder((), 2, 64, 'binary', act=tf.nn.elu)
  agent._evaluator_opt = tools.Adam('evaluator', [agent._evaluator], 3e-3)
  random = np.random.RandomState(seed)
  train = tf.function(lambda real, model: agent._train_evaluator(
      real, model, {}))
  for _ in range(steps):
    real = inputs(agent, *sample(random, batch))
    if negatives == 'model':  # The model's transitions from real (z, a).
      model = inputs(agent, *sample(random, batch, MODEL))
    else:  # Imagined: the model's transitions from imagined (z, a).
      model = inputs(agent, *sample(random, batch, MODEL, shift))
    train(real, model)
  held = sample(np.random.RandomState(1000), 2000)
  return agent._evaluate(inputs(agent, *held)).numpy(), log_ratio(*held)


@pytest.mark.slow  # Fits evaluators to convergence.
def test_matched_evaluator_estimates_the_conditional_log_ratio(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  logit, truth = fit_evaluator(agent, seed=0, negatives='model')
  # The held-out log ratios span -3.6 to 0.7 (std 0.55); measured: mean
  # error 0.04, 95th percentile 0.10.
  error = np.abs(logit - truth)
  assert error.mean() < 0.1 and np.percentile(error, 95) < 0.3, (
      error.mean(), np.percentile(error, 95))


@pytest.mark.slow  # Fits four evaluators, 800 steps each.
def test_state_shift_moves_the_imagined_estimator_only(tmp_path):
  agent = make_agent(idm_config(tmp_path), idm.IDM)
  logits = {}
  for negatives in ('model', 'imagined'):
    for seed, shift in ((0, 0.0), (1, 1.5)):
      logits[negatives, shift], _ = fit_evaluator(
          agent, seed, negatives, shift, steps=800)
  # Imagined (z, a) drawn from N(1.5, 1) instead of N(0, 1), the transition
  # unchanged: the joint ratio adds log N(z; 0, 1) / N(z; 1.5, 1). Measured:
  # moved 1.47, kept 0.07.
  moved = np.abs(logits['imagined', 1.5] - logits['imagined', 0.0]).mean()
  kept = np.abs(logits['model', 1.5] - logits['model', 0.0]).mean()
  assert moved > 0.8 and kept < 0.15, (moved, kept)


class EvaluatorSpy(idm.IDM):

  def _train_evaluator(self, real, model, metrics):
    self.inputs = real, model
    super()._train_evaluator(real, model, metrics)


@pytest.mark.parametrize('negatives', ['model', 'imagined'])
def test_evaluator_inputs_by_negatives_without_gradient(tmp_path, negatives):
  config = idm_config(tmp_path, evaluator_negatives=negatives)
  agent = make_agent(config, EvaluatorSpy)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  with tf.GradientTape(persistent=True) as tape:
    _, outs, _ = agent._model_loss(data)
    imag = agent._imagine_ahead(outs)
    agent._train_aux(data, outs, imag, {})
    real, model = agent.inputs
    probe = tf.reduce_sum(agent._evaluate(real))
    probe += tf.reduce_sum(agent._evaluate(model))
  # No gradient reaches the world model through the evaluator's inputs.
  world = agent._model_opt._variables
  assert all(g is None for g in tape.gradient(probe, world))
  get_feat = agent._dynamics.get_feat
  feat, action = get_feat(outs['post']).numpy(), np.asarray(data['action'])
  real_next = feat[:, 1:]
  np.testing.assert_allclose(real, np.concatenate(
      [feat[:, :-1], action[:, 1:], real_next], -1))
  if negatives == 'imagined':
    assert model.shape[:2] == imag['feat'].shape[:2]
    return
  # The model's transitions from the same posterior z_t and action: the
  # prior at t+1, its sampled stochastic state.
  prior = outs['prior']
  np.testing.assert_allclose(model, np.concatenate(
      [feat[:, :-1], action[:, 1:], get_feat(prior)[:, 1:]], -1))
  size = agent._c.stoch_size
  stoch = model[..., -agent._c.deter_size - size:][..., :size]
  np.testing.assert_allclose(stoch, prior['stoch'][:, 1:].numpy())
  assert not np.allclose(stoch, prior['mean'][:, 1:].numpy())


class StubEvaluator:
  """A fixed linear logit of the transition: known in numpy."""

  def __init__(self, width, seed=0):
    self.direction = np.random.RandomState(seed).normal(
        0, 1 / np.sqrt(width), width).astype(np.float32)

  def logit(self, transitions):
    return np.asarray(transitions) @ self.direction

  def __call__(self, transitions):
    logit = tf.linalg.matvec(transitions, self.direction)
    return tools.tfd.Independent(tools.tfd.Bernoulli(logit), 0)


def stub_agent(tmp_path, **overrides):
  """A tiny IDM agent with a stub evaluator, its outs and imagination."""
  agent = make_agent(idm_config(tmp_path, **overrides), idm.IDM)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  imag = agent._imagine_ahead(outs)
  agent._evaluator = StubEvaluator(outs['real'].shape[-1])
  transitions = agent._imagined_transitions(imag)[:-1]
  logits = [agent._evaluator.logit(x) for x in (
      outs['real'], outs['model'], transitions)]
  return agent, outs, imag, logits


def test_logit_diagnostics_match_numpy(tmp_path):
  agent, outs, imag, (real, model, imagined) = stub_agent(tmp_path)
  metrics = {}
  agent._imag_weights(outs, imag, metrics)
  for name, logit in (('real', real), ('model', model), ('imag', imagined)):
    expected = dict(
        mean=logit.mean(), std=logit.std(), p5=np.percentile(logit, 5),
        p95=np.percentile(logit, 95))
    for stat, value in expected.items():
      np.testing.assert_allclose(
          metrics[f'logit_{name}_{stat}'], value, rtol=1e-4, atol=1e-5,
          err_msg=f'{name} {stat}')
  low = min(real.min(), model.min())
  high = max(real.max(), model.max())
  outside = np.mean((imagined < low) | (imagined > high))
  assert 0 < outside < 1, outside  # The stub extrapolates for some.
  np.testing.assert_allclose(metrics['logit_imag_outside'], outside, rtol=1e-5)


@pytest.mark.parametrize('bound', [False, True])
def test_logit_bound_keeps_imagined_logits_in_the_training_range(
    tmp_path, bound):
  agent, outs, imag, (real, model, imagined) = stub_agent(
      tmp_path, logit_bound=bound, weight_clip=10.0)
  weight = agent._imag_weights(outs, imag, {}).numpy()
  low = min(real.min(), model.min())
  high = max(real.max(), model.max())
  logit = np.clip(imagined, low, high) if bound else imagined
  expected = np.exp(logit) / np.exp(logit).mean()
  np.testing.assert_allclose(weight, expected, rtol=1e-4)
  # The weights' logits, known up to the normalization, within the range
  # exactly when bounded.
  spread = np.log(weight.max() / weight.min())
  assert (spread <= high - low + 1e-4) == bound, (spread, high - low)


@pytest.mark.slow
def test_a_logit_bound_that_cannot_bind_is_refused():
  process = run_script(
      'idm.py', '--logit_bound=True', '--evaluator_negatives=imagined',
      '--logdir=/nonexistent/run')
  assert process.returncode == 1
  assert last_line(process) == (
      'idm.py: error: --logit_bound True bounds imagined logits to the range '
      "of the evaluator's training logits, which with --evaluator_negatives "
      'imagined include them: it would never bind; use '
      '--evaluator_negatives model')
