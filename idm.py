"""IDM (Mu et al., "Model-Based Reinforcement Learning via Imagination with
Derived Memory", NeurIPS 2021): Dreamer with a robust world model (R2S2: the
RSSM plus a decoding constraint), imagination from original and derived
memory, and reliability-weighted behaviour learning.

  python idm.py --task dmc_hopper_hop --logdir runs/hopper_hop/idm/1

References are to the paper's appendix (A.1, Algorithm 1, A.5, Table 1); where
it is silent, the choices are this project's and configurable (README, "IDM").
"""

import tools  # Sets TensorFlow's import flags; must precede its import.

import tensorflow as tf
import tensorflow_probability as tfp

import dreamer
import models


def define_config():
  # Table 1: every other hyperparameter is Dreamer's.
  config = dreamer.define_config()
  # sigma_h: std of the noise on the derived deterministic state.
  config.derive_std_deter = 0.1
  # sigma_s': added to the posterior's std for the derived stochastic state.
  config.derive_std_stoch = 0.1
  # beta': weight of the decoding constraint.
  config.constraint_scale = 1.0
  # Hidden layers of the trajectory evaluator.
  config.evaluator_layers = 2
  # Units of each evaluator layer.
  config.evaluator_units = 256
  # Learning rate of the evaluator.
  config.evaluator_lr = 3e-4
  # The evaluator's label-0 transitions: model, the model's one-step
  # transitions from the real (z, a) (A.5, eq. 1); or imagined, the imagined
  # ones, whose logit also holds the shift of (z, a).
  config.evaluator_negatives = 'model'
  # c: reliability logits are clipped to [-c, c].
  config.weight_clip = 2.0
  # Clip each imagined logit to the range of the evaluator's logits on its
  # training pairs in the same step, where it is not extrapolating.
  config.logit_bound = False
  # Ablation: imagine from derived memory too.
  config.derived_starts = True
  # Ablation: weigh imagined steps by the evaluator's reliability.
  config.reliability_weights = True
  return config


def check_config(config, given):
  if config.logit_bound and config.evaluator_negatives == 'imagined':
    # The range would be taken over the very imagined logits it clips.
    raise ValueError(
        '--logit_bound True bounds imagined logits to the range of the '
        "evaluator's training logits, which with --evaluator_negatives "
        'imagined include them: it would never bind; use --evaluator_negatives '
        'model')


def derive(post, std_deter, std_stoch):
  """Algorithm 1: derived memory h' ~ N(h, sigma_h^2) and
  s' ~ N(mu_s, (sigma_s + sigma_s')^2).

  s' reuses the standard normal noise of the posterior sample s, so that with
  both sigmas zero the derived memory is the original one and the decoding
  constraint sees only the added noise, s' - s = sigma_s' eps.

  The posterior's statistics (mu_s, sigma_s, eps) enter without gradient:
  the constraint holds its target dec(h, s) fixed, so a gradient through
  sigma_s would move s' alone, and its expectation over eps, sigma_s'
  (J^T J)_dd > 0 for a decoder of Jacobian J, would shrink the posterior's
  std, which A.1 does not ask for (measured in
  runs/results/idm_constraint_gradient.md). The constraint trains the
  decoder and, through h', the deterministic path: A.1's robust model.
  """
  mean, std = tf.stop_gradient(post['mean']), tf.stop_gradient(post['std'])
  noise = tf.stop_gradient((post['stoch'] - post['mean']) / post['std'])
  std = std + std_stoch
  deter = tf.random.normal(tf.shape(post['deter']))
  return dict(
      mean=mean, std=std, stoch=mean + std * noise,
      deter=post['deter'] + std_deter * deter)


def reliability_weights(logit, clip):
  """w = exp(clip(l, -c, c)), of mean 1 over the minibatch, no gradient.

  The evaluator's logit l estimates log p(z'|z,a) / p_theta(z'|z,a), the
  importance ratio between real and model transitions that w approximates
  (A.5, eq. 1).
  """
  weight = tf.exp(tf.clip_by_value(logit, -clip, clip))
  return tf.stop_gradient(weight / tools.batch_mean(weight))


def training_range(real, model):
  """The lowest and highest logit on the evaluator's training pairs; per
  replica with several, like the percentiles below."""
  logits = tf.concat([tf.reshape(real, [-1]), tf.reshape(model, [-1])], 0)
  return tf.reduce_min(logits), tf.reduce_max(logits)


def logit_diagnostics(real, model, imagined):
  """Where the evaluator's logits lie on its training pairs (real, model) and
  on the imagined transitions it weighs, which it was not trained on: mean,
  std, 5th and 95th percentiles of each, and the share of imagined logits
  outside the training logits' range."""
  metrics = {}
  for name, logit in (('real', real), ('model', model), ('imag', imagined)):
    low, high = tf.unstack(tfp.stats.percentile(
        logit, [5.0, 95.0], interpolation='linear'))
    metrics.update({
        f'logit_{name}_mean': tools.batch_mean(logit),
        f'logit_{name}_std': tools.batch_std(logit),
        f'logit_{name}_p5': low, f'logit_{name}_p95': high})
  low, high = training_range(real, model)
  outside = tf.cast((imagined < low) | (imagined > high), tf.float32)
  metrics['logit_imag_outside'] = tools.batch_mean(outside)
  return metrics


def transition(feat, action, next_feat):
  """The evaluator's input: (feature, action, next feature), no gradient."""
  return tf.stop_gradient(tf.concat([feat, action, next_feat], -1))


class IDM(dreamer.Dreamer):

  def _model_loss(self, data):
    model_loss, outs, metrics = super()._model_loss(data)
    derived = derive(
        outs['post'], self._c.derive_std_deter, self._c.derive_std_stoch)
    # A.1, the decoding constraint: derived memory decodes to what the
    # original memory decodes to.
    image = self._decode(self._dynamics.get_feat(derived)).mode()
    target = tf.stop_gradient(outs['image_pred'].mode())
    error = tf.reduce_sum(tf.square(image - target), [-3, -2, -1])
    constraint = tf.reduce_mean(0.5 * error)
    metrics['constraint_loss'] = constraint
    # What the constraint's gradient would shrink if it reached the
    # posterior's std (derive).
    metrics['post_std'] = tf.reduce_mean(outs['post']['std'])
    outs['derived'] = derived
    # The evaluator's real transitions and, from the same real z_t and a_t+1,
    # the model's: the prior's sample at t+1 (A.5, eq. 1). Index t of a
    # sequence holds the action that led to observation t.
    feat, action = outs['feat'][:, :-1], data['action'][:, 1:]
    outs['real'] = transition(feat, action, outs['feat'][:, 1:])
    prior = self._dynamics.get_feat(outs['prior'])[:, 1:]
    outs['model'] = transition(feat, action, prior)
    model_loss += self._c.constraint_scale * constraint
    return model_loss, outs, metrics

  def _imagine_start(self, outs):
    # Algorithm 1: imagine from each original memory z_t (source 0) and each
    # derived memory z'_t (source 1).
    original, source = super()._imagine_start(outs)
    if not self._c.derived_starts:
      return original, source
    derived, _ = super()._imagine_start(dict(outs, post=outs['derived']))
    start = {k: tf.concat([original[k], derived[k]], 0) for k in original}
    return start, tf.concat([source, source + 1], 0)

  def _imag_weights(self, outs, imag, metrics):
    if not self._c.reliability_weights:
      return 1.0
    # Algorithm 1: the reliability w(z_tau) of the transition into each
    # imagined state, normalized over the steps that have lambda-returns.
    logit = self._evaluate(self._imagined_transitions(imag))[:-1]
    real, model = map(self._evaluate, self._evaluator_pairs(outs, imag))
    metrics.update(logit_diagnostics(real, model, logit))
    if self._c.logit_bound:
      logit = tf.clip_by_value(logit, *training_range(real, model))
    weight = reliability_weights(logit, self._c.weight_clip)
    metrics.update(
        weight_mean=tf.reduce_mean(weight), weight_std=tools.batch_std(weight),
        weight_min=tf.reduce_min(weight), weight_max=tf.reduce_max(weight))
    return weight

  def _actor_loss(self, outs, imag, returns, weights, metrics):
    trajectory = tf.reduce_mean(returns, 0)
    names = ['original'] + ['derived'] * self._c.derived_starts
    for index, name in enumerate(names):
      mask = tf.cast(tf.equal(imag['source'], index), trajectory.dtype)
      mean = tf.reduce_sum(trajectory * mask) / tf.reduce_sum(mask)
      metrics[f'return_{name}'] = mean
    # Algorithm 1: the actor ascends sum w(z_tau) V_lambda(z_tau); the value
    # loss is weighted alike by the base class.
    return super()._actor_loss(outs, imag, returns, weights, metrics)

  def _train_aux(self, data, outs, imag, metrics):
    if not self._c.reliability_weights:
      return
    self._train_evaluator(*self._evaluator_pairs(outs, imag), metrics)

  def _evaluator_pairs(self, outs, imag):
    """The evaluator's real transitions (label 1) and its negatives (label
    0): the model's from the same real (z, a), so that the logit estimates
    log p(z'|z,a) / p_theta(z'|z,a) (A.5, eq. 1); or the imagined ones."""
    if self._c.evaluator_negatives == 'model':
      return outs['real'], outs['model']
    return outs['real'], self._imagined_transitions(imag)

  def _train_evaluator(self, real, model, metrics):
    """Binary cross-entropy of real (1) against model (0) transitions.

    Each class weighs half, so that the optimal logit is the log ratio of
    their densities however many transitions each class has.
    """
    real, model = tf.stop_gradient(real), tf.stop_gradient(model)
    with tf.GradientTape() as tape:
      real_pred = self._evaluator(real)
      model_pred = self._evaluator(model)
      real_like = real_pred.log_prob(tf.ones(tf.shape(real)[:-1]))
      model_like = model_pred.log_prob(tf.zeros(tf.shape(model)[:-1]))
      loss = -(tf.reduce_mean(real_like) + tf.reduce_mean(model_like)) / 2
    metrics['evaluator_grad_norm'] = self._evaluator_opt(tape, loss)
    correct = lambda x: tf.reduce_mean(tf.cast(x, tf.float32))
    accuracy = (
        correct(real_pred.mean() > 0.5) + correct(model_pred.mean() < 0.5)) / 2
    metrics.update(evaluator_loss=loss, evaluator_accuracy=accuracy)

  def _imagined_transitions(self, imag):
    """The transition into every imagined state."""
    start = self._dynamics.get_feat(imag['start'])
    prev = tf.concat([start[None], imag['feat'][:-1]], 0)
    return transition(prev, imag['action'], imag['feat'])

  def _evaluate(self, transitions):
    """The evaluator's logit that a transition is real, not the model's."""
    return self._evaluator(transitions).distribution.logits

  def _build_model(self):
    super()._build_model()
    act = getattr(tf.nn, self._c.dense_act)  # As _build_model's.
    # The trajectory evaluator: a small MLP classifier, its own optimizer.
    self._evaluator = models.DenseDecoder(
        (), self._c.evaluator_layers, self._c.evaluator_units, 'binary',
        act=act)
    self._evaluator_opt = tools.Adam(
        'evaluator', [self._evaluator], self._c.evaluator_lr,
        clip=self._c.grad_clip)


CHOICES = dict(evaluator_negatives=['model', 'imagined'])


if __name__ == '__main__':
  config = dreamer.parse_flags(
      define_config(), choices=CHOICES, adjust=check_config,
      extension=define_config)
  dreamer.main(config, IDM)
