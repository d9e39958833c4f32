"""IDM (Mu et al., "Model-Based Reinforcement Learning via Imagination with Derived Memory",
NeurIPS 2021): Dreamer with a robust world model (R2S2: the RSSM plus a decoding constraint),
imagination from original and derived memory, and reliability-weighted behaviour learning.

  python idm.py --task dmc_hopper_hop --logdir runs/hopper_hop/idm/1

References are to the paper's appendix (A.1, Algorithm 1, Table 1); where it is silent the
choices are this project's and configurable (README, "IDM").
"""

import tools  # Sets TensorFlow's import flags; must precede the TensorFlow import.

import tensorflow as tf

import dreamer
import models


def define_config():
  config = dreamer.define_config()  # Table 1: every other hyperparameter is Dreamer's.
  config.derive_std_deter = 0.1  # sigma_h of the derived deterministic state.
  config.derive_std_stoch = 0.1  # sigma_s' added to the posterior's std.
  config.constraint_scale = 1.0  # beta', the decoding constraint's penalty.
  config.evaluator_layers = 2
  config.evaluator_units = 256
  config.evaluator_lr = 3e-4
  config.weight_clip = 2.0  # c: reliability logits are clipped to [-c, c].
  return config


def derive(post, std_deter, std_stoch):
  """Algorithm 1: derived memory h' ~ N(h, sigma_h^2), s' ~ N(mu_s, (sigma_s + sigma_s')^2).

  s' reuses the standard normal noise of the posterior sample s, so with both sigmas zero the
  derived memory is the original one and the decoding constraint sees only the added noise.
  """
  noise = (post['stoch'] - post['mean']) / post['std']
  std = post['std'] + std_stoch
  return dict(
      mean=post['mean'], std=std, stoch=post['mean'] + std * noise,
      deter=post['deter'] + std_deter * tf.random.normal(tf.shape(post['deter'])))


def reliability_weights(logit, clip):
  """w = exp(clip(l, -c, c)) normalized to mean 1 over the minibatch, without gradient.

  The evaluator's logit l estimates log p(z'|z,a) / p_theta(z'|z,a), the importance ratio
  between real and model transitions that w approximates (A.5, eq. 1).
  """
  weight = tf.exp(tf.clip_by_value(logit, -clip, clip))
  return tf.stop_gradient(weight / tools.batch_mean(weight))


class IDM(dreamer.Dreamer):

  def _model_loss(self, data):
    model_loss, outs, metrics = super()._model_loss(data)
    derived = derive(outs['post'], self._c.derive_std_deter, self._c.derive_std_stoch)
    # A.1, decoding constraint: what derived memory decodes to stays what the original does.
    image = self._decode(self._dynamics.get_feat(derived)).mode()
    target = tf.stop_gradient(outs['image_pred'].mode())
    constraint = tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(image - target), [-3, -2, -1]))
    metrics['constraint_loss'] = constraint
    outs.update(derived=derived, action=data['action'])
    return model_loss + self._c.constraint_scale * constraint, outs, metrics

  def _imagine_start(self, outs):
    # Algorithm 1: imagine from each original memory z_t and each derived memory z'_t.
    original = super()._imagine_start(outs)
    derived = super()._imagine_start(dict(outs, post=outs['derived']))
    return {k: tf.concat([original[k], derived[k]], 0) for k in original}

  def _imag_weights(self, imag, outs, metrics):
    # Algorithm 1: reliability w(z_tau) of the transition into each imagined state, normalized
    # over the steps that have lambda-returns.
    logit = self._evaluate(self._imagined_transitions(imag, outs))[:-1]
    weight = reliability_weights(logit, self._c.weight_clip)
    metrics.update(
        weight_mean=tf.reduce_mean(weight), weight_std=tools.batch_std(weight),
        weight_min=tf.reduce_min(weight), weight_max=tf.reduce_max(weight))
    return weight

  def _actor_loss(self, imag, returns, weights, outs, metrics):
    original, derived = tf.split(returns, 2, axis=1)  # The starts' order in _imagine_start.
    metrics.update(
        return_original=tf.reduce_mean(original), return_derived=tf.reduce_mean(derived))
    # Algorithm 1: the actor ascends sum w(z_tau) V_lambda(z_tau); the value loss is weighted
    # alike by the base class.
    return super()._actor_loss(imag, returns, weights, outs, metrics)

  def _train_aux(self, outs, imag, metrics):
    feat, action = tf.stop_gradient(outs['feat']), outs['action']
    # Index t of a sequence holds the action that led to observation t.
    real = tf.concat([feat[:, :-1], action[:, 1:], feat[:, 1:]], -1)
    self._train_evaluator(real, self._imagined_transitions(imag, outs), metrics)

  def _train_evaluator(self, real, imagined, metrics):
    """Binary cross-entropy: real posterior transitions (1) against imagined ones (0).

    Each class weighs half, so the optimal logit is log p_real / p_imagined although there are
    far more imagined transitions.
    """
    real, imagined = tf.stop_gradient(real), tf.stop_gradient(imagined)
    with tf.GradientTape() as tape:
      real_pred = self._evaluator(real)
      imag_pred = self._evaluator(imagined)
      loss = -(tf.reduce_mean(real_pred.log_prob(tf.ones(tf.shape(real)[:-1]))) +
               tf.reduce_mean(imag_pred.log_prob(tf.zeros(tf.shape(imagined)[:-1])))) / 2
    metrics['evaluator_grad_norm'], _ = self._evaluator_opt(tape, loss)
    accuracy = (tf.reduce_mean(tf.cast(real_pred.mean() > 0.5, tf.float32)) +
                tf.reduce_mean(tf.cast(imag_pred.mean() < 0.5, tf.float32))) / 2
    metrics.update(evaluator_loss=loss, evaluator_accuracy=accuracy)

  def _imagined_transitions(self, imag, outs):
    """(feature_tau, action_tau, feature_tau+1) for every imagined step, starts included."""
    start = self._dynamics.get_feat(self._imagine_start(outs))
    prev = tf.concat([start[None], imag['feat'][:-1]], 0)
    return tf.stop_gradient(tf.concat([prev, imag['action'], imag['feat']], -1))

  def _evaluate(self, transitions):
    """The evaluator's logit that a transition is real rather than imagined."""
    return self._evaluator(transitions).distribution.logits

  def _build_model(self):
    super()._build_model()
    act = dreamer.ACTIVATIONS[self._c.dense_act]
    # The trajectory evaluator: a small MLP classifier with its own optimizer.
    self._evaluator = models.DenseDecoder(
        (), self._c.evaluator_layers, self._c.evaluator_units, 'binary', act=act)
    self._evaluator_opt = tools.Adam(
        'evaluator', [self._evaluator], self._c.evaluator_lr, clip=self._c.grad_clip)


if __name__ == '__main__':
  dreamer.main(dreamer.parse_flags(define_config()), IDM)
