"""Shared machinery in upstream's order; additions at the end: errors, files,
stopping, logging."""

import os
import sys

# Both must happen before TensorFlow is first imported: Keras 2 layers, which
# tf.Module tracks (TensorFlow 2.16 on makes tf.keras Keras 3 otherwise); and TF
# loaded with RTLD_GLOBAL exports LLVM symbols that crash Mesa's software
# renderer (llvmpipe, under EGL and OSMesa) on its first frame, so TF falls
# back to RTLD_LOCAL.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # Hide INFO lines.
# TensorFlow leaves oneDNN's CPU kernels off on some CPUs; on an AVX2-only AMD
# EPYC (Zen 3) they made a default-size float32 train step 1.78x faster.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
if 'tensorflow' not in sys.modules:
  sys.modules['tensorflow.python.pywrap_dlopen_global_flags'] = None

import argparse
import ast
import collections
import contextlib
import datetime
import errno
import fcntl
import glob
import inspect
import io
import json
import pathlib
import pickle
import queue
import re
import signal
import textwrap
import threading
import time
import tokenize
import uuid

import numpy as np
import tensorflow as tf
import tensorflow.compat.v1 as tf1
import tensorflow_probability as tfp
import tf_keras
from tf_keras import mixed_precision as prec
from tensorflow_probability import distributions as tfd

import wrappers


class AttrDict(dict):

  __setattr__ = dict.__setitem__

  def __getattr__(self, name):
    try:
      return self[name]
    except KeyError:
      raise AttributeError(name) from None


class Module(tf.Module):

  def save(self, filename):
    values = {k: v.numpy() for k, v in self.named_variables().items()}
    write_atomic(
        filename, lambda f: pickle.dump(values, f, pickle.HIGHEST_PROTOCOL))

  # Variables newer than some checkpoints, which may lack them.
  _NEWER = frozenset()

  def load(self, filename):
    """Restores every variable or, if the file does not fit, none; returns
    the names restored."""
    try:
      with pathlib.Path(filename).open('rb') as f:
        values = pickle.load(f)
    except Exception as e:
      raise CheckpointError(
          f'{filename} is not a readable checkpoint ({e})') from e
    if not isinstance(values, dict):
      raise CheckpointError(
          f'{filename} is not a readable checkpoint '
          f'(it holds a {type(values).__name__})')
    variables = self.named_variables()
    # The loss scale of float16 runs: a run may continue in another
    # precision, where it starts anew or is not needed.
    optional = lambda names: {n for n in names if '/loss_scale/' in n}
    values = {
        k: v for k, v in values.items()
        if k in variables or k not in optional(values)}
    missing = sorted(
        set(variables) - set(values) - optional(variables) - self._NEWER)
    unknown = sorted(set(values) - set(variables))
    if missing or unknown:
      raise CheckpointError(
          f'{filename} does not fit this agent: missing {missing[:3]}, '
          f'unexpected {unknown[:3]} (written by another agent or version?)')
    variables = {k: v for k, v in variables.items() if k in values}
    for name, var in variables.items():
      shape = np.shape(values[name])
      if tuple(shape) != tuple(var.shape):
        raise CheckpointError(
            f'{filename} does not fit this agent: variable {name} has shape '
            f'{shape} there but {tuple(var.shape)} here '
            '(written with another config?)')
    for name, var in variables.items():
      var.assign(values[name])
    return set(variables)

  def get(self, name, ctor, *args, **kwargs):
    # Create or get layer by name to avoid mentioning it in the constructor.
    if not hasattr(self, '_modules'):
      self._modules = {}
    if name not in self._modules:
      self._modules[name] = ctor(*args, **kwargs)
    return self._modules[name]

  def named_variables(self):
    """Every variable below, optimizer state included, by attribute path."""
    paths = {}
    for path, var in self._flatten(
        predicate=lambda x: isinstance(x, tf.Variable), with_path=True):
      name = '/'.join(str(p) for p in path)
      paths.setdefault(var.ref(), []).append(name)
    # Keras lists each weight twice (kernel, _trainable_weights/0): keep the
    # shortest path.
    named = {min(names, key=lambda n: (n.count('/'), n)): ref.deref()
             for ref, names in paths.items()}
    for path, opt in self._flatten(
        predicate=lambda x: isinstance(x, Adam), with_path=True):
      prefix = '/'.join(str(p) for p in path)
      for index, var in enumerate(opt.variables):
        named[f'{prefix}/slots/{index}'] = var
      for name, var in opt.loss_scale_variables().items():
        named[f'{prefix}/loss_scale/{name}'] = var
    return dict(sorted(named.items()))


def video_summary(name, video, step=None, fps=20):
  name = name if isinstance(name, str) else name.decode('utf-8')
  if np.issubdtype(video.dtype, np.floating):
    video = np.clip(255 * video, 0, 255).astype(np.uint8)
  B, T, H, W, C = video.shape
  frames = video.transpose((1, 2, 0, 3, 4)).reshape((T, H, B * W, C))
  summary = tf1.Summary()
  image = tf1.Summary.Image(height=H, width=B * W, colorspace=C)
  image.encoded_image_string = encode_gif(frames, fps)
  summary.value.add(tag=name, image=image)
  tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step)


def encode_gif(frames, fps):
  """GIF bytes of uint8 frames (T, H, W, C), encoded in-process by Pillow."""
  from PIL import Image
  if frames.shape[-1] == 1:  # Grayscale Atari frames.
    frames = frames[..., 0]
  images = [Image.fromarray(frame) for frame in frames]
  buffer = io.BytesIO()
  images[0].save(
      buffer, format='GIF', save_all=True, append_images=images[1:],
      duration=int(round(1000 / fps)), loop=0)
  return buffer.getvalue()


def write_video(filename, frames, fps):
  """Writes uint8 frames (T, H, W, C) as MP4 (H.264) or, by the suffix, GIF,
  atomically. MP4 is encoded by the ffmpeg binary in imageio-ffmpeg's wheel:
  nothing is installed system-wide."""
  filename = pathlib.Path(filename)
  if filename.suffix == '.gif':
    write_atomic(filename, lambda f: f.write(encode_gif(frames, fps)))
    return
  import imageio_ffmpeg
  if frames.shape[-1] == 1:  # Grayscale Atari frames.
    frames = np.repeat(frames, 3, -1)
  height, width = frames.shape[1:3]
  temp = filename.with_name(f'.{filename.name}.{uuid.uuid4().hex[:8]}.tmp')
  try:
    with disk_full_is_an_error(filename):
      # Near-lossless (crf 10): the frames are small and a viewer compares
      # them pixel by pixel with the model's.
      writer = imageio_ffmpeg.write_frames(
          str(temp), (width, height), fps=fps, codec='libx264', quality=8,
          macro_block_size=1, output_params=['-f', 'mp4'])
      writer.send(None)
      for frame in frames:
        writer.send(np.ascontiguousarray(frame))
      writer.close()
      os.replace(temp, filename)
  finally:
    if temp.exists():
      temp.unlink()


def simulate(agent, envs, steps=0, episodes=0, state=None):
  """Steps until `steps` agent steps or `episodes` episodes have finished.

  A worker that dies loses its unfinished episode and is restarted.
  """
  # Initialize or unpack simulation state.
  if state is None:
    step, episode = 0, 0
    done = np.ones(len(envs), bool)
    length = np.zeros(len(envs), np.int32)
    obs = [None] * len(envs)
    agent_state = None
  else:
    step, episode, done, length, obs, agent_state = state
  while (steps and step < steps) or (episodes and episode < episodes):
    if STOP.requested:
      break
    # Reset envs if necessary.
    if done.any():
      indices = [index for index, d in enumerate(done) if d]
      promises = [envs[i].reset(blocking=False) for i in indices]
      for index, promise in zip(indices, promises):
        obs[index] = _receive_reset(envs[index], promise)
    # Step agents.
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    action, agent_state = agent(batch, done, agent_state)
    action = np.array(action)
    assert len(action) == len(envs)
    # Step envs.
    promises = [e.step(a, blocking=False) for e, a in zip(envs, action)]
    died = np.zeros(len(envs), bool)
    for index, promise in enumerate(promises):
      try:
        obs[index], _, done[index] = promise()[:3]
      except wrappers.WorkerDied as e:
        print(f'Warning: {e}; its unfinished episode is discarded.',
              file=sys.stderr)
        died[index] = done[index] = True
    finished = done & ~died
    episode += int(finished.sum())
    length += 1
    step += int((finished * length).sum())
    length *= (1 - done)
  # Return new state to allow resuming the simulation.
  return (step - steps, episode - episodes, done, length, obs, agent_state)


def _receive_reset(env, promise, attempts=3):
  for attempt in range(attempts):
    try:
      return promise()
    except wrappers.WorkerDied as e:
      if attempt == attempts - 1:
        raise
      print(f'Warning: {e}; resetting again.', file=sys.stderr)
      promise = env.reset(blocking=False)


def count_episodes(directory):
  filenames = episode_files(directory)
  lengths = [episode_length(n) - 1 for n in filenames]
  episodes, steps = len(lengths), sum(lengths)
  return episodes, steps


def save_episodes(directory, episodes):
  directory = pathlib.Path(directory).expanduser()
  directory.mkdir(parents=True, exist_ok=True)
  timestamp = datetime.datetime.now().strftime('%Y%m%dT%H%M%S')
  filenames = []
  for episode in episodes:
    identifier = str(uuid.uuid4().hex)
    length = len(episode['reward'])
    filename = directory / f'{timestamp}-{identifier}-{length}.npz'
    with io.BytesIO() as f1:
      np.savez_compressed(f1, **episode)
      write_atomic(filename, lambda f2: f2.write(f1.getvalue()))
    filenames.append(filename)
  return filenames


EPISODE_KEYS = ('image', 'action', 'reward', 'discount')


def episode_length(filename):
  """The length in an episode's name, counting the reset step, or None."""
  try:
    return int(pathlib.Path(filename).stem.rsplit('-', 1)[-1])
  except ValueError:
    return None


def episode_files(directory):
  """Episode files, oldest first."""
  directory = pathlib.Path(directory).expanduser()
  filenames = [
      f for f in directory.glob('*.npz') if episode_length(f) is not None]
  # Names start with a timestamp in seconds; the write time orders episodes
  # within a second.
  def order(filename):
    try:
      mtime = filename.stat().st_mtime_ns
    except FileNotFoundError:
      mtime = 0
    return filename.name.split('-', 1)[0], mtime, filename.name
  return sorted(filenames, key=order)


def load_episode(filename, keys=None):
  """Reads and checks one episode, or only `keys` of it; ValueError for a
  corrupt or torn file."""
  try:
    with np.load(filename) as data:
      episode = {k: data[k] for k in data.keys() if not keys or k in keys}
  except Exception as e:
    raise ValueError(
        f'cannot read {filename.name}: {type(e).__name__}: {e}') from e
  missing = [k for k in keys or EPISODE_KEYS if k not in episode]
  if missing:
    raise ValueError(f'{filename.name} lacks {missing}')
  lengths = {len(v) for v in episode.values()}
  if lengths != {episode_length(filename)}:
    raise ValueError(
        f'{filename.name} holds sequences of lengths {sorted(lengths)}')
  return episode


class Replay:
  """Samples training sequences from the episodes in a directory.

  Upstream's load_episodes, but it holds only the newest episodes whose steps
  fit `capacity` (0: all), and their images not in its own memory: each
  kept episode's images are written once, uncompressed, to `raw/` in the
  directory and read through a memory map, whose pages are the kernel's
  cache of that file. `update()` reads the episodes written since; corrupt
  files are skipped with a warning. `raw/` is rebuilt from the episodes when
  it is missing.
  """

  def __init__(self, directory, length, capacity=0, balance=False, seed=0):
    self._directory = pathlib.Path(directory).expanduser()
    self._length = length
    self._capacity = capacity
    self._balance = balance
    self._random = np.random.RandomState(seed)
    self._episodes = collections.OrderedDict()
    self._skipped = set()
    self._raw = self._directory / 'raw'

  @property
  def episodes(self):
    return self._episodes

  def update(self):
    files = [
        f for f in episode_files(self._directory) if f not in self._skipped]
    keep, total = [], 0
    for filename in reversed(files):
      steps = episode_length(filename) - 1
      if keep and self._capacity and total + steps > self._capacity:
        break
      keep.append(filename)
      total += steps
    keep = set(keep)
    for filename in list(self._episodes):
      if filename not in keep:
        del self._episodes[filename]
    self._remove_raw({f.stem for f in keep})
    for filename in files:
      if filename in keep and filename not in self._episodes:
        try:
          self._episodes[filename] = self._load(filename)
        except ValueError as e:
          print(f'Warning: skipping episode: {e}', file=sys.stderr)
          self._skipped.add(filename)

  def sample(self, batch_size, random=None):
    """A dict of arrays of shape (batch_size, length, ...), drawn with the
    replay's own random state or the given one."""
    random = random or self._random
    candidates = [
        e for e in self._episodes.values()
        if len(e['reward']) >= self._length]
    if not candidates:
      raise ValueError(
          f'No episode in {self._directory} is as long as '
          f'batch_length={self._length}.')
    chunks = []
    for index in random.randint(0, len(candidates), batch_size):
      episode = candidates[index]
      total = len(episode['reward'])
      available = total - self._length
      if self._balance:
        # Favour the ends of episodes, which uniform starts sample less.
        index = min(random.randint(0, total), available)
      else:
        index = random.randint(0, available + 1)
      chunks.append(
          {k: v[index: index + self._length] for k, v in episode.items()})
    return {k: np.stack([c[k] for c in chunks]) for k in chunks[0]}

  def prefetch(self, batch_size, count, depth=2, convert=None):
    """`count` batches of `sample`, drawn in order in a thread, `depth`
    ahead, so that the next is sampled while the current one trains.

    A context manager yielding an iterator of `convert(batch)` (default:
    the batch). Draws nothing beyond `count`, so the random state is as
    after `count` calls of `sample`, unless the iteration stops early.
    """
    return _Prefetch(
        lambda: self.sample(batch_size), count, depth, convert)

  def _load(self, filename):
    """The episode with its images memory-mapped from `raw/`."""
    raw = self._raw / f'{filename.stem}.npy'
    length = episode_length(filename)
    image = self._open_raw(raw, length)
    if image is not None:
      keys = [k for k in EPISODE_KEYS if k != 'image']
      episode = load_episode(filename, keys)
    else:
      episode = load_episode(filename)
      self._raw.mkdir(exist_ok=True)
      write_atomic(raw, lambda f: np.save(f, episode['image']))
      image = self._open_raw(raw, length)
    episode['image'] = image
    return episode

  def _open_raw(self, raw, length):
    """The images of a raw file as a read-only memory map, None if there is
    no such file or it holds other images."""
    try:
      image = np.load(raw, mmap_mode='r')
    except (OSError, ValueError):
      return None
    if image.dtype != np.uint8 or len(image) != length or image.ndim != 4:
      return None
    return image

  def _remove_raw(self, stems):
    """Removes the raw files of episodes not kept, and torn temporaries."""
    if not self._raw.exists():
      return
    remove_temporary(self._raw)
    for raw in self._raw.glob('*.npy'):
      if raw.stem not in stems:
        raw.unlink()


class _Prefetch:

  def __init__(self, sample, count, depth, convert):
    self._sample = sample
    self._count = count
    self._convert = convert or (lambda batch: batch)
    self._queue = queue.Queue(depth)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._produce, daemon=True)

  def __enter__(self):
    self._thread.start()
    return self._consume()

  def __exit__(self, *exc_info):
    self._stop.set()
    while self._thread.is_alive():  # Unblocks a producer waiting to put.
      try:
        self._queue.get(timeout=0.1)
      except queue.Empty:
        pass
    self._thread.join()

  def _produce(self):
    for _ in range(self._count):
      if self._stop.is_set():
        return
      try:
        item = True, self._convert(self._sample())
      except Exception as e:  # Raised where the batch is taken.
        item = False, e
      while not self._stop.is_set():
        try:
          self._queue.put(item, timeout=0.1)
          break
        except queue.Full:
          pass
      if not item[0]:
        return

  def _consume(self):
    for _ in range(self._count):
      ok, item = self._queue.get()
      if not ok:
        raise item
      yield item


def random_batch(shape, actdim, seed=0):
  """Random sequences in the episodes' format, (batch, length) = shape; as
  upstream's DummyEnv, for tests and benchmarks."""
  random = np.random.RandomState(seed)
  return dict(
      image=random.randint(0, 255, shape + (64, 64, 3)).astype(np.uint8),
      action=random.uniform(-1, 1, shape + (actdim,)).astype(np.float32),
      reward=random.uniform(0, 1, shape).astype(np.float32),
      discount=np.ones(shape, np.float32))


class SampleDist:
  """Mean, mode and entropy without closed forms, estimated by sampling."""

  def __init__(self, dist, samples=100):
    self._dist = dist
    self._samples = samples

  @property
  def name(self):
    return 'SampleDist'

  def __getattr__(self, name):
    return getattr(self._dist, name)

  def mean(self):
    samples = self._dist.sample(self._samples)
    return tf.reduce_mean(samples, 0)

  def mode(self, seed=None):
    sample = self._dist.sample(self._samples, seed=seed)
    logprob = self._dist.log_prob(sample)
    # The best sample of each batch element (upstream took element 0's).
    best = tf.one_hot(
        tf.argmax(logprob, 0), self._samples, axis=0, dtype=sample.dtype)
    return tf.reduce_sum(sample * best[..., None], 0)

  def entropy(self):
    sample = self._dist.sample(self._samples)
    logprob = self.log_prob(sample)
    return -tf.reduce_mean(logprob, 0)


class OneHotDist:
  """Categorical over one-hot vectors; samples pass straight-through
  gradients to the probabilities. Float32, as every distribution here."""

  def __init__(self, logits=None, probs=None):
    self._dist = tfd.Categorical(logits=logits, probs=probs)
    self._num_classes = self.mean().shape[-1]

  @property
  def name(self):
    return 'OneHotDist'

  def __getattr__(self, name):
    return getattr(self._dist, name)

  def prob(self, events):
    indices = tf.argmax(events, axis=-1)
    return self._dist.prob(indices)

  def log_prob(self, events):
    indices = tf.argmax(events, axis=-1)
    return self._dist.log_prob(indices)

  def mean(self):
    return self._dist.probs_parameter()

  def mode(self, seed=None):
    del seed  # The signature of SampleDist.mode, which the policy calls.
    return self._one_hot(self._dist.mode())

  def sample(self, amount=None, seed=None):
    amount = [amount] if amount else []
    indices = self._dist.sample(*amount, seed=seed)
    sample = self._one_hot(indices)
    probs = self._dist.probs_parameter()
    sample += probs - tf.stop_gradient(probs)
    return sample

  def _one_hot(self, indices):
    return tf.one_hot(indices, self._num_classes, dtype=tf.float32)


class TanhBijector(tfp.bijectors.Bijector):

  def __init__(self, validate_args=False, name='tanh'):
    super().__init__(
        forward_min_event_ndims=0,
        validate_args=validate_args,
        name=name)

  def _forward(self, x):
    return tf.nn.tanh(x)

  def _inverse(self, y):
    dtype = y.dtype
    y = tf.cast(y, tf.float32)
    y = tf.where(
        tf.less_equal(tf.abs(y), 1.),
        tf.clip_by_value(y, -0.99999997, 0.99999997), y)
    y = tf.atanh(y)
    y = tf.cast(y, dtype)
    return y

  def _forward_log_det_jacobian(self, x):
    log2 = tf.math.log(tf.constant(2.0, dtype=x.dtype))
    return 2.0 * (log2 - x - tf.nn.softplus(-2.0 * x))


def lambda_return(
    reward, value, pcont, bootstrap, lambda_, axis):
  # Setting lambda=1 gives a discounted Monte Carlo return.
  # Setting lambda=0 gives a fixed 1-step return.
  reward, value = tf.convert_to_tensor(reward), tf.convert_to_tensor(value)
  assert reward.shape.ndims == value.shape.ndims, (reward.shape, value.shape)
  if isinstance(pcont, (int, float)):
    pcont = pcont * tf.ones_like(reward)
  dims = list(range(reward.shape.ndims))
  dims = [axis] + dims[1:axis] + [0] + dims[axis + 1:]
  if axis != 0:
    reward = tf.transpose(reward, dims)
    value = tf.transpose(value, dims)
    pcont = tf.transpose(pcont, dims)
  if bootstrap is None:
    bootstrap = tf.zeros_like(value[-1])
  next_values = tf.concat([value[1:], bootstrap[None]], 0)
  inputs = reward + pcont * next_values * (1 - lambda_)
  returns = static_scan(
      lambda agg, cur: cur[0] + cur[1] * lambda_ * agg,
      (inputs, pcont), bootstrap, reverse=True)
  if axis != 0:
    returns = tf.transpose(returns, dims)
  return returns


class Adam(tf.Module):
  """Adam over some modules' variables: gradients averaged over replicas,
  global-norm clipping, decoupled weight decay, loss scaling under float16,
  and non-finite updates skipped (and listed by `updates()`)."""

  # The optimized modules' variables belong to those modules.
  _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES | {
      '_modules', '_variables'}
  _building = False

  def __init__(
      self, name, modules, lr, clip=None, wd=None, wdpattern=r'.*',
      eps=1e-7):
    self._name = name
    self._modules = modules
    self._clip = clip
    self._wdpattern = wdpattern
    self._opt = tf_keras.optimizers.Adam(
        lr, epsilon=eps, weight_decay=wd or None)
    self._mixed = prec.global_policy().compute_dtype == 'float16'
    if self._mixed:
      self._opt = prec.LossScaleOptimizer(self._opt)
    self._variables = None

  @classmethod
  @contextlib.contextmanager
  def building(cls):
    """Inside, calls create the optimizer state but update nothing."""
    cls._building = True
    try:
      yield
    finally:
      cls._building = False

  @property
  def variables(self):
    return list(self._opt.variables)

  @property
  def iterations(self):
    """The updates applied; skipped ones do not count."""
    return self._opt.iterations

  def loss_scale_variables(self):
    """The dynamic loss scale's state under float16, which Keras keeps out
    of the optimizer's variables."""
    if not self._mixed:
      return {}
    state = self._opt._loss_scale
    return dict(scale=state._current_loss_scale, good_steps=state._counter)

  def __call__(self, tape, loss):
    """One update; returns the gradient norm."""
    if self._variables is None:
      variables = [module.variables for module in self._modules]
      self._variables = tf.nest.flatten(variables)
      count = sum(np.prod(x.shape) for x in self._variables)
      print(f'Found {count} {self._name} parameters.')
      self._build()
    assert len(loss.shape) == 0, loss.shape
    if Adam._building:
      return tf.constant(0.0)
    unscaled = loss
    if self._mixed:
      with tape:  # Recorded, so float16 gradients backpropagate scaled.
        loss = self._opt.get_scaled_loss(loss)
    grads = tape.gradient(loss, self._variables)
    if self._mixed:
      grads = self._opt.get_unscaled_gradients(grads)
    if _deferred is not None:
      _deferred.append((self, unscaled, grads))
      return tf.linalg.global_norm(grads)  # Until `apply` runs.
    return self.apply(unscaled, grads)[0]

  def apply(self, loss, grads):
    """Averages over replicas, clips and applies: the norm, whether finite.

    A non-finite loss or gradient skips the update (float16 overflows are
    the loss scale optimizer's to skip, no errors).
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context else 1
    if replicas > 1:
      grads, loss = self._all_reduce(context, grads, loss)
    norm = tf.linalg.global_norm(grads)
    if self._clip:
      grads, _ = tf.clip_by_global_norm(grads, self._clip, norm)
    finite = tf.math.is_finite(loss)
    if not self._mixed:
      finite = tf.logical_and(finite, tf.math.is_finite(norm))
    if _updates is not None:
      _updates.append(finite)
    pairs = [(g, v) for g, v in zip(grads, self._variables) if g is not None]
    if self._mixed:
      # The loss scale optimizer skips non-finite gradients itself.
      self._opt.apply_gradients(pairs, skip_gradients_aggregation=True)
      return norm, finite
    def update():
      self._opt.apply_gradients(pairs, skip_gradients_aggregation=True)
      return tf.constant(True)
    skip = lambda: tf.constant(False)
    if replicas == 1:
      tf.cond(finite, update, skip)
      return norm, finite
    # The update synchronizes the replicas, which cannot happen inside a cond
    # in a replica context: decide in the cross-replica context and update
    # every replica from there.
    def cross_replica(strategy, finite):
      finite = strategy.experimental_local_results(finite)[0]
      def update_each():
        strategy.extended.call_for_each_replica(update)
        return tf.constant(True)
      tf.cond(finite, update_each, skip)
    context.merge_call(cross_replica, args=(finite,))
    return norm, finite

  def _build(self):
    # The optimizer state, once the modules have created their variables.
    inner = self._opt.inner_optimizer if self._mixed else self._opt
    inner.exclude_from_weight_decay(var_list=[
        v for v in self._variables
        if not re.search(self._wdpattern, f'{self.name}/{v.name}')])
    self._opt.build(self._variables)

  def _all_reduce(self, context, grads, loss):
    present = [i for i, g in enumerate(grads) if g is not None]
    mean = context.all_reduce(
        tf.distribute.ReduceOp.MEAN, [grads[i] for i in present])
    grads = list(grads)
    for i, g in zip(present, mean):
      grads[i] = g
    loss = context.all_reduce(tf.distribute.ReduceOp.MEAN, loss)
    return grads, loss


_updates = None
_deferred = None


@contextlib.contextmanager
def updates():
  """Lists whether each update `Adam` applies inside was finite."""
  global _updates
  outer, _updates = _updates, []
  try:
    yield _updates
  finally:
    _updates = outer


def skipped(finite):
  """The number of skipped updates among these, as a float32 tensor."""
  return tf.add_n([tf.constant(0.0)] + [
      1 - tf.cast(f, tf.float32) for f in finite])


@contextlib.contextmanager
def deferred_updates():
  """For XLA over several replicas, which cannot compile their all-reduce.

  Inside, `Adam` calls only compute gradients and list them for `Adam.apply`
  outside, and `batch_mean` averages over this replica's part of the batch.
  """
  global _deferred
  _deferred = []
  try:
    yield _deferred
  finally:
    _deferred = None


def batch_mean(x):
  """The mean of x over the whole batch, across replicas; no gradient.

  Under XLA with several replicas (deferred_updates), over this replica's
  part: XLA cannot compile the replicas' all-reduce.
  """
  mean = tf.stop_gradient(tf.reduce_mean(x))
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return mean
  if _deferred is not None:
    return mean
  return context.all_reduce(tf.distribute.ReduceOp.MEAN, mean)


def batch_std(x):
  """The standard deviation of x over the batch as batch_mean takes it; no
  gradient."""
  return tf.sqrt(batch_mean(tf.square(x - batch_mean(x))))


def args_type(default):
  """A flag's parser: True/False, integers written like 1e6, paths."""
  if isinstance(default, bool):
    def parse_bool(x):
      if x not in ('True', 'False'):
        raise argparse.ArgumentTypeError(f"expected True or False, got '{x}'")
      return x == 'True'
    return parse_bool
  if isinstance(default, int):
    def parse_int(x):
      try:
        value = float(x)
      except ValueError:
        value = None
      if value is None or not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got '{x}'")
      return int(value)
    return parse_int
  if isinstance(default, float):
    def parse_float(x):
      try:
        return float(x)
      except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, got '{x}'") from None
    return parse_float
  if isinstance(default, pathlib.Path):
    return lambda x: pathlib.Path(x).expanduser()
  return type(default)


def parse_flags(
    config, argv=None, choices=None, prog=None, types=None, helps=None):
  """Every config key as a flag `--key value`; a bad flag exits in one line.

  `types` may give a key's parser, else its default's type decides. `helps`
  (key: (group, description), as `describe` reads them) groups the --help.
  Returns the config and the set of keys given on the command line.
  """
  choices, types, helps = choices or {}, types or {}, helps or {}
  unset = object()
  parser = _Parser(prog=prog, allow_abbrev=False)
  groups = {}
  for key, value in config.items():
    group, text = helps.get(key, (None, ''))
    if group not in groups:
      groups[group] = parser.add_argument_group(group) if group else parser
    shown = f'default: {value}'
    if key in choices:
      shown += f'; one of {", ".join(map(str, choices[key]))}'
    groups[group].add_argument(
        f'--{key}', type=types.get(key, args_type(value)), default=unset,
        choices=choices.get(key), metavar='',
        help=f'{text} ({shown})'.lstrip().replace('%', '%%'))
  args = vars(parser.parse_args(argv))
  given = {key for key, value in args.items() if value is not unset}
  config = {k: args[k] if k in given else v for k, v in config.items()}
  return AttrDict(config), given


def describe(function, group=None):
  """{key: (group, description)} of a define_config function's keys, from
  its source: the comment block above each statement that sets `config.key`
  (or a comment at its end) describes the keys it sets; a comment line of one
  capitalized word, e.g. `# Model.`, starts a group; `group` names the
  function's keys that come before any."""
  lines = inspect.getsource(function).splitlines()
  comments = {}
  for token in tokenize.generate_tokens(iter(
      line + '\n' for line in lines).__next__):
    if token.type == tokenize.COMMENT:
      comments[token.start[0]] = token.string[1:].strip()
  body = ast.parse(textwrap.dedent('\n'.join(lines))).body[0].body
  found = {}
  for statement in body:
    block, number = [], statement.lineno - 1
    while number in comments and lines[number - 1].lstrip().startswith('#'):
      block.insert(0, comments[number])
      number -= 1
    while block and re.fullmatch(r'[A-Z][a-z]+\.', block[0]):
      group = block.pop(0)[:-1]
    for node in ast.walk(statement):
      if not (isinstance(node, ast.Attribute) and
              isinstance(node.ctx, ast.Store) and
              getattr(node.value, 'id', None) == 'config'):
        continue
      text = ' '.join(block) or comments.get(node.lineno, '')
      found.setdefault(node.attr, (group, text))
  return found


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    sys.exit(f'{self.prog}: error: {message}')


def gpu_generations():
  """The major compute capability of each visible GPU (8: Ampere)."""
  # Without a driver, asking TensorFlow logs a CUDA error on every CPU-only
  # Linux machine.
  if sys.platform.startswith('linux') and not glob.glob('/dev/nvidia*'):
    return []
  generations = []
  for gpu in tf.config.list_physical_devices('GPU'):
    details = tf.config.experimental.get_device_details(gpu)
    generations.append(details.get('compute_capability', (0, 0))[0])
  return generations


def cpuinfo(path='/proc/cpuinfo'):
  """The first processor's fields of /proc/cpuinfo; {} off Linux."""
  try:
    text = pathlib.Path(path).read_text()
  except OSError:
    return {}
  fields = {}
  for line in text.splitlines():
    if not line.strip():  # The first processor's block ends.
      break
    key, _, value = line.partition(':')
    fields[key.strip()] = value.strip()
  return fields


def cpu_bfloat16(path='/proc/cpuinfo'):
  """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
  flags = set(cpuinfo(path).get('flags', '').split())
  return bool(flags & {'avx512_bf16', 'amx_bf16'})


def static_scan(fn, inputs, start, reverse=False):
  last = start
  outputs = None  # Shaped like fn's outputs, which may add to the start.
  # Not len(): without AutoGraph, a symbolic tensor has none.
  indices = range(tf.nest.flatten(inputs)[0].shape[0])
  if reverse:
    indices = reversed(indices)
  for index in indices:
    inp = tf.nest.map_structure(lambda x: x[index], inputs)
    last = fn(last, inp)
    outputs = outputs or [[] for _ in tf.nest.flatten(last)]
    [o.append(l) for o, l in zip(outputs, tf.nest.flatten(last))]
  if reverse:
    outputs = [list(reversed(x)) for x in outputs]
  outputs = [tf.stack(x, 0) for x in outputs]
  return tf.nest.pack_sequence_as(last, outputs)


class Every:

  def __init__(self, every):
    self._every = every
    self._last = None

  def __call__(self, step):
    if self._last is None:
      self._last = step
      return True
    if step >= self._last + self._every:
      self._last += self._every
      return True
    return False


class Once:

  def __init__(self):
    self._once = True

  def __call__(self):
    if self._once:
      self._once = False
      return True
    return False


# Errors: problems of a run's inputs, reported in one line.

class RunError(RuntimeError):
  pass


class ConfigError(RunError):
  pass


class CheckpointError(RunError):
  pass


class NonFiniteError(RunError):
  pass


class DiskFullError(RunError):
  pass


class LockedError(RunError):
  pass


# Files.

def write_atomic(filename, write):
  """Writes through a temporary file: a kill never leaves a torn file, and a
  full disk leaves the previous file as it was."""
  filename = pathlib.Path(filename)
  temp = filename.with_name(f'.{filename.name}.{uuid.uuid4().hex[:8]}.tmp')
  try:
    with disk_full_is_an_error(filename):
      with temp.open('wb') as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
      os.replace(temp, filename)
  finally:
    if temp.exists():
      temp.unlink()


def read_lines(filename):
  """The entries of a JSON-lines file, none if it is absent; a torn line
  (a kill while appending) or one that is not an object is skipped."""
  path = pathlib.Path(filename)
  if not path.exists():
    return []
  entries = []
  for line in path.read_text().splitlines():
    try:
      entry = json.loads(line)
    except ValueError:
      continue
    if isinstance(entry, dict):
      entries.append(entry)
  return entries


def append_line(filename, line):
  """Appends a line; a kill or a full disk can tear only this line."""
  with disk_full_is_an_error(filename):
    with pathlib.Path(filename).open('a') as f:
      f.write(line + '\n')


@contextlib.contextmanager
def disk_full_is_an_error(filename):
  try:
    yield
  except OSError as e:
    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
      raise
    raise DiskFullError(
        f'no space left on the device to write {filename}; free space and '
        'run the same command to continue') from e


def lock(directory):
  """Makes this process the only one to use a directory until it exits.

  The lock is the kernel's (flock): it ends with the process, also when the
  process is killed, so nothing is left to clean up. Raises LockedError,
  naming the holder, if another process holds it.
  """
  path = pathlib.Path(directory) / '.lock'
  handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.pread(handle, 32, 0).decode(errors='replace').strip()
    os.close(handle)
    raise LockedError(
        f'{directory} is in use by process {holder or "?"}; wait for it to '
        'end or stop it first') from None
  os.ftruncate(handle, 0)
  os.pwrite(handle, str(os.getpid()).encode(), 0)
  return handle


def locked(directory):
  """The PID of the process that holds the directory's lock, or None."""
  path = pathlib.Path(directory) / '.lock'
  try:
    handle = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return None
  try:
    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return None
  except BlockingIOError:
    holder = os.pread(handle, 32, 0).decode(errors='replace').strip()
    return int(holder) if holder.isdigit() else -1
  finally:
    os.close(handle)


def checkpoint_step(filename):
  """The step a checkpoint was written at, or None without a checkpoint.
  Also of upstream's checkpoints (runs/upstream.py): their values in order,
  without names, the step the only int64 scalar among them."""
  try:
    with pathlib.Path(filename).open('rb') as f:
      values = pickle.load(f)
    if isinstance(values, dict):
      return int(values['_step'])
    steps = [
        v for v in values if isinstance(v, (np.ndarray, np.generic))
        and v.shape == () and v.dtype == np.int64]
    if len(steps) != 1:
      raise ValueError('no step among its values')
    return int(steps[0])
  except FileNotFoundError:
    return None
  except Exception as e:
    raise CheckpointError(
        f'{filename} is not a readable checkpoint ({e})') from e


def remove_temporary(directory):
  """Removes temporary files that a killed run left behind."""
  for filename in pathlib.Path(directory).glob('.*.tmp'):
    filename.unlink()


# Stopping.

class StopRequest:
  """The first SIGINT or SIGTERM asks the run to stop at the next safe point;
  a second SIGINT stops it at once."""

  def __init__(self):
    self.requested = False

  def install(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      signal.signal(signum, self._handle)

  def _handle(self, signum, frame):
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = True
    print(f'Received {signal.Signals(signum).name}: '
          'stopping after the current step.', file=sys.stderr, flush=True)


STOP = StopRequest()


# Logging.

class Sums:
  """Sums of a train step's scalars over a log interval, kept on the device,
  as upstream's tf.metrics.Mean: adding one step's reads nothing back."""

  def __init__(self, keys):
    zero = lambda: tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self._sums = {key: zero() for key in keys}
    self._count = zero()

  def add(self, values):
    for key, value in values.items():
      self._sums[key].assign_add(tf.cast(value, tf.float64))
    self._count.assign_add(1.0)

  def means(self):
    """The means since the last call, read in one transfer; {} if none."""
    variables = list(self._sums.values()) + [self._count]
    values = tf.stack(variables).numpy()
    for variable in variables:
      variable.assign(0.0)
    if not values[-1]:
      return {}
    return {k: v / values[-1] for k, v in zip(self._sums, values[:-1])}


class Streak:
  """The longest run of true values in a row, counted on the device."""

  def __init__(self):
    self._current = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._longest = tf.Variable(0, dtype=tf.int64, trainable=False)

  def update(self, value):
    current = tf.where(value, self._current + 1, tf.constant(0, tf.int64))
    self._current.assign(current)
    self._longest.assign(tf.maximum(self._longest, current))

  def read(self):
    """The longest run since the last read; a run going on counts on."""
    longest = int(self._longest.numpy())
    self._longest.assign(self._current)
    return longest


class Logger:
  """Scalars to metrics.jsonl and TensorBoard, videos to TensorBoard, and a
  progress line."""

  def __init__(self, logdir, total_steps):
    self._logdir = pathlib.Path(logdir)
    self._writer = None
    self._total = total_steps
    self._latest = {}
    self._last = None
    self._repair()

  @property
  def writer(self):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(
          str(self._logdir), max_queue=1000, flush_millis=20000)
    return self._writer

  def _repair(self):
    # A run killed while appending can leave a torn last line; appending
    # after it would bury it in the middle of the file.
    path = self._logdir / 'metrics.jsonl'
    if not path.exists():
      return
    content = path.read_bytes()
    if content and not content.endswith(b'\n'):
      keep = content.rfind(b'\n') + 1
      print(f'Warning: dropping a torn last line of {path}.', file=sys.stderr)
      with path.open('r+b') as f:
        f.truncate(keep)

  def write(self, step, scalars, prefix, unlogged=None):
    """One line in metrics.jsonl; TensorBoard tags get `prefix/`. The
    `unlogged` scalars go to metrics.jsonl only."""
    scalars = {k: float(v) for k, v in scalars.items()}
    self._latest.update(scalars)
    unlogged = {k: float(v) for k, v in (unlogged or {}).items()}
    line = json.dumps({'step': int(step), **scalars, **unlogged})
    append_line(self._logdir / 'metrics.jsonl', line)
    with self.writer.as_default():
      for name, value in scalars.items():
        tf.summary.scalar(f'{prefix}/{name}', value, step)

  def text(self, step, name, text):
    with self.writer.as_default():
      tf.summary.text(name, text, step)

  def video(self, step, name, video):
    with self.writer.as_default():
      video_summary(name, video, step)

  def rate(self, step):
    """Environment steps per second since the last call, or None."""
    now = time.time()
    last, self._last = self._last, (step, now)
    if last is None or now <= last[1]:
      return None
    return (step - last[0]) / (now - last[1])

  def progress(self, step, scalars):
    parts = [f'[{int(step)}]']
    fps = scalars.get('fps')
    if fps:
      parts.append(f'fps {fps:.1f}')
      eta = max(0, self._total - step) / fps
      parts.append(f'eta {format_duration(eta)}')
    for key in ('train/return', 'test/return'):
      if key in self._latest:
        parts.append(f'{key} {self._latest[key]:.1f}')
    parts += [f'{k} {v:.3g}' for k, v in scalars.items() if k != 'fps']
    print(' / '.join(parts), flush=True)

  def flush(self):
    if self._writer is not None:
      self._writer.flush()


class Progress:
  """Done / total, rate and time left of a phase. On a terminal the line is
  redrawn in place below what is printed; otherwise a plain line is printed
  every PROGRESS_SECONDS seconds (an environment variable; default 60, 0.2
  on a terminal). Ends with a line of what was done and how long it took.
  A phase counts its own time: the time of phases nested in it (training
  inside collection) is named apart, not spent at its rate."""

  _active = []

  def __init__(self, name, total, unit):
    self._name = name
    self._total = total
    self._unit = unit
    self._done = 0
    self._nested = collections.defaultdict(float)  # name: seconds
    self._terminal = _Terminal.install()
    self._every = float(os.environ.get(
        'PROGRESS_SECONDS', 0.2 if self._terminal else 60))

  def __enter__(self):
    self._start = self._shown = time.time()
    Progress._active.append(self)
    self._show()
    return self

  def __exit__(self, *exc_info):
    Progress._active.remove(self)
    end = time.time()
    if Progress._active:  # Its whole time is nested in the phase around it.
      Progress._active[-1]._nested[self._name] += end - self._start
    duration = self._own(end)
    rate = f', {pace(self._done, duration)}' if duration >= 1 else ''
    nested = ', '.join(
        f'{name.lower()} {format_duration(seconds, True)}'
        for name, seconds in self._nested.items())
    line = (f'{self._name}: {self._done} {self._unit} in '
            f'{format_duration(duration, True)}{rate}' +
            (f' (besides {nested})' if nested else '') + '.')
    if self._terminal:
      self._terminal.show('')
    print(line, flush=True)
    if self._terminal and Progress._active:
      Progress._active[-1]._show()

  def update(self, amount=1):
    self._done += amount
    if time.time() - self._shown >= self._every:
      self._show()

  def _own(self, now):
    return now - self._start - sum(self._nested.values())

  def _show(self):
    now = time.time()
    self._shown = now
    parts = [f'{self._name}: {self._done} / {self._total} {self._unit}']
    own = self._own(now)
    if own > 0 and self._done:
      # Time left at the pace so far, nested phases included: wall clock.
      left = max(0, self._total - self._done) * (now - self._start) / (
          self._done)
      parts.append(
          f'{pace(self._done, own)}, {format_duration(left, True)} left')
    line = ', '.join(parts)
    if self._terminal:
      self._terminal.show(line)
    elif self._done:
      print(line, flush=True)


def pace(done, seconds):
  """Per second, or seconds each where that would read 0.0/s."""
  if not done or done / seconds >= 0.1:
    return f'{done / seconds:.1f}/s'
  return f'{seconds / done:.1f}s each'


class _Terminal:
  """Standard output on a terminal that keeps a progress line below what
  is printed."""

  def __init__(self, stream):
    self._stream = stream
    self._line = ''
    self._drawn = False
    self._at_start = True

  @classmethod
  def install(cls):
    if isinstance(sys.stdout, cls):
      return sys.stdout
    if not sys.stdout.isatty():
      return None
    sys.stdout = cls(sys.stdout)
    return sys.stdout

  def show(self, line):
    self._line = line
    self._clear()
    self._draw()
    self._stream.flush()

  def write(self, text):
    self._clear()
    self._stream.write(text)
    if text:
      self._at_start = text.endswith('\n')
    self._draw()
    return len(text)

  def flush(self):
    self._stream.flush()

  def __getattr__(self, name):
    return getattr(self._stream, name)

  def _clear(self):
    if self._drawn:
      self._stream.write('\r\x1b[K')
      self._drawn = False

  def _draw(self):
    if self._line and self._at_start:
      self._stream.write(self._line)
      self._drawn = True


def format_duration(seconds, seconds_shown=False):
  seconds = int(seconds)
  days, seconds = divmod(seconds, 86400)
  hours, seconds = divmod(seconds, 3600)
  minutes, seconds = divmod(seconds, 60)
  if days:
    return f'{days}d{hours:02d}h'
  if hours:
    return f'{hours}h{minutes:02d}m'
  if seconds_shown:
    return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'
  return f'{minutes}m'
