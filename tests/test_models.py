import numpy as np
import pytest
import tensorflow as tf
from tf_keras import layers as tfkl
from tf_keras import mixed_precision

import models


def test_rssm_observe_and_imagine_shapes():
  rssm = models.RSSM(stoch=4, deter=6, hidden=5)
  embed = tf.random.normal([3, 7, 10])
  action = tf.random.normal([3, 7, 2])
  post, prior = rssm.observe(embed, action)
  for state in (post, prior):
    assert state['stoch'].shape == state['mean'].shape == (3, 7, 4)
    assert state['std'].shape == (3, 7, 4) and state['deter'].shape == (3, 7, 6)
    assert np.all(state['std'].numpy() > 0.1 - 1e-6)
  assert rssm.get_feat(post).shape == (3, 7, 10)
  imagined = rssm.imagine(action[:, :5], {k: v[:, -1] for k, v in post.items()})
  assert imagined['stoch'].shape == (3, 5, 4)
  assert imagined['deter'].shape == (3, 5, 6)


def test_posterior_keeps_the_priors_deterministic_state():
  rssm = models.RSSM(stoch=4, deter=6, hidden=5)
  post, prior = rssm.observe(
      tf.random.normal([2, 5, 10]), tf.random.normal([2, 5, 2]))
  np.testing.assert_array_equal(post['deter'].numpy(), prior['deter'].numpy())
  # The posterior sees the embedding, the prior does not.
  assert not np.allclose(post['mean'].numpy(), prior['mean'].numpy())


def test_observe_matches_stepwise_obs_step():
  rssm = models.RSSM(stoch=4, deter=6, hidden=5)
  embed = tf.random.normal([2, 3, 10])
  action = tf.random.normal([2, 3, 2])
  tf.random.set_seed(1)
  post, _ = rssm.observe(embed, action)
  tf.random.set_seed(1)
  state = rssm.initial(2)
  for t in range(3):
    state, _ = rssm.obs_step(state, action[:, t], embed[:, t])
  np.testing.assert_allclose(
      post['deter'][:, -1].numpy(), state['deter'].numpy(), atol=1e-5)


def test_conv_encoder_and_decoder_shapes():
  encoder = models.ConvEncoder(depth=4)
  embed = encoder({'image': tf.zeros([2, 3, 64, 64, 3])})
  assert embed.shape == (2, 3, 128) and embed.dtype == tf.float32
  decoder = models.ConvDecoder(depth=4)
  dist = decoder(tf.zeros([2, 3, 10]))
  assert dist.mean().shape == (2, 3, 64, 64, 3)
  assert dist.log_prob(tf.zeros([2, 3, 64, 64, 3])).shape == (2, 3)


@pytest.mark.parametrize('policy', ['float32', 'mixed_bfloat16'])
def test_point_deconv_is_the_transposed_convolution(policy):
  mixed_precision.set_global_policy(policy)
  try:
    tf.random.set_seed(0)
    inputs = tf.random.normal([6, 1, 1, 64])
    ours = models.PointDeconv(16, 5, strides=2, activation=tf.nn.elu)
    theirs = tfkl.Conv2DTranspose(16, 5, strides=2, activation=tf.nn.elu)
    ours(inputs), theirs(inputs)
    weights = [tf.random.normal(v.shape) * 0.1 for v in ours.variables]
    ours.set_weights(weights), theirs.set_weights(weights)
    probe = tf.random.normal([6, 5, 5, 16])
    results = []
    for layer in (ours, theirs):
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = tf.cast(layer(inputs), tf.float32)
        loss = tf.reduce_sum(outputs * probe)
      grads = tape.gradient(loss, [inputs, layer.kernel, layer.bias])
      results.append([outputs] + grads)
  finally:
    mixed_precision.set_global_policy('float32')
  assert results[0][0].shape == (6, 5, 5, 16)
  tolerance = 1e-5 if policy == 'float32' else 2e-2
  for ours, theirs in zip(*results):
    scale = np.abs(theirs.numpy()).max()
    np.testing.assert_allclose(
        ours.numpy(), theirs.numpy(), atol=tolerance * scale)


def test_decoders_first_deconvolution_keeps_upstreams_variables():
  decoder = models.ConvDecoder(depth=4)
  decoder(tf.zeros([2, 10]))
  layer = decoder._modules['h2']
  assert isinstance(layer, tfkl.Conv2DTranspose)
  assert [v.shape for v in layer.variables] == [(5, 5, 16, 128), (16,)]


def test_dense_decoder_distributions():
  normal = models.DenseDecoder((), 2, 8)(tf.zeros([4, 5]))
  assert normal.mode().shape == normal.log_prob(tf.zeros(4)).shape == (4,)
  binary = models.DenseDecoder((), 2, 8, 'binary')(tf.zeros([4, 5]))
  assert binary.mean().shape == (4,) and np.all((binary.mean().numpy() >= 0))


def test_action_decoder_bounded_samples_and_initial_std():
  actor = models.ActionDecoder(3, 2, 8, init_std=5.0)
  dist = actor(tf.zeros([1000, 6]))
  sample = dist.sample().numpy()
  assert sample.shape == (1000, 3) and np.all(np.abs(sample) <= 1)
  # Zero features: the pre-tanh std is init_std, so most actions are near
  # the bounds.
  assert np.mean(np.abs(sample) > 0.9) > 0.6
  assert np.all(np.isfinite(dist.entropy().numpy()))
  assert np.all(np.abs(dist.mode().numpy()) <= 1)


def test_shared_noise_is_upstreams_sampler():
  embed = tf.random.normal([5, 4, 10])
  action = tf.random.normal([5, 4, 2])
  for shared in (False, True):
    rssm = models.RSSM(stoch=3, deter=6, hidden=5, shared_noise=shared)
    post, prior = rssm.observe(embed, action)
    for state in (post, prior):
      noise = ((state['stoch'] - state['mean']) / state['std']).numpy()
      # Upstream drew noise of the event's shape only: one vector for every
      # batch element at a step, another at the next step.
      same = np.allclose(noise, noise[:1], atol=1e-5)
      assert same == shared
      assert not np.allclose(noise[:, 0], noise[:, 1])
      assert np.abs(noise).max() < 6
