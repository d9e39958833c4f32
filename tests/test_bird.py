import numpy as np
import pytest
import tensorflow as tf

import bird
import dreamer
import tools
from helpers import TINY, flags, make_agent, random_batch, random_episode
from helpers import read_metrics, run_script, tiny_config, train_eagerly
from test_tools import numpy_lambda_return

tfd = tools.tfd


def numpy_confidence_weights(logprob, clip):
  confidence = logprob.sum(0)
  weight = (confidence - confidence.mean()) / confidence.std() + 1
  return np.clip(weight, 1 - clip, 1 + clip)


@pytest.mark.parametrize('clip', [0.5, 1.0])
def test_confidence_weights_match_numpy(clip):
  random = np.random.RandomState(0)
  logprob = random.normal(0, 3, (15, 64)).astype(np.float32)
  weight, confidence = bird.confidence_weights(tf.constant(logprob), clip)
  np.testing.assert_allclose(confidence.numpy(), logprob.sum(0), rtol=1e-5)
  expected = numpy_confidence_weights(logprob, clip)
  np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-5, atol=1e-6)
  assert weight.numpy().min() >= 1 - clip
  assert weight.numpy().max() <= 1 + clip
  clipped = (expected == 1 - clip) | (expected == 1 + clip)
  assert 0 < np.mean(clipped) < 1  # The clip is active for some.


def test_confidence_weights_carry_no_gradient():
  random = np.random.RandomState(1)
  logprob = tf.Variable(random.normal(size=(5, 8)).astype(np.float32))
  with tf.GradientTape() as tape:
    weight, _ = bird.confidence_weights(logprob, 1.0)
    loss = tf.reduce_sum(weight * tf.range(8, dtype=tf.float32))
  assert tape.gradient(loss, logprob) is None


def test_equal_confidences_get_weight_one():
  # Constants whose float32 batch mean is off by a unit in the last place
  # (found by search): (x - mean) / (std + 1e-9) makes them 0 or 2.
  for value in (-415.83054, -418.5818, -503.44165):
    confidence = tf.fill([1, 750], tf.constant(value, tf.float32))
    mean = tf.reduce_mean(confidence)
    assert mean != confidence[0, 0]
    authors = (confidence - mean) / (tf.math.reduce_std(confidence) + 1e-9)
    assert np.abs(authors.numpy()).min() > 0.9, value
    weight, _ = bird.confidence_weights(confidence, 1.0)
    np.testing.assert_array_equal(weight.numpy(), 1.0, err_msg=str(value))
  # Differences of a few units in the last place stay near 1 (the authors'
  # standardization makes them +-1.2).
  tiny = tf.constant([[-400.0, -400.00003, -400.0, -400.00006]])
  weight, _ = bird.confidence_weights(tiny, 1.0)
  np.testing.assert_allclose(weight.numpy(), 1.0, atol=0.02)
  # A small spread that float32 resolves is standardized as before.
  small = tf.constant([[-400.0, -400.02, -400.0, -400.04]])
  weight, _ = bird.confidence_weights(small, 1.0)
  np.testing.assert_allclose(
      weight.numpy(), numpy_confidence_weights(small.numpy(), 1.0),
      atol=2e-3)


def bird_config(tmp_path, **overrides):
  overrides = dict(dict(deter_size=8, stoch_size=4), **overrides)
  return tiny_config(tmp_path, module=bird, **overrides)


class Spy(bird.BIRD):
  """Records what the train step hands to the losses."""

  seen = {}

  def _returns(self, imag):
    returns, discount = super()._returns(imag)
    self.seen.update(imag=imag, returns=returns, discount=discount)
    return returns, discount

  def _actor_loss(self, outs, imag, returns, weights, metrics):
    self.seen['actor_weights'] = weights
    loss = super()._actor_loss(outs, imag, returns, weights, metrics)
    self.seen['actor_loss'] = loss
    return loss

  def _value_loss(self, imag, returns, weights):
    self.seen['value_weights'] = weights
    return super()._value_loss(imag, returns, weights)


def numpy_step_confidence(imag, score):
  """Each imagined step's score, in numpy: -sum log sigma (the constant
  cancels in the standardization) or log N(stoch; mean, std)."""
  mean, std, stoch = (imag[k].numpy() for k in ('mean', 'std', 'stoch'))
  if score == 'expected':
    return -np.log(std).sum(-1)
  normal = -0.5 * ((stoch - mean) / std) ** 2 - np.log(std * np.sqrt(2 * np.pi))
  return normal.sum(-1)


@pytest.mark.parametrize('score', ['expected', 'sample'])
def test_confidence_weights_enter_actor_and_value_losses(tmp_path, score):
  config = bird_config(tmp_path, ent_alpha=0.0, confidence=score)
  agent = make_agent(config, Spy)
  metrics = agent._train_counted(random_batch(agent._c))  # Eager: tensors.
  for key in ('weight_mean', 'weight_std', 'weight_min', 'weight_max',
              'confidence', 'real_entropy'):
    assert np.isfinite(metrics[key].numpy()), key
  assert 0 <= metrics['weight_min'] <= metrics['weight_max'] <= 2
  seen = Spy.seen
  # The weights of the imagined prior steps' scores, one per trajectory,
  # times the discount, weigh both losses.
  weight = numpy_confidence_weights(
      numpy_step_confidence(seen['imag'], score), 1.0)
  assert weight.std() > 0.1
  expected = seen['discount'].numpy() * weight[None]
  for key in ('actor_weights', 'value_weights'):
    np.testing.assert_allclose(
        seen[key].numpy(), expected, rtol=1e-4, atol=1e-5, err_msg=key)
  returns = seen['returns'].numpy()
  np.testing.assert_allclose(
      seen['actor_loss'].numpy(), -np.mean(expected * returns), rtol=1e-5)


def imagination(tmp_path, **overrides):
  """A tiny untrained BIRD agent's imagination from a random batch."""
  agent = make_agent(bird_config(tmp_path, **overrides), bird.BIRD)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  return agent, agent._imagine_ahead(outs)


def weights(agent, imag, score):
  dist = agent._dynamics.get_dist(imag)
  logprob = bird.step_confidence(dist, imag['stoch'], score)
  return bird.confidence_weights(logprob, agent._c.reweight_clip)[0].numpy()


def test_scores_agree_under_upstreams_shared_noise(tmp_path):
  # One noise vector per step for the batch: the per-sample score's noise
  # term is equal for every trajectory and standardizes away.
  agent, imag = imagination(tmp_path, shared_noise=True)
  expected, sample = (weights(agent, imag, s) for s in ('expected', 'sample'))
  assert expected.std() > 0.1
  np.testing.assert_allclose(expected, sample, atol=1e-5)  # Measured: 6e-6.
  metrics = bird.sampling_noise(
      *(bird.step_confidence(agent._dynamics.get_dist(imag), imag['stoch'], s)
        for s in ('expected', 'sample')), 1.0)
  assert metrics['confidence_noise_share'] < 1e-6
  assert metrics['confidence_weight_corr'] > 1 - 1e-5


def test_redrawn_sample_moves_only_the_per_sample_weights(tmp_path):
  agent, imag = imagination(tmp_path)
  random = np.random.RandomState(3)
  noise = random.normal(size=imag['stoch'].shape).astype(np.float32)
  redrawn = dict(imag, stoch=imag['mean'] + imag['std'] * noise)
  np.testing.assert_array_equal(
      weights(agent, imag, 'expected'), weights(agent, redrawn, 'expected'))
  moved = np.abs(
      weights(agent, imag, 'sample') - weights(agent, redrawn, 'sample'))
  assert moved.max() > 0.5, moved.max()  # Measured: 1.9 of the clip's 2.


def test_expected_weights_match_numpy_of_the_priors_spread(tmp_path):
  agent, imag = imagination(tmp_path)
  expected = numpy_confidence_weights(-np.log(imag['std'].numpy()).sum(-1), 1.0)
  np.testing.assert_allclose(
      weights(agent, imag, 'expected'), expected, rtol=1e-5, atol=1e-5)
  # Every step's std the same: every trajectory's confidence is equal.
  equal = dict(imag, std=tf.fill(tf.shape(imag['std']), 0.37))
  np.testing.assert_array_equal(weights(agent, equal, 'expected'), 1.0)


def test_sampling_noise_matches_numpy(tmp_path):
  agent, imag = imagination(tmp_path)
  dist = agent._dynamics.get_dist(imag)
  scores = [bird.step_confidence(dist, imag['stoch'], s)
            for s in ('expected', 'sample')]
  metrics = bird.sampling_noise(*scores, 1.0)
  expected, sample = (numpy_step_confidence(imag, s).sum(0)
                      for s in ('expected', 'sample'))
  np.testing.assert_allclose(
      metrics['confidence_expected_std'], expected.std(), rtol=1e-4)
  np.testing.assert_allclose(
      metrics['confidence_sample_std'], sample.std(), rtol=1e-4)
  share = (sample - expected).var() / sample.var()
  np.testing.assert_allclose(
      metrics['confidence_noise_share'], share, rtol=1e-4)
  assert 0.5 < share < 1  # Untrained and tiny: mostly noise (measured 0.94).
  correlation = np.corrcoef(
      numpy_confidence_weights(numpy_step_confidence(imag, 'expected'), 1.0),
      numpy_confidence_weights(numpy_step_confidence(imag, 'sample'), 1.0))
  np.testing.assert_allclose(
      metrics['confidence_weight_corr'], correlation[0, 1], rtol=1e-4)


def real_entropy(agent, data):
  tf.random.set_seed(7)  # The same samples for every agent.
  _, outs, _ = agent._model_loss(dreamer.preprocess(data, agent._c))
  return float(tf.reduce_mean(agent._actor(outs['feat']).entropy()))


@pytest.mark.slow  # Builds two agents and updates each eagerly.
def test_entropy_term_moves_policy_entropy_on_real_states(tmp_path):
  change = {}
  for alpha in (-100.0, 100.0):
    config = bird_config(tmp_path / str(alpha), ent_alpha=alpha, actor_lr=1e-2)
    agent = make_agent(config, bird.BIRD)
    data = random_batch(agent._c)
    before = real_entropy(agent, data)
    for _ in range(3):  # Eager: three steps cost less than a trace.
      train_eagerly(agent, data)
    change[alpha] = real_entropy(agent, data) - before
  # From the same weights on the same batches, only the sign of the term
  # differs (measured: -0.79 and +0.76 after 3 updates).
  assert change[100.0] > 0 > change[-100.0], change
  assert change[100.0] - change[-100.0] > 1.0, change


class KnownActor:
  """A policy of closed-form entropy 2 * 0.5 log(2 pi e 0.25) everywhere."""

  def __call__(self, feat):
    mean = tf.zeros(feat.shape[:-1] + [2])
    return tfd.Independent(tfd.Normal(mean, 0.5), 1)


class FeatureHead:

  def __init__(self, index):
    self.index = index

  def __call__(self, feat):
    return tfd.Independent(tfd.Normal(feat[..., self.index], 1.0), 0)


def test_soft_bird_returns_add_the_entropy_bonus(tmp_path):
  config = bird_config(tmp_path, soft=True, ent_alpha=0.2)
  agent = make_agent(config, bird.SoftBIRD)
  agent._actor = KnownActor()
  agent._reward, agent._value = FeatureHead(0), FeatureHead(1)
  data = dreamer.preprocess(random_batch(agent._c), agent._c)
  _, outs, _ = agent._model_loss(data)
  imag = agent._imagine_ahead(outs)
  returns, _ = agent._returns(imag)
  entropy = 2 * 0.5 * np.log(2 * np.pi * np.e * 0.25)
  feat = imag['feat'].numpy()
  reward, value = feat[..., 0] + 0.2 * entropy, feat[..., 1]
  pcont = np.full_like(reward, agent._c.discount)
  expected = numpy_lambda_return(
      reward[:-1], value[:-1], pcont[:-1], value[-1], agent._c.disclam)
  np.testing.assert_allclose(returns.numpy(), expected, rtol=1e-4, atol=1e-4)
  assert agent._imag_weights(outs, imag, {}) == 1.0  # No confidence weights.


def test_soft_bird_defaults_and_logs(tmp_path):
  config, given = tools.parse_flags(bird.define_config(), ['--soft', 'True'])
  bird.adjust_config(config, given)
  assert config.ent_alpha == 0.2
  config, given = tools.parse_flags(
      bird.define_config(), ['--soft', 'True', '--ent_alpha', '0.05'])
  bird.adjust_config(config, given)
  assert config.ent_alpha == 0.05
  config = bird_config(tmp_path, soft=True, ent_alpha=0.2)
  agent = make_agent(config, bird.SoftBIRD)
  metrics = train_eagerly(agent, random_batch(agent._c))
  assert np.isfinite(metrics['imag_entropy'].numpy())
  assert 'real_entropy' not in metrics and 'weight_mean' not in metrics


def test_confidence_flag_takes_its_two_scores():
  config = dreamer.parse_flags(
      bird.define_config(), ['--confidence', 'sample'], bird.CHOICES)
  assert config.confidence == 'sample'
  assert bird.define_config().confidence == 'expected'
  with pytest.raises(SystemExit) as error:
    dreamer.parse_flags(
        bird.define_config(), ['--confidence', 'mean'], bird.CHOICES)
  assert "argument --confidence: invalid choice: 'mean'" in str(error.value)


def test_fifo_replay_samples_only_newest_episodes(tmp_path):
  # Two episodes of 10 agent steps fit.
  config = bird_config(tmp_path, dataset_size=2 * 10 * 2)
  agent = make_agent(config, bird.BIRD)
  for index in range(5):
    episode = random_episode(11, seed=index)
    episode['reward'][:] = index
    tools.save_episodes(config.logdir / 'episodes', [episode])
  agent._replay.update()
  rewards = agent._replay.sample(64)['reward']
  assert set(np.unique(rewards)) == {3.0, 4.0}


@pytest.mark.slow
@pytest.mark.parametrize('soft', [False, True])
def test_bird_script_end_to_end(tmp_path, soft):
  config = dict(
      TINY, steps=120, log_images=False, deter_size=8, stoch_size=4,
      soft=soft)
  process = run_script('bird.py', f'--logdir={tmp_path}', *flags(**config))
  assert process.returncode == 0, process.stderr[-3000:]
  metrics = [m for m in read_metrics(tmp_path) if 'model_loss' in m]
  assert metrics
  if soft:
    keys = ['imag_entropy']
  else:
    keys = ['weight_mean', 'weight_std', 'confidence', 'real_entropy']
  for key in keys:
    assert all(np.isfinite(m[key]) for m in metrics), key
  assert any('test/return' in m for m in read_metrics(tmp_path))
