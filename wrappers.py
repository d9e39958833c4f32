"""Environment wrappers: DeepMind Control from pixels, action repeat, action normalization, time
limit, episode collection and asynchronous workers.

This module never imports TensorFlow: `--parallel process` workers are spawned with only this
module imported, so they can render with Mesa's software renderer (reference §1).
"""

import multiprocessing
import multiprocessing.dummy
import os
import signal
import sys
import threading
import traceback

# Headless rendering; a user's own choice (e.g. osmesa) wins.
os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np


class Box:
  """A bounded box of float actions: the part of gym.spaces.Box the agent uses."""

  def __init__(self, low, high, dtype=np.float32):
    self.low = np.asarray(low, dtype)
    self.high = np.asarray(high, dtype)
    self.shape = self.low.shape
    self.dtype = dtype

  def sample(self, random=np.random):
    return random.uniform(self.low, self.high).astype(self.dtype)


def dmc_tasks():
  from dm_control import suite
  return suite.ALL_TASKS


def parse_task(name):
  """Split '<domain>_<task>' (upstream also spells ball_in_cup as 'cup') into suite names."""
  if name.startswith('cup_'):
    name = 'ball_in_' + name
  tasks = dmc_tasks()
  domains = sorted({domain for domain, _ in tasks})
  # Domains contain underscores (point_mass, ball_in_cup): try the longest first.
  for domain in sorted(domains, key=len, reverse=True):
    if name.startswith(domain + '_'):
      task = name[len(domain) + 1:]
      if (domain, task) in tasks:
        return domain, task
      valid = ', '.join(t for d, t in tasks if d == domain)
      raise ValueError(
          f"unknown task '{task}' of domain '{domain}'; its tasks are: {valid}")
  raise ValueError(
      f"unknown domain in '{name}'; valid domains are: {', '.join(domains)}")


class DeepMindControl:
  """A control suite task observed as 64x64 uint8 images."""

  def __init__(self, name, size=(64, 64), camera=None, seed=None):
    from dm_control import suite
    domain, task = parse_task(name)
    self._env = suite.load(domain, task, task_kwargs={'random': seed})
    self._size = tuple(size)
    if camera is None:
      camera = dict(quadruped=2).get(domain, 0)
    self._camera = camera

  @property
  def observation_space(self):
    return {'image': Box(
        np.zeros(self._size + (3,)), 255 * np.ones(self._size + (3,)), np.uint8)}

  @property
  def action_space(self):
    spec = self._env.action_spec()
    return Box(spec.minimum, spec.maximum)

  def step(self, action, render=True):
    time_step = self._env.step(action)
    reward = np.float32(time_step.reward or 0.0)
    done = time_step.last()
    info = {'discount': np.float32(time_step.discount)}
    obs = {'image': self.render()} if render else {}
    return obs, reward, done, info

  def reset(self):
    self._env.reset()
    return {'image': self.render()}

  def render(self):
    return self._env.physics.render(*self._size, camera_id=self._camera)

  def close(self):
    # Free the rendering context now: at interpreter exit its cleanup races the executor's
    # shutdown and prints tracebacks (reference §1).
    self._env.physics.free()


class ActionRepeat:
  """Repeats an action, summing rewards; renders only the frame that is observed."""

  def __init__(self, env, amount):
    self._env = env
    self._amount = amount

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, action):
    total = 0.0
    for _ in range(self._amount):
      obs, reward, done, info = self._env.step(action, render=False)
      total += reward
      if done:
        break
    obs['image'] = self._env.render()
    return obs, np.float32(total), done, info


class NormalizeActions:
  """Exposes actions in [-1, 1] for every dimension with finite bounds."""

  def __init__(self, env):
    self._env = env
    space = env.action_space
    self._mask = np.logical_and(np.isfinite(space.low), np.isfinite(space.high))
    self._low = np.where(self._mask, space.low, -1)
    self._high = np.where(self._mask, space.high, 1)

  def __getattr__(self, name):
    return getattr(self._env, name)

  @property
  def action_space(self):
    low = np.where(self._mask, -np.ones_like(self._low), self._low)
    high = np.where(self._mask, np.ones_like(self._low), self._high)
    return Box(low, high)

  def step(self, action):
    original = (action + 1) / 2 * (self._high - self._low) + self._low
    original = np.where(self._mask, original, action)
    return self._env.step(original)


class TimeLimit:
  """Ends an episode after `duration` steps; the cut is not a terminal state (discount 1)."""

  def __init__(self, env, duration):
    self._env = env
    self._duration = duration
    self._step = None

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, action):
    assert self._step is not None, 'Must reset environment.'
    obs, reward, done, info = self._env.step(action)
    self._step += 1
    if self._step >= self._duration:
      done = True
      info.setdefault('discount', np.float32(1.0))
    if done:
      self._step = None
    return obs, reward, done, info

  def reset(self):
    self._step = 0
    return self._env.reset()


# Environments of one run draw apart: training, evaluation, and the final evaluation of
# runs/evaluate.py.
SEED_ROLES = {'train': 0, 'test': 1, 'final': 2}


def env_seed(seed, role, *index):
  """A reproducible environment seed, distinct for every run seed, role and index."""
  return int(np.random.SeedSequence([seed, SEED_ROLES[role], *index]).generate_state(1)[0])


def make_dmc(task, action_repeat, time_limit, seed, size=(64, 64)):
  """The environment stack below episode collection, built where it runs (also in workers)."""
  env = DeepMindControl(task, size, seed=seed)
  env = ActionRepeat(env, action_repeat)
  env = NormalizeActions(env)
  env = TimeLimit(env, time_limit // action_repeat)
  return env


class Collect:
  """Records transitions and hands each finished episode to the callbacks.

  Index t of an episode holds observation t, the action that led to it and the reward received
  on arriving there; index 0 is the reset with a zero action and reward. Wraps an `Async` so
  that steps of several environments can run at once.
  """

  def __init__(self, env, callbacks=()):
    self._env = env
    self._callbacks = callbacks
    self._episode = None

  def __getattr__(self, name):
    return getattr(self._env, name)

  def step(self, action, blocking=True):
    promise = self._env.step(action, blocking=False)
    def receive():
      obs, reward, done, info = promise()
      transition = dict(obs)
      transition['action'] = np.asarray(action, np.float32)
      transition['reward'] = np.float32(reward)
      transition['discount'] = np.float32(info.get('discount', 1 - float(done)))
      self._episode.append(transition)
      if done:
        episode = self.flush()
        info = dict(info, episode=episode)
        for callback in self._callbacks:
          callback(episode)
      return obs, reward, done, info
    return receive() if blocking else receive

  def flush(self):
    """The unfinished episode so far, if it has a step; recording starts anew at reset."""
    episode, self._episode = self._episode, None
    if not episode or len(episode) < 2:
      return None
    return {k: np.stack([t[k] for t in episode]) for k in episode[0]}

  def reset(self, blocking=True):
    promise = self._env.reset(blocking=False)
    def receive():
      obs = promise()
      transition = dict(obs)
      transition['action'] = np.zeros(self._env.action_space.shape, np.float32)
      transition['reward'] = np.float32(0.0)
      transition['discount'] = np.float32(1.0)
      self._episode = [transition]  # Drops any unfinished episode.
      return obs
    return receive() if blocking else receive


class WorkerDied(RuntimeError):
  """An environment worker exited or raised; its episode in flight is lost."""


class Async:
  """Runs an environment in this thread ('none'), a thread, or a spawned process.

  `step` and `reset` take blocking=False to return a promise, so several environments can step
  at once. A worker that dies is started again by the next `reset`.
  """

  _ACCESS, _CALL, _RESULT, _EXCEPTION, _CLOSE = range(5)

  def __init__(self, ctor, strategy='process'):
    if strategy not in ('none', 'thread', 'process'):
      raise ValueError(f'Unknown parallel strategy: {strategy}')
    self._ctor = ctor
    self._strategy = strategy
    self._env = None
    self._process = None
    self._start()
    self._action_space = self.access('action_space')()
    self._observation_space = self.access('observation_space')()

  @property
  def action_space(self):
    return self._action_space

  @property
  def observation_space(self):
    return self._observation_space

  def access(self, name):
    if self._strategy == 'none':
      value = getattr(self._env, name)
      return lambda: value
    self._send(self._ACCESS, name)
    return self._receive

  def call(self, name, *args, **kwargs):
    if self._strategy == 'none':
      value = getattr(self._env, name)(*args, **kwargs)
      return lambda: value
    self._send(self._CALL, (name, args, kwargs))
    return self._receive

  def step(self, action, blocking=True):
    promise = self.call('step', action)
    return promise() if blocking else promise

  def reset(self, blocking=True):
    if not self.alive:
      print('Environment worker died; starting a new one.', file=sys.stderr)
      self._stop()
      self._start()
    promise = self.call('reset')
    return promise() if blocking else promise

  @property
  def alive(self):
    # The pipe can report a dead worker before the process is reaped.
    return self._strategy == 'none' or (not self._failed and self._process.is_alive())

  def close(self):
    self._stop()

  def _start(self):
    self._failed = False
    if self._strategy == 'none':
      self._env = self._ctor()
      return
    if self._strategy == 'process':
      # Spawned, not forked: the child starts without TensorFlow (see the module docstring).
      context = multiprocessing.get_context('spawn')
      self._conn, conn = context.Pipe()
      self._process = context.Process(target=_worker, args=(self._ctor, conn), daemon=True)
    else:
      self._conn, conn = multiprocessing.dummy.Pipe()
      self._process = threading.Thread(target=_worker, args=(self._ctor, conn), daemon=True)
    self._process.start()

  def _stop(self):
    if self._strategy == 'none':
      if self._env is not None:
        self._env.close()
        self._env = None
      return
    try:
      self._conn.send((self._CLOSE, None))
      self._conn.close()
    except (OSError, IOError):
      pass
    self._process.join(5)
    if self._strategy == 'process' and self._process.is_alive():
      self._process.kill()
      self._process.join()

  def _send(self, message, payload):
    try:
      self._conn.send((message, payload))
    except (OSError, IOError) as e:
      self._failed = True
      raise WorkerDied(f'environment worker is gone ({e})') from e

  def _receive(self):
    try:
      # Poll so that a worker killed mid-call is noticed instead of blocking forever.
      while not self._conn.poll(0.1):
        if not self._process.is_alive():
          code = getattr(self._process, 'exitcode', None)
          raise WorkerDied(f'environment worker exited (exit code {code})')
      try:
        message, payload = self._conn.recv()
      except (EOFError, OSError) as e:
        raise WorkerDied('environment worker closed its connection') from e
      if message == self._EXCEPTION:
        raise WorkerDied(f'environment worker raised:\n{payload}')
    except WorkerDied:
      self._failed = True
      raise
    return payload


def _worker(ctor, conn):
  if threading.current_thread() is threading.main_thread():
    # A worker process: signals to the process group also reach it, but the main process
    # decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
  env = None
  try:
    env = ctor()
    while True:
      try:
        if not conn.poll(0.1):
          continue
        message, payload = conn.recv()
      except (EOFError, OSError):
        break  # The main process is gone.
      if message == Async._ACCESS:
        conn.send((Async._RESULT, getattr(env, payload)))
      elif message == Async._CALL:
        name, args, kwargs = payload
        conn.send((Async._RESULT, getattr(env, name)(*args, **kwargs)))
      elif message == Async._CLOSE:
        break
  except Exception:
    try:
      conn.send((Async._EXCEPTION, traceback.format_exc()))
    except (OSError, IOError):
      pass
  finally:
    if env is not None:
      env.close()
    conn.close()
