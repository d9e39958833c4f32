"""BIRD (Zhu et al., "Bridging Imagination and Reality for Model-Based Deep
Reinforcement Learning", NeurIPS 2020): Dreamer whose policy also maximizes the
mutual information between imagined and real trajectories (eq. 5, 8-10), and
its ablation Soft-BIRD (eq. 11-12).

  python bird.py --task dmc_hopper_hop --logdir runs/hopper_hop/bird/1
  python bird.py --task dmc_walker_run --logdir runs/walker_run/softbird/1 \
      --soft True

The model loss is Dreamer's (eq. 9); what changes is the policy objective
(eq. 10).
"""

import tools  # Sets TensorFlow's import flags; must precede its import.

import tensorflow as tf

import dreamer


def define_config():
  # Dreamer's model sizes, 200 and 30, as §5.1 ("the same architecture") and
  # its authors' code; §7 says 300 and 40 (--deter_size 300 --stoch_size 40).
  config = dreamer.define_config()
  # Env steps of the newest episodes that training samples: BIRD's FIFO
  # replay of 100k (§4.2).
  config.dataset_size = int(1e5)
  # The mutual information coefficient, weight of the real-state entropy;
  # Soft-BIRD's alpha, 0.2 by default with --soft True.
  config.ent_alpha = 1e-8
  # Confidence weights are clipped to 1 +- this.
  config.reweight_clip = 1.0
  # Each imagined step's score in the confidence: expected, its expected
  # log-density, as the authors' code computes under their sampler; sample,
  # the log-density of its own sample, their formula taken literally.
  config.confidence = 'expected'
  # Soft-BIRD: entropy-augmented returns instead of eq. 10.
  config.soft = False
  return config


def adjust_config(config, given):
  if config.soft and 'ent_alpha' not in given:
    config.ent_alpha = 0.2  # Soft-BIRD's alpha in its authors' code.


def step_confidence(dist, stoch, score):
  """Eq. 10's log P(tau_img_roll | tau_img), one term per imagined step.

  The authors' code scores each step's own prior sample, log N(s; mu, sigma)
  = -sum log sigma - 1/2 sum eps^2 - const. Their sampler (upstream's) draws
  one noise vector eps per step for the whole batch, so the eps term is the
  same for every trajectory and the batch standardization removes it: their
  weights are a function of sigma alone. Noise drawn per element, as here,
  makes it a chi-square term of its own per trajectory (std 15 nats at the
  default sizes) that says nothing about the model. 'expected' scores
  E[log N(s; mu, sigma)] = -H = -sum log sigma - const, which gives the
  authors' weights under either sampler; 'sample' the literal formula.
  """
  if score == 'expected':
    return -dist.entropy()
  return dist.log_prob(stoch)


def confidence_weights(logprob, clip):
  """Eq. 10: one weight per imagined trajectory from its confidence.

  `logprob` (horizon, trajectories) holds each step's score. Summed over the
  horizon, standardized over the batch, shifted to 1 and clipped to 1 +- clip.
  """
  confidence = tf.reduce_sum(logprob, 0)
  weight = standardize(confidence) + 1
  weight = tf.clip_by_value(weight, 1 - clip, 1 + clip)
  return tf.stop_gradient(weight), confidence


def standardize(x, resolution=1e-5):
  """(x - mean) / std over the whole batch; 0 where x is equal to rounding.

  float32 holds x to 6e-8 of its size, so the mean of equal values may be off
  by a unit in the last place and their std be that small: the authors'
  (x - mean) / (std + 1e-9) then spreads them over +-1. Centering twice makes
  the mean of such a batch exact, and a spread below `resolution` of the
  batch's mean magnitude counts as none.
  """
  # Statistics of the whole batch, also when replicas each hold a part
  # (under XLA, of each replica's part: tools.batch_mean).
  center = x - tools.batch_mean(x)
  center -= tools.batch_mean(center)
  std = tf.sqrt(tools.batch_mean(tf.square(center)))
  floor = resolution * tools.batch_mean(tf.abs(x)) + 1e-9
  return center / tf.maximum(std, floor)


def sampling_noise(expected, sample, clip):
  """What the sampler adds to the per-sample confidence of a batch: both
  confidences' std, the share of the per-sample one's variance that is noise
  (sample - expected), and the correlation of their weights (0 when either
  is constant)."""
  weight_expected, expected = confidence_weights(expected, clip)
  weight_sample, sample = confidence_weights(sample, clip)
  center = lambda x: x - tools.batch_mean(x)
  covariance = lambda x, y: tools.batch_mean(center(x) * center(y))
  variance = lambda x: covariance(x, x)
  correlation = tf.math.divide_no_nan(
      covariance(weight_expected, weight_sample),
      tf.sqrt(variance(weight_expected) * variance(weight_sample)))
  return dict(
      confidence_expected_std=tf.sqrt(variance(expected)),
      confidence_sample_std=tf.sqrt(variance(sample)),
      confidence_noise_share=tf.math.divide_no_nan(
          variance(sample - expected), variance(sample)),
      confidence_weight_corr=correlation)


class BIRD(dreamer.Dreamer):

  def _imag_weights(self, outs, imag, metrics):
    # Eq. 10, second term: the confidence of each imagined trajectory.
    dist = self._dynamics.get_dist(imag)
    scores = {
        score: step_confidence(dist, imag['stoch'], score)
        for score in ('expected', 'sample')}
    clip = self._c.reweight_clip
    weight, confidence = confidence_weights(scores[self._c.confidence], clip)
    metrics.update(
        confidence=tf.reduce_mean(confidence),
        confidence_std=tools.batch_std(confidence),
        weight_mean=tf.reduce_mean(weight), weight_std=tools.batch_std(weight),
        weight_min=tf.reduce_min(weight), weight_max=tf.reduce_max(weight))
    metrics.update(sampling_noise(scores['expected'], scores['sample'], clip))
    return weight

  def _actor_loss(self, outs, imag, returns, weights, metrics):
    loss = super()._actor_loss(outs, imag, returns, weights, metrics)
    # Eq. 10, first term: the policy's entropy on the real batch's posterior
    # states.
    feat = tf.stop_gradient(outs['feat'])
    entropy = tf.reduce_mean(self._actor(feat).entropy())
    metrics['real_entropy'] = entropy
    return loss - self._c.ent_alpha * entropy


class SoftBIRD(dreamer.Dreamer):
  """Soft-BIRD (eq. 11-12): Dreamer whose imagined rewards carry the policy's
  entropy, alpha H(pi(.|s)); no confidence weights, no real-state entropy."""

  def _imagine_ahead(self, outs):
    imag = super()._imagine_ahead(outs)
    feat = tf.stop_gradient(imag['feat'])
    imag['entropy'] = self._actor(feat).entropy()
    return imag

  def _imag_reward(self, imag):
    reward = super()._imag_reward(imag)
    return reward + self._c.ent_alpha * imag['entropy']

  def _actor_loss(self, outs, imag, returns, weights, metrics):
    metrics['imag_entropy'] = tf.reduce_mean(imag['entropy'])
    return super()._actor_loss(outs, imag, returns, weights, metrics)


CHOICES = dict(confidence=['expected', 'sample'])


if __name__ == '__main__':
  config = dreamer.parse_flags(
      define_config(), choices=CHOICES, adjust=adjust_config,
      extension=define_config)
  dreamer.main(config, SoftBIRD if config.soft else BIRD)
