"""Networks: RSSM, ConvEncoder, ConvDecoder, DenseDecoder, ActionDecoder.

Layers compute in the global precision policy; states, outputs and the
parameters of distributions are float32, so that KL, log-probs and entropies
never run in float16. No method here is a tf.function: they are traced inside
the one compiled train step, and a tf.function nested in an XLA-compiled one
makes XLA take inputs and weights as constants and recompile on every call
(measured: about 80 s and 450 MB more memory per call).
"""

import tools  # Sets TensorFlow's import flags; must precede its import.

import numpy as np
import tensorflow as tf
from tf_keras import layers as tfkl
from tensorflow_probability import distributions as tfd


class RSSM(tools.Module):
  """Recurrent state-space model: GRU path `deter`, Gaussian state `stoch`."""

  def __init__(
      self, stoch=30, deter=200, hidden=200, act=tf.nn.elu,
      shared_noise=False):
    super().__init__()
    self._activation = act
    self._shared_noise = shared_noise
    self._stoch_size = stoch
    self._deter_size = deter
    self._hidden_size = hidden
    self._cell = tfkl.GRUCell(self._deter_size)

  def initial(self, batch_size):
    dtype = tf.float32  # States are float32 in every precision.
    return dict(
        mean=tf.zeros([batch_size, self._stoch_size], dtype),
        std=tf.zeros([batch_size, self._stoch_size], dtype),
        stoch=tf.zeros([batch_size, self._stoch_size], dtype),
        deter=self._cell.get_initial_state(None, batch_size, dtype))

  def observe(self, embed, action, state=None):
    """Posteriors and priors along (batch, time) sequences."""
    if state is None:
      state = self.initial(tf.shape(action)[0])
    embed = tf.transpose(embed, [1, 0, 2])
    action = tf.transpose(action, [1, 0, 2])
    post, prior = tools.static_scan(
        lambda prev, inputs: self.obs_step(prev[0], *inputs),
        (action, embed), (state, state))
    post = {k: tf.transpose(v, [1, 0, 2]) for k, v in post.items()}
    prior = {k: tf.transpose(v, [1, 0, 2]) for k, v in prior.items()}
    return post, prior

  def imagine(self, action, state=None):
    """Priors along (batch, time) action sequences."""
    if state is None:
      state = self.initial(tf.shape(action)[0])
    assert isinstance(state, dict), state
    action = tf.transpose(action, [1, 0, 2])
    prior = tools.static_scan(self.img_step, action, state)
    prior = {k: tf.transpose(v, [1, 0, 2]) for k, v in prior.items()}
    return prior

  def get_feat(self, state):
    return tf.concat([state['stoch'], state['deter']], -1)

  def get_dist(self, state):
    return tfd.MultivariateNormalDiag(state['mean'], state['std'])

  def obs_step(self, prev_state, prev_action, embed, seed=None):
    prior = self.img_step(prev_state, prev_action)
    x = tf.concat([prior['deter'], embed], -1)
    x = self.get('obs1', tfkl.Dense, self._hidden_size, self._activation)(x)
    x = self.get('obs2', tfkl.Dense, 2 * self._stoch_size, None)(x)
    mean, std = tf.split(tf.cast(x, tf.float32), 2, -1)
    std = tf.nn.softplus(std) + 0.1
    stoch = self._sample(mean, std, seed)
    post = {'mean': mean, 'std': std, 'stoch': stoch, 'deter': prior['deter']}
    return post, prior

  def img_step(self, prev_state, prev_action):
    x = tf.concat([prev_state['stoch'], prev_action], -1)
    x = self.get('img1', tfkl.Dense, self._hidden_size, self._activation)(x)
    # Keras casts the first argument to the compute dtype, but not the states.
    x, deter = self._cell(x, [tf.cast(prev_state['deter'], x.dtype)])
    deter = tf.cast(deter[0], tf.float32)  # Keras wraps the state in a list.
    x = self.get('img2', tfkl.Dense, self._hidden_size, self._activation)(x)
    x = self.get('img3', tfkl.Dense, 2 * self._stoch_size, None)(x)
    mean, std = tf.split(tf.cast(x, tf.float32), 2, -1)
    std = tf.nn.softplus(std) + 0.1
    stoch = self._sample(mean, std)
    prior = {'mean': mean, 'std': std, 'stoch': stoch, 'deter': deter}
    return prior

  def _sample(self, mean, std, seed=None):
    # A seed (shape [2]) samples statelessly, which XLA keeps seeded.
    if self._shared_noise:  # Upstream's sampler: one noise for the batch.
      shape = tf.shape(mean)[-1:]
      noise = (
          tf.random.normal(shape) if seed is None else
          tf.random.stateless_normal(shape, seed))
      return mean + std * noise
    return self.get_dist({'mean': mean, 'std': std}).sample(seed=seed)


class ConvEncoder(tools.Module):

  def __init__(self, depth=32, act=tf.nn.relu):
    self._act = act
    self._depth = depth

  def __call__(self, obs):
    kwargs = dict(strides=2, activation=self._act)
    x = tf.reshape(obs['image'], (-1,) + tuple(obs['image'].shape[-3:]))
    x = self.get('h1', tfkl.Conv2D, 1 * self._depth, 4, **kwargs)(x)
    x = self.get('h2', tfkl.Conv2D, 2 * self._depth, 4, **kwargs)(x)
    x = self.get('h3', tfkl.Conv2D, 4 * self._depth, 4, **kwargs)(x)
    x = self.get('h4', tfkl.Conv2D, 8 * self._depth, 4, **kwargs)(x)
    shape = tf.concat([tf.shape(obs['image'])[:-3], [32 * self._depth]], 0)
    return tf.cast(tf.reshape(x, shape), tf.float32)


class ConvDecoder(tools.Module):

  def __init__(self, depth=32, act=tf.nn.relu, shape=(64, 64, 3)):
    self._act = act
    self._depth = depth
    self._shape = shape

  def __call__(self, features):
    kwargs = dict(strides=2, activation=self._act)
    x = self.get('h1', tfkl.Dense, 32 * self._depth, None)(features)
    x = tf.reshape(x, [-1, 1, 1, 32 * self._depth])
    x = self.get('h2', PointDeconv, 4 * self._depth, 5, **kwargs)(x)
    x = self.get('h3', tfkl.Conv2DTranspose, 2 * self._depth, 5, **kwargs)(x)
    x = self.get('h4', tfkl.Conv2DTranspose, 1 * self._depth, 6, **kwargs)(x)
    x = self.get('h5', tfkl.Conv2DTranspose, self._shape[-1], 6, strides=2)(x)
    mean = tf.reshape(x, tf.concat([tf.shape(features)[:-1], self._shape], 0))
    mean = tf.cast(mean, tf.float32)
    return tfd.Independent(tfd.Normal(mean, 1), len(self._shape))


class PointDeconv(tfkl.Conv2DTranspose):
  """Transposed convolution of a 1x1 input, computed as the matmul it is.

  With VALID padding its output pixel (i, j) is the input times kernel[i, j].
  TensorFlow's CPU kernel for this case took 35 s for the 2500 frames of a
  default batch on an AMD EPYC (Zen 3), two thirds of Dreamer's train step;
  the matmul took 0.2 s. The variables are the transposed convolution's, so
  checkpoints and initial weights are unchanged.
  """

  def call(self, inputs):
    if inputs.shape[1:3] != (1, 1) or self.padding != 'valid':
      return super().call(inputs)
    kernel = tf.transpose(self.kernel, [3, 0, 1, 2])  # in, h, w, out
    x = tf.reshape(inputs, [-1, kernel.shape[0]])
    x = tf.matmul(x, tf.reshape(kernel, [kernel.shape[0], -1]))
    x = tf.reshape(x, [-1] + kernel.shape[1:].as_list())
    if self.use_bias:
      x = tf.nn.bias_add(x, self.bias)
    return self.activation(x) if self.activation is not None else x


class DenseDecoder(tools.Module):

  def __init__(self, shape, layers, units, dist='normal', act=tf.nn.elu):
    self._shape = shape
    self._layers = layers
    self._units = units
    self._dist = dist
    self._act = act

  def __call__(self, features):
    x = features
    for index in range(self._layers):
      x = self.get(f'h{index}', tfkl.Dense, self._units, self._act)(x)
    x = self.get(f'hout', tfkl.Dense, np.prod(self._shape))(x)
    x = tf.reshape(x, tf.concat([tf.shape(features)[:-1], self._shape], 0))
    x = tf.cast(x, tf.float32)
    if self._dist == 'normal':
      return tfd.Independent(tfd.Normal(x, 1), len(self._shape))
    if self._dist == 'binary':
      return tfd.Independent(tfd.Bernoulli(x), len(self._shape))
    raise NotImplementedError(self._dist)


class ActionDecoder(tools.Module):

  def __init__(
      self, size, layers, units, dist='tanh_normal', act=tf.nn.elu,
      min_std=1e-4, init_std=5, mean_scale=5):
    self._size = size
    self._layers = layers
    self._units = units
    self._dist = dist
    self._act = act
    self._min_std = min_std
    self._init_std = init_std
    self._mean_scale = mean_scale

  def __call__(self, features):
    raw_init_std = np.log(np.exp(self._init_std) - 1)
    x = features
    for index in range(self._layers):
      x = self.get(f'h{index}', tfkl.Dense, self._units, self._act)(x)
    if self._dist == 'tanh_normal':
      # https://www.desmos.com/calculator/rcmcf5jwe7
      x = self.get(f'hout', tfkl.Dense, 2 * self._size)(x)
      mean, std = tf.split(tf.cast(x, tf.float32), 2, -1)
      mean = self._mean_scale * tf.tanh(mean / self._mean_scale)
      std = tf.nn.softplus(std + raw_init_std) + self._min_std
      dist = tfd.Normal(mean, std)
      dist = tfd.TransformedDistribution(dist, tools.TanhBijector())
      dist = tfd.Independent(dist, 1)
      dist = tools.SampleDist(dist)
    elif self._dist == 'onehot':
      x = self.get(f'hout', tfkl.Dense, self._size)(x)
      dist = tools.OneHotDist(tf.cast(x, tf.float32))
    else:
      raise NotImplementedError(self._dist)  # Upstream's `dist` is unbound.
    return dist
