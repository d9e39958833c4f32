"""Dreamer (Hafner et al., "Dream to Control", ICLR 2020) on the Control Suite.

  python dreamer.py --task dmc_walker_walk --logdir runs/walker/dreamer/1

The train step calls methods that subclasses replace one at a time (bird.py,
idm.py): _model_loss, _imagine_start, _imagine_ahead, _imag_reward, _returns,
_imag_weights, _actor_loss, _value_loss, _train_aux.
"""

import collections
import datetime
import functools
import importlib.metadata
import json
import os
import pathlib
import random
import subprocess
import sys

import tools  # Sets TensorFlow's import flags; must precede its import.

import numpy as np
import tensorflow as tf
from tf_keras import mixed_precision as prec

tf.get_logger().setLevel('ERROR')

from tensorflow_probability import distributions as tfd

import models
import wrappers


def define_config():
  """Every key and its default; the comment above a key is its --help."""
  gpus = tools.gpu_generations()
  config = tools.AttrDict()
  # General.
  # Where the run writes episodes, metrics, checkpoint; resumes if present.
  config.logdir = pathlib.Path('.')
  # Seeds numpy, TensorFlow, the policy's samples and the environments.
  config.seed = 0
  # Env steps to train for (after action repeat).
  config.steps = int(5e6)
  # Env steps between test episodes and checkpoints.
  config.eval_every = int(1e4)
  # Test episodes at each evaluation; the curve shows their mean return.
  config.eval_episodes = 1
  # Env steps between metric summaries (metrics.jsonl, TensorBoard).
  config.log_every = int(1e3)
  # Write the agent's scalar metrics.
  config.log_scalars = True
  # Write the open-loop prediction and test episode GIFs.
  config.log_images = True
  # Let GPU memory grow on demand instead of taking it all.
  config.gpu_growth = True
  # 32, 16 (float16, loss scaling) or bf16; by default bfloat16 where it is
  # computed natively (GPUs from Ampere on, CPUs with AVX512-BF16 or AMX),
  # float16 on older GPUs, float32 on other CPUs.
  if gpus:
    config.precision = 'bf16' if min(gpus) >= 8 else 16
  else:
    config.precision = 'bf16' if tools.cpu_bfloat16() else 32
  # Compile the train step with XLA; default on GPUs (2.4x slower on CPUs).
  config.jit = bool(gpus)
  # TensorFlow's deterministic ops: repeatable, slower.
  config.deterministic = False
  # Train steps in a row with non-finite updates before the run stops.
  config.nonfinite_limit = 10
  # Environment.
  # dmc_<domain>_<task>, a Control Suite task; atari_<game>, an Atari game;
  # gym_<id>, a Gymnasium environment (ATARI's or GYM's defaults apply to
  # keys not given).
  config.task = 'dmc_walker_walk'
  # Environments collecting in parallel, each of train and test.
  config.envs = 1
  # How environments run: none (in this process), thread or process.
  config.parallel = 'none'
  # Env steps per agent step; the action repeats, one frame is observed.
  config.action_repeat = 2
  # Env steps per episode.
  config.time_limit = 1000
  # Env steps of uniform random actions collected before training.
  config.prefill = 5000
  # Std of Gaussian noise added to test actions.
  config.eval_noise = 0.0
  # Rewards as given (none) or squashed by tanh, for the model to predict.
  config.clip_rewards = 'none'
  # Atari: one grayscale channel; upstream's make_env observes RGB.
  config.grayscale = False
  # Model.
  # Units of the RSSM's deterministic (GRU) state.
  config.deter_size = 200
  # Dimensions of the RSSM's stochastic (Gaussian) state.
  config.stoch_size = 30
  # Units of each dense layer of reward, value and actor.
  config.num_units = 400
  # Activation of the dense layers.
  config.dense_act = 'elu'
  # Activation of the convolutions.
  config.cnn_act = 'relu'
  # Channels of the first convolution; the others are multiples.
  config.cnn_depth = 32
  # Learn a discount (continuation) predictor for episodes that end early;
  # default True on atari_ and gym_ tasks, whose terminations have discount
  # 0 (a time limit's discount is 1).
  config.pcont = False
  # KL below this many nats is not penalized.
  config.free_nats = 3.0
  # Free nats for each step's KL, then the mean, as the Dreamer paper's own
  # TF1 code; upstream frees the batch's mean KL instead.
  config.free_nats_per_step = False
  # Weight of the KL in the model loss.
  config.kl_scale = 1.0
  # Weight of the discount predictor's loss.
  config.pcont_scale = 10.0
  # Decoupled weight decay of every optimizer.
  config.weight_decay = 0.0
  # Regular expression of the variables that weight decay applies to.
  config.weight_decay_pattern = r'.*'
  # One noise vector for every state of a batch, as upstream's RSSM sampled.
  config.shared_noise = False
  # Training.
  # Sequences per train batch.
  config.batch_size = 50
  # Steps per sequence; the imagination starts from each.
  config.batch_length = 50
  # Env steps between train phases.
  config.train_every = 1000
  # Train steps per phase.
  config.train_steps = 100
  # Train steps of the first phase.
  config.pretrain = 100
  # Learning rate of the world model.
  config.model_lr = 6e-4
  # Learning rate of the value.
  config.value_lr = 8e-5
  # Learning rate of the actor.
  config.actor_lr = 8e-5
  # Global norm each optimizer clips its gradient to.
  config.grad_clip = 100.0
  # Adam's epsilon: upstream's (Keras's default). The Dreamer paper's own
  # TF1 code used 1e-4, which stalls updates whose gradients are that small.
  config.adam_eps = 1e-7
  # Sample sequence starts that favour episodes' ends.
  config.dataset_balance = False
  # Env steps of the newest episodes that training samples; 0 keeps all.
  config.dataset_size = 0
  # Behavior.
  # Discount of the imagined rewards.
  config.discount = 0.99
  # Lambda of the imagined returns.
  config.disclam = 0.95
  # Imagination steps.
  config.horizon = 15
  # The actor's distribution: tanh_normal, or onehot for discrete actions.
  config.action_dist = 'tanh_normal'
  # The actor's initial std, before the tanh.
  config.action_init_std = 5.0
  # Exploration while collecting: additive_gaussian or completely_random
  # (continuous actions), epsilon_greedy (onehot).
  config.expl = 'additive_gaussian'
  # Std of the exploration noise; epsilon of epsilon_greedy.
  config.expl_amount = 0.3
  # Env steps over which the exploration noise halves; 0: constant.
  config.expl_decay = 0.0
  # Lowest exploration noise once decayed.
  config.expl_min = 0.0
  return config


class Dreamer(tools.Module):

  _NEWER = frozenset({'_train_start', '_updates'})

  def __init__(self, config, datadir, actspace, logger, strategy=None):
    self._c = config
    self._datadir = pathlib.Path(datadir)
    self._actspace = actspace
    self._actdim = actspace.n if hasattr(actspace, 'n') else actspace.shape[0]
    self._logger = logger
    self._random = np.random.RandomState(config.seed)
    self._step = tf.Variable(count_steps(datadir, config), dtype=tf.int64)
    # The train schedule, checkpointed: the env step of the first phase and
    # the updates run since; read only when a phase may be due, since a
    # read costs the host about 0.2 ms (measured on a busy AMD EPYC Zen 3).
    with tf.device('CPU:0'):
      self._train_start = tf.Variable(-1, dtype=tf.int64)
      self._updates = tf.Variable(0, dtype=tf.int64)
    self._next_train = 0
    self._should_log = tools.Every(config.log_every)
    self._metrics = collections.defaultdict(list)
    self._strategy = strategy or make_strategy()
    self._device = 'GPU:0' if tf.config.list_logical_devices('GPU') else 'CPU:0'
    replicas = self._strategy.num_replicas_in_sync
    if config.batch_size % replicas:
      raise tools.ConfigError(
          f'--batch_size {config.batch_size} does not split evenly over '
          f'{replicas} devices')
    self._replay = tools.Replay(
        datadir, config.batch_length,
        config.dataset_size // config.action_repeat, config.dataset_balance,
        config.seed)
    with self._strategy.scope():
      self._build_model()
      names = self._build_variables()
    # The train step's metrics, summed over each log interval, and its
    # skipped updates, counted on the device outside the strategy: a train
    # step reads nothing back, and checkpoints hold neither.
    self._sums = tools.Sums(names + ['skipped_updates'])
    self._nonfinite = tools.Streak()
    if replicas == 1:
      self._train_fn = tf.function(
          self._train_recorded, jit_compile=config.jit, autograph=False)
    else:
      self._compute_fn = tf.function(
          self._compute, jit_compile=True, autograph=False)
      self._train_fn = tf.function(self._train_replicas, autograph=False)
    # XLA halves the batch-1 policy's overhead, also on CPUs (measured);
    # other devices' variables are out of its reach.
    self._policy_fn = tf.function(
        self.policy, jit_compile=replicas == 1, autograph=False)
    self._openl_fn = tf.function(self._openl, autograph=False)
    self._model_error_fn = tf.function(self._model_error, autograph=False)
    self._held = np.random.RandomState(config.seed + 1)  # For model_error.

  def __call__(self, obs, reset, state=None, training=True):
    step = self._step.numpy().item() if training else None
    if state is not None and reset.any():
      mask = tf.cast(1 - reset, tf.float32)[:, None]
      state = tf.nest.map_structure(lambda x: x * mask, state)
    n = self._train_due(step) if training else 0
    if n > 0:
      log = self._should_log(step)
      pretrain = int(self._updates) < self._c.pretrain
      print(f'Training for {n} steps.')
      self._replay.update()
      name = 'Pretraining' if pretrain else 'Training'
      # The next batch is sampled and sent to the device while a step runs.
      prefetch = self._replay.prefetch(
          self._c.batch_size, n, convert=self._batch)
      done = 0
      with tools.Progress(name, n, 'train steps') as progress:
        with prefetch as batches:
          for data, tensors in batches:
            if tools.STOP.requested:
              break
            log_images = self._c.log_images and log and not done
            self.train(data, log_images, tensors)
            done += 1
            progress.update()
      self._updates.assign_add(done)
      self._check_finite()
      if log:
        self._model_error_summaries()
        self._write_summaries()
    if state is None:
      latent = self._dynamics.initial(len(obs['image']))
      action = tf.zeros((len(obs['image']), self._actdim), tf.float32)
      state = (latent, action)
    obs = {k: tf.convert_to_tensor(v) for k, v in obs.items()}
    amount = tf.constant(self._expl_amount(step, training), tf.float32)
    seed = tf.constant(self._random.randint(2 ** 31, size=2), tf.int32)
    action, state = self._policy_fn(obs, state, training, amount, seed)
    return action.numpy(), state

  def policy(self, obs, state, training, amount, seed):
    # Stateless samples from the seed input: XLA ignores the global seed.
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    latent, action = state
    embed = self._encode(preprocess(obs, self._c))
    latent, _ = self._dynamics.obs_step(latent, action, embed, seeds[0])
    feat = self._dynamics.get_feat(latent)
    if training:
      action = self._actor(feat).sample(seed=seeds[1])
    else:
      action = self._actor(feat).mode(seed=seeds[1])
    action = self._exploration(action, training, amount, seeds[2])
    state = (latent, action)
    if training:  # Counted here: an eager assign_add took 0.15 ms more.
      count = tf.shape(action, tf.int64)[0] * self._c.action_repeat
      self._step.assign_add(count)
    return action, state

  def _train_due(self, step):
    """The updates owed at this env step: `pretrain` at the first call, then
    `train_steps` every `train_every` env steps from it, less those run. So
    a resumed run finishes a phase a stop cut short and trains on the grid
    of a run never stopped."""
    if step < self._next_train:
      return 0
    if int(self._train_start) < 0:
      self._train_start.assign(step)
    start = int(self._train_start)
    phases = (step - start) // self._c.train_every
    self._next_train = start + (phases + 1) * self._c.train_every
    return (self._c.pretrain + phases * self._c.train_steps
            - int(self._updates))

  def load(self, filename):
    restored = super().load(filename)
    if '_updates' not in restored:
      self._schedule_from_optimizer()
    self._next_train = 0
    self.sync_step()

  def _schedule_from_optimizer(self):
    # A checkpoint older than the schedule: the updates are the world
    # model's, its grid unknown, so a phase cut short finishes now and the
    # next starts after `train_every` env steps.
    updates = int(self._model_opt.iterations)
    phases = -(-max(0, updates - self._c.pretrain)
               // max(1, self._c.train_steps))  # Rounded up.
    self._updates.assign(updates)
    self._train_start.assign(self.step - phases * self._c.train_every)

  @property
  def step(self):
    return int(self._step.numpy())

  def sync_step(self):
    # Episodes written after the checkpoint count; a lost unfinished one does
    # not go back.
    self._step.assign(max(self.step, count_steps(self._datadir, self._c)))

  def train(self, data, log_images=False, tensors=None):
    """One update of every learner on a batch of sequences; its metrics, on
    the device. `tensors`: the batch as `_batch` converted it, if it did."""
    if tensors is None:
      data, tensors = self._batch(data)
    metrics = self._train_fn(tensors)
    if log_images:
      self._image_summaries(data)
    return metrics

  def _batch(self, data):
    """The batch's arrays, and the train step's input: tensors on the
    device, split over the replicas when there are several."""
    data = {k: data[k] for k in tools.EPISODE_KEYS}
    replicas = self._strategy.num_replicas_in_sync
    if replicas == 1:
      with tf.device(self._device):
        return data, {k: tf.identity(v) for k, v in data.items()}
    size = self._c.batch_size // replicas
    tensors = self._strategy.experimental_distribute_values_from_function(
        lambda ctx: {k: v[ctx.replica_id_in_sync_group * size:][:size]
                     for k, v in data.items()})
    return data, tensors

  def _train(self, data):
    data = preprocess(data, self._c)
    with tf.GradientTape() as model_tape:
      model_loss, outs, metrics = self._model_loss(data)
    with tf.GradientTape() as actor_tape:
      imag = self._imagine_ahead(outs)
      returns, discount = self._returns(imag)
      weights = discount * self._imag_weights(outs, imag, metrics)
      actor_loss = self._actor_loss(outs, imag, returns, weights, metrics)
    with tf.GradientTape() as value_tape:
      value_loss = self._value_loss(imag, returns, weights)
    model_norm = self._model_opt(model_tape, model_loss)
    actor_norm = self._actor_opt(actor_tape, actor_loss)
    value_norm = self._value_opt(value_tape, value_loss)
    self._train_aux(data, outs, imag, metrics)
    metrics.update(
        model_loss=model_loss, actor_loss=actor_loss, value_loss=value_loss,
        model_grad_norm=model_norm, actor_grad_norm=actor_norm,
        value_grad_norm=value_norm)
    feat = outs['feat']
    metrics['action_ent'] = tf.reduce_mean(self._actor(feat).entropy())
    return metrics

  def _model_loss(self, data):
    """Eq. 10: the likelihoods of images and rewards, minus the KL."""
    embed = self._encode(data)
    post, prior = self._dynamics.observe(embed, data['action'])
    feat = self._dynamics.get_feat(post)
    image_pred = self._decode(feat)
    reward_pred = self._reward(feat)
    likes = tools.AttrDict()
    likes.image = tf.reduce_mean(image_pred.log_prob(data['image']))
    likes.reward = tf.reduce_mean(reward_pred.log_prob(data['reward']))
    if self._c.pcont:
      pcont_pred = self._pcont(feat)
      pcont_target = self._c.discount * data['discount']
      likes.pcont = tf.reduce_mean(pcont_pred.log_prob(pcont_target))
      likes.pcont *= self._c.pcont_scale
    prior_dist = self._dynamics.get_dist(prior)
    post_dist = self._dynamics.get_dist(post)
    kl = tfd.kl_divergence(post_dist, prior_dist)
    if self._c.free_nats_per_step:
      # Each step's KL above free nats is penalized, whatever the mean is.
      div = tf.reduce_mean(tf.maximum(kl, self._c.free_nats))
    else:
      # max(KL, free nats) decided on the whole batch: with several
      # replicas, each keeps its share of the batch's gradient (under XLA,
      # each decides on its own part: tools.batch_mean).
      clamped = tools.batch_mean(kl) <= self._c.free_nats
      div = tf.where(clamped, self._c.free_nats, tf.reduce_mean(kl))
    model_loss = self._c.kl_scale * div - sum(likes.values())
    outs = dict(
        embed=embed, post=post, prior=prior, feat=feat, image_pred=image_pred)
    metrics = dict(
        prior_ent=tf.reduce_mean(prior_dist.entropy()),
        post_ent=tf.reduce_mean(post_dist.entropy()), div=div)
    for name, logprob in likes.items():
      metrics[name + '_loss'] = -logprob
    return model_loss, outs, metrics

  def _imag_reward(self, imag):
    return self._reward(imag['feat']).mode()

  def _returns(self, imag):
    """Eq. 6: lambda-returns, and each step's chance to be reached."""
    reward = self._imag_reward(imag)
    if self._c.pcont:
      pcont = self._pcont(imag['feat']).mean()
    else:
      pcont = self._c.discount * tf.ones_like(reward)
    value = self._value(imag['feat']).mode()
    returns = tools.lambda_return(
        reward[:-1], value[:-1], pcont[:-1],
        bootstrap=value[-1], lambda_=self._c.disclam, axis=0)
    discount = tf.stop_gradient(tf.math.cumprod(tf.concat(
        [tf.ones_like(pcont[:1]), pcont[:-2]], 0), 0))
    return returns, discount

  def _imag_weights(self, outs, imag, metrics):
    """Weights of imagined steps in the actor and value losses."""
    return 1.0

  def _actor_loss(self, outs, imag, returns, weights, metrics):
    """Eq. 7: maximize the lambda-returns of imagined trajectories."""
    return -tf.reduce_mean(weights * returns)

  def _value_loss(self, imag, returns, weights):
    """Eq. 8: regress the values to the lambda-returns."""
    value_pred = self._value(imag['feat'])[:-1]
    target = tf.stop_gradient(returns)
    return -tf.reduce_mean(weights * value_pred.log_prob(target))

  def _train_aux(self, data, outs, imag, metrics):
    """Trains learners besides the model, actor and value: none here."""

  def _train_recorded(self, data):
    return self._record(self._train_counted(data))

  def _train_counted(self, data):
    """_train, and how many of its updates were skipped as non-finite."""
    with tools.updates() as finite:
      metrics = self._train(data)
    metrics['skipped_updates'] = tools.skipped(finite)
    return metrics

  def _train_replicas(self, data):
    metrics = self._strategy.run(self._replica_step, (data,))
    mean = tf.distribute.ReduceOp.MEAN
    return self._record({
        k: self._strategy.reduce(mean, v, axis=None)
        for k, v in metrics.items()})

  def _replica_step(self, data):
    if not self._c.jit:
      return self._train_counted(data)
    # XLA cannot compile the replicas' all-reduce: each replica compiles its
    # losses and gradients on its own device, and the averaged updates are
    # applied outside XLA.
    device = tf.nest.flatten(tf.distribute.get_replica_context().devices)[0]
    with tf.device(device):
      metrics, updates = self._compute_fn(data)
    with tools.updates() as finite:
      for optimizer, (loss, grads) in zip(self._deferred, updates):
        norm, _ = optimizer.apply(loss, grads)
        metrics[f'{optimizer.name}_grad_norm'] = norm
    metrics['skipped_updates'] = tools.skipped(finite)
    return metrics

  def _compute(self, data):
    with tools.deferred_updates() as deferred:
      metrics = self._train(data)
    self._deferred = [optimizer for optimizer, _, _ in deferred]
    return metrics, [(loss, grads) for _, loss, grads in deferred]

  def _record(self, metrics):
    """The step's metrics into the interval's sums, and whether it skipped
    an update into the count of such steps in a row, on the device."""
    self._sums.add(metrics)
    self._nonfinite.update(metrics['skipped_updates'] > 0)
    return metrics

  def _check_finite(self):
    # Read once per train phase: the run stops at the end of the phase in
    # which the limit was reached.
    steps = self._nonfinite.read()
    if steps >= self._c.nonfinite_limit:
      raise tools.NonFiniteError(
          f'{steps} train steps in a row had a non-finite loss or gradient '
          f'(--nonfinite_limit {self._c.nonfinite_limit}); their updates '
          'were skipped')

  def _build_model(self):
    acts = dict(
        elu=tf.nn.elu, relu=tf.nn.relu, swish=tf.nn.swish,
        leaky_relu=tf.nn.leaky_relu)
    cnn_act = acts[self._c.cnn_act]
    act = acts[self._c.dense_act]
    self._encode = models.ConvEncoder(self._c.cnn_depth, cnn_act)
    self._dynamics = models.RSSM(
        self._c.stoch_size, self._c.deter_size, self._c.deter_size,
        shared_noise=self._c.shared_noise)
    self._decode = models.ConvDecoder(
        self._c.cnn_depth, cnn_act, image_shape(self._c))
    self._reward = models.DenseDecoder((), 2, self._c.num_units, act=act)
    if self._c.pcont:
      self._pcont = models.DenseDecoder(
          (), 3, self._c.num_units, 'binary', act=act)
    self._value = models.DenseDecoder((), 3, self._c.num_units, act=act)
    self._actor = models.ActionDecoder(
        self._actdim, 4, self._c.num_units, self._c.action_dist,
        init_std=self._c.action_init_std, act=act)
    model_modules = [self._encode, self._dynamics, self._decode, self._reward]
    if self._c.pcont:
      model_modules.append(self._pcont)
    Optimizer = functools.partial(
        tools.Adam, wd=self._c.weight_decay, clip=self._c.grad_clip,
        wdpattern=self._c.weight_decay_pattern, eps=self._c.adam_eps)
    self._model_opt = Optimizer('model', model_modules, self._c.model_lr)
    self._value_opt = Optimizer('value', [self._value], self._c.value_lr)
    self._actor_opt = Optimizer('actor', [self._actor], self._c.actor_lr)

  def _build_variables(self):
    # One eager pass over a dummy batch creates every variable, optimizer
    # state included, without updating any: checkpoints load before
    # training, and the step traces once.
    data = dict(
        image=np.zeros((1, 2) + image_shape(self._c), np.uint8),
        action=np.zeros((1, 2, self._actdim), np.float32),
        reward=np.zeros((1, 2), np.float32),
        discount=np.ones((1, 2), np.float32))
    with tools.Adam.building():
      metrics = self._train(data)
    state = (self._dynamics.initial(2), tf.zeros([2, self._actdim]))
    seed = tf.zeros([2], tf.int32)
    self.policy({'image': data['image'][0]}, state, False, 0.0, seed)
    return list(metrics)

  def _expl_amount(self, step, training):
    # An input of the compiled policy, which would retrace for a constant.
    if training:
      amount = self._c.expl_amount
      if self._c.expl_decay:
        amount *= 0.5 ** (step / self._c.expl_decay)
      if self._c.expl_min:
        amount = max(self._c.expl_min, amount)
    else:
      amount = self._c.eval_noise
    return amount

  def _exploration(self, action, training, amount, seed):
    if not training and not self._c.eval_noise:
      return action
    if self._c.expl == 'additive_gaussian':
      noisy = tfd.Normal(action, amount).sample(seed=seed)
      return tf.clip_by_value(noisy, -1, 1)
    if self._c.expl == 'completely_random':
      return tf.random.stateless_uniform(action.shape, seed, -1, 1)
    if self._c.expl == 'epsilon_greedy':
      seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      indices = tfd.Categorical(0 * action).sample(seed=seeds[0])
      # One draw per row, broadcast over its actions (upstream's [batch]
      # condition fails for more than one environment).
      explore = tf.random.stateless_uniform(tf.shape(action)[:1], seeds[1])
      return tf.where(
          explore[:, None] < amount,
          tf.one_hot(indices, action.shape[-1], dtype=action.dtype),
          action)
    raise NotImplementedError(self._c.expl)

  def _imagine_start(self, outs):
    """The start states, and which set of starts each belongs to (all 0)."""
    post = outs['post']
    if self._c.pcont:  # Last step could be terminal.
      post = {k: v[:, :-1] for k, v in post.items()}
    flatten = lambda x: tf.reshape(x, [-1] + list(x.shape[2:]))
    start = {k: flatten(tf.stop_gradient(v)) for k, v in post.items()}
    return start, tf.zeros(tf.shape(start['deter'])[:1], tf.int32)

  def _imagine_ahead(self, outs):
    """Rolls the actor out in the model for `horizon` steps.

    Step t of (horizon, starts, ...) holds the state, its features and the
    action that led to it; `start` and `source` hold each trajectory's start
    state and start set. Gradients reach the actor through the actions.
    """
    start, source = self._imagine_start(outs)
    policy = lambda state: self._actor(
        tf.stop_gradient(self._dynamics.get_feat(state))).sample()
    def step(prev, _):
      action = policy(prev)
      return dict(self._dynamics.img_step(prev, action), action=action)
    states = tools.static_scan(step, tf.range(self._c.horizon), start)
    imag_feat = self._dynamics.get_feat(states)
    return dict(states, feat=imag_feat, start=start, source=source)

  def _image_summaries(self, data):
    tensors = {k: tf.convert_to_tensor(data[k]) for k in tools.EPISODE_KEYS}
    openl = self._openl_fn(tensors)
    self._logger.video(self.step, 'agent/openl', openl.numpy())

  def _openl(self, data):
    """Rows: truth; reconstruction of 5 frames, then open-loop; error."""
    data = preprocess({k: v[:6] for k, v in data.items()}, self._c)
    context = min(5, data['action'].shape[1] - 1)
    embed = self._encode(data)
    truth = data['image'] + 0.5
    init, _ = self._dynamics.observe(
        embed[:, :context], data['action'][:, :context])
    recon = self._decode(self._dynamics.get_feat(init)).mode()
    init = {k: v[:, -1] for k, v in init.items()}
    prior = self._dynamics.imagine(data['action'][:, context:], init)
    openl = self._decode(self._dynamics.get_feat(prior)).mode()
    model = tf.concat([recon + 0.5, openl + 0.5], 1)
    error = (model - truth + 1) / 2
    openl = tf.concat([truth, model, error], 2)
    return openl

  def _model_error_summaries(self):
    data = self._replay.sample(self._c.batch_size, self._held)
    tensors = {k: tf.convert_to_tensor(data[k]) for k in tools.EPISODE_KEYS}
    error = self._model_error_fn(tensors).numpy()
    self._metrics['model_error'].append(error.mean())
    for horizon, value in enumerate(error.mean(0), 1):
      self._metrics[f'model_error_{horizon}'].append(value)

  def _model_error(self, data, context=5, horizon=15):
    """BIRD's Figure 5: how far the model's open-loop prediction drifts from
    the posterior, in latent space.

    From each sequence's posterior after `context` frames, the prior rolls
    forward with the recorded actions; entry (b, k - 1) is the Euclidean
    distance between its state and the posterior's k steps later, both as
    (stochastic mean, deterministic state). Sequences shorter than
    context + horizon give fewer steps.
    """
    data = preprocess(data, self._c)
    length = data['action'].shape[1]
    context = min(context, length - 1)
    horizon = min(horizon, length - context)
    embed = self._encode(data)
    post, _ = self._dynamics.observe(embed, data['action'])
    init = {k: v[:, context - 1] for k, v in post.items()}
    steps = slice(context, context + horizon)
    prior = self._dynamics.imagine(data['action'][:, steps], init)
    return latent_distance(prior, {k: v[:, steps] for k, v in post.items()})

  def _write_summaries(self):
    step = int(self._step.numpy())
    metrics = self._sums.means()
    metrics.update({k: np.mean(v) for k, v in self._metrics.items()})
    self._metrics.clear()
    fps = self._logger.rate(step)
    if fps is not None:
      metrics['fps'] = fps
    if self._c.log_scalars:
      self._logger.write(step, metrics, 'agent')
    self._logger.progress(step, metrics)
    self._logger.flush()


def latent_distance(a, b):
  """Euclidean distance of states as (stochastic mean, deterministic)."""
  square = lambda x, y: tf.reduce_sum(tf.square(x - y), -1)
  return tf.sqrt(square(a['mean'], b['mean']) + square(a['deter'], b['deter']))


def make_strategy():
  """Data parallel over all GPUs when there are several, as upstream."""
  gpus = tf.config.list_logical_devices('GPU')
  if len(gpus) > 1:
    return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
  return tf.distribute.get_strategy()


def preprocess(obs, config):
  obs = obs.copy()
  obs['image'] = tf.cast(obs['image'], tf.float32) / 255.0 - 0.5
  if 'reward' in obs:
    clip_rewards = dict(none=lambda x: x, tanh=tf.tanh)[config.clip_rewards]
    obs['reward'] = clip_rewards(obs['reward'])
  return obs


def count_steps(datadir, config):
  return tools.count_episodes(datadir)[1] * config.action_repeat


def logged_tests(logdir):
  """The env steps of the run's tests so far, from its metrics.jsonl."""
  entries = tools.read_lines(logdir / 'metrics.jsonl')
  return sorted(int(e['step']) for e in entries if 'test/return' in e)


def next_test(tests, eval_every):
  """The env step of the run's next test, None before its first. Tests
  follow every `eval_every` env steps from the first, so a resumed run keeps
  its grid (upstream tests at every start, which shifts its later tests)."""
  if not tests:
    return None
  first, last = tests[0], tests[-1]
  return first + ((last - first) // eval_every + 1) * eval_every


def summarize_episode(episode, config, datadir, logger, prefix):
  episodes, steps = tools.count_episodes(datadir)
  length = (len(episode['reward']) - 1) * config.action_repeat
  ret = episode['reward'].sum()
  print(f'{prefix.title()} episode of length {length} with return {ret:.1f}.')
  metrics = [
      (f'{prefix}/return', float(episode['reward'].sum())),
      (f'{prefix}/length', len(episode['reward']) - 1),
      (f'episodes', episodes)]
  step = count_steps(datadir, config)
  logger.write(step, dict(metrics), 'sim')
  if prefix == 'test' and config.log_images:
    logger.video(step, f'sim/{prefix}/video', episode['image'][None])


def summarize_evaluation(episodes, config, datadir, logger):
  """The test episodes of one evaluation as one point of the curve: their
  mean return and length, and each episode's return in metrics.jsonl as
  test/return_<i>. One episode is summarized as upstream's."""
  if len(episodes) == 1:
    summarize_episode(episodes[0], config, datadir, logger, 'test')
    return
  returns = np.array([ep['reward'].sum() for ep in episodes], float)
  lengths = [len(ep['reward']) - 1 for ep in episodes]
  std = returns.std(ddof=1)  # As every standard deviation the runs report.
  print(f'Test return {returns.mean():.1f} ± {std:.1f} over '
        f'{len(returns)} episodes ({", ".join(f"{r:.1f}" for r in returns)}).')
  count, steps = tools.count_episodes(datadir)
  metrics = {
      'test/return': returns.mean(), 'test/return_std': std,
      'test/length': np.mean(lengths), 'episodes': count}
  each = {f'test/return_{i}': r for i, r in enumerate(returns)}
  step = steps * config.action_repeat
  logger.write(step, metrics, 'sim', unlogged=each)
  if config.log_images:
    logger.video(step, 'sim/test/video', episodes[0]['image'][None])


def make_env(
    config, logger, prefix, datadir, store, index=0, episodes=None):
  ctor = make_ctor(config, wrappers.env_seed(config.seed, prefix, index))
  env = wrappers.Async(ctor, config.parallel)
  callbacks = []
  if store:
    callbacks.append(lambda ep: tools.save_episodes(datadir, [ep]))
  if episodes is not None:  # Summarized together (summarize_evaluation).
    callbacks.append(episodes.append)
  else:
    callbacks.append(
        lambda ep: summarize_episode(ep, config, datadir, logger, prefix))
  env = wrappers.Collect(env, callbacks)
  return env


def make_ctor(config, seed):
  """The task's environment as a picklable constructor: training and
  runs/evaluate.py build it alike, in any process."""
  suite, task = config.task.split('_', 1)
  if suite == 'dmc':
    return functools.partial(
        wrappers.make_dmc, task, config.action_repeat, config.time_limit,
        seed)
  if suite == 'atari':
    return functools.partial(
        wrappers.make_atari, task, config.action_repeat, config.time_limit,
        seed, grayscale=config.grayscale)
  if suite == 'gym':
    return functools.partial(
        wrappers.make_gym, task, config.action_repeat, config.time_limit,
        seed)
  raise ValueError(f"no environment for task '{config.task}'")


# Added: the command line, checked before any work, and the logdir.

ACTIVATIONS = ['elu', 'relu', 'swish', 'leaky_relu']  # Of _build_model.


# Atari's defaults, for the keys not given: its actions are discrete (the
# continuous defaults were upstream's "Invalid one-hot action"), frames are
# skipped 4 at a time, an episode is up to 30 minutes of play (108k frames),
# and a lost life ends it, which the discount predictor learns.
ATARI = dict(
    action_dist='onehot', expl='epsilon_greedy', action_repeat=4,
    time_limit=108000, pcont=True)


# Gymnasium's defaults, for the keys not given: its environments tell a
# termination (`terminated`, discount 0) from a time limit (`truncated`,
# discount 1), which the discount predictor learns: imagined returns then
# stop where an episode terminates, not where it is cut off.
GYM = dict(pcont=True)


# Any discrete task's defaults, for the keys not given.
DISCRETE = dict(action_dist='onehot', expl='epsilon_greedy')


def apply_atari(config, given):
  """The suite's defaults, and the discrete ones where the actions are, for
  the keys not given: a run's record holds them as they were used."""
  defaults = {}
  if config.task.startswith('atari_'):
    defaults = ATARI
  elif config.task.startswith('gym_'):
    defaults = dict(GYM)
    if discrete_actions(config.task):
      defaults.update(DISCRETE)
  config.update({k: v for k, v in defaults.items() if k not in given})


def discrete_actions(task):
  """Whether a task's actions are discrete; ValueError, naming the task, for
  one that cannot be made."""
  suite, _, name = task.partition('_')
  if suite != 'gym':
    return suite == 'atari'
  try:
    return wrappers.parse_gym(name) == 'discrete'
  except ValueError as e:
    raise ValueError(f"unknown task '{task}': {e}") from None


def check_config(config):
  """ValueError for values that would fail late or train something else."""
  suite, _, task = config.task.partition('_')
  if suite not in ('dmc', 'atari', 'gym') or not task:
    raise ValueError(
        f"unknown task '{config.task}': tasks are named dmc_<domain>_<task>, "
        'atari_<game> or gym_<Gymnasium id>')
  try:
    if suite == 'dmc':
      wrappers.parse_task(task)
    elif suite == 'atari':
      wrappers.parse_game(task)
  except ValueError as e:
    raise ValueError(f"unknown task '{config.task}': {e}") from None
  check_actions(config, suite)
  for key in (
      'steps', 'eval_every', 'eval_episodes', 'log_every', 'envs',
      'action_repeat', 'time_limit', 'deter_size', 'stoch_size', 'num_units',
      'cnn_depth', 'batch_size', 'train_every', 'train_steps', 'horizon',
      'nonfinite_limit'):
    if config[key] < 1:
      raise ValueError(f'--{key} must be positive, got {config[key]}')
  for key in (
      'prefill', 'pretrain', 'dataset_size', 'free_nats', 'kl_scale',
      'expl_amount', 'expl_decay', 'expl_min', 'eval_noise', 'weight_decay',
      'grad_clip'):
    if config[key] < 0:
      raise ValueError(f'--{key} must not be negative, got {config[key]}')
  if config.adam_eps <= 0:
    raise ValueError(f'--adam_eps must be positive, got {config.adam_eps}')
  if config.horizon < 2:
    raise ValueError(f'--horizon must be at least 2, got {config.horizon}')
  episode = config.time_limit // config.action_repeat + 1
  if not 2 <= config.batch_length <= episode:
    raise ValueError(
        f'--batch_length must be between 2 and the episode length {episode} '
        f'(time_limit / action_repeat + 1), got {config.batch_length}')
  if not 0 <= config.discount <= 1 or not 0 <= config.disclam <= 1:
    raise ValueError('--discount and --disclam must lie in [0, 1]')


def check_actions(config, suite):
  discrete = discrete_actions(config.task)
  if (config.action_dist == 'onehot') != discrete:
    kind = 'discrete' if discrete else 'continuous'
    raise ValueError(
        f'--action_dist {config.action_dist} cannot act in {config.task}, '
        f"whose actions are {kind}; its default is "
        f"{'onehot' if discrete else 'tanh_normal'}")
  if (config.expl == 'epsilon_greedy') != discrete:
    valid = (
        'epsilon_greedy' if discrete else
        'additive_gaussian or completely_random')
    raise ValueError(
        f'--expl {config.expl} does not fit --action_dist '
        f'{config.action_dist}; use {valid}')
  if config.grayscale and suite != 'atari':
    raise ValueError('--grayscale applies to Atari tasks only')


def image_shape(config):
  return (64, 64, 1 if config.grayscale else 3)


CHOICES = dict(
    precision=[16, 32, 'bf16'], parallel=['none', 'thread', 'process'],
    clip_rewards=['none', 'tanh'], dense_act=ACTIVATIONS,
    cnn_act=ACTIVATIONS, action_dist=['tanh_normal', 'onehot'],
    expl=['additive_gaussian', 'completely_random', 'epsilon_greedy'])


def parse_flags(
    config, argv=None, choices=None, adjust=None, extension=None):
  """`--key value` for every config key; a bad flag exits with one line.

  `adjust(config, given)` may set defaults that depend on other flags and on
  which flags were given, and raise ValueError for combinations that cannot
  work. `extension`, the define_config of bird.py or idm.py, describes its
  keys in --help under its own heading.
  """
  prog = pathlib.Path(sys.argv[0]).name
  choices = {**CHOICES, **(choices or {})}
  types = dict(precision=lambda x: int(x) if x in ('16', '32') else x)
  config, given = tools.parse_flags(
      config, argv, choices, prog, types, describe_config(extension))
  try:
    apply_atari(config, given)
    if adjust:
      adjust(config, given)
    check_config(config)
  except ValueError as e:
    sys.exit(f'{prog}: error: {e}')
  return config


def describe_config(extension=None):
  """{key: (group, description)} from the comments above the keys: Dreamer's
  groups, and the extension's own keys under its name (e.g. BIRD)."""
  helps = tools.describe(define_config)
  if extension:
    name = pathlib.Path(sys.modules[extension.__module__].__file__).stem
    for key, (group, text) in tools.describe(extension, name.upper()).items():
      helps[key] = (helps.get(key, (group,))[0], text)
  return helps


def make_logdir(logdir):
  logdir.mkdir(parents=True, exist_ok=True)
  return logdir


def prepare_logdir(logdir):
  """Creates the logdir and proves it writable, or raises OSError."""
  datadir = logdir / 'episodes'
  datadir.mkdir(parents=True, exist_ok=True)
  tools.write_atomic(logdir / '.writable', lambda f: f.write(b'ok'))
  (logdir / '.writable').unlink()
  tools.remove_temporary(logdir)
  tools.remove_temporary(datadir)
  return datadir


# Keys that may change between the starts of one run; every other key defines
# what is trained and must stay as recorded in the logdir's config.json.
RESUMABLE = (
    'logdir', 'steps', 'eval_every', 'eval_episodes', 'log_every',
    'log_scalars', 'log_images', 'gpu_growth', 'precision', 'jit',
    'deterministic', 'nonfinite_limit', 'envs', 'parallel')


def check_record(config, agent_class):
  """What config.json will hold; raises ConfigError if the logdir's record
  differs from this command in a key that is not RESUMABLE."""
  path = config.logdir / 'config.json'
  record = describe_run(config, agent_class)
  if not path.exists():
    return record
  try:
    recorded = json.loads(path.read_text())
    agent, values = recorded['agent'], recorded['config']
  except (ValueError, KeyError, TypeError) as e:
    raise tools.ConfigError(f'{path} is not a readable record ({e})') from e
  if agent != record['agent']:
    raise tools.ConfigError(
        f'{config.logdir} holds a run of {agent}, not of {record["agent"]}')
  now = record['config']
  changed = {
      k: (values[k], now[k]) for k in now if values.get(k, now[k]) != now[k]}
  fixed = [k for k in changed if k not in RESUMABLE]
  if fixed:
    differences = '; '.join(
        f'--{k} {changed[k][0]} there, {changed[k][1]} here' for k in fixed)
    raise tools.ConfigError(
        f'{config.logdir} holds a run with other settings: {differences} '
        f'(may change on resume: {", ".join(RESUMABLE)})')
  resume = dict(
      time=record['created'], code=record['code'], command=record['command'],
      added=[k for k in now if k not in values],
      changed={k: list(v) for k, v in changed.items()})
  if recorded.get('versions', record['versions']) != record['versions']:
    resume['versions'] = record['versions']
  # The record's code, versions and command stay those the run started with;
  # each resume adds its own.
  for key in ('created', 'code', 'versions', 'command'):
    record[key] = recorded.get(key, record[key])
  record['resumes'] = recorded.get('resumes', []) + [resume]
  return record


def write_record(config, record, step, logger):
  if record.get('resumes'):
    record['resumes'][-1]['step'] = step
    resume = record['resumes'][-1]
    for key, (old, new) in resume['changed'].items():
      print(f'Resumed with --{key} {new} (was {old}).')
    for key in resume['added']:
      print(f'Resumed with --{key} {record["config"][key]} '
            '(not recorded by the earlier start).')
  path = config.logdir / 'config.json'
  text = json.dumps(record, indent=1, sort_keys=True)
  tools.write_atomic(path, lambda f: f.write(text.encode() + b'\n'))
  logger.text(step, 'config', f'```\n{text}\n```')


def describe_run(config, agent_class):
  """The run's config, agent class, seed, versions and code."""
  module = agent_class.__module__
  if module == '__main__':  # The script that was run, e.g. bird.py.
    module = pathlib.Path(sys.modules['__main__'].__file__).stem
  values = {
      k: str(v) if isinstance(v, pathlib.Path) else v
      for k, v in config.items()}
  return dict(
      agent=f'{module}.{agent_class.__qualname__}',
      config=json.loads(json.dumps(values)), seed=config.seed,
      versions=versions(), code=code_version(), command=sys.argv,
      created=datetime.datetime.now().isoformat(timespec='seconds'))


def versions():
  packages = (
      'tensorflow', 'tf_keras', 'tensorflow-probability', 'dm_control',
      'mujoco', 'ale-py', 'numpy', 'dreamer-bird-idm')
  found = {}
  for package in packages:
    try:
      found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      found[package] = None
  return found


def code_version():
  """The git commit of this code, if it is a checkout; None otherwise."""
  root = pathlib.Path(__file__).resolve().parent
  if not (root / '.git').exists():
    return None
  git = lambda *args: subprocess.run(
      ['git', '-C', str(root), *args], capture_output=True, text=True,
      timeout=10).stdout.strip()
  try:
    commit = git('rev-parse', 'HEAD')
    changes = git('status', '--porcelain', '--untracked-files=no')
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + (' with uncommitted changes' if changes else '')


def setup(config):
  if config.gpu_growth:
    for gpu in tf.config.experimental.list_physical_devices('GPU'):
      tf.config.experimental.set_memory_growth(gpu, True)
  policy = {16: 'mixed_float16', 32: 'float32', 'bf16': 'mixed_bfloat16'}
  prec.set_global_policy(policy[config.precision])
  random.seed(config.seed)
  np.random.seed(config.seed)
  tf.random.set_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()


def main(config, agent_class=None):
  agent_class = agent_class or Dreamer
  prog = pathlib.Path(sys.argv[0]).name
  config.logdir = pathlib.Path(config.logdir).expanduser()
  try:
    lock = tools.lock(make_logdir(config.logdir))  # Held until the exit.
    datadir = prepare_logdir(config.logdir)
    record = check_record(config, agent_class)
  except OSError as e:
    sys.exit(f'{prog}: error: cannot write to --logdir {config.logdir}: '
             f'{e.strerror or e}')
  except tools.RunError as e:
    sys.exit(f'{prog}: error: {e}')
  setup(config)
  tools.STOP.install()
  print('Logdir', config.logdir)

  # Create environments.
  logger = tools.Logger(config.logdir, config.steps)
  train_envs = [
      make_env(config, logger, 'train', datadir, store=True, index=i)
      for i in range(config.envs)]
  evaluation = []  # The test episodes of the evaluation under way.
  test_envs = [
      make_env(
          config, logger, 'test', datadir, store=False, index=i,
          episodes=evaluation)
      for i in range(config.envs)]
  try:
    actspace = train_envs[0].action_space
    # The agent and its checkpoint first: a bad one stops the run before
    # anything is written.
    agent = agent_class(config, datadir, actspace, logger)
    checkpoint = config.logdir / 'variables.pkl'
    if checkpoint.exists():
      agent.load(checkpoint)
      print(f'Loaded checkpoint at step {agent.step}.')
    write_record(config, record, agent.step, logger)

    # Prefill dataset with random episodes.
    step = count_steps(datadir, config)
    prefill = max(0, config.prefill - step)
    print(f'Prefill dataset with {prefill} steps.')
    random = np.random.RandomState(config.seed)
    random_agent = lambda o, d, _: ([actspace.sample(random) for _ in d], None)
    steps = -(-prefill // config.action_repeat)  # Rounded up.
    with tools.Progress('Prefill', prefill, 'env steps') as progress:
      random_agent = counting(random_agent, progress, config.action_repeat)
      tools.simulate(random_agent, train_envs, steps)
    agent.sync_step()
    logger.flush()

    # Train and regularly evaluate the agent.
    print(f'Simulating agent for {config.steps - agent.step} steps.')
    tests = logged_tests(config.logdir)
    state = None
    while agent.step < config.steps and not tools.STOP.requested:
      due = next_test(tests, config.eval_every)
      if due is None or agent.step >= due:
        print('Start evaluation.')
        rounds = -(-config.eval_episodes // len(test_envs))  # Rounded up.
        total = config.time_limit * len(test_envs) * rounds
        with tools.Progress('Evaluation', total, 'env steps') as progress:
          policy = functools.partial(agent, training=False)
          policy = counting(policy, progress, config.action_repeat)
          tools.simulate(policy, test_envs, episodes=config.eval_episodes)
        if len(evaluation) >= config.eval_episodes:  # Not cut by a stop.
          summarize_evaluation(evaluation, config, datadir, logger)
          tests.append(count_steps(datadir, config))
        evaluation.clear()
        logger.flush()
      print('Start collection.')
      if state is None and tests:  # Started or resumed: on to the next test.
        remaining = next_test(tests, config.eval_every) - agent.step
        steps = max(1, -(-remaining // config.action_repeat))  # Rounded up.
      else:
        steps = config.eval_every // config.action_repeat
      total = steps * config.action_repeat
      with tools.Progress('Collection', total, 'env steps') as progress:
        collect = counting(agent, progress, config.action_repeat)
        state = tools.simulate(collect, train_envs, steps, state=state)
      if not tools.STOP.requested:
        agent.save(checkpoint)
    if tools.STOP.requested:
      # Keep the unfinished episodes: the checkpoint's step counts them.
      episodes = [env.flush() for env in train_envs]
      tools.save_episodes(datadir, [e for e in episodes if e])
      agent.sync_step()
      agent.save(checkpoint)
      print(f'Stopped at step {agent.step}; '
            'run the same command to continue.')
  except tools.RunError as e:
    sys.exit(f'{prog}: error: {e}')
  finally:
    for env in train_envs + test_envs:
      env.close()
    logger.flush()
    os.close(lock)


def counting(agent, progress, action_repeat):
  """The agent, counting the env steps it takes in the progress."""
  def call(obs, done, state):
    progress.update(len(done) * action_repeat)
    return agent(obs, done, state)
  return call


if __name__ == '__main__':
  try:
    import colored_traceback
    colored_traceback.add_hook()
  except ImportError:
    pass
  main(parse_flags(define_config()))
