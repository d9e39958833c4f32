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
  # FIFO replay of the newest 100k env steps (§4.2).
  config.dataset_size = int(1e5)
  # The mutual information coefficient; Soft-BIRD's alpha is 0.2.
  config.ent_alpha = 1e-8
  config.reweight_clip = 1.0
  config.soft = False  # Soft-BIRD: entropy-augmented returns, not eq. 10.
  return config


def adjust_config(config, given):
  if config.soft and 'ent_alpha' not in given:
    config.ent_alpha = 0.2  # Soft-BIRD's alpha in its authors' code.


def confidence_weights(logprob, clip):
  """Eq. 10: one weight per imagined trajectory from its confidence.

  `logprob` (horizon, trajectories) holds each step's log-density of its own
  sampled state. Summed over the horizon, standardized over the batch,
  shifted to 1 and clipped to 1 +- clip.
  """
  confidence = tf.reduce_sum(logprob, 0)
  # Statistics of the whole batch, also when replicas each hold a part.
  mean, std = tools.batch_mean(confidence), tools.batch_std(confidence)
  weight = (confidence - mean) / (std + 1e-9) + 1
  weight = tf.clip_by_value(weight, 1 - clip, 1 + clip)
  return tf.stop_gradient(weight), confidence


class BIRD(dreamer.Dreamer):

  def _imag_weights(self, imag, metrics):
    # Eq. 10, second term: log P(tau_img_roll | tau_img) scores each step's
    # own prior sample.
    logprob = self._dynamics.get_dist(imag).log_prob(imag['stoch'])
    weight, confidence = confidence_weights(logprob, self._c.reweight_clip)
    metrics.update(
        confidence=tf.reduce_mean(confidence),
        confidence_std=tools.batch_std(confidence),
        weight_mean=tf.reduce_mean(weight), weight_std=tools.batch_std(weight),
        weight_min=tf.reduce_min(weight), weight_max=tf.reduce_max(weight))
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


if __name__ == '__main__':
  config = dreamer.parse_flags(define_config(), adjust=adjust_config)
  dreamer.main(config, SoftBIRD if config.soft else BIRD)
